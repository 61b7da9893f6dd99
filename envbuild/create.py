"""Environments on disk: link a lock's verified files into a prefix, atomically, and update it in place with the minimal change."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from envbuild.descriptor import InstallFile
from envbuild.errors import EnvbuildError
from envbuild.fs import make_dir_mode_default
from envbuild.lock import Lock
from envbuild.runner import Runner, run

log = logging.getLogger(__name__)
MARKER = ".envbuild-env.json"  # in the prefix, written last
Files = Sequence[tuple[InstallFile, Path]]
Verify = Callable[[Files], Files]  # re-checks files (every byte) right before they are linked


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
        installed, dropped = wheels_done or _sync_wheels(
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
            done = _sync_wheels(
                wheels, staging, lock, cache.parent / "wheels", check, python=_python(prefix)
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
            return f"{value.strip()}.".startswith(f"{want}.") and _python(prefix).exists()
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


def _python(prefix: Path) -> Path:
    return prefix / "bin" / "python"


INSTALLERS = ("envbuild", "uv")  # the INSTALLER of the dist-infos envbuild manages


def _installed_by_envbuild(site: Path) -> dict[str, Path]:
    """name -> dist-info of the PyPI distributions envbuild installed in ``site``."""
    from packaging.utils import canonicalize_name

    out: dict[str, Path] = {}
    for info in site.glob("*.dist-info"):
        try:
            if (info / "INSTALLER").read_text(encoding="utf-8").strip() not in INSTALLERS:
                continue
        except OSError:
            continue
        name, _, version = info.name[: -len(".dist-info")].partition("-")
        out[f"{canonicalize_name(name)}=={_normal(version)}"] = info
    return out


def _normal(version: str) -> str:
    from packaging.version import InvalidVersion, Version

    try:
        return str(Version(version))
    except InvalidVersion:
        return version


def _site_packages(lock: Lock, prefix: Path) -> tuple[Path, str]:
    """The env's site-packages and ``X.Y``, from the lock (the env's python is never run:
    it may be built for another machine, or be a stub)."""
    if not lock.python_version:
        raise CreateError(f"env '{lock.name}' has PyPI packages but no python in its lock")
    version = ".".join(lock.python_version.split(".")[:2])
    python = next((p for p in lock.packages if p.kind == "conda" and p.name == "python"), None)
    if python is not None and python.python_site_packages_path:
        return prefix / python.python_site_packages_path, version
    return prefix / "lib" / f"python{version}" / "site-packages", version


def _sync_wheels(
    wheels: Files,
    prefix: Path,
    lock: Lock,
    unpacked: Path,
    check: Verify = lambda chosen: chosen,
    redo: bool = False,
    python: Path | None = None,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Install the wheels not yet installed at their version, uninstall the ones the lock
    dropped; nothing else is touched (conda's own Python packages stay). ``redo``: the
    last run was interrupted, so every wheel is installed again (over any partial files).
    ``python``: the interpreter scripts name (default: the prefix's).

    Wheels are installed in-process with the ``installer`` library into the scheme the
    lock gives (``lib/pythonX.Y/site-packages``, ``bin``, shebangs naming ``PREFIX/bin/
    python``), never by running the env's python: it need not run on this machine (a stub,
    another arch), and the result is the same bytes on every machine (no installer cache
    paths or timestamps in the dist-infos)."""
    from packaging.utils import canonicalize_name, parse_wheel_filename

    if not wheels and not lock.python_version:
        return (), ()  # an env without python: no PyPI packages either
    site, version = _site_packages(lock, prefix)
    _finish_removals(prefix, site)
    have = _installed_by_envbuild(site)
    want: dict[str, tuple[InstallFile, Path]] = {}
    for file, path in wheels:
        name, ver, _, _ = parse_wheel_filename(file.filename)
        want[f"{canonicalize_name(name)}=={ver}"] = (file, path)
    drop = sorted(k for k in have if k not in want or redo)
    add = sorted(k for k in want if k not in have or redo)
    chosen = check([want[k] for k in add])
    for key in drop:
        _uninstall(prefix, site, have[key])
    for file, path in chosen:
        _install_wheel(
            path, file.sha256, prefix, site, version, unpacked, python or _python(prefix)
        )
    old = {k.split("==")[0]: k.split("==")[1] for k in have}
    new = {k.split("==")[0]: k.split("==")[1] for k in want}
    return _changes(add, old), tuple(f"{n} {v}" for n, v in sorted(old.items()) if n not in new)


def _changes(added: Sequence[str], before: dict[str, str]) -> tuple[str, ...]:
    """``name version`` of each package (re)installed, ``name old -> new`` for a change."""
    out = []
    for key in added:
        name, version = key.split("==")
        was = before.get(name)
        out.append(f"{name} {was} -> {version}" if was and was != version else f"{name} {version}")
    return tuple(out)


def _unpacked(wheel: Path, sha256: str, root: Path) -> Path:
    """The files of a (verified) wheel, extracted once into ``root/SHA256`` (a temp dir
    renamed into place: a killed extraction never looks done), to be hard-linked into
    every env that installs it, as rattler does with conda packages and uv with wheels."""
    import zipfile

    final = root / sha256
    if final.is_dir():
        return final
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{sha256[:16]}.", dir=root))
    try:
        with zipfile.ZipFile(wheel) as zf:
            for item in zf.infolist():
                if item.is_dir():
                    continue
                target = Path(os.path.normpath(tmp / item.filename))
                if tmp not in target.parents:
                    raise CreateError(f"{wheel.name}: a member outside the wheel: {item.filename}")
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(item) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
                os.chmod(target, 0o755 if (item.external_attr >> 16) & 0o111 else 0o644)
        make_dir_mode_default(tmp)
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.is_dir():  # not another process's copy that won the race
                raise
    except (OSError, zipfile.BadZipFile) as exc:
        raise CreateError(f"unpacking {wheel.name}: {exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _install_wheel(
    wheel: Path,
    sha256: str,
    prefix: Path,
    site: Path,
    version: str,
    unpacked_root: Path,
    python: Path,
) -> None:
    """Install one wheel with the ``installer`` library (its scheme mapping, entry-point
    scripts, RECORD), hard-linking its files from their unpacked copy (copying across
    file systems); scripts get the env's python in their shebang."""
    import base64
    import hashlib
    import stat
    import zipfile
    from typing import BinaryIO, cast

    from installer import install
    from installer.destinations import SchemeDictionaryDestination
    from installer.records import Hash, RecordEntry, parse_record_file
    from installer.sources import WheelContentElement, WheelFile
    from installer.utils import Scheme

    class Linkable:
        """In place of a member's stream: where its unpacked copy is, and its RECORD row."""

        def __init__(self, source: Path, record: tuple[str, str, str]) -> None:
            self.source, self.record = source, record

    class Source(WheelFile):
        def __init__(self, f: zipfile.ZipFile, unpacked: Path) -> None:
            super().__init__(f)
            self.unpacked = unpacked

        def get_contents(self) -> Iterator[WheelContentElement]:
            rows = parse_record_file(self.read_dist_info("RECORD").splitlines())
            records = {row[0]: row for row in rows}
            for item in self._zipfile.infolist():
                if item.filename.endswith("/"):
                    continue
                record = records.pop(item.filename, (item.filename, "", ""))
                mode = item.external_attr >> 16
                executable = bool(mode and stat.S_ISREG(mode) and mode & 0o111)
                linkable = Linkable(self.unpacked / item.filename, record)
                yield record, cast(BinaryIO, linkable), executable

    class Destination(SchemeDictionaryDestination):
        made: set[str]  # directories known to exist

        def write_to_fs(
            self, scheme: Scheme, path: str, stream: BinaryIO, is_executable: bool
        ) -> RecordEntry:
            # a file left by an interrupted run, or one a conda package links (a hard link
            # into rattler's cache: never write through it) is replaced, not overwritten
            self._path_with_destdir(scheme, path).unlink(missing_ok=True)
            return super().write_to_fs(scheme, path, stream, is_executable)

        def write_file(
            self, scheme: Scheme, path: str | os.PathLike[str], stream: BinaryIO,
            is_executable: bool,
        ) -> RecordEntry:  # fmt: skip
            member = cast(object, stream)
            if not isinstance(member, Linkable):  # metadata made here (INSTALLER)
                return super().write_file(scheme, path, stream, is_executable)
            if scheme == "scripts":  # its shebang is rewritten: a copy
                with member.source.open("rb") as fh:
                    return super().write_file(scheme, path, fh, is_executable)
            rel = os.fspath(path)
            base = self.scheme_dict[scheme]
            target = os.path.normpath(os.path.join(base, rel))
            if not target.startswith(base + os.sep):
                raise CreateError(f"{wheel.name}: {rel} is outside its {scheme} directory")
            folder = os.path.dirname(target)
            if folder not in self.made:
                os.makedirs(folder, exist_ok=True)
                self.made.add(folder)
            try:
                os.unlink(target)
            except FileNotFoundError:
                pass
            try:
                os.link(member.source, target)
            except OSError:  # another file system
                shutil.copy2(member.source, target)
            _, digest, size = member.record
            if digest and size:
                return RecordEntry(rel, Hash.parse(digest), int(size))
            data = Path(target).read_bytes()  # a wheel whose RECORD lacks the row: hash it
            sha = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            return RecordEntry(rel, Hash("sha256", sha.decode()), len(data))

    name = wheel.name.split("-")[0]
    scheme = {
        "purelib": str(site), "platlib": str(site), "scripts": str(prefix / "bin"),
        "headers": str(prefix / "include" / f"python{version}" / name), "data": str(prefix),
    }  # fmt: skip
    dest = Destination(scheme, interpreter=str(python), script_kind="posix",
                       overwrite_existing=True)  # fmt: skip
    dest.made = set()
    unpacked = _unpacked(wheel, sha256, unpacked_root)
    try:
        with zipfile.ZipFile(wheel) as zf:
            install(Source(zf, unpacked), dest, {"INSTALLER": b"envbuild\n"})
    except CreateError:
        raise
    except Exception as exc:  # installer's errors have no common base
        raise CreateError(f"installing {wheel.name} into {prefix}: {exc}") from None


def _uninstall(prefix: Path, site: Path, dist_info: Path) -> None:
    """Remove the files a dist-info's RECORD lists (with their bytecode), the dist-info,
    and the directories this leaves empty (never the prefix itself). The dist-info is first
    renamed to ``.NAME.dist-info.removing``: a removal killed half-way is finished by the
    next run (:func:`_finish_removals`), never left as files no dist-info owns."""
    trash = site / f".{dist_info.name}.removing"
    shutil.rmtree(trash, ignore_errors=True)
    os.rename(dist_info, trash)
    _remove_recorded(prefix, site, trash)


def _finish_removals(prefix: Path, site: Path) -> None:
    for trash in site.glob(".*.dist-info.removing"):
        _remove_recorded(prefix, site, trash)


def _remove_recorded(prefix: Path, site: Path, dist_info: Path) -> None:
    import csv

    try:
        with (dist_info / "RECORD").open(newline="", encoding="utf-8") as fh:
            rows = [row[0] for row in csv.reader(fh) if row]
    except OSError:
        rows = []
    dirs: set[Path] = set()
    for rel in rows:
        path = Path(os.path.normpath(site / rel))
        if prefix not in path.parents:
            continue
        if path.suffix == ".py":
            for pyc in (path.parent / "__pycache__").glob(f"{path.stem}.*.pyc"):
                pyc.unlink(missing_ok=True)
            dirs.add(path.parent / "__pycache__")
        path.unlink(missing_ok=True)
        dirs.add(path.parent)
    shutil.rmtree(dist_info, ignore_errors=True)
    for folder in sorted(dirs, key=lambda d: len(d.parts), reverse=True):
        while prefix in folder.parents and folder != site:
            try:
                folder.rmdir()
            except OSError:
                break
            folder = folder.parent


def _write(path: Path, text: str) -> None:
    from envbuild.fs import atomic_write

    atomic_write(path, text)
