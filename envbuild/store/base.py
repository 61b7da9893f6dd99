"""The Store interface (a content-addressed, create-only object store) and its configuration."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from envbuild.store.errors import StoreConfigError

MiB = 1024 * 1024
S3_MIN_PART = 5 * MiB  # S3's smallest allowed part (all but the last)


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """Options of a store. ``None`` leaves a value to boto3's standard configuration
    (``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``, ``AWS_REGION``, ``AWS_PROFILE``,
    ``AWS_MAX_ATTEMPTS``, ``AWS_RETRY_MODE``, the shared config files). Never holds secrets:
    credentials come from the standard credential chain only."""

    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    retry_mode: Literal["standard", "adaptive"] | None = None  # default: standard
    max_attempts: int | None = None  # default: AWS_MAX_ATTEMPTS, else botocore's (3)
    connect_timeout: float = 3.0  # an unreachable endpoint fails within seconds
    read_timeout: float = 60.0
    multipart_threshold: int = 64 * MiB  # files larger than this go up in parts
    part_size: int = 16 * MiB
    concurrency: int = 8  # parts in flight per multipart upload; listings in flight
    max_pool_connections: int = 32

    def __post_init__(self) -> None:
        if self.part_size < S3_MIN_PART:
            raise StoreConfigError(f"store part size {self.part_size} is below S3's 5 MiB")
        if self.multipart_threshold < self.part_size:
            raise StoreConfigError("store multipart threshold must be at least the part size")
        if self.concurrency < 1 or self.max_pool_connections < 1:
            raise StoreConfigError("store concurrency and connection pool must be >= 1")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise StoreConfigError("store max_attempts must be >= 1")


@runtime_checkable
class Store(Protocol):
    """A content-addressed object store. Keys follow :mod:`envbuild.store.layout`. Objects are
    immutable: every write is create-only, except :meth:`replace_bytes` (mutable alias tags).
    Every method raises :class:`~envbuild.store.errors.StoreError` subclasses only."""

    @property
    def url(self) -> str:
        """The store's location for messages (``s3://bucket/prefix`` or the configured local
        path): never credentials."""
        ...

    def missing(self, keys: Iterable[str]) -> set[str]:
        """The keys of ``keys`` that do not exist, found by listing their directories (never
        one request per key)."""
        ...

    def put_file(self, key: str, path: Path, sha256: str) -> bool:
        """Create ``key`` from the file at ``path`` whose content has ``sha256`` (checked before
        anything is written: a mismatch raises IntegrityError). True if written, False if the
        key already existed (left untouched)."""
        ...

    def put_bytes(self, key: str, data: bytes) -> bool:
        """Create ``key`` holding ``data``; True if written, False if it already existed."""
        ...

    def replace_bytes(self, key: str, data: bytes) -> None:
        """Set ``key`` to ``data``, replacing it atomically (mutable alias tags only)."""
        ...

    def get_bytes(self, key: str) -> bytes:
        """The content of ``key`` (ObjectNotFoundError if absent)."""
        ...

    def get_file(self, key: str, dest: Path, sha256: str) -> None:
        """Download ``key`` to ``dest`` through a temp file beside it, verifying ``sha256``
        before the rename; on a mismatch nothing is left behind and IntegrityError is raised."""
        ...

    def list(self, prefix: str) -> list[str]:
        """Every key that starts with ``prefix``, sorted."""
        ...
