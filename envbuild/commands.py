"""The store-reference commands: envs named by an alias or ``req_id:full_id`` in a store.

- ``envbuild create REF [--store URL] --prefix DIR [--arch A] [--cache DIR] [--jupyter]``
- ``envbuild create --from-bundle FILE --prefix DIR [--cache DIR] [--jupyter]``
- ``envbuild pack REF-or-NAME [--arch A] -o FILE [--store URL]``
- ``envbuild alias REF NAME:TAG [--store URL]``
- ``envbuild get REF [--store URL] [--arch A] [--json]``
- ``envbuild show REF [--store URL] [--arch A] [--json]``

Without ``--store`` the workspace's store is used (``[workspace] store``). None of these
needs channels or an index: only the store (or the bundle). Importing this module is cheap
(``envbuild`` checks :func:`dispatch` on every run).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from envbuild.errors import EnvbuildError

if TYPE_CHECKING:
    import argparse

    from envbuild.descriptor import Descriptor
    from envbuild.lock import Lock
    from envbuild.spec import Workspace
    from envbuild.store import Store

COMMANDS = ("pack", "alias", "get")  # always store-reference commands
_HEX40 = re.compile(r"^[0-9a-f]{40}$")
_KERNEL_NAME = re.compile(r"[^a-z0-9._-]+")
NO_STORE = (
    "no store: pass --store URL (s3://bucket/prefix, or a directory), or run in a workspace "
    "(a directory with envbuild.toml, whose [workspace] store is used)"
)


# --------------------------------------------------------------------------- dispatch


def _option(args: Sequence[str], name: str) -> bool:
    return any(a == name or a.startswith(name + "=") for a in args)


def _first_positional(args: Sequence[str], with_value: Sequence[str]) -> str | None:
    """The first argument that is not an option (nor an option's value)."""
    items = iter(args)
    for arg in items:
        if arg in with_value:
            next(items, None)
        elif not arg.startswith("-"):
            return arg
    return None


def _looks_like_ref(text: str) -> bool:
    """An env reference rather than a doit task or variable: ``name:tag``, ``req_id:full_id``
    or a bare 40-hex id (refused later with its own message); never ``var=value`` nor
    ``STAGE:subtask``."""
    if "=" in text:
        return False
    if _HEX40.match(text.strip()):
        return True
    if ":" not in text:
        return False
    from envbuild.tasks import STAGES

    return text.split(":", 1)[0] not in STAGES


def dispatch(args: Sequence[str], root: Path) -> int | None:
    """Run ``args`` when it is a store-reference command, else None (doit or the workspace
    commands take it). ``create`` is one when it has ``--store``, ``--from-bundle`` or an
    env reference as its first argument (else it is doit's ``create`` task, the workspace's
    envs); ``show`` when it has ``--store``, an env reference, or there is no workspace."""
    if not args:
        return None
    cmd, rest = args[0], list(args[1:])
    if cmd in COMMANDS:
        return run(args, root)
    if cmd == "create":
        first = _first_positional(rest, ("--prefix", "--arch", "--cache", "--jupyter-dir"))
        if (
            _option(rest, "--store")
            or _option(rest, "--from-bundle")
            or (first is not None and _looks_like_ref(first))
        ):
            return run(args, root)
    if cmd == "show" and "-h" not in rest and "--help" not in rest:
        first = _first_positional(rest, ("--arch", "--store"))
        if _option(rest, "--store") or (
            first is not None and (_looks_like_ref(first) or not (root / "envbuild.toml").is_file())
        ):
            return run(args, root)
    return None


# --------------------------------------------------------------------------- parsing


def _parser() -> argparse.ArgumentParser:
    import argparse

    class Parser(argparse.ArgumentParser):
        def error(self, message: str) -> NoReturn:  # one line, exit 2, no usage dump
            raise EnvbuildError(f"{self.prog}: {message} (see {self.prog} --help)")

    parser = Parser(prog="envbuild")
    sub = parser.add_subparsers(dest="cmd", required=True, parser_class=Parser)
    store_help = "the store (s3://bucket/prefix or a directory); default: the workspace's"

    p = sub.add_parser("create", help="create an env from a store reference or a bundle")
    p.add_argument("ref", nargs="?", help="an alias NAME:TAG or REQ_ID:FULL_ID")
    p.add_argument("--store", help=store_help)
    p.add_argument("--from-bundle", metavar="FILE", help="an offline bundle (envbuild pack)")
    p.add_argument("--prefix", required=True, metavar="DIR", help="where to create the env")
    p.add_argument("--arch", help="the env's arch (default: this machine's)")
    p.add_argument("--cache", metavar="DIR", help="package cache (default: ~/.cache/envbuild)")
    p.add_argument("--jupyter", action="store_true", help="also write a Jupyter kernelspec")
    p.add_argument(
        "--jupyter-dir", metavar="DIR",
        help="the Jupyter data dir for --jupyter (default: $JUPYTER_DATA_DIR or "
        "~/.local/share/jupyter); the kernel goes to DIR/kernels/NAME",
    )  # fmt: skip

    p = sub.add_parser("pack", help="write an offline bundle of one env x arch")
    p.add_argument("ref", metavar="REF-or-NAME", help="a store reference or a workspace env")
    p.add_argument("--arch", help="the arch to pack (default: this machine's)")
    p.add_argument("-o", "--output", required=True, metavar="FILE")
    p.add_argument("--store", help=store_help)
    p.add_argument("--cache", metavar="DIR", help="package cache outside a workspace")

    p = sub.add_parser("alias", help="point an alias at an env in the store")
    p.add_argument("ref", help="an alias NAME:TAG or REQ_ID:FULL_ID")
    p.add_argument("alias", metavar="NAME:TAG")
    p.add_argument("--store", help=store_help)

    for name, what in (("get", "print an env's descriptor"), ("show", "summarise an env")):
        p = sub.add_parser(name, help=what)
        p.add_argument("ref", help="an alias NAME:TAG or REQ_ID:FULL_ID")
        p.add_argument("--store", help=store_help)
        p.add_argument("--arch")
        p.add_argument("--json", action="store_true")
    return parser


def run(argv: Sequence[str], root: Path) -> int:
    """Parse and run one store-reference command; user errors raise EnvbuildError."""
    args = _parser().parse_args(list(argv))
    try:
        handler = {"create": _create, "pack": _pack, "alias": _alias, "get": _get, "show": _show}
        return handler[args.cmd](args, root)
    except OSError as exc:  # a local file we were told to read or write
        where = exc.filename or ""
        raise EnvbuildError(f"{where}: {exc.strerror or exc}" if where else str(exc)) from None


# --------------------------------------------------------------------------- helpers


def _workspace(root: Path) -> Workspace | None:
    if not (root / "envbuild.toml").is_file():
        return None
    from envbuild.spec import load_workspace

    return load_workspace(root.resolve())


def open_ref_store(url: str | None, root: Path) -> Store:
    """The store of ``--store URL`` (a relative path is relative to the current directory),
    else the workspace's, else an error."""
    from envbuild.store import open_store

    if url:
        return open_store(url, Path.cwd())
    ws = _workspace(root)
    if ws is None:
        raise EnvbuildError(NO_STORE)
    from envbuild.artifacts.stages import artifact_context

    return artifact_context(ws).store


def _parse_ref(ref: str) -> str:
    """The reference in its canonical text (``name`` -> ``name:latest``); a bare full_id
    and malformed aliases are refused."""
    from envbuild.ids import parse_env_ref

    return str(parse_env_ref(ref))


def _default_arch(arch: str | None) -> str:
    from envbuild.platforms import ARCHS, host_arch

    if arch is None:
        return host_arch()
    if arch not in ARCHS:
        raise EnvbuildError(f"unknown arch '{arch}': use one of {', '.join(ARCHS)}")
    return arch


def _pick_arch(ref: str, archs: Sequence[str], asked: str | None) -> str:
    """The arch to read of a reference that has ``archs``: the one asked for, else this
    machine's, else its only one."""
    from envbuild.platforms import host_arch

    if asked is not None:
        _default_arch(asked)
        if asked not in archs:
            raise EnvbuildError(f"{ref} has no env for {asked} (it has {', '.join(archs)})")
        return asked
    if host_arch() in archs:
        return host_arch()
    if len(archs) == 1:
        return archs[0]
    raise EnvbuildError(f"{ref} has envs for {', '.join(archs)}: pass --arch")


def cache_dir(given: str | None) -> Path:
    """``--cache``, else ``$ENVBUILD_CACHE``, else ``~/.cache/envbuild``."""
    text = given or os.environ.get("ENVBUILD_CACHE") or "~/.cache/envbuild"
    return Path(text).expanduser().absolute()


def _descriptors(
    store: Store, ref: str, archs: dict[str, str], arch: str | None
) -> list[Descriptor]:
    """The descriptors of ``ref`` (which has ``archs``): of ``arch``, or of every arch."""
    from envbuild.materialise import find_descriptor

    wanted = [_pick_arch(ref, sorted(archs), arch)] if arch else sorted(archs)
    return [find_descriptor(store, ref, a) for a in wanted]


# --------------------------------------------------------------------------- create


def _create(args: argparse.Namespace, root: Path) -> int:
    from envbuild.materialise import create_from, find_descriptor, ref_archs

    prefix = Path(args.prefix).expanduser().absolute()
    cache = cache_dir(args.cache)
    if args.from_bundle:
        if args.ref or args.store:
            raise EnvbuildError(
                "envbuild create: --from-bundle takes no REF or --store (the bundle holds the env)"
            )
        import tempfile

        from envbuild.materialise import unpack

        cache.mkdir(parents=True, exist_ok=True)
        bundle = Path(args.from_bundle).expanduser()
        with tempfile.TemporaryDirectory(prefix=".bundle-", dir=cache) as tmp:
            store, ref = unpack(bundle, Path(tmp))
            _, archs = ref_archs(store, ref)
            (arch,) = archs
            _check_bundle_arch(bundle, arch, args.arch)
            descriptor = find_descriptor(store, ref, arch)
            _jupyter_precheck(args, descriptor.lock)
            created = create_from(descriptor, store, prefix, cache)
        shown, named = f"bundle {bundle}", ref
    else:
        if not args.ref:
            raise EnvbuildError(
                "envbuild create: give an env reference (NAME:TAG or REQ_ID:FULL_ID) with "
                "--store, or --from-bundle FILE"
            )
        ref = _parse_ref(args.ref)  # a bare full_id is refused before any store request
        store = open_ref_store(args.store, root)
        arch = _default_arch(args.arch)
        descriptor = find_descriptor(store, ref, arch)
        _jupyter_precheck(args, descriptor.lock)
        created = create_from(descriptor, store, prefix, cache)
        shown = named = ref
    lock = descriptor.lock
    print(f"{lock.name} [{lock.env_id.arch}] from {shown} at {prefix}: {created.summary()}")
    if args.jupyter or args.jupyter_dir:
        spec = write_kernelspec(lock, prefix, args.jupyter_dir, named)
        print(f"jupyter kernel {spec.parent.name}: {spec}")
    return 0


def _check_bundle_arch(bundle: Path, held: str, asked: str | None) -> None:
    """A bundle's env is created when it is for this machine's arch, or for the arch asked
    for with --arch (an env for another arch can be laid out, not run)."""
    from envbuild.platforms import host_arch

    if asked is not None and asked != held:
        raise EnvbuildError(f"bundle {bundle} holds an env for {held}, not {asked}")
    if asked is None and held != host_arch():
        raise EnvbuildError(
            f"bundle {bundle} holds an env for {held}, not this machine's {host_arch()}: "
            f"pass --arch {held} to create it anyway"
        )


# --------------------------------------------------------------------------- jupyter


def kernel_name(env: str) -> str:
    """A Jupyter kernel name for env ``env`` (``[a-z0-9._-]``)."""
    return _KERNEL_NAME.sub("-", env.lower()).strip("-.") or "envbuild"


def jupyter_data_dir(given: str | None) -> Path:
    """``--jupyter-dir``, else ``$JUPYTER_DATA_DIR``, else ``~/.local/share/jupyter``."""
    text = given or os.environ.get("JUPYTER_DATA_DIR") or "~/.local/share/jupyter"
    return Path(text).expanduser().absolute()


def _no_ipykernel(lock: Lock, why: str) -> EnvbuildError:
    return EnvbuildError(
        f"--jupyter: env '{lock.name}' {why}: add \"ipykernel\" to the conda (or pypi) list "
        f"of [env.{lock.name}] in envbuild.toml, then run `envbuild` and `envbuild upload "
        f"env={lock.name}` and create it again"
    )


def _jupyter_precheck(args: argparse.Namespace, lock: Lock) -> None:
    """Before anything is created: with --jupyter, the env must lock ipykernel."""
    if not (args.jupyter or args.jupyter_dir):
        return
    from packaging.utils import canonicalize_name

    if not any(canonicalize_name(p.name) == "ipykernel" for p in lock.packages):
        raise _no_ipykernel(lock, "has no ipykernel")


def write_kernelspec(lock: Lock, prefix: Path, data_dir: str | None, ref: str) -> Path:
    """Write ``kernels/<env>/kernel.json`` into the Jupyter data dir: argv runs the env's
    python with ``ipykernel_launcher``. On this machine's arch, ipykernel must import in the
    env first. Returns the kernel.json path."""
    import json
    import subprocess

    from envbuild.fs import atomic_write
    from envbuild.platforms import host_arch

    python = prefix / "bin" / "python"
    if lock.env_id.arch == host_arch():
        if not python.exists():
            raise _no_ipykernel(lock, "has no python")
        try:
            probe = subprocess.run(
                [str(python), "-c", "import ipykernel, ipykernel_launcher"],
                capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
        except (OSError, subprocess.SubprocessError) as exc:
            raise _no_ipykernel(lock, f"cannot run its python ({exc})") from None
        if probe.returncode:
            last = (probe.stderr.strip().splitlines() or ["?"])[-1]
            raise _no_ipykernel(lock, f"cannot import ipykernel ({last})")
    spec = {
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"{lock.name} ({ref})",
        "language": "python",
        "metadata": {"envbuild": {"env": lock.name, "ref": ref, **lock.env_id.to_dict()}},
    }
    path = jupyter_data_dir(data_dir) / "kernels" / kernel_name(lock.name) / "kernel.json"
    atomic_write(path, json.dumps(spec, indent=1, sort_keys=True) + "\n")
    return path


# --------------------------------------------------------------------------- pack


def _pack(args: argparse.Namespace, root: Path) -> int:
    from envbuild.materialise import find_descriptor, pack

    arch = _default_arch(args.arch)
    ws = _workspace(root)
    name = args.ref.strip()
    if ws is not None and ":" not in name and name in {e.name for e in ws.envs}:
        store = open_ref_store(args.store, root)
        descriptor = _workspace_descriptor(ws, store, name, arch)
        shown = name
    else:
        ref = _parse_ref(name)
        store = open_ref_store(args.store, root)
        descriptor = find_descriptor(store, ref, arch)
        shown = ref
    out = Path(args.output).expanduser()
    from envbuild.artifacts.cache import PackageCache

    # the workspace's package cache when there is one (its files are often there already)
    cache = ws.state_dir / "pkgs" if ws is not None else cache_dir(args.cache) / "pkgs"
    count = pack(store, descriptor, out, PackageCache(cache))
    size = sum(f.size for f in descriptor.files)
    env = descriptor.lock.env_id
    print(
        f"packed {descriptor.lock.name} [{arch}] ({shown}, {env.req_id}:{env.full_id}): "
        f"{count} files, {size / 1e6:.1f} MB -> {out}"
    )
    return 0


def _workspace_descriptor(ws: Workspace, store: Store, env: str, arch: str) -> Descriptor:
    """The published descriptor of the current lock of workspace env ``env`` for ``arch``."""
    from envbuild.descriptor import Descriptor
    from envbuild.lock import read_lock
    from envbuild.store.layout import descriptor_key

    spec = ws.env(env)
    if arch not in spec.archs:
        raise EnvbuildError(
            f"env '{env}' is not resolved for {arch}: its archs are {', '.join(spec.archs)} "
            f"(set archs in [env.{env}] of envbuild.toml to add one)"
        )
    path = ws.lock_path(env, arch)
    if not path.is_file():
        raise EnvbuildError(
            f"env '{env}' has no lock for {arch}: run `envbuild resolve env={env} arch={arch}` "
            f"and `envbuild upload env={env} arch={arch}`"
        )
    lock = read_lock(path)
    key = descriptor_key(arch, lock.env_id.req_id, lock.env_id.full_id)
    if store.missing([key]):
        raise EnvbuildError(
            f"env '{env}' for {arch} is not uploaded to {store.url} yet: run "
            f"`envbuild upload env={env} arch={arch}`"
        )
    return Descriptor.loads(store.get_bytes(key), f"{store.url}/{key}")


# --------------------------------------------------------------------------- alias


def _alias(args: argparse.Namespace, root: Path) -> int:
    from envbuild.aliases import point_alias
    from envbuild.ids import Alias, parse_env_ref
    from envbuild.materialise import find_descriptor, ref_archs

    target = parse_env_ref(args.alias)
    if not isinstance(target, Alias):
        raise EnvbuildError(
            f"envbuild alias: '{args.alias}' is an exact env reference: the second argument "
            "is the alias to set, NAME:TAG"
        )
    ref = _parse_ref(args.ref)
    store = open_ref_store(args.store, root)
    env, archs = ref_archs(store, ref)
    if not env:  # an exact reference: its env's name is in its descriptor
        env = find_descriptor(store, ref, next(iter(archs))).lock.name
    changed = point_alias(store, str(target), env, archs)
    state = "" if changed else " (already set)"
    print(f"alias {target} -> {env} ({', '.join(sorted(archs))}){state}")
    return 0


# --------------------------------------------------------------------------- get, show


def _get(args: argparse.Namespace, root: Path) -> int:
    from envbuild.materialise import ref_archs
    from envbuild.store.layout import descriptor_key

    ref = _parse_ref(args.ref)
    store = open_ref_store(args.store, root)
    _, archs = ref_archs(store, ref)
    arch = _pick_arch(ref, sorted(archs), args.arch)
    req_id, full_id = archs[arch].split(":", 1)
    key = descriptor_key(arch, req_id, full_id)
    data = store.get_bytes(key)
    from envbuild.descriptor import Descriptor

    descriptor = Descriptor.loads(data, f"{store.url}/{key}")
    if args.json:
        sys.stdout.write(data.decode("utf-8"))
        return 0
    print(f"descriptor {key} in {store.url}")
    print(_summary([descriptor.lock], archs))
    size = sum(f.size for f in descriptor.files)
    print(f"  install files ({len(descriptor.files)}, {size / 1e6:.1f} MB):")
    for file in sorted(descriptor.files, key=lambda f: (f.kind, f.name)):
        note = (
            f" (built from {file.built_from})"
            if file.built_from
            else f" (transmuted from {file.original_filename})"
            if file.original_filename
            else ""
        )
        print(f"    {file.name:<28} {file.filename}{note}")
    return 0


def _show(args: argparse.Namespace, root: Path) -> int:
    import json

    from envbuild.materialise import ref_archs

    ref = _parse_ref(args.ref)
    store = open_ref_store(args.store, root)
    _, archs = ref_archs(store, ref)
    descriptors = _descriptors(store, ref, archs, args.arch)
    locks = [d.lock for d in descriptors]
    if args.json:
        from envbuild.cli import show_json

        docs = [show_json(lock) for lock in locks]
        print(json.dumps(docs[0] if args.arch else docs, indent=2, sort_keys=True))
    else:
        print(_summary(locks, archs))
    return 0


def _summary(locks: Sequence[Lock], archs: dict[str, str]) -> str:
    """``envbuild show``'s readable summary of locks read from a store; the co-resolved id
    is printed when every arch of the reference is shown."""
    import dataclasses

    from envbuild.cli import show_text
    from envbuild.spec import Workspace

    spec = dataclasses.replace(locks[0].spec, archs=tuple(sorted(archs)))
    return show_text(Workspace(root=Path("."), envs=(spec,)), list(locks))
