"""Acceptance of concurrent runs (issue 8), real processes: two ``envbuild`` runs uploading
the same workspace to one S3 store at the same time both succeed, every descriptor's
objects exist and verify and no object is written twice (counted at the server); two runs
fetching into one local cache at the same time corrupt nothing."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import _cli_env
from test_artifacts_e2e import (
    STUB,
    STUB_ENV,
    assert_ok,
    check_published,
    demo_workspace,
    files_under,
    locks_of,
    object_puts,
    skipped,
    workspace_store,
)


def start(ws: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "envbuild.cli", *args], cwd=ws, env=_cli_env(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def finish(*procs: subprocess.Popen[str]) -> list[subprocess.CompletedProcess[str]]:
    out = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=300)
        out.append(subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr))
    return out


def extra_envs() -> str:
    return STUB_ENV if STUB.is_dir() else ""


@pytest.mark.slow
def test_two_uploads_to_one_store_at_once(tmp_path, s3_bucket, s3_env, run_cli):
    """Two copies of one workspace (same locks) run ``envbuild`` against one S3 store at the
    same time: both exit 0, every descriptor names objects that exist and verify, and each
    object was written once (a create-only PUT that lost the race is answered 412)."""
    one = demo_workspace(tmp_path / "one", f"s3://{s3_bucket}/shared", extra_envs())
    assert_ok(run_cli(one, "resolve"))
    two = tmp_path / "two"
    shutil.copytree(one, two, ignore=shutil.ignore_patterns(".envbuild"))
    s3_env.clear()
    results = finish(start(one), start(two))
    for result in results:
        assert_ok(result)
    assert locks_of(one).keys() == locks_of(two).keys()
    for name, lock in locks_of(one).items():
        assert locks_of(two)[name].to_dict() == lock.to_dict()
    check_published(workspace_store(one), one)
    puts = object_puts(s3_env, s3_bucket)
    assert puts, "nothing was uploaded"
    overwritten = {key: n for key, n in puts.items() if n > 1}
    assert overwritten == {}
    # both runs together wrote each object once: what one run did not write, the other did
    uploaded = [ln for r in results for ln in r.stderr.splitlines() if ln.startswith("uploaded ")]
    assert sum(int(ln.split(": ")[1].split()[0]) for ln in uploaded) == len(puts)


@pytest.mark.slow
@pytest.mark.parametrize("round_", range(3))
def test_two_fetches_into_one_cache_at_once(round_, tmp_path, run_cli):
    """Two ``envbuild fetch`` in one workspace at the same time (one cache, one store, the
    same files): both exit 0, every cached file verifies against the sha256 it is filed
    under, no temp file is left, and a third fetch finds everything up to date."""
    ws = demo_workspace(tmp_path / "ws", "", extra_envs())
    assert_ok(run_cli(ws, "resolve"))
    results = finish(start(ws, "fetch"), start(ws, "fetch"))
    for result in results:
        assert_ok(result)
    cache = ws / ".envbuild" / "pkgs"
    packages = [p for p in files_under(cache) if not p.name.startswith(".")]
    assert packages
    wanted = {
        (p.sha256, p.filename)
        for lock in locks_of(ws).values()
        for p in lock.packages
        if p.filename and p.sha256
    }
    for path in packages:
        if path.parts[-4] == "records":  # transmute/build records, not packages
            continue
        sha = path.parent.name
        assert path.parent.parent.name == sha[:2]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == sha, path
    assert wanted <= {(p.parent.name, p.name) for p in packages}
    assert [p for p in files_under(cache) if p.name.endswith((".part", ".store"))] == []
    again = run_cli(ws, "fetch", "-v")
    assert_ok(again)
    assert skipped(again, "fetch:") == {f"fetch:{name}" for name in locks_of(ws)}
    assert "rejected" not in again.stderr and "removed from the cache" not in again.stderr
