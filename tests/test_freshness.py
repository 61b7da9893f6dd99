"""Lock freshness from the lock file alone: fresh clones, deleted state, damaged and old locks,
``resolve --check``, spec edits that change nothing, local inputs, orphaned locks."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import REPO_ROOT, build_channel_from_recipes, read_lock_json
from test_resolve_local import BASE_RECIPES, assert_ok, manifest, task_lines

ARCHS = ("linux-64", "osx-arm64")
RESOLVES = {f"resolve:{e}@{a}" for e in ("one", "two") for a in ARCHS}

ENV_YML = """\
name: two
channels: []
dependencies:
  - demo-hello
"""


def ran(result: subprocess.CompletedProcess[str]) -> set[str]:
    """The resolve subtasks a run executed."""
    return {ln[3:] for ln in task_lines(result.stdout) if ln.startswith(".  ") and "@" in ln}


def up_to_date(result: subprocess.CompletedProcess[str]) -> set[str]:
    return {ln[3:] for ln in task_lines(result.stdout) if ln.startswith("-- ") and "@" in ln}


@pytest.fixture
def ws(base_channel: Path, workspace) -> Path:
    envs = {"one": {"conda": ["demo-lib"]}, "two": {"file": "envs/two.yml"}}
    return workspace(
        manifest([base_channel.as_uri()], envs, archs=ARCHS), {"envs/two.yml": ENV_YML}
    )


@pytest.fixture(scope="module")
def base_channel(make_channel) -> Path:
    return make_channel(BASE_RECIPES, name="base")


def git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
        cwd=cwd, check=True, capture_output=True,
    )  # fmt: skip


@pytest.mark.slow
def test_fresh_clone_of_the_demo_runs_no_resolve(tmp_path, run_cli):
    """Acceptance 1: resolve the demo, commit its locks, clone: 0 resolve tasks, --check 0;
    a meaningful spec edit makes --check name that env, and resolve re-solves only it."""
    src = tmp_path / "demo"
    shutil.copytree(REPO_ROOT / "examples" / "demo", src,
                    ignore=shutil.ignore_patterns(".envbuild", "locks", ".gitignore"))  # fmt: skip
    assert_ok(run_cli(src, "resolve"))
    (src / ".gitignore").write_text(".envbuild/\n")
    git(src, "init", "-q")
    git(src, "add", "-A")
    git(src, "commit", "-qm", "locks")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(src), str(clone))
    assert not (clone / ".envbuild").exists()

    result = run_cli(clone, "resolve", "-v")
    assert_ok(result)
    assert ran(result) == set()
    assert len(up_to_date(result)) == 10  # hello x2, tools x4, greet x2, cli x2
    quiet = run_cli(clone, "resolve")  # without -v: one summary line
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "10 locks up to date\n")
    check = run_cli(clone, "resolve", "--check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout == "10 locks current, 0 not current\n"

    shutil.rmtree(clone / ".envbuild")
    again = run_cli(clone, "resolve")
    assert_ok(again)
    assert ran(again) == set()

    manifest_path = clone / "envbuild.toml"
    manifest_path.write_text(
        manifest_path.read_text().replace(
            'conda = ["demo-hello >=1.0"]', 'conda = ["demo-hello >=1.0", "demo-lib"]'
        )
    )
    check = run_cli(clone, "resolve", "--check")
    assert check.returncode == 1
    assert check.stdout.splitlines() == [
        "locks/hello/linux-64.json: stale: spec changed: added demo-lib",
        "locks/hello/osx-arm64.json: stale: spec changed: added demo-lib",
        "8 locks current, 2 not current",
    ]
    result = run_cli(clone, "resolve")
    assert_ok(result)
    assert ran(result) == {"resolve:hello@linux-64", "resolve:hello@osx-arm64"}
    assert run_cli(clone, "resolve", "--check").returncode == 0


def test_no_meaning_edits_resolve_nothing(ws, run_cli):
    """Comments, order, whitespace and duplicates in spec files and the manifest change no
    resolve input; the lock's bytes stay the same."""
    assert_ok(run_cli(ws, "resolve"))
    before = {p: p.read_bytes() for p in (ws / "locks").rglob("*.json")}
    (ws / "envs/two.yml").write_text(
        "# a comment\nname: two\nchannels: []\ndependencies:\n  - demo-hello   # why\n  - demo-hello\n"
    )
    text = (ws / "envbuild.toml").read_text()
    (ws / "envbuild.toml").write_text(
        "# top comment\n"
        + text.replace('conda = ["demo-lib"]', 'conda = [ "demo-lib",   "demo-lib" ]  # x')
    )
    result = run_cli(ws, "resolve", "-v")
    assert_ok(result)
    assert ran(result) == set()
    assert up_to_date(result) == RESOLVES
    assert {p: p.read_bytes() for p in (ws / "locks").rglob("*.json")} == before


def test_reordering_dependencies_keeps_lock_bytes(ws, run_cli):
    text = (ws / "envbuild.toml").read_text()
    (ws / "envbuild.toml").write_text(
        text.replace('conda = ["demo-lib"]', 'conda = ["demo-lib", "demo-tool"]')
    )
    assert_ok(run_cli(ws, "resolve"))
    before = (ws / "locks/one/linux-64.json").read_bytes()
    (ws / "envbuild.toml").write_text(
        text.replace('conda = ["demo-lib"]', 'conda = ["demo-tool", "demo-lib"]')
    )
    shutil.rmtree(ws / "locks")
    assert_ok(run_cli(ws, "resolve"))
    assert (ws / "locks/one/linux-64.json").read_bytes() == before
    assert [d["value"] for d in read_lock_json(ws, "one", "linux-64")["spec"]["conda"]] == [
        "demo-lib",
        "demo-tool",
    ]


def test_damaged_lock_is_reported_and_reresolved(ws, run_cli):
    assert_ok(run_cli(ws, "resolve"))
    path = ws / "locks/one/linux-64.json"
    good = path.read_bytes()
    data = json.loads(good)
    data["packages"][0]["sha256"] = "0" * 64  # a hand edit
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    check = run_cli(ws, "resolve", "--check")
    assert check.returncode == 1
    assert check.stdout.splitlines()[0] == (
        "locks/one/linux-64.json: damaged: its packages or spec do not match its own "
        "full_id/req_id (edited by hand or damaged by a merge): it is re-resolved"
    )
    result = run_cli(ws, "resolve")
    assert_ok(result)
    assert "locks/one/linux-64.json: damaged" in result.stderr
    assert ran(result) == {"resolve:one@linux-64"}
    assert path.read_bytes() == good


@pytest.mark.parametrize(
    ("content", "state", "reason"),
    [
        ("{not json", "damaged", "not valid JSON"),
        ("[1, 2]", "damaged", "not a lock (a JSON object): re-resolve to rewrite it"),
        ('{"version": 2, "env_id": {}}', "damaged", "malformed lock (KeyError('req_id'))"),
        (
            '{"version": 1}',
            "stale",
            "lock format version 1 is older than this envbuild's (2): `envbuild resolve` rewrites it",
        ),
        (
            '{"version": 9}',
            "stale",
            "lock format version 9 is not supported (this envbuild reads version 2): upgrade envbuild, or re-resolve",
        ),
    ],
)
def test_unreadable_locks(ws, run_cli, content, state, reason):
    assert_ok(run_cli(ws, "resolve"))
    path = ws / "locks/two/osx-arm64.json"
    path.write_text(content)
    check = run_cli(ws, "resolve", "--check", "--json")
    assert check.returncode == 1
    doc = json.loads(check.stdout)
    assert doc["current"] is False
    bad = [lock for lock in doc["locks"] if lock["state"] != "current"]
    assert len(bad) == 1
    assert bad[0]["lock"] == "locks/two/osx-arm64.json"
    assert bad[0]["state"] == state
    assert reason in bad[0]["reasons"][0]
    result = run_cli(ws, "resolve")
    assert_ok(result)
    assert ran(result) == {"resolve:two@osx-arm64"}
    assert run_cli(ws, "resolve", "--check").returncode == 0


def test_old_lock_version_in_show_is_a_clear_error(ws, run_cli):
    assert_ok(run_cli(ws, "resolve"))
    path = ws / "locks/one/linux-64.json"
    data = json.loads(path.read_text())
    data["version"] = 1
    path.write_text(json.dumps(data))
    result = run_cli(ws, "show", "one", "--arch", "linux-64")
    assert result.returncode == 2
    assert result.stderr == (
        "envbuild: error: locks/one/linux-64.json: lock format version 1 is older than this envbuild's (2): "
        "`envbuild resolve` rewrites it\n"
    )


def test_check_writes_nothing_and_names_missing_locks(ws, run_cli):
    check = run_cli(ws, "resolve", "--check")
    assert check.returncode == 1
    assert check.stdout.splitlines() == [
        f"locks/{e}/{a}.json: missing: no lock file" for e in ("one", "two") for a in ARCHS
    ] + ["0 locks current, 4 not current"]
    assert sorted(p.name for p in ws.iterdir()) == ["envbuild.toml", "envs"]


def test_check_reasons(ws, run_cli):
    assert_ok(run_cli(ws, "resolve"))
    text = (ws / "envbuild.toml").read_text()
    text = text.replace(
        'conda = ["demo-lib"]', 'conda = ["demo-tool"]\nchannel-priority = "flexible"'
    )
    text = text.replace("[env.two]", '[env.two]\nvirtual-packages = { __glibc = "2.31" }')
    (ws / "envbuild.toml").write_text(text)
    check = run_cli(ws, "resolve", "--check")
    assert check.returncode == 1
    assert check.stdout.splitlines() == [
        "locks/one/linux-64.json: stale: spec changed: added demo-tool; removed demo-lib; "
        "resolver settings changed: channel_priority",
        "locks/one/osx-arm64.json: stale: spec changed: added demo-tool; removed demo-lib; "
        "resolver settings changed: channel_priority",
        "locks/two/linux-64.json: stale: spec changed: sys changed; virtual packages changed: "
        "added __glibc=2.31=0; removed __glibc=2.28=0",
        # the override is part of the env's req_id, though osx ignores __glibc
        "locks/two/osx-arm64.json: stale: spec changed: sys changed",
        "0 locks current, 4 not current",
    ]


def test_solve_timeout_is_not_an_input(ws, run_cli):
    assert_ok(run_cli(ws, "resolve"))
    text = (ws / "envbuild.toml").read_text()
    (ws / "envbuild.toml").write_text(
        text.replace("[workspace]", "[workspace]\nsolve-timeout = 30")
    )
    assert run_cli(ws, "resolve", "--check").returncode == 0


def test_orphaned_locks_reported_and_removed(ws, run_cli):
    assert_ok(run_cli(ws, "resolve"))
    text = (ws / "envbuild.toml").read_text()
    (ws / "envbuild.toml").write_text(
        text.replace('archs = ["linux-64", "osx-arm64"]', 'archs = ["linux-64"]').replace(
            '[env.two]\nfile = "envs/two.yml"\n', ""
        )
    )
    check = run_cli(ws, "resolve", "--check")
    assert check.returncode == 1
    assert check.stdout.splitlines() == [
        "locks/one/osx-arm64.json: orphaned: env 'one' no longer targets osx-arm64",
        "locks/two/linux-64.json: orphaned: env 'two' is not in the manifest",
        "locks/two/osx-arm64.json: orphaned: env 'two' is not in the manifest",
        "1 lock current, 3 not current",
    ]
    # a filtered run leaves other envs' locks alone
    assert_ok(run_cli(ws, "resolve", "env=one"))
    assert (ws / "locks/two/linux-64.json").exists()
    result = run_cli(ws, "resolve")
    assert_ok(result)
    assert "removed locks/two/linux-64.json (env 'two' is not in the manifest)" in result.stderr
    assert sorted(p.relative_to(ws).as_posix() for p in (ws / "locks").rglob("*.json")) == [
        "locks/one/linux-64.json"
    ]
    assert not (ws / "locks/two").exists()
    assert run_cli(ws, "resolve", "--check").returncode == 0


def test_changing_archs_keeps_remaining_locks_current(ws, run_cli):
    assert_ok(run_cli(ws, "resolve"))
    before = (ws / "locks/one/linux-64.json").read_bytes()
    text = (ws / "envbuild.toml").read_text()
    (ws / "envbuild.toml").write_text(
        text.replace('archs = ["linux-64", "osx-arm64"]', 'archs = ["linux-64"]')
    )
    check = run_cli(ws, "resolve", "--check", "env=one,two")
    assert check.returncode == 0
    assert check.stdout == "2 locks current, 0 not current\n"
    (ws / "envbuild.toml").write_text(
        text.replace('archs = ["linux-64", "osx-arm64"]', 'archs = ["osx-arm64", "linux-64"]')
    )
    result = run_cli(ws, "resolve")
    assert_ok(result)
    assert ran(result) == set()
    assert (ws / "locks/one/linux-64.json").read_bytes() == before


# --------------------------------------------------------------------------- local inputs

LIB_20 = {"name": "demo-lib", "version": "2.0.0", "subdirs": list(ARCHS)}


def test_local_channel_change_makes_exactly_its_users_stale(
    base_channel, tmp_path, workspace, run_cli
):
    local = tmp_path / "localchan"
    build_channel_from_recipes([BASE_RECIPES[0]], local)
    envs = {
        "uses": {"conda": ["demo-lib"], "channels": ["./localchan"]},
        "other": {"conda": ["demo-lib"]},
    }
    root = workspace(manifest([base_channel.as_uri()], envs, archs=ARCHS), name="ws2")
    shutil.move(str(local), root / "localchan")
    assert_ok(run_cli(root, "resolve"))
    assert run_cli(root, "resolve", "--check").returncode == 0
    build_channel_from_recipes([BASE_RECIPES[0], LIB_20], root / "localchan")
    check = run_cli(root, "resolve", "--check")
    assert check.stdout.splitlines() == [
        "locks/uses/linux-64.json: stale: local channel ./localchan content changed",
        "locks/uses/osx-arm64.json: stale: local channel ./localchan content changed",
        "2 locks current, 2 not current",
    ]
    result = run_cli(root, "resolve")
    assert ran(result) == {"resolve:uses@linux-64", "resolve:uses@osx-arm64"}


def test_new_find_links_wheel_makes_exactly_its_users_stale(tmp_path, run_cli):
    from pypi_index import make_wheel
    from test_resolve_pypi import PYTHON, write_manifest

    chan = build_channel_from_recipes([PYTHON], tmp_path / "ws" / "chan")
    wheels = tmp_path / "ws" / "wheels"
    make_wheel(wheels, "flpkg", "1.0")
    settings = {"archs": list(ARCHS), "channels": [chan.as_uri()]}
    envs = {
        "links": {"python": "3.11", "pypi": ["flpkg", "--no-index", "--find-links ./wheels"]},
        "plain": {"python": "3.11"},
    }
    ws = write_manifest(tmp_path / "ws", settings, envs)
    result = run_cli(ws, "resolve")
    assert_ok(result)
    assert read_lock_json(ws, "links", "linux-64")["inputs"]["local"].keys() == {
        f"channel:{chan.as_uri()}",
        "find-links:./wheels",
    }
    make_wheel(wheels, "flpkg", "2.0")
    check = run_cli(ws, "resolve", "--check")
    assert check.stdout.splitlines() == [
        "locks/links/linux-64.json: stale: find-links ./wheels content changed",
        "locks/links/osx-arm64.json: stale: find-links ./wheels content changed",
        "2 locks current, 2 not current",
    ]
    result = run_cli(ws, "resolve")
    assert ran(result) == {"resolve:links@linux-64", "resolve:links@osx-arm64"}
    # the new wheel is available, but the pin is kept until --update
    assert read_lock_json(ws, "links", "linux-64")["packages"][-1]["version"] == "1.0"
