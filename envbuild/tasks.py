"""The only module that knows doit: typed stage specs turned into doit task dicts.

In a workspace, a ``dodo.py`` of ``from envbuild.tasks import *`` gives ``doit resolve``;
elsewhere ``globals().update(workspace_tasks("path/to/workspace"))`` does the same.
"""

from __future__ import annotations

import copy
import functools
import logging
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envbuild.errors import EnvbuildError, format_error
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
from envbuild.spec import MANIFEST, EnvSpec, Workspace, load_workspace

log = logging.getLogger(__name__)
# What the runs changed (locks written, locks removed): the CLI shows it on stderr.
REPORT = logging.getLogger("envbuild.report")
FAILURES: list[EnvbuildError] = []  # user errors raised by actions in this process (for exit 2)
_GATEWAYS: dict[Path, Any] = {}
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


@dataclass(frozen=True, slots=True)
class ChannelTask:
    """Build a local channel from recipe files."""

    name: str
    recipes: Path
    out: Path
    file_dep: tuple[Path, ...]
    targets: tuple[Path, ...]


def _split(value: str | None) -> set[str] | None:
    return {v.strip() for v in value.split(",") if v.strip()} if value else None


def channel_tasks(ws: Workspace) -> list[ChannelTask]:
    if not ws.local_channels:
        return []
    from envbuild.localchannel import channel_targets, load_recipes

    tasks = []
    for name, rdir in ws.local_channels:
        recipes = ws.root / rdir
        out = ws.local_channel_dir(name)
        tasks.append(
            ChannelTask(
                name=name,
                recipes=recipes,
                out=out,
                file_dep=tuple(sorted(recipes.glob("*.toml"))),
                targets=tuple(channel_targets(out, load_recipes(recipes))),
            )
        )
    return tasks


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
                )
            )
    return out


def orphans(ws: Workspace) -> list[LockStatus]:
    """Locks of envs or archs the manifest no longer has."""
    return orphaned_locks(ws.root, ws.locks_dir, {e.name: e.archs for e in ws.envs})


@functools.cache
def _user_error_type() -> type[Exception]:
    """doit's TaskFailed, marked as a user error for :func:`_reporter` (made once, on first
    use, because doit is imported lazily)."""
    from doit.exceptions import TaskFailed

    class UserError(TaskFailed):  # type: ignore[misc]
        pass

    return UserError


def _user_error(what: str, exc: EnvbuildError) -> Exception:
    """A doit failure for a user error: reported on one line (plus any explanation) on
    stderr by the reporter, without a traceback."""
    FAILURES.append(exc)
    return _user_error_type()(f"{what}: {exc}")


def _reporter() -> type:
    """doit's console reporter, except that user errors go to stderr as
    ``envbuild: error: ...`` lines, once, without doit's failure dump."""
    from doit.reporter import ConsoleReporter

    class Reporter(ConsoleReporter):  # type: ignore[misc]
        failures: list[dict[str, Any]]

        def _user(self, result: dict[str, Any]) -> bool:
            return isinstance(result["exception"], _user_error_type())

        def _write_failure(self, result: dict[str, Any], write_exception: bool = True) -> None:
            if not self._user(result):
                super()._write_failure(result, write_exception)
                return
            sys.stderr.write(format_error(result["exception"].message))

        def complete_run(self) -> None:
            self.failures = [r for r in self.failures if not self._user(r)]
            super().complete_run()

    return Reporter


def gateway(cache_dir: Path) -> Any:
    """The process's one rattler Gateway for ``cache_dir`` (one in-memory repodata cache
    shared by every resolve thread)."""
    from envbuild.resolve.conda import new_gateway

    with _GATEWAY_LOCK:
        found = _GATEWAYS.get(cache_dir)
        if found is None:
            found = _GATEWAYS[cache_dir] = new_gateway(cache_dir)
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
    if update is not None:
        return False
    status = lock_status(spec, hasher.tree)
    hasher.save()
    if status.state == "damaged":
        log.warning("%s", status.line())
    return status.current


def run_resolve(
    task: ResolveTask, hasher: HashCache, update: frozenset[str] | None
) -> bool | Exception:
    """The action of one resolve subtask: re-resolve, keeping the existing lock's pins
    where the inputs allow (unless ``update`` lifts them), and report what changed."""
    from envbuild.platforms import host_arch
    from envbuild.resolve.env import Context, Preferences, resolve_env

    previous = _previous_lock(task)
    ctx = Context(
        root=task.root,
        gateway=gateway(task.cache_dir),
        host_arch=host_arch(),
        local_channels=dict(task.local_channels),
    )
    inputs = task_inputs(task, hasher.tree)
    try:
        lock = resolve_env(
            task.env, task.arch, ctx, Preferences.from_lock(previous, update), inputs.to_dict()
        )
    except EnvbuildError as exc:
        return _user_error(f"resolve {task.name}", exc)
    atomic_write(task.lock, lock.dumps())
    hasher.save()
    REPORT.info("%s", change_summary(task.name, previous, lock))
    return True


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


def prune(ws: Workspace) -> bool:
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
    return True


def run_channel(task: ChannelTask) -> bool | Exception:
    """The action of one local-channel build."""
    from envbuild.localchannel import build_channel

    try:
        build_channel(task.recipes, task.out)
    except EnvbuildError as exc:
        return _user_error(f"channel {task.name}", exc)
    return True


def _channel_dicts(ws: Workspace) -> Iterator[dict[str, Any]]:
    yield {"basename": "channel", "name": None, "doc": "Build local channels from recipes."}
    for task in channel_tasks(ws):
        yield {
            "name": task.name,
            "actions": [(run_channel, [task])],
            "file_dep": [str(p) for p in task.file_dep],
            "targets": [str(p) for p in task.targets],
            "clean": True,
        }


def _resolve_dicts(ws: Workspace) -> Iterator[dict[str, Any]]:
    from doit import get_var
    from doit.exceptions import InvalidDodoFile

    envs, archs = _split(get_var("env")), _split(get_var("arch"))
    try:
        tasks = resolve_tasks(ws, envs, archs)
    except EnvbuildError as exc:
        FAILURES.append(exc)
        raise InvalidDodoFile(str(exc)) from None
    update = parse_update(get_var("update"))
    hasher = HashCache(ws.state_dir / "cache" / "hashes.json")
    doc = (
        "Resolve every env x arch into a lockfile (filters: env=NAME,... arch=ARCH,...; "
        "update=:all: or update=NAME,... lifts the existing pins)."
    )
    yield {"basename": "resolve", "name": None, "doc": doc}
    for task in tasks:
        yield {
            "name": task.name,
            "actions": [(run_resolve, [task, hasher, update])],
            "targets": [str(task.lock)],
            "task_dep": list(task.task_dep),
            "uptodate": [(is_current, [task, hasher, update], {})],
            "clean": True,
        }
    if not envs and not archs:
        yield {
            "name": "prune",
            "doc": "Remove the locks of envs and archs that are no longer in the manifest.",
            "actions": [(prune, [ws])],
            "uptodate": [lambda: not orphans(ws)],
        }


def workspace_tasks(root: str | Path = ".", preloaded: Workspace | None = None) -> dict[str, Any]:
    """doit task creators (and DOIT_CONFIG) for the workspace at ``root`` (``preloaded``:
    its already parsed manifest, to avoid parsing it twice).

    The creators are one-liners on purpose: doit tokenizes each creator's source to order
    them, which costs milliseconds per line on every run.
    """
    root_path = Path(root)
    cache: list[Workspace] = [preloaded] if preloaded is not None else []

    def workspace() -> Workspace:
        from doit.exceptions import InvalidDodoFile

        if not cache:
            try:
                cache.append(load_workspace(root_path.resolve()))
            except EnvbuildError as exc:
                FAILURES.append(exc)
                raise InvalidDodoFile(str(exc)) from None
        return cache[0]

    def task_channel() -> Iterator[dict[str, Any]]:
        return _channel_dicts(workspace())

    def task_resolve() -> Iterator[dict[str, Any]]:
        return _resolve_dicts(workspace())

    state = root_path / ".envbuild"
    state.mkdir(parents=True, exist_ok=True)
    return {
        "DOIT_CONFIG": {
            "dep_file": str(state / "doit.db"),
            "backend": "sqlite3",
            "default_tasks": ["resolve"],
            "verbosity": 1,
            "num_process": 4,
            "par_type": "thread",
            "reporter": _reporter(),
        },
        "task_channel": task_channel,
        "task_resolve": task_resolve,
    }


STAGES = ("channel", "resolve")  # envbuild's own task creators, in graph order


def task_loader(
    root: str | Path = ".",
    preloaded: Workspace | None = None,
    extra: Mapping[str, Callable[[], Any]] | None = None,
) -> Any:
    """A doit task loader for the ``envbuild`` command. Same tasks as the dodo.py route, but
    created in a fixed order: doit's module loader orders task creators by tokenizing their
    source (``inspect.getsourcelines``), about 10 ms of every run.

    ``extra``: more task creators (``name`` -> creator), after envbuild's own. Like doit's
    own loader, it honours ``@doit.create_after``: a delayed creator runs only once the
    tasks it waits for have run, so tasks can be computed from other tasks' outputs (the
    locks).
    """
    from doit.cmd_base import ModuleTaskLoader
    from doit.loader import generate_tasks
    from doit.task import Task

    creators = [(name, None) for name in STAGES] + list((extra or {}).items())

    class Loader(ModuleTaskLoader):  # type: ignore[misc]
        def load_tasks(self, cmd: Any, pos_args: list[str]) -> list[Any]:
            tasks: list[Any] = []
            for name, given in creators:
                creator = given or self.namespace[f"task_{name}"]
                delayed = getattr(creator, "doit_create_after", None)
                if delayed is not None and cmd.execute_tasks:
                    this = copy.copy(delayed)
                    this.creator = creator
                    for basename in delayed.creates or [name]:
                        tasks.append(Task(basename, None, loader=this, doc=creator.__doc__))
                else:
                    tasks.extend(generate_tasks(name, creator(), creator.__doc__))
            return tasks

    return Loader(workspace_tasks(root, preloaded))


__all__ = ["DOIT_CONFIG", "task_channel", "task_resolve", "workspace_tasks"]  # noqa: F822


def __getattr__(name: str) -> Any:
    """``from envbuild.tasks import *`` in a dodo.py: the tasks of the current directory's
    workspace, made only when a dodo asks for them (importing this module has no effect)."""
    if name in ("DOIT_CONFIG", "task_channel", "task_resolve"):
        return workspace_tasks(".")[name]
    raise AttributeError(name)
