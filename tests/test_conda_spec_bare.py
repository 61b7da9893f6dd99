"""A bare conda package name is normalised without rattler, to exactly what rattler gives."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rattler import MatchSpec

from envbuild.parsers import _BARE_NAME, normalise_conda_spec

NAME = st.from_regex(r"[a-z0-9_]{1,8}(?:[.\-][a-z0-9_]{1,8}){0,3}", fullmatch=True)


@settings(max_examples=300, deadline=None)
@given(NAME)
def test_bare_names_are_their_own_canonical_spec(name: str) -> None:
    assert _BARE_NAME.fullmatch(name)
    assert normalise_conda_spec(name) == str(MatchSpec(name)) == name


@pytest.mark.parametrize(
    "spec",
    ["NumPy", "numpy >=1.2", "numpy=1.2", "a..b", "-a", "a-", "conda-forge::numpy", "numpy[build=1]"],
)
def test_other_specs_go_through_rattler(spec: str) -> None:
    assert not _BARE_NAME.fullmatch(spec)
    try:
        expected: str | None = str(MatchSpec(" ".join(spec.split())))
    except Exception:
        expected = None
    if expected is None:
        with pytest.raises(ValueError):
            normalise_conda_spec(spec)
    else:
        assert normalise_conda_spec(spec) == expected
