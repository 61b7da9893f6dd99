"""Environments on disk: link a lock's verified files into a prefix, atomically, and update it in place with the minimal change."""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from envbuild.descriptor import InstallFile
from envbuild.errors import EnvbuildError
from envbuild.lock import Lock
from envbuild.runner import Runner, clean_env, run

log = logging.getLogger(__name__)
MARKER = ".envbuild-env.json"  # in the prefix, written last


class CreateError(EnvbuildError):
    """An environment could not be created or updated."""


@dataclass(frozen=True, slots=True)
class Created:
    """What a creation or update did."""

    prefix: Path
    conda_linked: tuple[str, ...] = ()  # conda packages linked (new or changed)
    conda_removed: tuple[str, ...] = ()
    wheels_installed: tuple[str, ...] = ()
    wheels_removed: tuple[str, ...] = ()
    fresh: bool = False  # a new prefix (not an update)

    def summary(self) -> str:
        if not (
            self.conda_linked or self.conda_removed or self.wheels_installed or self.wheels_removed
        ):
            return "up to date"
        parts = [
            f"{len(x)} {what}"
            for x, what in (
                (self.conda_linked, "conda linked"),
                (self.conda_removed, "conda removed"),
                (self.wheels_installed, "wheels installed"),
                (self.wheels_removed, "wheels removed"),
            )
            if x
        ]
        return ("created: " if self.fresh else "updated: ") + ", ".join(parts)


def marker(prefix: Path) -> dict[str, str] | None:
    """The env id the prefix was completed with, or None (absent: never completed, or an
    update was interrupted)."""
    try:
        data = json.loads((prefix / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_current(prefix: Path, lock: Lock) -> bool:
    """True when the prefix holds exactly this lock (its marker names the lock's ids)."""
    found = marker(prefix)
    return (
        found is not None
        and found.get("full_id") == lock.env_id.full_id
        and (found.get("req_id") == lock.env_id.req_id)
    )


@contextmanager
def prefix_lock(prefix: Path, lock_dir: Path) -> Iterator[None]:
    """An exclusive ``flock`` for ``prefix`` (a file in ``lock_dir`` named from its path): a
    second process creating the same env waits; the lock dies with its process, so no
    stale lock can block anyone."""
    import hashlib

    lock_dir.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha1(str(prefix).encode(), usedforsecurity=False).hexdigest()[:16]
    with open(lock_dir / f"{name}.lock", "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def create_env(
    lock: Lock,
    files: Sequence[tuple[InstallFile, Path]],
    prefix: Path,
    rattler_cache: Path,
    host_python: str | None = None,
    runner: Runner = run,
    lock_dir: Path | None = None,
) -> Created:
    """Make ``prefix`` hold exactly ``lock``, from verified local ``files`` (the install file
    of each package and its path). A new env is linked in a temp directory beside the
    prefix, with the final prefix embedded (rattler's ``alternative_target_prefix``), then
    renamed into place; an existing one is updated in place with rattler's installed-package
    diff and only the changed wheels. The marker is removed first and written last, so an
    interrupted run never looks complete and the next run finishes it.

    ``host_python``: for ``python-source = "host"`` envs, the interpreter to make a venv from.
    ``lock_dir``: where the per-prefix lock files live (default: the rattler cache's).
    """
    prefix = prefix.absolute()
    prefix.parent.mkdir(parents=True, exist_ok=True)
    with prefix_lock(prefix, lock_dir or rattler_cache.parent / "locks"):
        if is_current(prefix, lock):
            return Created(prefix)
        _clean_leftovers(prefix)
        conda = [(f, p) for f, p in files if f.kind == "conda"]
        wheels = [(f, p) for f, p in files if f.kind == "pypi"]
        fresh = not prefix.exists()
        (prefix / MARKER).unlink(missing_ok=True)
        linked: tuple[str, ...] = ()
        removed: tuple[str, ...] = ()
        if lock.python_source == "host":
            if not host_python:
                raise CreateError(
                    f"env '{lock.name}' uses a host python {lock.python_version}: none was "
                    "found on this machine: install it (pyenv, your OS packages)"
                )
            if not (prefix / "pyvenv.cfg").exists():
                shutil.rmtree(prefix, ignore_errors=True)
                runner([host_python, "-m", "venv", "--without-pip", str(prefix)], timeout=300)
        elif fresh:
            staging = Path(tempfile.mkdtemp(prefix=f".{prefix.name}.creating-", dir=prefix.parent))
            _link_conda(_records(lock, conda), staging, rattler_cache, alternative=prefix)
            os.rename(staging, prefix)
            linked = tuple(sorted(f.name for f, _ in conda))
        else:
            linked, removed = _update_conda(lock, conda, prefix, rattler_cache)
        installed, dropped = _sync_wheels(wheels, prefix, runner)
        done = {"env": lock.name, "arch": lock.env_id.arch, **lock.env_id.to_dict()}
        _write(prefix / MARKER, json.dumps(done, sort_keys=True) + "\n")
        return Created(prefix, linked, removed, installed, dropped, fresh)


def _clean_leftovers(prefix: Path) -> None:
    """Remove temp directories of creations killed before their rename."""
    for old in prefix.parent.glob(f".{prefix.name}.creating-*"):
        shutil.rmtree(old, ignore_errors=True)


def _records(lock: Lock, conda: Sequence[tuple[InstallFile, Path]]) -> list[object]:
    """RepoDataRecords of the lock's conda packages for their install files (a transmuted
    file replaces the locked one: its name, sha256 and size; its md5 is not known), with
    URLs pointing at the verified local files."""
    from rattler import RepoDataRecord

    from envbuild.resolve.conda import package_record

    by_name = {p.name: p for p in lock.packages if p.kind == "conda"}
    out: list[object] = []
    for file, path in conda:
        if file.name not in by_name:
            raise CreateError(f"{file.filename}: not a conda package of env '{lock.name}'")
        locked = by_name[file.name]
        record = package_record(locked)
        record.sha256 = bytes.fromhex(file.sha256)
        if file.original_filename:
            record.md5 = None
        record.size = file.size or path.stat().st_size
        channel = locked.channel if "://" in locked.channel else path.parent.as_uri()
        out.append(RepoDataRecord(record, file.filename, path.as_uri(), channel))
    return out


def _link_conda(
    records: list[object],
    target: Path,
    cache: Path,
    alternative: Path | None = None,
    installed: list[object] | None = None,
) -> None:
    import rattler

    cache.mkdir(parents=True, exist_ok=True)

    async def go() -> None:
        await rattler.install(
            records,  # type: ignore[arg-type]
            target_prefix=target,
            cache_dir=cache.absolute(),
            installed_packages=installed,  # type: ignore[arg-type]
            show_progress=False,
            alternative_target_prefix=alternative,
            execute_link_scripts=False,
        )

    try:
        asyncio.run(go())
    except Exception as exc:  # rattler's errors have no common base
        raise CreateError(f"linking conda packages into {alternative or target}: {exc}") from None


def _update_conda(
    lock: Lock, conda: Sequence[tuple[InstallFile, Path]], prefix: Path, cache: Path
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Link only what changed (rattler diffs against the prefix's conda-meta records)."""
    from rattler import PrefixRecord

    meta = prefix / "conda-meta"
    before = {}
    for path in meta.glob("*.json") if meta.is_dir() else []:
        try:
            record = PrefixRecord.from_path(path)
        except Exception:  # not a record (e.g. our own files)
            continue
        before[record.name.normalized] = str(record.file_name)
    wanted = {f.name: f.filename for f, _ in conda}
    _link_conda(_records(lock, conda), prefix, cache)
    linked = tuple(sorted(n for n, fn in wanted.items() if before.get(n) != fn))
    removed = tuple(sorted(set(before) - set(wanted)))
    return linked, removed


def _python(prefix: Path) -> Path:
    return prefix / "bin" / "python"


def _installed_by_envbuild(prefix: Path) -> dict[str, str]:
    """name -> version of the PyPI distributions envbuild (uv) installed in the prefix."""
    from packaging.utils import canonicalize_name

    out: dict[str, str] = {}
    for info in prefix.glob("lib/python*/site-packages/*.dist-info"):
        try:
            if (info / "INSTALLER").read_text(encoding="utf-8").strip() != "uv":
                continue
        except OSError:
            continue
        name, _, version = info.name[: -len(".dist-info")].partition("-")
        out[str(canonicalize_name(name))] = version
    return out


def _sync_wheels(
    wheels: Sequence[tuple[InstallFile, Path]], prefix: Path, runner: Runner
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Install the wheels not yet installed at their version, uninstall the ones the lock
    dropped; nothing else is touched (conda's own Python packages stay)."""
    from packaging.utils import canonicalize_name, parse_wheel_filename

    from envbuild.resolve.pypi import uv_binary

    have = _installed_by_envbuild(prefix)
    want: dict[str, tuple[str, Path]] = {}
    for file, path in wheels:
        name, version, _, _ = parse_wheel_filename(file.filename)
        want[str(canonicalize_name(name))] = (str(version), path)
    drop = sorted(n for n in have if n not in want or have[n] != want[n][0])
    add = sorted(n for n, (v, _) in want.items() if have.get(n) != v)
    if not (drop or add):
        return (), ()
    if not _python(prefix).exists():
        raise CreateError(f"{prefix}: has no python to install {', '.join(add)} into")
    uv = uv_binary()
    base = ["--python", str(_python(prefix)), "--no-config"]
    gone = [n for n in drop if n not in add]
    if gone:
        runner([uv, "pip", "uninstall", *base, *gone], env=clean_env(), timeout=600)
    if add:
        paths = [str(want[n][1]) for n in add]
        runner(
            [uv, "pip", "install", *base, "--no-deps", "--offline", "--no-index", "--reinstall",
             "--link-mode", "copy", *paths],
            env=clean_env(), timeout=1800,
        )  # fmt: skip
    return tuple(add), tuple(gone)


def _write(path: Path, text: str) -> None:
    from envbuild.fs import atomic_write

    atomic_write(path, text)
