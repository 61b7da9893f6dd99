"""Store keys: pure functions that map packages, wheels, env descriptors and aliases to keys."""

from __future__ import annotations

import re
from collections.abc import Iterable

from envbuild.ids import Alias, ExactRef, parse_env_ref
from envbuild.store.errors import InvalidKeyError

PACKAGES = "pkgs"
WHEELS = "wheels"
ENVS = "envs"
ALIASES = "aliases"
ALIAS_SUFFIX = ".tag"

MAX_KEY_BYTES = 900  # S3 allows 1024 bytes; leave room for a store prefix

# One path segment: no leading '.' (so no '.', '..' or hidden temp names), no separators,
# whitespace, '%', ':', '@' or other characters that URLs (and credentials) are made of.
_SEGMENT = re.compile(r"^[A-Za-z0-9_+=!~-][A-Za-z0-9._+=!~-]*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SHA1 = re.compile(r"^[0-9a-f]{40}$")
_ARCH = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def validate_segment(segment: str, what: str = "key segment") -> str:
    """``segment`` if it is one valid path segment, else :class:`InvalidKeyError`."""
    if not _SEGMENT.match(segment):
        raise InvalidKeyError(
            f"invalid {what} {segment!r}: use letters, digits and . _ + = ! ~ -, "
            "not starting with '.'"
        )
    return segment


def validate_key(key: str) -> str:
    """``key`` if it is a valid store key: '/'-separated valid segments (no empty segment, no
    leading or trailing '/', no '.' or '..'), at most :data:`MAX_KEY_BYTES` bytes."""
    if not key or len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise InvalidKeyError(f"invalid store key {key[:80]!r}: empty or too long")
    for segment in key.split("/"):
        if not _SEGMENT.match(segment):
            raise InvalidKeyError(
                f"invalid store key {key!r}: segment {segment!r} is empty, starts with '.' "
                "or holds a character outside letters, digits and . _ + = ! ~ -"
            )
    return key


def validate_prefix(prefix: str) -> str:
    """``prefix`` if it is empty or a valid key optionally followed by '/', or a valid key's
    beginning (listing prefixes may stop inside a segment)."""
    if prefix == "":
        return prefix
    body = prefix[:-1] if prefix.endswith("/") else prefix
    if body:
        # the last segment may be cut short, but must still be a segment's beginning
        validate_key(body)
    elif prefix:
        raise InvalidKeyError(f"invalid store prefix {prefix!r}")
    return prefix


def parent(key: str) -> str:
    """The directory part of ``key`` with its trailing '/' (``""`` for a top-level key)."""
    head, sep, _ = key.rpartition("/")
    return head + sep


def _hex(value: str, pattern: re.Pattern[str], what: str) -> str:
    if not pattern.match(value):
        raise InvalidKeyError(f"invalid {what} {value!r}: expected lowercase hex")
    return value


def package_key(sha256: str, filename: str) -> str:
    """``pkgs/<sha256[:2]>/<sha256>/<filename>``: a package file by its content hash, so that a
    package used by many envs and archs is stored once."""
    _hex(sha256, _SHA256, "sha256")
    validate_segment(filename, "package filename")
    return f"{PACKAGES}/{sha256[:2]}/{sha256}/{filename}"


def wheel_prefix(source_key: str) -> str:
    """``wheels/<source_key[:2]>/<source_key>/``: listing it gives every wheel built from one
    source. ``source_key`` is the sha256 hex of the source's identity (the builder's
    ``source_key``): the identity itself, which may hold a URL, never enters a key."""
    _hex(source_key, _SHA256, "source key")
    return f"{WHEELS}/{source_key[:2]}/{source_key}/"


def wheel_key(source_key: str, sha256: str, wheel_filename: str) -> str:
    """``wheels/<source_key[:2]>/<source_key>/<sha256>/<wheel filename>``: one wheel built from
    a source. The wheel's own sha256 is in the key, so a listing tells a reader what to verify
    the download against, and two builds of one source that differ in bytes never collide;
    the filename carries the tags."""
    _hex(sha256, _SHA256, "sha256")
    validate_segment(wheel_filename, "wheel filename")
    if not wheel_filename.endswith(".whl"):
        raise InvalidKeyError(f"invalid wheel filename {wheel_filename!r}: must end in .whl")
    return f"{wheel_prefix(source_key)}{sha256}/{wheel_filename}"


def parse_wheel_key(key: str) -> tuple[str, str]:
    """(sha256, wheel filename) of a key made by :func:`wheel_key`."""
    parts = key.split("/")
    try:
        if len(parts) == 5 and parts[0] == WHEELS and wheel_key(*parts[2:]) == key:
            return parts[3], parts[4]
    except InvalidKeyError:
        pass
    raise InvalidKeyError(f"store key {key!r} is not a wheel key")


def descriptor_dir(arch: str, req_id: str) -> str:
    """``envs/<arch>/<req_id>/``: listing it gives every resolution of one requirement set."""
    if not _ARCH.match(arch):
        raise InvalidKeyError(f"invalid arch {arch!r}")
    _hex(req_id, _SHA1, "req_id")
    return f"{ENVS}/{arch}/{req_id}/"


def descriptor_key(arch: str, req_id: str, full_id: str) -> str:
    """``envs/<arch>/<req_id>/<full_id>``: an env descriptor."""
    return descriptor_dir(arch, req_id) + _hex(full_id, _SHA1, "full_id")


def as_alias(alias: Alias | str) -> Alias:
    """An :class:`Alias` from an alias or its text (``name[:tag]``); exact refs are refused."""
    ref = parse_env_ref(alias) if isinstance(alias, str) else alias
    if isinstance(ref, ExactRef):
        raise InvalidKeyError(f"'{ref}' is an exact env reference, not an alias")
    # an Alias built directly bypasses parse_env_ref's checks: re-check through the grammar
    checked = parse_env_ref(str(ref))
    assert isinstance(checked, Alias)
    return checked


def alias_key(alias: Alias | str) -> str:
    """``aliases/<name>/<tag>.tag`` (the name may hold '/'). The ``.tag`` suffix cannot occur
    in a name segment, so ``team/app:v1`` never collides with a name ``team/app/v1``."""
    a = as_alias(alias)
    return validate_key(f"{ALIASES}/{a.name}/{a.tag}{ALIAS_SUFFIX}")


def alias_from_key(key: str) -> Alias:
    """The alias a key made by :func:`alias_key` stands for."""
    if not key.startswith(ALIASES + "/") or not key.endswith(ALIAS_SUFFIX):
        raise InvalidKeyError(f"store key {key!r} is not an alias key")
    name, _, tag = key[len(ALIASES) + 1 : -len(ALIAS_SUFFIX)].rpartition("/")
    return as_alias(f"{name}:{tag}")


def group_by_parent(keys: Iterable[str]) -> dict[str, set[str]]:
    """Valid keys grouped by :func:`parent` (the unit of one directory listing)."""
    groups: dict[str, set[str]] = {}
    for key in keys:
        groups.setdefault(parent(validate_key(key)), set()).add(key)
    return groups
