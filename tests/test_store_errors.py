"""The mapping of botocore exceptions to one-line store errors (S3 answers moto cannot give:
a 403 needs IAM, a redirect needs real regions), and the error classes' contract."""

from __future__ import annotations

import pickle

import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError

from envbuild.errors import EnvbuildError
from envbuild.store import (
    BucketNotFoundError,
    IntegrityError,
    ObjectNotFoundError,
    StoreAccessError,
    StoreConfigError,
    StoreError,
    StoreUnreachableError,
)
from envbuild.store.s3errors import Where, is_precondition_failed, redact_endpoint

WHERE = Where("s3://team-envs/cache", "team-envs", "https://s3.example.com")


def client_error(code: str, status: int, operation: str = "PutObject") -> ClientError:
    response = {"Error": {"Code": code, "Message": "as S3 says\nit"},
                "ResponseMetadata": {"HTTPStatusCode": status}}  # fmt: skip
    return ClientError(response, operation)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("exc", "cls", "message"),
    [
        (client_error("AccessDenied", 403), StoreAccessError,
         "access denied to s3://team-envs/cache/pkgs/k (put, AccessDenied): check the AWS"
         " credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID, the standard credential chain) and the"
         " bucket's policy"),
        (client_error("403", 403, "HeadObject"), StoreAccessError,
         "access denied to s3://team-envs/cache/pkgs/k (put, 403): check the AWS credentials"
         " (AWS_PROFILE, AWS_ACCESS_KEY_ID, the standard credential chain) and the bucket's"
         " policy"),
        (client_error("NoSuchBucket", 404), BucketNotFoundError,
         "the S3 bucket 'team-envs' of store s3://team-envs/cache does not exist at"
         " https://s3.example.com: create the bucket or fix [workspace] store"),
        (client_error("NoSuchKey", 404), ObjectNotFoundError,
         "s3://team-envs/cache: object pkgs/k does not exist in the store"),
        (client_error("PermanentRedirect", 301), StoreConfigError,
         "the S3 bucket 'team-envs' of store s3://team-envs/cache is in another region"
         " (PermanentRedirect): set AWS_REGION or the workspace's store region"),
        (client_error("InternalError", 500), StoreError,
         "S3 put of s3://team-envs/cache/pkgs/k failed: InternalError: as S3 says it"),
        (EndpointConnectionError(endpoint_url="https://s3.example.com"), StoreUnreachableError,
         "cannot reach the S3 endpoint https://s3.example.com of store s3://team-envs/cache"
         " (cannot connect): check AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL (or the workspace's"
         " store endpoint), and the network"),
        (ConnectTimeoutError(endpoint_url="https://s3.example.com"), StoreUnreachableError,
         "cannot reach the S3 endpoint https://s3.example.com of store s3://team-envs/cache"
         " (timed out): check AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL (or the workspace's"
         " store endpoint), and the network"),
    ],
)  # fmt: skip
def test_translate(exc: Exception, cls: type[StoreError], message: str) -> None:
    error = WHERE.translate(exc, "put", "pkgs/k")
    assert type(error) is cls
    assert str(error) == message
    assert isinstance(error, EnvbuildError) and error.exit_code == 2


def test_precondition_failed() -> None:
    assert is_precondition_failed(client_error("PreconditionFailed", 412))
    assert not is_precondition_failed(client_error("AccessDenied", 403))


def test_endpoints_are_shown_without_credentials() -> None:
    assert redact_endpoint("https://user:secret@host:9000/path?x=1") == "https://host:9000/path"
    assert redact_endpoint(None) == "the default AWS endpoint"


def test_errors_are_one_line_and_picklable() -> None:
    assert str(StoreError("two\nlines  here")) == "two lines here"
    for error in (IntegrityError("u", "k", "a", "b"), ObjectNotFoundError("u", "k")):
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error) and str(copy) == str(error)
