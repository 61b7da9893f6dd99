"""Acceptance of the store's user errors through the real ``envbuild`` CLI (issue 8): an
unreachable S3 endpoint, a missing bucket and a read-only local store each give ONE line on
stderr and exit 2, without a traceback, however many env x arch subtasks meet it."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import _cli_env
from test_artifacts_e2e import demo_workspace

ERROR_LINE = re.compile(r"^envbuild: error: (?:(?:fetch|build|transmute|upload) \S+@\S+: )?(.*)$")


def one_error(result: subprocess.CompletedProcess[str]) -> str:
    """The message of the one error line of a run that exits 2 (an optional ``STAGE
    ENV@ARCH:`` prefix, naming the subtask that met it first, is left out)."""
    out = result.stdout + result.stderr
    assert result.returncode == 2, out
    assert "Traceback" not in out
    lines = result.stderr.splitlines()
    if lines and lines[-1].endswith(" up to date"):  # the summary of what was current
        lines.pop()
    assert len(lines) == 1, result.stderr
    match = ERROR_LINE.match(lines[0])
    assert match, lines[0]
    return match.group(1)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def resolved(ws: Path, run_cli, *stages: str) -> Path:
    """``ws`` resolved (which needs no store), and taken through ``stages`` too."""
    result = run_cli(ws, "resolve", *stages)
    assert result.returncode == 0, result.stdout + result.stderr
    return ws


@pytest.mark.slow
def test_unreachable_endpoint(tmp_path, s3_env, monkeypatch, run_cli):
    port = closed_port()
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{port}")
    ws = resolved(demo_workspace(tmp_path / "ws", "s3://team-envs/cache"), run_cli)
    message = one_error(run_cli(ws))
    assert message == (
        f"cannot reach the S3 endpoint http://127.0.0.1:{port} of store s3://team-envs/cache "
        "(cannot connect): check AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL (or the workspace's "
        "store endpoint), and the network"
    )


@pytest.mark.slow
def test_missing_bucket(tmp_path, s3_env, run_cli):
    ws = resolved(demo_workspace(tmp_path / "ws", "s3://no-such-bucket-here/cache"), run_cli)
    message = one_error(run_cli(ws))
    assert message == (
        f"the S3 bucket 'no-such-bucket-here' of store s3://no-such-bucket-here/cache does not "
        f"exist at {s3_env.url}: create the bucket or fix [workspace] store"
    )
    assert s3_env.put_count("no-such-bucket-here") == 0


@pytest.mark.slow
def test_store_under_a_regular_file(tmp_path, run_cli):
    ws = demo_workspace(tmp_path / "ws", "occupied/store")
    (ws / "occupied").write_text("a file, not a directory\n")
    # reading such a store finds nothing (no error): the stages before upload work
    resolved(ws, run_cli, "fetch", "build", "transmute")
    message = one_error(run_cli(ws, "upload"))
    assert re.fullmatch(
        r"local store occupied/store cannot hold pkgs/[0-9a-f]{2}/[0-9a-f]{64}/\S+: a part of "
        r"its path is a file, not a directory: fix \[workspace\] store",
        message,
    ), message


def _read_only_command(store: Path) -> list[str]:
    """The CLI, run so that ``store`` is read-only to it: as root (who ignores permission
    bits) in a private mount namespace with ``store`` bind-mounted read-only, so that the
    kernel answers EROFS; otherwise plainly (the test removes the write permission)."""
    cli = [sys.executable, "-m", "envbuild.cli"]
    if os.geteuid() != 0:
        return cli
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("running as root without unshare(1): cannot make a read-only store")
    probe = subprocess.run(
        [unshare, "-m", "sh", "-c", f"mount --bind '{store}' '{store}' && mount -o remount,ro,bind '{store}'"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if probe.returncode != 0:
        pytest.skip(f"running as root and cannot bind-mount read-only: {probe.stderr.strip()}")
    script = 'mount --bind "$0" "$0" && mount -o remount,ro,bind "$0" && exec "$@"'
    return [unshare, "-m", "sh", "-c", script, str(store), *cli]


@pytest.mark.slow
def test_read_only_local_store(tmp_path, run_cli):
    """The store directory exists but cannot be written: reading it works (nothing is
    published, so fetch, build and transmute run), the first upload is refused by the
    kernel, in one line."""
    ws = demo_workspace(tmp_path / "ws", "store")
    store = ws / "store"
    store.mkdir()
    resolved(ws, run_cli, "fetch", "build", "transmute")  # reads of the empty store only
    cmd = [*_read_only_command(store), "upload"]
    if os.geteuid() != 0:
        store.chmod(0o555)
    try:
        result = subprocess.run(
            cmd, cwd=ws, capture_output=True, text=True, env=_cli_env(), timeout=300, check=False
        )
    finally:
        store.chmod(0o755)
    reason = "Read-only file system" if os.geteuid() == 0 else "Permission denied"
    message = one_error(result)
    assert re.fullmatch(
        rf"local store store is not writable \({reason}, at pkgs/[0-9a-f]{{2}}/[0-9a-f]{{64}}/\S+\): "
        r"fix the directory's permissions or \[workspace\] store",
        message,
    ), message
    assert list(store.iterdir()) == []
