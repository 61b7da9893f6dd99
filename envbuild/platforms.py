"""Target architectures: names, their default virtual packages, and the one host probe."""

from __future__ import annotations

import platform as _platform
import sys
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from packaging.tags import Tag

# Every arch envbuild can target, in canonical (sorted) order. win-64 is for locks only: envs
# are created on linux and macOS (create.py refuses win-64 with a clear error).
ARCHS: tuple[str, ...] = ("linux-64", "linux-aarch64", "osx-64", "osx-arm64", "win-64")

# Defaults for virtual packages per arch. (name, version, build). The versions are the
# oldest system an env is locked for: conda-forge's baselines (glibc 2.17, macOS 11.0) are
# below them, so every conda-forge package still fits, and they are uv's own target
# defaults (``x86_64-unknown-linux-gnu`` is manylinux_2_28, darwin targets are macOS 13.0),
# so recent numpy, scipy, pandas, pillow and scikit-learn get wheels. README's "Target
# defaults" table documents them; a workspace or env overrides them.
DEFAULT_GLIBC = "2.28"
DEFAULT_OSX = "13.0"
_DEFAULT_VIRTUAL: dict[str, tuple[tuple[str, str, str], ...]] = {
    "linux-64": (
        ("__unix", "0", "0"),
        ("__linux", "5.10", "0"),
        ("__glibc", DEFAULT_GLIBC, "0"),
        ("__archspec", "1", "x86_64"),
    ),
    "linux-aarch64": (
        ("__unix", "0", "0"),
        ("__linux", "5.10", "0"),
        ("__glibc", DEFAULT_GLIBC, "0"),
        ("__archspec", "1", "aarch64"),
    ),
    "osx-64": (
        ("__unix", "0", "0"),
        ("__osx", DEFAULT_OSX, "0"),
        ("__archspec", "1", "x86_64"),
    ),
    "osx-arm64": (
        ("__unix", "0", "0"),
        ("__osx", DEFAULT_OSX, "0"),
        ("__archspec", "1", "arm64"),
    ),
    "win-64": (
        ("__win", "0", "0"),
        ("__archspec", "1", "x86_64"),
    ),
}

# Which virtual packages make sense on which OS families (overrides for others are ignored).
_OS_ONLY = {
    "__glibc": ("linux",),
    "__linux": ("linux",),
    "__osx": ("osx",),
    "__unix": ("linux", "osx"),
    "__win": ("win",),
}


def check_arch(arch: str) -> bool:
    """True if ``arch`` is a supported target arch name."""
    return arch in _DEFAULT_VIRTUAL


def os_of(arch: str) -> str:
    """The OS family of an arch: ``linux``, ``osx`` or ``win``."""
    return arch.split("-", 1)[0]


def virtual_packages(arch: str, overrides: Mapping[str, str]) -> tuple[tuple[str, str, str], ...]:
    """The virtual packages (name, version, build) of target ``arch`` after ``overrides``.

    Overrides replace the version of a default (``__glibc = "2.28"``) or add a package
    (``__cuda = "12.0"``). An override of an OS-specific package for another OS (``__glibc``
    for osx-arm64, ``__unix`` for win-64) is ignored. An override given as ``"version=build"`` sets the build too.
    Pure: never inspects the host.
    """
    family = os_of(arch)
    result: dict[str, tuple[str, str]] = {n: (v, b) for n, v, b in _DEFAULT_VIRTUAL[arch]}
    for name, value in overrides.items():
        if family not in _OS_ONLY.get(name, (family,)):
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


# --- PyPI side: wheel platform tags, uv's --python-platform, pip's --platform ------------

_MACHINE = {
    "linux-64": "x86_64",
    "linux-aarch64": "aarch64",
    "osx-64": "x86_64",
    "osx-arm64": "arm64",
    "win-64": "AMD64",  # platform.machine() on 64-bit Windows
}
# The manylinux levels uv can target with --python-platform (besides 2_17).
_UV_MANYLINUX = (17, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40)
# The virtual package whose version bounds a family's wheel platforms, and its default.
_VERSIONED = {"linux": ("__glibc", DEFAULT_GLIBC), "osx": ("__osx", DEFAULT_OSX)}


def _version_of(vps: tuple[tuple[str, str, str], ...], name: str, default: str) -> tuple[int, int]:
    value = next((v for n, v, _ in vps if n == name), default)
    parts = [int(p) for p in value.split(".")[:2] if p.isdigit()] + [0, 0]
    return parts[0], parts[1]


def platform_tags(arch: str, vps: tuple[tuple[str, str, str], ...]) -> list[str]:
    """Wheel platform tags a target accepts, most preferred first. Linux: manylinux_2_N for
    N from the target's ``__glibc`` down to 5 (with the manylinux2014/2010/1 aliases), then
    ``linux_<machine>``; macOS: from the target's ``__osx`` down, as ``packaging.tags``
    lists them (universal2 and friends included); win-64: ``win_amd64``. Pure: never looks
    at the host."""
    from packaging.tags import mac_platforms

    family = os_of(arch)
    if family == "win":
        return ["win_amd64"]
    machine = _MACHINE[arch]
    if family == "osx":
        return list(mac_platforms(_version_of(vps, "__osx", DEFAULT_OSX), machine))
    _, glibc_minor = _version_of(vps, "__glibc", DEFAULT_GLIBC)
    tags = []
    aliases = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    for minor in range(glibc_minor, 4, -1):
        tags.append(f"manylinux_2_{minor}_{machine}")
        if minor in aliases and (minor == 17 or machine == "x86_64"):
            tags.append(f"{aliases[minor]}_{machine}")
    tags.append(f"linux_{machine}")
    return tags


def wheel_tags(arch: str, python_version: str, vps: tuple[tuple[str, str, str], ...]) -> list[Tag]:
    """Every wheel tag a CPython ``python_version`` on ``arch`` accepts, best first."""
    from packaging.tags import compatible_tags, cpython_tags

    major, minor = (int(p) for p in python_version.split(".")[:2])
    platforms = platform_tags(arch, vps)
    abi = f"cp{major}{minor}"
    return [
        *cpython_tags((major, minor), abis=[abi], platforms=platforms),
        *compatible_tags((major, minor), interpreter=abi, platforms=platforms),
    ]


_LEGACY_MANYLINUX = {"manylinux2014": (2, 17), "manylinux2010": (2, 12), "manylinux1": (2, 5)}


def _tag_version(tag: str) -> tuple[int, int] | None:
    """The system version a wheel platform tag names: (2, 28) for ``manylinux_2_28_x86_64``,
    (2, 17) for ``manylinux2014_aarch64``, (14, 0) for ``macosx_14_0_arm64``."""
    import re

    match = re.fullmatch(r"(?:manylinux|macosx)_(\d+)_(\d+)_\w+", tag)
    if match:
        return int(match.group(1)), int(match.group(2))
    return _LEGACY_MANYLINUX.get(tag.split("_", 1)[0])


def needed_virtual(
    arch: str, vps: tuple[tuple[str, str, str], ...], available: Iterable[str]
) -> tuple[str, str] | None:
    """The virtual package of target ``arch`` to raise, and the lowest version that accepts
    one of the wheel platform tags ``available`` (as a resolver lists them): ``("__glibc",
    "2.28")`` for ``manylinux_2_28_x86_64`` on linux-64 at ``__glibc`` 2.17, ``("__osx",
    "14.0")`` for ``macosx_14_0_arm64`` on osx-arm64 at 13.0. None when no tag is for the
    target's OS and machine at any version, or one already fits (then the version is not
    what fails). Pure."""
    family = os_of(arch)
    if family not in _VERSIONED:
        return None
    name, default = _VERSIONED[family]
    current = _version_of(vps, name, default)
    others = tuple(v for v in vps if v[0] != name)
    fits: list[tuple[int, int]] = []
    for tag in available:
        version = _tag_version(tag)
        if version is None:
            continue
        if tag in platform_tags(arch, (*others, (name, f"{version[0]}.{version[1]}", "0"))):
            fits.append(version)
    if not fits or min(fits) <= current:
        return None
    return name, "{}.{}".format(*min(fits))


def uv_platform(arch: str, vps: tuple[tuple[str, str, str], ...]) -> tuple[str, dict[str, str]]:
    """uv's ``--python-platform`` value for a target, and the environment it needs
    (``MACOSX_DEPLOYMENT_TARGET`` for macOS: uv assumes 13.0 otherwise)."""
    if os_of(arch) == "win":
        return "x86_64-pc-windows-msvc", {}
    machine = {"x86_64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}[_MACHINE[arch]]
    if os_of(arch) == "osx":
        major, minor = _version_of(vps, "__osx", DEFAULT_OSX)
        return f"{machine}-apple-darwin", {"MACOSX_DEPLOYMENT_TARGET": f"{major}.{minor}"}
    _, glibc_minor = _version_of(vps, "__glibc", DEFAULT_GLIBC)
    level = max((n for n in _UV_MANYLINUX if n <= glibc_minor), default=17)
    return f"{machine}-manylinux_2_{level}", {}


_HOST_PYTHONS: dict[str, tuple[str, str] | None] = {}
_HOST_PYTHONS_LOCK = threading.Lock()


def find_host_python(version_spec: str) -> tuple[str, str]:
    """(path, exact version) of a host interpreter matching conda version spec
    ``version_spec`` (``3.11.*``, ``>=3.10``, ``*``): the highest ``python3.N`` found on PATH
    or among pyenv's installed versions. The only function that looks for host
    interpreters. Raises LookupError when none matches.

    Probing runs each candidate (about 0.15 s), so the answer, a miss included, is cached per
    ``version_spec`` for the life of the process (thread-safe): an interpreter installed
    while envbuild runs is seen by its next run."""
    with _HOST_PYTHONS_LOCK:
        if version_spec not in _HOST_PYTHONS:
            _HOST_PYTHONS[version_spec] = _probe_host_python(version_spec)
        found = _HOST_PYTHONS[version_spec]
    if found is None:
        raise LookupError(version_spec)
    return found


def _probe_host_python(version_spec: str) -> tuple[str, str] | None:
    """find_host_python without its cache: None when no interpreter matches."""
    import glob
    import os
    import shutil
    import subprocess

    from rattler import Version, VersionSpec

    spec = VersionSpec(version_spec if version_spec not in ("", "*") else ">=0")
    candidates = [shutil.which(f"python3.{minor}") for minor in range(20, 5, -1)]
    pyenv = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates += sorted(glob.glob(os.path.join(pyenv, "versions", "*", "bin", "python3.*[0-9]")))

    def minor_of(path: str) -> int:
        return int(path.rsplit("python3.", 1)[1])

    def plausible(path: str) -> bool:  # skip running interpreters that cannot match
        return any(spec.matches(Version(f"3.{minor_of(path)}.{p}")) for p in range(60))

    found: dict[str, tuple[Version, str]] = {}
    best_minor = -1  # candidates come highest minor first: once one matches, stop lower
    for path in sorted(filter(None, candidates), key=minor_of, reverse=True):
        if minor_of(path) < best_minor or not plausible(path):
            continue
        try:
            out = subprocess.run(
                [path, "-c", "import sys; print('.'.join(map(str, sys.version_info[:3])))"],
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            continue  # e.g. a pyenv shim for a version that is not active
        if out and spec.matches(Version(out)):
            found.setdefault(out, (Version(out), path))
            best_minor = minor_of(path)
    if not found:
        return None
    version, path = max(found.values(), key=lambda f: f[0])
    return path, str(version)


def marker_environment(arch: str, python_version: str) -> dict[str, str]:
    """PEP 508 marker values of CPython ``python_version`` on target ``arch`` (pure)."""
    major_minor = ".".join(python_version.split(".")[:2])
    family = os_of(arch)
    system, sys_platform = {
        "linux": ("Linux", "linux"),
        "osx": ("Darwin", "darwin"),
        "win": ("Windows", "win32"),
    }[family]
    return {
        "implementation_name": "cpython",
        "implementation_version": python_version,
        "os_name": "nt" if family == "win" else "posix",
        "platform_machine": _MACHINE[arch],
        "platform_python_implementation": "CPython",
        "platform_release": "",
        "platform_system": system,
        "platform_version": "",
        "python_full_version": python_version,
        "python_version": major_minor,
        "sys_platform": sys_platform,
    }
