"""Tests for envbuild.toml parsing (envbuild.manifest) and envbuild.spec.load_workspace."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest

from envbuild import spec as spec_module
from envbuild.errors import SpecError
from envbuild.manifest import ENV_KEYS, WORKSPACE_KEYS, parse_manifest
from envbuild.parsers import Dep
from envbuild.platforms import ARCHS
from envbuild.spec import EnvSpec, ResolverSettings, Workspace, load_workspace

FIXTURES = Path(__file__).parent / "fixtures" / "manifest"
CF = "https://conda.anaconda.org/conda-forge"
BIOCONDA = "https://conda.anaconda.org/bioconda"
ARCH_LIST = "linux-64, linux-aarch64, osx-64, osx-arm64, win-64"
WS_KEYS = ", ".join(WORKSPACE_KEYS)
ENV_KEY_LIST = ", ".join(ENV_KEYS)
SECONDS = "must be a positive number of seconds, like solve-timeout = 120"
ONLY_NAMES = (
    " and must start with a letter or digit (it names a directory of locks): rename the table"
)


def write(root: Path, manifest: str, files: Mapping[str, str] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "envbuild.toml").write_text(textwrap.dedent(manifest), encoding="utf-8")
    for rel, content in (files or {}).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(content), encoding="utf-8")
    return root


def parse(root: Path, default_arch: str = "linux-64") -> Workspace:
    return parse_manifest((root / "envbuild.toml").read_text(encoding="utf-8"), root, default_arch)


def problems_of(root: Path) -> tuple[str, ...]:
    with pytest.raises(SpecError) as info:
        parse(root)
    return info.value.problems


def test_allowed_keys() -> None:
    assert WS_KEYS == (
        "archs, channel-priority, channels, exclude-newer, extra-indexes, local-channels, "
        "locks-dir, no-binary, only-binary, prefer-binary, preferred-format, pypi-index, "
        "pypi-resolver, python-source, solve-timeout, store, store-endpoint, store-profile, "
        "store-region, virtual-packages"
    )
    assert ENV_KEY_LIST == (
        "archs, channel-priority, channels, conda, exclude-newer, extra-indexes, extras, file, "
        "groups, no-binary, only-binary, prefer-binary, pypi, pypi-resolver, python, "
        "python-source, solve-timeout, virtual-packages"
    )


# --------------------------------------------------------------------------- a valid manifest

VALID = """\
[workspace]
archs = ["osx-arm64", "linux-64", "osx-arm64"]
channels = ["conda-forge", "./local-chan/", "https://repo.example/chan/", "demo", "~/chans/mine", "/abs/chan"]
local-channels = { demo = "recipes" }
virtual-packages = { __glibc = "2.28", __cuda = "11.8" }
channel-priority = "flexible"
solve-timeout = 60
pypi-index = "https://mirror.example/simple"
extra-indexes = ["https://extra.example/simple"]
store = "/srv/store"
locks-dir = "lockfiles"
preferred-format = ".tar.bz2"

[env.base]
python = "3.11"
conda = ["numpy>=1.26", " numpy >= 1.26 ", "Pandas 2.*", "scipy >= 1.11, <2"]
pypi = ["Requests>=2", "requests >= 2", "Foo_Bar[B,a]"]

[env.over]
archs = ["linux-aarch64"]
channels = ["bioconda", "conda-forge/label/dev"]
channel-priority = "strict"
virtual-packages = { __cuda = "12.0=cuda", __osx = "13.0" }
conda = ["python>=3.10", "zlib"]
extra-indexes = ["https://env.example/simple", "https://extra.example/simple"]

[env.pyonly]
pypi = ["attrs"]
"""


@pytest.fixture
def valid(tmp_path: Path) -> Workspace:
    root = write(tmp_path / "ws", VALID)
    (root / "recipes").mkdir()
    return parse(root)


def test_workspace_settings(valid: Workspace, tmp_path: Path) -> None:
    assert valid.root == tmp_path / "ws"
    assert valid.manifest == tmp_path / "ws" / "envbuild.toml"
    assert valid.store == "/srv/store"
    assert valid.locks_dir == "lockfiles"
    assert valid.preferred_format == ".tar.bz2"
    assert valid.local_channels == (("demo", "recipes"),)
    assert [e.name for e in valid.envs] == ["base", "over", "pyonly"]
    assert (
        valid.lock_path("base", "osx-arm64")
        == tmp_path / "ws" / "lockfiles" / "base" / "osx-arm64.json"
    )


def test_env_inheriting_workspace_defaults(valid: Workspace) -> None:
    assert valid.env("base") == EnvSpec(
        name="base",
        archs=("linux-64", "osx-arm64"),  # canonical order, deduplicated
        channels=(
            CF,  # a name: expanded
            "./local-chan",  # paths and URLs: as written, without a trailing slash
            "https://repo.example/chan",
            "demo",  # a local channel: as written
            "~/chans/mine",
            "/abs/chan",
        ),
        conda=(Dep("numpy >=1.26"), Dep("pandas 2.*"), Dep("scipy >=1.11,<2")),
        pypi=(Dep("requests>=2"), Dep("foo-bar[a,b]")),
        python="3.11.*",
        pypi_index="https://mirror.example/simple",
        extra_indexes=("https://extra.example/simple",),
        virtual_packages=(("__cuda", "11.8"), ("__glibc", "2.28")),
        settings=ResolverSettings(channel_priority="flexible", solve_timeout=60.0),
    )


def test_env_overriding_workspace(valid: Workspace) -> None:
    assert valid.env("over") == EnvSpec(
        name="over",
        archs=("linux-aarch64",),
        channels=(BIOCONDA, "https://conda.anaconda.org/conda-forge/label/dev"),
        conda=(Dep("zlib"),),
        python=">=3.10",
        pypi_index="https://mirror.example/simple",
        extra_indexes=("https://extra.example/simple", "https://env.example/simple"),
        virtual_packages=(("__cuda", "12.0=cuda"), ("__glibc", "2.28"), ("__osx", "13.0")),
        settings=ResolverSettings(channel_priority="strict", solve_timeout=60.0),
    )
    assert valid.env("over").conda_specs("linux-aarch64") == ["python >=3.10", "zlib"]


def test_pypi_only_env(valid: Workspace) -> None:
    env = valid.env("pyonly")
    assert env.pypi == (Dep("attrs"),)
    assert env.conda == ()
    assert env.python is None
    assert env.kind == "pypi"
    assert valid.env("base").kind == "mixed"
    assert valid.env("over").kind == "conda"


def test_unknown_env(valid: Workspace) -> None:
    with pytest.raises(SpecError) as info:
        valid.env("nope")
    assert info.value.problems == (
        "envbuild.toml: no environment 'nope' (known: base, over, pyonly)",
    )


@pytest.mark.parametrize(
    ("line", "python", "conda_specs"),
    [
        ('python = "3.11"', "3.11.*", ["python 3.11.*", "zlib"]),
        ('python = "3.12.1"', "3.12.1", ["python 3.12.1", "zlib"]),
        ('python = ">=3.10"', ">=3.10", ["python >=3.10", "zlib"]),
        ('conda = ["python=3.11", "zlib"]', "3.11.*", ["python 3.11.*", "zlib"]),
        ('conda = ["python", "zlib"]', "*", ["python", "zlib"]),
        ('conda = ["python >=3.9,<3.12", "zlib"]', ">=3.9,<3.12", ["python >=3.9,<3.12", "zlib"]),
    ],
)
def test_python(tmp_path: Path, line: str, python: str, conda_specs: list[str]) -> None:
    conda = "" if line.startswith("conda") else 'conda = ["zlib"]\n'
    root = write(tmp_path, f'[workspace]\nchannels = ["conda-forge"]\n[env.x]\n{line}\n{conda}')
    env = parse(root).env("x")
    assert env.python == python
    assert env.conda == (Dep("zlib"),)
    assert env.conda_specs("linux-64") == conda_specs


def test_python_key_contradicting_conda_python_is_refused(tmp_path: Path) -> None:
    """issue 7 §7: ``python = "3.11"`` beside ``python=3.12`` in the conda list cannot both
    hold; the key used to win silently."""
    root = write(
        tmp_path,
        '[workspace]\nchannels = ["conda-forge"]\n[env.x]\npython = "3.12"\nconda = ["python=3.10"]\n',
    )
    assert problems_of(root) == (
        "envbuild.toml:4: [env.x] python: python = \"3.12\" contradicts 'python=3.10' in conda: "
        "give the python version once (remove one of them)",
    )


def test_python_key_with_a_bare_conda_python(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        '[workspace]\nchannels = ["conda-forge"]\n[env.x]\npython = "3.12"\nconda = ["python"]\n',
    )
    assert parse(root).env("x").python == "3.12.*"


def test_python_key_agreeing_with_conda_python(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        '[workspace]\nchannels = ["conda-forge"]\n[env.x]\npython = "3.12"\nconda = ["python=3.12"]\n',
    )
    assert parse(root).env("x").python == "3.12.*"


@pytest.mark.parametrize("default_arch", ARCHS)
def test_default_arch_when_no_archs(tmp_path: Path, default_arch: str) -> None:
    root = write(tmp_path, '[workspace]\nchannels = ["conda-forge"]\n[env.x]\nconda = ["zlib"]\n')
    assert parse(root, default_arch).env("x").archs == (default_arch,)


def test_workspace_archs_beat_default_arch(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        '[workspace]\narchs = ["osx-64"]\nchannels = ["conda-forge"]\n[env.x]\nconda = ["zlib"]\n',
    )
    assert parse(root, "linux-aarch64").env("x").archs == ("osx-64",)


def test_defaults_of_an_empty_workspace(tmp_path: Path) -> None:
    ws = parse(write(tmp_path, '[env.x]\npypi = ["attrs"]\n'))
    assert ws.store == ".envbuild/store"
    assert ws.locks_dir == "locks"
    assert ws.preferred_format == ".conda"
    assert ws.local_channels == ()
    assert ws.env("x") == EnvSpec(name="x", archs=("linux-64",), channels=(), pypi=(Dep("attrs"),))


def test_empty_manifest(tmp_path: Path) -> None:
    assert parse(write(tmp_path, "")).envs == ()


# --------------------------------------------------------------------------- failure modes (fixtures)

FAILURES: dict[str, list[str]] = {
    "unknown-key-workspace": [
        f"envbuild.toml:3: [workspace] chanels: unknown key 'chanels': allowed keys are {WS_KEYS}",
    ],
    "unknown-key-env": [
        f"envbuild.toml:6: [env.web] depends: unknown key 'depends': allowed keys are {ENV_KEY_LIST}",
    ],
    "unknown-table": [
        "envbuild.toml:4: unknown table '[environment]': only [workspace] and [env.NAME] are allowed",
    ],
    "missing-file": [
        "envbuild.toml:5: [env.web] file: 'envs/web.yml' does not exist: "
        "create it or fix the path (relative to envbuild.toml)",
    ],
    "unsupported-file-extension": [
        "envbuild.toml:5: [env.web] file: 'envs/web.cfg' is not an environment.yml (.yml), "
        "requirements (.txt, .in) or pyproject.toml",
    ],
    "bad-arch": [
        f"envbuild.toml:2: [workspace] archs: 'win-32' is not a supported arch: use one of {ARCH_LIST}",
    ],
    "empty-archs": [
        "envbuild.toml:5: [env.web] archs: must not be empty: list at least one arch",
    ],
    "bad-channel": [
        "envbuild.toml:2: [workspace] channels: 'not a channel!' is not a channel name, path or URL",
    ],
    "bad-channel-priority": [
        "envbuild.toml:3: [workspace] channel-priority: 'loose' is not one of strict, flexible, disabled",
    ],
    "bad-solve-timeout": [
        "envbuild.toml:3: [workspace] solve-timeout: must be a positive number of seconds, "
        "like solve-timeout = 120 (got 0)",
    ],
    "conda-not-list": [
        'envbuild.toml:5: [env.web] conda: must be a list of strings, like conda = ["..."]',
    ],
    "invalid-conda-spec": [
        "envbuild.toml:5: [env.web] conda: 'scipy>>1' is not a valid conda spec: "
        "unable to parse version spec: >>1",
    ],
    "invalid-env-name": [
        "envbuild.toml:4: [env.Web]: env name 'Web' may only hold a-z, 0-9, '_', '.', '-'"
        f"{ONLY_NAMES}",
    ],
    "bad-virtual-packages": [
        'envbuild.toml:6: [env.web] virtual-packages: must map __names to versions, like __glibc = "2.28"',
    ],
    "missing-local-channel-dir": [
        "envbuild.toml:3: [workspace] local-channels: recipe dir 'recipes' of 'demo' does not exist: "
        "create it or fix the path",
    ],
    "no-channels": [
        "envbuild.toml:1: [env.web] channels: no channels: set channels in [workspace] or in this env",
    ],
    "bad-python": [
        'envbuild.toml:5: [env.web] python: must be a version string, like python = "3.11"',
    ],
    "bad-preferred-format": [
        "envbuild.toml:3: [workspace] preferred-format: '.zip' is not one of .conda, .tar.bz2",
    ],
    "invalid-toml": [
        "envbuild.toml:2: not valid TOML: Unclosed array (at end of document): fix the syntax there",
    ],
    "spec-file-error": [
        "envs/web.yml:3: 'scipy>>1' is not a valid conda spec: unable to parse version spec: >>1",
    ],
    "many-problems": [  # in the order of the lines they name
        "envbuild.toml:1: unknown table '[toolz]': only [workspace] and [env.NAME] are allowed",
        f"envbuild.toml:5: [workspace] archs: 'win-32' is not a supported arch: use one of {ARCH_LIST}",
        "envbuild.toml:7: [workspace] channel-priority: 'loose' is not one of strict, flexible, disabled",
        "envbuild.toml:8: [workspace] solve-timeout: must be a positive number of seconds, "
        "like solve-timeout = 120 (got -5)",
        f"envbuild.toml:9: [workspace] colour: unknown key 'colour': allowed keys are {WS_KEYS}",
        "envbuild.toml:12: [env.api] file: 'missing.yml' does not exist: "
        "create it or fix the path (relative to envbuild.toml)",
        "envbuild.toml:13: [env.api] conda: 'scipy>>1' is not a valid conda spec: "
        "unable to parse version spec: >>1",
        "envbuild.toml:15: [env.Web]: env name 'Web' may only hold a-z, 0-9, '_', '.', '-'"
        f"{ONLY_NAMES}",
        'envbuild.toml:16: [env.Web] conda: must be a list of strings, like conda = ["..."]',
    ],
}

# Fixture folders for known bugs, tested separately below (xfail).
BUG_FIXTURES = {"bad-channel-in-spec-file", "pyproject-lookalike", "bad-pypi-requirement"}


def test_every_fixture_folder_is_tested() -> None:
    folders = {p.name for p in FIXTURES.iterdir() if p.is_dir()}
    assert folders == set(FAILURES) | BUG_FIXTURES


@pytest.mark.parametrize("mode", sorted(FAILURES))
def test_failure_mode(mode: str) -> None:
    assert list(problems_of(FIXTURES / mode)) == FAILURES[mode]


@pytest.mark.parametrize("mode", sorted(FAILURES))
def test_failure_mode_through_load_workspace(mode: str) -> None:
    with pytest.raises(SpecError) as info:
        load_workspace(FIXTURES / mode)
    assert list(info.value.problems) == FAILURES[mode]


def test_all_problems_in_one_error() -> None:
    with pytest.raises(SpecError) as info:
        parse(FIXTURES / "many-problems")
    assert len(info.value.problems) == 9
    assert str(info.value) == "; ".join(FAILURES["many-problems"])


@pytest.mark.parametrize(
    ("table", "line", "problem"),
    [
        ("solve-timeout = -5", 3, f"{SECONDS} (got -5)"),
        ('solve-timeout = "60"', 3, f'{SECONDS} (got "60")'),
        ("solve-timeout = true", 3, f"{SECONDS} (got true)"),
        ("solve-timeout = nan", 3, f"{SECONDS} (got nan)"),
        ("solve-timeout = inf", 3, f"{SECONDS} (got inf)"),
        ('channel-priority = "Strict"', 3, "'Strict' is not one of strict, flexible, disabled"),
        ("channel-priority = 1", 3, 'must be a string, like channel-priority = "..."'),
        ('archs = "linux-64"', 3, 'must be a list of strings, like archs = ["..."]'),
        ('archs = ["linux-64", 1]', 3, 'must be a list of strings, like archs = ["..."]'),
        ('archs = [" "]', 3, "must not be empty: list at least one arch"),
        ('channels = "conda-forge"', 2, 'must be a list of strings, like channels = ["..."]'),
        ('pypi-index = ["x"]', 3, 'must be a string, like pypi-index = "..."'),
        (
            "virtual-packages = { __glibc = 2.28 }",
            3,
            'must map __names to versions, like __glibc = "2.28"',
        ),
        (
            "local-channels = { demo = 1 }",
            3,
            'must map names to recipe dirs, like demo = "recipes"',
        ),
    ],
)
def test_workspace_value_errors(tmp_path: Path, table: str, line: int, problem: str) -> None:
    key = table.split(" = ")[0]
    ws = '[workspace]\nchannels = ["conda-forge"]\n' if key != "channels" else "[workspace]\n"
    root = write(tmp_path, f'{ws}{table}\n\n[env.web]\npypi = ["attrs"]\n')
    assert problems_of(root) == (f"envbuild.toml:{line}: [workspace] {key}: {problem}",)


@pytest.mark.parametrize(
    ("setting", "problem"),
    [
        (
            'archs = ["linux-64", "linux-32"]',
            f"'linux-32' is not a supported arch: use one of {ARCH_LIST}",
        ),
        ('channels = ["conda-forge", ""]', None),  # blanks are dropped, not an error
        ('channels = ["bad channel"]', "'bad channel' is not a channel name, path or URL"),
        ('conda = ["numpy", 3]', 'must be a list of strings, like conda = ["..."]'),
        ('conda = ["=1.0"]', "'=1.0' is not a valid conda spec: "),
        ('pypi = "attrs"', 'must be a list of strings, like pypi = ["..."]'),
        ('python = ""', 'must be a version string, like python = "3.11"'),
        ("file = 3", 'must be a string, like file = "..."'),
        ('channel-priority = "none"', "'none' is not one of strict, flexible, disabled"),
        ("virtual-packages = []", 'must map __names to versions, like __glibc = "2.28"'),
        ('extra-indexes = "https://x"', 'must be a list of strings, like extra-indexes = ["..."]'),
    ],
)
def test_env_value_errors(tmp_path: Path, setting: str, problem: str | None) -> None:
    key = setting.split(" = ")[0]
    root = write(tmp_path, f'[workspace]\nchannels = ["conda-forge"]\n\n[env.web]\n{setting}\n')
    if problem is None:
        assert parse(root).env("web").channels == (CF,)
        return
    (got,) = problems_of(root)
    prefix = f"envbuild.toml:5: [env.web] {key}: {problem}"
    if problem.endswith(": "):  # the rest is rattler's own wording
        assert got.startswith(prefix)
    else:
        assert got == prefix


@pytest.mark.parametrize(
    ("name", "header"),
    [
        ("Web", "[env.Web]"),
        ("_web", "[env._web]"),
        ("-web", "[env.-web]"),
        ("web+1", '[env."web+1"]'),
    ],
)
def test_invalid_env_names(tmp_path: Path, name: str, header: str) -> None:
    root = write(
        tmp_path, f'[workspace]\nchannels = ["conda-forge"]\n\n{header}\nconda = ["zlib"]\n'
    )
    assert problems_of(root) == (
        f"envbuild.toml:4: {header}: env name '{name}' may only hold a-z, 0-9, '_', '.', '-'"
        f"{ONLY_NAMES}",
    )


@pytest.mark.parametrize("name", ["web", "web-2", "web_2", "web.v2", "0web"])
def test_valid_env_names(tmp_path: Path, name: str) -> None:
    header = f'[env."{name}"]' if "." in name else f"[env.{name}]"
    root = write(tmp_path, f'[workspace]\nchannels = ["conda-forge"]\n{header}\nconda = ["zlib"]\n')
    assert [e.name for e in parse(root).envs] == [name]


def test_env_not_a_table(tmp_path: Path) -> None:
    root = write(tmp_path, '[workspace]\nchannels = ["conda-forge"]\n[env]\nweb = 1\n')
    assert problems_of(root) == ("envbuild.toml: [env.web]: must be a table",)


def test_workspace_not_a_table(tmp_path: Path) -> None:
    root = write(tmp_path, "workspace = 1\n")
    assert problems_of(root) == ("envbuild.toml: [workspace] and [env.NAME] must be tables",)


# --------------------------------------------------------------------------- spec files


def test_env_from_environment_yml(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        """\
        [workspace]
        archs = ["linux-64", "osx-arm64"]
        virtual-packages = { __glibc = "2.28" }

        [env.x]
        file = "envs/x.yml"
        conda = ["zlib", "numpy >= 1.26"]
        pypi = ["attrs", "Requests"]
        """,
        {
            "envs/x.yml": """\
            channels:
              - conda-forge
              - ./local
            dependencies:
              - python=3.10
              - numpy>=1.26
              - libgcc  # [linux]
              - pip:
                - requests
                - --extra-index-url https://extra.example/simple
                - --pre
            """
        },
    )
    env = parse(root).env("x")
    assert env == EnvSpec(
        name="x",
        archs=("linux-64", "osx-arm64"),
        channels=(CF, "./local"),
        conda=(Dep("numpy >=1.26"), Dep("libgcc", ("linux-64", "linux-aarch64")), Dep("zlib")),
        pypi=(Dep("requests"), Dep("attrs")),
        python="3.10.*",
        extra_indexes=("https://extra.example/simple",),
        pre=True,
        virtual_packages=(("__glibc", "2.28"),),
        spec_files=("envs/x.yml",),
    )
    assert env.conda_specs("linux-64") == ["python 3.10.*", "numpy >=1.26", "libgcc", "zlib"]
    assert env.conda_specs("osx-arm64") == ["python 3.10.*", "numpy >=1.26", "zlib"]


def test_inline_settings_beat_environment_yml(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        """\
        [env.x]
        file = "env.yaml"
        channels = ["bioconda"]
        python = "3.12"
        """,
        {"env.yaml": "channels: [conda-forge]\ndependencies: [python=3.10, zlib]\n"},
    )
    env = parse(root).env("x")
    assert env.channels == (BIOCONDA,)
    assert env.python == "3.12.*"
    assert env.conda == (Dep("zlib"),)
    assert env.spec_files == ("env.yaml",)


def test_workspace_channels_when_spec_file_has_none(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        '[workspace]\nchannels = ["bioconda"]\n[env.x]\nfile = "env.yml"\n',
        {"env.yml": "dependencies: [zlib]\n"},
    )
    assert parse(root).env("x").channels == (BIOCONDA,)


REQS = """\
--conda-channel conda-forge
--conda-pkg zlib
Requests>=2
--pre
--sys-pkg __cuda==12.0
--extra-index-url https://extra.example/simple
--find-links ./wheels
--trusted-host extra.example
python==3.11
"""


def test_env_from_requirements_txt(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        """\
        [workspace]
        virtual-packages = { __cuda = "11.8", __glibc = "2.28" }
        extra-indexes = ["https://ws.example/simple"]

        [env.x]
        file = "reqs.txt"
        conda = ["numpy", "zlib"]
        pypi = ["attrs", "requests >= 2"]
        """,
        {"reqs.txt": REQS},
    )
    assert parse(root).env("x") == EnvSpec(
        name="x",
        archs=("linux-64",),
        channels=(CF,),
        conda=(Dep("zlib"), Dep("numpy")),
        pypi=(Dep("requests>=2"), Dep("attrs")),
        python="3.11.*",
        extra_indexes=("https://ws.example/simple", "https://extra.example/simple"),
        find_links=("./wheels",),
        trusted_hosts=("extra.example",),
        pre=True,
        virtual_packages=(("__cuda", "12.0"), ("__glibc", "2.28")),  # the file's --sys-pkg wins
        spec_files=("reqs.txt",),
    )


def test_env_from_pyproject_toml(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        """\
        [workspace]
        channels = ["conda-forge"]

        [env.x]
        file = "app/pyproject.toml"
        conda = ["nodejs"]
        pypi = ["attrs", "Requests>=2"]
        """,
        {
            "app/pyproject.toml": """\
            [project]
            name = "app"
            requires-python = ">=3.10"
            dependencies = ["requests>=2", "Flask[Async]"]
            """
        },
    )
    assert parse(root).env("x") == EnvSpec(
        name="x",
        archs=("linux-64",),
        channels=(CF,),
        conda=(Dep("nodejs"),),
        pypi=(Dep("requests>=2"), Dep("flask[async]"), Dep("attrs")),
        python=">=3.10",
        spec_files=("app/pyproject.toml",),
    )


def test_spec_file_problems_are_collected_with_manifest_problems(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        """\
        [workspace]
        channels = ["conda-forge"]
        bogus = 1

        [env.a]
        file = "a.yml"

        [env.b]
        file = "pyproject.toml"
        """,
        {"a.yml": "dependencies:\n  - numpy  # [windows]\n", "pyproject.toml": "[tool.x]\n"},
    )
    assert problems_of(root) == (
        f"envbuild.toml:3: [workspace] bogus: unknown key 'bogus': allowed keys are {WS_KEYS}",
        "a.yml:2: selector name 'windows' is unknown (known: aarch64, arm64, linux, linux64, osx, "
        "osx64, osxarm64, unix, win, win64, x86, x86_64)",
        "pyproject.toml: has no [project] table: add one with a 'dependencies' list",
    )


# --------------------------------------------------------------------------- known bugs


def test_pyproject_lookalike_is_refused() -> None:
    assert problems_of(FIXTURES / "pyproject-lookalike") == (
        "envbuild.toml:2: [env.web] file: 'envs/mypyproject.toml' is not an environment.yml "
        "(.yml), requirements (.txt, .in) or pyproject.toml",
    )


def test_bad_channel_in_spec_file_is_a_spec_error() -> None:
    problems = problems_of(FIXTURES / "bad-channel-in-spec-file")
    assert any("'not a channel!'" in p for p in problems)


def test_bad_inline_pypi_requirement_has_manifest_line() -> None:
    assert problems_of(FIXTURES / "bad-pypi-requirement") == (
        "envbuild.toml:6: [env.web] pypi: 'bad dep!' is not a valid requirement: "
        "Expected semicolon (after name with no version specifier) or end",
    )


@pytest.mark.parametrize(
    "entry", ["--pre", "--conda-pkg zlib", "--sys-pkg __cuda==12.0", "python==3.11", "--no-index"]
)
def test_inline_pypi_options_are_honoured_or_refused(tmp_path: Path, entry: str) -> None:
    root = write(
        tmp_path, f'[workspace]\nchannels = ["conda-forge"]\n[env.x]\npypi = ["attrs", "{entry}"]\n'
    )
    try:
        env = parse(root).env("x")
    except SpecError:
        return
    plain = EnvSpec(name="x", archs=("linux-64",), channels=(CF,), pypi=(Dep("attrs"),))
    assert env != plain, f"{entry!r} was silently ignored"


@pytest.mark.parametrize("key", ["store", "locks-dir"])
def test_store_and_locks_dir_must_be_strings(tmp_path: Path, key: str) -> None:
    root = write(tmp_path, f'[workspace]\n{key} = ["x"]\n[env.x]\npypi = ["attrs"]\n')
    assert problems_of(root) == (
        f'envbuild.toml:2: [workspace] {key}: must be a string, like {key} = "..."',
    )


# --------------------------------------------------------------------------- load_workspace


def test_load_workspace_not_found(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_workspace(tmp_path)
    assert info.value.problems == (
        f"{tmp_path}/envbuild.toml: not found: run envbuild in a workspace directory holding envbuild.toml",
    )
    assert str(info.value) == info.value.problems[0]


def test_load_workspace_uses_the_host_arch_as_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spec_module, "host_arch", lambda: "osx-arm64")
    root = write(tmp_path, '[workspace]\nchannels = ["conda-forge"]\n[env.x]\nconda = ["zlib"]\n')
    ws = load_workspace(root)
    assert ws.root == root
    assert ws.env("x").archs == ("osx-arm64",)


def test_load_workspace_valid(tmp_path: Path) -> None:
    root = write(tmp_path, VALID)
    (root / "recipes").mkdir()
    assert load_workspace(root) == parse(root)
