"""The resolve stage of a workspace: one job per env x arch, current exactly when its lock file records the current inputs."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envbuild.errors import EnvbuildError
from envbuild.freshness import (
    Inputs,
    LockStatus,
    check_lock,
    defaults_version,
    inputs_for,
    orphaned_locks,
)
from envbuild.fs import HashCache, atomic_write
from envbuild.lock import Lock, read_lock
from envbuild.spec import MANIFEST, EnvSpec, Workspace

log = logging.getLogger(__name__)
# What the runs changed (locks written, locks removed): the CLI shows it on stderr.
REPORT = logging.getLogger("envbuild.report")
_GATEWAYS: dict[tuple[Path, tuple[tuple[str, str], ...]], Any] = {}
_GATEWAY_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class ResolveTask:
    """One env x arch resolution: what it reads, what it writes. It is up to date exactly
    when its lock exists, parses, matches its own ids and records the current inputs hash
    (see :mod:`envbuild.freshness`): decided from files, never from doit's database."""

    env: EnvSpec
    arch: str
    root: Path
    lock: Path
    channel_recipes: tuple[tuple[str, Path], ...]  # local channels built from recipes
    local_channels: tuple[tuple[str, Path], ...]  # (name, built directory)
    cache_dir: Path
    task_dep: tuple[str, ...] = ()  # the channel tasks whose output it solves against
    # (public channel URL/, URL/ with its token path) of every token channel of the
    # workspace: one Gateway (one client, one in-memory repodata cache) serves them all
    mirrors: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    @property
    def name(self) -> str:
        return f"{self.env.name}@{self.arch}"

    @property
    def rel_lock(self) -> str:
        return self.lock.relative_to(self.root).as_posix()


def task_inputs(task: ResolveTask, hasher: Callable[[Path], str]) -> Inputs:
    """The inputs of ``task`` now (local inputs hashed through ``hasher``)."""
    return inputs_for(
        task.env, task.arch, task.root, dict(task.channel_recipes), hasher, defaults_version()
    )


def lock_status(task: ResolveTask, hasher: Callable[[Path], str]) -> LockStatus:
    """What ``resolve --check`` says of ``task``'s lock."""
    return check_lock(task.lock, task.rel_lock, task.env, task_inputs(task, hasher))


def split_names(value: str | None) -> set[str] | None:
    """A filter variable (``env=a,b``) as a set of names; None when not given."""
    return {v.strip() for v in value.split(",") if v.strip()} if value else None


def check_filters(ws: Workspace, envs: set[str] | None, archs: set[str] | None) -> None:
    """Refuse ``env=`` / ``arch=`` filters naming no env or arch of the workspace."""
    from envbuild.errors import SpecError
    from envbuild.platforms import ARCHS

    known = {e.name for e in ws.envs}
    problems = []
    if envs and envs - known:
        problems.append(
            f"env={','.join(sorted(envs - known))}: no such env in {MANIFEST} (known: {', '.join(sorted(known))})"
        )
    if archs and archs - set(ARCHS):
        problems.append(
            f"arch={','.join(sorted(archs - set(ARCHS)))}: not a supported arch (use {', '.join(ARCHS)})"
        )
    if problems:
        raise SpecError(problems)


def resolve_tasks(
    ws: Workspace, envs: set[str] | None, archs: set[str] | None
) -> list[ResolveTask]:
    """The resolve subtasks, filtered by env and arch names."""
    check_filters(ws, envs, archs)
    recipes = {name: ws.root / rdir for name, rdir in ws.local_channels}
    built = tuple((name, ws.local_channel_dir(name)) for name in sorted(recipes))
    mirrors = channel_mirrors(ws)
    out = []
    for env in ws.envs:
        if envs and env.name not in envs:
            continue
        used = tuple(sorted(c for c in set(env.channels) if c in recipes))
        for arch in env.archs:
            if archs and arch not in archs:
                continue
            out.append(
                ResolveTask(
                    env=env,
                    arch=arch,
                    root=ws.root,
                    lock=ws.lock_path(env.name, arch),
                    channel_recipes=tuple((c, recipes[c]) for c in used),
                    local_channels=built,
                    cache_dir=ws.state_dir / "cache" / "repodata",
                    task_dep=tuple(f"channel:{c}" for c in used),
                    mirrors=mirrors,
                )
            )
    return out


def orphans(ws: Workspace) -> list[LockStatus]:
    """Locks of envs or archs the manifest no longer has."""
    return orphaned_locks(ws.root, ws.locks_dir, {e.name: e.archs for e in ws.envs})


def channel_mirrors(ws: Workspace) -> tuple[tuple[str, str], ...]:
    """The token mirrors of every channel of ``ws`` (see
    :func:`envbuild.credentials.token_mirrors`; the manifest refuses one channel with two
    tokens)."""
    from envbuild.credentials import token_mirrors

    pairs = sorted({p for env in ws.envs for p in env.credentials if p[0] in env.channels})
    return tuple(sorted(token_mirrors(pairs).items()))


def gateway(cache_dir: Path, mirrors: tuple[tuple[str, str], ...] = ()) -> Any:
    """The process's one rattler Gateway for ``cache_dir`` and token ``mirrors`` (one
    in-memory repodata cache shared by every resolve thread)."""
    from envbuild.resolve.conda import new_gateway

    with _GATEWAY_LOCK:
        found = _GATEWAYS.get((cache_dir, mirrors))
        if found is None:
            found = _GATEWAYS[(cache_dir, mirrors)] = new_gateway(cache_dir, dict(mirrors))
        return found


def parse_update(value: str | None) -> frozenset[str] | None:
    """The ``update=`` variable: None (keep every pin), ``:all:`` (an empty set: lift every
    pin) or comma-separated package names (lift those)."""
    if value is None:
        return None
    names = {v.strip().lower() for v in value.split(",") if v.strip()}
    return frozenset() if not names or ":all:" in names else frozenset(names)


def is_current(spec: ResolveTask, hasher: HashCache, update: frozenset[str] | None) -> bool:
    """doit's ``uptodate`` of a resolve subtask: its lock file alone decides. (The first
    parameter must not be called ``task``: doit would pass its own Task object there.)"""
    if update is not None or not spec.lock.exists():
        return False  # no lock: stale whatever the inputs (nothing to hash)
    status = lock_status(spec, hasher.tree)
    hasher.save()
    if status.state == "damaged":
        log.warning("%s", status.line())
    return status.current


def run_resolve(task: ResolveTask, hasher: HashCache, update: frozenset[str] | None) -> None:
    """Re-resolve one env x arch, keeping the existing lock's pins where the inputs allow
    (unless ``update`` lifts them), write its lock and report what changed."""
    from envbuild.platforms import host_arch
    from envbuild.resolve.env import Context, Preferences, resolve_env

    previous = _previous_lock(task)
    ctx = Context(
        root=task.root,
        gateway=gateway(task.cache_dir, task.mirrors),
        host_arch=host_arch(),
        local_channels=dict(task.local_channels),
    )
    inputs = task_inputs(task, hasher.tree)
    lock = resolve_env(
        task.env, task.arch, ctx, Preferences.from_lock(previous, update), inputs.to_dict()
    )
    atomic_write(task.lock, lock.dumps())
    hasher.save()
    REPORT.info("%s", change_summary(task.name, previous, lock))


def _previous_lock(task: ResolveTask) -> Lock | None:
    """The task's existing lock if it is readable and for the same arch (its pins are
    preferred); a damaged one is not used."""
    try:
        lock = read_lock(task.lock)
    except EnvbuildError:
        return None
    return None if lock.damaged or lock.env_id.arch != task.arch else lock


def change_summary(name: str, old: Lock | None, new: Lock) -> str:
    """One line: what a re-resolution changed (added, removed, upgraded, downgraded)."""
    from envbuild.diff import diff_locks

    changes = diff_locks(old, new)
    return f"locked {name}: " + (changes.summary() if old else f"{len(new.packages)} packages")


def prune(ws: Workspace) -> None:
    """The action of ``resolve:prune``: delete the locks of envs/archs no longer in the
    manifest (and their emptied directories)."""
    for status in orphans(ws):
        path = ws.root / status.path
        path.unlink(missing_ok=True)
        REPORT.info("removed %s (%s)", status.path, "; ".join(status.reasons))
        try:
            path.parent.rmdir()
        except OSError:
            pass  # not empty
