"""LocalStore: the package store in a local directory (the workspace default .envbuild/store)."""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO

from envbuild.store.errors import (
    IntegrityError,
    ObjectNotFoundError,
    StoreAccessError,
    StoreConfigError,
    StoreError,
)
from envbuild.store.files import (
    NO_HARDLINKS,
    copy_hashing,
    local_reason,
    open_new,
    read_chunks,
    receive_verified,
    temp_name,
    unlink_quietly,
)
from envbuild.store.layout import group_by_parent, parent, validate_key, validate_prefix

log = logging.getLogger("envbuild.store")

OBJECT_MODE = 0o444  # store objects are immutable: read-only files (the umask still applies)


class LocalStore:
    """A store in a directory. Keys map to paths below ``root``; objects are created through a
    temp file in their own directory and an atomic no-replace hard link, so a reader never sees
    a partial object and two writers of one key cannot both win."""

    __slots__ = ("_root", "_url")

    def __init__(self, root: Path, url: str | None = None) -> None:
        self._root = Path(root)
        self._url = url if url is not None else str(root)

    def __repr__(self) -> str:
        return f"LocalStore({self._url!r})"

    @property
    def url(self) -> str:
        return self._url

    @property
    def root(self) -> Path:
        return self._root

    # ------------------------------------------------------------------ reads

    def missing(self, keys: Iterable[str]) -> set[str]:
        absent: set[str] = set()
        for directory, wanted in group_by_parent(keys).items():
            present = self._file_names(directory)
            absent.update(k for k in wanted if k.rpartition("/")[2] not in present)
        return absent

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ObjectNotFoundError(self._url, key) from None
        except OSError as exc:
            raise self._error(exc, "read", key) from exc

    def get_file(self, key: str, dest: Path, sha256: str) -> None:
        try:
            src = open(self._path(key), "rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ObjectNotFoundError(self._url, key) from None
        except OSError as exc:
            raise self._error(exc, "read", key) from exc
        with src:
            receive_verified(
                self._url, key, dest, sha256, lambda out: copy_hashing(self._read(src, key), out)
            )
        log.debug("got %s from %s", key, self._url)

    def list(self, prefix: str) -> list[str]:
        validate_prefix(prefix)
        base = parent(prefix)
        start = self._root.joinpath(*base.rstrip("/").split("/")) if base else self._root
        found: list[str] = []

        def fail(exc: OSError) -> None:
            if not isinstance(exc, (FileNotFoundError, NotADirectoryError)):
                raise self._error(exc, "list", prefix or "/") from exc

        for dirpath, dirnames, filenames in os.walk(start, onerror=fail):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel = os.path.relpath(dirpath, self._root)
            head = "" if rel == "." else rel.replace(os.sep, "/") + "/"
            found.extend(
                head + name
                for name in filenames
                if not name.startswith(".") and (head + name).startswith(prefix)
            )
        return sorted(found)

    # ------------------------------------------------------------------ writes

    def put_file(self, key: str, path: Path, sha256: str) -> bool:
        if self._path(key).is_file():  # fast path; the no-replace link decides under a race
            return False
        try:
            src = open(path, "rb")
        except OSError as exc:
            raise StoreError(
                f"cannot read the file to store as {key}: {local_reason(exc)}"
            ) from exc
        with src:
            return self._create(key, lambda out: copy_hashing(read_chunks(src), out), sha256)

    def put_bytes(self, key: str, data: bytes) -> bool:
        if self._path(key).is_file():
            return False
        return self._create(key, lambda out: copy_hashing([data], out), None)

    def replace_bytes(self, key: str, data: bytes) -> None:
        dest = self._path(key)
        tmp = temp_name(dest)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            with open_new(tmp, OBJECT_MODE) as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, dest)
        except OSError as exc:
            raise self._error(exc, "write", key) from exc
        finally:
            unlink_quietly(tmp)
        log.debug("replaced %s in %s", key, self._url)

    # ------------------------------------------------------------------ internals

    def _path(self, key: str) -> Path:
        return self._root.joinpath(*validate_key(key).split("/"))

    def _read(self, src: IO[bytes], key: str) -> Iterator[bytes]:
        """The chunks of a store object; a read failure is a store error (not a local
        write error of the destination)."""
        try:
            yield from read_chunks(src)
        except OSError as exc:
            raise self._error(exc, "read", key) from exc

    def _file_names(self, directory: str) -> set[str]:
        path = self._root.joinpath(*directory.rstrip("/").split("/")) if directory else self._root
        try:
            with os.scandir(path) as entries:
                return {e.name for e in entries if not e.name.startswith(".") and e.is_file()}
        except (FileNotFoundError, NotADirectoryError):
            return set()
        except OSError as exc:
            raise self._error(exc, "list", directory or "/") from exc

    def _create(self, key: str, fill: Callable[[IO[bytes]], str], sha256: str | None) -> bool:
        """Write a new object through a temp file; False if ``key`` exists (nothing changes)."""
        dest = self._path(key)
        tmp = temp_name(dest)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            with open_new(tmp, OBJECT_MODE) as out:
                actual = fill(out)
                out.flush()
                os.fsync(out.fileno())  # a stored object is never found truncated after a crash
            if sha256 is not None and actual != sha256:
                raise IntegrityError(
                    self._url, key, sha256, actual, "the file to upload does not match its hash"
                )
            written = self._link_no_replace(tmp, dest)
        except OSError as exc:
            raise self._error(exc, "write", key) from exc
        finally:
            unlink_quietly(tmp)
        log.debug("%s %s in %s", "stored" if written else "already had", key, self._url)
        return written

    @staticmethod
    def _link_no_replace(tmp: Path, dest: Path) -> bool:
        try:
            os.link(tmp, dest)
            return True
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno not in NO_HARDLINKS:
                raise
        # A filesystem without hard links: a rename if still absent. Two writers may both
        # rename here, but the content of a content-addressed key is the same either way.
        if dest.exists():
            return False
        os.replace(tmp, dest)
        return True

    def _error(self, exc: OSError, action: str, key: str) -> StoreError:
        """A one-line store error for a local OSError (the absolute path left out)."""
        reason = local_reason(exc)
        if isinstance(exc, PermissionError) or exc.errno in (errno.EROFS, errno.EACCES):
            return StoreAccessError(
                f"local store {self._url} is not {'writable' if action == 'write' else 'readable'}"
                f" ({reason}, at {key}): fix the directory's permissions or [workspace] store"
            )
        if isinstance(exc, (NotADirectoryError, FileExistsError)):
            return StoreConfigError(
                f"local store {self._url} cannot hold {key}: a part of its path is a file, not a"
                " directory: fix [workspace] store"
            )
        if exc.errno == errno.ENOSPC:
            return StoreError(f"local store {self._url} is full (at {key}): free some space")
        return StoreError(f"local store {self._url}: cannot {action} {key}: {reason}")
