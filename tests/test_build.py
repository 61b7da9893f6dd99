"""envbuild.artifacts.build: source keys, wheel choice per target, real `uv build` runs of
sdists, archives, directories and git commits (offline: the in-tree test backend), and the
errors of a failed build, a foreign-arch platform wheel and a missing interpreter."""

from __future__ import annotations

import dataclasses
import subprocess
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pypi_index import (
    BACKEND_PY,
    git_commit,
    make_git_repo,
    make_sdist,
    make_source_tree,
    module_name,
    sha256_hex,
    source_tree_files,
)

from envbuild.artifacts.build import (
    BuildError,
    ForeignPlatformError,
    build_environment,
    build_python,
    build_wheel,
    check_buildable,
    check_wheel,
    pick_wheel,
    source_key,
)
from envbuild.fs import tree_hash
from envbuild.lock import Source
from envbuild.platforms import virtual_packages
from envbuild.runner import run

OFFLINE = ("--offline",)


@pytest.fixture(scope="module")
def py311() -> str:
    """A host CPython 3.11 (the in-tree backend needs tomllib)."""
    try:
        return build_python("3.11")
    except BuildError as exc:
        pytest.skip(str(exc))


class SpyRunner:
    """The real runner, recording commands and checking that no wheel shows up in
    ``out_dir`` while uv runs (it lands there only by the final rename)."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.cmds: list[list[str]] = []

    def __call__(self, cmd: Sequence[str], **kwargs: Any) -> Any:
        self.cmds.append([str(c) for c in cmd])
        proc = run(cmd, **kwargs)
        assert not list(self.out_dir.glob("*.whl"))
        return proc


def _wheel_members(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as zf:
        return sorted(zf.namelist())


# --------------------------------------------------------------------------- source_key

_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=20)
_hex = st.text("0123456789abcdef", min_size=0, max_size=64)
sources = st.builds(
    Source,
    kind=st.sampled_from(["sdist", "vcs", "directory", "archive"]),
    url=_text,
    path=_text,
    vcs=st.sampled_from(["", "git", "hg"]),
    commit=_hex,
    subdirectory=_text,
    sha256=_hex,
)
_FIELDS = ("kind", "url", "path", "vcs", "commit", "subdirectory", "sha256")


@settings(max_examples=200, deadline=None)
@given(sources)
def test_source_key_is_stable(source: Source) -> None:
    key = source_key(source)
    assert len(key) == 64 and set(key) <= set("0123456789abcdef")
    assert source_key(dataclasses.replace(source)) == key
    assert source_key(Source.from_dict(source.to_dict())) == key


@settings(max_examples=200, deadline=None)
@given(sources, st.sampled_from(_FIELDS), st.data())
def test_source_key_changes_with_every_field(source: Source, field: str, data: Any) -> None:
    old = getattr(source, field)
    if field == "kind":
        new = data.draw(st.sampled_from([k for k in ("sdist", "vcs", "directory", "archive") if k != old]))  # fmt: skip
    elif field in ("commit", "sha256"):
        new = data.draw(_hex.filter(lambda v: v != old.lower()))
    else:
        new = data.draw(_text.filter(lambda v: v != old))
        if field == "url" and ("@" in new + old or "/t/" in new + old):
            return  # credentials are not part of a key (next test)
    assert source_key(dataclasses.replace(source, **{field: new})) != source_key(source)


def test_source_key_values() -> None:
    sdist = Source("sdist", url="https://files.example/p/mypkg-1.0.tar.gz", sha256="ab" * 32)
    # pinned: a key that changes orphans every wheel already in every store
    assert source_key(sdist) == "ed789dfa2152cc0a77cbeb842610f4346a8ca3158f1649ca5e1fc03bea65ae9c"
    with_login = dataclasses.replace(sdist, url="https://user:s3cret@files.example/p/mypkg-1.0.tar.gz")  # fmt: skip
    assert source_key(with_login) == source_key(sdist)
    assert source_key(dataclasses.replace(sdist, sha256="AB" * 32)) == source_key(sdist)
    assert source_key(Source("archive", url="https://[broken/x.zip")) != source_key(sdist)
    git = Source("vcs", url="https://git.example/r.git", vcs="git", commit="1" * 40)
    assert source_key(dataclasses.replace(git, commit="2" * 40)) != source_key(git)
    assert source_key(dataclasses.replace(git, subdirectory="sub")) != source_key(git)


# --------------------------------------------------------------------------- pick_wheel

W_LINUX_311 = "a-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
W_LINUX_312 = "a-1.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
W_LINUX_228 = "a-1.0-cp311-cp311-manylinux_2_28_x86_64.whl"
W_LINUX_RAW = "a-1.0-cp311-cp311-linux_x86_64.whl"
W_ABI3 = "a-1.0-cp38-abi3-manylinux_2_17_x86_64.whl"
W_MAC_11 = "a-1.0-cp311-cp311-macosx_11_0_arm64.whl"
W_MAC_13 = "a-1.0-cp311-cp311-macosx_13_0_arm64.whl"
W_MAC_U2 = "a-1.0-cp311-cp311-macosx_10_9_universal2.whl"
W_PURE = "a-1.0-py3-none-any.whl"
W_PY2 = "a-1.0-py2-none-any.whl"
ALL = [W_PURE, W_LINUX_311, W_LINUX_312, W_ABI3, W_MAC_11, W_MAC_U2, "a-1.0.tar.gz"]


@pytest.mark.parametrize(
    ("filenames", "arch", "python", "overrides", "expected"),
    [
        (ALL, "linux-64", "3.11", {}, W_LINUX_311),
        (ALL, "linux-64", "3.11.7", {}, W_LINUX_311),
        (ALL, "linux-64", "3.12", {}, W_LINUX_312),
        (ALL, "linux-64", "3.13", {}, W_ABI3),
        (ALL, "osx-arm64", "3.11", {}, W_MAC_11),
        (ALL, "osx-64", "3.11", {}, W_MAC_U2),
        (ALL, "linux-aarch64", "3.11", {}, W_PURE),
        (ALL, "osx-arm64", "3.12", {}, W_PURE),
        ([W_PURE, W_ABI3], "linux-64", "3.11", {}, W_ABI3),
        ([W_PURE, W_LINUX_RAW], "linux-64", "3.11", {}, W_LINUX_RAW),
        ([W_LINUX_RAW], "linux-64", "3.11", {}, W_LINUX_RAW),
        ([W_LINUX_RAW], "osx-arm64", "3.11", {}, None),
        ([W_LINUX_312], "linux-64", "3.11", {}, None),
        ([W_LINUX_311], "linux-64", "3.12", {}, None),
        ([W_LINUX_228], "linux-64", "3.11", {"__glibc": "2.17"}, None),
        ([W_LINUX_228, W_LINUX_311], "linux-64", "3.11", {"__glibc": "2.17"}, W_LINUX_311),
        ([W_LINUX_228, W_LINUX_311], "linux-64", "3.11", {}, W_LINUX_228),  # default 2.28
        ([W_MAC_13], "osx-arm64", "3.11", {"__osx": "11.0"}, None),
        ([W_MAC_13, W_MAC_11], "osx-arm64", "3.11", {}, W_MAC_13),  # default 13.0
        ([W_PY2], "linux-64", "3.11", {}, None),
        ([], "linux-64", "3.11", {}, None),
        (["not-a-wheel.whl", "a-1.0.tar.gz"], "linux-64", "3.11", {}, None),
    ],
)
def test_pick_wheel(
    filenames: list[str], arch: str, python: str, overrides: dict[str, str], expected: str | None
) -> None:
    vps = virtual_packages(arch, overrides)
    assert pick_wheel(filenames, arch, python, vps) == expected
    assert pick_wheel(reversed(filenames), arch, python, vps) == expected


def test_pick_wheel_pure_serves_every_arch() -> None:
    for arch in ("linux-64", "linux-aarch64", "osx-64", "osx-arm64"):
        assert pick_wheel([W_PURE], arch, "3.11", virtual_packages(arch, {})) == W_PURE


def test_pick_wheel_ties_go_to_the_smaller_filename() -> None:
    twins = ["b-1.0-py3-none-any.whl", "a-1.0-py3-none-any.whl"]
    assert pick_wheel(twins, "linux-64", "3.11", virtual_packages("linux-64", {})) == twins[1]


def test_build_environment() -> None:
    assert build_environment("osx-arm64", virtual_packages("osx-arm64", {})) == {
        "MACOSX_DEPLOYMENT_TARGET": "13.0"
    }
    assert build_environment("osx-64", virtual_packages("osx-64", {"__osx": "12.3"})) == {
        "MACOSX_DEPLOYMENT_TARGET": "12.3"
    }
    assert build_environment("linux-64", virtual_packages("linux-64", {})) == {}


# --------------------------------------------------------------------------- foreign arch

FOREIGN = (
    "mypkg 1.0 builds a platform wheel (mypkg-1.0-cp311-cp311-linux_x86_64.whl), which does "
    "not fit osx-arm64: build it on an osx-arm64 machine with `envbuild build arch=osx-arm64`; "
    "the wheel it uploads is then found by everyone"
)


def test_check_buildable_before_building() -> None:
    known = ["mypkg-1.0-cp311-cp311-linux_x86_64.whl", "mypkg-1.0-cp312-cp312-linux_x86_64.whl"]
    with pytest.raises(ForeignPlatformError) as err:
        check_buildable("mypkg", "1.0", known, arch="osx-arm64", host_arch="linux-64")
    assert str(err.value) == FOREIGN
    check_buildable("mypkg", "1.0", known, arch="linux-64", host_arch="linux-64")  # build here
    check_buildable("mypkg", "1.0", [], arch="osx-arm64", host_arch="linux-64")  # unknown: build
    pure = ["mypkg-1.0-py2-none-any.whl"]  # a pure wheel says nothing of this host's build
    check_buildable("mypkg", "1.0", pure, arch="osx-arm64", host_arch="linux-64")


def test_check_buildable_for_win64_says_envbuild_does_not_build_there() -> None:
    known = ["mypkg-1.0-cp311-cp311-linux_x86_64.whl"]
    with pytest.raises(ForeignPlatformError) as err:
        check_buildable("mypkg", "1.0", known, arch="win-64", host_arch="linux-64")
    assert str(err.value) == (
        "mypkg 1.0 builds a platform wheel (mypkg-1.0-cp311-cp311-linux_x86_64.whl), which does "
        "not fit win-64, and envbuild does not build on Windows: publish a win-64 wheel of it "
        "on an index (or find-links) the env uses and resolve again"
    )


def test_check_wheel_other_python() -> None:
    vps = virtual_packages("linux-64", {})
    with pytest.raises(BuildError) as err:
        check_wheel("mypkg", "1.0", "mypkg-1.0-cp312-cp312-linux_x86_64.whl", arch="linux-64",
                    python_version="3.11.4", virtual_packages=vps, host_arch="linux-64")  # fmt: skip
    assert type(err.value) is BuildError
    assert str(err.value) == (
        "mypkg 1.0 built a wheel (mypkg-1.0-cp312-cp312-linux_x86_64.whl) that python 3.11 on "
        "linux-64 does not accept: was it built with a python other than 3.11?"
    )


def _tree_with_backend(directory: Path, name: str, version: str, edit: Mapping[str, str]) -> Path:
    """A source tree whose in-tree backend has the replacements ``edit`` applied."""
    make_source_tree(directory, name, version)
    backend = BACKEND_PY
    for old, new in edit.items():
        assert old in backend
        backend = backend.replace(old, new)
    (directory / "backend.py").write_text(backend, encoding="utf-8")
    return directory


@pytest.mark.slow
def test_foreign_arch_platform_wheel(tmp_path: Path, py311: str) -> None:
    tree = _tree_with_backend(
        tmp_path / "ws" / "mypkg", "mypkg", "1.0",
        {"py3-none-any": "cp311-cp311-linux_x86_64", "Root-Is-Purelib: true": "Root-Is-Purelib: false"},
    )  # fmt: skip
    source = Source("directory", path="mypkg", sha256=tree_hash(tree))
    wheel = build_wheel(source, root=tmp_path / "ws", sdist=None, out_dir=tmp_path / "out",
                        python=py311, name="mypkg", version="1.0", uv_args=OFFLINE)  # fmt: skip
    assert wheel.name == "mypkg-1.0-cp311-cp311-linux_x86_64.whl"

    def check(arch: str, host: str) -> None:
        vps = virtual_packages(arch, {})
        check_wheel("mypkg", "1.0", wheel.name, arch=arch, python_version="3.11.7",
                    virtual_packages=vps, host_arch=host)  # fmt: skip

    check("linux-64", "linux-64")  # fits: no error
    with pytest.raises(ForeignPlatformError) as err:
        check("osx-arm64", "linux-64")
    assert str(err.value) == FOREIGN
    # the next run knows from the wheel listed in the store, before building
    with pytest.raises(ForeignPlatformError) as err:
        check_buildable("mypkg", "1.0", [wheel.name], arch="osx-arm64", host_arch="linux-64")
    assert str(err.value) == FOREIGN


# --------------------------------------------------------------------------- building


def _make_source(kind: str, tmp: Path) -> tuple[Source, Path, Path | None, str, str]:
    """(source, workspace root, sdist, expected wheel filename, module) for each kind."""
    root = tmp / "ws"
    root.mkdir()
    if kind in ("sdist", "remote-archive"):
        sdist = make_sdist(tmp / "cache", "My.Pkg", "1.0")
        src_kind = "sdist" if kind == "sdist" else "archive"
        url = f"https://files.example/p/{sdist.name}"
        source = Source(src_kind, url=url, sha256=sha256_hex(sdist))  # type: ignore[arg-type]
        return source, root, sdist, "my_pkg-1.0-py3-none-any.whl", "my_pkg"
    if kind == "local-archive":
        sdist = make_sdist(root / "vendor", "archpkg", "0.5")
        source = Source("archive", path=f"vendor/{sdist.name}", sha256=sha256_hex(sdist))
        return source, root, None, "archpkg-0.5-py3-none-any.whl", "archpkg"
    if kind == "directory":
        tree = make_source_tree(root / "src" / "dirpkg", "dirpkg", "3.0")
        source = Source("directory", path="src/dirpkg", sha256=tree_hash(tree))
        return source, root, None, "dirpkg-3.0-py3-none-any.whl", "dirpkg"
    assert kind == "git"
    repo = make_git_repo(tmp / "repo", "gitpkg", "2.0")
    git_commit(tmp / "repo", version="2.1")  # HEAD moves on: the build must use the lock's commit
    source = Source("vcs", url=repo.url.removeprefix("git+"), vcs="git", commit=repo.commit)
    return source, root, None, "gitpkg-2.0-py3-none-any.whl", "gitpkg"


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sdist", "remote-archive", "local-archive", "directory", "git"])
def test_build_each_kind(kind: str, tmp_path: Path, py311: str) -> None:
    source, root, sdist, expected, module = _make_source(kind, tmp_path)
    out = tmp_path / "out" / "wheels"
    spy = SpyRunner(out)
    name, version = expected.split("-")[:2]
    before = tree_hash(root / source.path) if kind == "directory" else ""
    wheel = build_wheel(source, root=root, sdist=sdist, out_dir=out, python=py311, runner=spy,
                        name=name, version=version, uv_args=OFFLINE)  # fmt: skip
    assert wheel == out / expected
    assert sorted(p.name for p in out.iterdir()) == [expected]  # no temp dir left behind
    assert f"{module}/__init__.py" in _wheel_members(wheel)
    uv_cmds = [c for c in spy.cmds if c[1:2] == ["build"]]
    assert len(uv_cmds) == 1
    assert {"--wheel", "--no-config", "--no-python-downloads"} <= set(uv_cmds[0])
    assert uv_cmds[0][uv_cmds[0].index("--python") + 1] == py311
    if kind == "git":
        assert [c[1] for c in spy.cmds[:2]] == ["clone", "-C"]
    if kind == "directory":
        assert tree_hash(root / source.path) == before
    vps = virtual_packages("osx-arm64", {})  # a pure wheel fits any target
    check_wheel(name, version, wheel.name, arch="osx-arm64", python_version="3.12",
                virtual_packages=vps, host_arch="linux-64")  # fmt: skip


@pytest.mark.slow
def test_build_git_subdirectory(tmp_path: Path, py311: str) -> None:
    repo = make_git_repo(tmp_path / "mono", "rootpkg", "1.0")
    sub = {f"pkgs/sub/{rel}": data for rel, data in source_tree_files("subpkg", "0.3").items()}
    commit = git_commit(tmp_path / "mono", files=sub)
    git_commit(tmp_path / "mono", files={"pkgs/sub/pyproject.toml": "broken ["})
    source = Source("vcs", url=repo.url.removeprefix("git+"), vcs="git", commit=commit,
                    subdirectory="pkgs/sub")  # fmt: skip
    wheel = build_wheel(source, root=tmp_path, sdist=None, out_dir=tmp_path / "out",
                        python=py311, name="subpkg", version="0.3", uv_args=OFFLINE)  # fmt: skip
    assert wheel.name == "subpkg-0.3-py3-none-any.whl"
    assert f"{module_name('subpkg')}/__init__.py" in _wheel_members(wheel)

    missing = dataclasses.replace(source, subdirectory="pkgs/nope")
    with pytest.raises(BuildError) as err:
        build_wheel(missing, root=tmp_path, sdist=None, out_dir=tmp_path / "out2", python=py311)
    assert str(err.value) == (
        f"{missing.identity}: {source.url} at {commit} has no subdirectory 'pkgs/nope'"
    )


@pytest.mark.slow
def test_failed_build_shows_the_log_tail(tmp_path: Path, py311: str) -> None:
    failing = (
        "    import sys\n"
        "    for i in range(40):\n"
        "        print('log line %d' % i, file=sys.stderr)\n"
        "    raise RuntimeError('boom: see https://user:s3cret@git.example/private')\n"
    )
    header = "def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):\n"
    tree = _tree_with_backend(tmp_path / "ws" / "failpkg", "failpkg", "1.0", {header: header + failing})  # fmt: skip
    source = Source("directory", path="failpkg", sha256=tree_hash(tree))
    out = tmp_path / "out"
    with pytest.raises(BuildError) as err:
        build_wheel(source, root=tmp_path / "ws", sdist=None, out_dir=out, python=py311,
                    name="failpkg", version="1.0", uv_args=OFFLINE)  # fmt: skip
    message = str(err.value)
    lines = message.splitlines()
    assert lines[0] == "building failpkg 1.0 failed (uv build exit 2); the end of its build log:"
    assert len(lines) == 1 + 30
    assert err.value.log_tail == "\n".join(lines[1:])
    assert "log line 39" in message and "RuntimeError: boom" in message
    assert "log line 1\n" not in message  # only the tail
    assert "s3cret" not in message and "https://git.example/private" in message
    assert list(out.iterdir()) == []  # no wheel, no temp dir


def test_missing_sdist_and_changed_sources(tmp_path: Path) -> None:
    sdist_source = Source("sdist", url="https://files.example/p/x-1.0.tar.gz", sha256="0" * 64)
    with pytest.raises(BuildError) as err:
        build_wheel(sdist_source, root=tmp_path, sdist=None, out_dir=tmp_path / "o", python="py",
                    name="x", version="1.0", uv="uv")  # fmt: skip
    assert str(err.value) == "x 1.0: no local copy of https://files.example/p/x-1.0.tar.gz was given to build from"  # fmt: skip

    tree = make_source_tree(tmp_path / "t", "t", "1.0")
    changed = Source("directory", path="t", sha256="0" * 64)
    with pytest.raises(BuildError) as err:
        build_wheel(changed, root=tmp_path, sdist=None, out_dir=tmp_path / "o", python="py",
                    name="t", version="1.0", uv="uv")  # fmt: skip
    assert str(err.value) == (
        f"t 1.0: t has changed since the lock was made (sha256 {tree_hash(tree)}, the lock says "
        f"{'0' * 64}): run `envbuild resolve`"
    )

    hg = Source("vcs", url="https://hg.example/r", vcs="hg", commit="abc")
    with pytest.raises(BuildError, match=r"^r 1: cannot build from hg VCS \(only git\)$"):
        build_wheel(hg, root=tmp_path, sdist=None, out_dir=tmp_path / "o", python="py",
                    name="r", version="1", uv="uv")  # fmt: skip


@pytest.mark.parametrize(
    ("made", "expected"),
    [
        ([], "building x 1.0 gave 0 wheels (none), not one"),
        (
            ["x-1.0-py3-none-any.whl", "x-1.0-cp311-cp311-linux_x86_64.whl"],
            "building x 1.0 gave 2 wheels (x-1.0-cp311-cp311-linux_x86_64.whl, "
            "x-1.0-py3-none-any.whl), not one",
        ),
        (
            ["y-1.0-py3-none-any.whl"],
            "building x 1.0 gave a wheel of another project: y-1.0-py3-none-any.whl",
        ),
        (
            ["x-1.1-py3-none-any.whl"],
            "building x 1.0 gave version 1.1 (x-1.1-py3-none-any.whl), not the lock's 1.0: its "
            "version is not reproducible from the source; re-resolve",
        ),
    ],
)
def test_exactly_one_wheel_of_the_locked_package(
    tmp_path: Path, made: list[str], expected: str
) -> None:
    make_source_tree(tmp_path / "x", "x", "1.0")

    def fake_uv(cmd: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        out = Path(cmd[list(cmd).index("--out-dir") + 1])
        out.mkdir(parents=True)
        for name in made:
            (out / name).write_bytes(b"")
        return subprocess.CompletedProcess(list(cmd), 0, "", "")

    source = Source("directory", path="x")
    with pytest.raises(BuildError) as err:
        build_wheel(source, root=tmp_path, sdist=None, out_dir=tmp_path / "o", python="py",
                    runner=fake_uv, name="x", version="1.0", uv="uv")  # fmt: skip
    assert str(err.value) == expected
    assert list((tmp_path / "o").iterdir()) == []


def test_build_python_missing() -> None:
    def none(spec: str) -> tuple[str, str]:
        assert spec == "3.9.*"
        raise LookupError(spec)

    with pytest.raises(BuildError) as err:
        build_python("3.9.18", package="mypkg 1.0", finder=none)
    assert str(err.value) == (
        "building mypkg 1.0 needs python 3.9 on this machine, and none was found on PATH or "
        "among pyenv's versions: install python 3.9 (e.g. `pyenv install 3.9`), or build on a "
        "machine that has it"
    )
    assert build_python("3.12", finder=lambda s: ("/x/python3.12", "3.12.1")) == "/x/python3.12"
