"""The artifact stages of one env x arch (fetch, build, transmute, upload): what each does and when it is done, from files and the store."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from envbuild.artifacts.cache import PackageCache
from envbuild.artifacts.fetch import Credentials, Fetcher, FetchReport, wanted
from envbuild.descriptor import Descriptor, InstallFile
from envbuild.errors import EnvbuildError
from envbuild.fs import temp_dir
from envbuild.lock import Lock, LockedPackage
from envbuild.spec import Workspace

if TYPE_CHECKING:
    from envbuild.store import Store

log = logging.getLogger(__name__)
REPORT = logging.getLogger("envbuild.report")
FORMATS = (".conda", ".tar.bz2")


@dataclass(frozen=True, slots=True)
class ArtifactContext:
    """What the artifact stages of a run share: the workspace, the local cache, the
    store, credentials for origins, and the settings that shape the files."""

    root: Path
    cache: PackageCache
    store: Store
    credentials: Credentials
    host_arch: str
    preferred_format: str = ".conda"
    zstd_level: int = 3
    workers: int = 8


# --------------------------------------------------------------------------- keys


def package_key(sha256: str, filename: str) -> str:
    from envbuild.store.layout import package_key as key

    return key(sha256, filename)


def descriptor_key(lock: Lock) -> str:
    from envbuild.store.layout import descriptor_key as key

    env = lock.env_id
    return key(env.arch, env.req_id, env.full_id)


def published(ctx: ArtifactContext, lock: Lock) -> bool:
    """True when the store holds this lock's descriptor: then every stage of it is done
    (a descriptor is written only after all of its files)."""
    return not ctx.store.missing([descriptor_key(lock)])


# --------------------------------------------------------------------------- fetch


def fetch(ctx: ArtifactContext, lock: Lock) -> FetchReport:
    """Every file of the lock into the cache (store first, origin second, verified); a
    progress line on a terminal."""
    name = f"{lock.name}@{lock.env_id.arch}"
    fetcher = Fetcher(
        ctx.cache, ctx.store, ctx.credentials, workers=ctx.workers, progress=tty_progress(name)
    )
    return fetcher.fetch(wanted(lock, ctx.root, package_key))


def fetched(ctx: ArtifactContext, lock: Lock) -> bool:
    """True when every file of the lock is in the cache and verifies."""
    try:
        return all(
            ctx.cache.get(w.sha256, w.filename) is not None for w in wanted(lock, ctx.root, None)
        )
    except EnvbuildError as exc:  # a corrupt cached file, removed by the check: say so
        log.warning("%s", exc)
        return False


def tty_progress(name: str) -> Callable[[int, int, int], None] | None:
    """A progress line on stderr when it is a terminal (nothing otherwise): the run's status
    line when one is drawn, else a line of its own."""
    import sys

    from envbuild.progress import active, is_terminal

    status = active()
    if status is None and not is_terminal(sys.stderr):
        return None

    def show(done: int, total: int, size: int) -> None:
        text = f"fetch {name}: {done}/{total} files, {size / 1e6:.1f} MB"
        if status is not None:
            status.show(text)
            return
        end = "\n" if done == total else ""
        sys.stderr.write(f"\r  {text}{end}")
        sys.stderr.flush()

    return show


# --------------------------------------------------------------------------- transmute


def _target_name(filename: str, fmt: str) -> str | None:
    """The file name in ``fmt``, or None when ``filename`` is already in it (or not conda)."""
    for ext in FORMATS:
        if filename.endswith(ext):
            return None if ext == fmt else filename[: -len(ext)] + fmt
    return None


def _record_name(pkg: LockedPackage, fmt: str) -> str:
    return f"transmute/{pkg.sha256}{fmt}.json"


def to_transmute(ctx: ArtifactContext, lock: Lock) -> list[LockedPackage]:
    return [
        p
        for p in lock.packages
        if p.kind == "conda" and _target_name(p.filename, ctx.preferred_format)
    ]


def transmuted_file(ctx: ArtifactContext, pkg: LockedPackage) -> tuple[str, str, int] | None:
    """(filename, sha256, size) of ``pkg`` in the preferred format, if made already."""
    record = ctx.cache.read_record(_record_name(pkg, ctx.preferred_format))
    if not record:
        return None
    return str(record["filename"]), str(record["sha256"]), int(str(record["size"]))


def transmute(ctx: ArtifactContext, lock: Lock) -> int:
    """Convert the lock's conda packages that are not in the preferred format; the
    output's sha256 is recorded beside the original's. Returns how many were converted."""
    from envbuild.artifacts.transmute import transmute_many

    todo = []
    for pkg in to_transmute(ctx, lock):
        done = transmuted_file(ctx, pkg)
        if done and ctx.cache.get(done[1], done[0]) is not None:
            continue
        src = ctx.cache.get(pkg.sha256, pkg.filename)
        if src is None:
            raise EnvbuildError(f"{pkg.filename} is not in the cache: run `envbuild fetch` first")
        todo.append((pkg, src))
    if not todo:
        return 0
    with temp_dir(".transmute-", near=ctx.cache.root) as tmp:
        results = transmute_many(
            [(src, Path(tmp)) for _, src in todo], ctx.preferred_format, ctx.zstd_level, 2
        )
        for (pkg, _), out in zip(todo, results, strict=True):
            ctx.cache.add(Path(tmp) / out.filename, out.sha256, out.filename)
            ctx.cache.record(
                _record_name(pkg, ctx.preferred_format),
                {"filename": out.filename, "sha256": out.sha256, "size": out.size,
                 "source": pkg.filename, "source_sha256": pkg.sha256},
            )  # fmt: skip
    return len(todo)


def transmuted(ctx: ArtifactContext, lock: Lock) -> bool:
    for pkg in to_transmute(ctx, lock):
        done = transmuted_file(ctx, pkg)
        try:
            if not done or ctx.cache.get(done[1], done[0]) is None:
                return False
        except EnvbuildError:
            return False
    return True


# --------------------------------------------------------------------------- upload


def install_files(ctx: ArtifactContext, lock: Lock) -> list[tuple[InstallFile, Path | None]]:
    """The file that installs each package, with its local path (None for a built wheel
    already in the store only)."""
    from envbuild.artifacts.wheels import built_wheel

    out: list[tuple[InstallFile, Path | None]] = []
    for pkg in lock.packages:
        if pkg.kind == "conda":
            conv = (
                transmuted_file(ctx, pkg)
                if _target_name(pkg.filename, ctx.preferred_format)
                else None
            )
            if conv:
                name, sha, size = conv
                file = InstallFile("conda", pkg.name, name, sha, size, package_key(sha, name),
                                   original_filename=pkg.filename, original_sha256=pkg.sha256)  # fmt: skip
            else:
                file = InstallFile("conda", pkg.name, pkg.filename, pkg.sha256, pkg.size,
                                   package_key(pkg.sha256, pkg.filename))  # fmt: skip
            out.append((file, ctx.cache.get(file.sha256, file.filename)))
        elif pkg.source is None:
            file = InstallFile("pypi", pkg.name, pkg.filename, pkg.sha256, pkg.size,
                               package_key(pkg.sha256, pkg.filename))  # fmt: skip
            out.append((file, ctx.cache.get(file.sha256, file.filename)))
        else:
            out.append(built_wheel(ctx, lock, pkg))
    return out


def upload(ctx: ArtifactContext, lock: Lock) -> tuple[int, int]:
    """Push every file the env x arch installs, then its descriptor (last, so that a
    descriptor never names a missing object). Returns (objects written, bytes)."""
    files = install_files(ctx, lock)
    missing = ctx.store.missing([f.key for f, _ in files])
    written = size = 0
    for file, path in files:
        if file.key not in missing:
            continue
        if path is None:
            raise EnvbuildError(
                f"{file.filename} is neither in the store nor in the local cache: run "
                "`envbuild fetch build transmute` first"
            )
        if ctx.store.put_file(file.key, path, file.sha256):
            written += 1
            size += file.size
    descriptor = Descriptor(lock, tuple(f for f, _ in files))
    if ctx.store.put_bytes(descriptor_key(lock), descriptor.dumps()):
        written += 1
    log.info("uploaded %s: %d objects", lock.name, written)
    return written, size


class ArtifactRun:
    """The artifact stages' state for one run of the graph: the context, made on first use
    (opening the store), and which descriptors the store is known to hold. Thread-safe:
    doit runs subtasks in threads."""

    def __init__(self, ws: Workspace) -> None:
        import threading

        self.ws = ws
        self._ctx: ArtifactContext | None = None
        self._published: set[str] = set()
        self._lock = threading.Lock()
        self.stats: dict[str, list[int]] = {}  # stage -> [subtasks, items, bytes]
        self._failure: EnvbuildError | None = None  # the store failed an up-to-date check
        self._parsed: dict[str, Lock] = {}  # lock text -> its parse (each stage reads it)

    def read(self, lock_path: Path) -> Lock:
        """The lock at ``lock_path``, parsed once per run for each content it has (keyed by
        the text itself, so a lock rewritten during the run is parsed again)."""
        from envbuild.lock import read_lock

        try:
            text = lock_path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return read_lock(lock_path)  # it says what is wrong
        with self._lock:
            known = self._parsed.get(text)
        if known is None:
            known = Lock.loads(text, str(lock_path))
            with self._lock:
                self._parsed[text] = known
        return known

    def _count(self, stage: str, items: int, size: int = 0) -> None:
        with self._lock:
            row = self.stats.setdefault(stage, [0, 0, 0])
            row[0] += 1
            row[1] += items
            row[2] += size

    def summary(self) -> list[str]:
        """One line per stage that ran in this process: counts and bytes."""
        what = {"fetch": "files fetched", "build": "wheels built", "transmute": "packages transmuted",
                "upload": "objects uploaded", "create": "packages linked"}  # fmt: skip
        return [
            f"{stage}: {row[0]} env x arch, {row[1]} {what[stage]} ({row[2] / 1e6:.1f} MB)"
            for stage, row in sorted(self.stats.items(), key=lambda kv: list(what).index(kv[0]))
        ]

    @property
    def ctx(self) -> ArtifactContext:
        with self._lock:
            if self._ctx is None:
                self._ctx = artifact_context(self.ws)
            return self._ctx

    def _published_now(self, lock: Lock) -> bool:
        key = descriptor_key(lock)
        if key in self._published:
            return True
        if published(self.ctx, lock):
            self._published.add(key)
            return True
        return False

    def done(self, stage: str, lock_path: Path) -> bool:
        """doit's uptodate of ``stage`` for one lock: from the cache and the store."""
        from envbuild.artifacts import wheels

        try:
            lock = self.read(lock_path)
        except EnvbuildError:
            return False  # the action reports it
        if stage == "create":  # the env on disk: its marker decides
            from envbuild.create import is_current

            return is_current(self.prefix(lock.name), lock)
        if self._failure is not None:
            return False  # the action reports it (the store is not asked again)
        try:
            if self._published_now(lock):
                return True
            check = {"fetch": fetched, "build": wheels.built, "transmute": transmuted}.get(stage)
            return check(self.ctx, lock) if check else False
        except EnvbuildError as exc:  # the store (unreachable, no bucket, ...): not a traceback
            self._failure = exc
            return False

    def prefix(self, env: str) -> Path:
        """Where the workspace's env ``env`` is created."""
        return self.ws.state_dir / "envs" / env

    def create(self, lock: Lock) -> None:
        _create(self, lock)

    def run(self, stage: str, lock_path: Path) -> None:
        """The action of ``stage`` for one lock. A failure of the whole store (unreachable,
        no bucket, no access, misconfigured) is kept: every later subtask of the run raises
        that same error object, so that it can be reported once."""
        from envbuild.store.errors import (
            BucketNotFoundError,
            StoreAccessError,
            StoreConfigError,
            StoreUnreachableError,
        )

        if self._failure is not None:
            raise self._failure
        try:
            self._run(stage, lock_path)
        except (StoreUnreachableError, BucketNotFoundError, StoreAccessError,
                StoreConfigError) as exc:  # fmt: skip
            with self._lock:
                if self._failure is None:
                    self._failure = exc
                first = self._failure
            if first is exc:
                raise
            raise first from None

    def _run(self, stage: str, lock_path: Path) -> None:
        from envbuild.artifacts import wheels

        lock = self.read(lock_path)
        if stage == "create":
            self.create(lock)
            return
        if self._published_now(lock):
            return
        name = f"{lock.name}@{lock.env_id.arch}"
        ctx = self.ctx
        if stage == "fetch":
            report = fetch(ctx, lock)
            self._count(stage, report.from_store + report.from_origin, report.bytes)
            REPORT.info("fetched %s: %s", name, report.summary())
        elif stage == "build":
            count = wheels.build(ctx, lock)
            self._count(stage, count)
            if count:
                REPORT.info("built %s: %d wheels", name, count)
        elif stage == "transmute":
            count = transmute(ctx, lock)
            self._count(stage, count)
            if count:
                REPORT.info("transmuted %s: %d packages", name, count)
        elif stage == "upload":
            written, size = upload(ctx, lock)
            self._published.add(descriptor_key(lock))
            self._count(stage, written, size)
            REPORT.info("uploaded %s: %d objects (%.1f MB)", name, written, size / 1e6)


def _create(run: ArtifactRun, lock: Lock) -> None:
    from envbuild.create import create_env
    from envbuild.materialise import host_python_for, local_files

    ctx = run.ctx
    pairs = install_files(ctx, lock)
    cached = [(f, p) for f, p in pairs if p is not None]  # in the cache (stat-checked)
    pulled = local_files([f for f, p in pairs if p is None], ctx.cache, ctx.store)

    def verify(chosen: Sequence[tuple[InstallFile, Path]]) -> list[tuple[InstallFile, Path]]:
        """Every byte of the files about to be linked (an update links few)."""
        return local_files([f for f, _ in chosen], ctx.cache, ctx.store)

    created = create_env(
        lock, cached + pulled, run.prefix(lock.name), run.ws.state_dir / "cache" / "rattler",
        host_python=host_python_for(lock), verify=verify,
    )  # fmt: skip
    run._count("create", len(created.conda_linked) + len(created.wheels_installed))
    REPORT.info("env %s: %s", lock.name, created.summary())  # created: ... | updated: ...


def artifact_context(ws: Workspace) -> ArtifactContext:
    """The context of the artifact stages of workspace ``ws``."""
    from envbuild.platforms import host_arch
    from envbuild.store import StoreConfig, open_store

    options = dict(ws.store_options)
    config = StoreConfig(
        endpoint_url=options.get("store-endpoint"),
        region=options.get("store-region"),
        profile=options.get("store-profile"),
    )
    pairs = sorted({pair for env in ws.envs for pair in env.credentials})
    return ArtifactContext(
        root=ws.root,
        cache=PackageCache(ws.state_dir / "pkgs"),
        store=open_store(ws.store, ws.root, config),
        credentials=Credentials(tuple(pairs)),
        host_arch=host_arch(),
        preferred_format=ws.preferred_format,
    )
