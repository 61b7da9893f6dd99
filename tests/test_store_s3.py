"""S3Store specifics on a real S3 endpoint on loopback (moto's ThreadedMotoServer, counted
at the server; no mock_aws): paginated listings, multipart uploads, and S3's failure modes."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from s3server import S3Server

from envbuild.store import (
    BucketNotFoundError,
    InvalidKeyError,
    StoreAccessError,
    StoreConfig,
    StoreConfigError,
    StoreUnreachableError,
    open_store,
)
from envbuild.store.layout import descriptor_key, package_key
from envbuild.store.s3 import S3Store

MiB = 1024 * 1024
# small parts so that the multipart path runs on an 11 MiB file (S3's minimum part: 5 MiB)
SMALL_PARTS = StoreConfig(multipart_threshold=5 * MiB, part_size=5 * MiB, concurrency=2)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pkg(data: bytes, name: str = "demo-1.0-0.conda") -> str:
    return package_key(sha(data), name)


# --------------------------------------------------------------------------- listings


def test_missing_pages_through_big_listings_and_stops_early(
    s3_env: S3Server, tmp_path: Path
) -> None:
    """A listing of more than one page (1000 keys) is followed to the end only as far as the
    greatest wanted key."""
    bucket = s3_env.new_bucket()
    client = s3_env.client()
    req = "2" * 40
    keys = [descriptor_key("linux-64", req, f"{i:040x}") for i in range(1100)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: client.put_object(Bucket=bucket, Key=key, Body=b""), keys))
    store = open_store(f"s3://{bucket}", tmp_path)
    s3_env.clear()
    absent = descriptor_key("linux-64", req, "f" * 40)
    assert store.missing([*keys[1050:], absent]) == {absent}
    assert s3_env.count("ListObjectsV2", bucket=bucket) == 2
    s3_env.clear()
    assert store.missing(keys[:3]) == set()
    assert s3_env.count("ListObjectsV2", bucket=bucket) == 1  # stopped after the first page
    assert len(store.list(descriptor_key("linux-64", req, "0" * 40)[:-40])) == 1100


# --------------------------------------------------------------------------- multipart


def test_multipart_upload_is_create_only(s3_env: S3Server, tmp_path: Path) -> None:
    bucket = s3_env.new_bucket()
    store = open_store(f"s3://{bucket}/p", tmp_path, SMALL_PARTS)
    data = os.urandom(11 * MiB)
    src = tmp_path / "big.conda"
    src.write_bytes(data)
    key = pkg(data, "big.conda")
    assert store.put_file(key, src, sha(data)) is True
    assert s3_env.count("UploadPart", bucket=bucket) == 3
    assert s3_env.count("CreateMultipartUpload", bucket=bucket) == 1
    assert s3_env.count("CompleteMultipartUpload", bucket=bucket, status=200) == 1
    assert s3_env.count("PutObject", bucket=bucket) == 0
    dest = tmp_path / "out" / "big.conda"
    store.get_file(key, dest, sha(data))
    assert dest.read_bytes() == data
    s3_env.clear()
    assert store.put_file(key, src, sha(data)) is False  # found by one listing: no parts sent
    assert s3_env.put_count(bucket) == 0


class _RacingS3Store(S3Store):
    """An S3Store whose pre-upload existence check waits for a second writer, so both
    writers upload every part and the server's create-only complete decides."""

    barrier = threading.Barrier(2, timeout=30)

    def missing(self, keys: Any) -> set[str]:
        result = super().missing(keys)
        self.barrier.wait()
        return result


def test_multipart_race_one_complete_wins(s3_env: S3Server, tmp_path: Path) -> None:
    bucket = s3_env.new_bucket()
    data = os.urandom(11 * MiB)
    src = tmp_path / "big.conda"
    src.write_bytes(data)
    key = pkg(data, "big.conda")
    stores = [_RacingS3Store(bucket, "p", SMALL_PARTS) for _ in range(2)]
    results: list[bool] = []
    threads = [
        threading.Thread(target=lambda s=s: results.append(s.put_file(key, src, sha(data))))
        for s in stores
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == [False, True]
    completes = sorted(
        r.status for r in s3_env.requests(bucket) if r.op == "CompleteMultipartUpload"
    )
    assert completes == [200, 412]
    assert s3_env.count("AbortMultipartUpload", bucket=bucket, status=204) == 1
    assert s3_env.client().list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert stores[0].get_bytes(key) == data


# --------------------------------------------------------------------------- errors


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_endpoint(s3_env: S3Server, tmp_path: Path) -> None:
    port = _free_port()  # nothing listens there once the socket is closed
    config = StoreConfig(endpoint_url=f"http://user:secret@127.0.0.1:{port}")
    store = open_store("s3://some-bucket/p", tmp_path, config)
    began = time.monotonic()
    with pytest.raises(StoreUnreachableError) as info:
        store.missing([pkg(b"x")])
    assert time.monotonic() - began < 10
    assert str(info.value) == (
        f"cannot reach the S3 endpoint http://127.0.0.1:{port} of store s3://some-bucket/p"
        " (cannot connect): check AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL (or the workspace's"
        " store endpoint), and the network"
    )
    with pytest.raises(StoreUnreachableError):
        store.put_bytes(pkg(b"x"), b"x")


def test_unreachable_endpoint_from_the_environment(
    s3_env: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = _free_port()
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{port}")
    with pytest.raises(StoreUnreachableError, match=f"http://127.0.0.1:{port} of store"):
        open_store("s3://some-bucket", tmp_path).get_bytes(pkg(b"x"))


def test_missing_bucket(s3_env: S3Server, tmp_path: Path) -> None:
    store = open_store("s3://no-such-bucket/p", tmp_path)
    for call in (lambda: store.missing([pkg(b"x")]), lambda: store.put_bytes(pkg(b"x"), b"x")):
        with pytest.raises(BucketNotFoundError) as info:
            call()
        assert str(info.value) == (
            f"the S3 bucket 'no-such-bucket' of store s3://no-such-bucket/p does not exist at"
            f" {s3_env.url}: create the bucket or fix [workspace] store"
        )


def test_no_credentials(s3_env: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    bucket = s3_env.new_bucket()
    store = open_store(f"s3://{bucket}", tmp_path)
    s3_env.clear()
    with pytest.raises(StoreAccessError) as info:
        store.put_bytes(pkg(b"x"), b"x")
    assert str(info.value) == (
        f"no usable AWS credentials for store s3://{bucket} (NoCredentialsError): set"
        " AWS_PROFILE or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, or configure the standard"
        " credential chain"
    )
    assert s3_env.requests() == []  # refused before anything was sent


def test_unknown_profile(s3_env: S3Server, tmp_path: Path) -> None:
    with pytest.raises(StoreConfigError) as info:
        open_store("s3://bucket", tmp_path, StoreConfig(profile="no-such-profile"))
    assert str(info.value) == (
        "the AWS profile of store s3://bucket does not exist: fix AWS_PROFILE or the"
        " workspace's store profile"
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://user:secret@example.com/store",
         "store URL https://example.com/store: unsupported scheme 'https': fix [workspace] store"
         " (a local path, file:///abs/path or s3://bucket/prefix)"),
        ("s3://key:secret@bucket/p",
         "store URL s3://bucket/p must be s3://bucket/prefix with nothing else (no credentials:"
         " they come from AWS_PROFILE or the standard credential chain)"),
        ("s3://B_/p", "store URL s3://b_/p: 'B_' is not a valid bucket name"),
        ("s3://bucket/../p", "invalid store prefix segment '..': use letters, digits and"
         " . _ + = ! ~ -, not starting with '.'"),
    ],
)  # fmt: skip
def test_bad_store_urls(url: str, expected: str, tmp_path: Path) -> None:
    with pytest.raises((StoreConfigError, InvalidKeyError)) as info:
        open_store(url, tmp_path)
    assert str(info.value) == expected
    assert "secret" not in str(info.value)
