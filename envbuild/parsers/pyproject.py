"""pyproject.toml parser: ``[project].dependencies`` become PyPI deps, ``requires-python`` python."""

from __future__ import annotations

import tomllib

from envbuild.errors import SpecError
from envbuild.parsers import Dep, ParsedSpec
from envbuild.parsers.requirements import parse_requirements


def parse_pyproject(text: str, path: str) -> ParsedSpec:
    """Parse the PEP 621 ``[project]`` table of a pyproject.toml."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError([f"{path}: not valid TOML: {exc}"]) from exc
    project = data.get("project")
    if not isinstance(project, dict):
        raise SpecError([f"{path}: has no [project] table: add one with a 'dependencies' list"])
    deps = project.get("dependencies", [])
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        raise SpecError([f"{path}: [project].dependencies must be a list of strings"])
    lines = text.splitlines()

    def line_of(dep: str) -> int:
        for needle in (f'"{dep}"', f"'{dep}'", dep):
            for number, line in enumerate(lines, 1):
                if needle in line:
                    return number
        return 1

    problems: list[str] = []
    pypi: list[Dep] = []
    for dep in deps:
        try:
            pypi.extend(parse_requirements("\n" * (line_of(dep) - 1) + dep, path).pypi)
        except SpecError as exc:
            problems.extend(exc.problems)
    requires = project.get("requires-python")
    python = None
    if requires is not None:
        from packaging.specifiers import InvalidSpecifier, Specifier

        try:  # each specifier normalised, in the order written
            if isinstance(requires, str):
                python = ",".join(str(Specifier(p)) for p in requires.split(",") if p.strip())
        except InvalidSpecifier:
            python = None
        if python is None:
            problems.append(
                f"{path}:{line_of(str(requires))}: [project].requires-python must be a version "
                "specifier like '>=3.10'"
            )
    if problems:
        raise SpecError(problems)
    return ParsedSpec(pypi=tuple(dict.fromkeys(pypi)), python=python)
