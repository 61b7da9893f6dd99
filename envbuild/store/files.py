"""Local file plumbing shared by the stores: hashing copies and verified temp-then-rename writes."""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO

from envbuild.store.errors import IntegrityError, StoreError

CHUNK = 1024 * 1024

Fill = Callable[[IO[bytes]], str]  # writes into a file, returns the sha256 hex of what it wrote


def temp_name(dest: Path) -> Path:
    """A fresh hidden temp path beside ``dest`` (a leading '.' is never a valid key segment,
    so listings and existence checks never see it)."""
    return dest.with_name(f".{dest.name}.{secrets.token_hex(6)}.part")


def open_new(path: Path, mode: int) -> IO[bytes]:
    """Create ``path`` exclusively (the umask applies to ``mode``) and open it for writing."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    return os.fdopen(fd, "wb")


def copy_hashing(chunks: Iterable[bytes], out: IO[bytes]) -> str:
    """Write ``chunks`` to ``out``; the sha256 hex of everything written."""
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
        out.write(chunk)
    return digest.hexdigest()


def read_chunks(fh: IO[bytes], size: int = CHUNK) -> Iterable[bytes]:
    """The content of ``fh`` in chunks of at most ``size`` bytes."""
    while chunk := fh.read(size):
        yield chunk


def file_sha256(path: Path) -> str:
    """sha256 hex of a file's content."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def unlink_quietly(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


def receive_verified(url: str, key: str, dest: Path, sha256: str, fill: Fill) -> None:
    """Write ``dest`` through a temp file beside it: ``fill`` writes the bytes, which must hash
    to ``sha256``; then an atomic rename. On any failure the temp file is removed and ``dest``
    is left as it was; a mismatch raises :class:`IntegrityError`."""
    tmp = temp_name(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with open_new(tmp, 0o666) as fh:
            actual = fill(fh)
        if actual != sha256:
            raise IntegrityError(url, key, sha256, actual)
        os.replace(tmp, dest)
    except OSError as exc:
        raise StoreError(
            f"cannot write {dest.name} (downloaded from {url}: {key}): {local_reason(exc)}"
        ) from exc
    finally:
        unlink_quietly(tmp)


def local_reason(exc: OSError) -> str:
    """An OSError's reason without the path it names (paths stay out of messages)."""
    if exc.errno is not None:
        return os.strerror(exc.errno)
    return type(exc).__name__


NO_HARDLINKS = frozenset(
    code
    for code in (
        errno.EPERM,  # vfat and some network filesystems
        errno.EMLINK,
        errno.ENOSYS,
        getattr(errno, "ENOTSUP", None),
        getattr(errno, "EOPNOTSUPP", None),
    )
    if code is not None
)
