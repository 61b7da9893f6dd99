"""What changed between two locks of one env x arch: packages added, removed, upgraded, downgraded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from envbuild.lock import Lock, LockedPackage


@dataclass(frozen=True, slots=True)
class Change:
    """One package's change; ``old``/``new`` are versions ("" when absent)."""

    kind: str  # conda or pypi
    name: str
    old: str
    new: str

    @property
    def what(self) -> str:
        if not self.old:
            return "added"
        if not self.new:
            return "removed"
        old, new = self.old.split(" (")[0], self.new.split(" (")[0]
        if old == new:
            return "rebuilt"
        return "upgraded" if _newer(new, old) else "downgraded"

    def to_dict(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "name": self.name,
            "old": self.old,
            "new": self.new,
            "change": self.what,
        }

    def __str__(self) -> str:
        if not self.old:
            return f"+{self.name} {self.new}"
        if not self.new:
            return f"-{self.name} {self.old}"
        return f"{self.name} {self.old} -> {self.new}"


@dataclass(frozen=True, slots=True)
class LockDiff:
    """Every package change between two locks, sorted by (kind, name)."""

    changes: tuple[Change, ...]

    def by_kind(self, what: str) -> list[Change]:
        return [c for c in self.changes if c.what == what]

    def summary(self) -> str:
        """``unchanged``, or counts then the changes: ``1 added, 2 upgraded: +a 1.0, b 1 -> 2``."""
        if not self.changes:
            return "unchanged"
        order = ("added", "removed", "upgraded", "downgraded", "rebuilt")
        counts = [f"{len(self.by_kind(w))} {w}" for w in order if self.by_kind(w)]
        return f"{', '.join(counts)}: {', '.join(str(c) for c in self.changes)}"

    def to_dict(self) -> dict[str, Any]:
        return {"changes": [c.to_dict() for c in self.changes]}


def _key(p: LockedPackage) -> tuple[str, str]:
    return (p.kind, p.name)


def _label(p: LockedPackage) -> str:
    return p.version + (f" ({p.build})" if p.build else "")


def diff_locks(old: Lock | None, new: Lock) -> LockDiff:
    """The changes from ``old`` (None: nothing) to ``new``. A package whose version stays
    but whose file changes (another build) is ``rebuilt``."""
    before = {_key(p): p for p in old.packages} if old else {}
    after = {_key(p): p for p in new.packages}
    changes = []
    for key in sorted(set(before) | set(after)):
        a, b = before.get(key), after.get(key)
        if a is not None and b is not None and a.identity == b.identity and a.digest == b.digest:
            continue
        old_v = (_label(a) if b is not None and a.version == b.version else a.version) if a else ""
        new_v = (_label(b) if a is not None and a.version == b.version else b.version) if b else ""
        changes.append(Change(key[0], key[1], old_v, new_v))
    return LockDiff(tuple(changes))


def _newer(a: str, b: str) -> bool:
    """Version ``a`` > ``b`` by conda's ordering (a superset of PEP 440's for the versions
    that occur in locks)."""
    from rattler import Version

    try:
        return bool(Version(a) > Version(b))
    except Exception:  # not a version either tool can read: compare as text
        return a > b
