"""From a store to an env: the verified local files of a descriptor, bootstrap by reference, and offline bundles (a small store in a tar)."""

from __future__ import annotations

import io
import json
import logging
import tarfile
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from envbuild.artifacts.cache import PackageCache
from envbuild.create import Created, check_creatable, create_env
from envbuild.descriptor import Descriptor, InstallFile
from envbuild.errors import EnvbuildError
from envbuild.ids import Alias, ExactRef, parse_env_ref
from envbuild.lock import Lock
from envbuild.store import ObjectNotFoundError, Store
from envbuild.store.layout import descriptor_key

log = logging.getLogger(__name__)
BUNDLE_INDEX = "envbuild-bundle.json"  # in a bundle: which descriptor it holds


def local_files(
    files: Sequence[InstallFile], cache: PackageCache, store: Store | None, workers: int = 8
) -> list[tuple[InstallFile, Path]]:
    """Each install file as a verified file in ``cache``, pulled from ``store`` if needed."""

    def one(file: InstallFile) -> tuple[InstallFile, Path]:
        path = cache.get(file.sha256, file.filename, full=True)  # every byte, before linking
        if path is not None:
            return file, path
        if store is None:
            raise EnvbuildError(f"{file.filename} is not in the local cache and there is no store")
        pull = store.get_file
        return file, cache.bring(
            file.sha256, file.filename, lambda tmp: pull(file.key, tmp, file.sha256)
        )

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(files) or 1))) as pool:
        return list(pool.map(one, files))


def ref_archs(store: Store, ref: str) -> tuple[str, dict[str, str]]:
    """(env name, arch -> ``req_id:full_id``) of an env reference: an alias (what it points
    at) or an exact ``req_id:full_id`` (the one arch whose descriptor the store holds; its
    env name is ""). A bare full_id is refused (ambiguous); an unknown reference is an
    error naming the store."""
    from envbuild.aliases import read_alias_target
    from envbuild.platforms import ARCHS
    from envbuild.store.layout import descriptor_key as key

    parsed = parse_env_ref(ref)
    if isinstance(parsed, Alias):
        return read_alias_target(store, str(parsed))
    assert isinstance(parsed, ExactRef)
    keys = {arch: key(arch, parsed.req_id, parsed.full_id) for arch in ARCHS}
    absent = store.missing(keys.values())
    found = {arch: str(parsed) for arch, k in keys.items() if k not in absent}
    if not found:
        raise EnvbuildError(
            f"env {parsed} is not in {store.url}: check the reference, or publish it with "
            "`envbuild upload`"
        )
    return "", found


def find_descriptor(store: Store, ref: str, arch: str) -> Descriptor:
    """The descriptor an env reference names for ``arch``: an alias (``name:tag``) or an
    exact ``req_id:full_id``; a bare full_id is refused (ambiguous)."""
    from envbuild.aliases import read_alias

    parsed = parse_env_ref(ref)
    if isinstance(parsed, Alias):
        archs = read_alias(store, str(parsed))
        if arch not in archs:
            raise EnvbuildError(
                f"alias {parsed} has no env for {arch} (it has {', '.join(sorted(archs)) or 'none'})"
            )
        req_id, full_id = archs[arch].split(":", 1)
    else:
        assert isinstance(parsed, ExactRef)
        req_id, full_id = parsed.req_id, parsed.full_id
    key = descriptor_key(arch, req_id, full_id)
    try:
        data = store.get_bytes(key)
    except ObjectNotFoundError:
        if isinstance(parsed, Alias):
            raise EnvbuildError(
                f"alias {parsed} points at {req_id}:{full_id} for {arch}, whose descriptor is "
                f"not in {store.url}: upload the env again, or point the alias elsewhere"
            ) from None
        _, others = ref_archs(store, ref)  # raises when the env is nowhere in the store
        raise EnvbuildError(
            f"env {parsed} is for {', '.join(sorted(others))}, not {arch}"
        ) from None
    return Descriptor.loads(data, f"{store.url}/{key}")


def host_python_for(lock: Lock) -> str | None:
    """The host interpreter of a ``python-source = "host"`` env: None for other envs, or
    when this machine has none of its version (creation then says which is missing)."""
    if lock.python_source != "host":
        return None
    from envbuild.platforms import find_host_python

    major_minor = ".".join(lock.python_version.split(".")[:2])
    try:
        return find_host_python(f"{major_minor}.*")[0]
    except LookupError:
        return None


def create_from(
    descriptor: Descriptor,
    store: Store | None,
    prefix: Path,
    cache_dir: Path,
    host_python: str | None = None,
) -> Created:
    """Create (or update) the env of ``descriptor`` at ``prefix``: every file verified into
    the package cache below ``cache_dir`` (pulled from ``store`` when absent), then linked.
    ``host_python``: for a host-python env (default: one of the locked version, found on
    this machine)."""
    lock = descriptor.lock
    check_creatable(lock.env_id.arch, lock.name)  # before pulling any file
    cache = PackageCache(cache_dir / "pkgs")
    files = local_files(descriptor.files, cache, store)
    python = host_python or host_python_for(lock)
    return create_env(lock, files, prefix, cache_dir / "rattler", python)


def bootstrap(
    store: Store,
    ref: str,
    prefix: Path,
    cache_dir: Path,
    arch: str,
    host_python: str | None = None,
) -> Created:
    """Create the env ``ref`` names at ``prefix`` from the store alone (no workspace, no
    channels, no index): descriptor, then every file, verified."""
    descriptor = find_descriptor(store, ref, arch)
    return create_from(descriptor, store, prefix, cache_dir, host_python)


def pack(store: Store, descriptor: Descriptor, out: Path, cache: PackageCache | None = None) -> int:
    """Write an offline bundle: a tar laid out as a store holding the descriptor and every
    object it names (built wheels included), plus an index naming the descriptor. Returns
    the number of objects. Works for any arch from any host. The objects come verified
    through ``cache`` (pulled from ``store`` when absent, in parallel; default: a temporary
    cache). The file appears complete or not at all (written beside ``out``, then renamed)."""
    env = descriptor.lock.env_id
    key = descriptor_key(env.arch, env.req_id, env.full_id)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.part")
    try:
        with tempfile.TemporaryDirectory() as scratch:
            files = local_files(descriptor.files, cache or PackageCache(Path(scratch)), store)
            with tarfile.open(tmp, "w") as tar:
                for file, path in sorted(files, key=lambda fp: fp[0].key):
                    tar.add(path, arcname=file.key, filter=_normalise)
                _add_bytes(tar, key, descriptor.dumps())
                index = {"descriptor": key, "env": descriptor.lock.name, "arch": env.arch}
                _add_bytes(tar, BUNDLE_INDEX, json.dumps(index, sort_keys=True).encode())
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return len(descriptor.files)


def _normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.mtime, info.uid, info.gid, info.uname, info.gname, info.mode = 0, 0, 0, "", "", 0o644
    return info


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = _normalise(tarfile.TarInfo(name))
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def unpack(bundle: Path, into: Path) -> tuple[Store, str]:
    """Extract a bundle into a directory used as a LocalStore; returns it and the exact
    reference of the env it holds. Nothing is trusted yet: every object is verified against
    the descriptor's hashes when it is used."""
    from envbuild.store import LocalStore
    from envbuild.store.layout import ENVS

    if not bundle.is_file():
        raise EnvbuildError(f"{bundle}: no such bundle file")
    try:
        with tarfile.open(bundle) as tar:
            tar.extractall(into, filter="data")
        index = json.loads((into / BUNDLE_INDEX).read_text(encoding="utf-8"))
        top, arch, req_id, full_id = str(index["descriptor"]).split("/")
        descriptor_key(arch, req_id, full_id)  # validates the ids
        if top != ENVS:
            raise ValueError(f"descriptor key {index['descriptor']!r}")
    except tarfile.TarError:
        raise EnvbuildError(f"{bundle}: not an envbuild bundle (not a tar file)") from None
    except (OSError, ValueError, KeyError, TypeError, EnvbuildError) as exc:
        reason = " ".join(str(exc).split())
        raise EnvbuildError(f"{bundle}: not an envbuild bundle ({reason})") from None
    return LocalStore(into, str(bundle)), f"{req_id}:{full_id}"
