"""The ``envbuild`` command: embeds doit (every doit command works) and adds show and export."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from envbuild import __version__
from envbuild.channels import channel_url
from envbuild.errors import EnvbuildError, SpecError, format_error
from envbuild.ids import coresolved_id
from envbuild.lock import Lock, read_lock
from envbuild.spec import Workspace, load_workspace

OWN_COMMANDS = ("show", "export")


def _print_err(message: str) -> None:
    sys.stderr.write(format_error(message))


def _print_error(exc: EnvbuildError) -> None:
    """One ``envbuild: error:`` line per problem (a SpecError holds several)."""
    for problem in exc.problems if isinstance(exc, SpecError) else [str(exc)]:
        _print_err(problem)


def _locks(
    ws: Workspace, env: str, arch: str | None, missing: list[str] | None = None
) -> list[Lock]:
    """The locks of ``env`` (of ``arch``, or of every arch it targets). A missing lock is an
    error naming the command that writes it; given a ``missing`` list, the locks that exist
    are returned, and each missing one is reported on stderr and added to the list."""
    from envbuild.clihelp import nearest
    from envbuild.errors import LockError

    spec = ws.env(env)
    if arch and arch not in spec.archs:
        raise EnvbuildError(
            f"env '{env}' is not resolved for {arch}{nearest(arch, spec.archs)}: its archs are "
            f"{', '.join(spec.archs)} (set archs in [env.{env}] of envbuild.toml to add one)"
        )
    out = []
    for a in [arch] if arch else list(spec.archs):
        path = ws.lock_path(env, a)
        if not path.exists():
            rel = path.relative_to(ws.root) if path.is_relative_to(ws.root) else path
            error = LockError(
                f"{rel}: no lockfile: run `envbuild resolve env={env} arch={a}` first"
            )
            if missing is None:
                raise error
            _print_err(str(error))
            missing.append(str(rel))
            continue
        out.append(read_lock(path))
    return out


def show_json(lock: Lock) -> dict[str, object]:
    """The ``show --json`` document of one lock."""
    return {
        "env": lock.name,
        "kind": lock.kind,
        "env_id": lock.env_id.to_dict(),
        "packages": [
            {
                "name": p.name,
                "version": p.version,
                "build": p.build,
                "kind": p.kind,
                "url": p.url,
                "filename": p.filename,
                "sha256": p.sha256,
                "md5": p.md5,
                **(
                    {"needs_build": True, "source": p.source.to_dict()}
                    if p.source is not None
                    else {}
                ),
            }
            for p in lock.packages
        ],
    }


def show_text(ws: Workspace, locks: list[Lock]) -> str:
    out = []
    for lock in locks:
        spec = lock.spec
        out.append(f"env {lock.name} [{lock.env_id.arch}] ({lock.kind})")
        if lock.python_version:
            out.append(f"  python   {lock.python_version} (from {lock.python_source})")
        out.append(f"  req_id   {lock.env_id.req_id}")
        out.append(f"  full_id  {lock.env_id.full_id}")
        out.append(f"  channels {', '.join(spec.channels) or '-'}")
        asked = spec.conda_specs(lock.env_id.arch) + [d.value for d in spec.pypi]
        out.append(f"  requested {', '.join(asked) or '-'}")
        conda = [p for p in lock.packages if p.kind == "conda"]
        pypi = [p for p in lock.packages if p.kind == "pypi"]
        out.append(f"  conda packages ({len(conda)}):")
        out += [f"    {p.name:<28} {p.version:<14} {p.build:<24} {p.subdir}" for p in conda]
        if pypi:
            out.append(f"  pypi packages ({len(pypi)}):")
            out += [
                f"    {p.name:<28} {p.version:<14} "
                + (f"needs build: {p.source.identity}" if p.source else p.filename)
                for p in pypi
            ]
    if locks:
        spec = ws.env(locks[0].name)
        present = {lock.env_id.arch: lock.env_id.full_id for lock in locks}
        if len(spec.archs) > 1 and set(spec.archs) <= set(present):
            out.append(f"co-resolved id ({', '.join(spec.archs)}): {coresolved_id(present)}")
    return "\n".join(out)


def _own_command(argv: Sequence[str], root: Path) -> int:
    import argparse

    class Parser(argparse.ArgumentParser):
        def error(self, message: str) -> NoReturn:  # one line, exit 2, no usage dump
            raise EnvbuildError(f"{self.prog}: {message} (see {self.prog} --help)")

    parser = Parser(prog="envbuild")
    sub = parser.add_subparsers(dest="cmd", required=True, parser_class=Parser)
    p_show = sub.add_parser("show", help="show a resolved env (its lock)")
    p_show.add_argument("env")
    p_show.add_argument("--arch")
    p_show.add_argument("--json", action="store_true")
    p_exp = sub.add_parser("export", help="export a lock to another tool's format")
    p_exp.add_argument("env")
    p_exp.add_argument("--arch")
    p_exp.add_argument(
        "--format", required=True, choices=("conda-lock", "explicit", "requirements", "pylock")
    )
    p_exp.add_argument("-o", "--output", required=True)
    args = parser.parse_args(argv)
    ws = load_workspace(root)

    if args.cmd == "show":
        missing: list[str] = []
        locks = _locks(ws, args.env, args.arch, missing)
        if locks and args.json:
            docs = [show_json(lock) for lock in locks]
            print(json.dumps(docs[0] if args.arch else docs, indent=2, sort_keys=True))
        elif locks:
            print(show_text(ws, locks))
        return 2 if missing else 0
    from envbuild.exports import ONE_ARCH, localize, to_conda_lock, to_pylock, to_requirements

    if args.format in ONE_ARCH:  # explicit, requirements, pylock
        what, exporter = ONE_ARCH[args.format]
        if not args.arch and len(ws.env(args.env).archs) > 1:
            raise EnvbuildError(f"{what} holds one arch: pass --arch")
        lock = localize(_locks(ws, args.env, args.arch)[0], ws.root)
        if args.format in ("requirements", "pylock"):
            # relative paths in the file are read relative to it: the workspace seen from there
            out_dir = Path(args.output).resolve().parent
            base = os.path.relpath(ws.root.resolve(), out_dir)
            text = (to_requirements if args.format == "requirements" else to_pylock)(lock, base)
        else:
            text = exporter(lock)
    else:
        spec = ws.env(args.env)
        local = {name: ws.local_channel_dir(name) for name, _ in ws.local_channels}
        urls = [channel_url(c, ws.root, local) for c in spec.channels]
        text = to_conda_lock([localize(x, ws.root) for x in _locks(ws, args.env, args.arch)], urls)
    _write_output(args.output, text)
    return 0


def _write_output(output: str, text: str) -> None:
    """``-o -`` is stdout; a device or pipe (``/dev/stdout``) is written as it is; a file is
    replaced atomically."""
    import stat

    from envbuild.fs import atomic_write

    if output == "-":
        sys.stdout.write(text)
        return
    path = Path(output)
    try:
        special = not stat.S_ISREG(path.stat().st_mode)
    except OSError:
        special = False
    if special:
        with path.open("w", encoding="utf-8") as out:
            out.write(text)
        return
    try:
        atomic_write(path, text)
    except OSError as exc:
        raise EnvbuildError(
            f"{output}: cannot write ({exc.strerror or exc}): choose another -o"
        ) from None


def _resolve_options(args: list[str]) -> tuple[list[str], bool, bool]:
    """Take envbuild's own options of ``resolve`` out of doit's argv: ``--check``,
    ``--json`` and ``--update [NAME,...]`` (which becomes doit's ``update=`` variable).
    Returns (argv for doit, check, json)."""
    if "resolve" not in args[:1] and not (args and args[0].startswith("resolve:")):
        return args, False, False
    out: list[str] = []
    check = as_json = False
    rest = iter(range(len(args)))
    for i in rest:
        arg = args[i]
        if arg == "--check":
            check = True
        elif arg == "--json":
            as_json = True
        elif arg.startswith("--update="):
            out.append(f"update={arg.removeprefix('--update=') or ':all:'}")
        elif arg == "--update":
            following = args[i + 1] if i + 1 < len(args) else ""
            if following and not following.startswith("-") and not set("=:") & set(following):
                out.append(f"update={following}")
                next(rest)
            else:
                out.append("update=:all:")
        else:
            out.append(arg)
    return out, check, as_json


def _alias_option(args: list[str]) -> tuple[list[str], str]:
    """Take ``--alias NAME:TAG`` out of an ``upload`` run's argv."""
    if "--alias" not in args and not any(a.startswith("--alias=") for a in args):
        return args, ""
    out, alias = [], ""
    items = iter(args)
    for arg in items:
        if arg == "--alias":
            alias = next(items, "")
        elif arg.startswith("--alias="):
            alias = arg.removeprefix("--alias=")
        else:
            out.append(arg)
    if "upload" not in out:
        raise EnvbuildError("--alias goes with the upload task: envbuild upload --alias NAME:TAG")
    if not alias:
        raise EnvbuildError("--alias needs a value: --alias NAME:TAG (e.g. team/app:latest)")
    from envbuild.ids import parse_env_ref

    parse_env_ref(alias)  # validates the name and tag (one line per problem)
    return out, alias


def set_workspace_alias(root: Path, args: list[str], alias: str) -> None:
    """After a successful upload: point ``alias`` at the env the run uploaded (the one env
    of ``env=`` or of the workspace), over the archs selected."""
    from envbuild.aliases import set_alias
    from envbuild.artifacts.stages import artifact_context
    from envbuild.resolve.stage import split_names

    ws = load_workspace(root.resolve())
    variables = dict(a.split("=", 1) for a in args if "=" in a and not a.startswith("-"))
    envs = split_names(variables.get("env")) or {e.name for e in ws.envs}
    if len(envs) != 1:
        raise EnvbuildError(
            f"--alias {alias} names one env, and this run uploaded {len(envs)}: add env=NAME"
        )
    (env,) = envs
    archs = split_names(variables.get("arch"))
    locks = _locks(ws, env, None)
    locks = [x for x in locks if not archs or x.env_id.arch in archs]
    set_alias(artifact_context(ws).store, alias, locks)
    print(f"alias {alias} -> {env} ({', '.join(x.env_id.arch for x in locks)})")


def run_check(root: Path, args: list[str], as_json: bool) -> int:
    """``envbuild resolve --check``: list every lock that is not current, with the reason;
    writes nothing. Exit 1 when any lock is missing, stale, damaged or orphaned."""
    from envbuild.fs import HashCache
    from envbuild.resolve.stage import lock_status, orphans, resolve_tasks, split_names

    ws = load_workspace(root.resolve())
    variables = dict(a.split("=", 1) for a in args if "=" in a and not a.startswith("-"))
    envs, archs = split_names(variables.get("env")), split_names(variables.get("arch"))
    hasher = HashCache(ws.state_dir / "cache" / "hashes.json")  # read, never saved here
    statuses = [lock_status(task, hasher.tree) for task in resolve_tasks(ws, envs, archs)]
    if not envs and not archs:
        statuses += orphans(ws)
    bad = [s for s in statuses if not s.current]
    if as_json:
        doc = {"current": not bad, "locks": [s.to_dict() for s in statuses]}
        print(json.dumps(doc, indent=2, sort_keys=True))
    else:
        for status in bad:
            print(status.line())
        current = len(statuses) - len(bad)
        print(f"{current} lock{'s' * (current != 1)} current, {len(bad)} not current")
    return 1 if bad else 0


def _setup_logging() -> None:
    """``ENVBUILD_LOG`` sets the level (default WARNING); what a run changed (the
    ``envbuild.report`` logger) goes to stderr as plain lines."""
    logging.basicConfig(
        level=os.environ.get("ENVBUILD_LOG", "WARNING").upper(),
        format="%(levelname)s %(name)s: %(message)s",
    )
    report = logging.getLogger("envbuild.report")
    if not report.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        report.addHandler(handler)
        report.setLevel(logging.INFO)
        report.propagate = False


def _verbose_option(args: list[str]) -> tuple[list[str], bool]:
    """Take ``-v`` / ``--verbose`` (per-task lines) out of argv; doit's own ``-v N``
    (``--verbosity``) stays, and also gives per-task lines."""
    out, verbose = [], False
    for i, arg in enumerate(args):
        following = args[i + 1] if i + 1 < len(args) else ""
        if arg == "--verbose" or (arg == "-v" and not following.isdigit()):
            verbose = True
        else:
            out.append(arg)
    return out, verbose


def _continue_option(args: list[str]) -> list[str]:
    """Take ``--continue`` (doit's keep-going switch) out of argv wherever it stands:
    envbuild always keeps going (one failing env x arch does not stop the others), and
    after a task name doit would read it as a task option and fail."""
    return [arg for arg in args if arg != "--continue"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point. ``-C DIR`` picks the workspace (default: the current directory).
    Exit codes: 0 done, 1 ``resolve --check`` found locks not current, 2 user errors (one
    line per problem on stderr), 130 interrupted, 141 stdout closed early."""
    args = list(sys.argv[1:] if argv is None else argv)
    _setup_logging()
    root = Path(".")
    if args[:1] == ["-C"] and len(args) > 1:
        root, args = Path(args[1]), args[2:]
    args, verbose = _verbose_option(_continue_option(args))
    if args[:1] == ["--version"]:
        print(f"envbuild {__version__}")
        return 0
    try:
        if args in (["--help"], ["-h"], ["help"]):
            from envbuild.clihelp import help_text

            print(help_text(__version__), end="")
            return 0
        return _main(args, root, verbose)
    except EnvbuildError as exc:
        _print_error(exc)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        return _interrupted(isinstance(exc, Terminated))
    except BrokenPipeError:
        return _stdout_closed()
    finally:
        from envbuild.fs import remove_own_temp

        remove_own_temp()


def _main(args: list[str], root: Path, verbose: bool) -> int:
    from envbuild.commands import dispatch

    # create REF / --from-bundle, pack, alias, get, show REF: envbuild/commands.py
    if (done := dispatch(args, root)) is not None:
        return done
    if args[:1] and args[0] in OWN_COMMANDS:
        return _own_command(args, root)
    args, check, as_json = _resolve_options(args)
    if check:
        return run_check(root, args, as_json)
    args, alias = _alias_option(args)
    code = _run_doit(args, root, verbose)
    if code == 0 and alias:
        set_workspace_alias(root, args, alias)
    return code


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C's KeyboardInterrupt."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


def _interrupted(terminated: bool = False) -> int:
    """Ctrl-C (or SIGTERM): stop the children (their process groups), say so on one line;
    exit 130 (143). envbuild's temp dirs go in :func:`main`'s ``finally``."""
    from envbuild.runner import stop_children

    stop_children()
    sys.stderr.write(f"\nenvbuild: {'terminated' if terminated else 'interrupted'}\n")
    return 143 if terminated else 130


def _stdout_closed() -> int:
    """stdout was closed early (``envbuild show x | head -1``): stop quietly, as a program
    killed by SIGPIPE would, with no error at exit."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return 141


def _import_doit_plugins_without_metadata() -> None:
    """Import ``doit.plugin`` so that it costs no ``importlib.metadata`` import (~15 ms:
    email, zipfile, csv), and turn off doit's entry-point plugin scan (~20 ms more).

    envbuild's doit takes no third-party plugins from entry points, so doit's only use of
    ``importlib.metadata`` is dead here. While ``doit.plugin`` is imported, its
    ``from importlib.metadata import entry_points`` gets a stand-in that loads the real
    module if it is ever called; the stand-in is then removed so that any later import of
    ``importlib.metadata`` gets the real module.
    """
    import types

    if "doit.plugin" not in sys.modules and "importlib.metadata" not in sys.modules:
        stand_in = types.ModuleType("importlib.metadata")

        def entry_points(*args: object, **kwargs: object) -> object:
            sys.modules.pop("importlib.metadata", None)
            import importlib.metadata

            return importlib.metadata.entry_points(*args, **kwargs)

        stand_in.entry_points = entry_points  # type: ignore[attr-defined]
        sys.modules["importlib.metadata"] = stand_in
        try:
            import doit.plugin
        finally:
            if sys.modules.get("importlib.metadata") is stand_in:
                del sys.modules["importlib.metadata"]
    import doit.plugin

    doit.plugin.entry_points_impl = lambda: lambda group: []


def _run_doit(args: list[str], root: Path, verbose: bool = False) -> int:
    _import_doit_plugins_without_metadata()
    from doit.doit_cmd import DoitMain

    from envbuild import tasks
    from envbuild.clihelp import DoitErrors, check_command, check_filters
    from envbuild.platforms import ARCHS

    check_command(args, tasks.STAGES)
    preloaded = None
    if args[:1] != ["help"] and "--help" not in args:
        preloaded = load_workspace(root.resolve())  # user errors: one line, exit 2
        names = [e.name for e in preloaded.envs]
        check_filters(args, names, ARCHS, "envbuild.toml")
        if _runs_tasks(args):
            from envbuild.fs import remove_stale_temp, set_temp_root
            from envbuild.localchannel import load_recipes
            from envbuild.readonly import read_only_run

            for _, rdir in preloaded.local_channels:  # recipe errors: one line each, exit 2
                load_recipes(preloaded.root / rdir)
            if (code := read_only_run(preloaded, args)) is not None:
                return code
            remove_stale_temp(preloaded.state_dir / "tmp")  # left by killed runs
            set_temp_root(preloaded.state_dir / "tmp")
    tasks.FAILURES.clear()
    loader = tasks.task_loader(root, preloaded, verbose=verbose or _doit_verbosity(args))
    main = DoitMain(loader, config_filenames=())
    main.BIN_NAME = "envbuild"
    with DoitErrors() as errors:
        code = main.run(args)
    if code == 3 and errors.seen:  # doit's own usage errors are user errors too
        code = 2
    if tasks.FAILURES:  # user errors, already reported on stderr
        return 2
    return int(code or 0)


def _doit_verbosity(args: list[str]) -> bool:
    return any(a.startswith("--verbosity") for a in args) or any(a == "-v" for a in args)


def _runs_tasks(args: list[str]) -> bool:
    """True when doit will run tasks (no command, ``run``, or task names first)."""
    first = next((a for a in args if not a.startswith("-") and "=" not in a), None)
    from envbuild.clihelp import DOIT_COMMANDS

    return first is None or first == "run" or first not in DOIT_COMMANDS


def entry() -> None:
    """Console-script entry: run :func:`main`, then leave without interpreter teardown.

    py-rattler 0.28 sometimes segfaults or aborts while the interpreter finalises after a
    solve (about 1 run in 10 in a bare script here); every result is already written and
    flushed at this point, so exiting directly keeps the exit code true.
    """
    import signal

    signal.signal(signal.SIGTERM, _on_sigterm)
    code = main()
    logging.shutdown()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        code = code or _stdout_closed()
    try:
        sys.stderr.flush()
    except OSError:
        pass
    os._exit(code)


if __name__ == "__main__":
    entry()
