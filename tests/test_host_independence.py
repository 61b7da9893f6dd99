"""The same lock on any host, and req_ids that do not depend on an env's arch list.

Resolutions here are real: a local conda channel (``make_channel``) and a loopback PEP 503
index (``pypi_index``) holding wheels and sdists, resolved with ``resolve_env`` under
contexts that differ only in the machine they describe."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import ServedIndex
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypi_index import Dist, make_source_tree

from envbuild.errors import ResolveError, SpecError
from envbuild.manifest import parse_manifest
from envbuild.platforms import ARCHS, find_host_python
from envbuild.resolve.conda import new_gateway
from envbuild.resolve.env import Context, resolve_env
from envbuild.spec import Workspace

PY = "3.11.9"
MANYLINUX = "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64"
MACOS = "cp311-cp311-macosx_11_0_arm64"
OTHER_ARCHS = ("cp311-cp311-macosx_10_9_x86_64", "cp311-cp311-manylinux_2_17_aarch64")
TARGETS = ("linux-64", "osx-arm64", "osx-64", "linux-aarch64")
PYTHON = {"name": "python", "version": PY, "build": "0", "subdirs": list(ARCHS)}
SIX = {"name": "six", "version": "1.16.0", "noarch": "generic", "depends": ["python >=3.8"]}


def host_311() -> str:
    try:
        return find_host_python("3.11.*")[0]
    except LookupError:
        pytest.skip("no host python 3.11 (needed to build source packages' metadata)")


@pytest.fixture
def index(pypi_index) -> ServedIndex:
    return pypi_index(
        {
            "native": [("1.0", "wheel", tag) for tag in (MACOS, MANYLINUX, *OTHER_ARCHS)],
            "linuxonly": [("1.0", "wheel", MANYLINUX), ("1.0", "sdist")],  # sdist elsewhere
            "srconly": [("2.0", "sdist", None, ["dep"])],
            # requirements known only by building it: needs the build interpreter
            "dynsd": [Dist("1.0", kind="sdist", requires=("dep",), dynamic=True)],
            "dep": ["1.0"],
            "six": ["1.16.0", "1.17.0"],
            "needs-six": [("1.0", "wheel", None, ["six>=1.10"])],
        }
    )


MANIFEST = """\
[workspace]
archs = ["linux-64", "osx-arm64", "osx-64", "linux-aarch64"]
channels = ["{channel}"]
pypi-index = "{index}"

[env.mixed]
python = "3.11"
conda = ["six"]
pypi = ["native", "linuxonly", "srconly", "dynsd", "needs-six", "./localpkg"]

[env.piponly]
file = "environment.yml"

[env.host]
python-source = "host"
python = "3.11"
pypi = ["native", "linuxonly", "srconly", "needs-six"]
"""

ENVIRONMENT_YML = """\
dependencies:
  - python=3.11
  - pip:
    - native
    - linuxonly  # [linux]
    - srconly  # [osx]
"""


def workspace(root: Path, channel: Path, index: ServedIndex) -> Workspace:
    make_source_tree(root / "localpkg", "localpkg", "4.0", ["dep"])
    (root / "environment.yml").write_text(ENVIRONMENT_YML, encoding="utf-8")
    text = MANIFEST.format(channel=channel.as_uri(), index=index.url)
    return parse_manifest(text, root, "linux-64")


def locks(ws: Workspace, ctx: Context) -> dict[tuple[str, str], bytes]:
    return {
        (env.name, arch): resolve_env(env, arch, ctx).dumps().encode("utf-8")
        for env in ws.envs
        for arch in TARGETS
    }


def fixed(path: str) -> Callable[[str], tuple[str, str]]:
    """A host_python finder that always answers with interpreter ``path``."""
    version = subprocess.run(
        [path, "-c", "import platform; print(platform.python_version())"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    return lambda spec: (path, version)


def other_311(path: str) -> str | None:
    """Another python 3.11 executable than ``path`` (this venv's, or the system's)."""
    for candidate in (sys.executable, "/usr/bin/python3.11"):
        if os.path.exists(candidate) and os.path.realpath(candidate) != os.path.realpath(path):
            out = subprocess.run(
                [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 11))"],
                capture_output=True, text=True, check=False,
            ).stdout.strip()  # fmt: skip
            if out == "True":
                return candidate
    return None


def test_same_lock_on_any_host(tmp_path: Path, make_channel, index: ServedIndex) -> None:
    """One workspace resolved on a "linux-64" and on an "osx-arm64" host (and with another
    python 3.11 to build sdist metadata) gives byte-identical locks for every target."""
    build = host_311()
    channel = make_channel([PYTHON, SIX], name="hostchan")
    ws = workspace(tmp_path / "ws", channel, index)
    gateway = new_gateway(tmp_path / "cache")
    linux = locks(ws, Context(root=ws.root, gateway=gateway, host_arch="linux-64"))
    mac = locks(
        ws, Context(root=ws.root, gateway=gateway, host_arch="osx-arm64", host_python=fixed(build))
    )
    assert linux == mac
    other = other_311(build)
    if other is not None:
        elsewhere = Context(
            root=ws.root, gateway=gateway, host_arch="osx-64", host_python=fixed(other)
        )
        assert locks(ws, elsewhere) == linux

    # and what they hold: sdists are allowed for every target, the host's included
    def pypi(env: str, arch: str) -> dict[str, tuple[str, bool]]:
        lock = resolve_env(ws.env(env), arch, Context(root=ws.root, gateway=gateway,
                                                      host_arch="osx-arm64"))  # fmt: skip
        return {p.name: (p.filename, p.needs_build) for p in lock.packages if p.kind == "pypi"}

    common = {
        "dep": ("dep-1.0-py3-none-any.whl", False),
        "srconly": ("srconly-2.0.tar.gz", True),
        "needs-six": ("needs_six-1.0-py3-none-any.whl", False),
    }
    mixed_extra = {"dynsd": ("dynsd-1.0.tar.gz", True), "localpkg": ("", True)}
    assert pypi("mixed", "linux-64") == {
        **common, **mixed_extra,
        "native": (f"native-1.0-{MANYLINUX}.whl", False),
        "linuxonly": (f"linuxonly-1.0-{MANYLINUX}.whl", False),
    }  # fmt: skip
    assert pypi("mixed", "osx-arm64") == {
        **common, **mixed_extra,
        "native": (f"native-1.0-{MACOS}.whl", False),
        "linuxonly": ("linuxonly-1.0.tar.gz", True),
    }  # fmt: skip
    assert pypi("host", "osx-arm64") == {
        **common,
        "six": ("six-1.17.0-py3-none-any.whl", False),
        "native": (f"native-1.0-{MACOS}.whl", False),
        "linuxonly": ("linuxonly-1.0.tar.gz", True),
    }
    assert pypi("piponly", "linux-64") == {
        "native": (f"native-1.0-{MANYLINUX}.whl", False),
        "linuxonly": (f"linuxonly-1.0-{MANYLINUX}.whl", False),
    }
    assert pypi("piponly", "osx-64") == {
        "native": ("native-1.0-cp311-cp311-macosx_10_9_x86_64.whl", False),
        "srconly": ("srconly-2.0.tar.gz", True),
        "dep": ("dep-1.0-py3-none-any.whl", False),
    }
    host_lock = resolve_env(ws.env("host"), "linux-aarch64", Context(ws.root, gateway, "linux-64"))
    assert (host_lock.python_source, host_lock.python_version) == ("host", "3.11")
    assert [p.kind for p in host_lock.packages] == ["pypi"] * 6


def _no_python(spec: str) -> tuple[str, str]:
    raise LookupError(spec)


def test_without_a_host_python_of_the_version(
    tmp_path: Path, make_channel, index: ServedIndex
) -> None:
    """No python 3.11 on the machine: a wheels-only result is locked (identically), and a
    result with packages to build is refused, naming the version to install."""
    channel = make_channel([PYTHON, SIX], name="hostchan")
    ws = workspace(tmp_path / "ws", channel, index)
    gateway = new_gateway(tmp_path / "cache")
    bare = Context(root=ws.root, gateway=gateway, host_arch="linux-64", host_python=_no_python)
    usual = Context(root=ws.root, gateway=gateway, host_arch="linux-64")
    expected = resolve_env(ws.env("piponly"), "linux-64", usual).dumps()  # wheels only
    assert resolve_env(ws.env("piponly"), "linux-64", bare).dumps() == expected
    with pytest.raises(ResolveError) as info:
        resolve_env(ws.env("mixed"), "linux-64", bare)
    assert str(info.value) == (
        "dynsd, localpkg, srconly must be built from source, and reading their metadata may "
        "need a build with python 3.11, which this machine does not have (looked for "
        "python3.11 on PATH and in pyenv): install python 3.11, or take wheels only with "
        'only-binary = [":all:"]'
    )


# --------------------------------------------------------------------------- python-source


@pytest.mark.parametrize(
    ("python", "problem"),
    [
        ('python = ">=3.10"', "got '>=3.10'"),
        ('python = "3"', "got '3.*'"),
        ('conda = ["python"]', "got '*'"),
        ("", "none given"),
    ],
)
def test_host_python_must_be_a_plain_version(tmp_path: Path, python: str, problem: str) -> None:
    text = f'[workspace]\npython-source = "host"\n\n[env.h]\npypi = ["x"]\n{python}\n'
    with pytest.raises(SpecError) as info:
        parse_manifest(text, tmp_path, "linux-64")
    line = 6 if python.startswith("python") else 4  # the python key's line, else the table's
    assert info.value.problems == (
        f'envbuild.toml:{line}: [env.h] python: python-source = "host" needs a plain python '
        f'version, like python = "3.11" or "3.11.4" ({problem}): the env resolves for it on '
        "every arch, and is created with a matching interpreter of the target machine",
    )


@pytest.mark.parametrize("python", ["3.12", "3.11.4", "==3.10"])
def test_host_python_plain_versions(tmp_path: Path, python: str) -> None:
    text = f'[env.h]\npython-source = "host"\npython = "{python}"\npypi = ["x"]\n'
    assert parse_manifest(text, tmp_path, "linux-64").env("h").python_source == "host"


# --------------------------------------------------------------------------- req_id and archs

SPEC_FILES = {
    "env.yml": textwrap.dedent(
        """\
        channels: [conda-forge]
        dependencies:
          - python=3.11
          - numpy
          - libgcc  # [linux]
          - clang  # [osx and not arm64]
          - accel  # [arm64]
          - nowhere  # [win]
          - pip:
            - torch  # [linux and x86_64]
            - requests
        """
    ),
    "reqs.txt": "--only-binary :all:\n--no-binary torch\nrich\n",
}


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(archs=st.sets(st.sampled_from(ARCHS), min_size=1))
def test_req_id_does_not_depend_on_the_arch_list(tmp_path: Path, archs: set[str]) -> None:
    """Changing an env's archs never changes the req_id (nor the arch restrictions) of the
    archs that remain, for selector-restricted deps too."""
    for rel, text in SPEC_FILES.items():
        (tmp_path / rel).write_text(text, encoding="utf-8")

    def env(archs: list[str]) -> tuple[str, tuple, tuple]:
        listed = ", ".join(f'"{a}"' for a in archs)
        text = (
            f'[env.yml]\narchs = [{listed}]\nfile = "env.yml"\npypi = ["--no-binary torch"]\n\n'
            f'[env.txt]\narchs = [{listed}]\nfile = "reqs.txt"\npython = "3.11"\n'
            'channels = ["conda-forge"]\n'
        )
        ws = parse_manifest(text, tmp_path, "linux-64")
        yml = ws.env("yml")
        return yml.req_id, ws.env("txt").req_id, yml.conda + yml.pypi

    assert env(sorted(archs)) == env(list(ARCHS))
    _, _, deps = env(sorted(archs))
    assert {d.value: d.archs for d in deps} == {
        "numpy": (),
        "libgcc": ("linux-64", "linux-aarch64"),
        "clang": ("osx-64",),
        "accel": ("linux-aarch64", "osx-arm64"),
        "nowhere": ("win-64",),
        "torch": ("linux-64",),
        "requests": (),
    }
