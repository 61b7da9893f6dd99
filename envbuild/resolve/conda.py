"""Conda resolution with py-rattler for an explicit target arch and its virtual packages."""

from __future__ import annotations

import asyncio
import datetime
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from envbuild.channels import channel_url, redact_text, redact_url
from envbuild.credentials import split_login
from envbuild.errors import ResolveError, UnsatisfiableError
from envbuild.lock import LockedPackage
from envbuild.platforms import virtual_packages

if TYPE_CHECKING:
    from rattler import Gateway, PackageRecord, RepoDataRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CondaRequest:
    """Everything one conda solve depends on. ``channels`` are URLs, highest priority first."""

    specs: tuple[str, ...]
    channels: tuple[str, ...]
    arch: str
    virtual_packages: tuple[tuple[str, str, str], ...]
    channel_priority: str = "strict"
    timeout: float = 120.0
    # RepoDataRecords of an existing lock: preferred by the solver, but free to move.
    locked: tuple[RepoDataRecord, ...] = ()
    # RFC 3339 UTC time ("%Y-%m-%dT%H:%M:%SZ"): packages built after it are left out ("": none)
    exclude_newer: str = ""


def make_request(
    specs: list[str],
    channels: tuple[str, ...],
    arch: str,
    overrides: Mapping[str, str],
    base_dir: Path,
    local_channels: Mapping[str, Path],
    channel_priority: str = "strict",
    timeout: float = 120.0,
    exclude_newer: str = "",
) -> CondaRequest:
    """Build a request: channels become URLs (local-channel names map to their built dir).

    No credential reaches rattler's URLs, which it caches repodata under and writes into its
    on-disk cache: ``user:password@`` is registered with the process's HTTP client as an
    ``Authorization`` header (:data:`AUTH`), and a ``/t/<token>/`` path is put back by the
    Gateway's mirror middleware (see :func:`envbuild.credentials.token_mirrors`).
    """
    urls = []
    for c in channels:
        url, login = split_login(channel_url(c, base_dir, local_channels))
        url = redact_url(url)  # the token path goes to rattler's mirror middleware
        if login is not None:
            parts = urlsplit(url)
            AUTH.add(parts.hostname or "", parts.path.rstrip("/"), login.header())
        urls.append(url)
    return CondaRequest(
        specs=tuple(specs),
        channels=tuple(urls),
        arch=arch,
        virtual_packages=virtual_packages(arch, overrides),
        channel_priority=channel_priority,
        timeout=timeout,
        exclude_newer=exclude_newer,
    )


def record_to_package(record: RepoDataRecord) -> LockedPackage:
    """A rattler record as a LockedPackage, with credentials removed from URLs."""
    ts = record.timestamp
    return LockedPackage(
        kind="conda",
        name=record.name.normalized,
        version=str(record.version),
        build=str(record.build),
        build_number=record.build_number,
        channel=redact_url(record.channel or "").rstrip("/"),
        subdir=str(record.subdir),
        url=redact_url(record.url),
        filename=str(record.file_name),
        md5=record.md5.hex() if record.md5 else "",
        sha256=record.sha256.hex() if record.sha256 else "",
        size=record.size or 0,
        depends=tuple(str(d) for d in record.depends),
        constrains=tuple(str(c) for c in record.constrains),
        noarch="python" if record.noarch.python else "generic" if record.noarch.generic else "",
        license=str(record.license or ""),
        timestamp=int(ts.timestamp() * 1000) if ts else 0,
        track_features=tuple(str(t) for t in record.track_features),
        license_family=str(record.license_family or ""),
        features=str(record.features or ""),
        # as the repodata gives them (a solved record does not derive them from the subdir)
        arch=str(record.arch or ""),
        platform=str(record.platform or ""),
        legacy_bz2_md5=record.legacy_bz2_md5.hex() if record.legacy_bz2_md5 else "",
        legacy_bz2_size=record.legacy_bz2_size or 0,
        python_site_packages_path=str(record.python_site_packages_path or ""),
    )


def package_record(pkg: LockedPackage) -> PackageRecord:
    """The rattler ``PackageRecord`` of a locked conda package (every repodata field)."""
    import datetime

    from rattler import BuildString, NoArchType, PackageRecord

    noarch = NoArchType("python" if pkg.noarch == "python" else "generic" if pkg.noarch else None)
    record = PackageRecord(
        name=pkg.name,
        version=pkg.version,
        build=BuildString(pkg.build),
        build_number=pkg.build_number,
        subdir=pkg.subdir,
        noarch=noarch,
        depends=list(pkg.depends),
        constrains=list(pkg.constrains),
        sha256=bytes.fromhex(pkg.sha256) if pkg.sha256 else None,
        md5=bytes.fromhex(pkg.md5) if pkg.md5 else None,
        size=pkg.size or None,
        features=pkg.features or None,  # type: ignore[arg-type]  # a str in repodata
        legacy_bz2_md5=bytes.fromhex(pkg.legacy_bz2_md5) if pkg.legacy_bz2_md5 else None,
        legacy_bz2_size=pkg.legacy_bz2_size or None,
        license=pkg.license or None,
        license_family=pkg.license_family or None,
        python_site_packages_path=pkg.python_site_packages_path or None,
    )
    record.arch, record.platform = pkg.arch or None, pkg.platform or None  # not derived
    if pkg.timestamp:
        record.timestamp = datetime.datetime.fromtimestamp(pkg.timestamp / 1000, tz=datetime.UTC)
    if pkg.track_features:
        record.track_features = list(pkg.track_features)
    return record


def package_to_record(pkg: LockedPackage, root: Path) -> RepoDataRecord:
    """The rattler ``RepoDataRecord`` of a locked conda package (the inverse of
    :func:`record_to_package`); workspace-relative URLs are made absolute from ``root``."""
    from rattler import RepoDataRecord

    from envbuild.channels import absolute_url

    channel = absolute_url(pkg.channel, root)
    return RepoDataRecord(package_record(pkg), pkg.filename, absolute_url(pkg.url, root), channel)


async def solve_async(request: CondaRequest, gateway: Gateway) -> list[LockedPackage]:
    """Solve ``request`` with ``gateway`` (which owns repodata fetching and caching)."""
    import rattler
    from rattler import BuildString, GenericVirtualPackage, PackageName, Subdir, Version
    from rattler.exceptions import SolverError

    priority = {
        "strict": rattler.ChannelPriority.Strict,
        "flexible": rattler.ChannelPriority.Flexible,
        "disabled": rattler.ChannelPriority.Disabled,
    }[request.channel_priority]
    vps = [
        GenericVirtualPackage(PackageName(n), Version(v), BuildString(b))
        for n, v, b in request.virtual_packages
    ]
    where = f"{request.arch} from {', '.join(redact_url(c) for c in request.channels)}"
    log.info("solving %s for %s", " ".join(request.specs), where)
    try:
        records = await rattler.solve(
            list(request.channels),
            list(request.specs),
            gateway=gateway,
            platforms=[Subdir(request.arch), Subdir("noarch")],
            virtual_packages=vps,
            timeout=datetime.timedelta(seconds=request.timeout),
            channel_priority=priority,
            # A record without a timestamp (some old packages) is kept: its age is unknown.
            exclude_newer=_cutoff(request.exclude_newer),
            timestamp_policy="allow-missing",
            locked_packages=list(request.locked),
        )
    except SolverError as exc:
        text = str(exc).strip()
        if "timeout" in text.lower() or "cancel" in text.lower():
            raise ResolveError(
                f"the solve for {where} took longer than {request.timeout:g} s: "
                "tighten the specs or raise solve-timeout (in [workspace], or in the env's table)"
            ) from None
        raise UnsatisfiableError(
            f"the specs cannot be satisfied for {where}:\n{redact_text(text)}"
        ) from None
    except Exception as exc:  # rattler's gateway/fetch errors have no common base
        text = redact_text(str(exc).strip())
        raise ResolveError(
            f"could not read channels for {where}: {text}: "
            + (
                "check the channel's token or login"
                if re.search(r"\b40[13]\b", text)
                else "check the channel names/URLs and that they are reachable"
            )
        ) from None
    memo = _PACKAGES.setdefault(id(gateway), (gateway, {}))[1]
    out = []
    for record in records:
        package = memo.get(record.url)
        if package is None:
            package = memo[record.url] = record_to_package(record)
        out.append(package)
    return out


def _cutoff(exclude_newer: str) -> datetime.datetime | None:
    """``exclude_newer`` as rattler takes it: an aware UTC datetime (rattler replaces the
    tzinfo of what it is given, so it must be UTC already)."""
    if not exclude_newer:
        return None
    parsed = datetime.datetime.fromisoformat(exclude_newer.replace("Z", "+00:00"))
    return parsed.astimezone(datetime.UTC)


# Each record converted once per Gateway (as long-lived as the repodata it caches): 60
# solves of one workspace share most of their records. Process-global, like the Gateways.
_PACKAGES: dict[int, tuple[Gateway, dict[str, LockedPackage]]] = {}


def solve(request: CondaRequest, gateway: Gateway) -> list[LockedPackage]:
    """Synchronous wrapper of :func:`solve_async`."""
    return asyncio.run(solve_async(request, gateway))


class _BasicAuth:
    """Authorization headers by (host, path prefix), for the HTTP client's header callback."""

    def __init__(self) -> None:
        self.rules: dict[tuple[str, str], str] = {}

    def add(self, host: str, prefix: str, header: str) -> None:
        self.rules[(host, prefix)] = header

    def __call__(self, host: str, path: str) -> dict[str, str] | None:
        for (rule_host, prefix), header in self.rules.items():
            if host == rule_host and path.startswith(prefix):
                return {"Authorization": header}
        return None


AUTH = _BasicAuth()


def new_gateway(cache_dir: Path, mirrors: Mapping[str, str] | None = None) -> Gateway:
    """A rattler Gateway caching repodata under ``cache_dir`` (made absolute), whose client
    adds the registered basic-auth headers (plus rattler's own retry and auth-file support)
    and sends requests for a public channel URL to its ``mirrors`` URL (the one with the
    token path), in memory: the token is in no URL rattler caches or writes."""
    from rattler import Gateway
    from rattler.networking import (
        AddHeadersMiddleware,
        AuthenticationMiddleware,
        Client,
        MirrorMiddleware,
        RetryMiddleware,
    )

    cache_dir.mkdir(parents=True, exist_ok=True)
    # In this order: the headers are chosen by the public URL, then the mirror rewrites it.
    middlewares: list[Any] = [
        RetryMiddleware(3),
        AuthenticationMiddleware(),
        AddHeadersMiddleware(AUTH),
    ]
    if mirrors:
        middlewares.append(MirrorMiddleware({k: [v] for k, v in mirrors.items()}))
    return Gateway(cache_dir=cache_dir.resolve(), client=Client(middlewares))
