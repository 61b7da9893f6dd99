"""Resolution against the real PyPI (https://pypi.org/simple), through the real ``envbuild``
CLI. Every test here is marked ``pypi`` (deselect with ``-m "not pypi"`` when offline) and
pins ``exclude-newer`` so that the results do not move as PyPI does."""

from __future__ import annotations

import re
from typing import Any

import pytest
import tomli_w
from conftest import lock_packages, read_lock_json
from packaging.utils import parse_wheel_filename

pytestmark = pytest.mark.pypi  # each runs in < 10 s, even with cold caches: not slow

EXCLUDE_NEWER = "2025-06-01T00:00:00Z"
ARCHS = ["linux-64", "osx-arm64"]
PY = "3.11.9"
PYTHON = {"name": "python", "version": PY, "build": "0", "subdirs": ARCHS}
REQUESTS_CLOSURE = ["certifi", "charset-normalizer", "idna", "requests", "urllib3"]
SHA256 = re.compile(r"^[0-9a-f]{64}$")


def write_manifest(root, workspace: dict[str, Any], envs: dict[str, dict[str, Any]]):
    root.mkdir(parents=True, exist_ok=True)
    (root / "envbuild.toml").write_text(tomli_w.dumps({"workspace": workspace, "env": envs}))
    return root


def assert_ok(result: Any) -> None:
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "Traceback" not in result.stdout + result.stderr


def pypi_of(ws, env: str, arch: str) -> dict[str, dict[str, Any]]:
    return {n: p for n, p in lock_packages(ws, env, arch).items() if p["kind"] == "pypi"}


def assert_from_pypi(pkg: dict[str, Any]) -> None:
    """A wheel from PyPI's file host, with its sha256, nothing to build."""
    assert SHA256.match(pkg["sha256"]), pkg
    assert pkg["url"].startswith("https://files.pythonhosted.org/"), pkg
    assert pkg["url"].rsplit("/", 1)[1] == pkg["filename"]
    assert pkg["filename"].endswith(".whl") and pkg["needs_build"] is False


def test_requests_and_numpy_two_archs_uv_and_pip(make_channel, tmp_path, run_cli):
    channel = make_channel([PYTHON], name="py311").as_uri()
    ws = write_manifest(
        tmp_path / "live",
        {"archs": ARCHS, "channels": [channel], "exclude-newer": EXCLUDE_NEWER},
        {
            "uv": {"python": "3.11", "pypi": ["requests", "numpy"]},
            "pip": {"python": "3.11", "pypi": ["requests", "numpy"], "pypi-resolver": "pip"},
        },
    )
    assert_ok(run_cli(ws, "resolve"))
    picks: dict[str, dict[str, set[tuple[str, str, str, str]]]] = {}
    for env in ("uv", "pip"):
        for arch in ARCHS:
            lock = read_lock_json(ws, env, arch)
            assert lock["python"] == {"source": "conda", "version": PY}
            assert lock["spec"]["settings"]["exclude_newer"] == EXCLUDE_NEWER
            pkgs = pypi_of(ws, env, arch)
            assert sorted(pkgs) == sorted([*REQUESTS_CLOSURE, "numpy"])
            for pkg in pkgs.values():
                assert_from_pypi(pkg)
            # the newest releases before the cut-off
            assert pkgs["requests"]["version"] == "2.32.3"
            assert pkgs["numpy"]["version"] == "2.2.6"
            assert pkgs["requests"]["filename"] == "requests-2.32.3-py3-none-any.whl"
            _, _, _, tags = parse_wheel_filename(pkgs["numpy"]["filename"])
            assert {(t.interpreter, t.abi) for t in tags} == {("cp311", "cp311")}
            platforms = {t.platform for t in tags}
            if arch == "linux-64":
                assert all(re.fullmatch(r"manylinux\w*_x86_64", p) for p in platforms), platforms
            else:
                assert all(re.fullmatch(r"macosx_\d+_\d+_arm64", p) for p in platforms), platforms
                assert all(int(p.split("_")[1]) <= 11 for p in platforms)  # __osx 11.0
            picks.setdefault(env, {})[arch] = {
                (n, p["version"], p["filename"], p["sha256"]) for n, p in pkgs.items()
            }
    assert picks["uv"] == picks["pip"]
    assert picks["uv"]["linux-64"] != picks["uv"]["osx-arm64"]  # numpy differs per arch


def test_shared_stub_channel_mixed_env(shared_data, tmp_path, run_cli):
    """Acceptance: python 3.12 and pip/setuptools/wheel from the shared stub channel,
    requests and its dependencies from PyPI; conda's Python distributions are never
    duplicated by PyPI packages."""
    channel = (shared_data / "stub-channel").as_uri()
    # exclude-newer applies to conda packages too, and the stub channel's pip 25.3 was built
    # on 2025-11-10: a later cut-off keeps it
    ws = write_manifest(
        tmp_path / "stub",
        {"archs": ARCHS, "channels": [channel], "exclude-newer": "2025-12-01T00:00:00Z"},
        {
            "web": {
                "python": "3.12",
                "conda": ["pip", "setuptools", "wheel"],
                "pypi": ["requests"],
            }
        },
    )
    assert_ok(run_cli(ws, "resolve"))
    for arch in ARCHS:
        lock = read_lock_json(ws, "web", arch)
        assert lock["kind"] == "mixed"
        pkgs = lock_packages(ws, "web", arch)
        conda = {n: p for n, p in pkgs.items() if p["kind"] == "conda"}
        pypi = {n: p for n, p in pkgs.items() if p["kind"] == "pypi"}
        python = conda["python"]
        assert python["version"].startswith("3.12."), python
        assert lock["python"] == {"source": "conda", "version": python["version"]}
        assert python["url"].startswith(channel + "/")
        assert {"pip", "setuptools", "wheel"} <= set(conda)
        assert sorted(pypi) == REQUESTS_CLOSURE
        assert not {"pip", "setuptools", "wheel"} & set(pypi)
        assert [p["name"] for p in lock["packages"]].count("pip") == 1
        for pkg in pypi.values():
            assert_from_pypi(pkg)
        assert pypi["requests"]["version"] == "2.32.5"
