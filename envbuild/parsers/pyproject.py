"""pyproject.toml parser: ``[project]`` dependencies, chosen extras and PEP 735 dependency groups.

An env takes ``[project].dependencies``, plus the extras (``[project.optional-dependencies]``)
and dependency groups (``[dependency-groups]``) it chooses; ``requires-python`` gives its
python. A requirement on the project itself (``web[test]`` in web's own file) brings the
extras it names. Only static metadata is read: dynamic dependencies and Poetry-only files
are refused, never read as an env without dependencies.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from typing import Any

from envbuild.errors import SpecError
from envbuild.parsers import Dep, ParsedSpec
from envbuild.parsers.binary import canonical
from envbuild.parsers.requirements import parse_requirements

# PEP 503 / 685 / 735 normalised name of a project, extra or dependency group
normalise_name = canonical


def expand_groups(
    groups: Mapping[str, list[Any]], chosen: Iterable[str]
) -> tuple[list[str], list[str]]:
    """The requirement strings of the ``chosen`` dependency groups (PEP 735), with every
    ``{include-group = "..."}`` followed, in order, duplicates dropped; and the problems found
    (unknown or ill-formed includes, cycles, names clashing once normalised). ``groups`` maps
    group names as written to their lists; ``chosen`` names are normalised here."""
    problems: list[str] = []
    table: dict[str, tuple[str, list[Any]]] = {}
    for name, items in groups.items():
        key = normalise_name(name)
        if key in table:
            problems.append(
                f"dependency groups '{table[key][0]}' and '{name}' have the same normalised "
                f"name '{key}': rename one"
            )
        elif not isinstance(items, list):
            problems.append(f"dependency group '{name}' must be a list")
        else:
            table[key] = (name, items)
    available = ", ".join(sorted(n for n, _ in table.values())) or "none"

    expanded: dict[str, list[str]] = {}  # each group walked once (a DFS with memo)

    def expand(key: str, path: list[str]) -> list[str]:
        if key in expanded:
            return expanded[key]
        name, items = table[key]
        out: dict[str, None] = {}
        for item in items:
            if isinstance(item, str):
                out.setdefault(item, None)
                continue
            target = item.get("include-group") if isinstance(item, dict) else None
            if not isinstance(target, str) or len(item) != 1:
                problems.append(
                    f"dependency group '{name}': {item!r} is neither a requirement string "
                    'nor {include-group = "NAME"}'
                )
            elif normalise_name(target) not in table:
                problems.append(
                    f"dependency group '{name}' includes '{target}', which is not a group "
                    f"(available: {available})"
                )
            elif (inc := normalise_name(target)) in path:
                loop = path[path.index(inc) :]
                first = loop.index(min(loop))  # the same cycle reads the same from any start
                cycle = [*loop[first:], *loop[:first], min(loop)]
                problems.append(
                    "dependency groups include each other in a cycle: "
                    + " -> ".join(table[k][0] for k in cycle)
                )
            else:
                out.update(dict.fromkeys(expand(inc, [*path, inc])))
        expanded[key] = list(out)
        return expanded[key]

    out: dict[str, None] = {}
    for want in chosen:
        key = normalise_name(want)
        if key not in table:
            problems.append(
                f"no dependency group '{want}' in [dependency-groups] (available: {available})"
            )
        else:
            out.update(dict.fromkeys(expand(key, [key])))
    for key in table:  # every group is checked, chosen or not
        expand(key, [key])
    return list(out), list(dict.fromkeys(problems))


def _refusal(path: str, data: dict[str, Any], project: Any) -> str | None:
    """Why this file's dependencies cannot be read statically, if they cannot."""
    tool = data.get("tool")
    poetry = tool.get("poetry") if isinstance(tool, dict) else None
    declared = poetry.get("dependencies") if isinstance(poetry, dict) else None
    poetry_deps = [n for n in declared if n != "python"] if isinstance(declared, dict) else []
    if isinstance(project, dict):
        dynamic = project.get("dynamic", [])
        if isinstance(dynamic, list) and "dependencies" in dynamic:
            return (
                f"{path}: [project].dependencies is dynamic (computed by the build backend), "
                "and envbuild reads only static metadata: list them in [project].dependencies, "
                'or lock a requirements file instead (file = "requirements.txt")'
            )
        if "dependencies" in project or not poetry_deps:
            return None
    elif not poetry_deps:
        return None
    return (
        f"{path}: the dependencies are in [tool.poetry.dependencies], which envbuild does not "
        "read: declare them in [project].dependencies (PEP 621, which Poetry 2 reads too), or "
        "lock the output of `poetry export -f requirements.txt`"
    )


def _strings(value: Any, what: str, path: str, problems: list[str]) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(d, str) for d in value):
        problems.append(f"{path}: {what} must be a list of strings")
        return []
    return list(value)


def parse_pyproject(
    text: str, path: str, extras: Iterable[str] = (), groups: Iterable[str] = ()
) -> ParsedSpec:
    """Parse a pyproject.toml for an env choosing ``extras`` and dependency ``groups``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError([f"{path}: not valid TOML: {exc}"]) from exc
    project = data.get("project")
    refusal = _refusal(path, data, project)
    if refusal:
        raise SpecError([refusal])
    extras, groups = list(extras), list(groups)
    group_table = data.get("dependency-groups")
    if not isinstance(project, dict) and not (group_table and groups):
        hint = "add one with a 'dependencies' list"
        if isinstance(group_table, dict) and group_table:
            hint += f", or choose dependency groups with groups = [...] ({', '.join(group_table)})"
        raise SpecError([f"{path}: has no [project] table: {hint}"])
    project = project if isinstance(project, dict) else {}
    problems: list[str] = []
    requirements = _strings(
        project.get("dependencies", []), "[project].dependencies", path, problems
    )
    requirements += _extras(path, project, extras, problems)
    if isinstance(group_table, dict):  # checked whole, whichever groups are chosen
        found, group_problems = expand_groups(group_table, groups)
        problems += [f"{path}: {p}" for p in group_problems]
        requirements += _self_extras(path, project, found, problems)
    elif group_table is not None:
        problems.append(f"{path}: [dependency-groups] must be a table of lists")
    elif groups:
        problems.append(
            f"{path}: has no [dependency-groups] table, so no group "
            f"{', '.join(repr(g) for g in groups)}: add the table or remove groups"
        )
    lines = text.splitlines()

    def line_of(dep: str) -> int:
        for needle in (f'"{dep}"', f"'{dep}'", dep):
            for number, line in enumerate(lines, 1):
                if needle in line:
                    return number
        return 1

    pypi: list[Dep] = []
    for dep in dict.fromkeys(requirements):
        try:
            pypi.extend(parse_requirements("\n" * (line_of(dep) - 1) + dep, path).pypi)
        except SpecError as exc:
            problems.extend(exc.problems)
    python = _requires_python(project.get("requires-python"), path, line_of, problems)
    if problems:
        raise SpecError(list(dict.fromkeys(problems)))
    return ParsedSpec(pypi=tuple(dict.fromkeys(pypi)), python=python)


def _extras(
    path: str, project: dict[str, Any], chosen: list[str], problems: list[str]
) -> list[str]:
    """The requirement strings of the chosen extras (self-references followed)."""
    if not chosen:
        return []
    if "optional-dependencies" in (project.get("dynamic") or []):
        problems.append(
            f"{path}: [project.optional-dependencies] is dynamic (computed by the build "
            "backend), and envbuild reads only static metadata: list the extras in "
            "[project.optional-dependencies], or remove extras from the env"
        )
        return []
    from envbuild.parsers.binary import is_name

    bad = [e for e in chosen if not is_name(e)]
    if bad:
        problems += [
            f"{path}: '{e}' is not an extra name (letters, digits, '-', '_', '.')" for e in bad
        ]
        return []
    own = _own_name(project)
    return _self_extras(path, project, [f"{own}[{','.join(chosen)}]"], problems)


def _own_name(project: dict[str, Any]) -> str:
    """The project's normalised name (a stand-in when it has none)."""
    name = project.get("name")
    return normalise_name(name) if isinstance(name, str) else "THIS-PROJECT"


def _self_extras(
    path: str, project: dict[str, Any], requirements: list[str], problems: list[str]
) -> list[str]:
    """``requirements`` with each one on the project itself (``web[a]; marker``) replaced by
    the requirements of the extras it names (the project's own dependencies are in the env
    already), recursively, each carrying the self-reference's marker."""
    from packaging.requirements import InvalidRequirement, Requirement

    table = project.get("optional-dependencies") or {}
    if not isinstance(table, dict):
        problems.append(f"{path}: [project.optional-dependencies] must be a table of lists")
        table = {}
    extras = {normalise_name(k): (k, v) for k, v in table.items()}
    own = _own_name(project)
    out: list[str] = []
    # extra -> the marker conditions it was reached under (each a set of and-ed markers):
    # a set holding one already seen is no wider, so recursion ends
    seen: dict[str, list[frozenset[str]]] = {}

    def follow(items: list[str], marker: frozenset[str]) -> None:
        for item in items:
            try:
                req = Requirement(item)
            except InvalidRequirement:
                out.append(item)  # reported with its line by the caller
                continue
            if normalise_name(req.name) != own or req.url:
                out.append(_and_marker(item, req, marker))
                continue
            inner = marker | ({str(req.marker)} if req.marker is not None else set())
            for extra in sorted(req.extras):
                key = normalise_name(extra)
                if key not in extras:
                    available = ", ".join(sorted(k for k, _ in extras.values())) or "none"
                    problems.append(
                        f"{path}: no extra '{extra}' in [project.optional-dependencies] "
                        f"(available: {available})"
                    )
                elif not any(earlier <= inner for earlier in seen.get(key, [])):
                    seen.setdefault(key, []).append(inner)
                    what = f"[project.optional-dependencies].{extras[key][0]}"
                    follow(_strings(extras[key][1], what, path, problems), inner)

    follow(requirements, frozenset())
    return out


def _and_marker(item: str, req: Any, marker: frozenset[str]) -> str:
    """``item`` with the ``marker`` conditions and-ed to its own marker (unchanged without)."""
    if not marker:
        return item
    conditions = sorted(marker | ({str(req.marker)} if req.marker is not None else set()))
    base = item.split(";", 1)[0].strip() if req.marker is not None else item.strip()
    both = " and ".join(f"({c})" for c in conditions) if len(conditions) > 1 else conditions[0]
    return f"{base} ; {both}" if req.url else f"{base}; {both}"


def _requires_python(requires: Any, path: str, line_of: Any, problems: list[str]) -> str | None:
    if requires is None:
        return None
    from packaging.specifiers import InvalidSpecifier, Specifier

    python = None
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
    return python
