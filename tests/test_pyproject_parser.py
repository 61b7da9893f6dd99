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
        "[tool.black]\nline-length = 100\n",
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


# --------------------------------------------------------------------------- extras and groups

FULL = """\
    [project]
    name = "Web_App"
    dependencies = ["requests"]
    requires-python = ">=3.10"

    [project.optional-dependencies]
    Test = ["pytest>=8", "web-app[lint]; python_version < '3.12'"]
    lint = ["ruff", "web_app[test]"]
    docs = ["sphinx"]

    [dependency-groups]
    dev = ["black", {include-group = "Type.Check"}, "web-app[docs]"]
    type_check = ["mypy", {include-group = "stubs"}]
    stubs = ["types-requests", "black"]
    """


@pytest.mark.parametrize(
    ("extras", "groups", "expected"),
    [
        ((), (), ["requests"]),
        (("docs",), (), ["requests", "sphinx"]),
        # a self-reference brings the extras it names, with its marker; cycles end
        (("TEST",), (), ["requests", "pytest>=8", 'ruff; python_version < "3.12"']),
        (("lint",), (), ["requests", "ruff", "pytest>=8"]),
        # include-group followed in order; the group's self-reference brings an extra
        ((), ("Dev",), ["requests", "black", "mypy", "types-requests", "sphinx"]),
        (("lint",), ("stubs",), ["requests", "ruff", "pytest>=8", "types-requests", "black"]),
    ],
)
def test_extras_and_groups_chosen(
    extras: tuple[str, ...], groups: tuple[str, ...], expected: list[str]
) -> None:
    spec = parse_pyproject(textwrap.dedent(FULL), PATH, extras, groups)
    assert [d.value for d in spec.pypi] == expected
    assert spec.python == ">=3.10"


@pytest.mark.parametrize(
    ("text", "extras", "groups", "expected"),
    [
        pytest.param(
            FULL, ("doc", "docs"), (), [
                "pyproject.toml: no extra 'doc' in [project.optional-dependencies] (available: "
                "Test, docs, lint)"
            ], id="unknown-extra",
        ),
        pytest.param(
            FULL, ("a b",), (), [
                "pyproject.toml: 'a b' is not an extra name (letters, digits, '-', '_', '.')"
            ], id="not-an-extra-name",
        ),
        pytest.param(
            FULL, (), ("tests",), [
                "pyproject.toml: no dependency group 'tests' in [dependency-groups] (available: "
                "dev, stubs, type_check)"
            ], id="unknown-group",
        ),
        pytest.param(
            '[project]\nname = "w"\ndependencies = []\n', (), ("dev",), [
                "pyproject.toml: has no [dependency-groups] table, so no group 'dev': add the "
                "table or remove groups"
            ], id="no-groups-table",
        ),
        pytest.param(
            '[project]\nname = "w"\n[dependency-groups]\na = [{include-group = "b"}]\n'
            'b = ["x", {include-group = "c"}]\nc = [{include-group = "A"}]\n', (), ("a",), [
                "pyproject.toml: dependency groups include each other in a cycle: a -> b -> c -> a"
            ], id="cycle",
        ),
        pytest.param(
            '[project]\nname = "w"\n[dependency-groups]\nok = ["x"]\nself = [{include-group = '
            '"self"}]\n', (), ("ok",), [
                "pyproject.toml: dependency groups include each other in a cycle: self -> self"
            ], id="unchosen-group-is-checked-too",
        ),
        pytest.param(
            '[project]\nname = "w"\n[dependency-groups]\na = [{include-group = "nope"}, 3]\n',
            (), ("a",), [
                "pyproject.toml: dependency group 'a' includes 'nope', which is not a group "
                "(available: a)",
                "pyproject.toml: dependency group 'a': 3 is neither a requirement string nor "
                '{include-group = "NAME"}',
            ], id="bad-items",
        ),
        pytest.param(
            '[project]\nname = "w"\n[dependency-groups]\nA_b = ["x"]\na-B = ["y"]\n', (), (), [
                "pyproject.toml: dependency groups 'A_b' and 'a-B' have the same normalised "
                "name 'a-b': rename one"
            ], id="names-clash",
        ),
        pytest.param(
            '[project]\nname = "w"\n[project.optional-dependencies]\nt = ["w[nope]"]\n', ("t",),
            (), [
                "pyproject.toml: no extra 'nope' in [project.optional-dependencies] "
                "(available: t)"
            ], id="self-reference-to-unknown-extra",
        ),
        pytest.param(
            '[project]\nname = "w"\ndynamic = ["optional-dependencies"]\n', ("t",), (), [
                "pyproject.toml: [project.optional-dependencies] is dynamic (computed by the "
                "build backend), and envbuild reads only static metadata: list the extras in "
                "[project.optional-dependencies], or remove extras from the env"
            ], id="dynamic-extras",
        ),
        pytest.param(
            '[project]\nname = "w"\n[dependency-groups]\nd = [\n  "ok",\n  "bad dep!",\n]\n',
            (), ("d",), [
                "pyproject.toml:6: 'bad dep!' is not a valid requirement: Expected semicolon "
                "(after name with no version specifier) or end"
            ], id="bad-requirement-in-group-has-its-line",
        ),
    ],
)  # fmt: skip
def test_extras_and_groups_errors(
    text: str, extras: tuple[str, ...], groups: tuple[str, ...], expected: list[str]
) -> None:
    with pytest.raises(SpecError) as info:
        parse_pyproject(textwrap.dedent(text), PATH, extras, groups)
    assert list(info.value.problems) == expected


def test_groups_without_a_project_table() -> None:
    text = '[dependency-groups]\ndocs = ["sphinx"]\n'
    assert [d.value for d in parse_pyproject(text, PATH, (), ("docs",)).pypi] == ["sphinx"]
    assert problems(text) == [
        "pyproject.toml: has no [project] table: add one with a 'dependencies' list, or choose "
        "dependency groups with groups = [...] (docs)"
    ]


DYNAMIC = (
    "pyproject.toml: [project].dependencies is dynamic (computed by the build backend), and "
    "envbuild reads only static metadata: list them in [project].dependencies, or lock a "
    'requirements file instead (file = "requirements.txt")'
)
POETRY = (
    "pyproject.toml: the dependencies are in [tool.poetry.dependencies], which envbuild does "
    "not read: declare them in [project].dependencies (PEP 621, which Poetry 2 reads too), or "
    "lock the output of `poetry export -f requirements.txt`"
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[project]\nname = "w"\ndynamic = ["version", "dependencies"]\n', DYNAMIC),
        (
            '[project]\nname = "w"\ndynamic = ["dependencies"]\n[tool.poetry.dependencies]\n'
            'python = "^3.10"\nrequests = "^2"\n',
            DYNAMIC,
        ),
        (
            '[tool.poetry]\nname = "w"\n[tool.poetry.dependencies]\npython = "^3.10"\n'
            'requests = "^2"\n',
            POETRY,
        ),
        ('[project]\nname = "w"\n[tool.poetry.dependencies]\nrequests = "^2"\n', POETRY),
    ],
    ids=["dynamic", "poetry-2-dynamic", "poetry-only", "poetry-beside-a-bare-project"],
)
def test_dependencies_envbuild_cannot_read_are_refused(text: str, expected: str) -> None:
    assert problems(text) == [expected]


def test_poetry_file_declaring_only_python_is_an_env_without_dependencies() -> None:
    text = '[project]\nname = "w"\n[tool.poetry.dependencies]\npython = "^3.10"\n'
    assert parse(text) == ParsedSpec()


_GROUP = st.sampled_from(["a", "b", "c", "d", "e"])


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(
        _GROUP,
        st.lists(
            st.one_of(
                st.sampled_from(["x", "y", "z", "w"]), _GROUP.map(lambda g: {"include-group": g})
            ),
            max_size=4,
        ),
        min_size=1,
    ),
    st.lists(_GROUP, min_size=1, max_size=3),
)
def test_expand_groups_matches_a_plain_graph_walk(
    groups: dict[str, list], chosen: list[str]
) -> None:
    """Against an independent oracle: reachability for the requirements, a cycle check on
    the whole graph for the problems (every group is checked, chosen or not)."""
    from envbuild.parsers.pyproject import expand_groups

    edges = {
        g: [i["include-group"] for i in items if isinstance(i, dict)] for g, items in groups.items()
    }

    def on_cycle(start: str) -> bool:
        stack, seen = list(edges.get(start, [])), set()
        while stack:
            node = stack.pop()
            if node == start:
                return True
            if node in groups and node not in seen:
                seen.add(node)
                stack += edges[node]
        return False

    found, problems_ = expand_groups(groups, chosen)
    unknown = {t for ts in edges.values() for t in ts if t not in groups}
    unknown_chosen = {c for c in chosen if c not in groups}
    cyclic = any(on_cycle(g) for g in groups)
    assert bool(problems_) == bool(unknown or unknown_chosen or cyclic)
    assert any("cycle" in p for p in problems_) == cyclic
    if not problems_:
        want: list[str] = []

        def walk(g: str) -> None:
            for item in groups[g]:
                if isinstance(item, str):
                    if item not in want:
                        want.append(item)
                else:
                    walk(item["include-group"])

        for c in chosen:
            walk(c)
        assert found == want
