"""Environment identity: req_id, full_id, co-resolved id, and the alias grammar."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from envbuild.errors import SpecError

# Category order of the req_id hash: dependencies first, then sources, then extra flags.
REQ_CATEGORIES: tuple[str, ...] = ("conda", "pypi", "sys", "channels", "indexes", "flags")


def _sha1(lines: Iterable[str]) -> str:
    h = hashlib.sha1()
    for line in lines:
        h.update(line.encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


def req_id(categories: Mapping[str, Iterable[str]]) -> str:
    """sha1 over ``category::value`` lines, categories in REQ_CATEGORIES order, values sorted
    and deduplicated, so order and duplicates do not matter. Values must be normalised first.
    """
    unknown = set(categories) - set(REQ_CATEGORIES)
    if unknown:
        raise ValueError(f"unknown req_id categories: {sorted(unknown)}")
    lines: list[str] = []
    for cat in REQ_CATEGORIES:
        values = sorted({v.strip() for v in categories.get(cat, ()) if v.strip()})
        lines.extend(f"{cat}::{v}" for v in values)
    return _sha1(lines)


def full_id(packages: Iterable[tuple[str, str]], arch: str) -> str:
    """sha1 over the sorted ``filename#hash`` of every resolved package, then ``arch::<arch>``."""
    lines = sorted({f"{fn}#{digest}" for fn, digest in packages})
    lines.append(f"arch::{arch}")
    return _sha1(lines)


def coresolved_id(full_ids: Mapping[str, str]) -> str:
    """sha1 over ``arch::full_id`` for each arch in sorted arch order."""
    return _sha1(f"{arch}::{fid}" for arch, fid in sorted(full_ids.items()))


_ALIAS_NAME = re.compile(r"^[-a-z0-9_/]+$")
_ALIAS_TAG = re.compile(r"^[-a-z0-9_]+$")
_HEX40 = re.compile(r"^[0-9a-f]{40}$")
MUTABLE_TAGS: frozenset[str] = frozenset({"latest", "candidate", "stable"})


@dataclass(frozen=True, slots=True)
class Alias:
    """A generic alias ``name:tag``; the tags latest/candidate/stable may move."""

    name: str
    tag: str = "latest"

    @property
    def mutable(self) -> bool:
        return self.tag in MUTABLE_TAGS

    def __str__(self) -> str:
        return f"{self.name}:{self.tag}"


@dataclass(frozen=True, slots=True)
class ExactRef:
    """An exact env reference ``req_id:full_id``."""

    req_id: str
    full_id: str

    def __str__(self) -> str:
        return f"{self.req_id}:{self.full_id}"


def parse_env_ref(text: str) -> Alias | ExactRef:
    """Parse an env reference: ``name[:tag]`` or ``req_id:full_id``. A bare full_id is refused."""
    text = text.strip()
    if _HEX40.match(text):
        raise SpecError(
            [
                f"env reference '{text}' is a bare id, which is ambiguous: use req_id:full_id or an alias"
            ]
        )
    name, sep, tag = text.rpartition(":")
    if not sep:
        name, tag = text, "latest"
    if _HEX40.match(name) and _HEX40.match(tag):
        return ExactRef(name, tag)
    problems: list[str] = []
    if not _ALIAS_NAME.match(name) or name.startswith("/") or name.endswith("/"):
        problems.append(
            f"alias '{text}': name '{name}' may only hold a-z, 0-9, '-', '_' and inner '/'"
        )
    if not _ALIAS_TAG.match(tag):
        problems.append(f"alias '{text}': tag '{tag}' may only hold a-z, 0-9, '-' and '_'")
    if problems:
        raise SpecError(problems)
    return Alias(name, tag)


def settings_hash(settings: Sequence[tuple[str, str]]) -> str:
    """A short stable hash of resolver settings (name, value) pairs."""
    return _sha1(f"{k}={v}" for k, v in sorted(settings))[:16]
