"""The build stage: a wheel for every lock entry that must be built, found in the store or the cache by its source identity, else built once."""

from __future__ import annotations

import contextlib
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from envbuild.descriptor import InstallFile
from envbuild.errors import EnvbuildError
from envbuild.fs import temp_dir
from envbuild.lock import Lock, LockedPackage

if TYPE_CHECKING:
    from envbuild.artifacts.stages import ArtifactContext

log = logging.getLogger(__name__)


def _source_key(pkg: LockedPackage) -> str:
    from envbuild.artifacts.build import source_key

    assert pkg.source is not None
    return source_key(pkg.source)


def _record(key: str) -> str:
    return f"built/{key}.json"


def _candidates(ctx: ArtifactContext, key: str) -> dict[str, str]:
    """filename -> sha256 of the wheels known for a source: built here, or in the store."""
    from envbuild.store.layout import parse_wheel_key, wheel_prefix

    found: dict[str, str] = {}
    for stored in ctx.store.list(wheel_prefix(key)):
        sha256, filename = parse_wheel_key(stored)
        found.setdefault(filename, sha256)
    local = ctx.cache.read_record(_record(key)) or {}
    for filename, digest in sorted(local.items()):
        found.setdefault(filename, str(digest))
    return found


def _pick(ctx: ArtifactContext, lock: Lock, candidates: dict[str, str]) -> str | None:
    from envbuild.artifacts.build import pick_wheel
    from envbuild.platforms import virtual_packages

    arch = lock.env_id.arch
    vps = virtual_packages(arch, dict(lock.spec.virtual_packages))
    return pick_wheel(sorted(candidates), arch, lock.python_version, vps)


def built_wheel(
    ctx: ArtifactContext, lock: Lock, pkg: LockedPackage
) -> tuple[InstallFile, Path | None]:
    """The wheel that installs ``pkg`` for the lock's arch, and its local path (None when
    only the store has it); an error when there is none yet."""
    from envbuild.store.layout import wheel_key

    key = _source_key(pkg)
    candidates = _candidates(ctx, key)
    filename = _pick(ctx, lock, candidates)
    if filename is None:
        raise EnvbuildError(
            f"{pkg.name} {pkg.version} has no wheel for {lock.env_id.arch} yet: run "
            f"`envbuild build arch={lock.env_id.arch}`"
        )
    sha256 = candidates[filename]
    path = ctx.cache.get(sha256, filename)
    size = path.stat().st_size if path else 0
    file = InstallFile("pypi", pkg.name, filename, sha256, size, wheel_key(key, sha256, filename),
                       built_from=pkg.source.identity if pkg.source else "")  # fmt: skip
    return file, path


def to_build(lock: Lock) -> list[LockedPackage]:
    return [p for p in lock.packages if p.kind == "pypi" and p.source is not None]


def built(ctx: ArtifactContext, lock: Lock) -> bool:
    """True when every entry to build has a wheel that fits the lock's arch."""
    try:
        return all(_pick(ctx, lock, _candidates(ctx, _source_key(p))) for p in to_build(lock))
    except EnvbuildError:
        return False


_SOURCE_LOCKS: dict[str, threading.Lock] = {}  # source key -> held while it is built
_SOURCE_LOCKS_GUARD = threading.Lock()


def _source_lock(key: str) -> threading.Lock:
    with _SOURCE_LOCKS_GUARD:
        return _SOURCE_LOCKS.setdefault(key, threading.Lock())


def build(ctx: ArtifactContext, lock: Lock) -> int:
    """Build what has no fitting wheel yet; returns how many wheels were built. A wheel
    that fits this host but not the lock's arch is kept (it serves this arch's envs) and
    the error names the arch of runner needed.

    The build subtasks of a run are threads: the sources of ``lock`` are held (in sorted
    order, so two subtasks cannot deadlock) while it builds, so that a source shared by
    several envs and archs is built once, and the others find its wheel."""
    with contextlib.ExitStack() as held:
        for key in sorted({_source_key(p) for p in to_build(lock)}):
            held.enter_context(_source_lock(key))
        return _build(ctx, lock)


def _build(ctx: ArtifactContext, lock: Lock) -> int:
    from envbuild.artifacts.build import (
        build_environment,
        build_python,
        build_wheel,
        check_buildable,
        check_wheel,
    )
    from envbuild.artifacts.cache import file_digests
    from envbuild.platforms import virtual_packages

    count = 0
    arch = lock.env_id.arch
    vps = virtual_packages(arch, dict(lock.spec.virtual_packages))
    for pkg in to_build(lock):
        assert pkg.source is not None
        key = _source_key(pkg)
        candidates = _candidates(ctx, key)
        if _pick(ctx, lock, candidates):
            continue
        check_buildable(
            pkg.name, pkg.version, sorted(candidates), arch=arch, host_arch=ctx.host_arch
        )
        sdist = None
        if pkg.source.url and pkg.source.kind in ("sdist", "archive"):
            sdist = ctx.cache.get(pkg.sha256, pkg.filename)
            if sdist is None:
                raise EnvbuildError(
                    f"{pkg.filename} is not in the cache: run `envbuild fetch` first"
                )
        python = build_python(lock.python_version, package=f"{pkg.name} {pkg.version}")
        index_args, index_env = _index_options(lock, ctx.credentials.pairs)
        with temp_dir(".build-", near=ctx.cache.root) as tmp:
            wheel = build_wheel(
                pkg.source, root=ctx.root, sdist=sdist, out_dir=Path(tmp), python=python,
                name=pkg.name, version=pkg.version, uv_args=index_args,
                env={**build_environment(arch, vps), **index_env},
            )  # fmt: skip
            sha256 = file_digests(wheel).sha256
            ctx.cache.add(wheel, sha256, wheel.name)
        record = dict(ctx.cache.read_record(_record(key)) or {})
        record[wheel.name] = sha256
        ctx.cache.record(_record(key), record)
        count += 1
        log.info("built %s for %s", wheel.name, pkg.name)
        check_wheel(pkg.name, pkg.version, wheel.name, arch=arch,
                    python_version=lock.python_version, virtual_packages=vps,
                    host_arch=ctx.host_arch)  # fmt: skip
    return count


def _index_options(
    lock: Lock, credentials: tuple[tuple[str, str], ...]
) -> tuple[list[str], dict[str, str]]:
    """(argv, environment) of uv's index options for build dependencies: the env's own
    indexes, their credentials (the workspace's, never the lock's) in the environment only,
    and git's logins for VCS sources."""
    import os

    from envbuild.credentials import git_credential_env, uv_index_options
    from envbuild.parsers import requirement_target

    # git logins for VCS sources: the lock's URLs have none, the workspace's may
    git = git_credential_env(requirement_target(secret) for _, secret in credentials)
    spec = lock.spec
    if spec.no_index:
        return ["--no-index"], git
    real = dict(credentials)
    args, env = uv_index_options(
        os.path.expandvars(real.get(spec.pypi_index, spec.pypi_index)),
        [os.path.expandvars(real.get(u, u)) for u in spec.extra_indexes],
    )
    return args, {**git, **env}
