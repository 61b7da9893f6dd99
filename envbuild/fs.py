"""Filesystem helpers: atomic writes (temp file + rename) so a half-finished run never looks finished."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


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


def tree_hash(path: Path) -> str:
    """sha256 over a source tree's files (sorted relative paths and contents; VCS and
    build directories skipped): the identity of a local directory to build."""
    import hashlib

    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    skip = {".git", ".hg", ".svn", "__pycache__", "build", "dist", ".venv", ".tox"}
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path)
        if skip & set(rel.parts) or rel.name.endswith(".egg-info"):
            continue
        digest.update(rel.as_posix().encode() + b"\0" + hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()
