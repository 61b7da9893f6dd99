"""Tests for the environment.yml parser (envbuild.parsers.envyml) and line selectors."""

from __future__ import annotations

import textwrap

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from envbuild.errors import SpecError
from envbuild.parsers import Dep, ParsedSpec
from envbuild.parsers import envyml as envyml_module
from envbuild.parsers.envyml import parse_environment_yml
from envbuild.parsers.selectors import SelectorSyntaxError, evaluate, selector_names
from envbuild.platforms import ARCHS

PATH = "envs/web.yml"
KNOWN = "aarch64, arm64, linux, linux64, osx, osx64, osxarm64, unix, win, x86, x86_64"


def parse(text: str) -> ParsedSpec:
    return parse_environment_yml(textwrap.dedent(text), PATH)


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse(text)
    return list(info.value.problems)


def by_value(deps: tuple[Dep, ...]) -> dict[str, tuple[str, ...]]:
    out = {d.value: d.archs for d in deps}
    assert len(out) == len(deps), f"duplicate deps in {deps}"
    return out


# --------------------------------------------------------------------------- a full file

FULL = """\
name: web
channels:
  - conda-forge
  - bioconda
dependencies:
  - python=3.11
  - numpy>=1.26
  - Pandas 2.*
  - scipy >= 1.11 , <2
  - libgcc  # [linux]
  - clang  # [osx]
  - arm-only  # [arm64]
  - mkl  # [linux and not aarch64]
  - everywhere  # [unix]
  - nowhere  # [win]
  - pip
  - pip:
    - Requests>=2
    - --extra-index-url https://extra.example/simple
    - --pre
    - --find-links https://wheels.example/links
    - torch  # [linux]
pypi-indices:
  - https://idx.example/simple
"""


@pytest.fixture(scope="module")
def full() -> ParsedSpec:
    return parse_environment_yml(FULL, PATH)


def test_channels_in_order(full: ParsedSpec) -> None:
    assert full.channels == ("conda-forge", "bioconda")


def test_conda_deps_normalised_with_arch_restrictions(full: ParsedSpec) -> None:
    assert by_value(full.conda) == {
        "numpy >=1.26": (),
        "pandas 2.*": (),
        "scipy >=1.11,<2": (),
        "libgcc": ("linux-64", "linux-aarch64"),
        "clang": ("osx-64", "osx-arm64"),
        "arm-only": ("linux-aarch64", "osx-arm64"),
        "mkl": ("linux-64",),
        "everywhere": (),
        "pip": (),
    }


def test_python_extracted_and_not_a_conda_dep(full: ParsedSpec) -> None:
    assert full.python == "3.11.*"
    assert not any(d.value.startswith("python") for d in full.conda)


def test_pip_section(full: ParsedSpec) -> None:
    assert by_value(full.pypi) == {"requests>=2": (), "torch": ("linux-64", "linux-aarch64")}
    assert full.pre is True
    assert full.no_index is False
    assert full.find_links == ("https://wheels.example/links",)
    assert full.trusted_hosts == ()


def test_extra_indexes_from_pip_section_and_pypi_indices(full: ParsedSpec) -> None:
    assert full.extra_indexes == ("https://extra.example/simple", "https://idx.example/simple")


def test_no_sys_packages(full: ParsedSpec) -> None:
    assert full.sys == ()


@pytest.mark.parametrize(
    ("archs", "conda"),
    [
        (
            ("linux-64",),
            {"numpy >=1.26", "pandas 2.*", "scipy >=1.11,<2", "libgcc", "mkl", "everywhere", "pip"},
        ),
        (
            ("linux-aarch64",),
            {"numpy >=1.26", "pandas 2.*", "scipy >=1.11,<2", "libgcc", "arm-only", "everywhere", "pip"},
        ),
        (
            ("osx-64",),
            {"numpy >=1.26", "pandas 2.*", "scipy >=1.11,<2", "clang", "everywhere", "pip"},
        ),
        (
            ("osx-arm64",),
            {"numpy >=1.26", "pandas 2.*", "scipy >=1.11,<2", "clang", "arm-only", "everywhere", "pip"},
        ),
    ],
)
def test_deps_selected_for_each_arch(
    full: ParsedSpec, archs: tuple[str, ...], conda: set[str]
) -> None:
    (arch,) = archs
    assert {d.value for d in full.conda if not d.archs or arch in d.archs} == conda


def test_restrictions_are_over_every_known_arch() -> None:
    """A selected dependency is restricted to the archs of ``platforms.ARCHS`` it is
    selected on, whatever archs an env targets: ``# [linux]`` is (linux-64, linux-aarch64)
    even in a linux-only env; a dependency selected on no arch is dropped."""
    spec = parse("dependencies:\n  - a  # [linux]\n  - b  # [unix]\n  - c  # [win]\n  - d\n")
    assert spec.conda == (Dep("a", ("linux-64", "linux-aarch64")), Dep("b"), Dep("d"))


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("python=3.11", "3.11.*"),
        ("python=3.12", "3.12.*"),
        ("python 3.11.*", "3.11.*"),
        ("python>=3.10", ">=3.10"),
        ("python >=3.10,<3.13", ">=3.10,<3.13"),
        ("python=3.11.4", "3.11.4.*"),
        ("python==3.11.4", "3.11.4"),
        ("python==3.11", "3.11.*"),
        ("python", "*"),
    ],
)
def test_python_spec(line: str, expected: str) -> None:
    spec = parse(f"dependencies:\n  - {line}\n  - numpy\n")
    assert spec.python == expected
    assert spec.conda == (Dep("numpy"),)


def test_duplicates_are_merged() -> None:
    spec = parse(
        """\
        dependencies:
          - numpy>=1.26
          - numpy >= 1.26
          - numpy  # [linux]
          - numpy
        """
    )
    assert spec.conda == (Dep("numpy >=1.26"), Dep("numpy"))


def test_empty_file() -> None:
    assert parse("") == ParsedSpec()


def test_channels_dedupe() -> None:
    spec = parse("channels: [conda-forge, defaults, conda-forge]\ndependencies: [numpy]\n")
    assert spec.channels == ("conda-forge", "defaults")


def test_pip_options_inside_pip_section() -> None:
    spec = parse(
        """\
        dependencies:
          - pip:
            - --extra-index-url https://a.example/simple
            - --extra-index-url=https://b.example/simple
            - --find-links ./wheels
            - --trusted-host a.example
            - --no-index
            - flask
        """
    )
    assert spec.extra_indexes == ("https://a.example/simple", "https://b.example/simple")
    assert spec.find_links == ("./wheels",)
    assert spec.trusted_hosts == ("a.example",)
    assert spec.no_index is True
    assert spec.pre is False
    assert spec.pypi == (Dep("flask"),)


def test_pypi_indexes_alias() -> None:
    spec = parse("pypi-indexes:\n  - https://x.example/simple\ndependencies: [numpy]\n")
    assert spec.extra_indexes == ("https://x.example/simple",)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "channels:\n  - conda-forge\ndependencies:\n  - 'numpy\n  - scipy\n",
            f"{PATH}:5: not valid YAML: found unexpected end of stream",
            id="unclosed-quote",
        ),
        pytest.param(
            "dependencies: [numpy, scipy\n",
            f"{PATH}:2: not valid YAML: "
            + (
                "expected ',' or ']', but got '<stream end>'"
                if envyml_module._Loader is yaml.SafeLoader
                else "did not find expected ',' or ']'"
            ),
            id="unclosed-flow-list",
        ),
    ],
)
def test_invalid_yaml(text: str, expected: str) -> None:
    assert problems(text) == [expected]


def test_not_a_mapping() -> None:
    assert problems("- numpy\n- scipy\n") == [
        f"{PATH}:1: an environment.yml must be a mapping with 'dependencies'"
    ]


def test_invalid_conda_spec() -> None:
    text = "channels: [conda-forge]\ndependencies:\n  - numpy\n  - scipy>>1\n"
    assert problems(text) == [
        f"{PATH}:4: 'scipy>>1' is not a valid conda spec: unable to parse version spec: >>1"
    ]


def test_several_problems_all_reported() -> None:
    text = "dependencies:\n  - scipy>>1\n  - {a: 1}\n  - numpy  # [bogus]\n  - pip:\n    - -e .\n"
    assert problems(text) == [
        f"{PATH}:4: selector name 'bogus' is unknown (known: {KNOWN})",
        f"{PATH}:2: 'scipy>>1' is not a valid conda spec: unable to parse version spec: >>1",
        f"{PATH}:3: a dependency must be a conda spec or a 'pip:' list",
        f"{PATH}:6: '-e .': editable installs are not supported: write 'NAME @ .' or just '.'",
    ]


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("bogus", f"selector name 'bogus' is unknown (known: {KNOWN})"),
        ("linux and windows", f"selector name 'windows' is unknown (known: {KNOWN})"),
        ("py>=38", "selector '[py>=38]' may only use names, not, and, or"),
        ("linux and", "selector '[linux and]' is not a valid expression"),
    ],
)
def test_bad_selector(selector: str, expected: str) -> None:
    text = f"dependencies:\n  - numpy\n  - scipy  # [{selector}]\n"
    # A selector problem is reported once even though it is evaluated for every arch.
    assert problems(text) == [f"{PATH}:3: {expected}"]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            "-e .",
            "'-e .': editable installs are not supported: write 'NAME @ .' or just '.'",
        ),
        (
            "--editable ./pkg",
            "'--editable ./pkg': editable installs are not supported: write 'pkg @ ./pkg' or "
            "just './pkg'",
        ),
        (
            "-i https://x.example/simple",
            "'-i https://x.example/simple' is not supported: set `pypi-index` in the [workspace] "
            "table of envbuild.toml for the base index, and use --extra-index-url for "
            "additional indexes",
        ),
    ],
)
def test_bad_pip_entry(entry: str, message: str) -> None:
    text = f"channels: [conda-forge]\ndependencies:\n  - numpy\n  - pip:\n    - flask\n    - {entry}\n"
    assert problems(text) == [f"{PATH}:6: {message}"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("dependencies: numpy\n", f"{PATH}:1: 'dependencies' must be a list"),
        ("dependencies:\n  numpy: 1\n", f"{PATH}:2: 'dependencies' must be a list"),
        ("channels: conda-forge\ndependencies: [numpy]\n", f"{PATH}:1: 'channels' must be a list"),
        ("dependencies:\n  - pip: flask\n", f"{PATH}:2: 'pip' must be a list"),
    ],
)
def test_not_a_list(text: str, expected: str) -> None:
    assert problems(text) == [expected]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("dependencies: numpy\n", f"{PATH}:1: 'dependencies' must be a list"),
        (
            "dependencies:\n  - scipy>>1\n",
            f"{PATH}:2: 'scipy>>1' is not a valid conda spec: unable to parse version spec: >>1",
        ),
        ("dependencies:\n  - {a: 1}\n", f"{PATH}:2: a dependency must be a conda spec or a 'pip:' list"),
    ],
)
def test_problem_reported_once_for_several_archs(text: str, expected: str) -> None:
    assert problems(text) == [expected]


@pytest.mark.parametrize(
    "text",
    [
        "dependencies:\n  - libgcc  # [linux]\n",
        "dependencies:\n  - numpy\n  - pip:\n    - torch  # [linux]\n",
    ],
)
def test_list_emptied_by_selectors_on_one_arch(text: str) -> None:
    spec = parse(text)
    assert [d.archs for d in spec.conda + spec.pypi if d.value in ("libgcc", "torch")] == [
        ("linux-64", "linux-aarch64")
    ]


def test_pip_flow_list_keeps_every_entry() -> None:
    spec = parse("dependencies:\n  - pip: [requests, flask]\n")
    assert spec.pypi == (Dep("requests"), Dep("flask"))


def test_python_differing_per_arch_is_not_silently_collapsed() -> None:
    text = "dependencies:\n  - python=3.11  # [linux]\n  - python=3.10  # [osx]\n"
    assert problems(text) == [
        f"{PATH}: python must be the same version on every arch (found 3.11.* on linux-64, "
        "3.11.* on linux-aarch64, 3.10.* on osx-64, 3.10.* on osx-arm64)"
    ]


def test_python_selected_on_some_archs_only() -> None:
    assert problems("dependencies:\n  - python=3.11  # [linux]\n  - numpy\n") == [
        f"{PATH}: python is selected on some archs only (linux-64, linux-aarch64): an env has "
        "one python for all its archs: remove the selector from the python line"
    ]


@pytest.mark.parametrize(
    "text",
    [
        "channels:\n  - conda-forge\n  - bioconda  # [osx]\ndependencies: [numpy]\n",
        "dependencies:\n  - pip:\n    - flask\n    - --pre  # [linux]\n",
        "dependencies:\n  - pip:\n    - '--only-binary :all:'  # [osx]\n",
    ],
)
def test_channels_and_pip_options_are_not_selected_per_arch(text: str) -> None:
    assert problems(text) == [
        f"{PATH}: channels and pip options must be the same on every arch: remove the "
        "selector from them (only dependencies may be selected per arch)"
    ]


def test_binary_options_in_pip_section() -> None:
    spec = parse(
        "dependencies:\n  - pip:\n    - '--only-binary :all:'\n    - --no-binary Foo_Bar,baz\n"
    )
    assert (spec.only_binary, spec.no_binary) == ((":all:",), ("baz", "foo-bar"))


def test_unquoted_entry_ending_with_a_colon_is_refused() -> None:
    # YAML reads `- --only-binary=:all:` as a mapping: it must not be dropped silently
    assert problems("dependencies:\n  - pip:\n    - flask\n    - --only-binary=:all:\n") == [
        f"{PATH}:4: each 'pip' entry must be a string: quote an entry ending with ':' (like "
        '"--only-binary=:all:"), YAML reads a mapping'
    ]


# --------------------------------------------------------------------------- selectors

TRUE_ON: dict[str, tuple[str, ...]] = {
    "linux": ("linux-64", "linux-aarch64"),
    "osx": ("osx-64", "osx-arm64"),
    "win": (),
    "unix": ARCHS,
    "linux64": ("linux-64",),
    "aarch64": ("linux-aarch64",),
    "arm64": ("linux-aarch64", "osx-arm64"),
    "x86_64": ("linux-64", "osx-64"),
    "x86": (),
    "osx64": ("osx-64",),
    "osxarm64": ("osx-arm64",),
}


def test_selector_names_are_the_documented_set() -> None:
    for arch in ARCHS:
        assert set(selector_names(arch)) == set(TRUE_ON)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("name", sorted(TRUE_ON))
def test_evaluate_name(name: str, arch: str) -> None:
    assert evaluate(name, arch) is (arch in TRUE_ON[name])
    assert evaluate(f"  {name} ", arch) is (arch in TRUE_ON[name])
    assert evaluate(f"not {name}", arch) is (arch not in TRUE_ON[name])


@pytest.mark.parametrize(
    ("expr", "true_on"),
    [
        ("linux and not aarch64", ("linux-64",)),
        ("osx or aarch64", ("linux-aarch64", "osx-64", "osx-arm64")),
        ("(linux or osx) and not arm64", ("linux-64", "osx-64")),
        ("unix and not win", ARCHS),
        ("linux and osx", ()),
        ("not (x86_64 or arm64)", ()),
    ],
)
@pytest.mark.parametrize("arch", ARCHS)
def test_evaluate_expression(expr: str, true_on: tuple[str, ...], arch: str) -> None:
    assert evaluate(expr, arch) is (arch in true_on)


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("foo", f"selector name 'foo' is unknown (known: {KNOWN})"),
        ("Linux", f"selector name 'Linux' is unknown (known: {KNOWN})"),
        ("linux and", "selector '[linux and]' is not a valid expression"),
        ("", "selector '[]' is not a valid expression"),
        ("py >= 38", "selector '[py >= 38]' may only use names, not, and, or"),
        ("True", "selector '[True]' may only use names, not, and, or"),
        ("linux()", "selector '[linux()]' may only use names, not, and, or"),
        ("-linux", "selector '[-linux]' may only use names, not, and, or"),
    ],
)
@pytest.mark.parametrize("arch", ARCHS)
def test_evaluate_errors(expr: str, message: str, arch: str) -> None:
    with pytest.raises(SelectorSyntaxError) as info:
        evaluate(expr, arch)
    assert str(info.value) == message


def _exprs() -> st.SearchStrategy[tuple[str, tuple[str, ...]]]:
    """Random selector expressions, with the set of archs each is true on (the oracle)."""
    leaves = st.sampled_from(sorted(TRUE_ON)).map(lambda n: (n, frozenset(TRUE_ON[n])))

    def extend(
        children: st.SearchStrategy[tuple[str, frozenset[str]]],
    ) -> st.SearchStrategy[tuple[str, frozenset[str]]]:
        everything = frozenset(ARCHS)
        return st.one_of(
            children.map(lambda c: (f"not ({c[0]})", everything - c[1])),
            st.tuples(children, children).map(lambda p: (f"({p[0][0]}) and ({p[1][0]})", p[0][1] & p[1][1])),
            st.tuples(children, children).map(lambda p: (f"({p[0][0]}) or ({p[1][0]})", p[0][1] | p[1][1])),
        )

    return st.recursive(leaves, extend, max_leaves=8).map(lambda e: (e[0], tuple(sorted(e[1]))))


@settings(max_examples=150, deadline=None)
@given(_exprs())
def test_evaluate_matches_oracle(case: tuple[str, tuple[str, ...]]) -> None:
    expr, true_on = case
    for arch in ARCHS:
        assert evaluate(expr, arch) is (arch in true_on)


_SELECTORS = [None, "linux", "osx", "arm64", "x86_64", "linux and not aarch64", "osx64", "win", "unix"]


@settings(max_examples=60, deadline=None)
@given(
    deps=st.lists(
        st.tuples(st.sampled_from(["numpy", "scipy", "zlib", "libgcc", "mkl", "clang"]), st.sampled_from(_SELECTORS)),
        max_size=8,
        unique_by=lambda d: d[0],
    ),
)
def test_selected_deps_get_arch_restrictions(deps: list[tuple[str, str | None]]) -> None:
    # zlib-base is never selected out, so "dependencies" is a list on every arch.
    lines = ["dependencies:", "  - zlib-base"] + [f"  - {n}" + (f"  # [{s}]" if s else "") for n, s in deps]
    spec = parse_environment_yml("\n".join(lines) + "\n", PATH)
    expected: dict[str, tuple[str, ...]] = {"zlib-base": ()}
    for name, sel in deps:
        on = tuple(a for a in ARCHS if sel is None or evaluate(sel, a))
        if on:
            expected[name] = () if on == ARCHS else on
    assert by_value(spec.conda) == expected
    assert [d.value for d in spec.conda if d.archs == ()] == [n for n in expected if expected[n] == ()]
