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
from envbuild.create import Created, create_env
from envbuild.descriptor import Descriptor, InstallFile
from envbuild.errors import EnvbuildError
from envbuild.ids import Alias, ExactRef, parse_env_ref
from envbuild.store import Store
from envbuild.store.layout import descriptor_dir, descriptor_key

log = logging.getLogger(__name__)
BUNDLE_INDEX = "envbuild-bundle.json"  # in a bundle: which descriptor it holds


def local_files(
    files: Sequence[InstallFile], cache: PackageCache, store: Store | None, workers: int = 8
) -> list[tuple[InstallFile, Path]]:
    """Each install file as a verified file in ``cache``, pulled from ``store`` if needed."""

    def one(file: InstallFile) -> tuple[InstallFile, Path]:
        path = cache.get(file.sha256, file.filename)
        if path is not None:
            return file, path
        if store is None:
            raise EnvbuildError(f"{file.filename} is not in the local cache and there is no store")
        final = cache.path(file.sha256, file.filename)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(f".{final.name}.store")
        try:
            store.get_file(file.key, tmp, file.sha256)
            return file, cache.adopt(tmp, file.sha256, file.filename)
        finally:
            tmp.unlink(missing_ok=True)

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(files) or 1))) as pool:
        return list(pool.map(one, files))


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
        if not store.list(descriptor_dir(arch, req_id)):
            raise EnvbuildError(f"{ref}: no env for {arch} in {store.url}")
    key = descriptor_key(arch, req_id, full_id)
    return Descriptor.loads(store.get_bytes(key), f"{store.url}/{key}")


def bootstrap(
    store: Store, ref: str, prefix: Path, cache_dir: Path, arch: str, host_python: str | None
) -> Created:
    """Create the env ``ref`` names at ``prefix`` from the store alone (no workspace, no
    channels, no index): descriptor, then every file, verified."""
    descriptor = find_descriptor(store, ref, arch)
    cache = PackageCache(cache_dir / "pkgs")
    files = local_files(descriptor.files, cache, store)
    return create_env(descriptor.lock, files, prefix, cache_dir / "rattler", host_python)


def pack(store: Store, descriptor: Descriptor, out: Path) -> int:
    """Write an offline bundle: a tar laid out as a store holding the descriptor and every
    object it names (built wheels included), plus an index naming the descriptor. Returns
    the number of objects. Works for any arch from any host."""
    env = descriptor.lock.env_id
    key = descriptor_key(env.arch, env.req_id, env.full_id)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.part")
    with tempfile.TemporaryDirectory() as scratch, tarfile.open(tmp, "w") as tar:
        for file in descriptor.files:
            local = Path(scratch) / "obj"
            store.get_file(file.key, local, file.sha256)  # verified on the way in
            tar.add(local, arcname=file.key, filter=_normalise)
            local.unlink()
        _add_bytes(tar, key, descriptor.dumps())
        index = {"descriptor": key, "env": descriptor.lock.name, "arch": env.arch}
        _add_bytes(tar, BUNDLE_INDEX, json.dumps(index, sort_keys=True).encode())
    tmp.replace(out)
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
    reference of the env it holds."""
    from envbuild.store import LocalStore

    try:
        with tarfile.open(bundle) as tar:
            tar.extractall(into, filter="data")
        index = json.loads((into / BUNDLE_INDEX).read_text(encoding="utf-8"))
    except (OSError, tarfile.TarError, ValueError) as exc:
        raise EnvbuildError(f"{bundle}: not an envbuild bundle ({exc})") from None
    _, _, req_id, full_id = str(index["descriptor"]).split("/")
    return LocalStore(into), f"{req_id}:{full_id}"
