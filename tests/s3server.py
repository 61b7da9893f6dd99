"""A real S3 endpoint on loopback for tests (moto's ThreadedMotoServer) that records every
request at the server, so tests (and envbuild CLI subprocesses) can be counted.

Fixtures (registered in conftest.py):

- ``s3_server`` (session): the running :class:`S3Server`;
- ``s3_env`` (function): the same server, with this process's environment pointed at it
  (``AWS_ENDPOINT_URL_S3``, fake credentials, no profile/config files); CLI subprocesses
  started afterwards (``run_envbuild``) inherit it;
- ``s3_bucket`` (function): a fresh, empty bucket name on that server (implies ``s3_env``).
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import pytest

# The environment that points boto3 (in-process or in a subprocess) at the server. Profiles
# and shared files are switched off so a developer's ~/.aws never leaks into a test.
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}
UNSET = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
         "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE")  # fmt: skip

_OBJECT_WRITES = frozenset({"PutObject", "UploadPart", "CopyObject", "CompleteMultipartUpload"})


@dataclass(frozen=True, slots=True)
class S3Request:
    """One request as the server saw it. ``key`` is "" for bucket-level requests; ``op`` is
    the S3 operation (PutObject, UploadPart, CreateMultipartUpload, CompleteMultipartUpload,
    AbortMultipartUpload, GetObject, HeadObject, ListObjectsV2, ListObjects, CreateBucket,
    HeadBucket, DeleteObject, ... or Other); ``status`` the HTTP status code."""

    method: str
    bucket: str
    key: str
    query: str
    status: int
    op: str

    def __str__(self) -> str:
        query = f"?{self.query}" if self.query else ""
        return f"{self.op} {self.method} /{self.bucket}/{self.key}{query} -> {self.status}"


def classify(method: str, key: str, query: dict[str, list[str]], headers: dict[str, str]) -> str:
    """The S3 operation of a request (path-style), from its method, key and query."""
    if key:
        if method == "PUT":
            if "partNumber" in query:
                return "UploadPart"
            return "CopyObject" if "x-amz-copy-source" in headers else "PutObject"
        if method == "POST":
            if "uploads" in query:
                return "CreateMultipartUpload"
            return "CompleteMultipartUpload" if "uploadId" in query else "Other"
        if method == "DELETE":
            return "AbortMultipartUpload" if "uploadId" in query else "DeleteObject"
        if method == "GET":
            return "ListParts" if "uploadId" in query else "GetObject"
        if method == "HEAD":
            return "HeadObject"
        return "Other"
    if method == "GET":
        if query.get("list-type") == ["2"]:
            return "ListObjectsV2"
        return "ListObjects" if not query else "Other"
    if method == "PUT":
        return "CreateBucket" if not query else "Other"
    if method == "HEAD":
        return "HeadBucket"
    if method == "POST" and "delete" in query:
        return "DeleteObjects"
    return "Other"


class _Recorder:
    """WSGI middleware in front of moto's app: records each request with its status.

    It also runs object writes one at a time. moto checks ``If-None-Match`` and then stores
    the object as two steps, with nothing in between holding other request threads off, so
    two concurrent create-only writes of one key could both succeed on moto, which real S3
    never allows. Serialising the writes gives moto S3's atomic conditional write."""

    def __init__(self, app: Callable[..., Any], server: S3Server) -> None:
        self.app = app
        self.server = server
        self.write_lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO", "")
        query_string = environ.get("QUERY_STRING", "")
        bucket, _, key = path.lstrip("/").partition("/")
        host = environ.get("HTTP_HOST", "").rsplit(":", 1)[0]
        if host not in ("127.0.0.1", "localhost", "") and host.count(".") and not host[0].isdigit():
            bucket, key = host.split(".", 1)[0], path.lstrip("/")  # virtual-hosted style
        # werkzeug gives PATH_INFO as latin-1 decoded bytes
        key = key.encode("latin-1").decode("utf-8", "replace")
        headers = {k[5:].lower().replace("_", "-"): str(v) for k, v in environ.items()
                   if k.startswith("HTTP_")}  # fmt: skip
        op = classify(method, key, parse_qs(query_string, keep_blank_values=True), headers)
        status: list[int] = []

        def recording_start_response(status_line: str, *args: Any) -> Any:
            status.append(int(status_line.split(" ", 1)[0]))
            return start_response(status_line, *args)

        if op in _OBJECT_WRITES:
            with self.write_lock:
                result = list(self.app(environ, recording_start_response))
        else:
            result = self.app(environ, recording_start_response)
        self.server._record(
            S3Request(method, bucket, key, query_string, status[0] if status else 0, op)
        )
        return result


class S3Server:
    """A running moto S3 server on ``127.0.0.1``; every request is recorded at the server.

    ``url``: the endpoint (``http://127.0.0.1:PORT``); ``requests(bucket=None)``: what it has
    received so far; ``count(...)`` / ``put_count(...)`` / ``get_count(...)``: counts;
    ``env()``: the environment variables that point boto3 (and the envbuild CLI) here;
    ``client()``: a boto3 client for arranging fixtures (corrupting objects ...);
    ``new_bucket()``: a fresh bucket."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self._lock = threading.Lock()
        self._requests: list[S3Request] = []
        self._names = itertools.count(1)
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._moto.start()
        wsgi = self._moto._server
        assert wsgi is not None
        # requests are served by the handler reading ``server.app``: wrap it once, before
        # any request
        wsgi.app = _Recorder(wsgi.app, self)  # type: ignore[attr-defined]
        host, port = self._moto.get_host_and_port()
        self.host, self.port = host, port
        self.url = f"http://{host}:{port}"

    def stop(self) -> None:
        self._moto.stop()

    def _record(self, request: S3Request) -> None:
        with self._lock:
            self._requests.append(request)

    # ---------------------------------------------------------------- reading the record

    def requests(self, bucket: str | None = None) -> list[S3Request]:
        """The requests received so far (of ``bucket`` only, if given), oldest first."""
        with self._lock:
            return [r for r in self._requests if bucket is None or r.bucket == bucket]

    def count(
        self, op: str | Iterable[str] | None = None, *, bucket: str | None = None,
        method: str | None = None, status: int | None = None, key_prefix: str = "",
    ) -> int:  # fmt: skip
        """How many recorded requests match every filter given."""
        ops = {op} if isinstance(op, str) else set(op) if op is not None else None
        return sum(
            1
            for r in self.requests(bucket)
            if (ops is None or r.op in ops)
            and (method is None or r.method == method)
            and (status is None or r.status == status)
            and r.key.startswith(key_prefix)
        )

    def put_count(self, bucket: str | None = None, *, succeeded: bool = False) -> int:
        """Object uploads: every HTTP PUT of an object (PutObject, UploadPart, CopyObject);
        with ``succeeded``, only those answered 2xx (a create-only put of an existing key is
        a PUT answered 412)."""
        return sum(
            1
            for r in self.requests(bucket)
            if r.method == "PUT" and r.key and (not succeeded or 200 <= r.status < 300)
        )

    def write_count(self, bucket: str | None = None) -> int:
        """Successful object writes: 2xx PutObject/CopyObject/CompleteMultipartUpload (one per
        object that came into being or was replaced)."""
        writes = ("PutObject", "CopyObject", "CompleteMultipartUpload")
        return sum(1 for r in self.requests(bucket) if r.op in writes and 200 <= r.status < 300)

    def get_count(self, bucket: str | None = None) -> int:
        """Object downloads (GetObject requests, whatever their status)."""
        return self.count("GetObject", bucket=bucket)

    def clear(self) -> None:
        """Forget the requests recorded so far."""
        with self._lock:
            self._requests.clear()

    # ---------------------------------------------------------------- arranging

    def env(self) -> dict[str, str]:
        """Environment variables that point boto3 here with fake credentials. Also unset
        (see :data:`UNSET`) anything that would override them."""
        return {**FAKE_CREDENTIALS, "AWS_ENDPOINT_URL_S3": self.url}

    def apply_env(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Point this process's environment at the server (undone after the test)."""
        for name in UNSET:
            monkeypatch.delenv(name, raising=False)
        for name, value in self.env().items():
            monkeypatch.setenv(name, value)
        no_proxy = ",".join(filter(None, [os.environ.get("NO_PROXY", ""), "127.0.0.1,localhost"]))
        monkeypatch.setenv("NO_PROXY", no_proxy)
        monkeypatch.setenv("no_proxy", no_proxy)

    def client(self) -> Any:
        """A boto3 S3 client for this server that needs no environment."""
        import boto3

        return boto3.session.Session().client(
            "s3", endpoint_url=self.url, region_name="us-east-1",
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )  # fmt: skip

    def new_bucket(self, stem: str = "bkt") -> str:
        """Create a fresh, empty bucket and return its name."""
        name = f"{stem}-{os.getpid()}-{next(self._names)}"
        self.client().create_bucket(Bucket=name)
        return name

    def store_url(self, bucket: str, prefix: str = "") -> str:
        return f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A moto S3 server on loopback for the whole session (see :class:`S3Server`)."""
    server = S3Server()
    yield server
    server.stop()


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """The S3 server, with ``os.environ`` pointed at it for this test (CLI subprocesses
    started with the current environment inherit it)."""
    s3_server.apply_env(monkeypatch)
    return s3_server


@pytest.fixture
def s3_bucket(s3_env: S3Server) -> str:
    """A fresh, empty bucket on the S3 server (the environment points at the server)."""
    return s3_env.new_bucket()
