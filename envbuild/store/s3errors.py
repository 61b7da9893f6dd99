"""botocore exceptions mapped to one-line store errors (what, which store/key, how to fix)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from botocore.exceptions import (  # type: ignore[import-untyped]
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    IncompleteReadError,
    NoCredentialsError,
    PartialCredentialsError,
    ProxyConnectionError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from envbuild.store.errors import (
    BucketNotFoundError,
    IntegrityError,
    ObjectNotFoundError,
    StoreAccessError,
    StoreConfigError,
    StoreError,
    StoreUnreachableError,
)

ENDPOINT_HINT = "check AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL (or the workspace's store endpoint)"
CREDENTIALS_HINT = (
    "check the AWS credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID, the standard credential chain)"
)

_DENIED = frozenset(
    {
        "AccessDenied",
        "Forbidden",
        "403",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
        "AllAccessDisabled",
        "AccountProblem",
    }
)
_WRONG_REGION = frozenset(
    {"PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException"}
)
_BAD_DIGEST = frozenset({"BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch"})
# Failures while a response body streams in: worth a fresh attempt of the whole download.
STREAM_ERRORS: tuple[type[Exception], ...] = (
    ResponseStreamingError,
    ReadTimeoutError,
    IncompleteReadError,
    ConnectionClosedError,
)


def redact_endpoint(url: str | None) -> str:
    """An endpoint URL without any ``user:password@`` part (for messages)."""
    if not url:
        return "the default AWS endpoint"
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def error_code(exc: BaseException) -> str:
    """The S3 error code of a ClientError (or its HTTP status), else ""."""
    if not isinstance(exc, ClientError):
        return ""
    response: dict[str, Any] = exc.response or {}
    code = str(response.get("Error", {}).get("Code", "") or "")
    return code or str(response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))


def http_status(exc: BaseException) -> int:
    if not isinstance(exc, ClientError):
        return 0
    return int((exc.response or {}).get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def is_precondition_failed(exc: BaseException) -> bool:
    """A create-only write found the key already there (HTTP 412)."""
    return error_code(exc) in ("PreconditionFailed", "412") or http_status(exc) == 412


def is_write_conflict(exc: BaseException) -> bool:
    """S3's 409 for a conditional write racing another one on the same key: try again."""
    return error_code(exc) == "ConditionalRequestConflict"


@dataclass(frozen=True, slots=True)
class Where:
    """Which store, object and endpoint an S3 call was about (for messages)."""

    url: str  # s3://bucket/prefix
    bucket: str
    endpoint: str  # redacted

    def translate(self, exc: BaseException, action: str, key: str) -> StoreError:
        """The store error for a botocore exception raised while doing ``action`` on ``key``."""
        target = f"{self.url}/{key}" if key else self.url
        if isinstance(exc, (EndpointConnectionError, ConnectTimeoutError, ProxyConnectionError)):
            reason = "timed out" if isinstance(exc, ConnectTimeoutError) else "cannot connect"
            return StoreUnreachableError(
                f"cannot reach the S3 endpoint {self.endpoint} of store {self.url} ({reason}):"
                f" {ENDPOINT_HINT}, and the network"
            )
        if isinstance(exc, STREAM_ERRORS):
            return StoreUnreachableError(
                f"the S3 endpoint {self.endpoint} of store {self.url} broke off while sending"
                f" {key or 'a listing'} ({type(exc).__name__}): check the network and retry"
            )
        if isinstance(exc, (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError)):
            return StoreAccessError(
                f"no usable AWS credentials for store {self.url} ({type(exc).__name__}):"
                " set AWS_PROFILE or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, or configure"
                " the standard credential chain"
            )
        code = error_code(exc)
        if code == "NoSuchBucket":
            return BucketNotFoundError(
                f"the S3 bucket '{self.bucket}' of store {self.url} does not exist at"
                f" {self.endpoint}: create the bucket or fix [workspace] store"
            )
        if code in _DENIED or http_status(exc) == 403:
            return StoreAccessError(
                f"access denied to {target} ({action}, {code or 'HTTP 403'}): {CREDENTIALS_HINT}"
                " and the bucket's policy"
            )
        if code in ("NoSuchKey", "404") or http_status(exc) == 404:
            return ObjectNotFoundError(self.url, key)
        if code in _WRONG_REGION or http_status(exc) == 301:
            return StoreConfigError(
                f"the S3 bucket '{self.bucket}' of store {self.url} is in another region"
                f" ({code}): set AWS_REGION or the workspace's store region"
            )
        if code in _BAD_DIGEST:
            return IntegrityError(
                self.url, key, "(sent checksum)", "(received bytes)",
                f"S3 rejected the upload as corrupted in transit ({code}): retry",
            )  # fmt: skip
        if isinstance(exc, ClientError):
            message = str((exc.response or {}).get("Error", {}).get("Message", "") or "")
            return StoreError(f"S3 {action} of {target} failed: {code}: {message}")
        if isinstance(exc, BotoCoreError):
            return StoreError(f"S3 {action} of {target} failed: {type(exc).__name__}")
        return StoreError(f"S3 {action} of {target} failed: {type(exc).__name__}")
