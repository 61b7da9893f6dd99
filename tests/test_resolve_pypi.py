"""PyPI and mixed (conda + PyPI) resolution through the real ``envbuild`` CLI, against loopback
PyPI indexes (``pypi_index``), find-links directories, git repos and local source trees made by
``tests/pypi_index.py``, with python (and Python distributions) from a local conda channel.

Nothing here contacts anything but loopback addresses (the real PyPI is in test_pypi_live.py).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from conftest import ServedIndex, lock_packages, read_lock_json
from pypi_index import (
    git_commit,
    make_git_repo,
    make_source_tree,
    make_wheel,
    sha256_hex,
)

from envbuild.platforms import host_arch

PY = "3.11.9"
MANYLINUX = "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64"
MANYLINUX_228 = "cp311-cp311-manylinux_2_28_x86_64"
MACOS = "cp311-cp311-macosx_11_0_arm64"
ALL_ARCHS = ["linux-64", "linux-aarch64", "osx-64", "osx-arm64"]
SECRET = "s3cr3t-token"

IndexFactory = Callable[..., ServedIndex]

# A tiny conda channel: python itself, and Python distributions (they depend on python).
PYTHON = {"name": "python", "version": PY, "build": "0", "subdirs": ALL_ARCHS}
CONDA_PY_DISTS = [
    {"name": n, "version": v, "noarch": "generic", "depends": ["python >=3.8"]}
    for n, v in (("pip", "24.0"), ("setuptools", "70.0.0"), ("wheel", "0.43.0"), ("six", "1.16.0"))
]


@pytest.fixture(scope="module")
def py_channel(make_channel) -> str:
    """file:// URL of a channel with python 3.11.9 (4 archs) and noarch pip, setuptools,
    wheel and six 1.16.0 (each depending on python)."""
    return str(make_channel([PYTHON, *CONDA_PY_DISTS], name="pychan").as_uri())


def write_manifest(
    root: Path,
    workspace: dict[str, Any],
    envs: dict[str, dict[str, Any]],
    files: dict[str, str] | None = None,
) -> Path:
    """``envbuild.toml`` from plain dicts (TOML via tomli_w), plus extra text files (paths
    relative to ``root``)."""
    root.mkdir(parents=True, exist_ok=True)
    text = tomli_w.dumps({"workspace": workspace, "env": envs})
    (root / "envbuild.toml").write_text(text, encoding="utf-8")
    for rel, content in (files or {}).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    return root


def assert_ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "Traceback" not in result.stdout + result.stderr


def assert_user_error(result: subprocess.CompletedProcess[str]) -> list[str]:
    """Exit code 2, no traceback; returns the stderr lines."""
    out = result.stdout + result.stderr
    assert result.returncode == 2, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "Traceback" not in out
    return result.stderr.splitlines()


def source_id(pkg: dict[str, Any]) -> str:
    """The pip-style identity of a locked package's source record."""
    from envbuild.lock import Source

    return Source.from_dict(pkg["source"]).identity


def pypi_pkgs(ws: Path, env: str, arch: str) -> dict[str, dict[str, Any]]:
    return {n: p for n, p in lock_packages(ws, env, arch).items() if p["kind"] == "pypi"}


def conda_pkgs(ws: Path, env: str, arch: str) -> dict[str, dict[str, Any]]:
    return {n: p for n, p in lock_packages(ws, env, arch).items() if p["kind"] == "conda"}


def assert_wheel(pkg: dict[str, Any], idx: ServedIndex, filename: str, version: str) -> None:
    """``pkg`` is the lock entry of wheel ``filename`` served by ``idx``, exactly."""
    assert pkg["kind"] == "pypi"
    assert pkg["version"] == version
    assert pkg["filename"] == filename
    assert pkg["url"] == idx.file_url(filename)
    assert pkg["sha256"] == sha256_hex(idx.files[filename])
    assert pkg["needs_build"] is False
    assert pkg["source"] is None
    assert pkg["build"] == pkg["channel"] == pkg["subdir"] == pkg["md5"] == ""


def ws_settings(py_channel: str, idx: ServedIndex, archs: list[str], **more: Any) -> dict[str, Any]:
    return {"archs": archs, "channels": [py_channel], "pypi-index": idx.url, **more}


# --------------------------------------------------------------------------- 1. cross-arch picks


@pytest.mark.parametrize("resolver", ["uv", "pip"])
def test_cross_arch_wheel_picks(resolver, py_channel, pypi_index, tmp_path, run_cli):
    """Each target arch gets the wheel of its own platform (never the host's), and a target's
    ``__glibc`` picks the highest manylinux level it allows; uv and pip agree."""
    idx = pypi_index(
        {
            "native": [("1.0", "wheel", MACOS), ("1.0", "wheel", MANYLINUX)],
            "glibcpkg": [("1.0", "wheel", MANYLINUX), ("1.0", "wheel", MANYLINUX_228)],
        }
    )
    ws = write_manifest(
        tmp_path / "ws",
        ws_settings(py_channel, idx, ["linux-64", "osx-arm64"], **{"pypi-resolver": resolver}),
        {
            "native": {"python": "3.11", "pypi": ["native"]},
            "glibc217": {"python": "3.11", "pypi": ["glibcpkg"], "archs": ["linux-64"]},
            "glibc228": {
                "python": "3.11",
                "pypi": ["glibcpkg"],
                "archs": ["linux-64"],
                "virtual-packages": {"__glibc": "2.28"},
            },
        },
    )
    assert_ok(run_cli(ws, "resolve"))
    linux = pypi_pkgs(ws, "native", "linux-64")
    mac = pypi_pkgs(ws, "native", "osx-arm64")
    assert sorted(linux) == sorted(mac) == ["native"]
    assert_wheel(linux["native"], idx, f"native-1.0-{MANYLINUX}.whl", "1.0")
    assert_wheel(mac["native"], idx, f"native-1.0-{MACOS}.whl", "1.0")
    for arch in ("linux-64", "osx-arm64"):
        lock = read_lock_json(ws, "native", arch)
        assert lock["kind"] == "pypi"
        assert lock["python"] == {"source": "conda", "version": PY}
        assert lock["spec"]["settings"]["pypi_resolver"] == resolver
        python = conda_pkgs(ws, "native", arch)["python"]
        assert (python["version"], python["subdir"]) == (PY, arch)
    g217 = pypi_pkgs(ws, "glibc217", "linux-64")["glibcpkg"]
    g228 = pypi_pkgs(ws, "glibc228", "linux-64")["glibcpkg"]
    assert_wheel(g217, idx, f"glibcpkg-1.0-{MANYLINUX}.whl", "1.0")
    assert_wheel(g228, idx, f"glibcpkg-1.0-{MANYLINUX_228}.whl", "1.0")


# --------------------------------------------------------------------------- 2. --pre


def test_pre_releases(py_channel, pypi_index, tmp_path, run_cli):
    idx = pypi_index({"prepkg": ["1.0", "2.0rc1"]})
    ws = write_manifest(
        tmp_path / "ws",
        ws_settings(py_channel, idx, ["linux-64"]),
        {
            "stable": {"python": "3.11", "pypi": ["prepkg"]},
            "inline": {"python": "3.11", "pypi": ["--pre", "prepkg"]},
            "fromfile": {"python": "3.11", "file": "reqs/pre.txt"},
        },
        {"reqs/pre.txt": "--pre\nprepkg\n"},
    )
    assert_ok(run_cli(ws, "resolve"))
    expected = {"stable": "1.0", "inline": "2.0rc1", "fromfile": "2.0rc1"}
    for env, version in expected.items():
        pkg = pypi_pkgs(ws, env, "linux-64")["prepkg"]
        assert_wheel(pkg, idx, f"prepkg-{version}-py3-none-any.whl", version)
    assert read_lock_json(ws, "stable", "linux-64")["spec"]["pre"] is False
    assert read_lock_json(ws, "inline", "linux-64")["spec"]["pre"] is True
    assert read_lock_json(ws, "fromfile", "linux-64")["spec"]["pre"] is True


# --------------------------------------------------------------------------- 3. find-links


@pytest.mark.parametrize("resolver", ["uv", "pip"])
def test_find_links_relative_to_requirements_file(
    resolver, py_channel, pypi_index, tmp_path, run_cli
):
    """``--find-links wheels`` in ``reqs/requirements.txt`` is ``reqs/wheels``: the wheel only
    there resolves, locked by its path relative to the workspace (no absolute path in a lock)
    with its real sha256."""
    idx = pypi_index({"other": ["1.0"]})
    ws = write_manifest(
        tmp_path / "ws",
        ws_settings(py_channel, idx, ["linux-64"], **{"pypi-resolver": resolver}),
        {"fl": {"python": "3.11", "file": "reqs/requirements.txt"}},
        {"reqs/requirements.txt": "--find-links wheels\nflpkg\n"},
    )
    wheel = make_wheel(ws / "reqs" / "wheels", "flpkg", "1.5", requires=["other"])
    assert_ok(run_cli(ws, "resolve"))
    pkgs = pypi_pkgs(ws, "fl", "linux-64")
    assert sorted(pkgs) == ["flpkg", "other"]
    fl = pkgs["flpkg"]
    assert fl["url"] == "reqs/wheels/flpkg-1.5-py3-none-any.whl"
    assert (ws / fl["url"]).resolve() == wheel.resolve()
    assert fl["filename"] == "flpkg-1.5-py3-none-any.whl"
    assert fl["sha256"] == sha256_hex(wheel)
    assert (fl["version"], fl["needs_build"]) == ("1.5", False)
    assert_wheel(pkgs["other"], idx, "other-1.0-py3-none-any.whl", "1.0")


# --------------------------------------------------------------------------- 4. extra indexes


def test_extra_index_is_searched_first_with_uv(py_channel, pypi_index, tmp_path, run_cli):
    """uv's first-index strategy: a name found on an extra index is taken from there only,
    even though the base index has a newer version. (pip merges all indexes and would pick
    foo 2.0 from the base index; that behaviour of the pip fallback is not tested here.)"""
    base = pypi_index({"foo": ["2.0"]})
    extra = pypi_index({"foo": ["1.0"]})
    ws = write_manifest(
        tmp_path / "ws",
        ws_settings(py_channel, base, ["linux-64"], **{"extra-indexes": [extra.url]}),
        {"app": {"python": "3.11", "pypi": ["foo"]}},
    )
    assert_ok(run_cli(ws, "resolve"))
    assert_wheel(pypi_pkgs(ws, "app", "linux-64")["foo"], extra, "foo-1.0-py3-none-any.whl", "1.0")
    assert read_lock_json(ws, "app", "linux-64")["spec"]["extra_indexes"] == [extra.url]


# --------------------------------------------------------------------------- 5. needs-build


@pytest.fixture
def sources(tmp_path: Path, pypi_index: IndexFactory) -> dict[str, Any]:
    """An index with an sdist-only package, a tagged git repo (with a later commit on
    main) and a local project inside the workspace directory."""
    idx = pypi_index({"srconly": [("3.0", "sdist", None, ["dep"])], "dep": ["1.0"]})
    repo = make_git_repo(tmp_path / "repo", "vcspkg", "0.1", ["dep"], tag="v0.1")
    git_commit(tmp_path / "repo", version="0.2")  # HEAD moves on; the tag stays
    ws = tmp_path / "ws"
    local = make_source_tree(ws / "localpkg", "localpkg", "4.0", ["dep"])
    return {"idx": idx, "repo": repo, "ws": ws, "local": local}


def test_needs_build_host_arch(sources, py_channel, run_cli):
    """(Sdists are allowed for every target: test_needs_build_foreign_arch.)"""
    from envbuild.fs import tree_hash

    idx, repo, ws = sources["idx"], sources["repo"], sources["ws"]
    vcs_req = f"vcspkg @ {repo.url}@v0.1"
    write_manifest(
        ws,
        ws_settings(py_channel, idx, ["linux-64"]),
        {"src": {"python": "3.11", "pypi": ["srconly", vcs_req], "file": "requirements.txt"}},
        {"requirements.txt": "./localpkg\n"},
    )
    assert_ok(run_cli(ws, "resolve"))
    pkgs = pypi_pkgs(ws, "src", "linux-64")
    assert sorted(pkgs) == ["dep", "localpkg", "srconly", "vcspkg"]
    sdist = pkgs["srconly"]
    assert sdist["needs_build"] is True
    assert sdist["version"] == "3.0"
    assert sdist["filename"] == "srconly-3.0.tar.gz"
    assert sdist["url"] == source_id(sdist) == idx.file_url("srconly-3.0.tar.gz")
    assert sdist["source"]["kind"] == "sdist"
    assert sdist["sha256"] == sha256_hex(idx.files["srconly-3.0.tar.gz"])
    vcs = pkgs["vcspkg"]
    assert vcs["needs_build"] is True
    # the tag's full commit id (not HEAD's); the exact URL: test_vcs_source_is_the_git_url
    assert source_id(vcs).startswith("git+file:") and source_id(vcs).endswith(f"@{repo.commit}")
    assert (vcs["version"], vcs["url"], vcs["filename"], vcs["sha256"]) == ("0.1", "", "", "")
    local = pkgs["localpkg"]
    assert local["needs_build"] is True
    assert local["source"] == {"kind": "directory", "path": "localpkg", "sha256": local["sha256"]}
    assert local["version"] == "4.0"
    assert (local["url"], local["filename"]) == ("", "")
    assert local["sha256"] == tree_hash(sources["local"])
    assert len(local["sha256"]) == 64
    assert_wheel(pkgs["dep"], idx, "dep-1.0-py3-none-any.whl", "1.0")

    # pylock.toml can hold what needs building; a hash-checked requirements file cannot
    from packaging.pylock import Pylock

    out = ws.parent / "src.pylock.toml"
    assert_ok(run_cli(ws, "export", "src", "--arch", "linux-64", "--format", "pylock", "-o", out))
    pylock = Pylock.from_dict(tomllib.loads(out.read_text()))
    by_name = {str(p.name): p for p in pylock.packages}
    assert sorted(by_name) == ["dep", "localpkg", "srconly", "vcspkg"]
    assert by_name["localpkg"].directory is not None
    # relative to the pylock file (written beside the workspace), as PEP 751 says
    assert by_name["localpkg"].directory.path == f"{ws.name}/localpkg"
    assert by_name["vcspkg"].vcs is not None
    assert by_name["vcspkg"].vcs.commit_id == repo.commit
    assert by_name["srconly"].sdist is not None
    assert by_name["srconly"].sdist.url == idx.file_url("srconly-3.0.tar.gz")
    lines = assert_user_error(
        run_cli(ws, "export", "src", "--arch", "linux-64", "--format", "requirements",
                "-o", ws.parent / "r.txt")
    )  # fmt: skip
    assert lines == [
        "envbuild: error: env 'src' has packages that must be built first (localpkg, vcspkg), "
        "which a hash-checked requirements file cannot pin: use --format pylock"
    ]


def test_inline_path_is_relative_to_the_manifest(sources, py_channel, run_cli):
    """``./localpkg`` in the manifest's ``pypi`` list is relative to envbuild.toml, even when
    the env also reads a requirements file from a subdirectory."""
    idx, ws = sources["idx"], sources["ws"]
    write_manifest(
        ws,
        ws_settings(py_channel, idx, ["linux-64"]),
        {"m": {"python": "3.11", "file": "reqs/requirements.txt", "pypi": ["./localpkg"]}},
        {"reqs/requirements.txt": "dep\n"},
    )
    assert_ok(run_cli(ws, "resolve"))
    assert pypi_pkgs(ws, "m", "linux-64")["localpkg"]["source"]["path"] == "localpkg"


def test_editing_a_local_source_tree_re_resolves_its_env(sources, py_channel, run_cli):
    """The lock holds the tree hash of ``./localpkg``: changing the tree makes it stale."""
    from envbuild.fs import tree_hash

    idx, ws, local = sources["idx"], sources["ws"], sources["local"]
    write_manifest(
        ws,
        ws_settings(py_channel, idx, ["osx-arm64"]),
        {"src": {"python": "3.11", "pypi": ["./localpkg"]}, "other": {"python": "3.11", "pypi": ["dep"]}},
    )
    assert_ok(run_cli(ws, "resolve"))
    again = run_cli(ws, "resolve")
    assert_ok(again)
    assert [ln for ln in again.stdout.splitlines() if ln.startswith(".")] == []
    (local / "extra.py").write_text("VALUE = 1\n")
    edited = run_cli(ws, "resolve")
    assert_ok(edited)
    assert [ln for ln in edited.stdout.splitlines() if ln.startswith(".")] == [
        ".  resolve:src@osx-arm64"
    ]
    assert pypi_pkgs(ws, "src", "osx-arm64")["localpkg"]["sha256"] == tree_hash(local)


def test_needs_build_foreign_arch(sources, py_channel, run_cli):
    """A target that is not the host resolves like the host: an sdist-only package is locked
    to be built (only-binary would refuse it), and so are VCS and directory requirements."""
    idx, repo, ws = sources["idx"], sources["repo"], sources["ws"]
    foreign = "osx-arm64" if host_arch() != "osx-arm64" else "linux-64"
    write_manifest(
        ws,
        ws_settings(py_channel, idx, [foreign]),
        {
            "sdist": {"python": "3.11", "pypi": ["srconly"]},
            "src": {"python": "3.11", "pypi": [f"vcspkg @ {repo.url}@v0.1", "./localpkg"]},
            "wheels": {"python": "3.11", "pypi": ["srconly"], "only-binary": [":all:"]},
        },
    )
    assert_ok(run_cli(ws, "resolve", "env=sdist"))
    pkgs = pypi_pkgs(ws, "sdist", foreign)
    assert sorted(pkgs) == ["dep", "srconly"]
    assert (pkgs["srconly"]["filename"], pkgs["srconly"]["version"]) == ("srconly-3.0.tar.gz", "3.0")
    assert pkgs["srconly"]["url"] == idx.file_url("srconly-3.0.tar.gz")
    assert pkgs["srconly"]["sha256"] == sha256_hex(idx.files["srconly-3.0.tar.gz"])

    result = run_cli(ws, "resolve", "env=wheels")
    lines = assert_user_error(result)
    assert lines[0] == (
        f"envbuild: error: resolve wheels@{foreign}: the PyPI requirements cannot be "
        f"satisfied for {foreign} with python {PY}:"
    )
    assert lines[1] == "  error: No solution found when resolving dependencies"
    assert "srconly==3.0 has no usable wheels" in result.stderr
    assert not (ws / "locks" / "wheels").exists()

    assert_ok(run_cli(ws, "resolve", "env=src"))
    pkgs = pypi_pkgs(ws, "src", foreign)
    assert sorted(pkgs) == ["dep", "localpkg", "vcspkg"]
    assert source_id(pkgs["vcspkg"]).endswith(f"@{repo.commit}")
    assert pkgs["vcspkg"]["version"] == "0.1"
    assert pkgs["localpkg"]["source"]["path"] == "localpkg"
    assert pkgs["localpkg"]["version"] == "4.0"
    assert pkgs["vcspkg"]["needs_build"] is pkgs["localpkg"]["needs_build"] is True


def test_vcs_source_is_the_git_url(sources, py_channel, run_cli):
    """The lock's ``source`` of a VCS requirement is ``git+URL@<full commit id>`` with the
    URL exactly as requested (``git+file:///abs/path``), the tag replaced by its commit."""
    idx, repo, ws = sources["idx"], sources["repo"], sources["ws"]
    write_manifest(
        ws,
        ws_settings(py_channel, idx, ["linux-64", "osx-arm64"]),
        {"src": {"python": "3.11", "pypi": [f"vcspkg @ {repo.url}@v0.1"]}},
    )
    assert_ok(run_cli(ws, "resolve"))
    assert repo.url.startswith("git+file:///")
    for arch in ("linux-64", "osx-arm64"):
        assert source_id(pypi_pkgs(ws, "src", arch)["vcspkg"]) == f"{repo.url}@{repo.commit}"


def test_pip_resolver_rejects_vcs(sources, py_channel, run_cli):
    idx, repo, ws = sources["idx"], sources["repo"], sources["ws"]
    vcs_req = f"vcspkg @ {repo.url}@v0.1"
    write_manifest(
        ws,
        ws_settings(py_channel, idx, ["linux-64"], **{"pypi-resolver": "pip"}),
        {"src": {"python": "3.11", "pypi": ["dep", vcs_req]}},
    )
    lines = assert_user_error(run_cli(ws, "resolve"))
    assert lines == [
        f'envbuild: error: resolve src@linux-64: pypi-resolver = "pip" resolves wheels only, '
        f'and {vcs_req} must be built from source: use pypi-resolver = "uv" (the default) '
        "for this env"
    ]
    assert not (ws / "locks" / "src").exists()


# --------------------------------------------------------------------------- 6. unsatisfiable


@pytest.mark.parametrize("resolver", ["uv", "pip"])
def test_unsatisfiable_pypi(resolver, py_channel, pypi_index, tmp_path, run_cli):
    idx = pypi_index({"foo": ["1.0"]})
    ws = write_manifest(
        tmp_path / "ws",
        ws_settings(py_channel, idx, ["linux-64"], **{"pypi-resolver": resolver}),
        {"bad": {"python": "3.11", "pypi": ["foo==9.9"]}},
    )
    result = run_cli(ws, "resolve")
    lines = assert_user_error(result)
    assert lines[0] == (
        "envbuild: error: resolve bad@linux-64: the PyPI requirements cannot be satisfied "
        f"for linux-64 with python {PY}:"
    )
    assert len(lines) > 1 and all(ln.startswith("  ") for ln in lines[1:])
    assert "foo" in result.stderr
    assert not (ws / "locks" / "bad").exists()


# --------------------------------------------------------------------------- 7. credentials


def files_holding(root: Path, needle: str) -> list[str]:
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and needle.encode() in p.read_bytes()
    )


def check_no_leak(ws: Path, run_cli, env: str, tmp_path: Path, allowed: list[str]) -> None:
    """The secret is in no file under ``ws`` but ``allowed``, nor in show / exports."""
    show = run_cli(ws, "show", env, "--arch", "linux-64", "--json")
    assert_ok(show)
    text_show = run_cli(ws, "show", env)
    assert_ok(text_show)
    assert SECRET not in show.stdout + show.stderr + text_show.stdout + text_show.stderr
    for fmt in ("requirements", "pylock", "conda-lock"):
        out = tmp_path / f"export.{fmt}"
        assert_ok(run_cli(ws, "export", env, "--arch", "linux-64", "--format", fmt, "-o", out))
        assert SECRET not in out.read_text(encoding="utf-8")
    assert files_holding(ws, SECRET) == allowed


def test_credentials_in_index_url(py_channel, pypi_index, tmp_path, run_cli):
    idx = pypi_index({"secretpkg": [("1.0", "wheel", None, ["dep"])], "dep": ["1.0"]},
                     auth=("user", SECRET))  # fmt: skip
    assert idx.auth_url == idx.url.replace("http://", f"http://user:{SECRET}@")
    ws = write_manifest(
        tmp_path / "ws",
        {"archs": ["linux-64"], "channels": [py_channel], "pypi-index": idx.auth_url},
        {
            "app": {"python": "3.11", "pypi": ["secretpkg"]},
            "bad-uv": {"python": "3.11", "pypi": ["secretpkg==3"]},
            "bad-pip": {"python": "3.11", "pypi": ["secretpkg==3"], "pypi-resolver": "pip"},
        },
    )
    result = run_cli(ws, "resolve", "env=app")
    assert_ok(result)
    assert SECRET not in result.stdout + result.stderr
    expected = "Basic " + base64.b64encode(f"user:{SECRET}".encode()).decode()
    assert any(h.get("authorization") == expected for _, _, h in idx.server.requests)
    pkgs = pypi_pkgs(ws, "app", "linux-64")
    assert_wheel(pkgs["secretpkg"], idx, "secretpkg-1.0-py3-none-any.whl", "1.0")
    assert_wheel(pkgs["dep"], idx, "dep-1.0-py3-none-any.whl", "1.0")
    assert read_lock_json(ws, "app", "linux-64")["spec"]["pypi_index"] == idx.url
    check_no_leak(ws, run_cli, "app", tmp_path, ["envbuild.toml"])
    # nor in the message of a failed resolution (uv's and pip's error text)
    for resolver in ("uv", "pip"):
        result = run_cli(ws, "resolve", f"env=bad-{resolver}")
        lines = assert_user_error(result)
        assert lines[0] == (
            f"envbuild: error: resolve bad-{resolver}@linux-64: the PyPI requirements cannot "
            f"be satisfied for linux-64 with python {PY}:"
        )
        assert SECRET not in result.stdout + result.stderr
    assert files_holding(ws, SECRET) == ["envbuild.toml"]


def test_direct_url_credentials_are_not_stored(py_channel, pypi_index, tmp_path, run_cli):
    idx = pypi_index({"secretpkg": ["1.0"]}, auth=("user", SECRET))
    url = idx.file_url("secretpkg-1.0-py3-none-any.whl")
    ws = write_manifest(
        tmp_path / "ws",
        {"archs": ["linux-64"], "channels": [py_channel], "pypi-index": idx.auth_url},
        {
            "app": {
                "python": "3.11",
                "pypi": [f"secretpkg @ {url.replace('http://', f'http://user:{SECRET}@')}"],
            }
        },
    )
    assert_ok(run_cli(ws, "resolve"))
    assert pypi_pkgs(ws, "app", "linux-64")["secretpkg"]["url"] == url
    assert files_holding(ws, SECRET) == ["envbuild.toml"]


def test_credentials_from_environment_variables(
    py_channel, pypi_index, tmp_path, run_cli, monkeypatch
):
    idx = pypi_index({"secretpkg": ["1.0"]}, auth=("user", SECRET))
    monkeypatch.setenv("IDX_USER", "user")
    monkeypatch.setenv("IDX_TOKEN", SECRET)
    url = idx.url.replace("http://", "http://${IDX_USER}:${IDX_TOKEN}@")
    ws = write_manifest(
        tmp_path / "ws",
        {"archs": ["linux-64"], "channels": [py_channel], "pypi-index": url},
        {"app": {"python": "3.11", "pypi": ["secretpkg"]}},
    )
    result = run_cli(ws, "resolve")
    assert_ok(result)
    assert SECRET not in result.stdout + result.stderr
    expected = "Basic " + base64.b64encode(f"user:{SECRET}".encode()).decode()
    assert any(h.get("authorization") == expected for _, _, h in idx.server.requests)
    assert_wheel(
        pypi_pkgs(ws, "app", "linux-64")["secretpkg"], idx, "secretpkg-1.0-py3-none-any.whl", "1.0"
    )
    assert read_lock_json(ws, "app", "linux-64")["spec"]["pypi_index"] == idx.url
    check_no_leak(ws, run_cli, "app", tmp_path, [])


# --------------------------------------------------------------------------- 8 + 9. mixed envs


@pytest.fixture
def mixed_index(pypi_index: IndexFactory) -> ServedIndex:
    return pypi_index(
        {
            "six": ["1.16.0", "1.17.0", "2.0"],  # PyPI has newer sixes than conda's 1.16.0
            "needs-six": [("1.0", "wheel", None, ["six>=1.10"])],
            "needs-six2": [("1.0", "wheel", None, ["six>=2"])],
        }
    )


def test_mixed_env_conda_provides_python_dists(py_channel, mixed_index, tmp_path, run_cli):
    idx = mixed_index
    ws = write_manifest(
        tmp_path / "ws",
        ws_settings(py_channel, idx, ["linux-64", "osx-arm64"]),
        {"mixed": {"python": "3.11", "conda": ["six"], "pypi": ["needs-six"]}},
    )
    assert_ok(run_cli(ws, "resolve"))
    for arch in ("linux-64", "osx-arm64"):
        lock = read_lock_json(ws, "mixed", arch)
        assert lock["kind"] == "mixed"
        assert lock["python"] == {"source": "conda", "version": PY}
        names = sorted((p["kind"], p["name"]) for p in lock["packages"])
        assert names == [("conda", "python"), ("conda", "six"), ("pypi", "needs-six")]
        six = conda_pkgs(ws, "mixed", arch)["six"]
        assert (six["version"], six["subdir"]) == ("1.16.0", "noarch")
        assert six["url"] == f"{py_channel}/noarch/six-1.16.0-0.conda"
        assert_wheel(
            pypi_pkgs(ws, "mixed", arch)["needs-six"], idx, "needs_six-1.0-py3-none-any.whl", "1.0"
        )
    # PyPI must not replace conda's six by a newer one: six>=2 cannot be satisfied
    ws2 = write_manifest(
        tmp_path / "ws2",
        ws_settings(py_channel, idx, ["linux-64"]),
        {"clash": {"python": "3.11", "conda": ["six"], "pypi": ["needs-six2"]}},
    )
    result = run_cli(ws2, "resolve")
    lines = assert_user_error(result)
    assert lines[0] == (
        "envbuild: error: resolve clash@linux-64: the PyPI requirements cannot be satisfied "
        f"for linux-64 with python {PY}:"
    )
    assert "six" in result.stderr
    assert not (ws2 / "locks" / "clash").exists()


def test_show_json_kinds_and_pypi_packages(py_channel, mixed_index, tmp_path, run_cli):
    idx = mixed_index
    ws = write_manifest(
        tmp_path / "ws",
        ws_settings(py_channel, idx, ["linux-64"]),
        {
            "c": {"python": "3.11", "conda": ["six"]},
            "p": {"python": "3.11", "pypi": ["needs-six"]},
            "m": {"python": "3.11", "conda": ["six"], "pypi": ["needs-six"]},
        },
    )
    assert_ok(run_cli(ws, "resolve"))
    docs = {}
    for env in ("c", "p", "m"):
        result = run_cli(ws, "show", env, "--arch", "linux-64", "--json")
        assert_ok(result)
        docs[env] = json.loads(result.stdout)
    assert {env: d["kind"] for env, d in docs.items()} == {"c": "conda", "p": "pypi", "m": "mixed"}
    kinds = {env: sorted((p["kind"], p["name"]) for p in d["packages"]) for env, d in docs.items()}
    assert kinds == {
        "c": [("conda", "python"), ("conda", "six")],
        # no conda six in a pip-only env: PyPI's newest six satisfying needs-six
        "p": [("conda", "python"), ("pypi", "needs-six"), ("pypi", "six")],
        "m": [("conda", "python"), ("conda", "six"), ("pypi", "needs-six")],
    }
    pypi = {p["name"]: p for p in docs["p"]["packages"] if p["kind"] == "pypi"}
    six_whl = "six-2.0-py3-none-any.whl"
    assert pypi["six"] == {
        "name": "six", "version": "2.0", "build": "", "kind": "pypi",
        "url": idx.file_url(six_whl), "filename": six_whl,
        "sha256": sha256_hex(idx.files[six_whl]), "md5": "",
    }  # fmt: skip
    assert pypi["needs-six"]["url"] == idx.file_url("needs_six-1.0-py3-none-any.whl")
    for env, doc in docs.items():
        lock = read_lock_json(ws, env, "linux-64")
        assert doc["env_id"] == lock["env_id"]
        assert doc["env"] == env


# --------------------------------------------------------------------------- 10. host python


def test_python_source_host(py_channel, pypi_index, tmp_path, run_cli):
    """A host-python env resolves for every arch, the host's or not, with the requested
    python version, which the lock records as written: no interpreter of it is needed."""
    idx = pypi_index({"hostpkg": ["1.0"]})
    minor = f"{sys.version_info[0]}.{sys.version_info[1]}"
    other = "osx-arm64" if host_arch() != "osx-arm64" else "linux-64"
    ws = write_manifest(
        tmp_path / "ws",
        {
            "archs": [host_arch(), other],
            "channels": [py_channel],  # not used: python comes from the host
            "pypi-index": idx.url,
            "python-source": "host",
        },
        {
            "h": {"python": minor, "pypi": ["hostpkg"]},
            "nopy": {"python": "3.99", "pypi": ["hostpkg"], "archs": [host_arch()]},
        },
    )
    assert_ok(run_cli(ws, "resolve"))
    for env, arch, version in (("h", host_arch(), minor), ("h", other, minor),
                               ("nopy", host_arch(), "3.99")):  # fmt: skip
        lock = read_lock_json(ws, env, arch)
        assert lock["python"] == {"source": "host", "version": version}
        assert lock["spec"]["python_source"] == "host"
        assert [(p["kind"], p["name"]) for p in lock["packages"]] == [("pypi", "hostpkg")]
        assert_wheel(lock["packages"][0], idx, "hostpkg-1.0-py3-none-any.whl", "1.0")


def test_python_source_host_needs_no_channels(pypi_index, tmp_path, run_cli):
    idx = pypi_index({"hostpkg": ["1.0"]})
    minor = f"{sys.version_info[0]}.{sys.version_info[1]}"
    ws = write_manifest(
        tmp_path / "ws",
        {"archs": [host_arch()], "pypi-index": idx.url, "python-source": "host"},
        {"h": {"python": minor, "pypi": ["hostpkg"]}},
    )
    assert_ok(run_cli(ws, "resolve"))
    lock = read_lock_json(ws, "h", host_arch())
    assert lock["python"]["source"] == "host"
    assert [(p["kind"], p["name"]) for p in lock["packages"]] == [("pypi", "hostpkg")]


# --------------------------------------------------------------------------- 11. exports


def clean_pip_env(tmp_path: Path) -> dict[str, str]:
    """No pip configuration of this machine (PIP_* variables, pip.conf files) and no proxy."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PIP_", "UV_"))
        and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")
    }
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INPUT="1",
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    return env


def test_exports_install_and_validate(py_channel, pypi_index, tmp_path, run_cli):
    from packaging.pylock import Pylock

    idx = pypi_index(
        {
            "top": [("1.0", "wheel", None, ["native>=1"])],
            "native": [("1.0", "wheel", MANYLINUX), ("1.0", "wheel", MACOS)],
        }
    )
    ws = write_manifest(
        tmp_path / "ws",
        ws_settings(py_channel, idx, ["linux-64", "osx-arm64"]),
        {"app": {"python": "3.11", "pypi": ["top"]}},
    )
    assert_ok(run_cli(ws, "resolve"))
    req = tmp_path / "r.txt"
    assert_ok(run_cli(ws, "export", "app", "--arch", "linux-64", "--format", "requirements",
                      "-o", req))  # fmt: skip
    text = req.read_text()
    assert f"--index-url {idx.url}" in text.splitlines()
    assert f"--hash=sha256:{sha256_hex(idx.files[f'native-1.0-{MANYLINUX}.whl'])}" in text
    target = tmp_path / "T"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--require-hashes", "--no-deps", "--isolated",
         "--cache-dir", str(tmp_path / "pip-cache"), "--target", str(target), "-r", str(req)],
        capture_output=True, text=True, env=clean_pip_env(tmp_path), timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in target.glob("*.dist-info")) == [
        "native-1.0.dist-info",
        "top-1.0.dist-info",
    ]
    wheel_tag = (target / "native-1.0.dist-info" / "WHEEL").read_text()
    assert "Tag: cp311-cp311-manylinux_2_17_x86_64" in wheel_tag
    assert all(p.startswith(("/simple/", "/files/")) for p in idx.requests)

    for arch, native in (("linux-64", MANYLINUX), ("osx-arm64", MACOS)):
        out = tmp_path / f"pylock.{arch}.toml"
        assert_ok(run_cli(ws, "export", "app", "--arch", arch, "--format", "pylock", "-o", out))
        data = tomllib.loads(out.read_text())
        lock = Pylock.from_dict(data)
        assert [str(p.name) for p in lock.packages] == ["native", "top"]
        wheels = {str(p.name): p.wheels for p in lock.packages}
        assert [w.name for w in wheels["native"] or []] == [f"native-1.0-{native}.whl"]
        (native_wheel,) = wheels["native"] or []
        assert native_wheel.url == idx.file_url(f"native-1.0-{native}.whl")
        assert native_wheel.hashes == {"sha256": sha256_hex(idx.files[f"native-1.0-{native}.whl"])}
        assert str(lock.requires_python) == f"=={PY}"
        assert data["tool"]["envbuild"]["arch"] == arch


def test_requirements_export_with_relative_find_links_installs(
    py_channel, pypi_index, tmp_path, run_cli
):
    idx = pypi_index({"other": ["1.0"]})
    ws = write_manifest(
        tmp_path / "ws",
        ws_settings(py_channel, idx, ["linux-64"]),
        {"fl": {"python": "3.11", "file": "reqs/requirements.txt"}},
        {"reqs/requirements.txt": "--find-links wheels\nflpkg\n"},
    )
    make_wheel(ws / "reqs" / "wheels", "flpkg", "1.5", requires=["other"])
    assert_ok(run_cli(ws, "resolve"))
    req = tmp_path / "out" / "r.txt"
    req.parent.mkdir()
    assert_ok(run_cli(ws, "export", "fl", "--arch", "linux-64", "--format", "requirements",
                      "-o", req))  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--require-hashes", "--no-deps", "--isolated",
         "--target", str(tmp_path / "T"), "-r", str(req)],
        capture_output=True, text=True, env=clean_pip_env(tmp_path), cwd=tmp_path,
        timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr


# --------------------------------------------------------------------------- markers, dates


@pytest.mark.parametrize("resolver", ["uv", "pip"])
def test_dependency_markers_are_evaluated_for_the_target(
    resolver, py_channel, pypi_index, tmp_path, run_cli
):
    deps = ["macdep; sys_platform == 'darwin'", "lindep; sys_platform == 'linux'"]
    idx = pypi_index({"top": [("1.0", "wheel", None, deps)], "macdep": ["1.0"], "lindep": ["1.0"]})
    ws = write_manifest(
        tmp_path / "ws",
        ws_settings(py_channel, idx, ["linux-64", "osx-arm64"], **{"pypi-resolver": resolver}),
        {"m": {"python": "3.11", "pypi": ["top"]}},
    )
    assert_ok(run_cli(ws, "resolve"))
    assert sorted(pypi_pkgs(ws, "m", "linux-64")) == ["lindep", "top"]
    assert sorted(pypi_pkgs(ws, "m", "osx-arm64")) == ["macdep", "top"]


@pytest.mark.parametrize("resolver", ["uv", "pip"])
def test_exclude_newer(resolver, py_channel, pypi_index, tmp_path, run_cli):
    """``exclude-newer`` ignores files uploaded after it (PEP 700 upload-time, JSON API)."""
    from pypi_index import Dist

    idx = pypi_index(
        {
            "timed": [
                Dist("1.0", upload_time="2024-01-01T00:00:00Z"),
                Dist("2.0", upload_time="2024-06-01T00:00:00Z"),
            ]
        },
        json_api=True,
    )
    ws = write_manifest(
        tmp_path / "ws",
        ws_settings(py_channel, idx, ["linux-64"], **{"pypi-resolver": resolver}),
        {
            "old": {"python": "3.11", "pypi": ["timed"], "exclude-newer": "2024-03-01T00:00:00Z"},
            "new": {"python": "3.11", "pypi": ["timed"]},
        },
    )
    assert_ok(run_cli(ws, "resolve"))
    assert_wheel(
        pypi_pkgs(ws, "old", "linux-64")["timed"], idx, "timed-1.0-py3-none-any.whl", "1.0"
    )
    assert_wheel(
        pypi_pkgs(ws, "new", "linux-64")["timed"], idx, "timed-2.0-py3-none-any.whl", "2.0"
    )
    settings = read_lock_json(ws, "old", "linux-64")["spec"]["settings"]
    assert settings["exclude_newer"] == "2024-03-01T00:00:00Z"


# --------------------------------------------------------------------------- 12. determinism


def test_mixed_lock_is_byte_identical_after_forget(
    py_channel, mixed_index, sources, tmp_path, run_cli
):
    idx, repo, ws = mixed_index, sources["repo"], sources["ws"]
    write_manifest(
        ws,
        {
            "archs": ["linux-64", "osx-arm64"],
            "channels": [py_channel],
            "pypi-index": idx.url,
            "extra-indexes": [sources["idx"].url],
        },
        {
            "m": {
                "python": "3.11",
                "conda": ["six", "pip"],
                "pypi": ["needs-six", f"vcspkg @ {repo.url}@v0.1", "./localpkg"],
            }
        },
    )
    assert_ok(run_cli(ws, "resolve"))
    first = {a: (ws / "locks" / "m" / f"{a}.json").read_bytes() for a in ("linux-64", "osx-arm64")}
    again = run_cli(ws, "resolve", "--update")  # re-resolve from nothing
    assert_ok(again)
    assert ".  resolve:m@linux-64" in again.stdout  # really resolved again
    second = {a: (ws / "locks" / "m" / f"{a}.json").read_bytes() for a in ("linux-64", "osx-arm64")}
    assert first == second
    shutil.rmtree(ws / ".envbuild")
    shutil.rmtree(ws / "locks")
    assert_ok(run_cli(ws, "resolve"))
    third = {a: (ws / "locks" / "m" / f"{a}.json").read_bytes() for a in ("linux-64", "osx-arm64")}
    assert first == third
    pkgs = lock_packages(ws, "m", "linux-64")
    assert {(p["kind"], n) for n, p in pkgs.items()} == {
        ("conda", "python"), ("conda", "pip"), ("conda", "six"),
        ("pypi", "needs-six"), ("pypi", "vcspkg"), ("pypi", "localpkg"), ("pypi", "dep"),
    }  # fmt: skip


# --------------------------------------------------------------------------- config isolation


@pytest.mark.parametrize("resolver", ["uv", "pip"])
def test_user_pip_and_uv_config_does_not_leak(
    resolver, py_channel, pypi_index, tmp_path, run_cli, monkeypatch
):
    """PIP_* / UV_* variables and pip.conf files of the machine do not reach the resolvers:
    a find-links dir holding a newer version, an extra index, and --pre set through them are
    all ignored."""
    idx = pypi_index({"foo": ["1.0"]})
    decoy = pypi_index({"foo": ["5.0"]})
    links = tmp_path / "decoy-links"
    make_wheel(links, "foo", "9.0")
    make_wheel(links, "foo", "10.0rc1")
    conf = tmp_path / "pip.conf"
    conf.write_text(f"[global]\nfind-links = {links}\nextra-index-url = {decoy.url}\npre = true\n")
    for var, value in {
        "PIP_FIND_LINKS": str(links), "PIP_EXTRA_INDEX_URL": decoy.url, "PIP_PRE": "1",
        "PIP_INDEX_URL": decoy.url, "PIP_CONFIG_FILE": str(conf),
        "UV_FIND_LINKS": str(links), "UV_EXTRA_INDEX_URL": decoy.url, "UV_INDEX_URL": decoy.url,
        "UV_INDEX": decoy.url, "UV_DEFAULT_INDEX": decoy.url, "UV_PRERELEASE": "allow",
    }.items():  # fmt: skip
        monkeypatch.setenv(var, value)
    ws = write_manifest(
        tmp_path / "ws",
        ws_settings(py_channel, idx, ["linux-64"], **{"pypi-resolver": resolver}),
        {"app": {"python": "3.11", "pypi": ["foo"]}},
    )
    assert_ok(run_cli(ws, "resolve"))
    assert_wheel(pypi_pkgs(ws, "app", "linux-64")["foo"], idx, "foo-1.0-py3-none-any.whl", "1.0")
    assert decoy.requests == []
