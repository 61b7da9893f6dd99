"""Acceptance of the artifact stages (issue 8) through the real ``envbuild`` CLI, on real
channels (a demo-style local channel built from recipes, ../shared/data/stub-channel) and a
real S3 endpoint on loopback (moto, requests counted at the server):

- a full run puts every package of every lock in the store, and a rerun of upload sends
  nothing;
- a fresh clone with committed locks and an empty ``.envbuild/`` downloads, builds,
  resolves and uploads nothing;
- a corrupt store object, a corrupt cached file and a ``file://`` package that does not
  match its repodata are caught.

Build reuse, concurrency and store errors: test_artifacts_e2e_build.py,
test_artifacts_e2e_concurrency.py, test_artifacts_e2e_errors.py.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

import pytest
from conftest import REPO_ROOT, SHARED_DATA, build_channel_from_recipes
from s3server import S3Server

from envbuild.descriptor import Descriptor, InstallFile
from envbuild.lock import Lock, read_lock
from envbuild.store import Store, open_store

STAGES = ("fetch", "build", "transmute", "upload")
DEMO = REPO_ROOT / "examples" / "demo"
STUB = SHARED_DATA / "stub-channel"
# An env from the shared stub channel (real conda-forge metadata, stub payloads): python 3.12
# and its closure, .conda and .tar.bz2 packages, for the workspace's two archs.
STUB_ENV = f"""
[env.stub]
channels = [{json.dumps(STUB.as_uri())}]
conda = ["python=3.12", "openssl"]
"""


# --------------------------------------------------------------------------- helpers


def assert_ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "Traceback" not in result.stdout + result.stderr


def ran(result: subprocess.CompletedProcess[str], prefix: str = "") -> set[str]:
    """The tasks a run executed (doit's ``.  NAME`` lines), those starting with ``prefix``."""
    return {ln[3:] for ln in result.stdout.splitlines() if ln.startswith(".  " + prefix)} - {
        "resolve:prune"
    }


def skipped(result: subprocess.CompletedProcess[str], prefix: str = "") -> set[str]:
    """The tasks a run found up to date (``-- NAME``)."""
    return {ln[3:] for ln in result.stdout.splitlines() if ln.startswith("-- " + prefix)} - {
        "resolve:prune"
    }


def reports(result: subprocess.CompletedProcess[str], verb: str) -> list[str]:
    """The ``envbuild.report`` lines of one kind (``uploaded``, ``fetched``, ``built`` ...)."""
    return [ln for ln in result.stderr.splitlines() if ln.startswith(verb + " ")]


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def demo_workspace(root: Path, store: str = "", extra: str = "") -> Path:
    """A copy of examples/demo (its channel built from ./recipes by the channel task; a
    pip-only env from ./wheels; 8 env x arch) with ``store`` and more envs (``extra``)."""
    shutil.copytree(DEMO, root, ignore=shutil.ignore_patterns(".envbuild", "locks", "__pycache__"))
    manifest = root / "envbuild.toml"
    text = manifest.read_text(encoding="utf-8")
    if store:
        text = text.replace("[workspace]\n", f"[workspace]\nstore = {json.dumps(store)}\n", 1)
    manifest.write_text(text + extra, encoding="utf-8")
    return root


def stub_env() -> str:
    """The stub-channel env, or skip the test when ../shared/data is absent."""
    if not STUB.is_dir():
        pytest.skip(f"shared channel data not found at {STUB} (not in a fresh clone)")
    return STUB_ENV


def locks_of(ws: Path) -> dict[str, Lock]:
    """Every lock of the workspace by ``env@arch``."""
    out = {}
    for path in sorted((ws / "locks").glob("*/*.json")):
        out[f"{path.parent.name}@{path.stem}"] = read_lock(path)
    return out


def descriptor_key_of(lock: Lock) -> str:
    env = lock.env_id
    return f"envs/{env.arch}/{env.req_id}/{env.full_id}"


def package_key_of(sha256: str, filename: str) -> str:
    return f"pkgs/{sha256[:2]}/{sha256}/{filename}"


def workspace_store(ws: Path) -> Store:
    import tomllib

    data = tomllib.loads((ws / "envbuild.toml").read_text(encoding="utf-8"))
    return open_store(data["workspace"].get("store", ""), ws)


def check_published(
    store: Store, ws: Path, preferred: str = ".conda"
) -> dict[str, dict[str, InstallFile]]:
    """Assert that the store holds a descriptor for every lock of ``ws`` naming one file per
    package, in the preferred format (a transmuted file names the locked one as its
    original), at ``pkgs/<sha[:2]>/<sha>/<filename>`` (built wheels under ``wheels/``), and
    that every object named exists and hashes to its sha256. Returns the files of each
    descriptor by package name, by ``env@arch``."""
    other = ".tar.bz2" if preferred == ".conda" else ".conda"
    verified: dict[str, str] = {}
    out: dict[str, dict[str, InstallFile]] = {}
    locks = locks_of(ws)
    assert locks, "no locks"
    for name, lock in locks.items():
        key = descriptor_key_of(lock)
        descriptor = Descriptor.loads(store.get_bytes(key), key)
        assert descriptor.lock.to_dict() == lock.to_dict(), name
        files = {f.name: f for f in descriptor.files}
        assert sorted(files) == sorted(p.name for p in lock.packages), name
        for pkg in lock.packages:
            file = files[pkg.name]
            if pkg.source is not None:  # built: its wheel, under wheels/
                assert file.key.startswith("wheels/") and file.filename.endswith(".whl")
                assert file.key.endswith(f"/{file.sha256}/{file.filename}")
                assert file.built_from == pkg.source.identity
            elif pkg.kind == "conda" and pkg.filename.endswith(other):
                assert file.filename == pkg.filename[: -len(other)] + preferred, name
                assert (file.original_filename, file.original_sha256) == (pkg.filename, pkg.sha256)
                assert file.sha256 != pkg.sha256
                assert file.key == package_key_of(file.sha256, file.filename)
            else:
                assert (file.filename, file.sha256) == (pkg.filename, pkg.sha256), name
                assert file.key == package_key_of(pkg.sha256, pkg.filename)
            if file.key not in verified:
                data = store.get_bytes(file.key)
                assert sha256_of(data) == file.sha256, file.key
                assert len(data) == file.size or file.size == 0, file.key
                verified[file.key] = file.sha256
        out[name] = files
    stored = [k for k in store.list("pkgs/")]
    assert not [k for k in stored if k.endswith(other)], "a package not in the preferred format"
    assert set(stored) == {k for k in verified if k.startswith("pkgs/")}
    return out


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
        cwd=cwd, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip


def commit_and_clone(src: Path, dst: Path) -> Path:
    """Commit ``src`` (locks included, ``.envbuild/`` ignored) and clone it to ``dst``."""
    (src / ".gitignore").write_text(".envbuild/\n", encoding="utf-8")
    git(src, "init", "-q")
    git(src, "add", "-A")
    git(src, "commit", "-qm", "locks")
    git(src.parent, "clone", "-q", str(src), str(dst))
    assert not (dst / ".envbuild").exists()
    assert sorted(p.relative_to(dst) for p in (dst / "locks").rglob("*.json")) == sorted(
        p.relative_to(src) for p in (src / "locks").rglob("*.json")
    )
    return dst


def flip_byte(path: Path, offset: int | None = None) -> None:
    """Change one byte of a file in place (same size), even a read-only one."""
    mode = path.stat().st_mode
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    i = len(data) // 2 if offset is None else offset
    data[i] ^= 0xFF
    with open(path, "r+b") as fh:
        fh.write(bytes(data))
    path.chmod(mode & 0o7777)


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def object_puts(server: S3Server, bucket: str) -> dict[str, int]:
    """Successful object writes per key, as the server saw them."""
    out: dict[str, int] = {}
    for r in server.requests(bucket):
        if r.op in ("PutObject", "CopyObject", "CompleteMultipartUpload") and 200 <= r.status < 300:
            out[r.key] = out.get(r.key, 0) + 1
    return out


def all_subtasks(ws: Path, stages: Iterable[str] = STAGES) -> set[str]:
    return {f"{stage}:{name}" for stage in stages for name in locks_of(ws)}


# --------------------------------------------------------------------------- 2. full run, rerun


@pytest.mark.slow
def test_full_run_then_rerun_uploads_nothing(tmp_path, s3_bucket, s3_env, run_cli):
    """A full run over the stub channel and a demo channel puts every package of every lock
    in the S3 store (in the preferred format: the .tar.bz2 ones transmuted), a descriptor per
    lock naming them; then ``forget upload && upload`` sends 0 PUTs, counted at the server."""
    ws = demo_workspace(tmp_path / "ws", f"s3://{s3_bucket}/team/envs", stub_env())
    result = run_cli(ws, "-v")
    assert_ok(result)
    subtasks = all_subtasks(ws)
    assert {"hello@linux-64", "tools@linux-aarch64", "stub@linux-64", "stub@osx-arm64"} <= set(
        locks_of(ws)
    )
    assert {t for t in subtasks if t.startswith("upload:")} <= ran(result)
    # a fetch whose files another env's fetch brought in already is up to date
    assert {t for t in subtasks if t.startswith("fetch:")} <= ran(result) | skipped(result)
    uploaded = reports(result, "uploaded")
    assert sorted(ln.split(":")[0] for ln in uploaded) == sorted(
        f"uploaded {name}" for name in locks_of(ws)
    )
    assert reports(result, "transmuted"), "the .tar.bz2 packages were not transmuted"
    files = check_published(workspace_store(ws), ws)
    # the stub channel's .tar.bz2 packages went in as .conda
    stub_files = files["stub@linux-64"]
    assert stub_files["xz"].original_filename == "xz-5.2.6-h166bdaf_0.tar.bz2"
    assert stub_files["xz"].filename == "xz-5.2.6-h166bdaf_0.conda"
    # a package shared by envs and archs is one object, written once
    puts = object_puts(s3_env, s3_bucket)
    assert puts and max(puts.values()) == 1, puts

    before = s3_env.put_count(s3_bucket)
    assert_ok(run_cli(ws, "forget", "upload"))
    rerun = run_cli(ws, "upload", "-v")
    assert_ok(rerun)
    assert s3_env.put_count(s3_bucket) == before  # 0 PUTs
    assert ran(rerun, "upload") == set()
    assert skipped(rerun, "upload:") == all_subtasks(ws, ["upload"])
    assert reports(rerun, "uploaded") == []


# --------------------------------------------------------------------------- 3. fresh runner


LOCAL_PKG_ENV = """
[env.built]
python = "3.11"
pypi = ["./localpkg"]
archs = ["linux-64"]
"""


@pytest.mark.slow
def test_fresh_runner_downloads_builds_and_uploads_nothing(tmp_path, s3_bucket, s3_env, run_cli):
    """Workspace A runs fully against the S3 store and commits its locks; a clone of it (no
    ``.envbuild/``) on the same store runs ``envbuild``: no resolve, no build, no stage
    runs, 0 PUTs and 0 object GETs, counted at the server."""
    from pypi_index import make_source_tree

    store = f"s3://{s3_bucket}/ci"
    extra = (stub_env() if STUB.is_dir() else "") + LOCAL_PKG_ENV
    src = demo_workspace(tmp_path / "a", store, extra)
    make_source_tree(src / "localpkg", "localpkg", "4.0", [])
    first = run_cli(src)
    assert_ok(first)
    assert reports(first, "built") == ["built built@linux-64: 1 wheels"]
    check_published(workspace_store(src), src)
    clone = commit_and_clone(src, tmp_path / "b")

    s3_env.clear()
    result = run_cli(clone, "-v")
    assert_ok(result)
    assert ran(result, "resolve:") == set()  # solves = 0
    assert ran(result) <= {"channel:demo"}  # only the local channel is rebuilt
    assert skipped(result) >= all_subtasks(clone) | {f"resolve:{n}" for n in locks_of(clone)}
    assert reports(result, "built") == reports(result, "fetched") == []
    assert reports(result, "uploaded") == []
    assert s3_env.put_count(s3_bucket) == 0
    assert s3_env.count("GetObject", bucket=s3_bucket) == 0  # no package, wheel or descriptor
    assert (
        not (clone / ".envbuild" / "pkgs").exists()
        or files_under(clone / ".envbuild" / "pkgs") == []
    )
    # what the clone did ask: listings only
    assert {r.op for r in s3_env.requests(s3_bucket)} <= {"ListObjectsV2"}


# --------------------------------------------------------------------------- 4. integrity


@pytest.fixture(params=["local", "s3"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def corrupt_store_object(ws: Path, key: str, server: S3Server | None, bucket: str) -> bytes:
    """Flip one byte of a store object (directly on disk, or rewritten with boto3);
    returns the corrupt bytes."""
    if server is None:
        path = ws / ".envbuild" / "store" / key
        flip_byte(path)
        return path.read_bytes()
    client = server.client()
    full = f"ws/{key}"
    data = bytearray(client.get_object(Bucket=bucket, Key=full)["Body"].read())
    data[len(data) // 2] ^= 0xFF
    client.put_object(Bucket=bucket, Key=full, Body=bytes(data))
    return bytes(data)


def delete_descriptors(ws: Path, server: S3Server | None, bucket: str) -> None:
    """Remove every env descriptor from the store, so that its packages must be fetched (as
    for an env that shares them with envs already published)."""
    if server is None:
        shutil.rmtree(ws / ".envbuild" / "store" / "envs")
        return
    client = server.client()
    listed = client.list_objects_v2(Bucket=bucket, Prefix="ws/envs/").get("Contents", [])
    assert listed
    for obj in listed:
        client.delete_object(Bucket=bucket, Key=obj["Key"])


@pytest.mark.slow
def test_corrupt_store_object_is_refetched_from_origin(
    store_kind, tmp_path, s3_server, monkeypatch, run_cli
):
    """A store object with one flipped byte is detected on fetch, reported on stderr naming
    it, fetched from its origin instead, and never enters the cache."""
    server: S3Server | None = None
    bucket = ""
    store = ""
    if store_kind == "s3":
        server = s3_server
        server.apply_env(monkeypatch)
        bucket = server.new_bucket("integrity")
        store = f"s3://{bucket}/ws"
    ws = demo_workspace(tmp_path / "ws", store)
    assert_ok(run_cli(ws))
    lock = locks_of(ws)["hello@linux-64"]
    hello = next(p for p in lock.packages if p.name == "demo-hello")
    key = package_key_of(hello.sha256, hello.filename)
    bad = corrupt_store_object(ws, key, server, bucket)
    delete_descriptors(ws, server, bucket)
    shutil.rmtree(ws / ".envbuild" / "pkgs")

    result = run_cli(ws, "fetch", "env=hello", "arch=linux-64")
    assert_ok(result)
    store_url = f"s3://{bucket}/ws" if server else ".envbuild/store"
    problems = [ln for ln in result.stderr.splitlines() if key in ln]
    assert problems, result.stderr
    assert f"store copy of {hello.filename} rejected" in problems[0]
    assert (
        f"{store_url}: integrity check failed for {key}: sha256 {sha256_of(bad)}, expected {hello.sha256}"
        in problems[0]
    )
    assert reports(result, "fetched") == [
        "fetched hello@linux-64: 0 cached, 1 from the store, 1 from origin (0.0 MB)"
    ]
    cached = ws / ".envbuild" / "pkgs" / hello.sha256[:2] / hello.sha256 / hello.filename
    assert sha256_of(cached.read_bytes()) == hello.sha256
    for path in files_under(ws / ".envbuild" / "pkgs"):
        assert path.read_bytes() != bad, path  # never in the cache, not even a temp file
    assert not [
        p for p in files_under(ws / ".envbuild" / "pkgs") if p.name.endswith((".part", ".store"))
    ]


@pytest.mark.slow
def test_corrupt_cached_file_is_refetched_from_origin(tmp_path, run_cli):
    """A cached package with one flipped byte (same size) is detected on fetch, reported on
    stderr naming it, removed and fetched again from its origin."""
    ws = demo_workspace(tmp_path / "ws")
    assert_ok(run_cli(ws))
    lock = locks_of(ws)["hello@linux-64"]
    hello = next(p for p in lock.packages if p.name == "demo-hello")
    cached = ws / ".envbuild" / "pkgs" / hello.sha256[:2] / hello.sha256 / hello.filename
    size = cached.stat().st_size
    flip_byte(cached)
    assert cached.stat().st_size == size
    bad = cached.read_bytes()
    shutil.rmtree(ws / ".envbuild" / "store")  # nothing published, nothing in the store

    result = run_cli(ws, "fetch", "env=hello", "arch=linux-64")
    assert_ok(result)
    problems = [ln for ln in result.stderr.splitlines() if hello.filename in ln]
    assert problems, result.stderr
    assert (
        f"cached {hello.filename} has sha256 {sha256_of(bad)}, the lock says {hello.sha256}"
        in problems[0]
    )
    assert reports(result, "fetched") == [
        "fetched hello@linux-64: 1 cached, 0 from the store, 1 from origin (0.0 MB)"
    ]
    assert sha256_of(cached.read_bytes()) == hello.sha256
    assert not [p for p in files_under(ws / ".envbuild" / "pkgs") if p.read_bytes() == bad]


@pytest.mark.slow
def test_file_channel_package_not_matching_its_repodata_is_refused(tmp_path, run_cli):
    """A ``file://`` channel package whose bytes differ from its repodata sha256 (rattler
    would not check) is refused: exit 2, one line naming the file; nothing cached or stored."""
    from test_resolve_local import LIB_11

    chan = build_channel_from_recipes([LIB_11], tmp_path / "chan")
    (package,) = sorted((chan / "linux-64").glob("demo-lib-*"))
    repodata = json.loads((chan / "linux-64" / "repodata.json").read_text())
    record = {**repodata.get("packages", {}), **repodata.get("packages.conda", {})}[package.name]
    flip_byte(package)
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "envbuild.toml").write_text(
        "[workspace]\n"
        'archs = ["linux-64"]\n'
        f"channels = [{json.dumps(chan.as_uri())}]\n"
        "[env.lib]\n"
        'conda = ["demo-lib"]\n'
    )
    assert_ok(run_cli(ws, "resolve"))
    result = run_cli(ws)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("envbuild: error:")]
    assert errors == [
        f"envbuild: error: fetch lib@linux-64: could not fetch {package.name}: {package.name} "
        f"from {package.as_uri()}: {package.name}: got sha256 {sha256_of(package.read_bytes())}, "
        f"the lock says {record['sha256']}: not cached"
    ]
    assert not (ws / ".envbuild" / "pkgs").exists() or not [
        p for p in files_under(ws / ".envbuild" / "pkgs") if p.name == package.name
    ]
    assert (
        not (ws / ".envbuild" / "store").exists() or files_under(ws / ".envbuild" / "store") == []
    )
