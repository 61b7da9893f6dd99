"""Interrupts (issue 7 §7): Ctrl-C during a resolve (SIGINT to envbuild, or to its process
group as a terminal sends it) stops promptly with one line and exit 130, stops the uv child
and removes envbuild's temp dirs; after a ``kill -9``, the next run removes what the killed
run left under ``.envbuild/tmp``. The resolve hangs on a real loopback index that does not
answer, so every signal lands mid-resolve."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import _cli_env
from test_resolve_pypi import py_channel  # noqa: F401  # the fixture

pytestmark = pytest.mark.slow


class SlowIndex:
    """A PEP 503 index on loopback that holds every request until released."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        self.release = threading.Event()
        index = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                index.hits.append(self.path)
                index.release.wait(120)
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/simple"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def slow_index() -> Iterator[SlowIndex]:
    index = SlowIndex()
    yield index
    index.close()


@pytest.fixture
def ws(tmp_path: Path, py_channel: str, slow_index: SlowIndex) -> Path:  # noqa: F811
    root = tmp_path / "ws"
    root.mkdir()
    (root / "envbuild.toml").write_text(
        f'[workspace]\narchs = ["linux-64"]\nchannels = ["{py_channel}"]\n'
        f'pypi-index = "{slow_index.url}"\n\n[env.slow]\npython = "3.11"\npypi = ["slowpkg"]\n'
    )
    return root


def start(ws: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "envbuild.cli", "resolve"], cwd=ws, env=_cli_env(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip


def children_in(directory: Path) -> list[int]:
    """The processes whose working directory is under ``directory`` (uv runs in its
    scratch directory)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cwd = os.readlink(proc / "cwd")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if cwd.startswith(str(directory)) and state != "Z":
            pids.append(int(proc.name))
    return pids


def wait_mid_resolve(proc: subprocess.Popen[str], index: SlowIndex, tmp: Path) -> list[int]:
    """Wait until uv asks the index (it is then blocked mid-resolve); its pids."""
    deadline = time.monotonic() + 120
    while not index.hits:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "uv never asked the index"
        time.sleep(0.05)
    uv = children_in(tmp)
    assert uv, "no child process runs in .envbuild/tmp"
    return uv


def gone(pids: list[int], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not children_in_pids(pids):
            return True
        time.sleep(0.05)
    return False


def children_in_pids(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.append(pid)
    return alive


@pytest.mark.parametrize(
    ("target", "sig", "code", "line"),
    [
        ("process", signal.SIGINT, 130, "envbuild: interrupted"),
        ("group", signal.SIGINT, 130, "envbuild: interrupted"),
        ("process", signal.SIGTERM, 143, "envbuild: terminated"),
    ],
)
def test_ctrl_c_mid_resolve(ws, slow_index, target, sig, code, line):
    proc = start(ws)
    tmp = ws / ".envbuild" / "tmp"
    uv = wait_mid_resolve(proc, slow_index, tmp)
    sent = time.monotonic()
    if target == "group":
        os.killpg(proc.pid, sig)
    else:
        os.kill(proc.pid, sig)
    out, err = proc.communicate(timeout=30)
    elapsed = time.monotonic() - sent
    try:
        assert proc.returncode == code, (out, err)
        assert elapsed < 5, elapsed
        assert "Traceback" not in out + err
        assert err.strip().splitlines()[-1] == line
        assert gone(uv), f"uv still running: {children_in_pids(uv)}"
        assert sorted(p.name for p in tmp.iterdir()) == []  # temp dirs removed
        assert not (ws / "locks").exists()
    finally:
        for pid in children_in_pids(uv):
            os.kill(pid, signal.SIGKILL)


def test_kill_9_leftovers_removed_by_next_run(ws, slow_index):
    proc = start(ws)
    tmp = ws / ".envbuild" / "tmp"
    uv = wait_mid_resolve(proc, slow_index, tmp)
    left = sorted(p.name for p in tmp.iterdir())
    assert len(left) == 2 and left[0] + ".lock" == left[1], left  # <pid>-<hex> and its lock
    assert left[0].startswith(f"{proc.pid}-")
    assert list((tmp / left[0]).iterdir()), "the uv scratch dir is inside"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    for pid in uv:  # uv runs in its own session: a kill -9 of envbuild leaves it running
        os.kill(pid, signal.SIGKILL)
    assert sorted(p.name for p in tmp.iterdir()) == left  # left behind ...
    slow_index.release.set()  # the index now answers (404: slowpkg is not there)
    again = subprocess.run(
        [sys.executable, "-m", "envbuild.cli", "resolve"], cwd=ws, env=_cli_env(),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert again.returncode == 2, again.stderr
    assert "Traceback" not in again.stdout + again.stderr
    assert sorted(p.name for p in tmp.iterdir()) == []  # ... and removed by the next run


def test_a_running_runs_temp_dir_is_kept(ws, slow_index):
    """The next run removes only what dead runs left: a running one keeps its lock."""
    proc = start(ws)
    tmp = ws / ".envbuild" / "tmp"
    wait_mid_resolve(proc, slow_index, tmp)
    left = sorted(p.name for p in tmp.iterdir())
    from envbuild.fs import remove_stale_temp

    assert remove_stale_temp(tmp) == []
    assert sorted(p.name for p in tmp.iterdir()) == left
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(30) == 130
