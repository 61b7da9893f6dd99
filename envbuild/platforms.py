"""Target architectures: names, their default virtual packages, and the one host probe."""

from __future__ import annotations

import platform as _platform
import sys
from collections.abc import Mapping

# Every arch envbuild can target, in canonical (sorted) order.
ARCHS: tuple[str, ...] = ("linux-64", "linux-aarch64", "osx-64", "osx-arm64")

# Defaults for virtual packages per arch. (name, version, build)
_DEFAULT_VIRTUAL: dict[str, tuple[tuple[str, str, str], ...]] = {
    "linux-64": (
        ("__unix", "0", "0"),
        ("__linux", "5.10", "0"),
        ("__glibc", "2.17", "0"),
        ("__archspec", "1", "x86_64"),
    ),
    "linux-aarch64": (
        ("__unix", "0", "0"),
        ("__linux", "5.10", "0"),
        ("__glibc", "2.17", "0"),
        ("__archspec", "1", "aarch64"),
    ),
    "osx-64": (
        ("__unix", "0", "0"),
        ("__osx", "10.13", "0"),
        ("__archspec", "1", "x86_64"),
    ),
    "osx-arm64": (
        ("__unix", "0", "0"),
        ("__osx", "11.0", "0"),
        ("__archspec", "1", "arm64"),
    ),
}

# Which virtual packages make sense on which OS family (overrides for others are ignored).
_OS_ONLY = {"__glibc": "linux", "__linux": "linux", "__osx": "osx"}


def check_arch(arch: str) -> bool:
    """True if ``arch`` is a supported target arch name."""
    return arch in _DEFAULT_VIRTUAL


def os_of(arch: str) -> str:
    """The OS family of an arch: ``linux`` or ``osx``."""
    return arch.split("-", 1)[0]


def virtual_packages(arch: str, overrides: Mapping[str, str]) -> tuple[tuple[str, str, str], ...]:
    """The virtual packages (name, version, build) of target ``arch`` after ``overrides``.

    Overrides replace the version of a default (``__glibc = "2.28"``) or add a package
    (``__cuda = "12.0"``). An override of an OS-specific package for another OS (``__glibc``
    for osx-arm64) is ignored. An override given as ``"version=build"`` sets the build too.
    Pure: never inspects the host.
    """
    family = os_of(arch)
    result: dict[str, tuple[str, str]] = {n: (v, b) for n, v, b in _DEFAULT_VIRTUAL[arch]}
    for name, value in overrides.items():
        if _OS_ONLY.get(name, family) != family:
            continue
        version, _, build = value.partition("=")
        old_build = result.get(name, ("", "0"))[1]
        result[name] = (version, build or old_build)
    return tuple((n, v, b) for n, (v, b) in sorted(result.items()))


def host_arch() -> str:
    """The arch of this machine: the only function that inspects the host for the arch."""
    machine = _platform.machine().lower()
    if sys.platform == "darwin":
        return "osx-arm64" if machine in ("arm64", "aarch64") else "osx-64"
    return "linux-aarch64" if machine in ("arm64", "aarch64") else "linux-64"
