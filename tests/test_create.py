"""Environments on disk (issue 9, acceptance 1 and 5) through the real ``envbuild`` CLI:

- a mixed env from ../shared/data/stub-channel (python 3.12 with stub payloads: its python
  cannot run) plus a loopback PEP 503 index: conda-meta records for every conda package,
  dist-infos for every wheel, a console script with the env's python in its shebang, and
  ``envbuild show`` agreeing with the env's own records;
- a pip-only host-python env with ``requests`` from the real PyPI (marked ``pypi``);
- the demo's ``cli`` env, whose console script prints its greeting;
- updates: adding or upgrading one conda package or one wheel touches only that package's
  files (counted by inode and mtime), and the report line names the change.

Interruption (kill -9) and two concurrent creations: test_create_interrupt.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from conftest import REPO_ROOT, SHARED_DATA, build_channel_from_recipes, read_lock_json
from pypi_index import core_metadata, make_wheel, wheel_bytes, wheel_filename

from envbuild.platforms import find_host_python, host_arch

STUB = SHARED_DATA / "stub-channel"
MARKER = ".envbuild-env.json"
HOST = host_arch()


# --------------------------------------------------------------------------- helpers


def assert_ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "Traceback" not in result.stdout + result.stderr


def write_manifest(root: Path, workspace: dict[str, Any], envs: dict[str, Any]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "envbuild.toml").write_text(tomli_w.dumps({"workspace": workspace, "env": envs}))
    return root


def prefix_of(ws: Path, env: str) -> Path:
    return ws / ".envbuild" / "envs" / env


def conda_records(prefix: Path) -> dict[str, str]:
    """name -> version of the env's conda-meta records."""
    out = {}
    for path in (prefix / "conda-meta").glob("*.json"):
        data = json.loads(path.read_text())
        out[data["name"]] = data["version"]
    return out


def site_packages(prefix: Path) -> Path:
    (site,) = prefix.glob("lib/python3.*/site-packages")
    return site


def dist_infos(prefix: Path) -> dict[str, str]:
    """name -> version of the env's installed distributions (their METADATA)."""
    from packaging.utils import canonicalize_name

    out = {}
    for info in site_packages(prefix).glob("*.dist-info"):
        meta = dict(
            line.split(": ", 1)
            for line in (info / "METADATA").read_text().splitlines()
            if ": " in line
        )
        out[str(canonicalize_name(meta["Name"]))] = meta["Version"]
    return out


def lock_versions(ws: Path, env: str, kind: str) -> dict[str, str]:
    return {
        p["name"]: p["version"]
        for p in read_lock_json(ws, env, HOST)["packages"]
        if p["kind"] == kind
    }


def stamps(prefix: Path) -> dict[str, tuple[int, int]]:
    """relative path -> (inode, mtime_ns) of every file and symlink in the prefix."""
    out = {}
    for root, _dirs, files in os.walk(prefix):
        for name in files:
            path = Path(root, name)
            st = path.lstat()
            out[str(path.relative_to(prefix))] = (st.st_ino, st.st_mtime_ns)
    return out


def tree(prefix: Path) -> dict[str, str]:
    """relative path -> sha256 of every file (``-> target`` for a symlink), and the mode of
    every directory: what two creations of the same lock must share."""
    import hashlib

    out = {}
    for root, dirs, files in os.walk(prefix):
        for name in dirs:
            path = Path(root, name)
            out[str(path.relative_to(prefix)) + "/"] = oct(path.lstat().st_mode)
        for name in files:
            path = Path(root, name)
            rel = str(path.relative_to(prefix))
            if path.is_symlink():
                out[rel] = "-> " + os.readlink(path)
            else:
                mode = oct(path.stat().st_mode & 0o777)
                out[rel] = f"{mode} {hashlib.sha256(path.read_bytes()).hexdigest()}"
    return out


def changed(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> set[str]:
    """Files added, removed or rewritten (a new inode or mtime)."""
    return {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}


def conda_files(prefix: Path, name: str) -> set[str]:
    """The files one conda package linked, plus its conda-meta record."""
    for path in (prefix / "conda-meta").glob(f"{name}-*.json"):
        data = json.loads(path.read_text())
        if data["name"] == name:
            return {*data["files"], f"conda-meta/{path.name}"}
    raise AssertionError(f"{name} is not installed in {prefix}")


def wheel_files(prefix: Path, name: str) -> set[str]:
    """The files one installed wheel wrote (its RECORD), relative to the prefix."""
    site = site_packages(prefix)
    (info,) = site.glob(f"{name}-*.dist-info")
    rows = (info / "RECORD").read_text().splitlines()
    return {
        str(Path(os.path.normpath(site / row.split(",")[0])).relative_to(prefix)) for row in rows
    }


def report(result: subprocess.CompletedProcess[str], env: str) -> str:
    (line,) = [ln for ln in result.stderr.splitlines() if ln.startswith(f"env {env}: ")]
    return line


def console_wheel(out: Path, name: str = "hello-cli", version: str = "1.0") -> Path:
    """A wheel with a console script ``NAME = MODULE:main`` that prints a greeting."""
    module = name.replace("-", "_")
    files = {
        f"{module}/__init__.py": f"def main():\n    print('hello from {name} {version}')\n".encode(),
        f"{module}-{version}.dist-info/entry_points.txt": (
            f"[console_scripts]\n{name} = {module}:main\n".encode()
        ),
    }
    out.mkdir(parents=True, exist_ok=True)
    path = out / wheel_filename(name, version)
    path.write_bytes(
        wheel_bytes(name, version, "py3-none-any", files, core_metadata(name, version))
    )
    return path


def host_python(version: str) -> str:
    try:
        return find_host_python(f"{version}.*")[0]
    except LookupError:
        pytest.skip(f"no host python {version} on this machine")


# --------------------------------------------------------------------------- acceptance 1


def test_mixed_env_from_stub_channel_and_local_index(tmp_path, pypi_index, run_cli):
    if not STUB.is_dir():
        pytest.skip(f"shared channel data not found at {STUB} (not in a fresh clone)")
    if not (STUB / HOST).is_dir():
        pytest.skip(f"the stub channel has no {HOST} packages")
    wheels = tmp_path / "wheels"
    idx = pypi_index(
        [
            make_wheel(wheels, "alpha", "1.0", requires=["beta"]),
            make_wheel(wheels, "beta", "2.0"),
            console_wheel(wheels),
        ]
    )
    ws = write_manifest(
        tmp_path / "ws",
        {"archs": [HOST], "channels": [STUB.as_uri()], "pypi-index": idx.url},
        {"mixed": {"python": "3.12", "conda": ["openssl"], "pypi": ["alpha", "hello-cli"]}},
    )
    result = run_cli(ws, "create", "env=mixed")
    assert_ok(result)
    prefix = prefix_of(ws, "mixed")
    conda, pypi = lock_versions(ws, "mixed", "conda"), lock_versions(ws, "mixed", "pypi")
    assert {"python", "openssl"} <= conda.keys() and conda["python"].startswith("3.12.")
    assert pypi == {"alpha": "1.0", "beta": "2.0", "hello-cli": "1.0"}
    assert report(result, "mixed") == f"env mixed: created: {len(conda)} conda packages, 3 wheels"

    # the env's own records: one conda-meta record per conda package, one dist-info per wheel
    assert conda_records(prefix) == conda
    assert dist_infos(prefix) == pypi
    assert site_packages(prefix) == prefix / "lib" / "python3.12" / "site-packages"
    shown = json.loads(run_cli(ws, "show", "mixed", "--arch", HOST, "--json").stdout)
    by_kind: dict[str, dict[str, str]] = {"conda": {}, "pypi": {}}
    for pkg in shown["packages"]:
        by_kind[pkg["kind"]][pkg["name"]] = pkg["version"]
    assert by_kind == {"conda": conda_records(prefix), "pypi": dist_infos(prefix)}

    # the marker, written last, names the lock
    lock = read_lock_json(ws, "mixed", HOST)
    done = json.loads((prefix / MARKER).read_text())
    assert {k: done[k] for k in lock["env_id"]} == lock["env_id"]
    assert oct(prefix.stat().st_mode & 0o777) == oct(0o777 & ~_umask())
    assert not list(prefix.parent.glob(".mixed.*"))

    # the stub python cannot run, yet the wheels' console script is in place: its shebang
    # names the env's python, and it works under a host python 3.12 given the env's
    # site-packages
    script = prefix / "bin" / "hello-cli"
    assert script.read_text().splitlines()[0] == f"#!{prefix}/bin/python"
    assert os.access(script, os.X_OK)
    assert not (prefix / "bin" / "python").exists() or not os.access(
        prefix / "bin" / "python", os.X_OK
    )  # a stub payload: nothing to run
    try:
        py312 = find_host_python("3.12.*")[0]
    except LookupError:
        py312 = None  # (this check only needs a host python 3.12)
    if py312:
        run = subprocess.run(
            [py312, str(script)], capture_output=True, text=True, check=False,
            env={**os.environ, "PYTHONPATH": str(site_packages(prefix))},
        )  # fmt: skip
        assert run.stdout == "hello from hello-cli 1.0\n", run.stderr
    # noarch: python entry points of the conda side (pip) name the env's python too
    assert (prefix / "bin" / "pip").read_text().startswith(f"#!{prefix}/bin/python3.12")

    # a second run does nothing
    again = run_cli(ws, "create", "env=mixed", "-v")
    assert_ok(again)
    assert "-- create:mixed" in again.stdout.splitlines()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.pypi
def test_pip_only_host_env_with_requests_from_pypi(tmp_path, run_cli):
    """A venv of a host python 3.12 with requests (and its closure) from the real PyPI:
    its python imports requests and prints the lock's version."""
    host_python("3.12")
    ws = write_manifest(
        tmp_path / "live",
        {"archs": [HOST], "exclude-newer": "2025-06-01T00:00:00Z"},
        {"web": {"python": "3.12", "python-source": "host", "pypi": ["requests"]}},
    )
    result = run_cli(ws, "create", "env=web")
    assert_ok(result)
    pypi = lock_versions(ws, "web", "pypi")
    assert pypi["requests"] == "2.32.3"
    prefix = prefix_of(ws, "web")
    assert dist_infos(prefix) == pypi
    python = str(prefix / "bin" / "python")
    out = subprocess.run(
        [python, "-c", "import requests; print(requests.__version__)"],
        capture_output=True, text=True, check=False, env={"PATH": os.environ["PATH"]},
    )  # fmt: skip
    assert out.stdout == f"{pypi['requests']}\n", out.stderr
    version = subprocess.run([python, "-c", "import sys; print(sys.version_info[:2])"],
                             capture_output=True, text=True, check=True)  # fmt: skip
    assert version.stdout == "(3, 12)\n"


def test_demo_cli_console_script(tmp_path, run_cli):
    host_python("3.11")
    ws = tmp_path / "demo"
    shutil.copytree(
        REPO_ROOT / "examples" / "demo", ws,
        ignore=shutil.ignore_patterns(".envbuild", "locks", "__pycache__"),
    )  # fmt: skip
    result = run_cli(ws, "create", "env=cli")
    assert_ok(result)
    assert report(result, "cli") == "env cli: created: 3 wheels"
    out = subprocess.run(
        [str(prefix_of(ws, "cli") / "bin" / "demo-cli")], capture_output=True, text=True,
        check=False, env={"PATH": os.environ["PATH"]},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout == "Hello from demo-cli, with demo-greeting 1.0.0!\n"


# --------------------------------------------------------------------------- acceptance 5

PY = {"name": "python", "version": "3.11.9", "build": "0", "subdirs": [HOST]}


def small(name: str, version: str, n_files: int = 5, **extra: Any) -> dict[str, Any]:
    files = {f"share/{name}/f{i}.txt": f"{name} {version} {i}\n" for i in range(n_files)}
    return {"name": name, "version": version, "noarch": "generic", "files": files, **extra}


RECIPES = [
    PY,
    *(small(f"p{i}", "1.0") for i in range(8)),
    small("x", "1.0"),
    small("x", "2.0", n_files=6),
]


@pytest.fixture
def update_ws(tmp_path, pypi_index):
    """A workspace whose env ``e`` has python, conda p0..p3 and x ==1, and the wheel alpha
    1.0; ``edit(conda=..., pypi=...)`` rewrites the env's spec."""
    chan = build_channel_from_recipes(RECIPES, tmp_path / "ws" / "chan")
    wheels = tmp_path / "wheels"
    idx = pypi_index(
        [
            make_wheel(wheels / "a1", "alpha", "1.0"),
            make_wheel(wheels / "a2", "alpha", "2.0"),
            make_wheel(wheels, "gamma", "1.0"),
            console_wheel(wheels, "delta", "1.0"),
        ]
    )
    settings = {"archs": [HOST], "channels": ["./chan"], "pypi-index": idx.url}
    root = tmp_path / "ws"

    def edit(conda: list[str], pypi: list[str]) -> Path:
        env = {"python": "3.11", "conda": conda, "pypi": pypi}
        return write_manifest(root, settings, {"e": env})

    edit(["p0", "p1", "p2", "p3", "x ==1.0"], ["alpha ==1.0"])
    assert chan.is_dir()
    return root, edit


def update(run_cli, ws: Path) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """resolve, then create; returns the create run and the files it touched."""
    prefix = prefix_of(ws, "e")
    before = stamps(prefix)
    assert_ok(run_cli(ws, "resolve"))
    result = run_cli(ws, "create", "env=e")
    assert_ok(result)
    return result, changed(before, stamps(prefix))


BOOKKEEPING = {"conda-meta/history", MARKER}  # what every update rewrites


def test_update_links_only_the_changed_package(update_ws, run_cli):
    ws, edit = update_ws
    assert_ok(run_cli(ws, "create", "env=e"))
    prefix = prefix_of(ws, "e")
    assert conda_records(prefix)["x"] == "1.0" and dist_infos(prefix) == {"alpha": "1.0"}

    # add one conda package: only its files (and its record) appear
    edit(["p0", "p1", "p2", "p3", "p4", "x ==1.0"], ["alpha ==1.0"])
    result, touched = update(run_cli, ws)
    assert touched - BOOKKEEPING == conda_files(prefix, "p4")
    assert len(conda_files(prefix, "p4")) == 6  # 5 files + its record
    assert report(result, "e") == "env e: updated: +p4 1.0"

    # upgrade one conda package: only its old and new files change
    old_x = conda_files(prefix, "x")
    edit(["p0", "p1", "p2", "p3", "p4", "x ==2.0"], ["alpha ==1.0"])
    result, touched = update(run_cli, ws)
    assert touched - BOOKKEEPING == old_x | conda_files(prefix, "x")
    assert conda_records(prefix)["x"] == "2.0"
    assert (prefix / "share" / "x" / "f5.txt").read_text() == "x 2.0 5\n"
    assert report(result, "e") == "env e: updated: x 1.0 -> 2.0"

    # add one wheel: only its files
    edit(["p0", "p1", "p2", "p3", "p4", "x ==2.0"], ["alpha ==1.0", "delta"])
    result, touched = update(run_cli, ws)
    assert touched - {MARKER} == wheel_files(prefix, "delta")
    assert "bin/delta" in touched
    assert report(result, "e") == "env e: updated: +delta 1.0 (pypi)"

    # upgrade one wheel: only its old and new files
    old_alpha = wheel_files(prefix, "alpha")
    edit(["p0", "p1", "p2", "p3", "p4", "x ==2.0"], ["alpha ==2.0", "delta"])
    result, touched = update(run_cli, ws)
    assert touched - {MARKER} == old_alpha | wheel_files(prefix, "alpha")
    assert dist_infos(prefix) == {"alpha": "2.0", "delta": "1.0"}
    assert report(result, "e") == "env e: updated: alpha 1.0 -> 2.0 (pypi)"

    # remove a conda package and a wheel: their files go, nothing else changes
    gone = conda_files(prefix, "p0") | wheel_files(prefix, "delta")
    edit(["p1", "p2", "p3", "p4", "x ==2.0"], ["alpha ==2.0"])
    result, touched = update(run_cli, ws)
    assert touched - BOOKKEEPING == gone
    assert not (prefix / "share" / "p0").exists() and not (prefix / "bin" / "delta").exists()
    assert report(result, "e") == "env e: updated: -p0 1.0, -delta 1.0 (pypi)"

    # the result equals a clean creation of the same lock
    updated = tree(prefix)
    shutil.rmtree(prefix)
    assert_ok(run_cli(ws, "create", "env=e"))
    assert tree(prefix) == updated


def corrupt_in_place(path: Path) -> None:
    """Change a file's bytes but not its size, mtime or inode: only a full hash sees it."""
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    with path.open("r+b") as fh:
        fh.write(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def cached_file(ws: Path, filename: str) -> Path:
    (path,) = (ws / ".envbuild" / "pkgs").glob(f"*/*/{filename}")
    return path


def test_corrupt_cached_file_is_caught_before_linking(update_ws, run_cli):
    """Every file is hashed in full right before it is linked, even when its stat
    signature is the one recorded when it was last verified; the run fails, leaves
    nothing that looks complete, and the next run fetches the file again."""
    ws, edit = update_ws
    assert_ok(run_cli(ws, "fetch"))
    p0 = lock_filenames(ws)["p0"]
    corrupt_in_place(cached_file(ws, p0))
    result = run_cli(ws, "create", "env=e")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "sha256" in result.stderr and p0 in result.stderr
    assert not prefix_of(ws, "e").exists()
    assert os.listdir(prefix_of(ws, "e").parent) == []
    assert_ok(run_cli(ws, "create", "env=e"))  # fetched again, then created
    prefix = prefix_of(ws, "e")
    assert conda_records(prefix)["p0"] == "1.0"

    # an update checks the files it links: a corrupt p4 stops it before any change...
    edit(["p0", "p1", "p2", "p3", "p4", "x ==1.0"], ["alpha ==1.0"])
    assert_ok(run_cli(ws, "resolve"))
    assert_ok(run_cli(ws, "fetch"))
    corrupt_in_place(cached_file(ws, lock_filenames(ws)["p4"]))
    before = stamps(prefix)
    result = run_cli(ws, "create", "env=e")
    assert result.returncode == 2, result.stdout + result.stderr
    assert changed(before, stamps(prefix)) == {MARKER}  # removed first, not written
    # ...and the next run ends it (the wheels too: a run that did not finish may have left
    # them half-installed, so they are installed again)
    result = run_cli(ws, "create", "env=e")
    assert_ok(result)
    assert report(result, "e") == "env e: updated: +p4 1.0, +alpha 1.0 (pypi)"


def lock_filenames(ws: Path, env: str = "e") -> dict[str, str]:
    return {p["name"]: p["filename"] for p in read_lock_json(ws, env, HOST)["packages"]}


@pytest.mark.parametrize("marker_kind", ["with-shas", "old-without-shas"])
def test_update_from_either_marker_links_only_the_change(update_ws, run_cli, marker_kind):
    """The marker records each conda package's install-file sha256, so an update need not
    parse every conda-meta record (rattler reads them itself); a marker of an older envbuild
    has none, and the records are read as before. Either way only the change is linked."""
    ws, edit = update_ws
    assert_ok(run_cli(ws, "create", "env=e"))
    prefix = prefix_of(ws, "e")
    done = json.loads((prefix / MARKER).read_text())
    assert done["conda"] == {p: lock_shas(ws)[p] for p in sorted(done["conda"])}
    assert set(done["conda"]) == {"p0", "p1", "p2", "p3", "python", "x"}
    if marker_kind == "old-without-shas":
        del done["conda"]
        (prefix / MARKER).write_text(json.dumps(done))
    edit(["p0", "p1", "p2", "p3", "p4", "x ==2.0"], ["alpha ==1.0"])
    old_x = conda_files(prefix, "x")
    result, touched = update(run_cli, ws)
    assert touched - BOOKKEEPING == conda_files(prefix, "p4") | old_x | conda_files(prefix, "x")
    assert report(result, "e") == "env e: updated: +p4 1.0, x 1.0 -> 2.0"


def lock_shas(ws: Path, env: str = "e") -> dict[str, str]:
    return {p["name"]: p["sha256"] for p in read_lock_json(ws, env, HOST)["packages"]}


UMASK_SPY = """
import os, sys, threading
calls = []
real = os.umask
def spy(mask):
    calls.append(threading.current_thread().name)
    return real(mask)
os.umask = spy
from envbuild.cli import main
code = main(["create", "env=e"])
sys.stdout.write(f"umask calls: {len(calls)}\\n")
sys.stdout.flush()
os._exit(code)
"""


def test_nothing_sets_the_umask_while_rattler_links(update_ws, run_cli):
    """Wheels (a console script among them) are installed while rattler links the conda
    packages in another thread: reading the umask by setting it to 0 there (as installer's
    own chmod of scripts does) would let rattler make world-writable files and folders."""
    from conftest import run_python

    ws, edit = update_ws
    edit(["p0", "p1", "p2", "p3", "x ==1.0"], ["alpha ==1.0", "delta"])
    assert_ok(run_cli(ws, "resolve"))
    result = run_python(ws, "-c", UMASK_SPY)
    assert_ok(result)
    assert result.stdout.splitlines()[-1] == "umask calls: 0"
    prefix = prefix_of(ws, "e")
    assert os.access(prefix / "bin" / "delta", os.X_OK)
    mask = os.umask(0o022)  # this test process alone: no thread links here
    os.umask(mask)
    loose = [
        str(p.relative_to(prefix))
        for p in prefix.rglob("*")
        if not p.is_symlink() and p.stat().st_mode & 0o777 & mask
    ]
    assert loose == []
