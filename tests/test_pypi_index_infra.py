"""The local PyPI test infrastructure (``tests/pypi_index.py`` + the ``pypi_index`` /
``http_server_auth`` fixtures) checked against the real tools: uv and pip resolve against
the loopback index only (no PyPI, no proxy), and the made files are really installable /
buildable without any download."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from conftest import ServedIndex
from pypi_index import (
    Dist,
    DistSpec,
    build_index,
    expand_tag,
    git_commit,
    git_tag,
    make_git_repo,
    make_sdist,
    make_source_tree,
    make_wheel,
    sha256_hex,
    write_find_links,
)

MANYLINUX = "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64"
MACOS = "cp311-cp311-macosx_11_0_arm64"
UV = str(Path(sys.executable).with_name("uv"))

IndexFactory = Callable[..., ServedIndex]


# --------------------------------------------------------------------------- tool runners


def tool_env(tmp: Path, **extra: str) -> dict[str, str]:
    """The environment minus anything that could point uv/pip elsewhere (PIP_*, UV_*,
    proxies, netrc), with private caches and a dead proxy for every non-loopback host."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PIP_", "UV_", "CONDA_"))
        and k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "netrc")
    }
    dead_proxy = "http://127.0.0.1:9"  # anything not on loopback would fail through it
    env.update(
        HTTP_PROXY=dead_proxy,
        HTTPS_PROXY=dead_proxy,
        ALL_PROXY=dead_proxy,
        http_proxy=dead_proxy,
        https_proxy=dead_proxy,
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        NETRC=os.devnull,
        UV_CACHE_DIR=str(tmp / "uv-cache"),
        UV_PYTHON_DOWNLOADS="never",
        UV_NO_PROGRESS="1",
        PIP_CONFIG_FILE=os.devnull,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INPUT="1",
    )
    env.update(extra)
    return env


def run(
    args: Sequence[str], cwd: Path, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def uv_compile(
    tmp: Path,
    requirements: Sequence[str],
    index_url: str | None,
    *,
    platform: str | None = None,
    extra_args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    check: bool = True,
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """``uv pip compile`` to pylock.toml in a fresh dir under ``tmp``; returns the process
    and the parsed lock's packages by name ({} when it failed)."""
    work = tmp / f"compile-{len(list(tmp.glob('compile-*')))}"
    work.mkdir()
    (work / "req.in").write_text("\n".join(requirements) + "\n", encoding="utf-8")
    args = [UV, "pip", "compile", "req.in", "--no-config", "--python", sys.executable]
    args += ["--python-version", "3.11", "--format", "pylock.toml", "-o", "pylock.toml"]
    args += ["--index-url", index_url] if index_url else ["--no-index"]
    if platform:
        args += ["--python-platform", platform]
    proc = run([*args, *extra_args], work, env or tool_env(tmp))
    if check:
        assert proc.returncode == 0, proc.stderr
    if proc.returncode != 0:
        return proc, {}
    lock = tomllib.loads((work / "pylock.toml").read_text(encoding="utf-8"))
    return proc, {p["name"]: p for p in lock["packages"]}


def wheel_names(package: dict[str, Any]) -> list[str]:
    return [w["url"].rsplit("/", 1)[-1] for w in package.get("wheels", [])]


# --------------------------------------------------------------------------- pure helpers


def test_wheel_layout_record_and_reproducibility(tmp_path: Path) -> None:
    a = make_wheel(tmp_path / "a", "My.Pkg", "1.0", MANYLINUX, ["dep>=1", "other; extra == 'x'"])
    b = make_wheel(tmp_path / "b", "My.Pkg", "1.0", MANYLINUX, ["dep>=1", "other; extra == 'x'"])
    assert a.name == f"my_pkg-1.0-{MANYLINUX}.whl"
    assert a.read_bytes() == b.read_bytes()
    with zipfile.ZipFile(a) as zf:
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        meta = zf.read("my_pkg-1.0.dist-info/METADATA").decode()
        wheel = zf.read("my_pkg-1.0.dist-info/WHEEL").decode()
        record = list(csv.reader(io.StringIO(zf.read("my_pkg-1.0.dist-info/RECORD").decode())))
        assert '__version__ = "1.0"' in zf.read("my_pkg/__init__.py").decode()
        for path, digest, size in record:
            if path.endswith("RECORD"):
                assert (digest, size) == ("", "")
                continue
            data = zf.read(path)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            assert digest == "sha256=" + expected.decode() and int(size) == len(data)
        assert sorted(zf.namelist()) == sorted(r[0] for r in record)
    assert "Metadata-Version: 2.1\nName: My.Pkg\nVersion: 1.0\n" in meta
    assert "Requires-Dist: dep>=1\nRequires-Dist: other; extra == 'x'\n" in meta
    assert [ln for ln in wheel.splitlines() if ln.startswith("Tag:")] == [
        f"Tag: {t}" for t in expand_tag(MANYLINUX)
    ]
    assert "Root-Is-Purelib: false" in wheel

    s1, s2 = (
        make_sdist(tmp_path / "a", "My.Pkg", "2.0"),
        make_sdist(tmp_path / "b", "My.Pkg", "2.0"),
    )
    assert s1.name == "my_pkg-2.0.tar.gz" and s1.read_bytes() == s2.read_bytes()
    with tarfile.open(s1) as tar:
        names = tar.getnames()
        pkg_info = tar.extractfile("my_pkg-2.0/PKG-INFO").read().decode()  # type: ignore[union-attr]
    assert {"my_pkg-2.0/pyproject.toml", "my_pkg-2.0/backend.py"} <= set(names)
    assert pkg_info.startswith("Metadata-Version: 2.2\n") and "Dynamic" not in pkg_info


def test_index_pages(tmp_path: Path) -> None:
    spec: dict[str, list[DistSpec]] = {
        "Foo_Bar": [Dist("1.0", requires_python=">=3.8,<4"), ("0.9", "sdist")],
        "old": [Dist("1.0", yanked="broken"), Dist("0.1", yanked=True)],
    }
    index = build_index(tmp_path, spec)
    root = (tmp_path / "simple" / "index.html").read_text()
    assert '<a href="foo-bar/">foo-bar</a>' in root and '<a href="old/">old</a>' in root
    page = (tmp_path / "simple" / "foo-bar" / "index.html").read_text()
    whl = tmp_path / "files" / "foo_bar-1.0-py3-none-any.whl"
    assert (
        f'<a href="../../files/{whl.name}#sha256={sha256_hex(whl)}" '
        f'data-requires-python="&gt;=3.8,&lt;4">{whl.name}</a>'
    ) in page
    assert "foo_bar-0.9.tar.gz#sha256=" in page
    old = (tmp_path / "simple" / "old" / "index.html").read_text()
    assert 'data-yanked="broken"' in old and 'data-yanked=""' in old
    assert sorted(e.filename for e in index.entries) == sorted(
        p.name for p in (tmp_path / "files").glob("*") if p.name != "index.html"
    )
    flat = write_find_links(tmp_path / "flat", [whl])
    assert (flat / whl.name).is_file() and f"{whl.name}#sha256=" in (
        flat / "index.html"
    ).read_text()


def test_git_repo_commits_and_tags_are_reproducible(tmp_path: Path) -> None:
    url, first = make_git_repo(tmp_path / "r1", "gitpkg", "0.1", tag="v0.1")
    again = make_git_repo(tmp_path / "r2", "gitpkg", "0.1", tag="v0.1")
    assert url == (tmp_path / "r1").resolve().as_uri().replace("file:", "git+file:", 1)
    assert len(first) == 40 and again.commit == first
    second = git_commit(tmp_path / "r1", version="0.2")
    assert second != first and git_tag(tmp_path / "r1", "v0.2") == second
    assert git_commit(tmp_path / "r2", version="0.2") == second


# --------------------------------------------------------------------------- uv


def test_uv_picks_the_platform_wheel(pypi_index: IndexFactory, tmp_path: Path) -> None:
    idx = pypi_index({"native": [("1.0", "wheel", MANYLINUX), ("1.0", "wheel", MACOS)]})
    _, linux = uv_compile(tmp_path, ["native"], idx.url, platform="x86_64-manylinux_2_17")
    assert wheel_names(linux["native"]) == [f"native-1.0-{MANYLINUX}.whl"]
    wheel = linux["native"]["wheels"][0]
    assert wheel["hashes"]["sha256"] == sha256_hex(idx.files[f"native-1.0-{MANYLINUX}.whl"])
    assert wheel["url"] == idx.file_url(f"native-1.0-{MANYLINUX}.whl")

    mac_env = tool_env(tmp_path, MACOSX_DEPLOYMENT_TARGET="11.0")
    _, mac = uv_compile(tmp_path, ["native"], idx.url, platform="aarch64-apple-darwin", env=mac_env)
    assert wheel_names(mac["native"]) == [f"native-1.0-{MACOS}.whl"]
    assert all(p.startswith("/simple/") or p.startswith("/files/") for p in idx.requests)


def test_uv_dependency_chain_and_sdist_only(pypi_index: IndexFactory, tmp_path: Path) -> None:
    idx = pypi_index(
        {
            "top": [("1.0", "wheel", None, ["middle>=2"])],
            "middle": [("1.0",), ("2.0", "wheel", None, ["Bottom_Pkg<2"])],
            "bottom-pkg": ["1.5", "2.0"],
            "srconly": [("3.0", "sdist", None, ["bottom-pkg"])],
            # requirements only known by building (offline, in-tree backend)
            "dynsrc": [Dist("0.5", kind="sdist", requires=("leaf==1.0",), dynamic=True)],
            "leaf": ["1.0", "1.1"],
        }
    )
    _, pkgs = uv_compile(tmp_path, ["top", "srconly", "dynsrc"], idx.url)
    assert {n: p["version"] for n, p in pkgs.items()} == {
        "top": "1.0", "middle": "2.0", "bottom-pkg": "1.5", "srconly": "3.0",
        "dynsrc": "0.5", "leaf": "1.0",
    }  # fmt: skip
    sdist = pkgs["srconly"]["sdist"]
    assert sdist["url"].endswith("/files/srconly-3.0.tar.gz")
    assert sdist["hashes"]["sha256"] == sha256_hex(idx.files["srconly-3.0.tar.gz"])
    assert "wheels" not in pkgs["srconly"]


def test_uv_git_and_directory_sources(pypi_index: IndexFactory, tmp_path: Path) -> None:
    idx = pypi_index({"dep": ["1.0"]})
    url, first = make_git_repo(tmp_path / "repo", "gitpkg", "0.1", ["dep"], tag="v0.1")
    second = git_commit(tmp_path / "repo", version="0.2")
    local = make_source_tree(tmp_path / "localpkg", "localpkg", "4.0", ["dep"], dynamic=True)

    _, pkgs = uv_compile(
        tmp_path, [f"gitpkg @ {url}@v0.1", f"localpkg @ {local.as_uri()}"], idx.url
    )
    assert pkgs["gitpkg"]["vcs"]["type"] == "git"
    assert pkgs["gitpkg"]["vcs"]["commit-id"] == first
    assert pkgs["gitpkg"]["version"] == "0.1"
    assert pkgs["gitpkg"]["vcs"]["url"] == url.removeprefix("git+")
    # uv writes no version for a directory source (PEP 751 lets it be omitted)
    assert pkgs["localpkg"]["directory"]["path"] == str(local)
    assert "dep" in pkgs

    _, head = uv_compile(tmp_path, [f"gitpkg @ {url}", str(local)], idx.url)
    assert head["gitpkg"]["vcs"]["commit-id"] == second and head["gitpkg"]["version"] == "0.2"
    assert head["localpkg"]["directory"]["path"] == str(local)


def test_uv_basic_auth(pypi_index: IndexFactory, tmp_path: Path) -> None:
    idx = pypi_index({"secret": ["1.0"]}, auth=("user", "tok3n"))
    assert idx.auth_url.startswith("http://user:tok3n@127.0.0.1:")

    proc, _ = uv_compile(tmp_path, ["secret"], idx.url, check=False)
    assert proc.returncode != 0 and "401 Unauthorized" in proc.stderr
    assert idx.requests and all("authorization" not in h for _, _, h in idx.server.requests)

    _, pkgs = uv_compile(tmp_path, ["secret"], idx.auth_url)
    assert pkgs["secret"]["version"] == "1.0"
    expected = "Basic " + base64.b64encode(b"user:tok3n").decode()
    assert any(h.get("authorization") == expected for _, _, h in idx.server.requests)
    # the credential does not leak into the lock
    assert "tok3n" not in json.dumps(pkgs)


def test_http_server_auth_fixture(
    http_server_auth: Callable[[Path, str, str], Any], tmp_path: Path
) -> None:
    import urllib.error
    import urllib.request

    (tmp_path / "hello.txt").write_text("hi")
    server = http_server_auth(tmp_path, "u", "p")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with pytest.raises(urllib.error.HTTPError) as err:
        opener.open(f"{server.url}/hello.txt", timeout=10)
    assert err.value.code == 401
    req = urllib.request.Request(
        f"{server.url}/hello.txt",
        headers={"Authorization": "Basic " + base64.b64encode(b"u:p").decode()},
    )
    with opener.open(req, timeout=10) as resp:
        assert resp.read() == b"hi"
    assert server.paths == ["/hello.txt", "/hello.txt"]


def test_uv_json_api_and_core_metadata(pypi_index: IndexFactory, tmp_path: Path) -> None:
    idx = pypi_index(
        {
            "timed": [
                Dist("1.0", upload_time="2024-01-01T00:00:00Z"),
                Dist("2.0", upload_time="2024-06-01T00:00:00Z"),
            ]
        },
        json_api=True,
        core_metadata=True,
    )
    _, pkgs = uv_compile(tmp_path, ["timed"], idx.url, extra_args=["--exclude-newer", "2024-03-01"])
    assert pkgs["timed"]["version"] == "1.0"
    accepts = [h.get("accept", "") for _, p, h in idx.server.requests if p.startswith("/simple/")]
    assert any("json" in a for a in accepts)
    assert "/files/timed-1.0-py3-none-any.whl.metadata" in idx.requests


# --------------------------------------------------------------------------- pip


def test_pip_report_picks_the_manylinux_wheel(pypi_index: IndexFactory, tmp_path: Path) -> None:
    idx = pypi_index(
        {"native": [("1.0", "wheel", MANYLINUX), ("1.0", "wheel", MACOS), ("1.0", "sdist")]}
    )
    args = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed"]
    args += ["--report", "r.json", "--isolated", "--index-url", idx.url, "--only-binary=:all:"]
    args += ["--platform", "manylinux_2_17_x86_64", "--python-version", "3.11"]
    args += ["--implementation", "cp", "--abi", "cp311", "--cache-dir", str(tmp_path / "pc")]
    proc = run([*args, "native"], tmp_path, tool_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    (item,) = report["install"]
    assert item["download_info"]["url"] == idx.file_url(f"native-1.0-{MANYLINUX}.whl")
    assert item["download_info"]["archive_info"]["hashes"]["sha256"] == sha256_hex(
        idx.files[f"native-1.0-{MANYLINUX}.whl"]
    )


def test_pip_installs_made_wheel_and_builds_made_sdist(tmp_path: Path) -> None:
    env = tool_env(tmp_path)
    pip = [sys.executable, "-m", "pip", "--isolated", "--cache-dir", str(tmp_path / "pc")]
    whl = make_wheel(tmp_path / "dist", "Inst-Pkg", "1.2", requires=["missing-dep"])
    proc = run(
        [*pip, "install", "--no-deps", "--no-index", "--target", "T", str(whl)], tmp_path, env
    )
    assert proc.returncode == 0, proc.stderr
    check = run(
        [sys.executable, "-c", "import inst_pkg; print(inst_pkg.__version__)"], tmp_path / "T", env
    )
    assert check.stdout.strip() == "1.2", check.stderr
    assert (tmp_path / "T" / "inst_pkg-1.2.dist-info" / "RECORD").is_file()

    # the sdist builds offline (in-tree backend, no build requirements) into a real wheel
    sdist = make_sdist(tmp_path / "dist", "built-pkg", "0.3", ["dep>=1"])
    proc = run([*pip, "wheel", "--no-deps", "--no-index", "-w", "W", str(sdist)], tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    (built,) = (tmp_path / "W").glob("*.whl")
    assert built.name == "built_pkg-0.3-py3-none-any.whl"
    with zipfile.ZipFile(built) as zf:
        assert "Requires-Dist: dep>=1" in zf.read("built_pkg-0.3.dist-info/METADATA").decode()
        assert "built_pkg/__init__.py" in zf.namelist()
