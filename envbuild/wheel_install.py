"""PyPI wheels into a prefix: installed in-process with ``installer``, hard-linked from an unpacked copy, removed by their RECORD."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from envbuild.descriptor import InstallFile
from envbuild.errors import CreateError
from envbuild.fs import make_dir_mode_default, make_executable
from envbuild.lock import Lock

Files = Sequence[tuple[InstallFile, Path]]
Verify = Callable[[Files], Files]  # re-checks files (every byte) right before they are linked


def python_of(prefix: Path) -> Path:
    """The python of an env's ``prefix`` (what its scripts' shebangs name)."""
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


def sync_wheels(
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
            path, file.sha256, prefix, site, version, unpacked, python or python_of(prefix)
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
            target = self._path_with_destdir(scheme, path)
            target.unlink(missing_ok=True)
            entry = super().write_to_fs(scheme, path, stream, False)
            if is_executable:  # not installer's chmod: it reads the umask by setting it to 0,
                # and rattler, linking in another thread meanwhile, would then make
                # world-writable directories and files
                make_executable(target)
            return entry

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
