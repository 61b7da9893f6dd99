"""The PyPI exports installed by the tools that read them (issue 7, acceptance 4): a
requirements export with ``pip --require-hashes`` behind a loopback index that publishes no
hashes, and a pylock.toml written in a subdirectory with ``uv pip install -r sub/pylock.toml``."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.pylock import Pylock
from pypi_index import make_sdist, make_source_tree, make_wheel, sha256_hex

from envbuild.cli import main
from envbuild.exports import to_requirements
from envbuild.fs import tree_hash
from envbuild.lock import Lock, LockedPackage, Source
from envbuild.spec import EnvSpec, load_workspace

PY = ".".join(map(str, sys.version_info[:3]))
CP = f"cp{sys.version_info[0]}{sys.version_info[1]}"
OLD, NEW = (f"{CP}-{CP}-manylinux_2_{n}_x86_64" for n in (17, 28))


def clean_env() -> dict[str, str]:
    """No pip/uv configuration of this machine and no proxy: loopback and local files only."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PIP_", "UV_")) and k.lower() not in ("http_proxy", "https_proxy")
    }
    env |= {"PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    return env | {"PIP_NO_INPUT": "1", "NO_PROXY": "127.0.0.1,localhost"}


def pip_install(req: Path, target: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "pip", "install", "--require-hashes", "--no-deps", "--isolated"]
    cmd += ["--no-cache-dir", "--target", str(target), "-r", str(req)]
    return subprocess.run(
        cmd, capture_output=True, text=True, env=clean_env(), timeout=300, check=False
    )


glibc = platform.libc_ver()
manylinux_2_28_host = (
    sys.platform == "linux"
    and platform.machine() == "x86_64"
    and glibc[0] == "glibc"
    and tuple(map(int, glibc[1].split(".")[:2])) >= (2, 28)
)


@pytest.mark.skipif(not manylinux_2_28_host, reason="needs a manylinux_2_28 x86_64 host")
def test_requirements_installs_the_locked_file_behind_an_index_without_hashes(pypi_index, tmp_path):
    idx = pypi_index({"native": [("1.0", "wheel", OLD), ("1.0", "wheel", NEW)]}, hashes=False)
    page = (idx.dir / "simple" / "native" / "index.html").read_text()
    assert f"native-1.0-{OLD}.whl" in page and f"native-1.0-{NEW}.whl" in page
    assert "sha256" not in page  # the index publishes no hashes
    # the lock chose the manylinux_2_17 wheel (this host would prefer manylinux_2_28)
    old = f"native-1.0-{OLD}.whl"
    locked = LockedPackage(
        "pypi", "native", "1.0", idx.file_url(old), old, sha256_hex(idx.files[old]),
        size=idx.files[old].stat().st_size, index=idx.url,
    )  # fmt: skip
    spec = EnvSpec(name="app", archs=("linux-64",), channels=(), pypi_index=idx.url)
    lock = Lock.build(spec, "linux-64", [locked], python_source="host", python_version=PY)
    text = to_requirements(lock)
    assert text.splitlines()[-2:] == [
        f"native @ {idx.file_url(old)} \\",
        f"    --hash=sha256:{locked.sha256}",
    ]
    req = tmp_path / "requirements.txt"
    req.write_text(text, encoding="utf-8")
    result = pip_install(req, tmp_path / "T")
    assert result.returncode == 0, result.stdout + result.stderr
    wheel_meta = (tmp_path / "T" / "native-1.0.dist-info" / "WHEEL").read_text()
    assert f"Tag: {OLD}" in wheel_meta and "manylinux_2_28" not in wheel_meta
    assert '__version__ = "1.0"' in (tmp_path / "T" / "native" / "__init__.py").read_text()
    assert f"/files/{old}" in idx.requests
    assert f"/files/native-1.0-{NEW}.whl" not in idx.requests

    # the control: a pin by name alone gets the file pip prefers here, not the locked one
    by_name = text.replace(f"native @ {idx.file_url(old)}", "native==1.0")
    req.write_text(by_name, encoding="utf-8")
    result = pip_install(req, tmp_path / "T2")
    assert result.returncode != 0
    assert "DO NOT MATCH THE HASHES" in result.stderr


MANIFEST = """\
[workspace]
archs = ["linux-64"]
channels = ["conda-forge"]

[env.app]
python = "3.11"
pypi = ["locsd @ ./vendor/locsd-1.0.tar.gz", "locdir @ ./src/locdir", "dep"]
"""


def test_pylock_in_a_subdirectory_installs_with_uv(tmp_path):
    from uv import find_uv_bin

    from envbuild.platforms import host_arch

    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "envbuild.toml").write_text(
        MANIFEST.replace('"linux-64"', f'"{host_arch()}"'), encoding="utf-8"
    )
    sdist = make_sdist(ws / "vendor", "locsd", "1.0")
    tree = make_source_tree(ws / "src" / "locdir", "locdir", "2.0")
    dep = make_wheel(ws / "wheels", "dep", "3.0")
    packages = [
        LockedPackage(
            "pypi", "locsd", "1.0", "", sdist.name, sha256_hex(sdist), size=sdist.stat().st_size,
            source=Source("archive", path="vendor/locsd-1.0.tar.gz", sha256=sha256_hex(sdist)),
        ),
        LockedPackage(
            "pypi", "locdir", "2.0", "", "", tree_hash(tree),
            source=Source("directory", path="src/locdir", sha256=tree_hash(tree)),
        ),
        # a workspace find-links file: locked by its workspace-relative path
        LockedPackage("pypi", "dep", "3.0", f"wheels/{dep.name}", dep.name, sha256_hex(dep)),
    ]  # fmt: skip
    spec = load_workspace(ws).env("app")
    lock = Lock.build(spec, host_arch(), packages, python_source="host", python_version=PY)
    (ws / "locks" / "app").mkdir(parents=True)
    (ws / "locks" / "app" / f"{host_arch()}.json").write_text(lock.dumps(), encoding="utf-8")

    out = ws / "sub" / "pylock.toml"
    out.parent.mkdir()
    assert main(["-C", str(ws), "export", "app", "--format", "pylock", "-o", str(out)]) == 0
    pylock = Pylock.from_dict(tomllib.loads(out.read_text(encoding="utf-8")))
    pkgs = {str(p.name): p for p in pylock.packages}
    archive = pkgs["locsd"].archive
    assert pkgs["locsd"].directory is None and archive is not None  # an archive, not a dir
    assert (archive.path, archive.url, dict(archive.hashes)) == (
        "../vendor/locsd-1.0.tar.gz",
        None,
        {"sha256": sha256_hex(sdist)},
    )
    directory = pkgs["locdir"].directory
    assert directory is not None and directory.path == "../src/locdir"
    (wheel,) = pkgs["dep"].wheels or ()
    assert wheel.url == dep.resolve().as_uri()

    env = {k: v for k, v in clean_env().items() if not k.startswith("UV_")}
    cmd = [find_uv_bin(), "pip", "install", "--offline", "--no-config", "--no-cache", "--preview"]
    cmd += ["--python", sys.executable, "--target", "T", "-r", "sub/pylock.toml"]
    result = subprocess.run(
        cmd, capture_output=True, text=True, env=env, cwd=ws, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr
    for name, version in (("locsd", "1.0"), ("locdir", "2.0"), ("dep", "3.0")):
        init = (ws / "T" / name / "__init__.py").read_text()
        assert f'__version__ = "{version}"' in init
        assert (ws / "T" / f"{name}-{version}.dist-info").is_dir()


def test_pylock_local_paths_join_the_base():
    """Local paths are joined to the base (the workspace seen from the pylock file); without
    one (a pylock file in the workspace root) they stay as locked."""
    from envbuild.exports import to_pylock

    archive = Source("archive", path="vendor/a-1.0.tar.gz", sha256="1" * 64)
    pkg = LockedPackage("pypi", "a", "1.0", "", "a-1.0.tar.gz", "1" * 64, source=archive)
    spec = EnvSpec(name="app", archs=("linux-64",), channels=())
    lock = Lock.build(spec, "linux-64", [pkg], python_source="host", python_version=PY)
    for base, want in (("", "vendor/a-1.0.tar.gz"), (".", "vendor/a-1.0.tar.gz"),
                       ("../..", "../../vendor/a-1.0.tar.gz")):  # fmt: skip
        data = tomllib.loads(to_pylock(lock, base))
        assert data["packages"][0]["archive"]["path"] == want
        assert "directory" not in data["packages"][0]
