"""``only-binary`` / ``no-binary``: which packages may come from source (pip's semantics).

A spec keeps two sets of canonical project names, each possibly just ``:all:``. For one
package, as in pip and uv: its own name in only-binary means wheels only, in no-binary
sources only; else ``:all:`` in only-binary means wheels only, in no-binary sources only;
else both (the default: sdists are allowed for every target arch, locked as needs-build).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

ALL = ":all:"
NONE = ":none:"
_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)


def canonical(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def is_name(value: str) -> bool:
    """A valid project name (PEP 508)."""
    return bool(_NAME.match(value))


def apply_option(value: str, target: set[str], other: set[str]) -> list[str]:
    """Apply one ``--only-binary`` / ``--no-binary`` ``value`` (comma-separated names,
    ``:all:``, ``:none:``) to ``target``, as pip does: ``:all:`` empties both sets and puts
    ``:all:`` in ``target`` (later names are ignored unless ``:none:`` follows), ``:none:``
    empties ``target``, a name moves from ``other`` to ``target``. Returns the names that
    are not valid project names (nothing is changed for them)."""
    bad: list[str] = []
    items = [v.strip() for v in value.split(",") if v.strip()]
    while ALL in items:
        other.clear()
        target.clear()
        target.add(ALL)
        del items[: items.index(ALL) + 1]
        if NONE not in items:
            return bad
    for item in items:
        if item == NONE:
            target.clear()
        elif not is_name(item):
            bad.append(item)
        else:
            other.discard(canonical(item))
            target.add(canonical(item))
    return bad


def normalise(names: Iterable[str]) -> tuple[str, ...]:
    """A set as a spec keeps it: sorted, and just ``(":all:",)`` when it holds ``:all:``
    (its names are then redundant)."""
    values = set(names)
    return (ALL,) if ALL in values else tuple(sorted(values))


def conflicts(only_binary: Iterable[str], no_binary: Iterable[str]) -> list[str]:
    """The values (``:all:`` or names) that are in both sets: one package cannot be both
    wheels-only and sources-only."""
    return sorted(set(only_binary) & set(no_binary))


def parse_list(values: Iterable[str], key: str) -> tuple[tuple[str, ...], list[str]]:
    """A manifest list (``only-binary = ["a", "b"]`` or ``[":all:"]``): the normalised
    names, and the problems found (without location)."""
    values = list(values)
    problems = []
    if ALL in values and len(values) > 1:
        problems.append(
            f"':all:' must be the only entry (got {', '.join(values)}): list exceptions in "
            + ("no-binary" if key == "only-binary" else "only-binary")
        )
    for value in values:
        if value == NONE:
            problems.append(f"':none:' is not needed here: use {key} = [] for no package")
        elif value != ALL and not is_name(value):
            problems.append(f"'{value}' is not a package name (use names or \":all:\")")
    if problems:
        return (), problems
    return normalise(v if v == ALL else canonical(v) for v in values), []


def merge(
    given: Iterable[tuple[str, str, tuple[str, ...]]],
) -> tuple[tuple[str, ...], tuple[str, ...], list[str]]:
    """(only-binary, no-binary, problems) of an env from ``given`` (where, key, values)
    triples, key being ``only-binary`` or ``no-binary``: the union per key, normalised, and
    a problem for each value in both, saying where each came from."""
    given = list(given)
    raw: dict[str, set[str]] = {"only-binary": set(), "no-binary": set()}
    for _, key, values in given:
        raw[key].update(values)

    def origin(key: str, value: str) -> str:
        return ", ".join(dict.fromkeys(w for w, k, vs in given if k == key and value in vs))

    problems = [
        f"'{value}' is in both only-binary ({origin('only-binary', value)}) and no-binary "
        f"({origin('no-binary', value)}): a package cannot be both wheels-only and "
        "sources-only: remove it from one"
        for value in conflicts(raw["only-binary"], raw["no-binary"])
    ]
    return normalise(raw["only-binary"]), normalise(raw["no-binary"]), problems
