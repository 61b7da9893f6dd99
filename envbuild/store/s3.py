"""S3Store: the package store in an S3 bucket (boto3; create-only writes with If-None-Match)."""

from __future__ import annotations

import base64
import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import IO, Any, TypeVar

import boto3  # type: ignore[import-untyped]
import botocore.session  # type: ignore[import-untyped]
from botocore.config import Config  # type: ignore[import-untyped]
from botocore.exceptions import (  # type: ignore[import-untyped]
    BotoCoreError,
    ClientError,
    ProfileNotFound,
)

from envbuild.store.base import StoreConfig
from envbuild.store.errors import IntegrityError, StoreConfigError, StoreError
from envbuild.store.files import (
    CHUNK,
    copy_hashing,
    file_sha256,
    local_reason,
    receive_verified,
)
from envbuild.store.layout import validate_key, validate_prefix, validate_segment
from envbuild.store.listing import Listing, plan_listings
from envbuild.store.s3errors import (
    STREAM_ERRORS,
    Where,
    is_precondition_failed,
    is_write_conflict,
    redact_endpoint,
)

log = logging.getLogger("envbuild.store")
T = TypeVar("T")

CONFLICT_ATTEMPTS = 5  # S3's 409 ConditionalRequestConflict: another conditional write raced
DOWNLOAD_ATTEMPTS = 3  # a body that breaks off mid-stream is fetched again from the start


def b64_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


def hex_to_b64(sha256: str) -> str:
    return base64.b64encode(bytes.fromhex(sha256)).decode("ascii")


def make_client(config: StoreConfig, url: str) -> Any:
    """An S3 client from boto3's standard configuration plus ``config``: retries (standard or
    adaptive, set once here), bounded timeouts, a connection pool for concurrent transfers."""
    try:
        core = botocore.session.Session(profile=config.profile)
        session = boto3.session.Session(botocore_session=core, region_name=config.region)
        mode = config.retry_mode or core.get_config_variable("retry_mode")
        retries: dict[str, Any] = {"mode": mode if mode in ("standard", "adaptive") else "standard"}
        if config.max_attempts is not None:
            retries["total_max_attempts"] = config.max_attempts
        client_config = Config(
            retries=retries,
            connect_timeout=config.connect_timeout,
            read_timeout=config.read_timeout,
            max_pool_connections=config.max_pool_connections,
            user_agent_extra="envbuild",
        )
        return session.client("s3", endpoint_url=config.endpoint_url, config=client_config)
    except ProfileNotFound:
        raise StoreConfigError(
            f"the AWS profile of store {url} does not exist: fix AWS_PROFILE or the workspace's"
            " store profile"
        ) from None
    except ValueError as exc:  # e.g. an invalid endpoint URL
        raise StoreConfigError(
            f"cannot set up the S3 client of store {url} ({type(exc).__name__}):"
            " check AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL and the workspace's store settings"
        ) from None
    except BotoCoreError as exc:
        raise StoreConfigError(
            f"cannot set up the S3 client of store {url} ({type(exc).__name__}):"
            " check the AWS configuration (AWS_PROFILE, AWS_REGION, ~/.aws/config)"
        ) from None


class S3Store:
    """A store in ``s3://bucket/prefix``. Writes are create-only (``If-None-Match: *``, on
    ``PutObject`` and on ``CompleteMultipartUpload`` for big files), carry
    ``ChecksumSHA256``, and existence checks are prefix listings."""

    __slots__ = ("_base", "_bucket", "_client", "_config", "_prefix", "_url", "_where")

    def __init__(
        self, bucket: str, prefix: str = "", config: StoreConfig | None = None, *,
        client: Any = None,
    ) -> None:  # fmt: skip
        self._bucket = bucket
        self._prefix = prefix.strip("/")
        if self._prefix:
            for segment in self._prefix.split("/"):
                validate_segment(segment, "store prefix segment")
        self._base = f"{self._prefix}/" if self._prefix else ""
        self._url = f"s3://{bucket}/{self._prefix}" if self._prefix else f"s3://{bucket}"
        self._config = config or StoreConfig()
        self._client = client if client is not None else make_client(self._config, self._url)
        endpoint = redact_endpoint(getattr(self._client.meta, "endpoint_url", None))
        self._where = Where(self._url, bucket, endpoint)

    def __repr__(self) -> str:
        return f"S3Store({self._url!r})"

    @property
    def url(self) -> str:
        return self._url

    @property
    def endpoint(self) -> str:
        """The endpoint this store talks to (no credentials)."""
        return self._where.endpoint

    # ------------------------------------------------------------------ reads

    def missing(self, keys: Iterable[str]) -> set[str]:
        plans = plan_listings(keys)
        wanted = {k for plan in plans for k in plan.keys}
        if len(plans) <= 1:
            present = set().union(*(self._present(plan) for plan in plans))
        else:
            with ThreadPoolExecutor(min(self._config.concurrency, len(plans))) as pool:
                present = set().union(*pool.map(self._present, plans))
        return wanted - present

    def get_bytes(self, key: str) -> bytes:
        full = self._full(key)
        response = self._call("get", key, self._client.get_object, Bucket=self._bucket, Key=full)
        try:
            return bytes(response["Body"].read())
        except STREAM_ERRORS as exc:
            raise self._where.translate(exc, "get", key) from exc

    def get_file(self, key: str, dest: Path, sha256: str) -> None:
        full = self._full(key)

        def fill(out: IO[bytes]) -> str:
            for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
                out.seek(0)
                out.truncate()
                response = self._call(
                    "get", key, self._client.get_object, Bucket=self._bucket, Key=full
                )
                try:
                    return copy_hashing(response["Body"].iter_chunks(CHUNK), out)
                except STREAM_ERRORS as exc:
                    if attempt == DOWNLOAD_ATTEMPTS:
                        raise self._where.translate(exc, "get", key) from exc
                    log.warning("download of %s from %s broke off; retrying", key, self._url)
            raise AssertionError("unreachable")

        receive_verified(self._url, key, dest, sha256, fill)
        log.debug("got %s from %s", key, self._url)

    def list(self, prefix: str) -> list[str]:
        validate_prefix(prefix)
        params: dict[str, Any] = {"Bucket": self._bucket, "Prefix": self._base + prefix}
        found: list[str] = []
        while True:
            response = self._call("list", prefix, self._client.list_objects_v2, **params)
            found.extend(obj["Key"][len(self._base) :] for obj in response.get("Contents", ()))
            if not response.get("IsTruncated"):
                return sorted(found)
            params["ContinuationToken"] = response["NextContinuationToken"]

    # ------------------------------------------------------------------ writes

    def put_bytes(self, key: str, data: bytes) -> bool:
        return self._put(key, lambda: data, b64_sha256(data), create_only=True)

    def replace_bytes(self, key: str, data: bytes) -> None:
        self._put(key, lambda: data, b64_sha256(data), create_only=False)

    def put_file(self, key: str, path: Path, sha256: str) -> bool:
        validate_key(key)
        try:
            size = path.stat().st_size
            actual = file_sha256(path)
        except OSError as exc:
            raise StoreError(
                f"cannot read the file to store as {key}: {local_reason(exc)}"
            ) from exc
        if actual != sha256:
            raise IntegrityError(
                self._url, key, sha256, actual, "the file to upload does not match its hash"
            )
        if size > self._config.multipart_threshold:
            return self._put_multipart(key, path, size)
        with open(path, "rb") as fh:
            return self._put(key, lambda: fh, hex_to_b64(sha256), create_only=True)

    # ------------------------------------------------------------------ internals

    def _full(self, key: str) -> str:
        return self._base + validate_key(key)

    def _call(self, action: str, key: str, fn: Callable[..., T], **kwargs: Any) -> T:
        try:
            return fn(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise self._where.translate(exc, action, key) from exc

    def _present(self, plan: Listing) -> set[str]:
        """Which of ``plan.keys`` one (paginated, bounded) listing finds."""
        params: dict[str, Any] = {"Bucket": self._bucket, "Prefix": self._base + plan.prefix}
        if plan.start_after:
            params["StartAfter"] = self._base + plan.start_after
        present: set[str] = set()
        while True:
            response = self._call("list", plan.prefix, self._client.list_objects_v2, **params)
            last = ""
            for obj in response.get("Contents", ()):
                last = obj["Key"][len(self._base) :]
                if last in plan.keys:
                    present.add(last)
            if not response.get("IsTruncated") or (last and plan.done(last)):
                return present
            params["ContinuationToken"] = response["NextContinuationToken"]

    def _put(self, key: str, body: Callable[[], Any], checksum: str, *, create_only: bool) -> bool:
        """PutObject (``If-None-Match: *`` when ``create_only``); False on 412."""
        kwargs: dict[str, Any] = {
            "Bucket": self._bucket, "Key": self._full(key), "ChecksumSHA256": checksum,
        }  # fmt: skip
        if create_only:
            kwargs["IfNoneMatch"] = "*"
        for attempt in range(1, CONFLICT_ATTEMPTS + 1):
            data = body()
            if hasattr(data, "seek"):
                data.seek(0)
            try:
                self._client.put_object(Body=data, **kwargs)
                log.debug("stored %s in %s", key, self._url)
                return True
            except (ClientError, BotoCoreError) as exc:
                if create_only and is_precondition_failed(exc):
                    log.debug("already had %s in %s", key, self._url)
                    return False
                if is_write_conflict(exc) and attempt < CONFLICT_ATTEMPTS:
                    time.sleep(0.1 * attempt)
                    continue
                raise self._where.translate(exc, "put", key) from exc
        raise AssertionError("unreachable")

    def _put_multipart(self, key: str, path: Path, size: int) -> bool:
        """Raw multipart upload (boto3's managed transfer refuses If-None-Match): parts with
        their own ChecksumSHA256, at most ``concurrency`` in flight, create-only on complete;
        the upload is aborted on any failure."""
        if key not in self.missing([key]):
            return False  # one listing spares uploading a big object that exists already
        full = self._full(key)
        common = {"Bucket": self._bucket, "Key": full}
        created = self._call(
            "put", key, self._client.create_multipart_upload, ChecksumAlgorithm="SHA256", **common
        )
        upload_id = created["UploadId"]
        part_size = self._config.part_size
        count = (size + part_size - 1) // part_size

        def upload(number: int) -> dict[str, Any]:
            offset = (number - 1) * part_size
            with open(path, "rb") as fh:
                fh.seek(offset)
                data = fh.read(min(part_size, size - offset))
            checksum = b64_sha256(data)
            response = self._call(
                "put", key, self._client.upload_part, UploadId=upload_id, PartNumber=number,
                Body=data, ChecksumSHA256=checksum, **common,
            )  # fmt: skip
            return {"ETag": response["ETag"], "PartNumber": number, "ChecksumSHA256": checksum}

        try:
            with ThreadPoolExecutor(min(self._config.concurrency, count)) as pool:
                futures: list[Future[dict[str, Any]]] = [
                    pool.submit(upload, n) for n in range(1, count + 1)
                ]
                done, _ = wait(futures, return_when=FIRST_EXCEPTION)
                failed = [f.exception() for f in done if f.exception() is not None]
                if failed:
                    for future in futures:
                        future.cancel()  # the parts not started yet
                    raise failed[0]  # type: ignore[misc]
                parts = [future.result() for future in futures]
            self._complete(key, upload_id, parts)
        except BaseException as exc:
            self._abort(key, upload_id)
            if isinstance(exc, (ClientError, BotoCoreError)):
                if is_precondition_failed(exc):
                    log.debug("already had %s in %s", key, self._url)
                    return False
                raise self._where.translate(exc, "put", key) from exc
            if isinstance(exc, OSError):
                raise StoreError(
                    f"cannot read the file to store as {key}: {local_reason(exc)}"
                ) from exc
            raise
        log.debug("stored %s in %s (%d parts)", key, self._url, count)
        return True

    def _complete(self, key: str, upload_id: str, parts: Sequence[dict[str, Any]]) -> None:
        """CompleteMultipartUpload, create-only; retried on S3's 409 write conflict."""
        for attempt in range(1, CONFLICT_ATTEMPTS + 1):
            try:
                self._client.complete_multipart_upload(
                    Bucket=self._bucket, Key=self._full(key), UploadId=upload_id,
                    MultipartUpload={"Parts": parts}, IfNoneMatch="*",
                )  # fmt: skip
                return
            except ClientError as exc:
                if not is_write_conflict(exc) or attempt == CONFLICT_ATTEMPTS:
                    raise
                time.sleep(0.1 * attempt)

    def _abort(self, key: str, upload_id: str) -> None:
        try:
            self._client.abort_multipart_upload(
                Bucket=self._bucket, Key=self._full(key), UploadId=upload_id
            )
        except Exception:  # best effort: a bucket lifecycle rule removes what is left
            log.warning("could not abort the multipart upload of %s in %s", key, self._url)
