"""Resolve one environment for one arch into a Lock: conda first, then PyPI pinned to it."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envbuild.channels import portable_url
from envbuild.errors import ResolveError
from envbuild.fs import temp_dir
from envbuild.lock import Lock, LockedPackage
from envbuild.resolve.conda import CondaRequest, make_request, solve
from envbuild.runner import Runner, run
from envbuild.spec import EnvSpec

if TYPE_CHECKING:
    from rattler import Gateway


@dataclass(frozen=True, slots=True)
class Context:
    """What a resolution needs from the outside world, passed in (never looked up)."""

    root: Path  # the workspace: anchors relative paths
    gateway: Gateway
    # The machine running the resolution (platforms.host_arch()). It never changes a lock:
    # every target, the host's included, resolves the same way on any machine.
    host_arch: str
    local_channels: dict[str, Path] = field(default_factory=dict)
    runner: Runner = run
    python: str = sys.executable  # runs pip, for pypi-resolver = "pip"
    # (conda version spec) -> (path, exact version) of a host interpreter, LookupError when
    # none; None means platforms.find_host_python (cached per process). Used only to find the
    # interpreter uv builds source packages' metadata with (see _build_python).
    host_python: Callable[[str], tuple[str, str]] | None = None


@dataclass(frozen=True, slots=True)
class Preferences:
    """The pins of an env's existing lock for the same arch, which a re-resolution keeps
    unless the requirements force a change (conda: rattler's ``locked_packages``; PyPI:
    uv's preferences)."""

    conda: tuple[LockedPackage, ...] = ()
    pypi: tuple[tuple[str, str], ...] = ()  # (name, version)
    # What --update lifted: PyPI index data of these is refreshed (all: every package)
    lifted: tuple[str, ...] = ()
    lifted_all: bool = False

    @classmethod
    def from_lock(cls, lock: Lock | None, update: frozenset[str] | None = None) -> Preferences:
        """The preferences of ``lock``; ``update`` lifts them: None keeps all, an empty set
        lifts all (``--update``), names lift only those packages (``--update a,b``)."""
        if update is not None and not update:
            return cls(lifted_all=True)
        lifted = update or frozenset()
        keep = [p for p in lock.packages if p.name not in lifted] if lock else []
        return cls(
            conda=tuple(p for p in keep if p.kind == "conda"),
            pypi=tuple((p.name, p.version) for p in keep if p.kind == "pypi"),
            lifted=tuple(sorted(lifted)),
        )


def resolve_env(
    spec: EnvSpec,
    arch: str,
    ctx: Context,
    prefer: Preferences = Preferences(),
    inputs: Mapping[str, Any] | None = None,
) -> Lock:
    """Resolve ``spec`` for target ``arch``: the conda solve, then (for pip-only and mixed
    envs) the PyPI resolution with conda's python and Python distributions as fixed pins.
    ``prefer``: pins to keep when possible; ``inputs``: recorded in the lock as is."""
    spec = spec.normalised()
    conda: list[LockedPackage] = []
    if spec.python_source == "host":
        python_source, python_version = "host", _host_python(spec)
    else:
        request = conda_request(spec, arch, ctx.root, ctx.local_channels)
        if prefer.conda:
            from envbuild.resolve.conda import package_to_record

            locked = tuple(package_to_record(p, ctx.root) for p in prefer.conda)
            request = dataclasses.replace(request, locked=locked)
        conda = solve(request, ctx.gateway) if request.specs else []
        python = next((p for p in conda if p.name == "python"), None)
        python_source, python_version = ("conda", python.version) if python else ("", "")
    pypi: list[LockedPackage] = []
    if spec.pypi:
        if not python_version:
            raise ResolveError(
                f"env '{spec.name}' has PyPI dependencies but no python: add python = \"3.X\" "
                f"to [env.{spec.name}] (or python to its conda list)"
            )
        pypi = _resolve_pypi(spec, arch, ctx, python_version, conda, prefer)
        conda = _drop_yielded(spec, conda, pypi)
    portable = [  # no absolute path of the workspace in the lock
        dataclasses.replace(
            p, url=portable_url(p.url, ctx.root), channel=portable_url(p.channel, ctx.root)
        )
        for p in conda + pypi
    ]
    return Lock.build(spec, arch, portable, python_source, python_version, inputs)


def _host_python(spec: EnvSpec) -> str:
    """The python version a host-source env resolves for, as requested (``3.11``,
    ``3.11.4``), for every arch: resolving needs no interpreter of it (uv takes
    ``--python-version``), and the create stage finds one on the target machine."""
    from envbuild.parsers import plain_python_version

    if spec.kind != "pypi":
        raise ResolveError(
            f"env '{spec.name}': python-source = \"host\" is for pip-only envs (python plus PyPI "
            "packages); this env has conda packages: remove python-source or the conda packages"
        )
    version = plain_python_version(spec.python)
    if version is None:  # the manifest refuses this already
        raise ResolveError(
            f"env '{spec.name}': python-source = \"host\" needs a plain python version, like "
            f"python = \"3.11\" (got '{spec.python or ''}')"
        )
    return version


def _build_python(python_version: str, ctx: Context) -> str:
    """A host interpreter of ``python_version``'s major.minor, for uv to build the metadata
    of source packages with; "" when this machine has none (resolve_uv then refuses a result
    that needs a build). Its path and patch version never reach the lock."""
    from envbuild.platforms import find_host_python

    minor = ".".join(python_version.split(".")[:2])
    try:
        path, _ = (ctx.host_python or find_host_python)(f"{minor}.*")
    except LookupError:
        return ""
    return path


def _resolve_pypi(
    spec: EnvSpec,
    arch: str,
    ctx: Context,
    python_version: str,
    conda: list[LockedPackage],
    prefer: Preferences,
) -> list[LockedPackage]:
    from envbuild.resolve.mixed import write_stub_wheels
    from envbuild.resolve.pypi import (
        PypiRequest,
        resolve_pip,
        resolve_uv,
        to_locked,
        uv_binary,
    )

    provided = pinned_distributions(spec, conda)
    with temp_dir("stubs-") as stubs:
        stub_wheels = write_stub_wheels(provided, Path(stubs))
        request = PypiRequest(
            requirements=tuple(
                spec.real_url(d.value) for d in spec.pypi if not d.archs or arch in d.archs
            ),
            arch=arch,
            python_version=python_version,
            virtual_packages=_virtual(spec, arch),
            index_url=spec.real_url(spec.pypi_index),
            extra_index_urls=tuple(spec.real_url(u) for u in spec.extra_indexes),
            find_links=tuple(spec.real_url(u) for u in spec.find_links),
            trusted_hosts=spec.trusted_hosts,
            pre=spec.pre,
            no_index=spec.no_index,
            constraints=tuple(f"{n}=={v}" for n, v in provided.items())
            + tuple(spec.real_url(c) for c in spec.pypi_constraints),
            stub_wheels=tuple(stub_wheels.items()),  # the only candidates of these names
            only_binary=spec.only_binary,  # sdists are allowed for every target otherwise
            no_binary=spec.no_binary,
            # pip resolves wheels only: for it, preferring wheels changes nothing
            prefer_binary=spec.prefer_binary,
            exclude_newer=spec.settings.exclude_newer,
            base_dir=ctx.root,  # the manifest rebased spec-file paths onto the workspace
            preferences=tuple(p for p in prefer.pypi if p[0] not in provided),
            refresh=(":all:",) if prefer.lifted_all else prefer.lifted,
        )
        if spec.settings.pypi_resolver == "pip":
            resolved = resolve_pip(request, ctx.runner, ctx.python)
        else:
            build_python = _build_python(python_version, ctx)
            request = dataclasses.replace(request, build_python=build_python)
            resolved = resolve_uv(request, ctx.runner, uv_binary())
    indexes = (spec.pypi_index, *spec.extra_indexes)
    locked = [
        to_locked(r, ctx.root, indexes) for r in resolved if _pypi_name(r.name) not in provided
    ]
    _check_hashes(spec, locked, provided)
    return locked


# What conda's python drags into every env (conda-forge's python depends on pip, which
# depends on setuptools and wheel): in a pip-only env the PyPI side decides these.
PIP_TOOLS = frozenset({"pip", "setuptools", "wheel"})


def pinned_distributions(spec: EnvSpec, conda: list[LockedPackage]) -> dict[str, str]:
    """PyPI name -> version of the conda Python distributions the PyPI resolution is pinned
    to: all of them (``mixed.python_distributions``), except, in a pip-only env, the
    ``PIP_TOOLS`` python brings along: the user's ``wheel==0.38.1`` must win over conda's
    wheel 0.45.1, never conflict with it."""
    from envbuild.resolve.mixed import python_distributions

    provided = python_distributions(conda)
    if spec.kind != "pypi":
        return provided
    return {n: v for n, v in provided.items() if n not in PIP_TOOLS}


def _drop_yielded(
    spec: EnvSpec, conda: list[LockedPackage], pypi: list[LockedPackage]
) -> list[LockedPackage]:
    """``conda`` without the ``PIP_TOOLS`` a pip-only env's PyPI resolution locked itself
    (one copy of each in the env: PyPI's). The others stay: an env keeps conda's pip unless
    PyPI decided otherwise. Creation links the conda packages without re-checking their
    dependencies (python's on pip included), and installs PyPI's copies as wheels."""
    if spec.kind != "pypi":
        return conda
    from_pypi = {p.name for p in pypi} & PIP_TOOLS
    return [p for p in conda if p.name not in from_pypi]


def _check_hashes(spec: EnvSpec, locked: list[LockedPackage], provided: Mapping[str, str]) -> None:
    """Every ``--hash`` of the spec: the locked file of that package must have one of the
    hashes given. A package not locked for this arch (a marker left it out) is skipped."""
    allowed: dict[str, list[str]] = {}
    for name, digest in spec.pypi_hashes:
        allowed.setdefault(name, []).append(digest)
    origins = dict(spec.hash_origins)
    by_name = {_pypi_name(p.name): p for p in locked}
    for name, digests in sorted(allowed.items()):
        where = origins.get(name, "the requirements")
        given = ", ".join(f"--hash={d}" for d in digests)
        if name in provided:
            raise ResolveError(
                f"{name}: {where} gives {given}, but conda provides {name} {provided[name]} in "
                f"env '{spec.name}', so no PyPI file is locked to check it against"
            )
        pkg = by_name.get(name)
        if pkg is None:
            continue
        got = f"sha256:{pkg.sha256}" if pkg.sha256 else "no sha256"
        if got not in digests:
            raise ResolveError(
                f"{name}: hash mismatch: the locked file {pkg.filename or pkg.url} has {got}, "
                f"but {where} allows only {given}"
            )


def _pypi_name(name: str) -> str:
    from packaging.utils import canonicalize_name

    return str(canonicalize_name(name))


def _virtual(spec: EnvSpec, arch: str) -> tuple[tuple[str, str, str], ...]:
    from envbuild.platforms import virtual_packages

    return virtual_packages(arch, dict(spec.virtual_packages))


def conda_request(
    spec: EnvSpec, arch: str, root: Path, local_channels: dict[str, Path]
) -> CondaRequest:
    """The conda solve of ``spec`` for ``arch``."""
    return make_request(
        spec.conda_specs(arch),
        tuple(spec.real_url(c) for c in spec.channels),
        arch,
        dict(spec.virtual_packages),
        root,
        local_channels,
        spec.settings.channel_priority,
        spec.settings.solve_timeout,
        spec.settings.exclude_newer,
    )
