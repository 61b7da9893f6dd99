"""A read-only workspace with current locks (issue 7 §7): ``resolve --check``, ``show``,
``export -o ELSEWHERE``, ``list`` and a no-op ``resolve`` work; ``resolve`` with a stale
lock, and the artifact stages, say in one line which path they cannot write (exit 2).

The tests run as root, whom file modes do not stop: the workspace is made read-only by a
read-only bind mount in a user + mount namespace (``unshare``), as a read-only volume
would be."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import _cli_env
from test_resolve_local import BASE_RECIPES

E = "envbuild: error: "


def read_only(ws: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``envbuild ARGS`` in ``ws`` mounted read-only (for this process only)."""
    cli = shlex.join([sys.executable, "-m", "envbuild.cli", *args])
    mount = f"mount --bind {ws} {ws} && mount -o remount,bind,ro {ws}"
    return subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
         f"{mount} && cd {shlex.quote(str(ws))} && exec {cli}"],
        capture_output=True, text=True, env=_cli_env(), timeout=120, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def channel(make_channel) -> str:
    return str(make_channel(BASE_RECIPES, name="base").as_uri())


@pytest.fixture
def ws(tmp_path: Path, channel: str, run_cli) -> Path:
    if shutil.which("unshare") is None:
        pytest.skip("unshare not found")
    root = tmp_path / "ws"
    root.mkdir()
    (root / "envbuild.toml").write_text(
        f'[workspace]\narchs = ["linux-64", "osx-arm64"]\nchannels = ["{channel}"]\n\n'
        '[env.a]\nconda = ["demo-lib"]\n'
    )
    assert run_cli(root, "resolve").returncode == 0
    probe = read_only(root, "--version")
    if probe.returncode != 0:
        pytest.skip(f"no read-only bind mount here: {probe.stderr.strip()}")
    (root / "probe").write_text("")  # the mount was private to the child
    return root


def test_current_locks_read_only(ws, tmp_path):
    files = sorted(p.relative_to(ws) for p in ws.rglob("*"))
    check = read_only(ws, "resolve", "--check")
    assert (check.returncode, check.stdout, check.stderr) == (
        0, "2 locks current, 0 not current\n", ""
    )  # fmt: skip
    show = read_only(ws, "show", "a")
    assert show.returncode == 0, show.stderr
    assert show.stdout.startswith("env a [linux-64] (conda)\n")
    out = tmp_path / "elsewhere" / "a.lock.yml"
    export = read_only(ws, "export", "a", "--format", "conda-lock", "-o", str(out))
    assert export.returncode == 0, export.stderr
    assert out.read_text().startswith("version: 1\n")
    noop = read_only(ws, "resolve")
    assert (noop.returncode, noop.stdout, noop.stderr) == (0, "", "2 locks up to date\n")
    listing = read_only(ws, "list")
    assert listing.returncode == 0, listing.stderr
    assert "resolve" in listing.stdout.split()
    assert sorted(p.relative_to(ws) for p in ws.rglob("*")) == files  # nothing written


def test_stale_lock_read_only(ws):
    text = (ws / "envbuild.toml").read_text()
    (ws / "envbuild.toml").write_text(text.replace('["demo-lib"]', '["demo-lib", "demo-hello"]'))
    result = read_only(ws, "resolve")
    assert "Traceback" not in result.stdout + result.stderr
    assert (result.returncode, result.stderr) == (
        2,
        E + "cannot write locks/a/linux-64.json (read-only file system) and 1 more (see "
        "`envbuild resolve --check`): resolve where the workspace is writable\n",
    )
    check = read_only(ws, "resolve", "--check")
    assert check.returncode == 1
    assert check.stdout.splitlines()[-1] == "0 locks current, 2 not current"


def test_artifact_stages_read_only(ws):
    result = read_only(ws, "fetch")
    assert (result.returncode, result.stderr) == (
        2,
        E + "cannot write .envbuild (read-only file system): run envbuild where the workspace "
        "is writable (`resolve --check`, `show` and `export -o ELSEWHERE` work here)\n",
    )
