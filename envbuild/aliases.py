"""Aliases of published envs: ``name:tag`` pointing at the descriptors of one env's archs."""

from __future__ import annotations

import json
from collections.abc import Sequence

from envbuild.errors import EnvbuildError
from envbuild.lock import Lock
from envbuild.store import Store
from envbuild.store.alias import get_alias, put_alias
from envbuild.store.layout import descriptor_key


def alias_payload(locks: Sequence[Lock]) -> bytes:
    """What an alias holds: the env's name and ``req_id:full_id`` per arch (deterministic)."""
    doc = {
        "env": locks[0].name,
        "archs": {
            lock.env_id.arch: f"{lock.env_id.req_id}:{lock.env_id.full_id}" for lock in locks
        },
    }
    return (json.dumps(doc, sort_keys=True) + "\n").encode("utf-8")


def set_alias(store: Store, alias: str, locks: Sequence[Lock]) -> bool:
    """Point ``alias`` at the published descriptors of ``locks`` (one env, its archs).
    Refused when a descriptor is not in the store yet: an alias never names a missing env."""
    if not locks:
        raise EnvbuildError(f"alias {alias}: no lock to point at")
    if len({lock.name for lock in locks}) != 1:
        names = ", ".join(sorted({lock.name for lock in locks}))
        raise EnvbuildError(f"alias {alias} names one env, not {names}: add env=NAME")
    keys = [descriptor_key(x.env_id.arch, x.env_id.req_id, x.env_id.full_id) for x in locks]
    if missing := store.missing(keys):
        raise EnvbuildError(
            f"alias {alias}: {len(missing)} descriptor(s) of env '{locks[0].name}' are not in "
            f"{store.url}: run `envbuild upload env={locks[0].name}` first"
        )
    return put_alias(store, alias, alias_payload(locks))


def read_alias(store: Store, alias: str) -> dict[str, str]:
    """arch -> ``req_id:full_id`` of an alias."""
    doc = json.loads(get_alias(store, alias))
    return {str(k): str(v) for k, v in doc["archs"].items()}
