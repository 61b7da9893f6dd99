"""Interrupted and concurrent creations (issue 9, acceptance 4), through the real CLI:

- ``kill -9`` of ``envbuild create`` at several points of a new
  env's creation (conda packages and wheels going into the temp dir beside the prefix,
  then its rename) and of an update (conda packages unlinked and
  linked in place; wheels replaced): a rerun ends with exactly the env a clean creation
  gives (same files, hashes, modes and symlinks), the marker, and nothing beside the env;
- the same for a host-python venv env (the demo's ``cli``; its process group is killed, so
  that ``python -m venv`` dies with it);
- two ``envbuild create`` at once on the same env: both exit 0 (one waits on the
  prefix's flock), and the env is the clean one.

The kill points are placed from a first, timed run of the same step (when the temp dir,
the prefix and the marker appear or go), so they land in each phase on slow and fast
machines alike; each trial records which phase it hit, and the tests check that every
phase was hit at least once.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import REPO_ROOT, _cli_env
from pypi_index import core_metadata, wheel_bytes, wheel_filename
from test_create import HOST, MARKER, assert_ok, prefix_of, tree, write_manifest

pytestmark = pytest.mark.slow

N_CONDA, N_FILES = 100, 40  # packages x0..x99, each in two versions, 40 small files each
N_WHEELS, WHEEL_FILES, WHEEL_FILE_SIZE = 6, 20, 64 * 1024  # incompressible payloads
ENV = "big"


def recipes() -> list[dict[str, object]]:
    out: list[dict[str, object]] = [
        {"name": "python", "version": "3.11.9", "build": "0", "subdirs": [HOST]}
    ]
    for version in ("1.0", "2.0"):
        for i in range(N_CONDA):
            files = {f"share/x{i}/d{j % 4}/f{j}.txt": f"x{i} {version} {j}\n" * 8
                     for j in range(N_FILES)}  # fmt: skip
            out.append({"name": f"x{i}", "version": version, "noarch": "generic", "files": files})
    return out


def big_wheel(out: Path, name: str, version: str) -> Path:
    rng = random.Random(f"{name}-{version}")
    module = name.replace("-", "_")
    files = {f"{module}/data{j}.bin": rng.randbytes(WHEEL_FILE_SIZE) for j in range(WHEEL_FILES)}
    files[f"{module}/__init__.py"] = f"__version__ = {version!r}\n".encode()
    files[f"{module}-{version}.dist-info/entry_points.txt"] = (
        f"[console_scripts]\n{name} = {module}:main\n".encode()
    )
    out.mkdir(parents=True, exist_ok=True)
    path = out / wheel_filename(name, version)
    path.write_bytes(
        wheel_bytes(name, version, "py3-none-any", files, core_metadata(name, version))
    )
    return path


@pytest.fixture(scope="module")
def channel(make_channel) -> Path:
    return make_channel(recipes(), name="many")


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> list[Path]:
    out = tmp_path_factory.mktemp("big-wheels")
    return [big_wheel(out / v, f"w{i}", v) for v in ("1.0", "2.0") for i in range(N_WHEELS)]


class Spec:
    """The workspace's manifest and lock for one version of the env (``1.0`` or ``2.0`` of
    every package), written back on demand: switching needs no resolve."""

    def __init__(self, ws: Path, settings: dict[str, object], version: str, run_cli) -> None:
        self.ws, self.version = ws, version
        env = {
            "python": "3.11",
            "conda": [f"x{i} =={version}" for i in range(N_CONDA)],
            "pypi": [f"w{i} =={version}" for i in range(N_WHEELS)],
        }
        write_manifest(ws, settings, {ENV: env})
        assert_ok(run_cli(ws, "resolve"))
        self.manifest = (ws / "envbuild.toml").read_bytes()
        self.lock_path = ws / "locks" / ENV / f"{HOST}.json"
        self.lock = self.lock_path.read_bytes()

    def use(self) -> None:
        (self.ws / "envbuild.toml").write_bytes(self.manifest)
        self.lock_path.write_bytes(self.lock)


@pytest.fixture
def big_ws(tmp_path, channel, wheels, pypi_index, run_cli):
    """(ws, spec 1.0, spec 2.0) with every file fetched (so a create run is mostly linking)."""
    idx = pypi_index(wheels)
    settings = {"archs": [HOST], "channels": [channel.as_uri()], "pypi-index": idx.url}
    ws = tmp_path / "ws"
    new = Spec(ws, settings, "2.0", run_cli)
    assert_ok(run_cli(ws, "transmute", "build"))
    old = Spec(ws, settings, "1.0", run_cli)
    assert_ok(run_cli(ws, "transmute", "build"))
    return ws, old, new


# --------------------------------------------------------------------------- processes


def start_create(ws: Path, env: str = ENV) -> subprocess.Popen[bytes]:
    """``envbuild create env=ENV`` in its own process group."""
    return subprocess.Popen(
        [sys.executable, "-m", "envbuild.cli", "create", f"env={env}"], cwd=ws,
        env=_cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip


def kill(proc: subprocess.Popen[bytes], group: bool = False) -> None:
    """SIGKILL the process (``group``: with its children, as a batch system's kill does;
    a conda env's creation has none, a host env's runs ``python -m venv``)."""
    try:
        if group:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            os.kill(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.communicate()


def staging_of(prefix: Path) -> bool:
    return any(n.startswith(f".{prefix.name}.creating-") for n in os.listdir(prefix.parent))


def phase(prefix: Path) -> str:
    """Where a creation or update stands, from the files."""
    if prefix.parent.is_dir() and staging_of(prefix):
        return "linking"  # into the temp dir beside the prefix
    if not prefix.exists():
        return "before"
    if not (prefix / MARKER).exists():
        return "in place"  # wheels of a new env, or an update
    return "done"


def wait_for(cond: Callable[[], bool], proc: subprocess.Popen[bytes], limit: float = 60) -> float:
    """Spin until ``cond()`` (or the process ends); returns the time it became true."""
    end = time.monotonic() + limit
    while not cond():
        if proc.poll() is not None or time.monotonic() > end:
            return time.monotonic()
        time.sleep(0.0005)
    return time.monotonic()


def timed(ws: Path, prefix: Path, start: Callable[[], bool], env: str = ENV) -> float:
    """One uninterrupted run: how long from ``start()`` becoming true to the marker."""
    proc = start_create(ws, env)
    t0 = wait_for(start, proc)
    t1 = wait_for(lambda: (prefix / MARKER).exists(), proc)
    _, err = proc.communicate()
    assert proc.returncode == 0, err.decode()
    return max(t1 - t0, 0.005)


def assert_complete(ws: Path, prefix: Path, clean: dict[str, str], run_cli) -> None:
    """A rerun ends with the clean env and nothing beside it."""
    result = run_cli(ws, "create", f"env={prefix.name}")
    assert_ok(result)
    assert (prefix / MARKER).exists()
    assert tree(prefix) == clean
    assert sorted(os.listdir(prefix.parent)) == [prefix.name]


# --------------------------------------------------------------------------- tests


def test_kill_during_creation(big_ws, run_cli):
    ws, _, new = big_ws
    new.use()
    prefix = prefix_of(ws, ENV)
    assert_ok(run_cli(ws, "create", f"env={ENV}"))
    clean = tree(prefix)
    assert sum(p.startswith("share/") and p[-1] != "/" for p in clean) == N_CONDA * N_FILES
    shutil.rmtree(prefix)

    # time the creation in the temp dir (conda packages and wheels at once), then kill it
    # at points spread over that time, and once right after its rename
    staged = lambda: prefix.parent.is_dir() and staging_of(prefix)  # noqa: E731
    window = timed(ws, prefix, staged)
    assert tree(prefix) == clean
    shutil.rmtree(prefix)

    hit = []
    points = [(staged, f * window) for f in (0.0, 0.2, 0.4, 0.6, 0.8)] + [(prefix.exists, 0.0)]
    for anchor, delay in points:
        proc = start_create(ws)
        wait_for(anchor, proc)
        time.sleep(delay)
        kill(proc)
        hit.append(phase(prefix))
        assert_complete(ws, prefix, clean, run_cli)
        shutil.rmtree(prefix)
    print(f"creation: {window:.3f} s, hit {hit}")
    assert hit.count("linking") >= 4, (hit, window)


def test_kill_during_update(big_ws, run_cli):
    ws, old, new = big_ws
    prefix = prefix_of(ws, ENV)
    new.use()
    assert_ok(run_cli(ws, "create", f"env={ENV}"))
    clean_new = tree(prefix)
    shutil.rmtree(prefix)
    old.use()
    assert_ok(run_cli(ws, "create", f"env={ENV}"))
    clean_old = tree(prefix)

    # time the update: from the marker's removal to its return
    new.use()
    window = timed(ws, prefix, lambda: not (prefix / MARKER).exists())
    assert tree(prefix) == clean_new

    hit = []
    for fraction in (0.0, 0.1, 0.3, 0.5, 0.7, 0.9):
        old.use()  # back to 1.0 (itself an update: every package changes)
        result = run_cli(ws, "create", f"env={ENV}")
        assert_ok(result)
        assert tree(prefix) == clean_old
        new.use()
        proc = start_create(ws)
        wait_for(lambda: not (prefix / MARKER).exists(), proc)
        time.sleep(fraction * window)
        kill(proc)
        hit.append(phase(prefix))
        assert_complete(ws, prefix, clean_new, run_cli)
    print(f"update: {window:.3f} s, hit {hit}")
    assert hit.count("in place") >= 3, (hit, window)


def test_kill_during_host_venv_creation(tmp_path, run_cli):
    from test_create import host_python

    host_python("3.11")
    ws = tmp_path / "demo"
    shutil.copytree(
        REPO_ROOT / "examples" / "demo", ws,
        ignore=shutil.ignore_patterns(".envbuild", "locks", "__pycache__"),
    )  # fmt: skip
    prefix = prefix_of(ws, "cli")
    assert_ok(run_cli(ws, "create", "env=cli"))
    clean = tree(prefix)
    shutil.rmtree(prefix)
    window = timed(ws, prefix, prefix.exists, "cli")
    hit = []
    for fraction in (0.0, 0.2, 0.5, 0.8):
        shutil.rmtree(prefix)
        proc = start_create(ws, "cli")
        wait_for(prefix.exists, proc)
        time.sleep(fraction * window)
        kill(proc, group=True)
        hit.append(phase(prefix))
        result = run_cli(ws, "create", "env=cli")
        assert_ok(result)
        assert tree(prefix) == clean
        assert sorted(os.listdir(prefix.parent)) == ["cli"]
    print(f"venv: {window:.3f} s, hit {hit}")
    assert "in place" in hit, (hit, window)
    out = subprocess.run([str(prefix / "bin" / "demo-cli")], capture_output=True, text=True)
    assert out.stdout == "Hello from demo-cli, with demo-greeting 1.0.0!\n"


def test_two_creates_at_once(big_ws, run_cli):
    ws, _, new = big_ws
    new.use()
    prefix = prefix_of(ws, ENV)
    procs = [start_create(ws) for _ in range(2)]
    outs = [p.communicate() for p in procs]
    for proc, (out, err) in zip(procs, outs, strict=True):
        assert proc.returncode == 0, out.decode() + err.decode()
        assert b"Traceback" not in out + err
    reports = sorted(
        ln for _, err in outs for ln in err.decode().splitlines() if ln.startswith(f"env {ENV}:")
    )
    assert reports[0].startswith(f"env {ENV}: created: {N_CONDA + 1} conda packages"), reports
    assert reports[1:] in ([], [f"env {ENV}: up to date"]), reports
    both = tree(prefix)
    assert sorted(os.listdir(prefix.parent)) == [ENV]
    shutil.rmtree(prefix)
    assert_ok(run_cli(ws, "create", f"env={ENV}"))
    assert tree(prefix) == both
