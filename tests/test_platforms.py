"""Tests for target archs and their virtual packages (envbuild.platforms)."""

from __future__ import annotations

import platform

import pytest

from envbuild import platforms
from envbuild.platforms import ARCHS, check_arch, os_of, virtual_packages

LINUX = ("linux-64", "linux-aarch64")
OSX = ("osx-64", "osx-arm64")
UNIX = LINUX + OSX


def names(arch: str, overrides: dict[str, str] | None = None) -> dict[str, tuple[str, str]]:
    return {n: (v, b) for n, v, b in virtual_packages(arch, overrides or {})}


def test_archs_are_the_five_supported_in_canonical_order() -> None:
    assert ARCHS == ("linux-64", "linux-aarch64", "osx-64", "osx-arm64", "win-64")
    assert tuple(sorted(ARCHS)) == ARCHS


@pytest.mark.parametrize("arch", ARCHS)
def test_check_arch_accepts_supported(arch: str) -> None:
    assert check_arch(arch) is True


@pytest.mark.parametrize(
    "arch", ["", "win-32", "win-arm64", "linux-32", "noarch", "osx-aarch64", "linux-arm64", "Linux-64", " linux-64"]
)
def test_check_arch_refuses_others(arch: str) -> None:
    assert check_arch(arch) is False


@pytest.mark.parametrize(
    ("arch", "family"),
    [*((a, "linux") for a in LINUX), *((a, "osx") for a in OSX), ("win-64", "win")],
)
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
                ("__glibc", "2.28", "0"),
                ("__linux", "5.10", "0"),
                ("__unix", "0", "0"),
            ),
        ),
        (
            "linux-aarch64",
            (
                ("__archspec", "1", "aarch64"),
                ("__glibc", "2.28", "0"),
                ("__linux", "5.10", "0"),
                ("__unix", "0", "0"),
            ),
        ),
        (
            "osx-64",
            (("__archspec", "1", "x86_64"), ("__osx", "13.0", "0"), ("__unix", "0", "0")),
        ),
        (
            "osx-arm64",
            (("__archspec", "1", "arm64"), ("__osx", "13.0", "0"), ("__unix", "0", "0")),
        ),
        ("win-64", (("__archspec", "1", "x86_64"), ("__win", "0", "0"))),
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
    [
        ("linux-64", "x86_64"),
        ("linux-aarch64", "aarch64"),
        ("osx-64", "x86_64"),
        ("osx-arm64", "arm64"),
        ("win-64", "x86_64"),
    ],
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


@pytest.mark.parametrize("name", ["__glibc", "__linux", "__osx", "__unix"])
def test_unix_overrides_are_ignored_for_win(name: str) -> None:
    assert virtual_packages("win-64", {name: "2.28"}) == virtual_packages("win-64", {})


@pytest.mark.parametrize("arch", UNIX)
def test_win_override_is_ignored_for_unix(arch: str) -> None:
    assert virtual_packages(arch, {"__win": "10"}) == virtual_packages(arch, {})


def test_win_override_applies_to_win() -> None:
    assert names("win-64", {"__win": "10.0.19045"})["__win"] == ("10.0.19045", "0")


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


# --------------------------------------------------------------------------- PyPI targets


@pytest.mark.parametrize(
    ("arch", "overrides", "expected"),
    [
        # the defaults are uv's own: x86_64-unknown-linux-gnu is manylinux_2_28, darwin 13.0
        ("linux-64", {}, ("x86_64-manylinux_2_28", {})),
        ("linux-aarch64", {}, ("aarch64-manylinux_2_28", {})),
        ("osx-64", {}, ("x86_64-apple-darwin", {"MACOSX_DEPLOYMENT_TARGET": "13.0"})),
        ("osx-arm64", {}, ("aarch64-apple-darwin", {"MACOSX_DEPLOYMENT_TARGET": "13.0"})),
        ("win-64", {}, ("x86_64-pc-windows-msvc", {})),
        ("linux-64", {"__glibc": "2.17"}, ("x86_64-manylinux_2_17", {})),
        ("linux-64", {"__glibc": "2.30"}, ("x86_64-manylinux_2_28", {})),
        ("osx-arm64", {"__osx": "11.0"}, ("aarch64-apple-darwin", {"MACOSX_DEPLOYMENT_TARGET": "11.0"})),
    ],
)
def test_uv_platform(arch: str, overrides: dict[str, str], expected: tuple[str, dict[str, str]]) -> None:
    assert platforms.uv_platform(arch, virtual_packages(arch, overrides)) == expected


@pytest.mark.parametrize(
    ("arch", "first", "last"),
    [
        ("linux-64", "manylinux_2_28_x86_64", "linux_x86_64"),
        ("linux-aarch64", "manylinux_2_28_aarch64", "linux_aarch64"),
        ("osx-64", "macosx_13_0_x86_64", "macosx_10_4_universal"),
        ("osx-arm64", "macosx_13_0_arm64", "macosx_10_4_universal2"),
        ("win-64", "win_amd64", "win_amd64"),
    ],
)
def test_default_platform_tags(arch: str, first: str, last: str) -> None:
    tags = platforms.platform_tags(arch, virtual_packages(arch, {}))
    assert (tags[0], tags[-1]) == (first, last)


@pytest.mark.parametrize(
    ("arch", "overrides", "available", "expected"),
    [
        ("linux-64", {"__glibc": "2.17"}, ["manylinux_2_28_x86_64"], ("__glibc", "2.28")),
        ("linux-64", {"__glibc": "2.12"}, ["manylinux2014_x86_64"], ("__glibc", "2.17")),
        # the lowest that works, of the target's machine only
        (
            "linux-64",
            {"__glibc": "2.17"},
            ["manylinux_2_34_x86_64", "manylinux_2_31_x86_64", "manylinux_2_28_aarch64"],
            ("__glibc", "2.31"),
        ),
        ("linux-aarch64", {}, ["manylinux_2_34_aarch64"], ("__glibc", "2.34")),
        ("osx-arm64", {}, ["macosx_14_0_arm64", "win_amd64"], ("__osx", "14.0")),
        ("osx-arm64", {"__osx": "11.0"}, ["macosx_12_0_arm64"], ("__osx", "12.0")),
        ("osx-64", {}, ["macosx_14_0_universal2"], ("__osx", "14.0")),
        ("osx-64", {"__osx": "10.13"}, ["macosx_10_15_x86_64"], ("__osx", "10.15")),
        # unknowable or not the version: None
        ("linux-64", {}, ["manylinux_2_28_x86_64"], None),  # fits already
        ("linux-64", {"__glibc": "2.17"}, ["manylinux_2_28_aarch64", "win_amd64"], None),
        ("linux-64", {"__glibc": "2.17"}, ["musllinux_1_2_x86_64"], None),
        ("osx-arm64", {}, ["macosx_14_0_x86_64"], None),
        ("win-64", {}, ["manylinux_2_28_x86_64", "macosx_14_0_arm64"], None),
        ("linux-64", {"__glibc": "2.17"}, [], None),
    ],
)
def test_needed_virtual(
    arch: str, overrides: dict[str, str], available: list[str], expected: tuple[str, str] | None
) -> None:
    assert platforms.needed_virtual(arch, virtual_packages(arch, overrides), available) == expected


@pytest.mark.parametrize(
    ("arch", "system", "sys_platform", "os_name", "machine"),
    [
        ("linux-64", "Linux", "linux", "posix", "x86_64"),
        ("linux-aarch64", "Linux", "linux", "posix", "aarch64"),
        ("osx-64", "Darwin", "darwin", "posix", "x86_64"),
        ("osx-arm64", "Darwin", "darwin", "posix", "arm64"),
        ("win-64", "Windows", "win32", "nt", "AMD64"),
    ],
)
def test_marker_environment(arch: str, system: str, sys_platform: str, os_name: str, machine: str) -> None:
    env = platforms.marker_environment(arch, "3.12.4")
    assert (env["platform_system"], env["sys_platform"], env["os_name"]) == (system, sys_platform, os_name)
    assert (env["platform_machine"], env["python_version"]) == (machine, "3.12")
