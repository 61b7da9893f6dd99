"""One store test suite, run against LocalStore and against S3Store on a real S3 endpoint on
loopback (moto's ThreadedMotoServer; requests counted at the server; no mock_aws)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from s3server import S3Server

from envbuild.store import (
    AliasConflictError,
    IntegrityError,
    InvalidKeyError,
    LocalStore,
    ObjectNotFoundError,
    Store,
    StoreConfig,
    StoreConfigError,
    StoreError,
    get_alias,
    open_store,
    put_alias,
)
from envbuild.store.layout import descriptor_key, package_key, wheel_key, wheel_prefix
from envbuild.store.s3 import S3Store

REPO_ROOT = Path(__file__).resolve().parents[1]
MiB = 1024 * 1024
# small parts so that the multipart path runs on an 11 MiB file (S3's minimum part: 5 MiB)
SMALL_PARTS = StoreConfig(multipart_threshold=5 * MiB, part_size=5 * MiB, concurrency=2)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pkg(data: bytes, name: str = "demo-1.0-0.conda") -> str:
    return package_key(sha(data), name)


@dataclass
class Backend:
    """A store under test plus a way around it (to corrupt objects) and the server, if any."""

    kind: str
    store: Store
    server: S3Server | None = None
    bucket: str = ""
    prefix: str = ""
    root: Path | None = None

    def overwrite(self, key: str, data: bytes) -> None:
        """Replace an object's bytes behind the store's back (a corrupted object)."""
        if self.server is not None:
            self.server.client().put_object(Bucket=self.bucket, Key=self.full(key), Body=data)
        else:
            assert self.root is not None
            path = self.root.joinpath(*key.split("/"))
            path.chmod(0o644)
            path.write_bytes(data)

    def full(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def count(self, op: str) -> int:
        assert self.server is not None
        return self.server.count(op, bucket=self.bucket)


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "local":
        store = open_store(".envbuild/store", tmp_path)
        return Backend("local", store, root=tmp_path / ".envbuild" / "store")
    server: S3Server = request.getfixturevalue("s3_env")
    bucket = server.new_bucket()
    store = open_store(f"s3://{bucket}/team/cache", tmp_path, SMALL_PARTS)
    return Backend("s3", store, server, bucket, "team/cache")


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


# --------------------------------------------------------------------------- basics


def test_open_store_kinds(tmp_path: Path, s3_env: S3Server) -> None:
    local = open_store(".envbuild/store", tmp_path)
    assert isinstance(local, LocalStore) and local.url == ".envbuild/store"
    assert local.root == tmp_path / ".envbuild" / "store"
    absolute = open_store(f"file://{tmp_path}/s", tmp_path)
    assert isinstance(absolute, LocalStore) and absolute.root == tmp_path / "s"
    s3 = open_store("s3://my-bucket/a/b/", tmp_path)
    assert isinstance(s3, S3Store) and s3.url == "s3://my-bucket/a/b"
    assert isinstance(local, Store) and isinstance(s3, Store)


def test_round_trip(backend: Backend, tmp_path: Path) -> None:
    store = backend.store
    data = os.urandom(3000)
    src = tmp_path / "demo-1.0-0.conda"
    src.write_bytes(data)
    key = pkg(data)
    assert store.missing([key]) == {key}
    assert store.put_file(key, src, sha(data)) is True
    assert store.missing([key]) == set()
    assert store.get_bytes(key) == data
    dest = tmp_path / "cache" / "sub" / "demo-1.0-0.conda"
    store.get_file(key, dest, sha(data))
    assert dest.read_bytes() == data
    assert leftovers(dest.parent) == ["demo-1.0-0.conda"]
    assert store.put_bytes("envs/linux-64/" + "a" * 40 + "/" + "b" * 40, b"{}") is True
    assert store.list("pkgs/") == [key]
    assert store.list("envs/linux-64/") == ["envs/linux-64/" + "a" * 40 + "/" + "b" * 40]
    assert store.list("") == sorted([key, "envs/linux-64/" + "a" * 40 + "/" + "b" * 40])
    assert store.list(key[:10]) == [key]
    assert store.list("wheels/") == []


def test_create_only(backend: Backend, tmp_path: Path) -> None:
    store = backend.store
    first, second = b"first version", b"second version"
    key = "aliases/team/app/v1.tag"
    assert store.put_bytes(key, first) is True
    assert store.put_bytes(key, second) is False
    assert store.get_bytes(key) == first
    other = tmp_path / "other"
    other.write_bytes(second)
    assert store.put_file(key, other, sha(second)) is False
    assert store.get_bytes(key) == first
    if backend.server is not None:
        puts = [r.status for r in backend.server.requests(backend.bucket) if r.op == "PutObject"]
        assert puts == [200, 412, 412]  # the conditional write was refused by the server


def test_put_file_refuses_a_file_that_does_not_match_its_hash(
    backend: Backend, tmp_path: Path
) -> None:
    src = tmp_path / "f.conda"
    src.write_bytes(b"actual bytes")
    key = pkg(b"claimed bytes", "f.conda")
    with pytest.raises(IntegrityError) as info:
        backend.store.put_file(key, src, sha(b"claimed bytes"))
    assert str(info.value) == (
        f"{backend.store.url}: integrity check failed for {key}: sha256 {sha(b'actual bytes')},"
        f" expected {sha(b'claimed bytes')} (the file to upload does not match its hash)"
    )
    assert backend.store.missing([key]) == {key}
    if backend.root is not None:
        assert leftovers(backend.root.joinpath(*key.split("/")[:-1])) == []
    if backend.server is not None:
        assert backend.count("PutObject") == 0


def test_get_file_verifies(backend: Backend, tmp_path: Path) -> None:
    store = backend.store
    good = os.urandom(5000)
    key = pkg(good)
    assert store.put_bytes(key, good)
    backend.overwrite(key, good[:-1] + bytes([good[-1] ^ 1]))  # one flipped bit
    bad_sha = sha(good[:-1] + bytes([good[-1] ^ 1]))
    dest_dir = tmp_path / "cache"
    dest = dest_dir / "demo-1.0-0.conda"
    with pytest.raises(IntegrityError) as info:
        store.get_file(key, dest, sha(good))
    message = str(info.value)
    assert message == (
        f"{store.url}: integrity check failed for {key}: sha256 {bad_sha}, expected {sha(good)}"
        " (the object is corrupt and was not used)"
    )
    assert "\n" not in message
    assert leftovers(dest_dir) == []  # no dest, no temp file
    # an existing destination is left exactly as it was
    dest.write_bytes(b"previous")
    with pytest.raises(IntegrityError):
        store.get_file(key, dest, sha(good))
    assert dest.read_bytes() == b"previous" and leftovers(dest_dir) == [dest.name]


def test_get_absent(backend: Backend, tmp_path: Path) -> None:
    key = pkg(b"nothing")
    with pytest.raises(ObjectNotFoundError) as info:
        backend.store.get_bytes(key)
    assert str(info.value) == f"{backend.store.url}: object {key} does not exist in the store"
    with pytest.raises(ObjectNotFoundError):
        backend.store.get_file(key, tmp_path / "x" / "f", sha(b"nothing"))
    assert leftovers(tmp_path / "x") == []


def test_invalid_keys_are_refused(backend: Backend) -> None:
    for key in ("../etc/passwd", "/abs/key", "a//b", "a/./b", "a/b/", "", "a/.hidden",
                "https://user:pw@host/x", "a b"):  # fmt: skip
        with pytest.raises(InvalidKeyError):
            backend.store.put_bytes(key, b"x")
        with pytest.raises(InvalidKeyError):
            backend.store.missing([key])


# --------------------------------------------------------------------------- batching


def test_missing_is_batched_by_listing(backend: Backend, tmp_path: Path) -> None:
    store = backend.store
    blobs = [f"package {i}".encode() for i in range(50)]
    keys = [pkg(b, f"p{i}-1.0-0.conda") for i, b in enumerate(blobs)]
    for key, blob in zip(keys[::2], blobs[::2], strict=True):
        assert store.put_bytes(key, blob)
    # a temp file left by a killed writer is not an object
    if backend.root is not None:
        directory = backend.root.joinpath(*keys[1].split("/")[:-1])
        directory.mkdir(parents=True)
        (directory / f".{keys[1].rsplit('/', 1)[1]}.abc.part").write_bytes(b"partial")
    if backend.server is not None:
        backend.server.clear()
    assert store.missing(keys) == set(keys[1::2])
    if backend.server is not None:
        distinct_dirs = len({k.rsplit("/", 1)[0] for k in keys})
        lists = backend.count("ListObjectsV2")
        assert 1 <= lists <= distinct_dirs
        assert lists <= len({k.split("/")[1] for k in keys})  # one per shard at most
        assert backend.count("HeadObject") == 0 and backend.count("GetObject") == 0
        # keys of one directory: one listing (the wheels of one source, the descriptors of
        # one requirement set)
        source = sha(b"some source identity")
        wheels = [wheel_key(source, sha(bytes([i])), f"w-{i}-py3-none-any.whl") for i in range(20)]
        descriptors = [descriptor_key("linux-64", "1" * 40, f"{i:040x}") for i in range(20)]
        for key in wheels[:5] + descriptors[:5]:
            store.put_bytes(key, b"x")
        backend.server.clear()
        assert store.missing(wheels) == set(wheels[5:])
        assert backend.count("ListObjectsV2") == 1
        assert store.missing(descriptors) == set(descriptors[5:])
        assert backend.count("ListObjectsV2") == 2
        assert store.list(wheel_prefix(source)) == sorted(wheels[:5])


# --------------------------------------------------------------------------- aliases


def test_aliases(backend: Backend) -> None:
    store = backend.store
    assert put_alias(store, "team/app:latest", b"req:one") is True
    assert put_alias(store, "team/app", b"req:two") is True  # latest moves
    assert get_alias(store, "team/app:latest") == b"req:two"
    assert put_alias(store, "team/app:v1", b"req:one") is True
    assert put_alias(store, "team/app:v1", b"req:one") is False  # same target: a no-op
    with pytest.raises(AliasConflictError) as info:
        put_alias(store, "team/app:v1", b"req:two")
    assert str(info.value) == (
        f"alias team/app:v1 in {store.url} already points at another env and tag 'v1' is"
        " immutable (only latest, candidate and stable move): use a new tag"
    )
    assert get_alias(store, "team/app:v1") == b"req:one"
    # a name that extends another alias's name does not collide with its tags
    assert put_alias(store, "team/app/v1:stable", b"req:three") is True
    assert store.list("aliases/team/") == [
        "aliases/team/app/latest.tag",
        "aliases/team/app/v1.tag",
        "aliases/team/app/v1/stable.tag",
    ]
    with pytest.raises(InvalidKeyError):
        put_alias(store, f"{'a' * 40}:{'b' * 40}", b"x")


# --------------------------------------------------------------------------- concurrency

_WRITER = """
import json, sys, time
from pathlib import Path
from envbuild.store import open_store
url, root, start, files = sys.argv[1], Path(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]
store = open_store(url, root)
time.sleep(max(0.0, start - time.time()))
out = {}
for i, name in enumerate(files):
    path = Path(name)
    data = path.read_bytes()
    import hashlib
    digest = hashlib.sha256(data).hexdigest()
    key = f"pkgs/{digest[:2]}/{digest}/{path.name}"
    if i % 2:
        out[key] = store.put_bytes(key, data)
    else:
        out[key] = store.put_file(key, path, digest)
print(json.dumps(out))
"""


def test_two_processes_put_the_same_keys(backend: Backend, tmp_path: Path) -> None:
    files = []
    for i in range(20):
        path = tmp_path / "src" / f"p{i}-1.0-0.conda"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(os.urandom(2000 + i))
        files.append(path)
    url = backend.store.url if backend.kind == "s3" else ".envbuild/store"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    start = time.time() + 1.5  # both start writing at the same moment
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, url, str(tmp_path), str(start), *map(str, files)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    results = [json.loads(out) for out, _ in outputs]
    assert results[0].keys() == results[1].keys() and len(results[0]) == 20
    for key in results[0]:
        assert sorted([results[0][key], results[1][key]]) == [False, True], key
    for path in files:
        data = path.read_bytes()
        key = pkg(data, path.name)
        assert backend.store.get_bytes(key) == data
    if backend.server is not None:
        assert backend.server.write_count(backend.bucket) == 20  # no object written twice


# --------------------------------------------------------------------------- local errors


def test_local_store_under_a_file(tmp_path: Path) -> None:
    """A store path whose parent is a regular file: one clear line, nothing written."""
    (tmp_path / "occupied").write_text("a file, not a directory")
    store = open_store("occupied/store", tmp_path)
    with pytest.raises(StoreConfigError) as info:
        store.put_bytes(pkg(b"x"), b"x")
    assert str(info.value) == (
        f"local store occupied/store cannot hold {pkg(b'x')}: a part of its path is a file,"
        " not a directory: fix [workspace] store"
    )
    assert store.missing([pkg(b"x")]) == {pkg(b"x")}  # reading finds nothing, no error


def run_as_user(uid: int | None, probe: Any) -> Any:
    """``probe()`` in a forked child that first drops to ``uid`` (when given); its JSON result.

    Forking (no exec) keeps this interpreter, which another user may not be allowed to run."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(read_end)
            if uid is not None:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
            payload = json.dumps({"ok": probe()})
        except BaseException as exc:
            payload = json.dumps({"crash": repr(exc)})
        os.write(write_end, payload.encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as fh:
        raw = fh.read()
    os.waitpid(pid, 0)
    result = json.loads(raw)
    assert "crash" not in result, result["crash"]
    return result["ok"]


@pytest.fixture
def world_readable_dir() -> Iterator[Path]:
    """A directory another user can enter (pytest's tmp dirs are private to their owner)."""
    path = Path(tempfile.mkdtemp(prefix="envbuild-ro-"))
    path.chmod(0o755)
    yield path
    for sub in path.rglob("*"):
        if sub.is_dir():
            sub.chmod(0o755)
    shutil.rmtree(path)


def test_read_only_local_store(world_readable_dir: Path) -> None:
    """A store directory without write permission: reads work, a write is one clear line.

    The permission check must come from the kernel, not from a mock. root ignores directory
    permissions, so when the tests run as root the probe runs in a child process as the
    unprivileged user ``nobody`` (forked, then ``setuid``); otherwise in a forked child of the
    current user."""
    root = world_readable_dir
    store = LocalStore(root / "store", "store")
    existing = pkg(b"already there")
    assert store.put_bytes(existing, b"already there")
    for directory in [root / "store", *(root / "store").rglob("*")]:
        if directory.is_dir():
            directory.chmod(0o555)
    user: int | None = None
    if os.geteuid() == 0:
        try:
            import pwd

            user = pwd.getpwnam("nobody").pw_uid
        except KeyError:
            pytest.skip("running as root and there is no 'nobody' user to drop to")
    new = pkg(b"new")

    def probe() -> dict[str, Any]:
        out: dict[str, Any] = {"read": store.get_bytes(existing).decode()}
        try:
            store.put_bytes(new, b"new")
            out["write"] = "succeeded"
        except StoreError as exc:
            out["write"] = [type(exc).__name__, str(exc)]
        return out

    out = run_as_user(user, probe)
    assert out["read"] == "already there"
    assert out["write"] == [
        "StoreAccessError",
        f"local store store is not writable (Permission denied, at {new}): fix the directory's"
        " permissions or [workspace] store",
    ]
    assert store.missing([new]) == {new}
