"""The lock model, version 2: structured sources, conda records that rebuild rattler's
RepoDataRecord, round trips, and tasks computed from locks (doit's create_after)."""

from __future__ import annotations

import asyncio
import json
import textwrap
from pathlib import Path

import pytest
from conftest import REPO_ROOT, SHARED_DATA, run_python
from hypothesis import given
from hypothesis import strategies as st

from envbuild.lock import LOCK_VERSION, Lock, LockedPackage, Source
from envbuild.resolve.conda import package_to_record, record_to_package
from envbuild.spec import EnvSpec

STUB = SHARED_DATA / "stub-channel"
VPS = [("__unix", "0", "0"), ("__glibc", "2.28", "0"), ("__linux", "5.10", "0")]


def _solve_stub(arch: str) -> list:
    import rattler
    from rattler import BuildString, Gateway, GenericVirtualPackage, PackageName, Subdir, Version

    async def solve() -> list:
        vps = [GenericVirtualPackage(PackageName(n), Version(v), BuildString(b)) for n, v, b in VPS]
        if arch.startswith("osx"):
            vps = [GenericVirtualPackage(PackageName("__unix"), Version("0"), BuildString("0")),
                   GenericVirtualPackage(PackageName("__osx"), Version("13.0"), BuildString("0"))]  # fmt: skip
        return list(
            await rattler.solve(
                [STUB.as_uri()],
                ["python 3.12.*", "pip"],
                gateway=Gateway(),
                platforms=[Subdir(arch), Subdir("noarch")],
                virtual_packages=vps,
                timestamp_policy="allow-missing",
            )
        )

    return asyncio.run(solve())


@pytest.mark.skipif(not STUB.exists(), reason="../shared/data/stub-channel is absent")
@pytest.mark.parametrize("arch", ["linux-64", "osx-arm64"])
def test_every_stub_channel_record_round_trips_through_repodatarecord(arch, tmp_path):
    """Each conda record of a stub-channel lock, written to a lock file and read back,
    rebuilds the RepoDataRecord rattler solved (same JSON, every field)."""
    records = _solve_stub(arch)
    assert len(records) > 10
    spec = EnvSpec(name="stub", archs=(arch,), channels=(STUB.as_uri(),))
    lock = Lock.build(spec, arch, [record_to_package(r) for r in records])
    back = Lock.loads(lock.dumps())
    assert back == lock
    by_name = {r.name.normalized: r for r in records}
    for pkg in back.packages:
        rebuilt = package_to_record(pkg, tmp_path)
        original = json.loads(by_name[pkg.name].to_json())
        again = json.loads(rebuilt.to_json())
        original["channel"] = original["channel"].rstrip("/")  # the lock keeps no trailing /
        assert again == original, pkg.name
        assert rebuilt.file_name == by_name[pkg.name].file_name


def test_sources_round_trip_and_identity():
    cases = [
        (Source("sdist", url="https://x/p-1.0.tar.gz", sha256="ab"), "https://x/p-1.0.tar.gz"),
        (
            Source("vcs", url="https://g/r.git", vcs="git", commit="c0ffee", subdirectory="sub"),
            "git+https://g/r.git@c0ffee#subdirectory=sub",
        ),
        (Source("directory", path="pkgs/a", sha256="cd"), "path:pkgs/a"),
        (Source("archive", path="dist/a-1.zip", sha256="ef"), "path:dist/a-1.zip"),
    ]
    for source, identity in cases:
        assert source.identity == identity
        assert Source.from_dict(json.loads(json.dumps(source.to_dict()))) == source
        pkg = LockedPackage("pypi", "p", "1.0", "", "", "", source=source)
        assert pkg.needs_build
        assert LockedPackage.from_dict(pkg.to_dict()) == pkg


def test_unknown_source_kind_is_a_clear_lock_error():
    spec = EnvSpec(name="e", archs=("linux-64",), channels=())
    pkg = LockedPackage("pypi", "p", "1.0", "", "", "", source=Source("directory", path="p"))
    data = Lock.build(spec, "linux-64", [pkg]).to_dict()
    data["packages"][0]["source"]["kind"] = "wormhole"
    with pytest.raises(Exception) as info:
        Lock.loads(json.dumps(data), "locks/e/linux-64.json")
    assert str(info.value) == (
        "locks/e/linux-64.json: malformed lock (ValueError(\"source kind 'wormhole' is not one "
        'of sdist, vcs, directory, archive")): re-resolve to rewrite it'
    )


_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)


@given(
    name=_text, version=_text, url=_text, sha=st.text("0123456789abcdef", max_size=64),
    size=st.integers(0, 2**40), depends=st.lists(_text, max_size=3),
    kind=st.sampled_from(["conda", "pypi"]), index=_text,
)  # fmt: skip
def test_locked_package_round_trip(name, version, url, sha, size, depends, kind, index):
    pkg = LockedPackage(kind, name, version, url, name + ".whl", sha, size=size,
                        depends=tuple(depends), index=index)  # fmt: skip
    assert LockedPackage.from_dict(json.loads(json.dumps(pkg.to_dict()))) == pkg


def test_lock_bytes_are_deterministic_and_version_is_current():
    spec = EnvSpec(name="e", archs=("linux-64",), channels=("c",))
    pkgs = [LockedPackage("conda", n, "1", f"u/{n}", f"{n}.conda", "aa") for n in "bca"]
    one = Lock.build(spec, "linux-64", pkgs, inputs={"hash": "h"}).dumps()
    two = Lock.build(spec, "linux-64", list(reversed(pkgs)), inputs={"hash": "h"}).dumps()
    assert one == two
    assert json.loads(one)["version"] == LOCK_VERSION == 2


# --------------------------------------------------------------------------- create_after

# A stand-in for the per-package stages to come: one task per package of each lock,
# created only after the resolve tasks ran (the locks do not exist when doit loads).
DELAYED = '''
from pathlib import Path
import json
from doit import create_after


def touch(out):
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("x")

@create_after(executed="resolve")
def task_pkgs():
    """One task per locked package."""
    for lock in sorted(Path(ROOT, "locks").glob("*/*.json")):
        data = json.loads(lock.read_text())
        for pkg in data["packages"]:
            out = Path(ROOT, ".envbuild", "pkgs", data["env_id"]["arch"], pkg["filename"] + ".seen")
            yield {
                "name": f"{lock.parent.name}@{lock.stem}:{pkg['name']}",
                "actions": [(touch, [out])],
                "targets": [str(out)],
                "uptodate": [True],
            }
'''


@pytest.fixture
def delayed_ws(make_channel, workspace):
    chan = make_channel([{"name": "dlib", "version": "1.0", "noarch": "generic"},
                         {"name": "dapp", "version": "1.0", "noarch": "generic", "depends": ["dlib"]}],
                        name="delayed")  # fmt: skip
    return workspace(
        f'[workspace]\narchs = ["linux-64", "osx-arm64"]\nchannels = ["{chan.as_uri()}"]\n'
        '[env.app]\nconda = ["dapp"]\n'
    )


def _seen(ws: Path) -> list[str]:
    return sorted(p.relative_to(ws / ".envbuild" / "pkgs").as_posix()
                  for p in (ws / ".envbuild" / "pkgs").rglob("*.seen"))  # fmt: skip


EXPECTED_SEEN = [
    f"{arch}/{name}-1.0-0.conda.seen"
    for arch in ("linux-64", "osx-arm64")
    for name in ("dapp", "dlib")
]


def test_create_after_through_plain_doit(delayed_ws):
    ws = delayed_ws
    dodo = "from envbuild.tasks import *  # noqa\n" + DELAYED.replace("ROOT", repr(str(ws)))
    (ws / "dodo.py").write_text(dodo)
    result = run_python(ws, "-m", "doit", "resolve", "pkgs")
    assert result.returncode == 0, result.stdout + result.stderr
    assert ".  pkgs:app@linux-64:dapp" in result.stdout
    assert _seen(ws) == EXPECTED_SEEN


def test_create_after_through_envbuilds_loader(delayed_ws):
    ws = delayed_ws
    script = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {str(REPO_ROOT)!r})
        from doit.doit_cmd import DoitMain
        from envbuild import tasks
        ns = {{}}
        exec({DELAYED.replace("ROOT", repr(str(ws)))!r}, ns)
        loader = tasks.task_loader({str(ws)!r}, extra={{"pkgs": ns["task_pkgs"]}})
        code = DoitMain(loader, config_filenames=()).run(["resolve", "pkgs"])
        sys.stdout.flush()
        os._exit(code)
        """
    )
    result = run_python(ws, "-c", script)
    assert result.returncode == 0, result.stdout + result.stderr
    assert ".  pkgs:app@osx-arm64:dlib" in result.stdout
    assert _seen(ws) == EXPECTED_SEEN
    # listed (not run) by `list`: the delayed creator still shows up
    listing = run_python(ws, "-c", script.replace('["resolve", "pkgs"]', '["list"]'))
    assert "pkgs" in listing.stdout
