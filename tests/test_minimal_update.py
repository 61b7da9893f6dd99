"""Minimal updates: a re-resolution keeps the existing lock's pins (conda: rattler's locked
packages; PyPI: uv's preferences) unless ``--update`` lifts them, and reports what changed."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import build_channel_from_recipes, lock_packages
from pypi_index import make_wheel
from test_resolve_pypi import PYTHON, assert_ok, write_manifest

ARCHS = ["linux-64", "osx-arm64"]


def recipes(version: str) -> list[dict[str, object]]:
    return [
        {"name": "pa", "version": version, "noarch": "generic"},
        {"name": "pb", "version": version, "noarch": "generic", "depends": ["pa"]},
        {"name": "pc", "version": version, "noarch": "generic"},
    ]


def versions(ws: Path, env: str = "e", arch: str = "linux-64") -> dict[str, str]:
    return {n: p["version"] for n, p in lock_packages(ws, env, arch).items()}


def test_conda_pins_kept_until_update(tmp_path, run_cli):
    chan = build_channel_from_recipes(recipes("1.0"), tmp_path / "ws" / "chan")
    ws = write_manifest(
        tmp_path / "ws", {"archs": ARCHS, "channels": ["./chan"]}, {"e": {"conda": ["pb"]}}
    )
    assert_ok(run_cli(ws, "resolve"))
    assert versions(ws) == {"pa": "1.0", "pb": "1.0"}

    # the channel gains a newer version of every package
    build_channel_from_recipes(recipes("1.0") + recipes("2.0"), chan)
    result = run_cli(ws, "resolve")  # stale (the local channel changed), pins kept
    assert_ok(result)
    assert versions(ws) == {"pa": "1.0", "pb": "1.0"}
    assert "locked e@linux-64: unchanged" in result.stderr

    # adding one package moves only what must move
    write_manifest(ws, {"archs": ARCHS, "channels": ["./chan"]}, {"e": {"conda": ["pb", "pc"]}})
    result = run_cli(ws, "resolve")
    assert_ok(result)
    assert versions(ws) == {"pa": "1.0", "pb": "1.0", "pc": "2.0"}
    assert "locked e@linux-64: 1 added: +pc 2.0" in result.stderr.splitlines()

    # --update NAME lifts one pin (pb needs only pa, so pa stays)
    result = run_cli(ws, "resolve", "--update", "pb")
    assert_ok(result)
    assert versions(ws) == {"pa": "1.0", "pb": "2.0", "pc": "2.0"}
    assert "locked e@osx-arm64: 1 upgraded: pb 1.0 -> 2.0" in result.stderr.splitlines()

    # --update lifts them all
    result = run_cli(ws, "resolve", "--update")
    assert_ok(result)
    assert versions(ws) == {"pa": "2.0", "pb": "2.0", "pc": "2.0"}
    assert "locked e@linux-64: 1 upgraded: pa 1.0 -> 2.0" in result.stderr.splitlines()
    assert run_cli(ws, "resolve", "--check").returncode == 0


def test_conda_downgrade_reported(tmp_path, run_cli):
    build_channel_from_recipes(recipes("1.0") + recipes("2.0"), tmp_path / "ws" / "chan")
    ws = write_manifest(
        tmp_path / "ws", {"archs": ARCHS, "channels": ["./chan"]}, {"e": {"conda": ["pb"]}}
    )
    assert_ok(run_cli(ws, "resolve"))
    write_manifest(ws, {"archs": ARCHS, "channels": ["./chan"]}, {"e": {"conda": ["pb <2"]}})
    result = run_cli(ws, "resolve")
    assert_ok(result)
    assert versions(ws) == {"pa": "2.0", "pb": "1.0"}
    assert "locked e@linux-64: 1 downgraded: pb 2.0 -> 1.0" in result.stderr.splitlines()


@pytest.fixture
def py_chan(tmp_path) -> str:
    return build_channel_from_recipes([PYTHON], tmp_path / "pychan").as_uri()


def test_pypi_pins_kept_until_update(py_chan, pypi_index, tmp_path, run_cli):
    """Every version is on the index from the start: only the preferences keep 1.0."""
    beta = [("1.0", "wheel", None, ["alpha"]), ("2.0", "wheel", None, ["alpha"])]
    idx = pypi_index({"alpha": ["1.0", "2.0"], "beta": beta, "gamma": ["1.0", "2.0"]})
    settings = {"archs": ARCHS, "channels": [py_chan], "pypi-index": idx.url}
    env = {"python": "3.11", "pypi": ["beta <2", "alpha <2"]}
    ws = write_manifest(tmp_path / "ws", settings, {"e": env})
    assert_ok(run_cli(ws, "resolve"))
    assert versions(ws)["beta"] == versions(ws)["alpha"] == "1.0"

    # relax both and add one package: the pins stay, the new package gets the newest
    write_manifest(ws, settings, {"e": {"python": "3.11", "pypi": ["beta", "alpha", "gamma"]}})
    result = run_cli(ws, "resolve")
    assert_ok(result)
    got = versions(ws)
    assert (got["alpha"], got["beta"], got["gamma"]) == ("1.0", "1.0", "2.0")
    assert "locked e@linux-64: 1 added: +gamma 2.0" in result.stderr.splitlines()

    result = run_cli(ws, "resolve", "--update=alpha")
    assert_ok(result)
    got = versions(ws)
    assert (got["alpha"], got["beta"], got["gamma"]) == ("2.0", "1.0", "2.0")
    assert "locked e@osx-arm64: 1 upgraded: alpha 1.0 -> 2.0" in result.stderr.splitlines()

    assert_ok(run_cli(ws, "resolve", "--update"))
    got = versions(ws)
    assert (got["alpha"], got["beta"], got["gamma"]) == ("2.0", "2.0", "2.0")


def test_pypi_update_sees_what_the_index_gained(py_chan, pypi_index, tmp_path, run_cli):
    """--update refreshes uv's cached index pages, so versions published since the last
    resolution are seen (the index's state is no input: --check stays green until then)."""
    idx = pypi_index({"alpha": ["1.0"], "beta": [("1.0", "wheel", None, ["alpha"])]})
    settings = {"archs": ARCHS, "channels": [py_chan], "pypi-index": idx.url}
    ws = write_manifest(tmp_path / "ws", settings, {"e": {"python": "3.11", "pypi": ["beta"]}})
    assert_ok(run_cli(ws, "resolve"))
    for name, requires in (("alpha", []), ("beta", ["alpha"])):
        idx.index.add(make_wheel(tmp_path / "new", name, "2.0", requires=requires))
    idx.index.write()
    assert run_cli(ws, "resolve", "--check").returncode == 0
    assert_ok(run_cli(ws, "resolve", "--update", "beta"))
    assert (versions(ws)["alpha"], versions(ws)["beta"]) == ("1.0", "2.0")
    assert_ok(run_cli(ws, "resolve", "--update"))
    assert (versions(ws)["alpha"], versions(ws)["beta"]) == ("2.0", "2.0")


def test_update_through_plain_doit_variable(tmp_path, run_cli):
    """``doit resolve update=NAME`` is the same as ``envbuild resolve --update NAME``."""
    chan = build_channel_from_recipes(recipes("1.0"), tmp_path / "ws" / "chan")
    ws = write_manifest(
        tmp_path / "ws", {"archs": ARCHS, "channels": ["./chan"]}, {"e": {"conda": ["pb"]}}
    )
    assert_ok(run_cli(ws, "resolve"))
    build_channel_from_recipes(recipes("1.0") + recipes("2.0"), chan)
    assert_ok(run_cli(ws, "resolve", "update=pa,pb"))
    assert versions(ws) == {"pa": "2.0", "pb": "2.0"}
