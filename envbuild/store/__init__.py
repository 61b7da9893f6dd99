"""The content-addressed package store: the Store interface, open_store, and its errors."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from envbuild.store.alias import get_alias, put_alias
from envbuild.store.base import Store, StoreConfig
from envbuild.store.errors import (
    AliasConflictError,
    BucketNotFoundError,
    IntegrityError,
    InvalidKeyError,
    ObjectNotFoundError,
    StoreAccessError,
    StoreConfigError,
    StoreError,
    StoreUnreachableError,
)
from envbuild.store.local import LocalStore

__all__ = [
    "AliasConflictError",
    "BucketNotFoundError",
    "IntegrityError",
    "InvalidKeyError",
    "LocalStore",
    "ObjectNotFoundError",
    "Store",
    "StoreAccessError",
    "StoreConfig",
    "StoreConfigError",
    "StoreError",
    "StoreUnreachableError",
    "get_alias",
    "open_store",
    "parse_s3_url",
    "put_alias",
]

DEFAULT_LOCAL = ".envbuild/store"
_HINT = "fix [workspace] store (a local path, file:///abs/path or s3://bucket/prefix)"


def _shown(url: str) -> str:
    """``url`` for a message: any ``user:password@`` part and query dropped."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{parts.path}"


def parse_s3_url(url: str) -> tuple[str, str]:
    """(bucket, prefix) of ``s3://bucket[/prefix]``; StoreConfigError when malformed."""
    parts = urlsplit(url)
    if parts.scheme != "s3":
        raise StoreConfigError(f"store URL {_shown(url)} is not an s3:// URL: {_HINT}")
    if "@" in parts.netloc or parts.query or parts.fragment:
        raise StoreConfigError(
            f"store URL {_shown(url)} must be s3://bucket/prefix with nothing else (no"
            " credentials: they come from AWS_PROFILE or the standard credential chain)"
        )
    bucket = parts.netloc
    valid = 3 <= len(bucket) <= 63 and all(c.islower() or c.isdigit() or c in ".-" for c in bucket)
    if not valid or not bucket[0].isalnum() or not bucket[-1].isalnum():
        raise StoreConfigError(f"store URL {_shown(url)}: '{bucket}' is not a valid bucket name")
    return bucket, parts.path.strip("/")


def open_store(url: str, root: Path, config: StoreConfig | None = None) -> Store:
    """The store at ``url``: a local path (relative to the workspace ``root``) or ``file://``
    URL gives a :class:`LocalStore`; ``s3://bucket/prefix`` an S3Store (``config`` adds the
    workspace's endpoint, region, profile and transfer options to boto3's own configuration)."""
    text = url.strip() or DEFAULT_LOCAL
    if text.startswith("s3://"):
        from envbuild.store.s3 import S3Store  # boto3 is imported only for S3 stores

        bucket, prefix = parse_s3_url(text)
        return S3Store(bucket, prefix, config)
    if text.startswith("file://"):
        parts = urlsplit(text)
        if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
            raise StoreConfigError(f"store URL {_shown(text)} is not a local file:// URL: {_HINT}")
        return LocalStore(Path(unquote(parts.path)), text)
    if "://" in text:
        scheme = text.split("://", 1)[0]
        raise StoreConfigError(f"store URL {_shown(text)}: unsupported scheme '{scheme}': {_HINT}")
    path = Path(text).expanduser()
    return LocalStore(path if path.is_absolute() else Path(root) / path, text)
