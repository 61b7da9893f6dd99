"""Aliases of published envs: ``name:tag`` pointing at the descriptors of one env's archs."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from envbuild.errors import EnvbuildError
from envbuild.lock import Lock
from envbuild.store import ObjectNotFoundError, Store
from envbuild.store.alias import get_alias, put_alias
from envbuild.store.layout import descriptor_key


class AliasNotFoundError(EnvbuildError):
    """An alias that is not set in the store."""


def target_payload(env: str, archs: Mapping[str, str]) -> bytes:
    """What an alias holds: the env's name and ``req_id:full_id`` per arch (deterministic)."""
    doc = {"env": env, "archs": dict(archs)}
    return (json.dumps(doc, sort_keys=True) + "\n").encode("utf-8")


def point_alias(store: Store, alias: str, env: str, archs: Mapping[str, str]) -> bool:
    """Point ``alias`` at env ``env``'s descriptors (arch -> ``req_id:full_id``). Refused
    when a descriptor is not in the store: an alias never names a missing env. Mutable
    tags move; any other tag is create-only (AliasConflictError if it would move)."""
    if not archs:
        raise EnvbuildError(f"alias {alias}: no env to point at")
    keys = [descriptor_key(arch, *ref.split(":", 1)) for arch, ref in sorted(archs.items())]
    if missing := store.missing(keys):
        raise EnvbuildError(
            f"alias {alias}: {len(missing)} descriptor(s) of env '{env}' are not in "
            f"{store.url}: run `envbuild upload env={env}` first"
        )
    return put_alias(store, alias, target_payload(env, archs))


def set_alias(store: Store, alias: str, locks: Sequence[Lock]) -> bool:
    """Point ``alias`` at the published descriptors of ``locks`` (one env, its archs)."""
    if not locks:
        raise EnvbuildError(f"alias {alias}: no lock to point at")
    if len({lock.name for lock in locks}) != 1:
        names = ", ".join(sorted({lock.name for lock in locks}))
        raise EnvbuildError(f"alias {alias} names one env, not {names}: add env=NAME")
    archs = {x.env_id.arch: f"{x.env_id.req_id}:{x.env_id.full_id}" for x in locks}
    return point_alias(store, alias, locks[0].name, archs)


def read_alias_target(store: Store, alias: str) -> tuple[str, dict[str, str]]:
    """(env name, arch -> ``req_id:full_id``) of an alias; AliasNotFoundError when it is not
    set, a one-line error when its payload is not an alias's."""
    try:
        data = get_alias(store, alias)
    except ObjectNotFoundError:
        raise AliasNotFoundError(
            f"alias {alias} is not set in {store.url}: check its name and tag (set one with "
            "`envbuild alias REF NAME:TAG` or `envbuild upload --alias NAME:TAG`)"
        ) from None
    try:
        doc = json.loads(data)
        archs = {str(k): str(v) for k, v in doc["archs"].items()}
        return str(doc.get("env", "")), archs
    except (ValueError, KeyError, TypeError, AttributeError):
        raise EnvbuildError(
            f"alias {alias} in {store.url} does not hold an env reference: set it again with "
            "`envbuild alias REF NAME:TAG`"
        ) from None


def read_alias(store: Store, alias: str) -> dict[str, str]:
    """arch -> ``req_id:full_id`` of an alias."""
    return read_alias_target(store, alias)[1]
