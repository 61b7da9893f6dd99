"""Spec inputs as projects write them: pyproject extras and dependency groups chosen per env,
--prefer-binary, environment.yml's defaults / nodefaults and pip: lists, exclude-newer on
the conda solve and a per-env solve-timeout. Parsing through the real manifest, and real
resolutions against a loopback PEP 503 index and a loopback conda channel."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import ServedIndex

from envbuild.errors import SpecError
from envbuild.manifest import parse_manifest
from envbuild.spec import EnvSpec, Workspace

MAIN, R = "https://repo.anaconda.com/pkgs/main", "https://repo.anaconda.com/pkgs/r"
CF = "https://conda.anaconda.org/conda-forge"


def parse(root: Path, manifest: str, files: dict[str, str] | None = None) -> Workspace:
    for rel, text in (files or {}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(textwrap.dedent(text), encoding="utf-8")
    return parse_manifest(textwrap.dedent(manifest), root, "linux-64")


def problems(root: Path, manifest: str, files: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse(root, manifest, files)
    return list(info.value.problems)


# --------------------------------------------------------------------------- pyproject

PYPROJECT = """\
    [project]
    name = "web"
    dependencies = ["requests"]

    [project.optional-dependencies]
    test = ["pytest"]

    [dependency-groups]
    docs = ["sphinx", {include-group = "lint"}]
    lint = ["ruff"]
    """


def test_extras_and_groups_are_chosen_per_env_and_change_the_req_id(tmp_path: Path) -> None:
    ws = parse(
        tmp_path,
        """\
        [env.plain]
        file = "pyproject.toml"
        python = "3.11"
        python-source = "host"

        [env.full]
        file = "pyproject.toml"
        python = "3.11"
        python-source = "host"
        extras = ["Test"]
        groups = ["docs"]
        """,
        {"pyproject.toml": PYPROJECT},
    )
    full, plain = ws.envs
    assert [d.value for d in plain.pypi] == ["requests"]
    assert [d.value for d in full.pypi] == ["requests", "pytest", "sphinx", "ruff"]
    assert full.req_id != plain.req_id
    assert full.spec_files == plain.spec_files == ("pyproject.toml",)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            'file = "reqs.txt"\nextras = ["test"]',
            'envbuild.toml:5: [env.e] extras: extras are chosen from a pyproject.toml: set '
            'file = "pyproject.toml" (or remove extras)',
        ),
        (
            'pypi = ["x"]\ngroups = ["docs"]',
            'envbuild.toml:5: [env.e] groups: groups are chosen from a pyproject.toml: set '
            'file = "pyproject.toml" (or remove groups)',
        ),
        (
            'file = "pyproject.toml"\nextras = ["tests"]',
            "pyproject.toml: no extra 'tests' in [project.optional-dependencies] (available: "
            "test)",
        ),
        (
            'file = "pyproject.toml"\ngroups = ["doc"]',
            "pyproject.toml: no dependency group 'doc' in [dependency-groups] (available: docs, "
            "lint)",
        ),
        ('file = "pyproject.toml"\nextras = "test"', 'envbuild.toml:5: [env.e] extras: must be '
         'a list of strings, like extras = ["..."]'),
    ],
    ids=["extras-with-requirements", "groups-without-file", "unknown-extra", "unknown-group",
         "not-a-list"],
)  # fmt: skip
def test_extras_and_groups_errors(tmp_path: Path, env: str, expected: str) -> None:
    files = {"pyproject.toml": PYPROJECT, "reqs.txt": "x\n"}
    manifest = f'[env.e]\npython = "3.11"\npython-source = "host"\n{env}\n'
    assert problems(tmp_path, manifest, files) == [expected]


@pytest.mark.parametrize(
    ("pyproject", "expected"),
    [
        (
            '[project]\nname = "w"\ndynamic = ["dependencies"]\n',
            "envbuild: error: pyproject.toml: [project].dependencies is dynamic (computed by "
            "the build backend), and envbuild reads only static metadata: list them in "
            '[project].dependencies, or lock a requirements file instead (file = '
            '"requirements.txt")\n',
        ),
        (
            '[tool.poetry]\nname = "w"\n[tool.poetry.dependencies]\npython = "^3.11"\n'
            'requests = "^2"\n',
            "envbuild: error: pyproject.toml: the dependencies are in "
            "[tool.poetry.dependencies], which envbuild does not read: declare them in "
            "[project].dependencies (PEP 621, which Poetry 2 reads too), or lock the output "
            "of `poetry export -f requirements.txt`\n",
        ),
    ],
    ids=["dynamic", "poetry-only"],
)  # fmt: skip
def test_unreadable_pyproject_is_one_line_and_exit_2(
    workspace: Any, run_cli: Any, pyproject: str, expected: str
) -> None:
    ws = workspace(
        '[workspace]\nchannels = ["conda-forge"]\n[env.a]\nfile = "pyproject.toml"\n',
        {"pyproject.toml": pyproject},
    )
    result = run_cli(ws, "resolve")
    assert (result.returncode, result.stderr) == (2, expected)
    assert not (ws / "locks").exists()


# --------------------------------------------------------------------------- prefer-binary


def test_prefer_binary_keys_and_req_id(tmp_path: Path) -> None:
    ws = parse(
        tmp_path,
        """\
        [workspace]
        prefer-binary = true

        [env.inherits]
        pypi = ["x"]

        [env.off]
        pypi = ["x"]
        prefer-binary = false

        [env.file]
        file = "reqs.txt"
        prefer-binary = false

        [env.inline]
        pypi = ["--prefer-binary", "x"]
        prefer-binary = false
        """,
        {"reqs.txt": "--prefer-binary\nx\n"},
    )
    got = {e.name: e.prefer_binary for e in ws.envs}
    assert got == {"inherits": True, "off": False, "file": True, "inline": True}
    on, off = ws.env("inherits"), ws.env("off")
    assert on.req_categories()["flags"] == ["--prefer-binary"]
    assert off.req_categories()["flags"] == []
    assert on.req_id != off.req_id
    assert EnvSpec.from_dict(on.to_dict()) == on
    assert "prefer_binary" not in off.to_dict()  # specs without it keep their bytes


@pytest.mark.parametrize("table", ["workspace", "env.e"])
def test_prefer_binary_must_be_a_boolean(tmp_path: Path, table: str) -> None:
    manifest = f'[{table}]\nprefer-binary = "yes"\n'
    if table == "workspace":
        manifest += '[env.e]\npypi = ["x"]\n'
    else:
        manifest += 'pypi = ["x"]\n'
    assert problems(tmp_path, manifest) == [
        f"envbuild.toml:2: [{table}] prefer-binary: must be true or false, like "
        "prefer-binary = true"
    ]


@pytest.fixture
def index(pypi_index: Any) -> ServedIndex:
    """``newsrc``: a wheel of 1.0, only an sdist of 2.0; ``top`` (wheel) needs any newsrc;
    ``srconly`` has only an sdist."""
    return pypi_index(
        {
            "newsrc": ["1.0", ("2.0", "sdist")],
            "top": [("1.0", "wheel", None, ["newsrc"])],
            "srconly": [("3.0", "sdist")],
        }
    )


def resolve_pypi(root: Path, index: ServedIndex, env: str) -> dict[str, tuple[str, bool]]:
    from envbuild.resolve.env import Context, resolve_env

    manifest = (
        f'[workspace]\npypi-index = "{index.url}"\npython-source = "host"\n\n'
        f'[env.e]\npython = "3.11"\n{env}\n'
    )
    spec = parse(root, manifest).env("e")
    ctx = Context(root=root, gateway=None, host_arch="linux-64")  # type: ignore[arg-type]
    lock = resolve_env(spec, "linux-64", ctx)
    return {p.name: (p.filename, p.needs_build) for p in lock.packages}


WHEEL_10 = ("newsrc-1.0-py3-none-any.whl", False)
SDIST_20 = ("newsrc-2.0.tar.gz", True)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        pytest.param('pypi = ["newsrc"]', {"newsrc": SDIST_20}, id="default-newest-sdist"),
        pytest.param(
            'pypi = ["newsrc"]\nprefer-binary = true', {"newsrc": WHEEL_10}, id="older-wheel"
        ),
        pytest.param(
            'pypi = ["top", "--prefer-binary"]',
            {"newsrc": WHEEL_10, "top": ("top-1.0-py3-none-any.whl", False)},
            id="transitive",
        ),
        pytest.param(
            'pypi = ["newsrc>=2", "srconly"]\nprefer-binary = true',
            {"newsrc": SDIST_20, "srconly": ("srconly-3.0.tar.gz", True)},
            id="no-wheel-fits-so-sources-stay",
        ),
        pytest.param(
            'pypi = ["newsrc", "srconly"]\nprefer-binary = true',
            {"newsrc": WHEEL_10, "srconly": ("srconly-3.0.tar.gz", True)},
            id="each-package-on-its-own",
        ),
        pytest.param(
            'pypi = ["newsrc"]\nprefer-binary = true\nno-binary = ["newsrc"]',
            {"newsrc": SDIST_20},
            id="no-binary-wins",
        ),
        pytest.param(
            'pypi = ["newsrc"]\nprefer-binary = true\npypi-resolver = "pip"',
            {"newsrc": WHEEL_10},
            id="pip-resolver",
        ),
    ],
)
def test_prefer_binary_resolution(
    tmp_path: Path, index: ServedIndex, env: str, expected: dict[str, tuple[str, bool]]
) -> None:
    assert resolve_pypi(tmp_path, index, env) == expected


# --------------------------------------------------------------------------- environment.yml

YML_NODEFAULTS = "channels:\n  - nodefaults\ndependencies:\n  - numpy\n"


@pytest.mark.parametrize(
    ("yml_channels", "env_channels", "expected"),
    [
        pytest.param(None, None, ("https://example.org/ws",), id="yml-without-channels"),
        pytest.param(["conda-forge"], None, (CF,), id="yml-channels-replace-workspace"),
        pytest.param(["conda-forge", "nodefaults"], None, (CF,), id="nodefaults-dropped"),
        pytest.param(["defaults", "conda-forge"], None, (MAIN, R, CF), id="defaults-expanded"),
        pytest.param(["conda-forge"], '["defaults"]', (MAIN, R), id="manifest-defaults"),
    ],
)
def test_yml_channels(
    tmp_path: Path, yml_channels: list[str] | None, env_channels: str | None, expected: tuple
) -> None:
    yml = "dependencies:\n  - numpy\n"
    if yml_channels is not None:
        yml = "channels:\n" + "".join(f"  - {c}\n" for c in yml_channels) + yml
    own = f"channels = {env_channels}\n" if env_channels else ""
    manifest = (
        '[workspace]\nchannels = ["https://example.org/ws"]\n'
        f'[env.e]\nfile = "environment.yml"\n{own}'
    )
    assert parse(tmp_path, manifest, {"environment.yml": yml}).env("e").channels == expected


@pytest.mark.parametrize(
    ("manifest", "files", "expected"),
    [
        pytest.param(
            '[workspace]\nchannels = ["conda-forge"]\n[env.e]\nfile = "environment.yml"\n',
            {"environment.yml": YML_NODEFAULTS},
            "envbuild.toml:3: [env.e] channels: no channels: environment.yml names only "
            "nodefaults, so the workspace's channels are not used: list its channels there, "
            "or set channels in this env",
            id="nodefaults-alone",
        ),
        pytest.param(
            '[workspace]\nchannels = ["conda-forge", "nodefaults"]\n[env.e]\nconda = ["x"]\n',
            {},
            "envbuild.toml:2: [workspace] channels: 'nodefaults' is for environment.yml: here "
            "the list is the whole list already (envbuild adds no channel implicitly): "
            "remove it",
            id="nodefaults-in-manifest",
        ),
        pytest.param(
            '[workspace]\nchannels = ["conda-forge"]\n[env.e]\nfile = "envs/environment.yml"\n',
            {"envs/environment.yml": "dependencies:\n  - numpy\n  - pip:\n    - flask\n"
             "    - ./nothere\n"},
            "envs/environment.yml:5: './nothere': './nothere' does not exist (relative to "
            "envs/environment.yml): create it or fix the path",
            id="missing-local-path",
        ),
        pytest.param(
            '[workspace]\nchannels = ["conda-forge"]\n[env.e]\nfile = "envs/environment.yml"\n',
            {"envs/environment.yml": "dependencies:\n  - pip:\n    - -r nope.txt\n"},
            "envs/environment.yml:3: -r nope.txt: 'envs/nope.txt' does not exist: create it or "
            "fix the path",
            id="missing-requirements-file",
        ),
        pytest.param(
            '[workspace]\nchannels = ["conda-forge"]\n[env.e]\nfile = "environment.yml"\n',
            {"environment.yml": "dependencies:\n  - pip:\n    - --no-deps\n"},
            "environment.yml:3: '--no-deps' is not a supported line in a requirements.txt",
            id="unknown-option",
        ),
        pytest.param(
            '[workspace]\nchannels = ["conda-forge"]\n[env.e]\nfile = "environment.yml"\n',
            {"environment.yml": "dependencies:\n  - pip:\n    - --editable=.\n"},
            "environment.yml:3: '--editable=.': editable installs are not supported: write "
            "'NAME @ .' or just '.'",
            id="editable",
        ),
    ],
)  # fmt: skip
def test_yml_errors(tmp_path: Path, manifest: str, files: dict[str, str], expected: str) -> None:
    assert problems(tmp_path, manifest, files) == [expected]


def test_yml_pip_list_reads_requirement_files_and_paths_relative_to_the_yml(
    tmp_path: Path,
) -> None:
    ws = parse(
        tmp_path,
        '[workspace]\nchannels = ["conda-forge"]\n[env.e]\nfile = "envs/environment.yml"\n',
        {
            "envs/environment.yml": "dependencies:\n  - python=3.11\n  - pip:\n"
            "    - -r reqs/base.txt\n    - ./pkg\n",
            "envs/reqs/base.txt": "flask\n-c pins.txt\n",
            "envs/reqs/pins.txt": "flask<3\n",
            "envs/pkg/pyproject.toml": "",
        },
    )
    env = ws.env("e")
    assert [d.value for d in env.pypi] == ["flask", "./envs/pkg"]
    assert env.pypi_constraints == ("flask<3",)
    assert env.spec_files == (
        "envs/environment.yml",
        "envs/reqs/base.txt",
        "envs/reqs/pins.txt",
    )


# --------------------------------------------------------------------------- conda exclude-newer

DAY = 86_400
T_OLD, T_NEW = 1_700_000_000, 1_700_000_000 + 30 * DAY  # 2023-11-14, 2023-12-14
LIB_OLD = {"name": "tlib", "version": "1.0", "noarch": "generic", "timestamp": T_OLD}
LIB_NEW = {"name": "tlib", "version": "2.0", "noarch": "generic", "timestamp": T_NEW}


@pytest.fixture
def served_channel(make_channel: Any, http_server: Any) -> str:
    return str(http_server(make_channel([LIB_OLD, LIB_NEW], name="dated")).url)


@pytest.mark.parametrize(
    ("workspace_setting", "env_setting", "version"),
    [
        (None, None, "2.0"),
        ("2023-12-01T00:00:00Z", None, "1.0"),
        ("2023-12-14T22:13:20Z", None, "2.0"),  # exactly the build time: included
        ("2023-12-14T22:13:19Z", None, "1.0"),
        ("2023-12-01", None, "1.0"),  # a date: its midnight UTC
        ("2023-12-20T00:00:00+02:00", "2023-12-01T00:00:00Z", "1.0"),  # the env's wins
        ("2023-12-01T00:00:00Z", "2024-01-01T00:00:00Z", "2.0"),
    ],
)
def test_exclude_newer_applies_to_the_conda_solve(
    tmp_path: Path,
    served_channel: str,
    workspace_setting: str | None,
    env_setting: str | None,
    version: str,
) -> None:
    from envbuild.resolve.conda import new_gateway
    from envbuild.resolve.env import Context, resolve_env

    ws_line = f'exclude-newer = "{workspace_setting}"\n' if workspace_setting else ""
    env_line = f'exclude-newer = "{env_setting}"\n' if env_setting else ""
    manifest = (
        f'[workspace]\nchannels = ["{served_channel}"]\n{ws_line}'
        f'[env.e]\nconda = ["tlib"]\n{env_line}'
    )
    spec = parse(tmp_path, manifest).env("e")
    ctx = Context(root=tmp_path, gateway=new_gateway(tmp_path / "cache"), host_arch="linux-64")
    (pkg,) = resolve_env(spec, "linux-64", ctx).packages
    assert (pkg.name, pkg.version) == ("tlib", version)


def test_exclude_newer_is_a_lock_input_and_solve_timeout_is_not(tmp_path: Path) -> None:
    from envbuild.freshness import result_settings

    ws = parse(
        tmp_path,
        """\
        [workspace]
        channels = ["conda-forge"]
        solve-timeout = 60

        [env.plain]
        conda = ["x"]

        [env.slow]
        conda = ["x"]
        solve-timeout = 600.5

        [env.dated]
        conda = ["x"]
        exclude-newer = "2024-01-01T00:00:00Z"
        """,
    )
    plain, slow, dated = ws.env("plain"), ws.env("slow"), ws.env("dated")
    assert (plain.settings.solve_timeout, slow.settings.solve_timeout) == (60.0, 600.5)
    assert result_settings(plain) == result_settings(slow)
    assert plain.lock_echo() == {**slow.lock_echo(), "name": "plain"}
    assert dict(result_settings(dated)) == {
        "channel_priority": '"strict"',
        "exclude_newer": '"2024-01-01T00:00:00Z"',
        "exclude_newer_applies_to": '"conda,pypi"',
        "pypi_resolver": '"uv"',
    }


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", '"60"', "true"])
def test_env_solve_timeout_must_be_positive_seconds(tmp_path: Path, value: str) -> None:
    manifest = f'[env.e]\nconda = ["x"]\nchannels = ["conda-forge"]\nsolve-timeout = {value}\n'
    assert problems(tmp_path, manifest) == [
        "envbuild.toml:4: [env.e] solve-timeout: must be a positive number of seconds, like "
        f"solve-timeout = 120 (got {value})"
    ]


def test_recipe_timestamp_must_be_seconds() -> None:
    from envbuild.localchannel import Recipe

    with pytest.raises(SpecError) as info:
        Recipe.from_dict({**LIB_OLD, "timestamp": "2023"}, "r.toml package 1")
    assert info.value.problems == (
        "r.toml package 1: timestamp must be whole seconds since 1970, like 1700000000",
    )
