"""Resolve one environment for one arch into a Lock: conda first, then PyPI pinned to it."""

from __future__ import annotations

import dataclasses
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from envbuild.channels import portable_url
from envbuild.errors import ResolveError
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
    host_arch: str  # from platforms.host_arch(), the one host probe
    local_channels: dict[str, Path] = field(default_factory=dict)
    runner: Runner = run
    python: str = sys.executable  # runs pip, for pypi-resolver = "pip"
    # (version spec) -> (path, version); None means platforms.find_host_python
    host_python: Callable[[str], tuple[str, str]] | None = None


def resolve_env(spec: EnvSpec, arch: str, ctx: Context) -> Lock:
    """Resolve ``spec`` for target ``arch``: the conda solve, then (for pip-only and mixed
    envs) the PyPI resolution with conda's python and Python distributions as fixed pins."""
    conda: list[LockedPackage] = []
    if spec.python_source == "host":
        python_source, python_version = "host", _host_python(spec, arch, ctx)
    else:
        request = conda_request(spec, arch, ctx.root, ctx.local_channels)
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
        pypi = _resolve_pypi(spec, arch, ctx, python_version, conda)
    portable = [  # no absolute path of the workspace in the lock
        dataclasses.replace(
            p, url=portable_url(p.url, ctx.root), channel=portable_url(p.channel, ctx.root)
        )
        for p in conda + pypi
    ]
    return Lock.build(spec, arch, portable, python_source, python_version)


def _host_python(spec: EnvSpec, arch: str, ctx: Context) -> str:
    if spec.kind != "pypi":
        raise ResolveError(
            f"env '{spec.name}': python-source = \"host\" is for pip-only envs (python plus PyPI "
            "packages); this env has conda packages: remove python-source or the conda packages"
        )
    if arch != ctx.host_arch:
        raise ResolveError(
            f"env '{spec.name}': python-source = \"host\" uses this machine's python, so it can "
            f'only be resolved for {ctx.host_arch}, not {arch}: use python-source = "conda" '
            "for other archs"
        )
    from envbuild.platforms import find_host_python

    find = ctx.host_python or find_host_python
    try:
        _, version = find(spec.python or "*")
    except LookupError:
        raise ResolveError(
            f"env '{spec.name}': no python {spec.python or ''} found on this machine "
            "(looked for python3.N on PATH and in pyenv): install it, or use "
            'python-source = "conda"'
        ) from None
    return str(version)


def _resolve_pypi(
    spec: EnvSpec, arch: str, ctx: Context, python_version: str, conda: list[LockedPackage]
) -> list[LockedPackage]:
    from envbuild.resolve.mixed import python_distributions, write_stub_wheels
    from envbuild.resolve.pypi import (
        PypiRequest,
        resolve_pip,
        resolve_uv,
        to_locked,
        uv_binary,
    )

    provided = python_distributions(conda)
    with tempfile.TemporaryDirectory(prefix="envbuild-stubs-") as stubs:
        write_stub_wheels(provided, Path(stubs))
        request = PypiRequest(
            requirements=tuple(
                spec.real_url(d.value) for d in spec.pypi if not d.archs or arch in d.archs
            ),
            arch=arch,
            python_version=python_version,
            virtual_packages=_virtual(spec, arch),
            index_url=spec.real_url(spec.pypi_index),
            extra_index_urls=tuple(spec.real_url(u) for u in spec.extra_indexes),
            find_links=(*(spec.real_url(u) for u in spec.find_links), stubs),
            trusted_hosts=spec.trusted_hosts,
            pre=spec.pre,
            no_index=spec.no_index,
            constraints=tuple(f"{n}=={v}" for n, v in provided.items()),
            binary_only=arch != ctx.host_arch,
            exclude_newer=spec.settings.exclude_newer,
            base_dir=ctx.root,  # the manifest rebased spec-file paths onto the workspace
        )
        if spec.settings.pypi_resolver == "pip":
            resolved = resolve_pip(request, ctx.runner, ctx.python)
        else:
            resolved = resolve_uv(request, ctx.runner, uv_binary())
    return [to_locked(r, ctx.root) for r in resolved if _pypi_name(r.name) not in provided]


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
    )
