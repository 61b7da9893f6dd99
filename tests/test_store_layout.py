"""Store layout keys and listing plans: pure functions, checked with Hypothesis."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from envbuild.ids import Alias
from envbuild.store.errors import InvalidKeyError
from envbuild.store.layout import (
    alias_from_key,
    alias_key,
    descriptor_key,
    package_key,
    parent,
    parse_wheel_key,
    validate_key,
    wheel_key,
    wheel_prefix,
)
from envbuild.store.listing import plan_listings

hex64 = st.text("0123456789abcdef", min_size=64, max_size=64)
hex40 = st.text("0123456789abcdef", min_size=40, max_size=40)
filename = st.from_regex(r"\A[A-Za-z0-9_][A-Za-z0-9._+-]{0,60}\.(conda|tar\.bz2|whl)\Z")
wheel_name = st.from_regex(r"\A[A-Za-z0-9_]{1,20}-[0-9.]{1,8}-py3-none-any\.whl\Z")
alias_name = st.from_regex(r"\A[-a-z0-9_]{1,10}(/[-a-z0-9_]{1,10}){0,3}\Z")
alias_tag = st.from_regex(r"\A[-a-z0-9_]{1,12}\Z")


def assert_safe(key: str) -> None:
    assert validate_key(key) == key
    assert not key.startswith("/") and not key.endswith("/")
    segments = key.split("/")
    assert all(s and s not in (".", "..") and not s.startswith(".") for s in segments)
    assert ":" not in key and "@" not in key and "\\" not in key


@given(hex64, filename)
def test_package_key(sha256: str, name: str) -> None:
    key = package_key(sha256, name)
    assert key == package_key(sha256, name) == f"pkgs/{sha256[:2]}/{sha256}/{name}"
    assert_safe(key)


@given(st.text(min_size=1), hex64, wheel_name)
def test_wheel_key_holds_no_source_identity(identity: str, sha256: str, name: str) -> None:
    source = hashlib.sha256(identity.encode()).hexdigest()
    key = wheel_key(source, sha256, name)
    assert key.startswith(wheel_prefix(source)) and key == wheel_key(source, sha256, name)
    assert parse_wheel_key(key) == (sha256, name)
    assert_safe(key)


@given(
    st.sampled_from(["linux-64", "linux-aarch64", "osx-64", "osx-arm64", "win-64"]), hex40, hex40
)
def test_descriptor_key(arch: str, req: str, full: str) -> None:
    key = descriptor_key(arch, req, full)
    assert key == f"envs/{arch}/{req}/{full}"
    assert_safe(key)


@given(alias_name, alias_tag)
def test_alias_key_round_trip(name: str, tag: str) -> None:
    key = alias_key(f"{name}:{tag}")
    assert key == alias_key(Alias(name, tag)) == f"aliases/{name}/{tag}.tag"
    assert alias_from_key(key) == Alias(name, tag)
    assert_safe(key)


@given(st.text(max_size=80))
def test_validate_key_accepts_only_safe_keys(text: str) -> None:
    try:
        key = validate_key(text)
    except InvalidKeyError as exc:
        assert "\n" not in str(exc)
        return
    assert_safe(key)


@pytest.mark.parametrize(
    "bad",
    ["", "/a", "a/", "a//b", "../a", "a/../b", "a/./b", ".a", "a/.b", "a\\b", "a b", "a:b",
     "user:pw@host/a", "a%2Fb", "a\x00b", "é"],
)  # fmt: skip
def test_validate_key_rejects(bad: str) -> None:
    with pytest.raises(InvalidKeyError):
        validate_key(bad)


@pytest.mark.parametrize(
    ("call", "args"),
    [
        (package_key, ("A" * 64, "x.conda")),
        (package_key, ("a" * 64, "../x.conda")),
        (package_key, ("a" * 64, "dir/x.conda")),
        (wheel_key, ("a" * 64, "b" * 64, "x.tar.gz")),
        (descriptor_key, ("linux-64", "a" * 39, "b" * 40)),
        (descriptor_key, ("../linux-64", "a" * 40, "b" * 40)),
        (alias_key, ("a" * 40 + ":" + "b" * 40,)),
        (alias_key, ("Team/App:latest",)),
    ],
)
def test_layout_rejects_bad_parts(call: object, args: tuple[str, ...]) -> None:
    with pytest.raises(Exception) as info:
        call(*args)  # type: ignore[operator]
    assert isinstance(info.value, InvalidKeyError) or type(info.value).__name__ == "SpecError"


@given(st.lists(st.tuples(hex64, filename), max_size=60))
def test_listing_plans_cover_every_key_once(items: list[tuple[str, str]]) -> None:
    keys = {package_key(s, f) for s, f in items}
    plans = plan_listings(keys)
    covered = [k for plan in plans for k in plan.keys]
    assert sorted(covered) == sorted(keys)  # each key in exactly one listing
    assert len(plans) <= len({parent(k) for k in keys})
    for plan in plans:
        for key in plan.keys:
            assert key.startswith(plan.prefix)
            assert key > plan.start_after
            assert key <= plan.last
    assert plans == plan_listings(sorted(keys, reverse=True))  # deterministic
