"""Acceptance of the build stage (issue 8) through the real ``envbuild`` CLI: an sdist (on a
loopback PEP 503 index), a ``git+file://`` repo at a commit made here and a local directory
are each built exactly once across two envs and two archs (pure-Python wheels serve every
arch), and a platform wheel for a foreign arch is a clear error naming the runner needed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import tomli_w
from pypi_index import BACKEND_PY, make_git_repo, make_source_tree
from test_artifacts_e2e import assert_ok, locks_of, ran, reports, sha256_of
from test_resolve_pypi import CONDA_PY_DISTS, PYTHON

from envbuild.artifacts.build import BuildError, build_python
from envbuild.descriptor import Descriptor
from envbuild.platforms import host_arch
from envbuild.store import LocalStore

ARCHS = ["linux-64", "osx-arm64"]
BUILT = ("srconly", "vcspkg", "localpkg")
# the platform tag a wheel built here gets (the in-tree backend writes it as told)
HOST_TAGS = {
    "linux-64": "cp311-cp311-linux_x86_64",
    "linux-aarch64": "cp311-cp311-linux_aarch64",
    "osx-64": "cp311-cp311-macosx_10_13_x86_64",
    "osx-arm64": "cp311-cp311-macosx_11_0_arm64",
}


@pytest.fixture(scope="module")
def py311() -> str:
    """A host CPython 3.11 to build with (the in-tree backend needs tomllib)."""
    try:
        return build_python("3.11")
    except BuildError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def py_channel(make_channel) -> str:
    return str(make_channel([PYTHON, *CONDA_PY_DISTS], name="pychan").as_uri())


def write(ws: Path, workspace: dict[str, object], envs: dict[str, dict[str, object]]) -> Path:
    ws.mkdir(parents=True, exist_ok=True)
    text = tomli_w.dumps({"workspace": workspace, "env": envs})
    (ws / "envbuild.toml").write_text(text, encoding="utf-8")
    return ws


def built_counts(stderr_lines: list[str]) -> int:
    """Wheels built, from the ``built ENV@ARCH: N wheels`` report lines."""
    return sum(int(ln.rsplit(": ", 1)[1].split()[0]) for ln in stderr_lines)


@pytest.mark.slow
def test_each_source_builds_once_across_envs_and_archs(
    tmp_path, pypi_index, py_channel, py311, run_cli
):
    """Three sources (sdist, git commit, local directory) in two envs x two archs: three
    builds in all, three wheels in the store (one per source), and every descriptor names
    the same wheel key for a source. A runner with an empty cache that finds the store's
    wheels builds nothing."""
    idx = pypi_index({"srconly": [("3.0", "sdist", None, [])], "dep": ["1.0"]})
    repo = make_git_repo(tmp_path / "repo", "vcspkg", "0.1", [], tag="v0.1")
    ws = tmp_path / "ws"
    make_source_tree(ws / "localpkg", "localpkg", "4.0", [])
    reqs = ["srconly", f"vcspkg @ {repo.url}@v0.1", "./localpkg"]
    write(
        ws,
        {"archs": ARCHS, "channels": [py_channel], "pypi-index": idx.url},
        {
            "one": {"python": "3.11", "pypi": reqs},
            "two": {"python": "3.11", "pypi": [*reqs, "dep"]},
        },
    )
    result = run_cli(ws)
    assert_ok(result)
    locks = locks_of(ws)
    assert sorted(locks) == ["one@linux-64", "one@osx-arm64", "two@linux-64", "two@osx-arm64"]
    assert built_counts(reports(result, "built")) == 3, result.stderr
    store = LocalStore(ws / ".envbuild" / "store")
    wheels = store.list("wheels/")
    assert len(wheels) == 3, wheels
    assert len({key.split("/")[2] for key in wheels}) == 3  # one per source key
    assert all(key.endswith("-py3-none-any.whl") for key in wheels)
    keys: dict[str, set[str]] = {name: set() for name in BUILT}
    for lock in locks.values():
        env = lock.env_id
        key = f"envs/{env.arch}/{env.req_id}/{env.full_id}"
        files = {f.name: f for f in Descriptor.loads(store.get_bytes(key), key).files}
        for pkg in BUILT:
            file = files[pkg]
            assert file.key in wheels
            assert sha256_of(store.get_bytes(file.key)) == file.sha256
            keys[pkg].add(file.key)
    assert all(len(found) == 1 for found in keys.values()), keys

    # another machine: the same locks and store, no cache, no descriptors yet (say, they
    # were not uploaded): the wheels are found by their source identity, not built again
    shutil.rmtree(ws / ".envbuild" / "pkgs")
    shutil.rmtree(ws / ".envbuild" / "store" / "envs")
    again = run_cli(ws, "build")
    assert_ok(again)
    assert reports(again, "built") == []
    assert ran(again, "build:") == set()
    assert store.list("wheels/") == wheels


@pytest.mark.slow
def test_platform_wheel_for_a_foreign_arch_names_the_runner_needed(
    tmp_path, pypi_index, py_channel, py311, run_cli
):
    """A local project whose backend makes a platform wheel: built for this host's arch,
    and for the other arch a one-line error naming the arch of runner that can build it."""
    host = host_arch()
    foreign = "osx-arm64" if host != "osx-arm64" else "linux-64"
    idx = pypi_index({"dep": ["1.0"]})
    ws = tmp_path / "ws"
    tree = make_source_tree(ws / "platpkg", "platpkg", "1.0", [])
    backend = BACKEND_PY.replace("py3-none-any", HOST_TAGS[host]).replace(
        "Root-Is-Purelib: true", "Root-Is-Purelib: false"
    )
    assert backend != BACKEND_PY
    (tree / "backend.py").write_text(backend, encoding="utf-8")
    write(
        ws,
        {"archs": [host, foreign], "channels": [py_channel], "pypi-index": idx.url},
        {"plat": {"python": "3.11", "pypi": ["./platpkg"]}},
    )
    assert_ok(run_cli(ws, "resolve"))
    ok = run_cli(ws, "build", f"arch={host}")
    assert_ok(ok)
    assert reports(ok, "built") == [f"built plat@{host}: 1 wheels"]
    wheel = f"platpkg-1.0-{HOST_TAGS[host]}.whl"

    result = run_cli(ws, "build", f"arch={foreign}")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert [ln for ln in result.stderr.splitlines() if ln.startswith("envbuild: error:")] == [
        f"envbuild: error: build plat@{foreign}: platpkg 1.0 builds a platform wheel ({wheel}), "
        f"which does not fit {foreign}: build it on an {foreign} machine with "
        f"`envbuild build arch={foreign}`; the wheel it uploads is then found by everyone"
    ]
