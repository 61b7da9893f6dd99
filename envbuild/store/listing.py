"""Existence checks by listing: which prefix listings answer "which of these keys exist?"."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from envbuild.store.layout import group_by_parent, parent


@dataclass(frozen=True, slots=True)
class Listing:
    """One paginated listing: keys under ``prefix`` after ``start_after``, read until a listed
    key passes ``last`` (the greatest wanted key); ``keys`` are the wanted keys it answers."""

    prefix: str
    start_after: str
    last: str
    keys: frozenset[str]

    def done(self, listed_key: str) -> bool:
        """True once the (sorted) listing has reached past every wanted key."""
        return listed_key >= self.last


def plan_listings(keys: Iterable[str]) -> list[Listing]:
    """The listings that tell which of ``keys`` exist: one per key directory, except that
    directories sharing a parent (``pkgs/ab/<sha>/`` and ``pkgs/ab/<sha2>/``) are answered by
    one listing of that parent, bounded by ``start_after`` and ``last``. So there are never
    more listings than distinct directories, and usually far fewer for large key sets."""
    by_dir = group_by_parent(keys)
    by_shard: dict[str, list[str]] = {}
    for directory in by_dir:
        shard = parent(directory[:-1]) if directory else ""
        by_shard.setdefault(shard, []).append(directory)
    plans: list[Listing] = []
    for shard, dirs in sorted(by_shard.items()):
        if len(dirs) == 1:
            wanted = frozenset(by_dir[dirs[0]])
            plans.append(Listing(dirs[0], "", max(wanted), wanted))
            continue
        wanted = frozenset(k for d in dirs for k in by_dir[d])
        # the directory name without its '/' sorts before every key inside it
        plans.append(Listing(shard, min(dirs)[:-1], max(wanted), wanted))
    return plans
