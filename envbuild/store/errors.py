"""Store errors: one base class, one subclass per way a store operation can fail for a user."""

from __future__ import annotations

from envbuild.errors import EnvbuildError


class StoreError(EnvbuildError):
    """A package store operation failed; the message is one line: what, where, how to fix."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))  # always exactly one line


class StoreConfigError(StoreError):
    """The store URL or its configuration (profile, region, options) is unusable."""


class InvalidKeyError(StoreError):
    """A store key (or a part of one) breaks the layout rules (see docs/store.md)."""


class ObjectNotFoundError(StoreError):
    """The object does not exist in the store."""

    def __init__(self, url: str, key: str) -> None:
        self.url, self.key = url, key
        super().__init__(f"{url}: object {key} does not exist in the store")

    def __reduce__(self) -> tuple[type[ObjectNotFoundError], tuple[str, str]]:
        return (type(self), (self.url, self.key))  # picklable across process pools


class IntegrityError(StoreError):
    """Bytes did not match the sha256 they were expected to have; they were not used."""

    def __init__(self, url: str, key: str, expected: str, actual: str, detail: str = "") -> None:
        self.url, self.key, self.expected, self.actual = url, key, expected, actual
        self.detail = detail
        what = detail or "the object is corrupt and was not used"
        super().__init__(
            f"{url}: integrity check failed for {key}: sha256 {actual}, expected {expected} ({what})"
        )

    def __reduce__(self) -> tuple[type[IntegrityError], tuple[str, str, str, str, str]]:
        return (type(self), (self.url, self.key, self.expected, self.actual, self.detail))


class StoreAccessError(StoreError):
    """Access refused: S3 403 or missing credentials, or a local store that cannot be written."""


class BucketNotFoundError(StoreError):
    """The S3 bucket of the store does not exist."""


class StoreUnreachableError(StoreError):
    """The store's endpoint could not be reached (connection refused, DNS, timeout)."""


class AliasConflictError(StoreError):
    """An immutable alias already points at something else."""
