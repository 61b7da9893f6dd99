"""The local package cache: content-addressed files, each verified against its sha256 before use."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from envbuild.errors import EnvbuildError
from envbuild.fs import atomic_write

CHUNK = 1 << 20


class IntegrityError(EnvbuildError):
    """Bytes that do not match the hash the lock records."""


@dataclass(frozen=True, slots=True)
class Digests:
    """The hashes of a file's bytes."""

    sha256: str
    md5: str
    size: int


def file_digests(path: Path) -> Digests:
    """sha256, md5 and size of a file, read once."""
    sha, md5, size = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            sha.update(chunk)
            md5.update(chunk)
            size += len(chunk)
    return Digests(sha.hexdigest(), md5.hexdigest(), size)


class PackageCache:
    """Files under ``root/<sha256[:2]>/<sha256>/<filename>``: one copy of each package,
    whichever envs use it. A file enters only through :meth:`add` (verified, atomic); a
    file already there is re-verified before use unless its stat signature is the one
    recorded when it was last verified (``.verified`` beside it), so a file changed or
    corrupted on disk is always caught."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()

    def path(self, sha256: str, filename: str) -> Path:
        return self.root / sha256[:2] / sha256 / filename

    def _stamp(self, path: Path) -> Path:
        return path.with_name(f".{path.name}.verified")

    @staticmethod
    def _signature(path: Path) -> str:
        st = path.stat()
        return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"

    def get(self, sha256: str, filename: str, full: bool = False) -> Path | None:
        """The cached file, verified; None when absent. A file that fails verification
        is removed (it is never used) and reported by an exception. ``full``: hash the
        bytes even when the stat signature is the verified one (before linking into an env)."""
        path = self.path(sha256, filename)
        try:
            signature = self._signature(path)
        except FileNotFoundError:
            return None
        stamp = self._stamp(path)
        try:
            if not full and stamp.read_text(encoding="utf-8") == signature:
                return path
        except OSError:
            pass
        actual = file_digests(path).sha256
        if actual != sha256:
            path.unlink(missing_ok=True)
            stamp.unlink(missing_ok=True)
            raise IntegrityError(
                f"{path}: cached {filename} has sha256 {actual}, the lock says {sha256}: "
                "removed from the cache"
            )
        try:
            unchanged = stamp.read_text(encoding="utf-8") == signature
        except OSError:
            unchanged = False
        if not unchanged:
            atomic_write(stamp, signature.encode())
        return path

    @contextmanager
    def incoming(self, sha256: str, filename: str) -> Iterator[BinaryIO]:
        """A temp file in the cache to write a package into; on success it is verified
        against ``sha256`` and renamed into place, otherwise removed. Concurrent writers of
        the same file are safe: each renames its own verified copy."""
        final = self.path(sha256, filename)
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{filename}.", suffix=".part", dir=final.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                yield fh
            self._settle(Path(tmp), final, sha256)
        finally:
            Path(tmp).unlink(missing_ok=True)

    def add(self, source: Path, sha256: str, filename: str) -> Path:
        """Copy ``source`` into the cache, verified (a ``file://`` channel's package, a
        built wheel)."""
        with self.incoming(sha256, filename) as out, source.open("rb") as src:
            while chunk := src.read(CHUNK):
                out.write(chunk)
        return self.path(sha256, filename)

    def bring(self, sha256: str, filename: str, write: Callable[[Path], None]) -> Path:
        """Put a file into the cache through ``write(temp_path)`` (a store download): the
        temp name is unique to this call (several threads or processes may bring in the
        same file at once), the result is verified, then renamed into place."""
        import uuid

        final = self.path(sha256, filename)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(f".{filename}.{uuid.uuid4().hex}.part")
        try:
            write(tmp)
            self._settle(tmp, final, sha256)
        finally:
            tmp.unlink(missing_ok=True)
        return final

    def _settle(self, tmp: Path, final: Path, sha256: str) -> None:
        actual = file_digests(tmp).sha256
        if actual != sha256:
            raise IntegrityError(
                f"{final.name}: got sha256 {actual}, the lock says {sha256}: not cached"
            )
        os.chmod(tmp, 0o644)
        os.replace(tmp, final)
        atomic_write(self._stamp(final), self._signature(final).encode())

    def record(self, name: str, data: dict[str, object]) -> None:
        """Keep a small JSON record in the cache (e.g. what a package was transmuted to)."""
        atomic_write(self.root / "records" / name, json.dumps(data, sort_keys=True).encode())

    def read_record(self, name: str) -> dict[str, object] | None:
        try:
            data = json.loads((self.root / "records" / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None
