"""Filesystem helpers: atomic writes (temp file + rename) so a half-finished run never looks finished, and content hashes of local trees (cached by stat signature)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

FileDigest = Callable[[str], bytes]  # the sha256 digest of one file's content


def read_utf8(path: Path, shown: str) -> str:
    """The text of ``path``, which must be UTF-8 (a leading BOM is kept for the parser);
    otherwise a SpecError naming ``shown`` and the line of the first bad byte."""
    from envbuild.errors import SpecError

    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SpecError(
            [
                f"{shown}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at column "
                f"{column}): save the file as UTF-8"
            ]
        ) from None


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` through a temp file + rename; skip when content is identical.

    A killed process leaves either the old file or the new one, never a partial file. (No
    fsync: locks are reproducible from their inputs, so surviving power loss is not worth
    a disk flush per lock.)"""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        if path.read_bytes() == raw:
            return
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual file mode
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


_UMASK: list[int] = []
_UMASK_LOCK = threading.Lock()


def _umask() -> int:
    """The process umask, read once: reading it means setting it, and two threads doing
    that at once could leave the process with a umask of 0."""
    with _UMASK_LOCK:
        if not _UMASK:
            _UMASK.append(_read_umask())
        return _UMASK[0]


def _read_umask() -> int:
    """Linux says the umask in /proc without changing it (another thread creating a file
    meanwhile would get mode 0777 from the set-and-restore dance, the fallback)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


def make_executable(path: Path) -> None:
    """Give a file the usual executable mode for the umask (read without changing it)."""
    os.chmod(path, 0o777 & ~_umask() | 0o111)


def make_dir_mode_default(path: Path) -> None:
    """Give a directory made by ``tempfile.mkdtemp`` (0700) the usual mode for the umask."""
    os.chmod(path, 0o777 & ~_umask())


# Directories (or files) of these names are not part of a source tree's identity.
_SKIP = frozenset({".git", ".hg", ".svn", "__pycache__", "build", "dist", ".venv", ".tox"})


def _tree_files(root: Path) -> Iterator[tuple[str, os.DirEntry[str]]]:
    """(relative posix path, entry) of the files :func:`tree_hash` reads, in its order: regular
    files and symlinks to files, not under a skipped name (symlinked directories are not
    followed; a file named ``*.egg-info`` is skipped)."""

    def entries(
        directory: str, prefix: tuple[str, ...]
    ) -> Iterator[tuple[tuple[str, ...], os.DirEntry[str]]]:
        try:
            with os.scandir(directory) as it:
                found = list(it)
        except (FileNotFoundError, NotADirectoryError):
            return
        for entry in found:
            if entry.name in _SKIP:
                continue
            parts = (*prefix, entry.name)
            try:
                if entry.is_dir(follow_symlinks=False):
                    yield from entries(entry.path, parts)
                elif entry.is_file() and not entry.name.endswith(".egg-info"):
                    yield parts, entry
            except FileNotFoundError:
                continue  # gone while walking

    # sorted by path parts, like pathlib's Path ordering ("a/b" before "a-c")
    for parts, entry in sorted(entries(str(root), ()), key=lambda item: item[0]):
        yield "/".join(parts), entry


def _file_digest(path: str) -> bytes:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").digest()


def tree_hash(path: Path) -> str:
    """sha256 over a source tree's files (sorted relative paths and contents; VCS and
    build directories skipped): the identity of a local directory to build. For a file,
    the sha256 of its content."""
    return _tree_hash(path, _file_digest)


def _tree_hash(path: Path, file_digest: FileDigest) -> str:
    if path.is_file():
        return file_digest(str(path)).hex()
    digest = hashlib.sha256()
    for rel, entry in _tree_files(path):
        digest.update(rel.encode() + b"\0" + file_digest(entry.path))
    return digest.hexdigest()


class HashCache:
    """:func:`tree_hash` values, reused while a cheap stat signature of what they were
    computed from is unchanged, so that a no-op run does not read large local trees again.

    The signature of a file is its (size, mtime_ns, inode); of a directory, the sorted
    (relative path, size, mtime_ns, inode) of every file ``tree_hash`` reads. An entry whose
    newest mtime is within :attr:`RACY_SECONDS` of the time it was hashed is not trusted
    (the file may have changed again within the filesystem's mtime granularity, as git's
    "racy" index entries): it is hashed again. Thread-safe; :meth:`save` persists the
    entries (atomically, and only when something changed) to ``path``, a JSON file.
    """

    RACY_SECONDS = 2.0
    VERSION = 1

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}
        self._entries: dict[str, dict[str, Any]] | None = None  # loaded on first use
        self._dirty = False

    def tree(self, path: Path) -> str:
        """The same value as ``tree_hash(path)``, from the cache when ``path`` is unchanged."""
        key = os.path.abspath(path)
        with self._lock:
            entries = self._load()
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:  # one thread hashes a given path; the others then find it cached
            now = time.time_ns()  # taken before the signature and any read
            signature, newest = self._signature(path)
            with self._lock:
                entry = entries.get(key)
            if (
                entry is not None
                and entry.get("sig") == signature
                and entry.get("newest", 0) < entry.get("at", 0) - self.RACY_SECONDS * 1e9
            ):
                return str(entry["hash"])
            value = _tree_hash(path, self._file_digest)
            with self._lock:
                entries[key] = {"sig": signature, "hash": value, "newest": newest, "at": now}
                self._dirty = True
            return value

    def save(self) -> None:
        """Write the cache file if an entry was added or changed since it was read."""
        with self._lock:
            if not self._dirty or self._entries is None:
                return
            doc = {"version": self.VERSION, "entries": self._entries}
            atomic_write(self.path, json.dumps(doc, sort_keys=True, separators=(",", ":")))
            self._dirty = False

    def _file_digest(self, path: str) -> bytes:
        """The sha256 digest of one file's content (the only place contents are read)."""
        return _file_digest(path)

    def _load(self) -> dict[str, dict[str, Any]]:
        if self._entries is None:
            try:
                doc = json.loads(self.path.read_bytes())
                entries = doc["entries"] if doc.get("version") == self.VERSION else {}
                self._entries = entries if isinstance(entries, dict) else {}
            except (OSError, ValueError, TypeError, KeyError, AttributeError):
                self._entries = {}  # absent or unreadable: start empty
        return self._entries

    @staticmethod
    def _signature(path: Path) -> tuple[str, int]:
        """(digest of the stat signature, newest mtime_ns in it)."""
        if path.is_file():
            st = path.stat()
            return f"f:{st.st_size}:{st.st_mtime_ns}:{st.st_ino}", st.st_mtime_ns
        digest = hashlib.sha256(b"d")
        newest = 0
        for rel, entry in _tree_files(path):
            st = entry.stat()  # follows a symlink to its file, like the content read
            digest.update(f"{rel}\0{st.st_size}:{st.st_mtime_ns}:{st.st_ino}\n".encode())
            newest = max(newest, st.st_mtime_ns)
        return "d:" + digest.hexdigest(), newest


# --------------------------------------------------------------------------- temp dirs
# envbuild's scratch directories live under one root (``.envbuild/tmp`` of the workspace,
# set by the CLI; the system's temp dir for library use), inside a directory of this
# process, ``<pid>-<random>``, whose ``.lock`` file this process holds an flock on. The
# kernel drops the flock when the process dies, even by ``kill -9``: the next run removes
# every directory whose lock it can take (:func:`remove_stale_temp`).

_TEMP: dict[str, Any] = {}  # "root": Path; "own": Path; "fd": the held lock's descriptor
_TEMP_LOCK = threading.Lock()


def set_temp_root(root: Path | None) -> None:
    """Put this process's scratch directories under ``root`` (None: the system's)."""
    with _TEMP_LOCK:
        _TEMP["root"] = root


def _own_temp() -> Path | None:
    """This process's directory under the temp root, made (and locked) on first use."""
    import fcntl

    with _TEMP_LOCK:
        root = _TEMP.get("root")
        if root is None:
            return None
        own: Path | None = _TEMP.get("own")
        if own is not None and own.parent == root:
            return own
        root.mkdir(parents=True, exist_ok=True)
        name = f"{os.getpid()}-{os.urandom(4).hex()}"
        fd = os.open(root / f"{name}.lock", os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        own = root / name
        own.mkdir()
        _TEMP.update(own=own, fd=fd)
        return own


@contextlib.contextmanager
def temp_dir(prefix: str, near: Path | None = None) -> Iterator[Path]:
    """A scratch directory, removed on leaving (and by the next run after a crash).
    ``near``: a directory the results will be renamed into; the scratch directory is made
    on its filesystem (in it, when this process's temp dir is elsewhere)."""
    base = _own_temp()
    if near is not None and (base is None or not _same_device(base, near)):
        base = near
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _same_device(a: Path, b: Path) -> bool:
    try:
        return a.stat().st_dev == b.stat().st_dev
    except OSError:
        return False


def remove_own_temp() -> None:
    """Remove this process's scratch directory and release its lock (at exit, or when
    interrupted while threads may still be using it)."""
    with _TEMP_LOCK:
        own, fd = _TEMP.pop("own", None), _TEMP.pop("fd", None)
    if own is None:
        return
    shutil.rmtree(own, ignore_errors=True)
    Path(f"{own}.lock").unlink(missing_ok=True)
    os.close(fd)


def remove_stale_temp(root: Path) -> list[str]:
    """Remove the scratch directories under ``root`` of processes that are gone (their lock
    is free). Returns the names removed."""
    import fcntl

    removed: list[str] = []
    try:
        locks = sorted(root.glob("*.lock"))
    except OSError:
        return removed
    for lock in locks:
        try:
            fd = os.open(lock, os.O_RDWR)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)  # held: its process is running
            continue
        try:
            shutil.rmtree(lock.with_suffix(""), ignore_errors=True)
            lock.unlink(missing_ok=True)
            removed.append(lock.stem)
        finally:
            os.close(fd)
    return removed


def unwritable(paths: Sequence[Path]) -> tuple[Path, str] | None:
    """The first of ``paths`` (directories) where no file can be created, and why (the
    OS's words), or None. A missing directory is tried at its nearest existing parent;
    nothing is left behind."""
    for path in paths:
        probe = path
        while not probe.exists() and probe.parent != probe:
            probe = probe.parent
        if os.access(probe, os.W_OK | os.X_OK):  # no file made on every run (EROFS says no)
            continue
        try:  # the OS's words for why not
            fd, name = tempfile.mkstemp(prefix=".envbuild-write-test-", dir=probe)
        except OSError as exc:
            return path, (exc.strerror or str(exc)).lower()
        os.close(fd)
        os.unlink(name)
    return None
