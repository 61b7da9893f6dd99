"""End-to-end resolution against real local channels (built from recipes with
conda-package-handling and indexed with rattler), over file:// and over a loopback HTTP
server, driven through the real ``envbuild`` CLI (a subprocess)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    REPO_ROOT,
    copy_workspace,
    file_hashes,
    lock_packages,
    read_lock_json,
    run_python,
)

ARCHS = ("linux-64", "osx-arm64")

LIB_10 = {
    "name": "demo-lib",
    "version": "1.0.0",
    "subdirs": list(ARCHS),
    "files": {"share/demo-lib/VERSION": "1.0.0"},
}
LIB_11 = {
    "name": "demo-lib",
    "version": "1.1.0",
    "subdirs": list(ARCHS),
    "depends": [],
    "files": {"share/demo-lib/VERSION": "1.1.0"},
}
HELLO = {
    "name": "demo-hello",
    "version": "1.2.0",
    "noarch": "generic",
    "depends": ["demo-lib >=1.0,<2"],
    "files": {"share/demo-hello/hello.txt": "Hello!"},
}
TOOL = {
    "name": "demo-tool",
    "version": "2.0.0",
    "noarch": "generic",
    "format": ".tar.bz2",
    "depends": ["demo-lib >=1.1"],
    "files": {"share/demo-tool/README": "a .tar.bz2 package"},
}
# The same package in both formats: the solver must prefer the .conda one.
BOTH_CONDA = {"name": "demo-both", "version": "1.0", "noarch": "generic", "format": ".conda"}
BOTH_BZ2 = {"name": "demo-both", "version": "1.0", "noarch": "generic", "format": ".tar.bz2"}
LINUX_ONLY = {
    "name": "demo-linux-only",
    "version": "0.3.0",
    "subdirs": ["linux-64"],
    "depends": ["demo-lib >=1", "__glibc >=2.17"],
}
BASE_RECIPES = [LIB_10, LIB_11, HELLO, TOOL, BOTH_CONDA, BOTH_BZ2, LINUX_ONLY]


def toml_list(values: list[str] | tuple[str, ...]) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def manifest(
    channels: list[str],
    envs: dict[str, dict[str, Any]],
    archs: tuple[str, ...] = ARCHS,
    extra: str = "",
) -> str:
    """An envbuild.toml: workspace archs/channels plus ``[env.NAME]`` tables."""
    out = [
        "[workspace]",
        f"archs = {toml_list(archs)}",
        f"channels = {toml_list(channels)}",
        extra,
    ]
    for name, table in envs.items():
        out.append(f"[env.{name}]")
        for key, value in table.items():
            if isinstance(value, (list, tuple)):
                out.append(f"{key} = {toml_list(value)}")
            elif isinstance(value, dict):
                inner = ", ".join(f"{k} = {json.dumps(v)}" for k, v in value.items())
                out.append(f"{key} = {{ {inner} }}")
            else:
                out.append(f"{key} = {json.dumps(value)}")
    return "\n".join(out) + "\n"


def task_lines(stdout: str) -> set[str]:
    """doit's per-task lines (``.  name`` ran, ``-- name`` up to date), without the
    orphaned-lock cleanup ``resolve:prune`` (see test_freshness.py)."""
    return {
        line
        for line in stdout.splitlines()
        if line.startswith((".  ", "-- ")) and line[3:] != "resolve:prune"
    }


def all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def assert_ok(result: Any) -> None:
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "Traceback" not in result.stdout + result.stderr


@pytest.fixture(scope="module")
def base_channel(make_channel) -> Path:
    """linux-64 + osx-arm64 + noarch packages, .conda and .tar.bz2 (read-only)."""
    return make_channel(BASE_RECIPES, name="base")


# --------------------------------------------------------------------------- file:// channel


def check_lock_against_channel(lock: dict[str, Any], channel: Path, base_url: str) -> None:
    """Every locked package is a real file of ``channel``, with its exact hashes and size."""
    for pkg in lock["packages"]:
        path = channel / pkg["subdir"] / pkg["filename"]
        assert path.is_file(), pkg
        real = file_hashes(path)
        assert (pkg["md5"], pkg["sha256"], pkg["size"]) == (
            real["md5"],
            real["sha256"],
            real["size"],
        )
        assert pkg["url"] == f"{base_url}/{pkg['subdir']}/{pkg['filename']}"
        assert pkg["channel"] == base_url
        assert pkg["kind"] == "conda"


def test_resolve_file_channel_per_subdir_and_noarch(base_channel, workspace, run_cli):
    uri = base_channel.as_uri()
    ws = workspace(manifest([uri], {"app": {"conda": ["demo-hello", "demo-tool", "demo-both"]}}))
    result = run_cli(ws, "resolve")
    assert_ok(result)
    assert task_lines(result.stdout) == {
        ".  resolve:app@linux-64",
        ".  resolve:app@osx-arm64",
    }
    for arch in ARCHS:
        lock = read_lock_json(ws, "app", arch)
        assert lock["version"] == 2
        assert lock["env"] == "app"
        assert lock["kind"] == "conda"
        assert lock["env_id"]["arch"] == arch
        pkgs = {p["name"]: p for p in lock["packages"]}
        assert sorted(pkgs) == ["demo-both", "demo-hello", "demo-lib", "demo-tool"]
        # per-subdir package from the target subdir, the newest version
        lib = pkgs["demo-lib"]
        assert (lib["version"], lib["build"], lib["subdir"]) == ("1.1.0", "0", arch)
        assert lib["filename"] == "demo-lib-1.1.0-0.conda"
        assert lib["depends"] == []
        # noarch packages from noarch/, in the only format they exist in
        hello, tool = pkgs["demo-hello"], pkgs["demo-tool"]
        assert (hello["subdir"], hello["filename"]) == ("noarch", "demo-hello-1.2.0-0.conda")
        assert hello["depends"] == ["demo-lib >=1.0,<2"]
        assert (tool["subdir"], tool["filename"]) == ("noarch", "demo-tool-2.0.0-0.tar.bz2")
        assert tool["depends"] == ["demo-lib >=1.1"]
        # .conda preferred over .tar.bz2 when both exist
        assert pkgs["demo-both"]["filename"] == "demo-both-1.0-0.conda"
        assert [p["name"] for p in lock["packages"]] == sorted(pkgs)  # canonical order
        check_lock_against_channel(lock, base_channel, uri)
    linux = lock_packages(ws, "app", "linux-64")["demo-lib"]
    osx = lock_packages(ws, "app", "osx-arm64")["demo-lib"]
    assert linux["sha256"] != osx["sha256"]  # really two different files


def test_lock_full_id_matches_packages(base_channel, workspace, run_cli):
    from envbuild.ids import full_id

    ws = workspace(manifest([base_channel.as_uri()], {"app": {"conda": ["demo-hello"]}}))
    assert_ok(run_cli(ws, "resolve"))
    ids = set()
    for arch in ARCHS:
        lock = read_lock_json(ws, "app", arch)
        pairs = [(p["filename"], p["sha256"]) for p in lock["packages"]]
        assert lock["env_id"]["full_id"] == full_id(pairs, arch)
        ids.add(lock["env_id"]["req_id"])
    assert len(ids) == 1  # one request, resolved for two archs


def test_arch_specific_package_missing_on_other_arch(base_channel, workspace, run_cli):
    ws = workspace(
        manifest([base_channel.as_uri()], {"lx": {"conda": ["demo-linux-only"]}}, archs=ARCHS)
    )
    result = run_cli(ws, "resolve", "arch=linux-64")
    assert_ok(result)
    pkgs = lock_packages(ws, "lx", "linux-64")
    assert pkgs["demo-linux-only"]["subdir"] == "linux-64"
    result = run_cli(ws, "resolve", "arch=osx-arm64")
    assert result.returncode == 2
    assert "No candidates were found for demo-linux-only" in result.stdout + result.stderr
    assert not (ws / "locks" / "lx" / "osx-arm64.json").exists()


def test_lock_noarch_field(base_channel, workspace, run_cli):
    ws = workspace(manifest([base_channel.as_uri()], {"app": {"conda": ["demo-hello"]}}))
    assert_ok(run_cli(ws, "resolve", "arch=linux-64"))
    pkgs = lock_packages(ws, "app", "linux-64")
    assert pkgs["demo-hello"]["noarch"] == "generic"
    assert pkgs["demo-lib"]["noarch"] == ""


# --------------------------------------------------------------------------- HTTP channel


def test_resolve_http_channel(base_channel, http_server, workspace, run_cli):
    server = http_server(base_channel)
    ws = workspace(manifest([server.url], {"app": {"conda": ["demo-hello", "demo-tool"]}}))
    assert_ok(run_cli(ws, "resolve"))
    gets = {path for method, path, _ in server.requests if method == "GET"}
    for subdir in (*ARCHS, "noarch"):
        assert f"/{subdir}/repodata.json" in gets
    # resolving reads repodata only: no package file is downloaded
    assert not [p for p in server.paths if p.endswith((".conda", ".tar.bz2"))]
    for arch in ARCHS:
        lock = read_lock_json(ws, "app", arch)
        assert all(p["url"].startswith(server.url + "/") for p in lock["packages"])
        check_lock_against_channel(lock, base_channel, server.url)
        assert lock_packages(ws, "app", arch)["demo-lib"]["subdir"] == arch


SECRET = "s3cret"


@pytest.fixture
def secret_ws(base_channel, http_server, workspace, run_cli):
    """A workspace whose channel URL holds credentials, resolved once."""
    server = http_server(base_channel)
    port = server.url.rsplit(":", 1)[1]
    url = f"http://user:{SECRET}@127.0.0.1:{port}/"
    ws = workspace(manifest([url], {"app": {"conda": ["demo-hello"]}}))
    result = run_cli(ws, "resolve")
    return ws, server, result


def test_credentials_channel_resolves_and_locks_redact_urls(secret_ws):
    ws, server, result = secret_ws
    assert_ok(result)
    assert SECRET not in result.stdout + result.stderr
    assert "/noarch/repodata.json" in server.paths
    # the credentials are really used: basic auth on the repodata requests
    auth = "Basic " + base64.b64encode(f"user:{SECRET}".encode()).decode()
    repodata = [h for _, path, h in server.requests if path.endswith("/repodata.json")]
    assert repodata and all(h.get("authorization") == auth for h in repodata)
    for arch in ARCHS:
        lock = read_lock_json(ws, "app", arch)
        for pkg in lock["packages"]:
            assert pkg["url"].startswith(server.url + "/")
            assert pkg["channel"] == server.url
        assert lock["spec"]["channels"] == [server.url]
    # envbuild's own files (locks, spec snapshots) never hold the password
    own = [*(ws / "locks").rglob("*"), *(ws / ".envbuild" / "specs").rglob("*")]
    assert [p for p in own if p.is_file() and SECRET.encode() in p.read_bytes()] == []


def test_credentials_not_written_under_workspace(secret_ws):
    ws, _, result = secret_ws
    assert_ok(result)
    leaks = [
        str(p.relative_to(ws))
        for p in all_files(ws)
        if p.name != "envbuild.toml" and SECRET.encode() in p.read_bytes()
    ]
    assert leaks == []


def test_credentials_not_in_show_or_export(secret_ws, run_cli, tmp_path):
    ws, server, result = secret_ws
    assert_ok(result)
    show = run_cli(ws, "show", "app")
    assert_ok(show)
    assert SECRET not in show.stdout + show.stderr
    assert f"  channels {server.url}" in show.stdout.splitlines()
    for fmt, name in (("conda-lock", "conda-lock.yml"), ("explicit", "x.txt")):
        out = tmp_path / name
        args = ["--arch", "linux-64"] if fmt == "explicit" else []
        assert_ok(run_cli(ws, "export", "app", *args, "--format", fmt, "-o", out))
        assert SECRET not in out.read_text()


def test_credentials_not_in_failure_messages(base_channel, http_server, workspace, run_cli):
    server = http_server(base_channel)
    port = server.url.rsplit(":", 1)[1]
    ws = workspace(
        manifest(
            [f"http://user:{SECRET}@127.0.0.1:{port}/nope"],
            {"app": {"conda": ["demo-hello"]}},
            archs=("linux-64",),
        )
    )
    result = run_cli(ws, "resolve")
    assert result.returncode == 2
    out = result.stdout + result.stderr
    assert "Traceback" not in out
    assert SECRET not in out
    assert (
        f"resolve app@linux-64: could not read channels for linux-64 from {server.url}/nope: "
        in out
    )
    assert "/nope/noarch/repodata.json" in server.paths


def test_relative_path_channel_and_dash_c(base_channel, tmp_path, run_cli):
    """A channel given as a path relative to the manifest, and ``-C DIR`` from elsewhere:
    both runs share one state (the second is a no-op)."""
    from conftest import write_workspace

    ws = write_workspace(
        tmp_path / "ws", manifest(["./channels/local"], {"app": {"conda": ["demo-hello"]}})
    )
    shutil.copytree(base_channel, ws / "channels" / "local")
    result = run_cli(tmp_path, "-C", "ws", "resolve")
    assert_ok(result)
    lock = read_lock_json(ws, "app", "linux-64")
    assert lock["spec"]["channels"] == ["./channels/local"]
    # a channel inside the workspace is locked by its workspace-relative path
    assert {p["channel"] for p in lock["packages"]} == {"channels/local"}
    assert all(p["url"].startswith("channels/local/") for p in lock["packages"])
    again = run_cli(ws, "resolve")
    assert_ok(again)
    assert all(ln.startswith("-- ") for ln in again.stdout.splitlines())
    assert (tmp_path / ".envbuild").exists() is False


@pytest.mark.parametrize(
    ("where", "channel"),
    [("t/ws", "./channels/local"), ("a/t/b/ws", "./t/local"), ("ws", "./t/t/local")],
)
def test_directories_named_t_are_not_token_paths(base_channel, tmp_path, run_cli, where, channel):
    """A local path with a directory named ``t`` is a path, not a conda ``/t/<token>/``: the
    lock keeps it whole, and fetch finds every file."""
    from conftest import write_workspace

    ws = write_workspace(tmp_path / where, manifest([channel], {"app": {"conda": ["demo-hello"]}}))
    shutil.copytree(base_channel, ws / channel)
    assert_ok(run_cli(ws, "resolve", "arch=linux-64"))
    lock = read_lock_json(ws, "app", "linux-64")
    rel = channel.removeprefix("./")
    assert {p["channel"] for p in lock["packages"]} == {rel}
    assert all(p["url"].startswith(f"{rel}/") for p in lock["packages"])
    assert_ok(run_cli(ws, "fetch", "arch=linux-64"))


def test_unreachable_channel(workspace, run_cli):
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    ws = workspace(manifest([url + "/"], {"app": {"conda": ["demo-lib"]}}, archs=("linux-64",)))
    result = run_cli(ws, "resolve")
    out = result.stdout + result.stderr
    assert result.returncode == 2, out
    assert "Traceback" not in out
    assert f"resolve app@linux-64: could not read channels for linux-64 from {url}: " in out
    assert "Connection refused" in out
    assert out.rstrip().count("check the channel names/URLs and that they are reachable") == 1
    assert not (ws / "locks").exists()


# --------------------------------------------------------------------------- failures


@pytest.fixture
def unsat_ws(base_channel, workspace):
    return workspace(
        manifest([base_channel.as_uri()], {"bad": {"conda": ["demo-lib >=9"]}}, archs=("linux-64",))
    )


def test_unsatisfiable_exit_code_and_message(unsat_ws, base_channel, run_cli):
    result = run_cli(unsat_ws, "resolve")
    out = result.stdout + result.stderr
    assert result.returncode == 2, out
    assert "Traceback" not in out
    assert [ln for ln in result.stdout.splitlines() if not ln.startswith((".  ", "-- "))] == []
    assert result.stderr.splitlines()[:2] == [
        f"envbuild: error: resolve bad@linux-64: the specs cannot be satisfied for linux-64 from "
        f"{base_channel.as_uri()}:",
        "  Cannot solve the request because of: No candidates were found for demo-lib >=9.",
    ]
    assert not (unsat_ws / "locks" / "bad").exists()
    # still failing (and not marked up to date) on the next run
    again = run_cli(unsat_ws, "resolve")
    assert again.returncode == 2
    assert ".  resolve:bad@linux-64" in again.stdout


def test_unsatisfiable_message_on_stderr(unsat_ws, run_cli):
    result = run_cli(unsat_ws, "resolve")
    assert result.returncode == 2
    assert "resolve bad@linux-64: the specs cannot be satisfied for linux-64" in result.stderr


def test_unsatisfiable_explanation_keeps_its_lines(make_channel, workspace, run_cli):
    chan = make_channel(
        [
            {
                "name": "needs-glibc",
                "version": "1",
                "subdirs": ["linux-64"],
                "depends": ["__glibc >=2.34"],
            }
        ]
    )
    ws = workspace(
        manifest([chan.as_uri()], {"g": {"conda": ["needs-glibc"]}}, archs=("linux-64",))
    )
    result = run_cli(ws, "resolve")
    assert result.returncode == 2
    lines = [ln.strip() for ln in (result.stdout + result.stderr).splitlines()]
    assert "└─ needs-glibc 1 would require" in lines
    assert "└─ __glibc >=2.34, for which no candidates were found." in lines


# --------------------------------------------------------------------------- virtual packages

SYS_RECIPES = [
    LIB_11,
    {"name": "needs-glibc", "version": "1", "subdirs": ["linux-64"], "depends": ["__glibc >=2.34"]},
    {"name": "needs-osx14", "version": "1", "subdirs": ["osx-arm64"], "depends": ["__osx >=14"]},
    {"name": "needs-cuda", "version": "1", "subdirs": ["linux-64"], "depends": ["__cuda >=11.8"]},
    # one package, a different system requirement per OS
    {"name": "sysdep", "version": "1", "subdirs": ["linux-64"], "depends": ["__glibc >=2.34"]},
    {"name": "sysdep", "version": "1", "subdirs": ["osx-arm64"], "depends": ["__osx >=11"]},
]


@pytest.mark.parametrize(
    ("package", "arch", "virtual", "missing"),
    [
        ("needs-glibc", "linux-64", {"__glibc": "2.34"}, "__glibc >=2.34"),
        ("needs-osx14", "osx-arm64", {"__osx": "14.0"}, "__osx >=14"),
        ("needs-cuda", "linux-64", {"__cuda": "12.0"}, "__cuda >=11.8"),
    ],
)
def test_virtual_package_override(
    make_channel, workspace, run_cli, package, arch, virtual, missing
):
    chan = make_channel(SYS_RECIPES).as_uri()
    # defaults (__glibc 2.28, __osx 13.0, no __cuda): unsatisfiable
    ws = workspace(manifest([chan], {"e": {"conda": [package]}}, archs=(arch,)), name="default")
    result = run_cli(ws, "resolve")
    out = result.stdout + result.stderr
    assert result.returncode == 2, out
    assert "Traceback" not in out
    assert f"resolve e@{arch}: the specs cannot be satisfied for {arch}" in out
    assert missing in out
    # [workspace.virtual-packages]
    extra = "[workspace.virtual-packages]\n" + "".join(f'{k} = "{v}"\n' for k, v in virtual.items())
    ws = workspace(
        manifest([chan], {"e": {"conda": [package]}}, archs=(arch,), extra=extra), name="ws"
    )
    assert_ok(run_cli(ws, "resolve"))
    assert lock_packages(ws, "e", arch)[package]["subdir"] == arch
    assert read_lock_json(ws, "e", arch)["spec"]["virtual_packages"] == virtual
    # the same override in the env's own table
    ws = workspace(
        manifest([chan], {"e": {"conda": [package], "virtual-packages": virtual}}, archs=(arch,)),
        name="envtable",
    )
    assert_ok(run_cli(ws, "resolve"))
    assert package in lock_packages(ws, "e", arch)


def test_os_specific_override_ignored_for_other_os(make_channel, workspace, run_cli):
    chan = make_channel(SYS_RECIPES).as_uri()
    extra = '[workspace.virtual-packages]\n__glibc = "2.34"\n'
    ws = workspace(manifest([chan], {"s": {"conda": ["sysdep"]}}, extra=extra))
    assert_ok(run_cli(ws, "resolve"))
    for arch in ARCHS:
        pkg = lock_packages(ws, "s", arch)["sysdep"]
        assert pkg["subdir"] == arch
    assert lock_packages(ws, "s", "linux-64")["sysdep"]["depends"] == ["__glibc >=2.34"]
    assert lock_packages(ws, "s", "osx-arm64")["sysdep"]["depends"] == ["__osx >=11"]
    # without the override only linux-64 fails
    ws = workspace(manifest([chan], {"s": {"conda": ["sysdep"]}}), name="noover")
    assert_ok(run_cli(ws, "resolve", "arch=osx-arm64"))
    assert run_cli(ws, "resolve", "arch=linux-64").returncode == 2


# --------------------------------------------------------------------------- channel priority


@pytest.fixture
def two_channels(make_channel):
    low = make_channel([{**LIB_10, "files": {"share/demo-lib/FROM": "first"}}], name="first")
    high = make_channel(
        [{**LIB_10, "version": "2.0.0", "files": {"share/demo-lib/FROM": "second"}}],
        name="second",
    )
    return low.as_uri(), high.as_uri()


@pytest.mark.parametrize(
    ("order", "priority", "version", "winner"),
    [
        ("first-second", "strict", "1.0.0", 0),
        ("second-first", "strict", "2.0.0", 1),
        ("first-second", "disabled", "2.0.0", 1),
    ],
)
def test_channel_priority(two_channels, workspace, run_cli, order, priority, version, winner):
    channels = list(two_channels) if order == "first-second" else list(reversed(two_channels))
    ws = workspace(
        manifest(
            channels,
            {"p": {"conda": ["demo-lib"]}},
            archs=("linux-64",),
            extra=f'channel-priority = "{priority}"',
        )
    )
    assert_ok(run_cli(ws, "resolve"))
    lib = lock_packages(ws, "p", "linux-64")["demo-lib"]
    assert lib["version"] == version
    assert lib["channel"] == two_channels[winner]


# --------------------------------------------------------------------------- incremental graph

ENV_YML = """\
name: two
dependencies:
  - demo-hello
"""


@pytest.fixture
def graph_ws(base_channel, workspace):
    envs = {"one": {"conda": ["demo-lib"]}, "two": {"file": "envs/two.yml"}}
    return workspace(manifest([base_channel.as_uri()], envs), {"envs/two.yml": ENV_YML})


def lock_state(ws: Path) -> dict[str, tuple[int, bytes]]:
    return {
        str(p.relative_to(ws)): (p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted((ws / "locks").rglob("*.json"))
    }


RESOLVES = {f"resolve:{e}@{a}" for e in ("one", "two") for a in ARCHS}


def test_incremental_graph(graph_ws, run_cli):
    ws = graph_ws
    first = run_cli(ws, "resolve")
    assert_ok(first)
    assert task_lines(first.stdout) == {f".  {t}" for t in RESOLVES}

    second = run_cli(ws, "resolve")  # a no-op: one summary line, no line per task
    assert_ok(second)
    assert (second.stdout, second.stderr) == ("", f"{len(RESOLVES)} locks up to date\n")
    verbose = run_cli(ws, "resolve", "-v")  # -v: doit's line per task
    assert_ok(verbose)
    assert task_lines(verbose.stdout) == {f"-- {t}" for t in RESOLVES}
    assert all(line.startswith("-- ") for line in verbose.stdout.splitlines())
    assert verbose.stderr == ""
    before = lock_state(ws)

    # edit env one's inline spec: only one re-resolves
    text = (ws / "envbuild.toml").read_text()
    (ws / "envbuild.toml").write_text(
        text.replace('conda = ["demo-lib"]', 'conda = ["demo-lib 1.0.0"]')
    )
    third = run_cli(ws, "resolve", "-v")
    assert_ok(third)
    lines = task_lines(third.stdout)
    assert {".  resolve:one@linux-64", ".  resolve:one@osx-arm64"} <= lines
    assert {"-- resolve:two@linux-64", "-- resolve:two@osx-arm64"} <= lines
    after = lock_state(ws)
    for arch in ARCHS:
        assert after[f"locks/two/{arch}.json"] == before[f"locks/two/{arch}.json"]
        assert after[f"locks/one/{arch}.json"] != before[f"locks/one/{arch}.json"]
        assert lock_packages(ws, "one", arch)["demo-lib"]["version"] == "1.0.0"

    # edit the spec file: only two re-resolves
    (ws / "envs/two.yml").write_text(ENV_YML + "  - demo-tool\n")
    fourth = run_cli(ws, "resolve", "-v")
    assert_ok(fourth)
    lines = task_lines(fourth.stdout)
    assert {".  resolve:two@linux-64", ".  resolve:two@osx-arm64"} <= lines
    assert {"-- resolve:one@linux-64", "-- resolve:one@osx-arm64"} <= lines
    final = lock_state(ws)
    for arch in ARCHS:
        assert final[f"locks/one/{arch}.json"] == after[f"locks/one/{arch}.json"]
        assert "demo-tool" in lock_packages(ws, "two", arch)

    # a deleted lock is re-made, alone
    (ws / "locks/two/osx-arm64.json").unlink()
    fifth = run_cli(ws, "resolve")
    assert_ok(fifth)
    assert {ln for ln in task_lines(fifth.stdout) if ln.startswith(".  ")} == {
        ".  resolve:two@osx-arm64"
    }
    assert (ws / "locks/two/osx-arm64.json").read_bytes() == final["locks/two/osx-arm64.json"][1]


def test_resolver_setting_change_reresolves(graph_ws, run_cli):
    ws = graph_ws
    assert_ok(run_cli(ws, "resolve"))
    text = (ws / "envbuild.toml").read_text()
    (ws / "envbuild.toml").write_text(
        text.replace("[env.one]", '[env.one]\nchannel-priority = "flexible"')
    )
    result = run_cli(ws, "resolve")
    assert_ok(result)
    ran = {ln[3:] for ln in task_lines(result.stdout) if ln.startswith(".  ")}
    assert ran & RESOLVES == {"resolve:one@linux-64", "resolve:one@osx-arm64"}


def test_filters_select_subtasks(graph_ws, run_cli):
    ws = graph_ws
    result = run_cli(ws, "resolve", "arch=osx-arm64")
    assert_ok(result)
    assert task_lines(result.stdout) == {
        ".  resolve:one@osx-arm64",
        ".  resolve:two@osx-arm64",
    }
    assert sorted(p.relative_to(ws).as_posix() for p in (ws / "locks").rglob("*.json")) == [
        "locks/one/osx-arm64.json",
        "locks/two/osx-arm64.json",
    ]
    result = run_cli(ws, "resolve", "env=two", "-v")
    assert_ok(result)
    assert task_lines(result.stdout) == {
        ".  resolve:two@linux-64",
        "-- resolve:two@osx-arm64",
    }
    assert not (ws / "locks/one/linux-64.json").exists()
    result = run_cli(ws, "resolve", "env=one,two", "arch=linux-64")
    assert_ok(result)
    assert {ln for ln in task_lines(result.stdout) if ln.startswith(".  ")} == {
        ".  resolve:one@linux-64"
    }


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        (
            "env=nope",
            "envbuild: error: env=nope: no such env in envbuild.toml (known: one, two)",
        ),
        (
            "env=on",
            "envbuild: error: env=on: no such env in envbuild.toml (did you mean 'one'?) "
            "(known: one, two)",
        ),
        (
            "arch=osx-arm",
            "envbuild: error: arch=osx-arm: not a supported arch (did you mean 'osx-arm64'?) "
            "(use linux-64, linux-aarch64, osx-64, osx-arm64, win-64)",
        ),
        (
            "arch=win-32",
            "envbuild: error: arch=win-32: not a supported arch (did you mean 'win-64'?) "
            "(use linux-64, linux-aarch64, osx-64, osx-arm64, win-64)",
        ),
        (
            "evn=one",
            "envbuild: error: evn=one: unknown filter 'evn' (did you mean 'env'?): the filters "
            "are env=NAME,... arch=ARCH,... update=NAME,...",
        ),
    ],
)
def test_bad_filter(graph_ws, run_cli, arg, message):
    result = run_cli(graph_ws, "resolve", arg)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [message]
    assert "Traceback" not in result.stdout + result.stderr
    assert not (graph_ws / "locks").exists()


def test_forget_then_resolve_is_byte_identical(graph_ws, run_cli):
    ws = graph_ws
    assert_ok(run_cli(ws, "resolve"))
    before = {k: v[1] for k, v in lock_state(ws).items()}
    forget = run_cli(ws, "forget", "resolve")
    assert_ok(forget)
    assert "forgetting resolve:one@linux-64" in forget.stdout.splitlines()
    # the lock files decide, not doit's database: nothing to do after forget
    assert {f"-- {t}" for t in RESOLVES} <= task_lines(run_cli(ws, "resolve", "-v").stdout)
    again = run_cli(ws, "resolve", "--update")  # from nothing
    assert_ok(again)
    assert {f".  {t}" for t in RESOLVES} <= task_lines(again.stdout)
    assert {k: v[1] for k, v in lock_state(ws).items()} == before
    # and from scratch: no state, no locks
    shutil.rmtree(ws / ".envbuild")
    shutil.rmtree(ws / "locks")
    assert_ok(run_cli(ws, "resolve"))
    assert {k: v[1] for k, v in lock_state(ws).items()} == before


def test_list(graph_ws, run_cli):
    result = run_cli(graph_ws, "list")
    assert_ok(result)
    assert [ln.split()[0] for ln in result.stdout.splitlines()] == [
        "build", "channel", "create", "fetch", "resolve", "transmute", "upload"
    ]
    result = run_cli(graph_ws, "list", "--all")
    assert_ok(result)
    names = {ln.split()[0] for ln in result.stdout.splitlines()}
    assert RESOLVES | {"resolve:prune"} <= names
    assert not (graph_ws / "locks").exists()  # listing resolves nothing


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[workspace]\narchs = ["win-32"]\nchannels = ["conda-forge"]\n\n[env.a]\nconda = ["x"]\nbogus = 1\n',
            [  # one line per problem
                "envbuild: error: envbuild.toml:2: [workspace] archs: 'win-32' is not a "
                "supported arch: use one of linux-64, linux-aarch64, osx-64, osx-arm64, win-64",
                "envbuild: error: envbuild.toml:7: [env.a] bogus: unknown key 'bogus': allowed "
                "keys are archs, channel-priority, channels, conda, exclude-newer, "
                "extra-indexes, extras, file, groups, no-binary, only-binary, prefer-binary, "
                "pypi, pypi-resolver, python, python-source, solve-timeout, virtual-packages",
            ],
        ),
        (
            "[workspace\n",
            [
                "envbuild: error: envbuild.toml:1: not valid TOML: Expected ']' at the end of a "
                "table declaration (at line 1, column 11): fix the syntax there"
            ],
        ),
    ],
    ids=["invalid", "not-toml"],
)
@pytest.mark.parametrize("command", [("resolve",), ("list",), ("show", "a")])
def test_bad_manifest(workspace, run_cli, text, message, command):
    ws = workspace(text)
    result = run_cli(ws, *command)
    assert result.returncode == 2
    assert result.stderr.splitlines() == message
    assert result.stdout == ""
    assert not (ws / "locks").exists()


def test_no_manifest(tmp_path, run_cli):
    result = run_cli(tmp_path, "resolve")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"envbuild: error: {tmp_path.resolve()}/envbuild.toml: not found: run envbuild in a "
        "workspace directory holding envbuild.toml"
    ]


# --------------------------------------------------------------------------- show / export


@pytest.fixture(scope="module")
def resolved_ws(base_channel, tmp_path_factory) -> Path:
    """A resolved two-arch workspace shared by the read-only show/export tests."""
    from conftest import run_envbuild, write_workspace

    ws = write_workspace(
        tmp_path_factory.mktemp("resolved") / "ws",
        manifest([base_channel.as_uri()], {"app": {"conda": ["demo-hello", "demo-tool"]}}),
    )
    assert_ok(run_envbuild(ws, "resolve"))
    return ws


def test_show_json(resolved_ws, run_cli):
    for arch in ARCHS:
        result = run_cli(resolved_ws, "show", "app", "--arch", arch, "--json")
        assert_ok(result)
        doc = json.loads(result.stdout)
        lock = read_lock_json(resolved_ws, "app", arch)
        assert doc["env"] == "app"
        assert doc["kind"] == "conda"
        assert doc["env_id"] == lock["env_id"]
        assert set(doc["env_id"]) == {"req_id", "full_id", "arch"}
        assert doc["env_id"]["arch"] == arch
        keys = ["name", "version", "build", "kind", "url", "filename", "sha256", "md5"]
        assert doc["packages"] == [{k: p[k] for k in keys} for p in lock["packages"]]
        assert all(p["kind"] == "conda" for p in doc["packages"])
    every = json.loads(run_cli(resolved_ws, "show", "app", "--json").stdout)
    assert [d["env_id"]["arch"] for d in every] == list(ARCHS)


def test_show_text(resolved_ws, run_cli):
    from envbuild.ids import coresolved_id

    result = run_cli(resolved_ws, "show", "app")
    assert_ok(result)
    out = result.stdout.splitlines()
    locks = {a: read_lock_json(resolved_ws, "app", a) for a in ARCHS}
    for arch, lock in locks.items():
        i = out.index(f"env app [{arch}] (conda)")
        assert out[i + 1] == f"  req_id   {lock['env_id']['req_id']}"
        assert out[i + 2] == f"  full_id  {lock['env_id']['full_id']}"
        assert out[i + 4] == "  requested demo-hello, demo-tool"
        assert out[i + 5] == "  conda packages (3):"
        rows = [ln.split() for ln in out[i + 6 : i + 9]]
        assert rows == [
            [p["name"], p["version"], p["build"], p["subdir"]] for p in lock["packages"]
        ]
    co = coresolved_id({a: lock["env_id"]["full_id"] for a, lock in locks.items()})
    assert out[-1] == f"co-resolved id (linux-64, osx-arm64): {co}"


def test_show_errors(base_channel, workspace, run_cli):
    ws = workspace(manifest([base_channel.as_uri()], {"app": {"conda": ["demo-lib"]}}))
    assert_ok(run_cli(ws, "resolve", "arch=linux-64"))
    result = run_cli(ws, "show", "nope")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "envbuild: error: envbuild.toml: no environment 'nope' (known: app)"
    ]
    # a targeted arch that was not resolved yet
    result = run_cli(ws, "show", "app", "--arch", "osx-arm64")
    assert result.returncode == 2
    missing = (
        "envbuild: error: locks/app/osx-arm64.json: no lockfile: run "
        "`envbuild resolve env=app arch=osx-arm64` first"
    )
    assert result.stderr.splitlines() == [missing]
    assert result.stdout == ""
    assert "Traceback" not in result.stdout + result.stderr
    # every arch: the locks that exist are shown, the missing one is named; exit 2
    for args in [(), ("--json",)]:
        result = run_cli(ws, "show", "app", *args)
        assert result.returncode == 2
        assert result.stderr.splitlines() == [missing]
        if args:
            assert [d["env_id"]["arch"] for d in json.loads(result.stdout)] == ["linux-64"]
        else:
            assert result.stdout.startswith("env app [linux-64] (conda)\n")
            assert "osx-arm64" not in result.stdout


def test_export_explicit(resolved_ws, run_cli, tmp_path):
    from rattler.explicit_environment import ExplicitEnvironmentSpec

    for arch in ARCHS:
        out = tmp_path / f"{arch}.txt"
        assert_ok(
            run_cli(resolved_ws, "export", "app", "--arch", arch, "--format", "explicit", "-o", out)
        )
        spec = ExplicitEnvironmentSpec.from_path(out)
        assert str(spec.platform) == arch
        lock = read_lock_json(resolved_ws, "app", arch)
        assert [e.url for e in spec.packages] == [
            f"{p['url']}#{p['md5'] or p['sha256']}" for p in lock["packages"]
        ]
    result = run_cli(resolved_ws, "export", "app", "--format", "explicit", "-o", tmp_path / "x.txt")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "envbuild: error: an @EXPLICIT file holds one arch: pass --arch"
    ]
    assert not (tmp_path / "x.txt").exists()


def test_export_conda_lock(resolved_ws, run_cli, tmp_path):
    from conda_lock.lockfile import parse_conda_lock_file

    out = tmp_path / "conda-lock.yml"
    assert_ok(run_cli(resolved_ws, "export", "app", "--format", "conda-lock", "-o", out))
    parsed = parse_conda_lock_file(out)
    assert parsed.metadata.platforms == list(ARCHS)
    locks = {a: read_lock_json(resolved_ws, "app", a) for a in ARCHS}
    assert parsed.metadata.content_hash == {
        a: lock["env_id"]["req_id"] for a, lock in locks.items()
    }
    got = sorted(
        (p.platform, p.name, p.version, p.build, p.url, p.hash.md5, p.hash.sha256, p.manager)
        for p in parsed.package
    )
    want = sorted(
        (a, p["name"], p["version"], p["build"], p["url"], p["md5"], p["sha256"], "conda")
        for a, lock in locks.items()
        for p in lock["packages"]
    )
    assert got == want
    hello = next(p for p in parsed.package if p.name == "demo-hello")
    assert hello.dependencies == {"demo-lib": ">=1.0,<2"}

    # rattler reads conda-lock.yml v1 too
    import rattler

    env = rattler.LockFile.from_path(out).default_environment()
    assert env is not None
    seen = {}
    for platform in env.platforms():
        records = env.conda_repodata_records_for_platform(platform)
        seen[str(platform)] = sorted(
            (r.name.normalized, str(r.version), r.sha256.hex(), r.url) for r in records
        )
    assert seen == {
        a: sorted((p["name"], p["version"], p["sha256"], p["url"]) for p in lock["packages"])
        for a, lock in locks.items()
    }


# --------------------------------------------------------------------------- dodo.py


def test_two_line_dodo(base_channel, workspace):
    ws = workspace(
        manifest(
            [base_channel.as_uri()],
            {"one": {"conda": ["demo-lib"]}, "two": {"conda": ["demo-hello"]}},
        ),
        {"dodo.py": "from envbuild.tasks import *\n"},
    )
    result = run_python(ws, "-m", "doit", "resolve", "arch=linux-64")
    assert_ok(result)
    assert task_lines(result.stdout) == {
        ".  resolve:one@linux-64",
        ".  resolve:two@linux-64",
    }
    locks = sorted(p.relative_to(ws).as_posix() for p in (ws / "locks").rglob("*.json"))
    assert locks == ["locks/one/linux-64.json", "locks/two/linux-64.json"]
    assert (ws / ".envbuild" / "doit.db").is_file()
    # the CLI sees the same state: nothing left to do for linux-64
    from conftest import run_envbuild

    again = run_envbuild(ws, "resolve", "arch=linux-64")
    assert_ok(again)
    assert all(ln.startswith("-- ") for ln in task_lines(again.stdout))


# --------------------------------------------------------------------------- small CLI contracts


def test_show_arch_not_in_env(base_channel, workspace, run_cli):
    ws = workspace(
        manifest([base_channel.as_uri()], {"app": {"conda": ["demo-lib"]}}, archs=("linux-64",))
    )
    assert_ok(run_cli(ws, "resolve"))
    result = run_cli(ws, "show", "app", "--arch", "osx-arm64")
    assert result.returncode == 2
    assert result.stderr == (
        "envbuild: error: env 'app' is not resolved for osx-arm64: its archs are linux-64 "
        "(set archs in [env.app] of envbuild.toml to add one)\n"
    )


def test_written_files_have_the_usual_mode(base_channel, workspace, run_cli):
    ws = workspace(
        manifest([base_channel.as_uri()], {"app": {"conda": ["demo-lib"]}}, archs=("linux-64",))
    )
    assert_ok(run_cli(ws, "resolve"))
    umask = os.umask(0)
    os.umask(umask)
    for path in (
        ws / "locks" / "app" / "linux-64.json",
        ws / ".envbuild" / "cache" / "hashes.json",
    ):
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path


def test_conda_lock_export_uses_local_channel_urls(tmp_path, run_cli):
    from conda_lock.lockfile import parse_conda_lock_file

    ws = copy_workspace(REPO_ROOT / "examples" / "demo", tmp_path / "demo")
    assert_ok(run_cli(ws, "resolve", "env=hello"))
    out = tmp_path / "conda-lock.yml"
    assert_ok(run_cli(ws, "export", "hello", "--format", "conda-lock", "-o", str(out)))
    channels = [c.url for c in parse_conda_lock_file(out).metadata.channels]
    assert channels == [(ws / ".envbuild" / "channels" / "demo").resolve().as_uri()]
