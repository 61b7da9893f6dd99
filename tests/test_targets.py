"""Target archs and their defaults, through the real ``envbuild`` CLI against a loopback
PEP 503 index and real local conda channels:

- the default virtual packages find the wheels recent releases ship (manylinux_2_28, macOS
  13), the same ones uv's own targets pick;
- when no wheel fits the target, the error names the virtual package to raise and the value
  that would work (from uv's list of the platforms that have wheels);
- win-64 is a target for locks: ``__win``, ``win_amd64`` wheels, ``# [win]`` selectors and
  Windows markers; creating a win-64 env is refused with a clear error."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from conftest import lock_packages, read_lock_json

PY = "3.11.9"
ALL = ["linux-64", "linux-aarch64", "osx-64", "osx-arm64", "win-64"]
CP = "cp311-cp311"

# What a recent numpy/scipy release looks like: wheels for new systems only, plus older
# and newer levels around the defaults.
NATIVE = [
    ("2.0", "wheel", f"{CP}-manylinux_2_17_x86_64.manylinux2014_x86_64"),
    ("2.0", "wheel", f"{CP}-manylinux_2_28_x86_64"),
    ("2.0", "wheel", f"{CP}-manylinux_2_34_x86_64"),
    ("2.0", "wheel", f"{CP}-manylinux_2_28_aarch64"),
    ("2.0", "wheel", f"{CP}-macosx_11_0_x86_64"),
    ("2.0", "wheel", f"{CP}-macosx_13_0_x86_64"),
    ("2.0", "wheel", f"{CP}-macosx_11_0_arm64"),
    ("2.0", "wheel", f"{CP}-macosx_13_0_arm64"),
    ("2.0", "wheel", f"{CP}-macosx_14_0_arm64"),
    ("2.0", "wheel", f"{CP}-win_amd64"),
]
DEFAULT_PICK = {
    "linux-64": f"native-2.0-{CP}-manylinux_2_28_x86_64.whl",
    "linux-aarch64": f"native-2.0-{CP}-manylinux_2_28_aarch64.whl",
    "osx-64": f"native-2.0-{CP}-macosx_13_0_x86_64.whl",
    "osx-arm64": f"native-2.0-{CP}-macosx_13_0_arm64.whl",
    "win-64": f"native-2.0-{CP}-win_amd64.whl",
}


@pytest.fixture(scope="module")
def channel(make_channel) -> str:
    """python for every arch; a package for windows only and one for unix only."""
    recipes = [
        {"name": "python", "version": PY, "build": "0", "subdirs": ALL},
        {"name": "winlib", "version": "1.0", "subdirs": ["win-64"], "depends": ["__win"]},
        {"name": "unixlib", "version": "1.0", "noarch": "generic", "depends": ["__unix"]},
    ]
    return str(make_channel(recipes, name="targets").as_uri())


def resolve(
    root: Path,
    run_cli: Callable[..., Any],
    workspace: dict[str, Any],
    envs: dict[str, dict[str, Any]],
    files: dict[str, str] | None = None,
) -> Any:
    root.mkdir(parents=True, exist_ok=True)
    (root / "envbuild.toml").write_text(tomli_w.dumps({"workspace": workspace, "env": envs}))
    for rel, text in (files or {}).items():
        (root / rel).write_text(text, encoding="utf-8")
    return run_cli(root, "resolve")


# --------------------------------------------------------------------------- defaults


@pytest.mark.parametrize("resolver", ["uv", "pip"])
def test_defaults_find_the_wheels_of_recent_releases(
    resolver, channel, pypi_index, tmp_path, run_cli
):
    idx = pypi_index({"native": NATIVE})
    ws = tmp_path / "ws"
    settings = {"archs": ALL, "channels": [channel], "pypi-index": idx.url}
    env = {"python": "3.11", "pypi": ["native"], "pypi-resolver": resolver}
    result = resolve(ws, run_cli, settings, {"n": env})
    assert result.returncode == 0, result.stderr
    for arch in ALL:
        assert lock_packages(ws, "n", arch)["native"]["filename"] == DEFAULT_PICK[arch], arch
        vps = read_lock_json(ws, "n", arch)["inputs"]["virtual_packages"]
        assert (
            vps
            == {
                "linux-64": [
                    "__archspec=1=x86_64",
                    "__glibc=2.28=0",
                    "__linux=5.10=0",
                    "__unix=0=0",
                ],
                "linux-aarch64": [
                    "__archspec=1=aarch64",
                    "__glibc=2.28=0",
                    "__linux=5.10=0",
                    "__unix=0=0",
                ],
                "osx-64": ["__archspec=1=x86_64", "__osx=13.0=0", "__unix=0=0"],
                "osx-arm64": ["__archspec=1=arm64", "__osx=13.0=0", "__unix=0=0"],
                "win-64": ["__archspec=1=x86_64", "__win=0=0"],
            }[arch]
        )


# --------------------------------------------------------------------------- no wheel fits


@pytest.mark.parametrize(
    ("arch", "virtual", "wheels", "hint"),
    [
        (
            "linux-64",
            {"__glibc": "2.17"},
            [f"{CP}-manylinux_2_28_x86_64", f"{CP}-win_amd64"],
            "numpyish 2.0: its wheels for linux-64 need __glibc >= 2.28 (manylinux_2_28_x86_64), "
            'and the target has __glibc 2.17: set __glibc = "2.28" in '
            "[workspace.virtual-packages] or the env's virtual-packages",
        ),
        (
            "linux-aarch64",
            {},
            [f"{CP}-manylinux_2_34_aarch64", f"{CP}-manylinux_2_31_aarch64"],
            "numpyish 2.0: its wheels for linux-aarch64 need __glibc >= 2.31 "
            "(manylinux_2_31_aarch64, manylinux_2_34_aarch64), and the target has __glibc "
            '2.28: set __glibc = "2.31" in [workspace.virtual-packages] or the env\'s '
            "virtual-packages",
        ),
        (
            "osx-arm64",
            {},
            [f"{CP}-macosx_14_0_arm64", f"{CP}-macosx_12_0_x86_64"],
            "numpyish 2.0: its wheels for osx-arm64 need __osx >= 14.0 (macosx_14_0_arm64), "
            'and the target has __osx 13.0: set __osx = "14.0" in '
            "[workspace.virtual-packages] or the env's virtual-packages",
        ),
        (
            "osx-arm64",
            {"__osx": "11.0"},
            [f"{CP}-macosx_12_0_arm64"],
            "numpyish 2.0: its wheels for osx-arm64 need __osx >= 12.0 (macosx_12_0_arm64), "
            'and the target has __osx 11.0: set __osx = "12.0" in '
            "[workspace.virtual-packages] or the env's virtual-packages",
        ),
    ],
)
def test_no_wheel_fits_names_the_virtual_package_to_raise(
    arch, virtual, wheels, hint, pypi_index, tmp_path, run_cli
):
    idx = pypi_index({"numpyish": [("2.0", "wheel", w) for w in wheels]})
    ws = tmp_path / "ws"
    settings = {"archs": [arch], "pypi-index": idx.url, "python-source": "host"}
    env = {"python": "3.11", "pypi": ["numpyish"], "virtual-packages": virtual}
    result = resolve(ws, run_cli, settings, {"e": env})
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == (
        f"envbuild: error: resolve e@{arch}: the PyPI requirements cannot be satisfied for "
        f"{arch} with python 3.11:"
    )
    assert lines[-2].startswith("  hint: Wheels are available for `numpyish` (v2.0)")
    assert lines[-1] == f"  {hint}"
    assert "Traceback" not in result.stderr
    assert not (ws / "locks" / "e").exists()
    # and the value named works
    name, value = hint.split("set ", 1)[1].split(" in ", 1)[0].split(" = ")
    env["virtual-packages"] = {name: value.strip('"')}
    result = resolve(ws, run_cli, settings, {"e": env})
    assert result.returncode == 0, result.stderr


def test_no_hint_when_no_version_would_do(pypi_index, tmp_path, run_cli):
    """Wheels for other OSes or machines only: no virtual package helps, none is named."""
    idx = pypi_index(
        {
            "numpyish": [
                ("2.0", "wheel", f"{CP}-{p}") for p in ("win_amd64", "manylinux_2_28_aarch64")
            ]
        }
    )
    ws = tmp_path / "ws"
    settings = {"archs": ["linux-64"], "pypi-index": idx.url, "python-source": "host"}
    result = resolve(ws, run_cli, settings, {"e": {"python": "3.11", "pypi": ["numpyish"]}})
    assert result.returncode == 2, result.stderr
    assert "virtual-packages" not in result.stderr
    assert "__glibc" not in result.stderr


# --------------------------------------------------------------------------- win-64

ENV_YML = """\
dependencies:
  - python=3.11
  - winlib  # [win]
  - unixlib  # [unix]
  - pip:
    - native
    - winonly; sys_platform == "win32" and platform_system == "Windows"
    - posixonly; os_name == "posix"
"""


@pytest.mark.parametrize("resolver", ["uv", "pip"])
def test_win64_mixed_env_locks(resolver, channel, pypi_index, tmp_path, run_cli):
    idx = pypi_index({"native": NATIVE, "winonly": ["1.0"], "posixonly": ["1.0"]})
    ws = tmp_path / "ws"
    settings = {"archs": ["linux-64", "win-64"], "channels": [channel], "pypi-index": idx.url}
    env = {"file": "env.yml", "pypi-resolver": resolver}
    result = resolve(ws, run_cli, settings, {"w": env}, {"env.yml": ENV_YML})
    assert result.returncode == 0, result.stderr
    win = lock_packages(ws, "w", "win-64")
    assert sorted((p["kind"], n, p["subdir"]) for n, p in win.items()) == [
        ("conda", "python", "win-64"),
        ("conda", "winlib", "win-64"),
        ("pypi", "native", ""),
        ("pypi", "winonly", ""),
    ]
    assert win["native"]["filename"] == f"native-2.0-{CP}-win_amd64.whl"
    assert win["native"]["url"] == idx.file_url(f"native-2.0-{CP}-win_amd64.whl")
    lock = read_lock_json(ws, "w", "win-64")
    assert lock["inputs"]["virtual_packages"] == ["__archspec=1=x86_64", "__win=0=0"]
    linux = lock_packages(ws, "w", "linux-64")
    assert sorted((p["kind"], n) for n, p in linux.items()) == [
        ("conda", "python"),
        ("conda", "unixlib"),
        ("pypi", "native"),
        ("pypi", "posixonly"),
    ]
    show = run_cli(ws, "show", "w", "--arch", "win-64")
    assert show.returncode == 0, show.stderr
    for fmt in ("conda-lock", "requirements", "pylock"):  # exports work for win-64
        out = ws / f"export.{fmt}"
        result = run_cli(ws, "export", "w", "--arch", "win-64", "--format", fmt, "-o", out)
        assert result.returncode == 0, result.stderr
        assert f"native-2.0-{CP}-win_amd64.whl" in out.read_text()


def test_win64_create_is_refused(channel, pypi_index, tmp_path, run_cli):
    idx = pypi_index({"native": NATIVE})
    ws = tmp_path / "ws"
    settings = {"archs": ["win-64"], "channels": [channel], "pypi-index": idx.url}
    result = resolve(ws, run_cli, settings, {"w": {"python": "3.11", "pypi": ["native"]}})
    assert result.returncode == 0, result.stderr
    result = run_cli(ws, "create", "arch=win-64")
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == (
        "envbuild: error: create: win-64 is a target for locks only: envbuild resolves, "
        "fetches, shows and exports win-64 envs, but creates envs on linux and macOS: install "
        "it on Windows from an export (`envbuild export ENV --arch win-64 --format conda-lock`)"
    )
    assert "Traceback" not in result.stderr
    assert not (ws / ".envbuild" / "envs").exists()


def test_win64_env_from_a_lock_is_refused_by_create(channel, pypi_index, tmp_path, run_cli):
    """The one way into an env on disk (a store reference, a bundle, the create task) refuses
    a win-64 lock before touching the prefix."""
    from envbuild.create import CreateError, create_env
    from envbuild.lock import read_lock

    idx = pypi_index({"native": NATIVE})
    ws = tmp_path / "ws"
    settings = {"archs": ["win-64"], "channels": [channel], "pypi-index": idx.url}
    result = resolve(ws, run_cli, settings, {"w": {"python": "3.11", "pypi": ["native"]}})
    assert result.returncode == 0, result.stderr
    lock = read_lock(ws / "locks" / "w" / "win-64.json")
    prefix = tmp_path / "env"
    with pytest.raises(CreateError) as info:
        create_env(lock, [], prefix, tmp_path / "cache" / "rattler")
    assert str(info.value) == (
        "env 'w' is for win-64, a target for locks only: envbuild resolves, fetches, shows "
        "and exports win-64 envs, but creates envs on linux and macOS: install it on Windows "
        "from an export (`envbuild export w --arch win-64 --format conda-lock`)"
    )
    assert not prefix.exists()


def test_win64_env_from_a_store_is_refused_before_any_download(
    channel, pypi_index, tmp_path, run_cli
):
    idx = pypi_index({"native": NATIVE})
    ws = tmp_path / "ws"
    settings = {"archs": ["win-64"], "channels": [channel], "pypi-index": idx.url}
    result = resolve(ws, run_cli, settings, {"w": {"python": "3.11", "pypi": ["native"]}})
    assert result.returncode == 0, result.stderr
    result = run_cli(ws, "upload", "env=w", "--alias", "team/w:latest")
    assert result.returncode == 0, result.stdout + result.stderr
    store, cache, prefix = ws / ".envbuild" / "store", tmp_path / "cache", tmp_path / "env"
    result = run_cli(
        tmp_path, "create", "team/w:latest", "--store", store, "--prefix", prefix,
        "--arch", "win-64", "--cache", cache,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr == (
        "envbuild: error: env 'w' is for win-64, a target for locks only: envbuild resolves, "
        "fetches, shows and exports win-64 envs, but creates envs on linux and macOS: install "
        "it on Windows from an export (`envbuild export w --arch win-64 --format conda-lock`)\n"
    )
    assert not prefix.exists()
    assert not (cache / "pkgs").exists() or not any((cache / "pkgs").rglob("*.whl"))
