"""Requirement files as projects write them: ``-r`` / ``-c`` includes, ``--hash`` and
``--require-hashes``, a UTF-8 BOM, ``.in`` files, continuations and the ``-e`` message.

Parser tests read files from ``tmp_path``; resolution tests run the real CLI against a
loopback PyPI index (``pypi_index``) with python from a local conda channel.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from conftest import lock_packages, read_lock_json
from pypi_index import sha256_hex

from envbuild.errors import SpecError
from envbuild.parsers import Dep, ParsedSpec
from envbuild.parsers.requirements import parse_requirements
from envbuild.spec import EnvSpec

HASH_A = "a" * 64
PY = "3.11.9"
ALL_ARCHS = ["linux-64", "linux-aarch64", "osx-64", "osx-arm64"]


def write_files(root: Path, files: dict[str, str]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")


def parse(root: Path, rel: str) -> ParsedSpec:
    return parse_requirements((root / rel).read_text(encoding="utf-8"), rel, root)


def problems(root: Path, rel: str) -> tuple[str, ...]:
    with pytest.raises(SpecError) as info:
        parse(root, rel)
    return info.value.problems


# --------------------------------------------------------------------------- -r


def test_requirement_files_are_included_relative_to_the_naming_file(tmp_path: Path) -> None:
    write_files(
        tmp_path,
        {
            "reqs/main.txt": "-r sub/more.txt\nfoo\n--requirement=../common.txt\n",
            "reqs/sub/more.txt": "bar>=1\n./local\n--find-links wheels\n--requirement deep/x.txt\n",
            "reqs/sub/deep/x.txt": "../../vendored\n",
            "common.txt": "baz\n",
            "reqs/sub/local/setup.py": "",
            "reqs/vendored/pyproject.toml": "",
        },
    )
    assert parse(tmp_path, "reqs/main.txt") == ParsedSpec(
        pypi=(Dep("bar>=1"), Dep("./sub/local"), Dep("./vendored"), Dep("foo"), Dep("baz")),
        find_links=("./sub/wheels",),
        files=("reqs/sub/more.txt", "reqs/sub/deep/x.txt", "common.txt"),
    )


def test_include_cycle_is_refused(tmp_path: Path) -> None:
    write_files(tmp_path, {"a.txt": "x\ny\n-r b.txt\n", "b.txt": "z\n-r a.txt\n"})
    assert problems(tmp_path, "a.txt") == (
        "a.txt:3: -r b.txt: includes itself through b.txt -> a.txt",
    )


def test_file_including_itself_is_refused(tmp_path: Path) -> None:
    write_files(tmp_path, {"sub/a.txt": "-r ./a.txt\n"})
    assert problems(tmp_path, "sub/a.txt") == (
        "sub/a.txt:1: -r ./a.txt: includes itself through sub/a.txt",
    )


def test_missing_included_file_is_refused(tmp_path: Path) -> None:
    write_files(tmp_path, {"sub/a.txt": "foo\n-r nope.txt\n", "sub/b.txt": "-r a.txt\n"})
    expected = "sub/a.txt:2: -r nope.txt: 'sub/nope.txt' does not exist: create it or fix the path"
    assert problems(tmp_path, "sub/a.txt") == (expected,)
    assert problems(tmp_path, "sub/b.txt") == (expected,)


def test_problems_of_included_files_name_that_file(tmp_path: Path) -> None:
    write_files(tmp_path, {"a.txt": "-r b.txt\n", "b.txt": "ok\nnot valid!\n"})
    (problem,) = problems(tmp_path, "a.txt")
    assert problem.startswith("b.txt:2: 'not valid!' is not a valid requirement: ")


# --------------------------------------------------------------------------- -c


def test_constraints_are_kept_apart(tmp_path: Path) -> None:
    write_files(
        tmp_path,
        {
            "reqs/r.txt": "-c c/constraints.txt\nfoo\n",
            "reqs/c/constraints.txt": "Pkg<2\n-r more.txt\nfoo>=1 ; os_name=='nt'\n",
            "reqs/c/more.txt": "other==1.0\n",
        },
    )
    assert parse(tmp_path, "reqs/r.txt") == ParsedSpec(
        pypi=(Dep("foo"),),
        constraints=("pkg<2", "other==1.0", 'foo>=1; os_name == "nt"'),
        files=("reqs/c/constraints.txt", "reqs/c/more.txt"),
    )


def test_bad_constraints_are_refused(tmp_path: Path) -> None:
    write_files(
        tmp_path,
        {
            "r.txt": "--constraint c.txt\n",
            "c.txt": f"./local\nfoo[x]<2\npython<3.12\nbar==1 --hash=sha256:{HASH_A}\n",
        },
    )
    got = problems(tmp_path, "r.txt")
    assert got[0].startswith("c.txt:1: './local' is not a valid constraint (a named requirement)")
    assert got[1:] == (
        "c.txt:2: 'foo[x]<2' is not a valid constraint: constraints take no extras",
        "c.txt:3: 'python<3.12' is not a valid constraint: python comes from conda; set python "
        "in envbuild.toml instead",
        f"c.txt:4: 'bar==1 --hash=sha256:{HASH_A}': --hash is not supported in a constraints file",
    )


# --------------------------------------------------------------------------- --hash


def test_hashes_and_require_hashes(tmp_path: Path) -> None:
    write_files(
        tmp_path,
        {
            "r.txt": f"--require-hashes\nfoo==1.0 \\\n  --hash=sha256:{HASH_A}\n-r more.txt\n",
            "more.txt": "bar==2.0\nbaz @ https://x/baz-1.0.tar.gz\n",
        },
    )
    assert problems(tmp_path, "r.txt") == (
        "more.txt:1: 'bar==2.0' has no --hash, and --require-hashes asks every requirement to "
        "carry one",
        "more.txt:2: 'baz @ https://x/baz-1.0.tar.gz' has no --hash, and --require-hashes asks "
        "every requirement to carry one",
    )
    write_files(tmp_path, {"more.txt": f"bar==2.0 --hash=sha256:{'b' * 64}\n"})
    assert parse(tmp_path, "r.txt") == ParsedSpec(
        pypi=(Dep("foo==1.0"), Dep("bar==2.0")),
        hashes=(("bar", f"sha256:{'b' * 64}"), ("foo", f"sha256:{HASH_A}")),
        hash_origins=(("bar", "more.txt:1"), ("foo", "r.txt:2")),
        files=("more.txt",),
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "foo==1 --hash=md5:abcd",
            "'foo==1 --hash=md5:abcd': '--hash=md5:abcd' is not a sha256 hash "
            "(sha256:<64 hex digits>): only sha256 can be checked against the lock",
        ),
        (
            "foo==1 --hash=sha256:abcd",
            "'foo==1 --hash=sha256:abcd': '--hash=sha256:abcd' is not a sha256 hash "
            "(sha256:<64 hex digits>): only sha256 can be checked against the lock",
        ),
        (
            f"./foo.whl --hash=sha256:{HASH_A}",
            f"'./foo.whl --hash=sha256:{HASH_A}': --hash needs a named requirement, like "
            "'name @ ./foo.whl', to find the locked file it applies to",
        ),
    ],
)
def test_bad_hashes_are_refused(line: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_requirements(f"ok\n{line}\n", "r.txt")
    assert info.value.problems == (f"r.txt:2: {message}",)


# --------------------------------------------------------------------------- BOM, continuations


def test_bom_and_continuations(tmp_path: Path) -> None:
    write_files(
        tmp_path,
        {
            "r.txt": "\ufefffoo>=1 \\\n  ,<2\n-r \\\n  b.txt\n--extra-index-url \\\n https://x/simple\n",
            "b.txt": "\ufeff# comment\nbar\n",
        },
    )
    assert parse(tmp_path, "r.txt") == ParsedSpec(
        pypi=(Dep("foo<2,>=1"), Dep("bar")),
        extra_indexes=("https://x/simple",),
        files=("b.txt",),
    )


def test_editable_message_says_what_to_write(tmp_path: Path) -> None:
    write_files(tmp_path, {"envs/r.txt": "ok\n-e ./pkg\n"})
    assert problems(tmp_path, "envs/r.txt") == (
        "envs/r.txt:2: '-e ./pkg': editable installs are not supported: write 'pkg @ ./pkg' "
        "or just './pkg'",
    )


# --------------------------------------------------------------------------- EnvSpec


def test_env_spec_fields_round_trip_and_old_dicts_load() -> None:
    base = EnvSpec(name="e", archs=("linux-64",), channels=())
    spec = EnvSpec(
        name="e",
        archs=("linux-64",),
        channels=(),
        pypi_constraints=("b<2", "a<1", "b<2"),
        pypi_hashes=(("foo", f"sha256:{HASH_A}"),),
    ).normalised()
    assert spec.pypi_constraints == ("a<1", "b<2")
    assert EnvSpec.from_dict(spec.to_dict()) == spec
    old = base.to_dict()
    assert "pypi_constraints" not in old and "pypi_hashes" not in old
    assert EnvSpec.from_dict(old) == base
    assert spec.req_categories()["pypi"] == [
        "constraint:a<1",
        "constraint:b<2",
        f"hash:foo sha256:{HASH_A}",
    ]
    assert spec.req_id != base.req_id


# --------------------------------------------------------------------------- resolution


@pytest.fixture(scope="module")
def py_channel(make_channel: Any) -> str:
    python = {"name": "python", "version": PY, "build": "0", "subdirs": ALL_ARCHS}
    return str(make_channel([python], name="pychan-files").as_uri())


def workspace(
    root: Path, py_channel: str, index_url: str, env: dict[str, Any], files: dict[str, str]
) -> Path:
    settings = {"archs": ["linux-64"], "channels": [py_channel], "pypi-index": index_url}
    write_files(root, files)
    text = tomli_w.dumps({"workspace": settings, "env": {"web": {"python": "3.11", **env}}})
    (root / "envbuild.toml").write_text(text, encoding="utf-8")
    return root


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result


@pytest.mark.parametrize("resolver", ["uv", "pip"])
def test_constraint_file_reaches_the_resolver(
    resolver: str, py_channel: str, pypi_index: Any, tmp_path: Path, run_cli: Any
) -> None:
    idx = pypi_index({"pkg": ["1.0", "2.0"]})
    ws = workspace(
        tmp_path / "ws",
        py_channel,
        idx.url,
        {"file": "reqs/requirements.in", "pypi-resolver": resolver},
        {
            "reqs/requirements.in": "\ufeff-c constraints.txt\npkg\n",
            "reqs/constraints.txt": "pkg<2\n",
        },
    )
    ok(run_cli(ws, "resolve"))
    pkg = lock_packages(ws, "web", "linux-64")["pkg"]
    assert (pkg["version"], pkg["filename"]) == ("1.0", "pkg-1.0-py3-none-any.whl")
    assert read_lock_json(ws, "web", "linux-64")["spec"]["pypi_constraints"] == ["pkg<2"]


def test_editing_an_included_file_makes_the_lock_stale(
    py_channel: str, pypi_index: Any, tmp_path: Path, run_cli: Any
) -> None:
    idx = pypi_index({"pkg": ["1.0", "2.0"], "other": ["1.0"]})
    ws = workspace(
        tmp_path / "ws",
        py_channel,
        idx.url,
        {"file": "reqs/requirements.txt"},
        {"reqs/requirements.txt": "-r base.txt\n", "reqs/base.txt": "pkg\n"},
    )
    ok(run_cli(ws, "resolve"))
    assert lock_packages(ws, "web", "linux-64")["pkg"]["version"] == "2.0"
    ok(run_cli(ws, "resolve", "--check"))
    (ws / "reqs" / "base.txt").write_text("pkg\nother\n", encoding="utf-8")
    stale = run_cli(ws, "resolve", "--check")
    assert stale.returncode == 1, stale.stdout + stale.stderr
    assert stale.stdout.splitlines()[-1] == "0 locks current, 1 not current"
    ok(run_cli(ws, "resolve"))
    assert sorted(lock_packages(ws, "web", "linux-64")) == ["other", "pkg", "python"]


def test_hash_is_checked_against_the_locked_file(
    py_channel: str, pypi_index: Any, tmp_path: Path, run_cli: Any
) -> None:
    idx = pypi_index({"pkg": ["1.0"]})
    real = sha256_hex(idx.files["pkg-1.0-py3-none-any.whl"])
    ws = workspace(
        tmp_path / "ws",
        py_channel,
        idx.url,
        {"file": "reqs/r.txt"},
        {"reqs/r.txt": f"--require-hashes\n\npkg==1.0 --hash=sha256:{real}\n"},
    )
    ok(run_cli(ws, "resolve"))
    assert lock_packages(ws, "web", "linux-64")["pkg"]["sha256"] == real
    (ws / "reqs" / "r.txt").write_text(f"\npkg==1.0 --hash=sha256:{HASH_A}\n", encoding="utf-8")
    failed = run_cli(ws, "resolve")
    assert failed.returncode != 0
    assert "Traceback" not in failed.stdout + failed.stderr
    expected = (
        f"pkg: hash mismatch: the locked file pkg-1.0-py3-none-any.whl has sha256:{real}, "
        f"but reqs/r.txt:2 allows only --hash=sha256:{HASH_A}"
    )
    assert expected in failed.stdout + failed.stderr
