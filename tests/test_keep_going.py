"""One failing env x arch does not stop the others: every other lock is written, and the run
ends with a summary of the failures and exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_resolve_local import BASE_RECIPES, manifest


@pytest.fixture(scope="module")
def base_channel(make_channel) -> Path:
    return make_channel(BASE_RECIPES, name="base")


@pytest.mark.parametrize(  # doit's --continue is accepted anywhere: it is what envbuild does
    ("attempt", "argv"),
    [(1, ["resolve"]), (2, ["resolve", "--continue"]), (3, ["--continue", "resolve"])],
)
def test_two_unsatisfiable_envs_of_six(base_channel, workspace, run_cli, attempt, argv):
    envs = {f"ok{i}": {"conda": ["demo-lib"]} for i in range(4)}
    envs["bad1"] = {"conda": ["demo-lib >=9"]}
    envs["bad2"] = {"conda": ["no-such-package"]}
    ws = workspace(
        manifest([base_channel.as_uri()], envs, archs=("linux-64",)), name=f"ws{attempt}"
    )
    result = run_cli(ws, *argv)
    assert result.returncode == 2
    assert "Traceback" not in result.stdout + result.stderr
    locks = sorted(p.parent.name for p in (ws / "locks").glob("*/linux-64.json"))
    assert locks == ["ok0", "ok1", "ok2", "ok3"]
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("envbuild: error: ")]
    assert [ln.split(":")[2].strip() for ln in errors] in (
        ["resolve bad1@linux-64", "resolve bad2@linux-64"],
        ["resolve bad2@linux-64", "resolve bad1@linux-64"],
    )
    assert result.stderr.splitlines()[-1] == (
        "envbuild: 2 failed: resolve:bad1@linux-64, resolve:bad2@linux-64"
    )


def test_failures_come_last_after_the_uptodate_summary(base_channel, workspace, run_cli):
    envs = {"ok": {"conda": ["demo-lib"]}, "bad1": {"conda": ["demo-lib >=9"]},
            "bad2": {"conda": ["no-such-package"]}}  # fmt: skip
    ws = workspace(manifest([base_channel.as_uri()], envs, archs=("linux-64",)))
    assert run_cli(ws, "resolve", "env=ok").returncode == 0
    result = run_cli(ws, "resolve")
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[-2:] == [
        "1 lock up to date",
        "envbuild: 2 failed: resolve:bad1@linux-64, resolve:bad2@linux-64",
    ]
