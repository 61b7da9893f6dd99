"""Resolution against the real channel data in ../shared/data (skipped when it is absent) and
the repository's examples/demo workspace, through the real ``envbuild`` CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from conftest import REPO_ROOT, copy_workspace, file_hashes, lock_packages, read_lock_json

ALL_ARCHS = ("linux-64", "linux-aarch64", "osx-64", "osx-arm64")


def assert_ok(result: Any) -> None:
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "Traceback" not in result.stdout + result.stderr


def url_path(url: str) -> Path:
    parts = urlsplit(url)
    assert parts.scheme == "file", url
    return Path(unquote(parts.path))


def lock_bytes(ws: Path) -> dict[str, bytes]:
    return {
        p.relative_to(ws).as_posix(): p.read_bytes() for p in sorted((ws / "locks").rglob("*.json"))
    }


def repodata_records(channel: Path, subdir: str) -> dict[str, dict[str, Any]]:
    data = json.loads((channel / subdir / "repodata.json").read_text())
    return {**data.get("packages", {}), **data.get("packages.conda", {})}


# --------------------------------------------------------------------------- conda-forge subset


def test_conda_forge_subset_four_archs(shared_data, workspace, run_cli):
    """Acceptance: python=3.9 + openssl for four archs in one run, reproducibly."""
    channel = shared_data / "conda-forge-subset"
    ws = workspace(
        "[workspace]\n"
        f"archs = {json.dumps(list(ALL_ARCHS))}\n"
        f"channels = [{json.dumps(channel.as_uri())}]\n\n"
        "[env.py39]\n"
        'conda = ["python=3.9", "openssl"]\n'
    )
    result = run_cli(ws, "resolve")
    assert_ok(result)
    assert {ln for ln in result.stdout.splitlines() if ln.startswith(".  resolve:")} == {
        f".  resolve:py39@{a}" for a in ALL_ARCHS
    }
    for arch in ALL_ARCHS:
        lock = read_lock_json(ws, "py39", arch)
        assert lock["env_id"]["arch"] == arch
        assert lock["spec"]["python"] == "3.9.*"
        pkgs = {p["name"]: p for p in lock["packages"]}
        python = pkgs["python"]
        assert python["version"].startswith("3.9."), python["version"]
        assert python["subdir"] == arch
        assert python["url"] == f"{channel.as_uri()}/{arch}/{python['filename']}"
        assert "openssl" in pkgs and pkgs["openssl"]["subdir"] == arch
        assert {p["subdir"] for p in lock["packages"]} <= {arch, "noarch"}
        # every locked field is the channel's own record
        records = {s: repodata_records(channel, s) for s in (arch, "noarch")}
        for p in lock["packages"]:
            rec = records[p["subdir"]][p["filename"]]
            for key in ("name", "version", "build", "build_number", "md5", "sha256", "size"):
                assert p[key] == rec[key], (p["filename"], key)
            assert p["depends"] == rec.get("depends", [])
            assert p["constrains"] == rec.get("constrains", [])
            assert p["timestamp"] == rec.get("timestamp", 0)
    glibc_free = lock_packages(ws, "py39", "osx-arm64")
    assert not any(n.startswith("libgcc") for n in glibc_free)  # no linux runtime on macOS
    assert "libgcc-ng" in lock_packages(ws, "py39", "linux-64")

    before = lock_bytes(ws)
    assert len(before) == 4
    # doit's database decides nothing: forgetting it re-resolves nothing ...
    assert_ok(run_cli(ws, "forget"))
    same = run_cli(ws, "resolve")
    assert_ok(same)
    assert not any(ln.startswith(".  resolve:") for ln in same.stdout.splitlines())
    # ... and resolving again from nothing gives the same bytes
    again = run_cli(ws, "resolve", "--update")
    assert_ok(again)
    assert {ln for ln in again.stdout.splitlines() if ln.startswith(".  resolve:")} == {
        f".  resolve:py39@{a}" for a in ALL_ARCHS
    }
    assert lock_bytes(ws) == before


# --------------------------------------------------------------------------- stub channel


def test_stub_channel_python312(shared_data, workspace, run_cli):
    channel = shared_data / "stub-channel"
    ws = workspace(
        "[workspace]\n"
        'archs = ["linux-64", "osx-arm64"]\n'
        f"channels = [{json.dumps(channel.as_uri())}]\n\n"
        "[env.py312]\n"
        'python = "3.12"\n'
        'conda = ["openssl", "pip"]\n'
    )
    assert_ok(run_cli(ws, "resolve"))
    for arch in ("linux-64", "osx-arm64"):
        lock = read_lock_json(ws, "py312", arch)
        pkgs = {p["name"]: p for p in lock["packages"]}
        assert pkgs["python"]["version"].startswith("3.12.")
        assert pkgs["python"]["subdir"] == arch
        assert {"openssl", "pip"} <= set(pkgs)
        for p in lock["packages"]:
            path = url_path(p["url"])
            assert path.is_relative_to(channel)
            real = file_hashes(path)
            assert p["sha256"] == real["sha256"], p["filename"]
            assert p["size"] == real["size"], p["filename"]


# --------------------------------------------------------------------------- old repodata


def test_old_repodata_without_timestamps(shared_data, workspace, run_cli, tmp_path):
    """conda's classic test index: no timestamps, md5 only, python 2.7 era."""
    from rattler.explicit_environment import ExplicitEnvironmentSpec

    channel = shared_data / "conda-test-channel-1"
    ws = workspace(
        "[workspace]\n"
        'archs = ["linux-64"]\n'
        f"channels = [{json.dumps(channel.as_uri())}]\n\n"
        "[env.legacy]\n"
        'conda = ["python 2.7*", "numpy"]\n'
    )
    assert_ok(run_cli(ws, "resolve"))
    lock = read_lock_json(ws, "legacy", "linux-64")
    assert lock["spec"]["python"] == "2.7.*"
    pkgs = {p["name"]: p for p in lock["packages"]}
    assert pkgs["python"]["version"] == "2.7.5"
    assert (pkgs["numpy"]["version"], pkgs["numpy"]["build"]) == ("1.7.1", "py27_0")
    records = repodata_records(channel, "linux-64")
    for p in lock["packages"]:
        rec = records[p["filename"]]
        assert (p["md5"], p["sha256"], p["timestamp"]) == (rec["md5"], "", 0)
        assert p["subdir"] == "linux-64"
    # md5-only packages: the @EXPLICIT export falls back to #md5, and rattler reads it
    out = tmp_path / "legacy.txt"
    assert_ok(
        run_cli(ws, "export", "legacy", "--arch", "linux-64", "--format", "explicit", "-o", out)
    )
    spec = ExplicitEnvironmentSpec.from_path(out)
    assert [e.url for e in spec.packages] == [f"{p['url']}#{p['md5']}" for p in lock["packages"]]


def test_missing_shared_data_skips(monkeypatch, tmp_path):
    """The shared_data fixture skips (rather than errors) when the folder is absent."""
    import conftest

    monkeypatch.setattr(conftest, "SHARED_DATA", tmp_path / "absent")
    with pytest.raises(pytest.skip.Exception, match="shared channel data not found"):
        conftest.shared_data_dir()


# --------------------------------------------------------------------------- examples/demo


DEMO = REPO_ROOT / "examples" / "demo"


def test_demo_workspace(tmp_path, run_cli):
    ws = copy_workspace(DEMO, tmp_path / "demo")
    result = run_cli(ws, "resolve")
    assert_ok(result)
    ran = {ln for ln in result.stdout.splitlines() if ln.startswith(".  ")}
    assert ran == {
        ".  channel:demo",
        ".  resolve:cli@linux-64",
        ".  resolve:cli@osx-arm64",
        ".  resolve:greet@linux-64",
        ".  resolve:greet@osx-arm64",
        ".  resolve:hello@linux-64",
        ".  resolve:hello@osx-arm64",
    } | {f".  resolve:tools@{a}" for a in ALL_ARCHS}
    channel = ws / ".envbuild" / "channels" / "demo"
    assert sorted(lock_bytes(ws)) == [
        "locks/cli/linux-64.json",
        "locks/cli/osx-arm64.json",
        "locks/greet/linux-64.json",
        "locks/greet/osx-arm64.json",
        "locks/hello/linux-64.json",
        "locks/hello/osx-arm64.json",
    ] + [f"locks/tools/{a}.json" for a in ALL_ARCHS]
    for arch in ("linux-64", "osx-arm64"):  # the pip-only env: offline, from ./wheels
        greet = read_lock_json(ws, "greet", arch)
        assert greet["kind"] == "pypi"
        assert greet["python"] == {"source": "conda", "version": "3.11.9"}
        assert {(p["kind"], p["name"], p["version"]) for p in greet["packages"]} == {
            ("conda", "python", "3.11.9"),
            ("pypi", "demo-greeting", "1.0.0"),
            ("pypi", "demo-words", "0.2.0"),
        }
    for arch in ("linux-64", "osx-arm64"):
        pkgs = lock_packages(ws, "hello", arch)
        assert {n: (p["version"], p["subdir"]) for n, p in pkgs.items()} == {
            "demo-hello": ("1.2.0", "noarch"),
            "demo-lib": ("1.1.0", arch),
        }
        assert pkgs["demo-hello"]["filename"] == "demo-hello-1.2.0-0.conda"
    for arch in ALL_ARCHS:
        pkgs = lock_packages(ws, "tools", arch)
        expected = {"demo-tool": ("2.0.0", "noarch"), "demo-lib": ("1.1.0", arch)}
        if arch.startswith("linux"):
            expected["demo-linux-extras"] = ("0.3.0", arch)
        assert {n: (p["version"], p["subdir"]) for n, p in pkgs.items()} == expected
        assert pkgs["demo-tool"]["filename"] == "demo-tool-2.0.0-0.tar.bz2"
        for p in pkgs.values():
            # workspace-relative: the lock does not depend on where the workspace lives
            assert p["url"] == f".envbuild/channels/demo/{p['subdir']}/{p['filename']}"
            assert p["channel"] == ".envbuild/channels/demo"
            assert p["sha256"] == file_hashes(channel / p["subdir"] / p["filename"])["sha256"]

    # nothing to do the second time
    again = run_cli(ws, "resolve", "-v")
    assert_ok(again)
    assert again.stdout and all(ln.startswith("-- ") for ln in again.stdout.splitlines())

    # a new recipe rebuilds the channel and re-resolves everything against it
    before = lock_bytes(ws)
    (ws / "recipes" / "newer.toml").write_text(
        '[[package]]\nname = "demo-lib"\nversion = "1.2.0"\n'
        'subdirs = ["linux-64", "linux-aarch64", "osx-64", "osx-arm64"]\n'
    )
    third = run_cli(ws, "resolve")
    assert_ok(third)
    assert ".  channel:demo" in third.stdout.splitlines()
    assert lock_bytes(ws).keys() == before.keys()
    # re-resolved (the channel's recipes are an input), keeping the existing pins
    assert ".  resolve:tools@linux-64" in third.stdout.splitlines()
    assert lock_packages(ws, "tools", "linux-64")["demo-lib"]["version"] == "1.1.0"
    # --update moves them to what the channel now has
    assert_ok(run_cli(ws, "resolve", "--update"))
    for arch in ALL_ARCHS:
        assert lock_packages(ws, "tools", arch)["demo-lib"]["version"] == "1.2.0"
    assert lock_packages(ws, "hello", "osx-arm64")["demo-lib"]["version"] == "1.2.0"


def test_demo_locks_are_location_independent(tmp_path, run_cli):
    """Two copies of the demo in different folders give byte-identical lock files: local
    channels and find-links inside the workspace are locked by workspace-relative paths."""
    a = copy_workspace(DEMO, tmp_path / "a")
    b = copy_workspace(DEMO, tmp_path / "elsewhere" / "b")
    assert_ok(run_cli(a, "resolve"))
    assert_ok(run_cli(b, "resolve"))
    assert lock_bytes(a) == lock_bytes(b)
    assert str(tmp_path) not in "".join(p.decode() for p in lock_bytes(a).values())
    shutil.rmtree(b)
