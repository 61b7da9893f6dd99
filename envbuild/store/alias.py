"""Aliases in a store: mutable tags move (atomic replace), every other tag is written once."""

from __future__ import annotations

import logging

from envbuild.ids import Alias
from envbuild.store.base import Store
from envbuild.store.errors import AliasConflictError
from envbuild.store.layout import alias_key, as_alias

log = logging.getLogger("envbuild.store")


def put_alias(store: Store, alias: Alias | str, payload: bytes) -> bool:
    """Point ``alias`` at ``payload`` (the referenced env, e.g. its ``req_id:full_id``).

    A mutable tag (``latest``, ``candidate``, ``stable``) is replaced atomically. Any other
    tag is create-only: setting it again to the same payload is a no-op (False), setting it
    to a different one raises :class:`AliasConflictError`. True when the store changed (a
    mutable tag reports True even if the payload was already the same)."""
    a = as_alias(alias)
    key = alias_key(a)
    if a.mutable:
        store.replace_bytes(key, payload)
        log.debug("alias %s moved in %s", a, store.url)
        return True
    if store.put_bytes(key, payload):
        log.debug("alias %s set in %s", a, store.url)
        return True
    if store.get_bytes(key) == payload:
        return False
    raise AliasConflictError(
        f"alias {a} in {store.url} already points at another env and tag '{a.tag}' is"
        " immutable (only latest, candidate and stable move): use a new tag"
    )


def get_alias(store: Store, alias: Alias | str) -> bytes:
    """The payload ``alias`` points at (ObjectNotFoundError if it is not set)."""
    return store.get_bytes(alias_key(alias))
