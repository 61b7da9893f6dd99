"""Tests for the pyproject.toml parser (envbuild.parsers.pyproject)."""

from __future__ import annotations

import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envbuild.errors import SpecError
from envbuild.parsers import Dep, ParsedSpec
from envbuild.parsers.pyproject import parse_pyproject

PATH = "pyproject.toml"


def parse(text: str) -> ParsedSpec:
    return parse_pyproject(textwrap.dedent(text), PATH)


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse(text)
    return list(info.value.problems)


def test_dependencies_and_requires_python() -> None:
    spec = parse(
        """\
        [build-system]
        requires = ["setuptools"]

        [project]
        name = "web"
        version = "1.0"
        requires-python = ">=3.10, <3.13"
        dependencies = [
            "Requests>=2",
            "numpy >= 1.26",
            "Foo_Bar[B,a] ; python_version < '3.12'",
            "requests>=2",
        ]

        [project.optional-dependencies]
        test = ["pytest"]
        """
    )
    assert spec == ParsedSpec(
        pypi=(
            Dep("requests>=2"),
            Dep("numpy>=1.26"),
            Dep('foo-bar[a,b]; python_version < "3.12"'),
        ),
        python=">=3.10,<3.13",
    )


@pytest.mark.parametrize(
    ("requires", "python"),
    [
        (">=3.10", ">=3.10"),
        (">=3.10,<3.13", ">=3.10,<3.13"),
        (">=3.10 , <3.13", ">=3.10,<3.13"),
        ("~=3.11", "~=3.11"),
        ("==3.11.*", "==3.11.*"),
    ],
)
def test_requires_python(requires: str, python: str) -> None:
    spec = parse(f'[project]\nname = "x"\nrequires-python = "{requires}"\n')
    assert spec.python == python
    assert spec.pypi == ()


def test_no_requires_python_no_dependencies() -> None:
    assert parse('[project]\nname = "x"\n') == ParsedSpec()


def test_requires_python_whitespace_is_normalised() -> None:
    assert parse('[project]\nname = "x"\nrequires-python = ">= 3.10, < 3.13"\n').python == (
        ">=3.10,<3.13"
    )


@pytest.mark.parametrize(
    "text",
    [
        '[tool.black]\nline-length = 100\n',
        "",
        'project = "web"\n',
        '[build-system]\nrequires = ["setuptools"]\n',
    ],
)
def test_missing_project_table(text: str) -> None:
    assert problems(text) == [
        "pyproject.toml: has no [project] table: add one with a 'dependencies' list"
    ]


def test_bad_dependency_has_its_line() -> None:
    text = """\
        [project]
        name = "web"
        dependencies = [
            "requests",
            "bad dep!",
            "numpy",
            "also bad ==",
        ]
        """
    assert problems(text) == [
        "pyproject.toml:5: 'bad dep!' is not a valid requirement: "
        "Expected semicolon (after name with no version specifier) or end",
        "pyproject.toml:7: 'also bad ==' is not a valid requirement: "
        "Expected semicolon (after name with no version specifier) or end",
    ]


def test_bad_dependency_line_ignores_earlier_mentions() -> None:
    text = """\
        [project]
        name = "web"
        description = "never write bad dep! in a pyproject"
        dependencies = ["bad dep!"]
        """
    assert problems(text) == [
        "pyproject.toml:4: 'bad dep!' is not a valid requirement: "
        "Expected semicolon (after name with no version specifier) or end",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[project]\nname = "x"\ndependencies = "requests"\n',
            "pyproject.toml: [project].dependencies must be a list of strings",
        ),
        (
            '[project]\nname = "x"\ndependencies = ["requests", 3]\n',
            "pyproject.toml: [project].dependencies must be a list of strings",
        ),
        (
            '[project]\nname = "x"\nrequires-python = 3.11\n',
            "pyproject.toml:3: [project].requires-python must be a version specifier like '>=3.10'",
        ),
        (
            "[project\n",
            "pyproject.toml: not valid TOML: Expected ']' at the end of a table declaration "
            "(at line 1, column 9)",
        ),
    ],
)
def test_other_errors(text: str, expected: str) -> None:
    assert problems(text) == [expected]


def test_path_is_used_in_messages() -> None:
    with pytest.raises(SpecError) as info:
        parse_pyproject("[tool.x]\n", "sub/pyproject.toml")
    assert info.value.problems == (
        "sub/pyproject.toml: has no [project] table: add one with a 'dependencies' list",
    )


_NAMES = st.sampled_from(["requests", "numpy", "Flask", "foo_bar", "Django", "attrs"])
_SPECS = st.sampled_from(["", ">=1", "==2.0", "<3,>=1", "~=1.4"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_NAMES, _SPECS, st.sampled_from(["", " "])), max_size=6))
def test_dependencies_round_trip_in_order(deps: list[tuple[str, str, str]]) -> None:
    lines = [f'    "{n}{sp}{s}",' for n, s, sp in deps]
    text = '[project]\nname = "x"\ndependencies = [\n' + "\n".join(lines) + "\n]\n"
    spec = parse_pyproject(text, PATH)
    expected = [n.lower().replace("_", "-") + s for n, s, _ in deps]
    assert [d.value for d in spec.pypi] == list(dict.fromkeys(expected))
    assert spec.python is None
