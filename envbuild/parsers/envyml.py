"""environment.yml parser: channels, dependencies, the nested pip section and line selectors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

from envbuild.errors import SpecError
from envbuild.parsers import (
    NODEFAULTS,
    ParsedSpec,
    combine,
    expand_defaults,
    merge_deps,
    normalise_conda_spec,
    python_version_spec,
)
from envbuild.parsers.requirements import parse_requirements
from envbuild.parsers.selectors import SELECTOR, SelectorSyntaxError, evaluate
from envbuild.platforms import ARCHS

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _select(lines: list[str], arch: str, path: str, problems: list[str]) -> str:
    kept: list[str] = []
    for number, line in enumerate(lines, 1):
        match = SELECTOR.search(line)
        keep = True
        if match:
            try:
                keep = evaluate(match.group(1), arch)
            except SelectorSyntaxError as exc:
                msg = f"{path}:{number}: {exc}"
                if msg not in problems:
                    problems.append(msg)
        kept.append(line if keep else "")
    return "\n".join(kept)


def _scalars(node: yaml.Node, path: str, what: str, problems: list[str]) -> list[tuple[int, str]]:
    if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"):
        return []  # every entry selected out for this arch
    if not isinstance(node, yaml.SequenceNode):
        problems.append(f"{path}:{node.start_mark.line + 1}: '{what}' must be a list")
        return []
    for item in node.value:
        if not isinstance(item, yaml.ScalarNode):
            problems.append(
                f"{path}:{item.start_mark.line + 1}: each '{what}' entry must be a string: quote "
                "an entry ending with ':' (like \"--only-binary=:all:\"), YAML reads a mapping"
            )
    return [
        (item.start_mark.line + 1, str(item.value))
        for item in node.value
        if isinstance(item, yaml.ScalarNode)
    ]


def _pip_entries(
    entries: list[tuple[int, str]], path: str, problems: list[str], root: Path | None
) -> list[ParsedSpec]:
    """Each pip entry parsed on its own line number, so errors point at it. With ``root``
    (the workspace), ``-r`` / ``-c`` files and local paths are relative to the yml file."""
    out = []
    for line_no, value in entries:
        try:
            out.append(parse_requirements("\n" * (line_no - 1) + value, path, root))
        except SpecError as exc:
            problems.extend(exc.problems)
    return out


def _dependencies(
    node: yaml.Node, path: str, problems: list[str], root: Path | None
) -> tuple[list[str], list[str], list[str], list[ParsedSpec]]:
    """(conda specs, python versions, pypi values, parsed pip entries) of a dependencies list."""
    conda: list[str] = []
    pythons: list[str] = []
    pip: list[ParsedSpec] = []
    if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"):
        return conda, pythons, [], pip
    if not isinstance(node, yaml.SequenceNode):
        problems.append(f"{path}:{node.start_mark.line + 1}: 'dependencies' must be a list")
        return conda, pythons, [], pip
    for item in node.value:
        line_no = item.start_mark.line + 1
        if isinstance(item, yaml.ScalarNode):
            try:
                spec = normalise_conda_spec(str(item.value))
            except ValueError as exc:
                problems.append(
                    f"{path}:{line_no}: '{item.value}' is not a valid conda spec: {exc}"
                )
                continue
            name, _, version = spec.partition(" ")
            if name == "python":
                pythons.append(python_version_spec(version) or "*")
            else:
                conda.append(spec)
        elif isinstance(item, yaml.MappingNode) and [k.value for k, _ in item.value] == ["pip"]:
            entries = _scalars(item.value[0][1], path, "pip", problems)
            pip += _pip_entries(entries, path, problems, root)
        else:
            problems.append(f"{path}:{line_no}: a dependency must be a conda spec or a 'pip:' list")
    return conda, pythons, [d.value for p in pip for d in p.pypi], pip


def parse_environment_yml(text: str, path: str, root: Path | None = None) -> ParsedSpec:
    """Parse an environment.yml (``path``: relative to the workspace ``root``, if given).
    Selectors are evaluated for every known arch (``platforms.ARCHS``), whatever archs the
    env targets: a selected dependency is restricted to the archs it is selected on (see
    ``merge_deps``). ``defaults`` in channels becomes conda's default channels; ``nodefaults``
    is dropped, and marks the file's channel list as the whole list (see ``nodefaults``)."""
    problems: list[str] = []
    lines = text.splitlines()
    conda: dict[str, list[str]] = {}
    pypi: dict[str, list[str]] = {}
    pythons: dict[str, str] = {}
    # channels and pip options (no dependencies) per arch: they must not differ
    settings: dict[str, ParsedSpec] = {}
    for arch in ARCHS:
        channels: list[str] = []
        pip_parsed: list[ParsedSpec] = []
        selected = _select(lines, arch, path, problems)
        try:
            doc = yaml.compose(selected, Loader=_Loader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark else path
            raise SpecError([f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}"]) from exc
        if doc is None:
            continue
        if not isinstance(doc, yaml.MappingNode):
            raise SpecError([f"{path}:1: an environment.yml must be a mapping with 'dependencies'"])
        conda[arch], pypi[arch] = [], []
        for key_node, value_node in doc.value:
            key = key_node.value
            if key == "channels":
                for _, ch in _scalars(value_node, path, "channels", problems):
                    if ch not in channels:
                        channels.append(ch)
            elif key in ("pypi-indices", "pypi-indexes"):
                entries = _scalars(value_node, path, key, problems)
                pip_parsed += _pip_entries(
                    [(n, f"--extra-index-url {url}") for n, url in entries], path, problems, root
                )
            elif key == "dependencies":
                specs, py, pip_values, parsed = _dependencies(value_node, path, problems, root)
                conda[arch] += specs
                pypi[arch] += pip_values
                pip_parsed += parsed
                for version in py:
                    pythons.setdefault(arch, version)
        options = combine(*pip_parsed)
        settings[arch] = dataclasses.replace(
            options,
            conda=(),
            pypi=(),
            python=None,
            sys=(),
            channels=expand_defaults(c for c in channels if c != NODEFAULTS),
            nodefaults=NODEFAULTS in channels,
        )
    problems = list(dict.fromkeys(problems))  # the same problem is seen once per arch
    if len(set(settings.values())) > 1:
        problems.append(
            f"{path}: channels and pip options must be the same on every arch: remove the "
            "selector from them (only dependencies may be selected per arch)"
        )
    if len(set(pythons.values())) > 1:
        found = ", ".join(f"{v} on {a}" for a, v in sorted(pythons.items()))
        problems.append(f"{path}: python must be the same version on every arch (found {found})")
    elif pythons and len(pythons) < len(ARCHS):
        problems.append(
            f"{path}: python is selected on some archs only ({', '.join(pythons)}): an env has "
            "one python for all its archs: remove the selector from the python line"
        )
    if problems:
        raise SpecError(problems)
    return dataclasses.replace(
        next(iter(settings.values()), ParsedSpec()),
        conda=merge_deps(conda),
        pypi=merge_deps(pypi),
        python=next(iter(pythons.values()), None),
    )
