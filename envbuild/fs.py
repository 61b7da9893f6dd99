"""Filesystem helpers: atomic writes (temp file + rename) so a half-finished run never looks finished."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any


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


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def make_dir_mode_default(path: Path) -> None:
    """Give a directory made by ``tempfile.mkdtemp`` (0700) the usual mode for the umask."""
    os.chmod(path, 0o777 & ~_umask())


_SKIP = frozenset({".git", ".hg", ".svn", "__pycache__", "build", "dist", ".venv", ".tox"})


def tree_hash(path: Path) -> str:
    """sha256 over a source tree's files (sorted relative paths and contents; VCS and
    build directories skipped): the identity of a local directory to build."""
    import hashlib

    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    skip = _SKIP
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path)
        if skip & set(rel.parts) or rel.name.endswith(".egg-info"):
            continue
        digest.update(rel.as_posix().encode() + b"\0" + hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()


class HashCache:
    """Content hashes of files and trees, reused while their stat signature is unchanged.

    The signature is cheap (one ``stat`` per file); the content hash is recomputed only
    when it changes. Entries written less than 2 s after a file's mtime are not trusted
    (a write within the same mtime tick could go unseen: git's "racy" rule). Kept in a JSON
    file, written atomically by :meth:`save` when something changed. Thread-safe.
    """

    RACY_SECONDS = 2.0

    def __init__(self, path: Path) -> None:
        import json
        import threading

        self.path = path
        self._lock = threading.Lock()
        self._dirty = False
        try:
            self._entries: dict[str, list[Any]] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self._entries = {}

    def tree(self, path: Path) -> str:
        """``tree_hash(path)``, from the cache when the path's signature is unchanged."""
        import time

        key = str(path.resolve())
        signature, newest = _signature(path)
        with self._lock:
            entry = self._entries.get(key)
        if entry and entry[0] == signature and entry[2] - newest > self.RACY_SECONDS:
            return str(entry[1])
        now = time.time()
        digest = tree_hash(path)
        with self._lock:
            self._entries[key] = [signature, digest, now]
            self._dirty = True
        return digest

    def save(self) -> None:
        """Write the cache if anything changed (never fails a run: it is only a cache)."""
        import json

        with self._lock:
            if not self._dirty:
                return
            text = json.dumps(self._entries, sort_keys=True)
            self._dirty = False
        try:
            atomic_write(self.path, text)
        except OSError:
            pass  # a read-only workspace: hashes are recomputed next time


def _signature(path: Path) -> tuple[str, float]:
    """(digest of the stat data of every file ``tree_hash`` reads, newest mtime)."""
    import hashlib

    digest = hashlib.sha256()
    newest = 0.0
    for rel, st in _walk(path):
        digest.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}\n".encode())
        newest = max(newest, st.st_mtime)
    return digest.hexdigest(), newest


def _walk(path: Path) -> list[tuple[str, os.stat_result]]:
    if path.is_file():
        return [("", path.stat())]
    out: list[tuple[str, os.stat_result]] = []
    stack = [(path, "")]
    while stack:
        directory, prefix = stack.pop()
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.name in _SKIP or entry.name.endswith(".egg-info"):
                    continue
                rel = f"{prefix}{entry.name}"
                if entry.is_dir():
                    stack.append((Path(entry.path), rel + "/"))
                elif entry.is_file():
                    out.append((rel, entry.stat()))
    return sorted(out, key=lambda item: item[0])
