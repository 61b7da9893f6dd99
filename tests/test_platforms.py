"""Tests for target archs and their virtual packages (envbuild.platforms)."""

from __future__ import annotations

import platform

import pytest

from envbuild import platforms
from envbuild.platforms import ARCHS, check_arch, os_of, virtual_packages

LINUX = ("linux-64", "linux-aarch64")
OSX = ("osx-64", "osx-arm64")


def names(arch: str, overrides: dict[str, str] | None = None) -> dict[str, tuple[str, str]]:
    return {n: (v, b) for n, v, b in virtual_packages(arch, overrides or {})}


def test_archs_are_the_four_supported_in_canonical_order() -> None:
    assert ARCHS == ("linux-64", "linux-aarch64", "osx-64", "osx-arm64")
    assert tuple(sorted(ARCHS)) == ARCHS


@pytest.mark.parametrize("arch", ARCHS)
def test_check_arch_accepts_supported(arch: str) -> None:
    assert check_arch(arch) is True


@pytest.mark.parametrize(
    "arch", ["", "win-64", "linux-32", "noarch", "osx-aarch64", "linux-arm64", "Linux-64", " linux-64"]
)
def test_check_arch_refuses_others(arch: str) -> None:
    assert check_arch(arch) is False


@pytest.mark.parametrize(("arch", "family"), [*((a, "linux") for a in LINUX), *((a, "osx") for a in OSX)])
def test_os_of(arch: str, family: str) -> None:
    assert os_of(arch) == family


# --------------------------------------------------------------------------- defaults


@pytest.mark.parametrize(
    ("arch", "expected"),
    [
        (
            "linux-64",
            (
                ("__archspec", "1", "x86_64"),
                ("__glibc", "2.17", "0"),
                ("__linux", "5.10", "0"),
                ("__unix", "0", "0"),
            ),
        ),
        (
            "linux-aarch64",
            (
                ("__archspec", "1", "aarch64"),
                ("__glibc", "2.17", "0"),
                ("__linux", "5.10", "0"),
                ("__unix", "0", "0"),
            ),
        ),
        (
            "osx-64",
            (("__archspec", "1", "x86_64"), ("__osx", "10.13", "0"), ("__unix", "0", "0")),
        ),
        (
            "osx-arm64",
            (("__archspec", "1", "arm64"), ("__osx", "11.0", "0"), ("__unix", "0", "0")),
        ),
    ],
)
def test_default_virtual_packages(arch: str, expected: tuple[tuple[str, str, str], ...]) -> None:
    assert virtual_packages(arch, {}) == expected


@pytest.mark.parametrize("arch", LINUX)
def test_linux_archs_have_glibc_and_linux_not_osx(arch: str) -> None:
    got = names(arch)
    assert "__glibc" in got
    assert "__linux" in got
    assert "__unix" in got
    assert "__osx" not in got


@pytest.mark.parametrize("arch", OSX)
def test_osx_archs_have_osx_not_glibc(arch: str) -> None:
    got = names(arch)
    assert "__osx" in got
    assert "__unix" in got
    assert "__glibc" not in got
    assert "__linux" not in got


@pytest.mark.parametrize(
    ("arch", "build"),
    [("linux-64", "x86_64"), ("linux-aarch64", "aarch64"), ("osx-64", "x86_64"), ("osx-arm64", "arm64")],
)
def test_archspec_build(arch: str, build: str) -> None:
    assert names(arch)["__archspec"] == ("1", build)


# --------------------------------------------------------------------------- overrides


@pytest.mark.parametrize("arch", LINUX)
def test_glibc_override_replaces_version_keeps_build(arch: str) -> None:
    got = names(arch, {"__glibc": "2.28"})
    assert got["__glibc"] == ("2.28", "0")
    assert got["__linux"] == ("5.10", "0")


@pytest.mark.parametrize("arch", ARCHS)
def test_cuda_override_is_added(arch: str) -> None:
    got = names(arch, {"__cuda": "12.0"})
    assert got["__cuda"] == ("12.0", "0")
    assert set(got) - {"__cuda"} == set(names(arch))


@pytest.mark.parametrize("arch", ARCHS)
def test_version_equals_build_sets_the_build(arch: str) -> None:
    assert names(arch, {"__cuda": "12.0=cuda"})["__cuda"] == ("12.0", "cuda")
    assert names(arch, {"__archspec": "1=skylake"})["__archspec"] == ("1", "skylake")


@pytest.mark.parametrize("arch", ARCHS)
def test_override_without_build_keeps_the_default_build(arch: str) -> None:
    default = names(arch)["__archspec"]
    assert names(arch, {"__archspec": "2"})["__archspec"] == ("2", default[1])


@pytest.mark.parametrize("arch", OSX)
@pytest.mark.parametrize("name", ["__glibc", "__linux"])
def test_linux_only_override_is_ignored_for_osx(arch: str, name: str) -> None:
    assert virtual_packages(arch, {name: "2.28"}) == virtual_packages(arch, {})


@pytest.mark.parametrize("arch", LINUX)
def test_osx_override_is_ignored_for_linux(arch: str) -> None:
    assert virtual_packages(arch, {"__osx": "14.0"}) == virtual_packages(arch, {})


@pytest.mark.parametrize(("arch", "version"), [("osx-64", "12.0"), ("osx-arm64", "14.2")])
def test_osx_override_applies_to_osx(arch: str, version: str) -> None:
    assert names(arch, {"__osx": version})["__osx"] == (version, "0")


@pytest.mark.parametrize("arch", ARCHS)
def test_results_are_sorted_and_deterministic(arch: str) -> None:
    overrides = {"__zz": "1", "__cuda": "12.0=cuda", "__glibc": "2.28", "__aa": "0"}
    first = virtual_packages(arch, overrides)
    assert [n for n, _, _ in first] == sorted(n for n, _, _ in first)
    assert virtual_packages(arch, dict(reversed(list(overrides.items())))) == first
    assert virtual_packages(arch, overrides) == first


def test_overrides_mapping_is_not_modified() -> None:
    overrides = {"__glibc": "2.28=x"}
    virtual_packages("linux-64", overrides)
    assert overrides == {"__glibc": "2.28=x"}


# --------------------------------------------------------------------------- purity


def test_virtual_packages_never_probes_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_args: object) -> str:
        raise AssertionError("virtual_packages must not inspect the host")

    monkeypatch.setattr(platforms, "host_arch", boom)
    monkeypatch.setattr(platform, "machine", boom)
    monkeypatch.setattr(platform, "system", boom)
    for arch in ARCHS:
        got = virtual_packages(arch, {"__cuda": "12.0", "__glibc": "2.28"})
        assert ("__cuda", "12.0", "0") in got
    with pytest.raises(AssertionError, match="must not inspect the host"):
        platforms.host_arch()


@pytest.mark.parametrize(
    ("system", "machine", "expected"),
    [
        ("linux", "x86_64", "linux-64"),
        ("linux", "aarch64", "linux-aarch64"),
        ("linux", "arm64", "linux-aarch64"),
        ("darwin", "x86_64", "osx-64"),
        ("darwin", "arm64", "osx-arm64"),
        ("darwin", "AArch64", "osx-arm64"),
    ],
)
def test_host_arch(monkeypatch: pytest.MonkeyPatch, system: str, machine: str, expected: str) -> None:
    monkeypatch.setattr(platforms.sys, "platform", system)
    monkeypatch.setattr(platform, "machine", lambda: machine)
    assert platforms.host_arch() == expected
