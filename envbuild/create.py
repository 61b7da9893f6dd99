"""Environments on disk: link a lock's verified files into a prefix, atomically, and update it in place with the minimal change."""

from __future__ import annotations

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
from envbuild.errors import CreateError
from envbuild.fs import make_dir_mode_default
from envbuild.lock import Lock
from envbuild.runner import Runner, run
from envbuild.wheel_install import Files, Verify, python_of, sync_wheels

log = logging.getLogger(__name__)
MARKER = ".envbuild-env.json"  # in the prefix, written last


@dataclass(frozen=True, slots=True)
class Created:
    """What a creation or update did."""

    prefix: Path
    conda_linked: tuple[str, ...] = ()  # conda packages linked (new or changed)
    conda_removed: tuple[str, ...] = ()
    wheels_installed: tuple[str, ...] = ()
    wheels_removed: tuple[str, ...] = ()
    fresh: bool = False  # a new prefix (not an update)

    def summary(self, most: int = 12) -> str:
        """``created: N conda packages, M wheels``, or for an update what changed, by name
        (``updated: +pc 2.0, x 1.0 -> 2.0, -y 1.0 (pypi)``; at most ``most`` named)."""
        if not (
            self.conda_linked or self.conda_removed or self.wheels_installed or self.wheels_removed
        ):
            return "up to date"
        if self.fresh:
            counts = (
                (len(self.conda_linked), "conda package"),
                (len(self.wheels_installed), "wheel"),
            )
            return "created: " + ", ".join(f"{n} {what}{'s' * (n != 1)}" for n, what in counts if n)
        items = [
            f"{sign if '->' not in x else ''}{x}{where}"
            for xs, sign, where in (
                (self.conda_linked, "+", ""),
                (self.conda_removed, "-", ""),
                (self.wheels_installed, "+", " (pypi)"),
                (self.wheels_removed, "-", " (pypi)"),
            )
            for x in xs
        ]
        more = f", and {len(items) - most} more" if len(items) > most else ""
        return "updated: " + ", ".join(items[:most]) + more


def marker(prefix: Path) -> dict[str, object] | None:
    """What the prefix was completed with, or None (absent: never completed, or an update
    was interrupted): the env id and, under ``conda``, the sha256 of each conda package's
    install file by name."""
    try:
        data = json.loads((prefix / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _marker_shas(found: dict[str, object] | None) -> dict[str, str]:
    """The conda packages' install-file sha256 recorded in a marker (none in an old one)."""
    shas = (found or {}).get("conda")
    if not isinstance(shas, dict):
        return {}
    return {str(k): str(v) for k, v in shas.items()}


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


def check_creatable(arch: str, env: str = "") -> None:
    """Refuse an env for an arch envbuild locks but never creates (win-64: its layout,
    ``Library/`` and ``Scripts/``, is not linked here), with what to do instead."""
    from envbuild.platforms import os_of

    if os_of(arch) == "win":
        what = f"env '{env}' is for {arch}, a target" if env else f"{arch} is a target"
        raise CreateError(
            f"{what} for locks only: envbuild resolves, fetches, shows and exports {arch} "
            "envs, but creates envs on linux and macOS: install it on Windows from an export "
            f"(`envbuild export {env or 'ENV'} --arch {arch} --format conda-lock`)"
        )


def create_env(
    lock: Lock,
    files: Sequence[tuple[InstallFile, Path]],
    prefix: Path,
    rattler_cache: Path,
    host_python: str | None = None,
    runner: Runner = run,
    lock_dir: Path | None = None,
    verify: Verify | None = None,
) -> Created:
    """Make ``prefix`` hold exactly ``lock``, from verified local ``files`` (the install file
    of each package and its path). A new env is made in a temp directory beside the
    prefix, conda packages and wheels at once, with the final prefix embedded (rattler's
    ``alternative_target_prefix``, the scripts' shebangs), then renamed into place (a host
    env's venv is made in place: it is cheap to make again); an existing one is updated in place with rattler's installed-package
    diff and only the changed wheels. The marker is removed first and written last, so an
    interrupted run never looks complete and the next run finishes it.

    ``host_python``: for ``python-source = "host"`` envs, the interpreter to make a venv from.
    ``lock_dir``: where the per-prefix lock files live (default: the rattler cache's).
    ``verify``: called on the files about to be linked, and only those (an update links
    few), to check every byte first; without it, ``files`` are taken as verified.
    """
    check_creatable(lock.env_id.arch, lock.name)
    prefix = prefix.absolute()
    prefix.parent.mkdir(parents=True, exist_ok=True)
    with prefix_lock(prefix, lock_dir or rattler_cache.parent / "locks"):
        if is_current(prefix, lock):
            return Created(prefix)
        _clean_leftovers(prefix)
        check: Verify = verify or (lambda chosen: chosen)
        conda = [(f, p) for f, p in files if f.kind == "conda"]
        wheels = [(f, p) for f, p in files if f.kind == "pypi"]
        fresh = not prefix.exists()
        previous = None if fresh else marker(prefix)
        interrupted = not fresh and previous is None  # the last run did not finish
        (prefix / MARKER).unlink(missing_ok=True)
        linked: tuple[str, ...] = ()
        removed: tuple[str, ...] = ()
        wheels_done: tuple[tuple[str, ...], tuple[str, ...]] | None = None
        if lock.python_source == "host":
            if not host_python:
                raise CreateError(
                    f"env '{lock.name}' uses a host python {lock.python_version}: none was "
                    "found on this machine: install it (pyenv, your OS packages)"
                )
            if interrupted or not _venv_of(prefix, lock.python_version):  # made again: cheap
                shutil.rmtree(prefix, ignore_errors=True)
                runner([host_python, "-m", "venv", "--without-pip", str(prefix)], timeout=300)
                fresh, interrupted = True, False
        elif fresh:
            conda = list(check(conda))
            staging = Path(tempfile.mkdtemp(prefix=f".{prefix.name}.creating-", dir=prefix.parent))
            # mkdtemp made it 0700; this reads the umask (by setting it) before any thread
            # creates files, so that none is created while it is 0
            make_dir_mode_default(staging)
            try:
                wheels_done = _create_beside(
                    lock, conda, wheels, staging, prefix, rattler_cache, check
                )
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
            os.rename(staging, prefix)
            linked = tuple(sorted(f"{f.name} {_version(lock, f.name)}" for f, _ in conda))
        else:
            linked, removed = _update_conda(
                lock, conda, prefix, rattler_cache, check, _marker_shas(previous)
            )
        installed, dropped = wheels_done or sync_wheels(
            wheels, prefix, lock, rattler_cache.parent / "wheels", check, redo=interrupted
        )
        done = {
            "env": lock.name,
            "arch": lock.env_id.arch,
            **lock.env_id.to_dict(),
            "conda": {f.name: f.sha256 for f, _ in sorted(conda, key=lambda fp: fp[0].name)},
        }
        _write(prefix / MARKER, json.dumps(done, sort_keys=True) + "\n")
        return Created(prefix, linked, removed, installed, dropped, fresh)


def _create_beside(
    lock: Lock, conda: Files, wheels: Files, staging: Path, prefix: Path, cache: Path, check: Verify
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A new env in ``staging``: rattler links the conda packages (in a thread) while the
    wheels are installed (here); both embed ``prefix``, where ``staging`` goes next."""
    from concurrent.futures import ThreadPoolExecutor, wait

    records = _records(lock, conda)
    with ThreadPoolExecutor(1) as pool:
        linking = pool.submit(_link_conda, records, staging, cache, prefix, [])
        try:
            done = sync_wheels(
                wheels, staging, lock, cache.parent / "wheels", check, python=python_of(prefix)
            )
        except BaseException:
            wait([linking])
            raise
        linking.result()
    return done


def _clean_leftovers(prefix: Path) -> None:
    """Remove what killed runs leave: temp directories of creations killed before their
    rename, temp files of markers, and rattler's own temp files in a prefix it was
    updating (``conda-meta/prefix_record_*`` records not yet renamed, the ``symtest_*``
    symlink it probes the prefix with)."""
    for old in prefix.parent.glob(f".{prefix.name}.creating-*"):
        shutil.rmtree(old, ignore_errors=True)
    for tmp in prefix.glob(f".{MARKER}.*"):
        tmp.unlink(missing_ok=True)
    for tmp in prefix.glob("conda-meta/prefix_record_*"):
        if tmp.suffix != ".json":
            tmp.unlink(missing_ok=True)
    for link in prefix.glob("symtest_*"):
        if link.is_symlink() and os.readlink(link) == "./":
            link.unlink(missing_ok=True)


def _venv_of(prefix: Path, version: str) -> bool:
    """True when ``prefix`` is a venv of python ``X.Y`` (the lock's ``version``)."""
    want = ".".join(version.split(".")[:2])
    try:
        cfg = (prefix / "pyvenv.cfg").read_text(encoding="utf-8")
    except OSError:
        return False
    for line in cfg.splitlines():
        key, _, value = line.partition("=")
        if key.strip() in ("version", "version_info"):
            return f"{value.strip()}.".startswith(f"{want}.") and python_of(prefix).exists()
    return False


def _version(lock: Lock, name: str) -> str:
    return next((p.version for p in lock.packages if p.name == name and p.kind == "conda"), "")


def _records(lock: Lock, conda: Files) -> list[object]:
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
    import asyncio

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
    lock: Lock, conda: Files, prefix: Path, cache: Path, check: Verify, shas: dict[str, str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Link only what changed (rattler diffs against the prefix's conda-meta records, which
    it reads itself); ``check`` the files of the packages that are not installed as they
    are (all of them when python's version changes: rattler then links every ``noarch:
    python`` again). ``shas``: the install files the prefix was completed with, by name
    (from its marker); a package without one (an interrupted run, an old marker, a package
    another tool put there) is checked, and when there are no ``shas`` at all the
    records are read here and given to rattler."""
    meta = prefix / "conda-meta"
    before: dict[str, tuple[str, str]] = {}  # name -> (name-version-build, version)
    installed: list[object] | None = None
    if not shas:
        from rattler import PrefixRecord

        installed = []
        for path in meta.glob("*.json") if meta.is_dir() else []:
            try:
                record = PrefixRecord.from_path(path)
            except Exception:  # not a record (e.g. our own files)
                continue
            installed.append(record)
            before[record.name.normalized] = (_stem(str(record.file_name)), str(record.version))
            shas[record.name.normalized] = record.sha256.hex() if record.sha256 else ""
    else:  # conda-meta/NAME-VERSION-BUILD.json: a name may hold dashes, the others do not
        for path in meta.glob("*.json") if meta.is_dir() else []:
            parts = path.stem.rsplit("-", 2)
            if len(parts) == 3:
                before[parts[0]] = (path.stem, parts[1])
        shas = {n: sha for n, sha in shas.items() if n in before}
    wanted = {f.name: _stem(f.filename) for f, _ in conda}
    new_shas = {f.name: f.sha256 for f, _ in conda}
    python_moves = before.get("python", ("", ""))[1] != _version(lock, "python")
    stale = [
        (f, p)
        for f, p in conda
        if python_moves or shas.get(f.name) != f.sha256 or before[f.name][0] != wanted[f.name]
    ]
    checked = {f.name: p for f, p in check(stale)}
    conda = [(f, checked.get(f.name, p)) for f, p in conda]
    _link_conda(_records(lock, conda), prefix, cache, installed=installed)
    linked = tuple(
        f"{n} {before[n][1]} -> {_version(lock, n)}"
        if n in before and before[n][1] != _version(lock, n)
        else f"{n} {_version(lock, n)}"
        for n, stem in sorted(wanted.items())
        if before.get(n, ("",))[0] != stem or shas.get(n) != new_shas[n]
    )
    removed = tuple(f"{n} {before[n][1]}" for n in sorted(set(before) - set(wanted)))
    return linked, removed


def _stem(filename: str) -> str:
    """``name-version-build`` of a conda package file name."""
    for ext in (".conda", ".tar.bz2"):
        if filename.endswith(ext):
            return filename[: -len(ext)]
    return filename


def _write(path: Path, text: str) -> None:
    from envbuild.fs import atomic_write

    atomic_write(path, text)
