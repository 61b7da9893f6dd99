"""Resolve one environment for one arch into a Lock (conda now; PyPI and mixed build on this)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from envbuild.errors import ResolveError
from envbuild.lock import Lock
from envbuild.resolve.conda import CondaRequest, make_request, solve
from envbuild.spec import EnvSpec

if TYPE_CHECKING:
    from rattler import Gateway


def resolve_env(
    spec: EnvSpec,
    arch: str,
    root: Path,
    local_channels: dict[str, Path],
    gateway: Gateway,
) -> Lock:
    """Resolve ``spec`` for target ``arch``. ``root`` anchors relative channel paths."""
    if spec.pypi:
        raise ResolveError(
            f"env '{spec.name}' has PyPI dependencies ({spec.pypi[0].value}, ...): PyPI and mixed "
            "resolution are not available in this version; remove them or use conda packages"
        )
    return Lock.build(spec, arch, solve(conda_request(spec, arch, root, local_channels), gateway))


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
