"""Mixed envs: what conda provides is never replaced or duplicated by PyPI, and the index's
own wheel of a conda-provided distribution never brings its PyPI-only dependencies. A real
local conda channel and a loopback PEP 503 index, through the real ``envbuild`` CLI."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from conftest import ServedIndex, read_lock_json
from pypi_index import sha256_hex

PY = "3.11.9"
ARCHS = ["linux-64", "osx-arm64"]  # the host, and a foreign arch (binary-only resolution)
LINUX_WHEEL = "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64"
MAC_WHEEL = "cp311-cp311-macosx_11_0_arm64"

# conda: python, and pkga 0.9 / 1.0, a Python distribution (it depends on python).
CONDA = [
    {"name": "python", "version": PY, "build": "0", "subdirs": ARCHS},
    *(
        {"name": "pkga", "version": v, "noarch": "generic", "depends": ["python >=3.8"]}
        for v in ("0.9", "1.0")
    ),
]


@pytest.fixture(scope="module")
def channel(make_channel) -> str:
    return str(make_channel(CONDA, name="pkgachan").as_uri())


@pytest.fixture
def index(pypi_index: Callable[..., ServedIndex]) -> ServedIndex:
    """PyPI's pkga 1.0 (a pure wheel and platform wheels that rank above a pure one) needs
    the PyPI-only pkga-extra; no pkga 0.9 on the index."""
    needs_extra = ["pkga-extra>=1"]
    return pypi_index(
        {
            "pkga": [
                ("1.0", "wheel", None, needs_extra),
                ("1.0", "wheel", LINUX_WHEEL, needs_extra),
                ("1.0", "wheel", MAC_WHEEL, needs_extra),
                ("2.0", "wheel", None, needs_extra),
            ],
            "pkga-extra": ["1.0"],
            "app": [("1.0", "wheel", None, ["pkga>=0.5"])],
            "app-needs-pkga2": [("1.0", "wheel", None, ["pkga>=2"])],
        }
    )


def resolve(
    root: Path,
    run_cli: Callable[..., Any],
    channel: str,
    index: ServedIndex,
    resolver: str,
    archs: list[str] = ARCHS,
    **env: Any,
) -> subprocess.CompletedProcess[str]:
    root.mkdir(parents=True)
    workspace = {
        "archs": archs,
        "channels": [channel],
        "pypi-index": index.url,
        "pypi-resolver": resolver,
    }
    text = tomli_w.dumps({"workspace": workspace, "env": {"mixed": {"python": "3.11", **env}}})
    (root / "envbuild.toml").write_text(text, encoding="utf-8")
    result: subprocess.CompletedProcess[str] = run_cli(root, "resolve")
    return result


def packages(root: Path, arch: str) -> list[tuple[str, str, str]]:
    lock = read_lock_json(root, "mixed", arch)
    return sorted((p["kind"], p["name"], p["version"]) for p in lock["packages"])


@pytest.mark.parametrize("resolver", ["uv", "pip"])
@pytest.mark.parametrize("conda_version", ["1.0", "0.9"])  # 0.9: a version PyPI lacks
def test_conda_dist_is_the_only_candidate(
    resolver, conda_version, channel, index, tmp_path, run_cli
):
    ws = tmp_path / "ws"
    result = resolve(
        ws, run_cli, channel, index, resolver, conda=[f"pkga={conda_version}"], pypi=["app"]
    )
    assert result.returncode == 0, result.stderr
    for arch in ARCHS:
        assert packages(ws, arch) == [
            ("conda", "pkga", conda_version),
            ("conda", "python", PY),
            ("pypi", "app", "1.0"),
        ]
        app = next(p for p in read_lock_json(ws, "mixed", arch)["packages"] if p["name"] == "app")
        filename = "app-1.0-py3-none-any.whl"
        assert (app["filename"], app["url"]) == (filename, index.file_url(filename))
        assert app["sha256"] == sha256_hex(index.files[filename])
    # Neither resolver even asks the index about pkga: the stub is its only candidate.
    assert [p for p in index.requests if p.startswith(("/simple/pkga", "/files/pkga"))] == []


@pytest.mark.parametrize("resolver", ["uv", "pip"])
def test_conda_version_still_bounds_pypi(resolver, channel, index, tmp_path, run_cli):
    """The stub pins, it does not override: ``pkga>=2`` cannot be met by conda's pkga 1.0."""
    ws = tmp_path / "ws"
    result = resolve(
        ws, run_cli, channel, index, resolver, ["linux-64"],
        conda=["pkga=1.0"], pypi=["app-needs-pkga2"],
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines()[0] == (
        "envbuild: error: resolve mixed@linux-64: the PyPI requirements cannot be satisfied "
        f"for linux-64 with python {PY}:"
    )
    lines = result.stderr.splitlines()
    assert lines[-1] == (
        "  pkga 1.0: provided by the conda packages of this env, so PyPI cannot change it: "
        "change the conda spec or the PyPI requirement that conflicts"
    )
    assert "envbuild-stubs" not in result.stderr  # stub paths are shown as conda:FILE
    assert "Traceback" not in result.stderr
    assert not (ws / "locks" / "mixed").exists()


@pytest.mark.pypi
@pytest.mark.parametrize("resolver", ["uv", "pip"])
def test_conda_pytorch_with_real_pypi(resolver, make_channel, tmp_path, run_cli):
    """conda's ``pytorch`` is PyPI's ``torch``: torchvision from the real PyPI must not bring
    PyPI's torch 2.3.1 wheel's dependencies (triton, sympy, 14 nvidia-* wheels, ...)."""
    conda = [
        {"name": "python", "version": PY, "build": "0", "subdirs": ["linux-64"]},
        {"name": "pytorch", "version": "2.3.1", "noarch": "generic", "depends": ["python >=3.8"]},
    ]
    channel = make_channel(conda, name="torchchan").as_uri()
    ws = tmp_path / "ws"
    ws.mkdir()
    workspace = {
        "archs": ["linux-64"],
        "channels": [channel],
        "pypi-resolver": resolver,
        "exclude-newer": "2024-08-01T00:00:00Z",
    }
    env = {"python": "3.11", "conda": ["pytorch=2.3.1"], "pypi": ["torchvision==0.18.1"]}
    (ws / "envbuild.toml").write_text(tomli_w.dumps({"workspace": workspace, "env": {"t": env}}))
    result = run_cli(ws, "resolve")
    assert result.returncode == 0, result.stderr
    lock = read_lock_json(ws, "t", "linux-64")
    assert sorted((p["kind"], p["name"], p["version"]) for p in lock["packages"]) == [
        ("conda", "python", PY),
        ("conda", "pytorch", "2.3.1"),
        ("pypi", "numpy", "2.0.1"),
        ("pypi", "pillow", "10.4.0"),
        ("pypi", "torchvision", "0.18.1"),
    ]
