"""Fetch: every package file a lock needs into the local cache, from the store first and its origin second, verified."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol
from urllib.parse import unquote, urlsplit, urlunsplit

from envbuild.artifacts.cache import IntegrityError, PackageCache
from envbuild.channels import absolute_url, redact_text, redact_url
from envbuild.credentials import Login, split_login
from envbuild.errors import EnvbuildError
from envbuild.lock import Lock, LockedPackage

if TYPE_CHECKING:
    from envbuild.store import Store

log = logging.getLogger(__name__)


class FetchError(EnvbuildError):
    """A package could not be had from any source."""


class Http(Protocol):
    """Opens a URL for reading (``headers`` may carry Authorization)."""

    def __call__(self, url: str, headers: Mapping[str, str]) -> IO[bytes]: ...


def urllib_open(url: str, headers: Mapping[str, str]) -> IO[bytes]:
    """The default :class:`Http`: urllib, 60 s timeout; proxies as the environment says."""
    import urllib.request

    request = urllib.request.Request(url, headers=dict(headers))
    response: IO[bytes] = urllib.request.urlopen(request, timeout=60)
    return response


@dataclass(frozen=True, slots=True)
class Credentials:
    """Where the real (credentialed) URL of a public one comes from: the workspace's
    ``(public URL, URL with credentials)`` pairs of channels and indexes (never the lock)."""

    pairs: tuple[tuple[str, str], ...] = ()

    def real(self, url: str) -> tuple[str, dict[str, str]]:
        """(URL to open, headers): a token path restored by prefix; ``user:password@``
        turned into a basic Authorization header, also for files on an index's host."""
        headers: dict[str, str] = {}
        for public, secret in sorted(self.pairs, key=lambda p: -len(p[0])):
            public = public.rstrip("/")
            if url.startswith(public + "/") or url == public:
                url = secret.rstrip("/") + url[len(public) :]
                break
        else:
            host = urlsplit(url).netloc
            for public, secret in self.pairs:
                parts = urlsplit(secret)
                if parts.hostname and urlsplit(public).netloc == host and "@" in parts.netloc:
                    url = urlunsplit(urlsplit(url)._replace(netloc=parts.netloc))
                    break
        url, login = split_login(os.path.expandvars(url))  # ${VAR}s of the manifest's URLs
        parts = urlsplit(url)
        if login is not None:
            headers["Authorization"] = login.header()
        elif parts.scheme in ("http", "https") and (rc := _netrc_login(parts.hostname or "")):
            headers["Authorization"] = rc.header()
        return url, headers


def _netrc_login(host: str) -> Login | None:
    """The login for ``host`` in the user's netrc (``$NETRC`` or ``~/.netrc``), if any."""
    import netrc

    path = os.environ.get("NETRC") or os.path.expanduser("~/.netrc")
    try:
        found = netrc.netrc(path).authenticators(host)
    except (OSError, netrc.NetrcParseError):
        return None
    if not found or found[2] is None:
        return None
    return Login(found[0], found[2])


@dataclass(frozen=True, slots=True)
class Wanted:
    """One file to have in the cache: what the lock says of it, and where it may be."""

    sha256: str
    filename: str
    url: str  # absolute: http(s):// or file://
    size: int = 0
    store_key: str = ""  # "" when there is no store to try


@dataclass
class FetchReport:
    """What a fetch did (counts and bytes), and the problems it reported."""

    cached: int = 0
    from_store: int = 0
    from_origin: int = 0
    bytes: int = 0
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.cached} cached, {self.from_store} from the store, {self.from_origin} "
            f"from origin ({self.bytes / 1e6:.1f} MB)"
        )


def wanted(lock: Lock, root: Path, key_of: Callable[[str, str], str] | None) -> list[Wanted]:
    """The files of ``lock`` that exist somewhere as files (not the ones to be built from
    a VCS checkout or a local tree); ``key_of(sha256, filename)`` names their store key."""
    out = []
    for pkg in lock.packages:
        if not _is_file(pkg):
            continue
        url = absolute_url(pkg.url or (pkg.source.url if pkg.source else ""), root)
        out.append(
            Wanted(
                pkg.sha256,
                pkg.filename,
                url,
                pkg.size,
                key_of(pkg.sha256, pkg.filename) if key_of else "",
            )
        )
    return out


def _is_file(pkg: LockedPackage) -> bool:
    if not pkg.sha256 or not pkg.filename:
        return False
    return pkg.source is None or (pkg.source.kind in ("sdist", "archive") and bool(pkg.source.url))


class Fetcher:
    """Brings :class:`Wanted` files into a :class:`PackageCache`: cache (verified), then
    the store, then the origin. A bad copy is reported and the next source tried; it never
    enters the cache. Downloads run in a bounded thread pool."""

    def __init__(
        self,
        cache: PackageCache,
        store: Store | None = None,
        credentials: Credentials = Credentials(),
        http: Http = urllib_open,
        workers: int = 8,
        progress: Callable[[int, int, int], None] | None = None,
    ) -> None:
        self.cache = cache
        self.store = store
        self.credentials = credentials
        self.http = http
        self.workers = workers
        self.progress = progress  # (done, total, bytes) after each download

    def fetch(self, items: Sequence[Wanted]) -> FetchReport:
        report = FetchReport()
        unique = list({(w.sha256, w.filename): w for w in items}.values())
        todo: list[Wanted] = []
        for item in unique:
            try:
                if self.cache.get(item.sha256, item.filename) is not None:
                    report.cached += 1
                    continue
            except IntegrityError as exc:
                report.problems.append(str(exc))
            todo.append(item)
        in_store: set[str] = set()
        if self.store is not None and todo:
            keys = [w.store_key for w in todo if w.store_key]
            in_store = set(keys) - self.store.missing(keys)
        done = [0, 0]

        def one(item: Wanted) -> tuple[str, int, list[str]]:
            result = self._one(item, item.store_key in in_store)
            if self.progress is not None:
                done[0] += 1
                done[1] += result[1]
                self.progress(done[0], len(todo), done[1])
            return result

        with ThreadPoolExecutor(max_workers=max(1, min(self.workers, len(todo) or 1))) as pool:
            results = list(pool.map(one, todo))
        failed = []
        for item, (where, size, problems) in zip(todo, results, strict=True):
            report.problems += problems
            if where == "store":
                report.from_store += 1
            elif where == "origin":
                report.from_origin += 1
            else:
                failed.append(item)
            report.bytes += size
        for problem in report.problems:
            log.warning("%s", problem)
        if failed:
            names = ", ".join(sorted(f.filename for f in failed))
            raise FetchError(
                f"could not fetch {names}: {report.problems[-1] if report.problems else 'no source'}"
            )
        return report

    def _one(self, item: Wanted, in_store: bool) -> tuple[str, int, list[str]]:
        problems: list[str] = []
        if in_store:
            try:
                self._from_store(item)
                return "store", item.size, problems
            except EnvbuildError as exc:
                problems.append(f"store copy of {item.filename} rejected: {exc}")
        try:
            self._from_origin(item)
            return "origin", item.size, problems
        except (EnvbuildError, OSError) as exc:
            problems.append(f"{item.filename} from {redact_url(item.url)}: {redact_text(str(exc))}")
        return "", 0, problems

    def _from_store(self, item: Wanted) -> None:
        store = self.store
        assert store is not None
        # verified by the store's get_file, and again by the cache
        self.cache.bring(
            item.sha256, item.filename, lambda tmp: store.get_file(item.store_key, tmp, item.sha256)
        )

    def _from_origin(self, item: Wanted) -> None:
        if item.url.startswith("file:"):
            path = Path(unquote(urlsplit(item.url).path))
            self.cache.add(path, item.sha256, item.filename)  # verified: rattler would not
            return
        url, headers = self.credentials.real(item.url)
        with self.cache.incoming(item.sha256, item.filename) as out, self.http(url, headers) as src:
            shutil.copyfileobj(src, out, 1 << 20)
