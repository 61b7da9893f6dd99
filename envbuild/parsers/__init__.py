"""Spec-file parsers (environment.yml, requirements.txt, pyproject.toml) and their common result."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from envbuild.platforms import ARCHS

VCS_PREFIXES = ("git+", "hg+", "svn+", "bzr+")  # version-control requirement URLs


@dataclass(frozen=True, slots=True)
class Dep:
    """One requirement string, optionally restricted to some target archs (from selectors)."""

    value: str
    archs: tuple[str, ...] = ()  # empty: every arch

    def to_dict(self) -> dict[str, object]:
        return {"value": self.value, "archs": list(self.archs)}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Dep:
        archs = data.get("archs", [])
        assert isinstance(archs, list)
        return cls(value=str(data["value"]), archs=tuple(str(a) for a in archs))


@dataclass(frozen=True, slots=True)
class ParsedSpec:
    """What one spec file contributes to an environment. Values are normalised strings."""

    conda: tuple[Dep, ...] = ()
    pypi: tuple[Dep, ...] = ()
    channels: tuple[str, ...] = ()
    extra_indexes: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    trusted_hosts: tuple[str, ...] = ()
    pre: bool = False
    no_index: bool = False
    python: str | None = None  # a conda version spec for python, e.g. "3.11.*" or ">=3.10"
    sys: tuple[tuple[str, str], ...] = field(
        default=()
    )  # virtual packages, e.g. ("__cuda", "12.0")
    # --only-binary / --no-binary: canonical names or (":all:",), see parsers/binary.py
    only_binary: tuple[str, ...] = ()
    no_binary: tuple[str, ...] = ()
    prefer_binary: bool = False  # --prefer-binary: an older wheel over a newer sdist
    constraints: tuple[str, ...] = ()  # PyPI constraints (-c FILE): normalised, named
    hashes: tuple[tuple[str, str], ...] = ()  # (canonical name, "sha256:HEX"), sorted
    hash_origins: tuple[tuple[str, str], ...] = ()  # (canonical name, "file:line")
    files: tuple[str, ...] = ()  # files read through -r / -c, relative to the workspace
    # environment.yml's ``nodefaults``: its channel list is the whole list, even when empty
    # (the workspace's channels are not used)
    nodefaults: bool = False


# What conda's ``defaults`` channel means (conda's default_channels off Windows; conda adds
# pkgs/msys2 on Windows hosts only); ``nodefaults`` asks conda to add no channel implicitly.
DEFAULT_CHANNELS = ("https://repo.anaconda.com/pkgs/main", "https://repo.anaconda.com/pkgs/r")
NODEFAULTS = "nodefaults"


def expand_defaults(channels: Iterable[str]) -> tuple[str, ...]:
    """``channels`` with ``defaults`` replaced by conda's default channels, in its place;
    duplicates dropped (first wins)."""
    out: list[str] = []
    for channel in channels:
        out += DEFAULT_CHANNELS if channel.strip() == "defaults" else [channel]
    return tuple(dict.fromkeys(out))


# a bare package name, which is its own canonical match spec (tested against rattler):
# parsed without importing rattler, which a run that solves nothing does not need
_BARE_NAME = re.compile(r"[a-z0-9_]+(?:[.-][a-z0-9_]+)*")


def normalise_conda_spec(spec: str) -> str:
    """The canonical string of a conda match spec (``numpy>= 1.2`` → ``numpy >=1.2``).

    Raises ValueError with rattler's message when ``spec`` is not a valid match spec.
    """
    if _BARE_NAME.fullmatch(spec):
        return spec
    from rattler import MatchSpec

    try:
        return str(MatchSpec(" ".join(spec.split())))
    except Exception as exc:  # rattler raises its own InvalidMatchSpecError
        raise ValueError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from exc


def python_version_spec(version: str) -> str:
    """A python version as a conda version spec: a bare ``3.11`` means ``3.11.*``."""
    version = version.strip().lstrip("=")
    if version and all(part.isdigit() for part in version.split(".")) and version.count(".") < 2:
        return f"{version}.*"
    return version


def plain_python_version(spec: str | None) -> str | None:
    """The version a python spec names exactly, as written: ``3.11.*`` → ``3.11``,
    ``3.11.4`` (or ``3.11.4.*``) → ``3.11.4``; None for a range, ``*`` or no spec."""
    match = re.fullmatch(r"(3\.\d+)(\.\d+)?(\.\*)?", spec or "")
    return None if match is None else match.group(1) + (match.group(2) or "")


def merge_deps(per_arch: dict[str, list[str]]) -> tuple[Dep, ...]:
    """Turn per-arch dependency lists (selectors evaluated for every arch of
    ``platforms.ARCHS``) into Deps: one present on every known arch is unrestricted, others
    are restricted to the archs they are present on, whatever archs an env targets (so
    changing an env's arch list never changes the req_id of the archs that remain)."""
    order: dict[str, None] = {}
    where: dict[str, set[str]] = {}
    for arch in ARCHS:
        for value in per_arch.get(arch, []):
            order.setdefault(value, None)
            where.setdefault(value, set()).add(arch)
    return tuple(
        Dep(v, () if len(where[v]) == len(ARCHS) else tuple(a for a in ARCHS if a in where[v]))
        for v in order
    )


def combine(*specs: ParsedSpec) -> ParsedSpec:
    """Merge spec contributions: lists concatenate (deduplicated, first wins), flags OR, and
    the last python / virtual package given wins."""

    from envbuild.parsers.binary import normalise

    def uniq(values: list[Any]) -> tuple[Any, ...]:
        return tuple(dict.fromkeys(values))

    python = None
    sys: dict[str, str] = {}
    origins: dict[str, str] = {}
    for spec in specs:
        python = spec.python or python
        sys.update(spec.sys)
        for name, origin in spec.hash_origins:
            origins.setdefault(name, origin)
    return ParsedSpec(
        conda=uniq([d for s in specs for d in s.conda]),
        pypi=uniq([d for s in specs for d in s.pypi]),
        channels=uniq([c for s in specs for c in s.channels]),
        extra_indexes=uniq([u for s in specs for u in s.extra_indexes]),
        find_links=uniq([u for s in specs for u in s.find_links]),
        trusted_hosts=uniq([h for s in specs for h in s.trusted_hosts]),
        pre=any(s.pre for s in specs),
        no_index=any(s.no_index for s in specs),
        python=python,
        sys=tuple(sorted(sys.items())),
        only_binary=normalise(n for s in specs for n in s.only_binary),
        no_binary=normalise(n for s in specs for n in s.no_binary),
        prefer_binary=any(s.prefer_binary for s in specs),
        constraints=uniq([c for s in specs for c in s.constraints]),
        hashes=tuple(sorted({h for s in specs for h in s.hashes})),
        hash_origins=tuple(sorted(origins.items())),
        files=uniq([f for s in specs for f in s.files]),
        nodefaults=any(s.nodefaults for s in specs),
    )


def requirement_target(value: str) -> str:
    """What a PyPI requirement points at: the URL or path of ``name @ target ; marker``, or
    the whole requirement when it is not a direct reference (``./pkg``, ``git+...``)."""
    return value.split(" @ ", 1)[-1].split(";", 1)[0].strip()


def is_local_path(value: str) -> bool:
    """A requirement or link that is a relative local path (``.``, ``./pkg``, ``../x``)."""
    return value in (".", "..") or value.startswith(("./", "../"))
