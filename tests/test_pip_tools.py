"""Pip-only envs: a PyPI requirement on pip, setuptools or wheel wins over the conda copy that
conda's python drags in (python -> pip -> setuptools, wheel, as on conda-forge), instead of
an unsatisfiable "you require wheel==0.38.1 and wheel==0.45.1". A real local conda channel
(and ../shared/data/stub-channel, real conda-forge metadata) and a loopback PEP 503 index,
through the real ``envbuild`` CLI; the env is then created and holds one copy of each."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from conftest import SHARED_DATA, ServedIndex, lock_packages
from pypi_index import sha256_hex

from envbuild.platforms import host_arch

PY = "3.12.4"
ARCHS = ["linux-64", "osx-arm64", "win-64"]
# conda-forge's shape: python depends on pip, pip on setuptools and wheel
CONDA = [
    {"name": "python", "version": PY, "build": "0", "subdirs": ARCHS, "depends": ["pip"]},
    {
        "name": "pip",
        "version": "25.3",
        "noarch": "generic",
        "depends": ["python >=3.9", "setuptools", "wheel"],
        "files": {"site-packages/pip/__init__.py": "conda's pip\n"},
    },
    *(
        {"name": n, "version": v, "noarch": "generic", "depends": ["python >=3.9"]}
        for n, v in (("setuptools", "80.9.0"), ("wheel", "0.45.1"))
    ),
    {"name": "openssl", "version": "3.3.1", "noarch": "generic"},
]


@pytest.fixture(scope="module")
def channel(make_channel) -> str:
    return str(make_channel(CONDA, name="pytools").as_uri())


@pytest.fixture
def index(pypi_index: Callable[..., ServedIndex]) -> ServedIndex:
    return pypi_index(
        {
            "wheel": ["0.38.1", "0.45.1"],
            "setuptools": ["69.5.1", "80.9.0"],
            "pip": ["23.0", "25.3"],
            "plain": ["1.0"],
            "old-build": [("1.0", "wheel", None, ["setuptools<70"])],
        }
    )


def resolve(
    root: Path,
    run_cli: Callable[..., Any],
    channel: str,
    index: ServedIndex,
    envs: dict[str, dict[str, Any]],
    archs: list[str] = ARCHS,
    resolver: str = "uv",
) -> Any:
    root.mkdir(parents=True, exist_ok=True)
    workspace = {
        "archs": archs,
        "channels": [channel],
        "pypi-index": index.url,
        "pypi-resolver": resolver,
    }
    text = tomli_w.dumps({"workspace": workspace, "env": envs})
    (root / "envbuild.toml").write_text(text, encoding="utf-8")
    return run_cli(root, "resolve")


def contents(root: Path, env: str, arch: str) -> list[tuple[str, str, str]]:
    return sorted((p["kind"], n, p["version"]) for n, p in lock_packages(root, env, arch).items())


@pytest.mark.parametrize("resolver", ["uv", "pip"])
def test_pin_wins_over_the_conda_copy(resolver, channel, index, tmp_path, run_cli):
    """numpy's test_requirements.txt pins ``wheel==0.38.1``: PyPI's wheel 0.38.1 is locked
    and conda's 0.45.1 left out, for every arch; conda's pip and setuptools stay."""
    env = {"python": "3.12", "pypi": ["wheel==0.38.1", "plain"]}
    result = resolve(tmp_path / "ws", run_cli, channel, index, {"t": env}, resolver=resolver)
    assert result.returncode == 0, result.stderr
    for arch in ARCHS:
        assert contents(tmp_path / "ws", "t", arch) == [
            ("conda", "pip", "25.3"),
            ("conda", "python", PY),
            ("conda", "setuptools", "80.9.0"),
            ("pypi", "plain", "1.0"),
            ("pypi", "wheel", "0.38.1"),
        ]
        wheel = lock_packages(tmp_path / "ws", "t", arch)["wheel"]
        filename = "wheel-0.38.1-py3-none-any.whl"
        assert (wheel["url"], wheel["sha256"]) == (
            index.file_url(filename),
            sha256_hex(index.files[filename]),
        )


@pytest.mark.parametrize("resolver", ["uv", "pip"])
def test_a_dependency_on_them_decides_too(resolver, channel, index, tmp_path, run_cli):
    """``setuptools<70`` from a dependency's metadata is PyPI's to decide as well."""
    env = {"python": "3.12", "pypi": ["old-build"]}
    result = resolve(tmp_path / "ws", run_cli, channel, index, {"t": env}, ["linux-64"], resolver)
    assert result.returncode == 0, result.stderr
    assert contents(tmp_path / "ws", "t", "linux-64") == [
        ("conda", "pip", "25.3"),
        ("conda", "python", PY),
        ("conda", "wheel", "0.45.1"),
        ("pypi", "old-build", "1.0"),
        ("pypi", "setuptools", "69.5.1"),
    ]


def test_without_a_requirement_conda_keeps_them(channel, index, tmp_path, run_cli):
    env = {"python": "3.12", "pypi": ["plain"]}
    result = resolve(tmp_path / "ws", run_cli, channel, index, {"t": env}, ["linux-64"])
    assert result.returncode == 0, result.stderr
    assert contents(tmp_path / "ws", "t", "linux-64") == [
        ("conda", "pip", "25.3"),
        ("conda", "python", PY),
        ("conda", "setuptools", "80.9.0"),
        ("conda", "wheel", "0.45.1"),
        ("pypi", "plain", "1.0"),
    ]
    # and the index was never asked about them
    assert [p for p in index.requests if p.startswith(("/simple/wheel", "/simple/pip/"))] == []


def test_a_hash_on_a_pinned_tool_is_checked_against_pypi_file(channel, index, tmp_path, run_cli):
    """``--hash`` on ``wheel==0.38.1`` is checked against the PyPI file now locked (it was
    refused before: conda provided wheel, so no PyPI file could be checked)."""
    good = sha256_hex(index.files["wheel-0.38.1-py3-none-any.whl"])
    env = {"python": "3.12", "pypi": [f"wheel==0.38.1 --hash=sha256:{good}"]}
    result = resolve(tmp_path / "ws", run_cli, channel, index, {"t": env}, ["linux-64"])
    assert result.returncode == 0, result.stderr
    assert lock_packages(tmp_path / "ws", "t", "linux-64")["wheel"]["sha256"] == good


def test_mixed_envs_keep_conda_pins(channel, index, tmp_path, run_cli):
    """The rule is for pip-only envs: in a mixed env conda's copy is a pin, as before."""
    env = {"python": "3.12", "conda": ["openssl"], "pypi": ["wheel==0.38.1"]}
    result = resolve(tmp_path / "ws", run_cli, channel, index, {"m": env}, ["linux-64"])
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        "  wheel 0.45.1: provided by the conda packages of this env, so PyPI cannot change it: "
        "change the conda spec or the PyPI requirement that conflicts"
    )


def test_created_env_holds_pypi_copies_only(channel, index, tmp_path, run_cli):
    """conda's python depends on pip; with conda's pip left out of the lock the env is
    still created (rattler links the locked records, dependencies are not re-checked) and
    holds PyPI's pip and setuptools as wheels, conda's wheel, and no file of conda's pip."""
    if host_arch() not in ARCHS:
        pytest.skip(f"the test channel has no {host_arch()} python")
    ws = tmp_path / "ws"
    env = {"python": "3.12", "pypi": ["pip==23.0", "setuptools<70"]}
    result = resolve(ws, run_cli, channel, index, {"t": env}, [host_arch()])
    assert result.returncode == 0, result.stderr
    assert contents(ws, "t", host_arch()) == [
        ("conda", "python", PY),
        ("conda", "wheel", "0.45.1"),
        ("pypi", "pip", "23.0"),
        ("pypi", "setuptools", "69.5.1"),
    ]
    python = lock_packages(ws, "t", host_arch())["python"]
    assert python["depends"] == ["pip"]  # the lock keeps the record as the channel has it
    result = run_cli(ws, "create", "env=t")
    assert result.returncode == 0, result.stdout + result.stderr
    prefix = ws / ".envbuild" / "envs" / "t"
    conda = sorted(
        json.loads(p.read_text())["name"] for p in (prefix / "conda-meta").glob("*.json")
    )
    assert conda == ["python", "wheel"]
    site = prefix / "lib" / "python3.12" / "site-packages"
    assert sorted(p.name for p in site.glob("*.dist-info")) == [
        "pip-23.0.dist-info",
        "setuptools-69.5.1.dist-info",
    ]
    assert (
        site / "pip" / "__init__.py"
    ).read_text() == '"""pip (test distribution)."""\n\n__version__ = "23.0"\n'
    assert not (prefix / "site-packages").exists()  # conda pip's payload was not linked


def test_stub_channel_python_drags_pip_tools(index, tmp_path, run_cli):
    """The real conda-forge metadata of ../shared/data/stub-channel: python 3.12 depends on
    pip 25.3, which depends on setuptools 80.9.0 and wheel 0.45.1."""
    stub = SHARED_DATA / "stub-channel"
    if not (stub / "linux-64").is_dir():
        pytest.skip(f"shared channel data not found at {stub} (not in a fresh clone)")
    env = {"python": "3.12", "pypi": ["wheel==0.38.1"]}
    result = resolve(tmp_path / "ws", run_cli, stub.as_uri(), index, {"t": env}, ["linux-64"])
    assert result.returncode == 0, result.stderr
    packages = lock_packages(tmp_path / "ws", "t", "linux-64")
    tools = sorted(
        (p["kind"], n, p["version"])
        for n, p in packages.items()
        if n in ("pip", "setuptools", "wheel")
    )
    assert tools == [
        ("conda", "pip", "25.3"),
        ("conda", "setuptools", "80.9.0"),
        ("pypi", "wheel", "0.38.1"),
    ]
    assert "pip" in packages["python"]["depends"]
