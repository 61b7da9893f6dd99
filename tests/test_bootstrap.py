"""Envs from a store reference or a bundle, with no workspace (issue 9, acceptance 2 and 3),
and the store-reference commands: alias, get, show REF, pack, create --jupyter.

Workspace A is a copy of examples/demo (env ``cli``: pip-only on a host python 3.11 with a
console script; ``hello``: conda-only from the local demo channel). The acceptance tests use
a real S3 endpoint on loopback (moto, counted at the server); the command tests a store in a
local directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Mapping
from pathlib import Path

import pytest
from conftest import REPO_ROOT, _cli_env
from pypi_index import core_metadata, wheel_bytes
from s3server import S3Server

from envbuild.descriptor import Descriptor
from envbuild.lock import Lock, read_lock
from envbuild.platforms import host_arch

DEMO = REPO_ROOT / "examples" / "demo"
UNREACHABLE = "http://127.0.0.1:9"  # the discard port: connection refused
GREETING = "Hello from demo-cli, with demo-greeting 1.0.0!"
HOST = host_arch()

if HOST not in ("linux-64", "osx-arm64"):  # the demo's archs
    pytest.skip(f"the demo workspace has no env for {HOST}", allow_module_level=True)

# An env with a (stand-in) ipykernel, for --jupyter: a wheel in the demo's find-links dir.
NB_ENV = f"""
[env.nb]
python = "3.11"
python-source = "host"
archs = ["{HOST}"]
pypi = ["ipykernel", "--no-index", "--find-links wheels"]
"""


# --------------------------------------------------------------------------- helpers


@pytest.fixture(autouse=True)
def _private_user_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never the real ~/.cache/envbuild."""
    monkeypatch.setenv("ENVBUILD_CACHE", str(tmp_path / "user-cache"))


def envbuild(
    cwd: Path, *args: str | Path, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The envbuild CLI in a real process (``env``: its whole environment)."""
    return subprocess.run(
        [sys.executable, "-m", "envbuild.cli", *map(str, args)],
        cwd=cwd, env=dict(env) if env is not None else _cli_env(),
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "Traceback" not in result.stdout + result.stderr
    return result


def error(result: subprocess.CompletedProcess[str]) -> str:
    """The one error line of a failed run (exit 2, no traceback, nothing else on stderr)."""
    assert result.returncode == 2, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("envbuild: error: "), result.stderr
    return lines[0].removeprefix("envbuild: error: ")


def offline_env(cache: Path, **extra: str) -> dict[str, str]:
    """A CLI environment where every proxy, index and channel URL is unreachable (only
    loopback bypasses the proxy: the S3 server), with its own package cache."""
    env = _cli_env()
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        env[name] = env[name.lower()] = UNREACHABLE
    env.update({
        "PIP_INDEX_URL": f"{UNREACHABLE}/simple", "UV_INDEX_URL": f"{UNREACHABLE}/simple",
        "UV_DEFAULT_INDEX": f"{UNREACHABLE}/simple", "CONDA_CHANNEL_ALIAS": UNREACHABLE,
        "ENVBUILD_CACHE": str(cache),
    })  # fmt: skip
    env.update(extra)
    return env


def demo_workspace(root: Path, store: str, extra: str = "") -> Path:
    """A copy of examples/demo with ``store`` (and more envs); a stand-in ipykernel wheel
    (with ``ipykernel_launcher``) in its find-links directory."""
    shutil.copytree(DEMO, root, ignore=shutil.ignore_patterns(".envbuild", "locks", "__pycache__"))
    manifest = root / "envbuild.toml"
    text = manifest.read_text(encoding="utf-8")
    text = text.replace("[workspace]\n", f"[workspace]\nstore = {json.dumps(store)}\n", 1)
    manifest.write_text(text + extra, encoding="utf-8")
    files = {
        "ipykernel/__init__.py": b'__version__ = "6.29.5"\n',
        "ipykernel_launcher.py": b'if __name__ == "__main__":\n    raise SystemExit(0)\n',
    }
    wheel = wheel_bytes(
        "ipykernel", "6.29.5", "py3-none-any", files, core_metadata("ipykernel", "6.29.5")
    )
    (root / "wheels" / "ipykernel-6.29.5-py3-none-any.whl").write_bytes(wheel)
    return root


def exact_ref(lock: Lock) -> str:
    return f"{lock.env_id.req_id}:{lock.env_id.full_id}"


def lock_of(ws: Path, env: str, arch: str = HOST) -> Lock:
    return read_lock(ws / "locks" / env / f"{arch}.json")


def _record_checked(record: Path, data: bytes) -> bytes:
    """A dist-info RECORD with each hash checked against the file it names in this env and
    then replaced by "<ok>": a hash of a file that embeds the prefix (a console script's
    shebang) differs by prefix, yet each env's RECORD must be true of its own files."""
    import base64

    lines = []
    for line in data.decode("utf-8").splitlines():
        path, digest, size = line.rsplit(",", 2)
        if digest:
            raw = (record.parent.parent / path).read_bytes()
            actual = base64.urlsafe_b64encode(hashlib.sha256(raw).digest()).rstrip(b"=")
            assert digest == "sha256=" + actual.decode() and int(size) == len(raw), line
            digest = size = "<ok>"
        lines.append(f"{path},{digest},{size}")
    return "\n".join(lines).encode("utf-8")


def _normalised(path: Path, rel: str, data: bytes, masks: Mapping[bytes, bytes]) -> bytes:
    if rel.endswith(".dist-info/RECORD"):
        data = _record_checked(path, data)
    if rel.endswith(".dist-info/uv_cache.json"):
        # uv's install bookkeeping: the mtime of the wheel file installed from (a property
        # of this machine's package cache, not of the env)
        return b"<uv cache record>"
    for old, new in sorted(masks.items(), key=lambda kv: -len(kv[0])):
        data = data.replace(old, new)
    return data


def env_digest(prefix: Path, masks: Mapping[Path, str]) -> dict[str, str]:
    """relative path -> sha256 of every file (symlinks: their masked target; directories:
    "dir") of an env, after replacing each mask path (the prefix, the package caches) in
    the contents by its placeholder. ``__pycache__`` is left out."""
    raw = {str(path).encode(): f"<{name}>".encode() for path, name in masks.items()}
    out: dict[str, str] = {}
    for path in sorted(prefix.rglob("*")):
        rel = path.relative_to(prefix).as_posix()
        if "__pycache__" in path.parts:
            continue
        if path.is_symlink():
            out[rel] = "link:" + _normalised(path, rel, os.readlink(path).encode(), raw).decode()
        elif path.is_dir():
            out[rel] = "dir"
        else:
            data = _normalised(path, rel, path.read_bytes(), raw)
            out[rel] = hashlib.sha256(data).hexdigest()
    return out


def assert_same_env(a: Path, a_masks: dict[Path, str], b: Path, b_masks: dict[Path, str]) -> None:
    left = env_digest(a, {a: "PREFIX", **a_masks})
    right = env_digest(b, {b: "PREFIX", **b_masks})
    assert sorted(left) == sorted(right), "file lists differ"
    differ = sorted(rel for rel in left if left[rel] != right[rel])
    assert not differ, f"contents differ: {differ}"
    assert (b / ".envbuild-env.json").read_bytes() == (a / ".envbuild-env.json").read_bytes()


def workspace_caches(ws: Path) -> dict[Path, str]:
    return {ws / ".envbuild" / "pkgs": "PKGS", ws / ".envbuild" / "cache" / "rattler": "RATTLER"}


def user_caches(cache: Path) -> dict[Path, str]:
    return {cache / "pkgs": "PKGS", cache / "rattler": "RATTLER"}


def run_demo_cli(prefix: Path) -> str:
    out = subprocess.run(
        [str(prefix / "bin" / "demo-cli")], capture_output=True, text=True, check=True,
        env=_cli_env(), timeout=60,
    )  # fmt: skip
    return out.stdout.strip()


def publish(tmp_path: Path, store: str) -> Path:
    """Workspace A: everything built and uploaded to ``store``, alias team/app:latest on
    env cli, envs cli and hello created in A."""
    ws = demo_workspace(tmp_path / "A", store)
    ok(envbuild(ws))
    ok(envbuild(ws, "upload", "--alias", "team/app:latest", "env=cli"))
    ok(envbuild(ws, "create", "env=cli,hello"))
    assert run_demo_cli(ws / ".envbuild" / "envs" / "cli") == GREETING
    return ws


def hide_sources(ws: Path) -> None:
    """Take A's channel, wheels and caches away: a creation must not find them."""
    for rel in (".envbuild/channels", "wheels", "recipes", ".envbuild/pkgs", ".envbuild/cache"):
        if (ws / rel).exists():
            (ws / rel).rename(ws / (rel.replace("/", "_") + ".hidden"))


def show_sources(ws: Path) -> None:
    for rel in (".envbuild/channels", "wheels", "recipes", ".envbuild/pkgs", ".envbuild/cache"):
        hidden = ws / (rel.replace("/", "_") + ".hidden")
        if hidden.exists():
            hidden.rename(ws / rel)


# --------------------------------------------------------------------------- acceptance


@pytest.mark.slow
def test_bootstrap_from_s3_with_no_workspace(tmp_path: Path, s3_bucket: str, s3_server: S3Server):
    """Acceptance 2: A uploads to a loopback S3 and sets team/app:latest; in a fresh
    directory, with every channel, index and proxy URL unreachable, ``envbuild create
    team/app:latest --store s3://... --prefix P`` gives A's env (same files, same hashes once
    the prefix and cache paths are masked) whose console script runs; the same for a
    conda-only env by ``req_id:full_id``. Only reads reach the store."""
    url = f"s3://{s3_bucket}/team"
    a = publish(tmp_path, url)
    hide_sources(a)
    fresh, cache = tmp_path / "fresh", tmp_path / "cache"
    fresh.mkdir()
    env = offline_env(cache)
    writes = s3_server.put_count(s3_bucket)

    prefix = fresh / "envs" / "cli"  # the venv prompt is the prefix's name, as in A
    result = ok(envbuild(fresh, "create", "team/app:latest", "--store", url, "--prefix", prefix,
                         env=env))  # fmt: skip
    assert result.stdout.startswith(f"cli [{HOST}] from team/app:latest at {prefix}: created")
    assert run_demo_cli(prefix) == GREETING
    assert_same_env(a / ".envbuild/envs/cli", workspace_caches(a), prefix, user_caches(cache))

    hello = fresh / "envs" / "hello"
    ref = exact_ref(lock_of(a, "hello"))
    ok(envbuild(fresh, "create", ref, "--store", url, "--prefix", hello, env=env))
    assert (hello / "share" / "demo-hello" / "hello.txt").is_file()
    assert_same_env(a / ".envbuild/envs/hello", workspace_caches(a), hello, user_caches(cache))

    again = ok(envbuild(fresh, "create", ref, "--store", url, "--prefix", hello, env=env))
    assert again.stdout.strip().endswith(": up to date")
    assert s3_server.put_count(s3_bucket) == writes  # the store was only read
    assert not list(fresh.glob("envbuild.toml")) and not (fresh / ".envbuild").exists()


@pytest.mark.slow
def test_bundle_creates_the_same_env_with_no_network(
    tmp_path: Path, s3_bucket: str, s3_server: S3Server
):
    """Acceptance 3: ``pack`` (from the S3 store), then the store is emptied and every URL,
    the S3 endpoint included, is unreachable: ``create --from-bundle`` gives the same envs
    as A's. A bundle is a small store in a tar: the descriptor, its objects, an index."""
    url = f"s3://{s3_bucket}/team"
    a = publish(tmp_path, url)
    out = tmp_path / "out"
    ok(envbuild(tmp_path, "pack", "team/app:latest", "--arch", HOST, "-o", out / "app.tar",
                "--store", url))  # fmt: skip
    hello_ref = exact_ref(lock_of(a, "hello"))
    ok(envbuild(tmp_path, "pack", hello_ref, "--arch", HOST, "-o", out / "hello.tar",
                "--store", url))  # fmt: skip

    client = s3_server.client()
    for item in client.list_objects_v2(Bucket=s3_bucket).get("Contents", []):
        client.delete_object(Bucket=s3_bucket, Key=item["Key"])
    hide_sources(a)
    fresh, cache = tmp_path / "fresh", tmp_path / "cache"
    fresh.mkdir()
    env = offline_env(cache, AWS_ENDPOINT_URL_S3=UNREACHABLE, NO_PROXY="", no_proxy="")
    before = len(s3_server.requests(s3_bucket))

    prefix = fresh / "envs" / "cli"
    result = ok(envbuild(fresh, "create", "--from-bundle", out / "app.tar", "--prefix", prefix,
                         env=env))  # fmt: skip
    assert f"from bundle {out / 'app.tar'} at {prefix}: created" in result.stdout
    assert run_demo_cli(prefix) == GREETING
    assert_same_env(a / ".envbuild/envs/cli", workspace_caches(a), prefix, user_caches(cache))
    hello = fresh / "envs" / "hello"
    ok(envbuild(fresh, "create", "--from-bundle", out / "hello.tar", "--prefix", hello, env=env))
    assert_same_env(a / ".envbuild/envs/hello", workspace_caches(a), hello, user_caches(cache))
    assert len(s3_server.requests(s3_bucket)) == before  # no request reached the store
    assert not list(cache.glob(".bundle-*"))  # the unpacked bundle is gone


# --------------------------------------------------------------------------- commands


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo (plus env ``nb`` with ipykernel) built and uploaded to a local store at
    ``<tmp>/store``; alias team/app:latest on env cli. Returns the workspace."""
    base = tmp_path_factory.mktemp("published")
    ws = demo_workspace(base / "ws", str(base / "store"), NB_ENV)
    ok(envbuild(ws))
    ok(envbuild(ws, "upload", "--alias", "team/app:latest", "env=cli"))
    return ws


def store_of(ws: Path) -> Path:
    return ws.parent / "store"


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory with no workspace, and a private package cache."""
    monkeypatch.setenv("ENVBUILD_CACHE", str(tmp_path / "cache"))
    (tmp_path / "here").mkdir()
    return tmp_path / "here"


def test_get_json_round_trips(published: Path, elsewhere: Path):
    store = store_of(published)
    lock = lock_of(published, "cli")
    key = f"envs/{HOST}/{lock.env_id.req_id}/{lock.env_id.full_id}"
    out = ok(envbuild(elsewhere, "get", "team/app:latest", "--store", store, "--json")).stdout
    assert out.encode() == (store / key).read_bytes()
    descriptor = Descriptor.loads(out.encode(), "stdout")
    assert descriptor.dumps() == out.encode()
    assert descriptor.lock.to_dict() == lock.to_dict()
    for ref in (exact_ref(lock), "team/app"):  # exact, and the tag defaulting to latest
        assert ok(envbuild(elsewhere, "get", ref, "--store", store, "--json")).stdout == out
    other = "osx-arm64" if HOST == "linux-64" else "linux-64"
    foreign = ok(envbuild(elsewhere, "get", "team/app:latest", "--store", store, "--arch",
                          other, "--json")).stdout  # fmt: skip
    assert Descriptor.loads(foreign.encode(), "x").lock.env_id.arch == other
    text = ok(envbuild(elsewhere, "get", "team/app:latest", "--store", store)).stdout
    assert text.splitlines()[0] == f"descriptor {key} in {store}"
    assert f"env cli [{HOST}] (pypi)" in text and "install files (3," in text


def test_show_ref_prints_what_workspace_show_prints(published: Path, elsewhere: Path):
    """``show REF`` (an alias over both archs, or an exact ref) gives the workspace's
    ``show NAME`` output, co-resolved id included; ``--json`` too. In a workspace, REF uses
    the workspace's store."""
    store = store_of(published)
    for args in ((), ("--json",), ("--arch", HOST), ("--arch", HOST, "--json")):
        mine = ok(envbuild(published, "show", "cli", *args)).stdout
        theirs = ok(envbuild(elsewhere, "show", "team/app:latest", "--store", store, *args))
        assert theirs.stdout == mine, args
        assert ok(envbuild(published, "show", "team/app:latest", *args)).stdout == mine
    exact = ok(envbuild(elsewhere, "show", exact_ref(lock_of(published, "hello")),
                        "--store", store)).stdout  # fmt: skip
    assert exact == ok(envbuild(published, "show", "hello", "--arch", HOST)).stdout


def test_alias_mutable_moves_immutable_refused(published: Path, elsewhere: Path):
    store = store_of(published)
    hello, cli = exact_ref(lock_of(published, "hello")), exact_ref(lock_of(published, "cli"))

    def points_at(alias: str) -> dict[str, object]:
        return json.loads(ok(envbuild(elsewhere, "get", alias, "--store", store, "--json")).stdout)

    out = ok(envbuild(elsewhere, "alias", hello, "mv/app:stable", "--store", store)).stdout
    assert out == f"alias mv/app:stable -> hello ({HOST})\n"
    assert points_at("mv/app:stable")["env_id"]["full_id"] == hello.split(":")[1]
    out = ok(envbuild(elsewhere, "alias", "team/app:latest", "mv/app:stable", "--store", store))
    assert out.stdout == "alias mv/app:stable -> cli (linux-64, osx-arm64)\n"  # every arch
    assert points_at("mv/app:stable")["env_id"]["full_id"] == cli.split(":")[1]

    ok(envbuild(elsewhere, "alias", cli, "mv/app:v1", "--store", store))
    again = ok(envbuild(elsewhere, "alias", cli, "mv/app:v1", "--store", store))
    assert again.stdout == f"alias mv/app:v1 -> cli ({HOST}) (already set)\n"
    refused = envbuild(elsewhere, "alias", hello, "mv/app:v1", "--store", store)
    assert error(refused) == (
        f"alias mv/app:v1 in {store} already points at another env and tag 'v1' is immutable"
        " (only latest, candidate and stable move): use a new tag"
    )
    assert points_at("mv/app:v1")["env_id"]["full_id"] == cli.split(":")[1]
    # in the workspace, the workspace's store
    ok(envbuild(published, "alias", "team/app:latest", "mv/ws:latest"))
    assert (store / "aliases" / "mv" / "ws" / "latest.tag").is_file()


def test_reference_errors_are_one_line(published: Path, elsewhere: Path):
    store = store_of(published)
    bare = lock_of(published, "cli").env_id.full_id
    bare_msg = (
        f"env reference '{bare}' is a bare id, which is ambiguous: use req_id:full_id or an alias"
    )
    for cmd in (("create", bare, "--prefix", "p"), ("get", bare), ("show", bare),
                ("alias", bare, "x/y:v1"), ("pack", bare, "-o", "x.tar")):  # fmt: skip
        assert error(envbuild(elsewhere, *cmd, "--store", store)) == bare_msg, cmd
    assert not (elsewhere / "p").exists()

    unknown = (
        f"alias team/app:nope is not set in {store}: check its name and tag (set one with "
        "`envbuild alias REF NAME:TAG` or `envbuild upload --alias NAME:TAG`)"
    )
    for cmd in (("create", "team/app:nope", "--prefix", "p"), ("get", "team/app:nope"),
                ("show", "team/app:nope"), ("pack", "team/app:nope", "-o", "x.tar"),
                ("alias", "team/app:nope", "x/y:v1")):  # fmt: skip
        assert error(envbuild(elsewhere, *cmd, "--store", store)) == unknown, cmd
    assert error(envbuild(elsewhere, "create", "team/app:latest", "--prefix", "p")) == (
        "no store: pass --store URL (s3://bucket/prefix, or a directory), or run in a "
        "workspace (a directory with envbuild.toml, whose [workspace] store is used)"
    )
    other = "osx-arm64" if HOST == "linux-64" else "linux-64"
    foreign = exact_ref(lock_of(published, "cli", other))
    assert error(envbuild(elsewhere, "create", foreign, "--store", store, "--prefix", "p")) == (
        f"env {foreign} is for {other}, not {HOST}"
    )
    assert error(envbuild(elsewhere, "alias", "team/app:latest", foreign, "--store", store)) == (
        f"envbuild alias: '{foreign}' is an exact env reference: the second argument is the "
        "alias to set, NAME:TAG"
    )
    missing = f"{'0' * 40}:{'1' * 40}"
    assert error(envbuild(elsewhere, "get", missing, "--store", store)) == (
        f"env {missing} is not in {store}: check the reference, or publish it with "
        "`envbuild upload`"
    )
    assert error(envbuild(elsewhere, "pack", "team/app:latest", "--store", store)) == (
        "envbuild pack: the following arguments are required: -o/--output "
        "(see envbuild pack --help)"
    )
    assert not (elsewhere / "x.tar").exists()


def test_pack_any_arch_and_workspace_names(published: Path, elsewhere: Path):
    """A bundle for a foreign arch, from this host, by workspace env name: it holds exactly
    that arch's descriptor and the objects it names, and an index; by alias the same."""
    store = store_of(published)
    for env, arch in (("tools", "osx-arm64"), ("tools", "linux-aarch64"), ("cli", "osx-arm64")):
        out = elsewhere / f"{env}-{arch}.tar"
        ok(envbuild(published, "pack", env, "--arch", arch, "-o", out))
        lock = lock_of(published, env, arch)
        key = f"envs/{arch}/{lock.env_id.req_id}/{lock.env_id.full_id}"
        descriptor = Descriptor.loads((store / key).read_bytes(), key)
        with tarfile.open(out) as tar:
            names = set(tar.getnames())
            index = json.loads(tar.extractfile("envbuild-bundle.json").read())
        assert names == {key, "envbuild-bundle.json"} | {f.key for f in descriptor.files}
        assert index == {"arch": arch, "descriptor": key, "env": env}
        conda = [p for p in lock.packages if p.kind == "conda" and p.subdir != "noarch"]
        assert all(p.subdir == arch for p in conda)
        if env == "tools":
            assert conda, "tools has arch-specific packages"
    by_alias = elsewhere / "alias.tar"
    ok(envbuild(elsewhere, "pack", "team/app:latest", "--arch", "osx-arm64", "-o", by_alias,
                "--store", store))  # fmt: skip
    assert by_alias.read_bytes() == (elsewhere / "cli-osx-arm64.tar").read_bytes()  # reproducible
    # a foreign arch's bundle is refused on this host unless asked for
    if HOST != "osx-arm64":
        refused = envbuild(elsewhere, "create", "--from-bundle", by_alias, "--prefix", "p")
        assert error(refused) == (
            f"bundle {by_alias} holds an env for osx-arm64, not this machine's {HOST}: pass "
            "--arch osx-arm64 to create it anyway"
        )
        assert not (elsewhere / "p").exists()


def test_pack_before_upload_says_to_upload(tmp_path: Path):
    ws = demo_workspace(tmp_path / "ws", ".envbuild/store")
    ok(envbuild(ws, "resolve", "env=cli"))
    assert error(envbuild(ws, "pack", "cli", "--arch", "osx-arm64", "-o", "x.tar")) == (
        "env 'cli' for osx-arm64 is not uploaded to .envbuild/store yet: run "
        "`envbuild upload env=cli arch=osx-arm64`"
    )
    assert error(envbuild(ws, "pack", "cli", "--arch", "osx-64", "-o", "x.tar")) == (
        "env 'cli' is not resolved for osx-64: its archs are linux-64, osx-arm64 (set archs "
        "in [env.cli] of envbuild.toml to add one)"
    )
    assert not (ws / "x.tar").exists()


@pytest.mark.slow
def test_jupyter_kernelspec(published: Path, elsewhere: Path, tmp_path: Path):
    store = store_of(published)
    ref = exact_ref(lock_of(published, "nb"))
    prefix, data = tmp_path / "envs" / "nb", tmp_path / "jupyter"
    out = ok(envbuild(elsewhere, "create", ref, "--store", store, "--prefix", prefix,
                      "--jupyter", "--jupyter-dir", data)).stdout  # fmt: skip
    kernel = data / "kernels" / "nb" / "kernel.json"
    assert out.splitlines()[-1] == f"jupyter kernel nb: {kernel}"
    spec = json.loads(kernel.read_text(encoding="utf-8"))
    assert spec["argv"] == [
        f"{prefix}/bin/python",
        "-m",
        "ipykernel_launcher",
        "-f",
        "{connection_file}",
    ]
    assert spec["display_name"] == f"nb ({ref})"
    assert spec["language"] == "python"
    # $JUPYTER_DATA_DIR when no --jupyter-dir; the bundle form too
    bundle = tmp_path / "nb.tar"
    ok(envbuild(published, "pack", "nb", "-o", bundle))
    env = {**_cli_env(), "JUPYTER_DATA_DIR": str(tmp_path / "jd"),
           "ENVBUILD_CACHE": str(tmp_path / "cache")}  # fmt: skip
    ok(envbuild(elsewhere, "create", "--from-bundle", bundle, "--prefix", tmp_path / "nb2",
                "--jupyter", env=env))  # fmt: skip
    spec = json.loads((tmp_path / "jd" / "kernels" / "nb" / "kernel.json").read_text())
    assert spec["argv"][0] == f"{tmp_path / 'nb2'}/bin/python"
    assert spec["display_name"] == f"nb ({ref})"


def test_jupyter_without_ipykernel_says_how_to_add_it(published: Path, elsewhere: Path):
    store, prefix = store_of(published), elsewhere / "cli"
    result = envbuild(elsewhere, "create", "team/app:latest", "--store", store, "--prefix",
                      prefix, "--jupyter", "--jupyter-dir", elsewhere / "j")  # fmt: skip
    assert error(result) == (
        "--jupyter: env 'cli' has no ipykernel: add \"ipykernel\" to the conda (or pypi) list "
        "of [env.cli] in envbuild.toml, then run `envbuild` and `envbuild upload env=cli` and "
        "create it again"
    )
    assert not prefix.exists() and not (elsewhere / "j").exists()


def test_create_in_a_workspace_uses_its_store(published: Path, tmp_path: Path):
    """``create REF`` without --store in a workspace: the workspace's store; plain ``create``
    stays the doit task (the workspace's envs)."""
    prefix = tmp_path / "cli"
    env = {**_cli_env(), "ENVBUILD_CACHE": str(tmp_path / "cache")}
    ok(envbuild(published, "create", "team/app:latest", "--prefix", prefix, env=env))
    assert run_demo_cli(prefix) == GREETING
    assert not (published / ".envbuild" / "envs" / "cli").exists()
