"""The only module that knows doit: typed stage specs turned into doit task dicts.

In a workspace, a ``dodo.py`` of ``from envbuild.tasks import *`` gives ``doit resolve``;
elsewhere ``globals().update(workspace_tasks("path/to/workspace"))`` does the same.
"""

from __future__ import annotations

import copy
import functools
import logging
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envbuild.errors import EnvbuildError, format_error
from envbuild.fs import HashCache
from envbuild.resolve.stage import (
    is_current,
    orphans,
    parse_update,
    prune,
    resolve_tasks,
    run_resolve,
    split_names,
)
from envbuild.spec import Workspace, load_workspace

FAILURES: list[EnvbuildError] = []  # user errors raised by actions in this process (for exit 2)
ARTIFACT_STAGES = ("fetch", "build", "transmute", "upload")
# What each task does: doit's task docs (``envbuild list``) and ``envbuild --help``.
TASK_DOCS = {
    "channel": "build local channels from recipe files ([workspace] local-channels)",
    "resolve": "resolve each env x arch into locks/ENV/ARCH.json (skipped while current)",
    "fetch": "bring every file of each lock into the cache (store first, then origin)",
    "build": "build the wheels a lock needs from source, unless the store has them",
    "transmute": "convert conda packages to the preferred format (.conda or .tar.bz2)",
    "upload": "push each env x arch's files, then its descriptor, to the store",
    "create": "create or update each env of this machine's arch in .envbuild/envs/NAME",
}


@dataclass(frozen=True, slots=True)
class ChannelTask:
    """Build a local channel from recipe files."""

    name: str
    recipes: Path
    out: Path
    targets: tuple[Path, ...]


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
                targets=tuple(channel_targets(out, load_recipes(recipes))),
            )
        )
    return tasks


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
    error = _user_error_type()(f"{what}: {exc}")
    setattr(error, "cause", exc)  # noqa: B010  # the same error met by several subtasks: shown once
    return error


def _reporter(
    summary: Callable[[], list[str]] = list,
    verbose: bool = True,
    terminal: Callable[[Any], bool] | None = None,
) -> type:
    """doit's console reporter, except that user errors go to stderr as
    ``envbuild: error: ...`` lines, once, without doit's failure dump.

    Unless ``verbose``, up-to-date tasks are counted, not listed: the run ends with one
    line (``60 locks up to date``). On a terminal, a status line says which tasks run and
    how many of their stage are done; elsewhere each task that runs gets doit's plain
    ``.  NAME`` line. ``terminal``: whether a stream is a terminal (default:
    :func:`envbuild.progress.is_terminal`)."""
    from doit.reporter import ConsoleReporter

    from envbuild.progress import Progress, StatusLine, is_terminal

    class Reporter(ConsoleReporter):  # type: ignore[misc]
        failures: list[dict[str, Any]]

        def initialize(self, tasks: dict[str, Any], selected: list[str]) -> None:
            self.uptodate: dict[str, int] = {}
            self.progress: Progress | None = None
            self.restore: list[Callable[[], None]] = []
            if verbose or not (terminal or is_terminal)(sys.stderr):
                return
            totals: dict[str, int] = {}
            for name in tasks:
                if _counted(name):
                    stage = name.split(":", 1)[0]
                    totals[stage] = totals.get(stage, 0) + 1
            status = StatusLine(sys.stderr).__enter__()  # left in complete_run
            self.restore.append(status.__exit__)
            self.progress = Progress(status, totals)
            for handler in logging.getLogger("envbuild.report").handlers:
                if isinstance(handler, logging.StreamHandler):
                    old = handler.setStream(status)  # report lines pass above the status
                    self.restore.append(functools.partial(handler.setStream, old))

        def execute_task(self, task: Any) -> None:
            if self.progress is None:
                super().execute_task(task)
            elif _counted(task.name):
                self.progress.start(*task.name.split(":", 1))
            elif task.actions and not task.name.startswith("_"):  # resolve:prune, extras
                self.progress.status.write(f".  {task.title()}\n")  # above the status

        def add_success(self, task: Any) -> None:
            if self.progress is not None and _counted(task.name):
                self.progress.finish(*task.name.split(":", 1))

        def skip_uptodate(self, task: Any) -> None:
            if verbose:
                super().skip_uptodate(task)
                return
            if _counted(task.name):
                stage = task.name.split(":", 1)[0]
                self.uptodate[stage] = self.uptodate.get(stage, 0) + 1
                if self.progress is not None:
                    self.progress.skip(stage)

        def _user(self, result: dict[str, Any]) -> bool:
            return isinstance(result["exception"], _user_error_type())

        def add_failure(self, task: Any, fail: Any) -> None:
            progress = getattr(self, "progress", None)
            if progress is not None and _counted(task.name):
                progress.finish(*task.name.split(":", 1))
            super().add_failure(task, fail)

        def _write_failure(self, result: dict[str, Any], write_exception: bool = True) -> None:
            from doit.exceptions import UnmetDependency

            if isinstance(result["exception"], UnmetDependency):
                return  # a task waiting on failed ones: those were reported already
            if not self._user(result):
                super()._write_failure(result, write_exception)
                return
            cause = getattr(result["exception"], "cause", None)
            printed = self.__dict__.setdefault("printed", [])
            if any(c is cause for c in printed):
                return
            printed.append(cause)
            out = getattr(self, "progress", None)
            stream = out.status if out is not None else sys.stderr
            stream.write(format_error(result["exception"].message))

        def complete_run(self) -> None:
            from doit.exceptions import UnmetDependency

            progress = getattr(self, "progress", None)
            if progress is not None:
                progress.status.clear()
            for undo in getattr(self, "restore", []):
                undo()
            failed = sorted(r["task"].name for r in self.failures if self._user(r))
            self.failures = [
                r
                for r in self.failures
                if not self._user(r) and not isinstance(r["exception"], UnmetDependency)
            ]
            for line in summary():  # one line per stage that did work
                sys.stderr.write(line + "\n")
            if getattr(self, "uptodate", None):
                sys.stderr.write(uptodate_line(self.uptodate) + "\n")
            if failed and len(self.__dict__.get("printed", [])) > 1:  # last: what went wrong
                sys.stderr.write(f"envbuild: {len(failed)} failed: {', '.join(failed)}\n")
            super().complete_run()

    return Reporter


def _counted(name: str) -> bool:
    """A subtask of one of envbuild's stages (counted in progress and summaries)."""
    stage, _, sub = name.partition(":")
    return bool(sub) and stage in STAGES and name != "resolve:prune"


_NOUNS = {"resolve": "lock", "channel": "local channel", "create": "env"}


def uptodate_line(counts: Mapping[str, int]) -> str:
    """``4 locks, and fetch, build of 4 env x arch up to date``: the up-to-date subtasks
    of a run by stage (the artifact stages grouped by count)."""
    parts = []
    for stage in ("channel", "resolve", "create"):
        if n := counts.get(stage, 0):
            parts.append(f"{n} {_NOUNS[stage]}{'s' * (n != 1)}")
    by_count: dict[int, list[str]] = {}
    for stage in ARTIFACT_STAGES:
        if n := counts.get(stage, 0):
            by_count.setdefault(n, []).append(stage)
    for n, stages in by_count.items():
        parts.append(f"{', '.join(stages)} of {n} env x arch")
    return ", ".join(parts) + " up to date"


def _guarded(what: str, action: Callable[..., object], *args: object) -> bool | Exception:
    """Run a task action; a user error becomes a one-line doit failure (no traceback)."""
    try:
        action(*args)
    except EnvbuildError as exc:
        return _user_error(what, exc)
    return True


def run_channel(task: ChannelTask) -> None:
    """The action of one local-channel build."""
    from envbuild.localchannel import build_channel

    build_channel(task.recipes, task.out)


def _channel_built(spec: ChannelTask) -> bool:
    """A local channel is up to date when it records the hash of its current recipes."""
    from envbuild.localchannel import is_built

    return is_built(spec.recipes, spec.out)


def _channel_dicts(ws: Workspace) -> Iterator[dict[str, Any]]:
    yield {"basename": "channel", "name": None, "doc": TASK_DOCS["channel"]}
    for task in channel_tasks(ws):
        yield {
            "name": task.name,
            "actions": [(_guarded, [f"channel {task.name}", run_channel, task])],
            "targets": [str(p) for p in task.targets],
            "uptodate": [(_channel_built, [task], {})],
            "clean": True,
        }


def _resolve_dicts(ws: Workspace) -> Iterator[dict[str, Any]]:
    from doit import get_var
    from doit.exceptions import InvalidDodoFile

    envs, archs = split_names(get_var("env")), split_names(get_var("arch"))
    try:
        tasks = resolve_tasks(ws, envs, archs)
    except EnvbuildError as exc:
        FAILURES.append(exc)
        raise InvalidDodoFile(str(exc)) from None
    update = parse_update(get_var("update"))
    hasher = HashCache(ws.state_dir / "cache" / "hashes.json")
    doc = (  # `envbuild help resolve` tells the filters too
        "Resolve every env x arch into a lockfile (filters: env=NAME,... arch=ARCH,...; "
        "update=:all: or update=NAME,... lifts the existing pins)."
    )
    yield {"basename": "resolve", "name": None, "doc": doc}
    for task in tasks:
        yield {
            "name": task.name,
            "actions": [(_guarded, [f"resolve {task.name}", run_resolve, task, hasher, update])],
            "targets": [str(task.lock)],
            # doit "setup" tasks run only when this task is not up to date: a fresh clone
            # with current locks does not even build its local channels
            "setup": list(task.task_dep),
            "uptodate": [(is_current, [task, hasher, update], {})],
            "clean": True,
        }
    if not envs and not archs:
        yield {
            "name": "prune",
            "doc": "Remove the locks of envs and archs that are no longer in the manifest.",
            "actions": [(_guarded, ["resolve:prune", prune, ws])],
            "uptodate": [lambda: not orphans(ws)],
        }


def _artifact_dicts(ws: Workspace, stage: str, run: Any) -> Iterator[dict[str, Any]]:
    """One stage of the artifact pipeline, one subtask per env x arch. Each is up to date
    when its output exists (in the cache or the store) or when the store already holds
    the env's descriptor; doit's database decides nothing."""
    from doit import get_var

    before = {"fetch": "resolve", "build": "fetch", "transmute": "fetch", "upload": "transmute"}
    envs, archs = split_names(get_var("env")), split_names(get_var("arch"))
    yield {"basename": stage, "name": None, "doc": TASK_DOCS[stage]}
    for task in resolve_tasks(ws, envs, archs):
        deps = [f"{before[stage]}:{task.name}"] + (
            ["build:" + task.name] if stage == "upload" else []
        )
        yield {
            "name": task.name,
            "actions": [(_guarded, [f"{stage} {task.name}", run.run, stage, task.lock])],
            "task_dep": deps,
            "setup": list(task.task_dep) if stage == "fetch" else [],  # local channels
            "uptodate": [(run.done, [stage, task.lock], {})],
        }


def _create_dicts(ws: Workspace, run: Any) -> Iterator[dict[str, Any]]:
    """One subtask per env that targets this machine's arch: the env on disk, up to date
    when its marker names the lock's ids."""
    from doit import get_var

    from envbuild.platforms import host_arch, os_of

    envs, archs = split_names(get_var("env")), split_names(get_var("arch"))
    yield {"basename": "create", "name": None, "doc": TASK_DOCS["create"]}
    for arch in sorted(a for a in archs or () if os_of(a) == "win"):  # asked for: say why not
        from envbuild.create import check_creatable

        yield {"name": arch, "actions": [(_guarded, ["create", check_creatable, arch])]}
    if archs and host_arch() not in archs:
        return
    for task in resolve_tasks(ws, envs, {host_arch()}):
        yield {
            "name": task.env.name,
            "actions": [(_guarded, [f"create {task.env.name}", run.run, "create", task.lock])],
            # the lock first; its files only when the env is not current (doit "setup")
            "task_dep": [f"resolve:{task.name}"],
            "setup": [f"transmute:{task.name}", f"build:{task.name}"],
            "uptodate": [(run.done, ["create", task.lock], {})],
        }


def workspace_tasks(
    root: str | Path = ".", preloaded: Workspace | None = None, verbose: bool = True
) -> dict[str, Any]:
    """doit task creators (and DOIT_CONFIG) for the workspace at ``root`` (``preloaded``:
    its already parsed manifest, to avoid parsing it twice; ``verbose``: doit's line per
    task, else a summary line of the tasks that were up to date).

    The creators are one-liners on purpose: doit tokenizes each creator's source to order
    them, which costs milliseconds per line on every run.
    """
    root_path = Path(root)
    cache: list[Workspace] = [preloaded] if preloaded is not None else []
    runs: list[Any] = []  # the artifact stages' shared state, made once per load

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

    def artifacts() -> Any:
        from envbuild.artifacts.stages import ArtifactRun

        if not runs:
            runs.append(ArtifactRun(workspace()))
        return runs[0]

    def task_fetch() -> Iterator[dict[str, Any]]:
        return _artifact_dicts(workspace(), "fetch", artifacts())

    def task_build() -> Iterator[dict[str, Any]]:
        return _artifact_dicts(workspace(), "build", artifacts())

    def task_transmute() -> Iterator[dict[str, Any]]:
        return _artifact_dicts(workspace(), "transmute", artifacts())

    def task_upload() -> Iterator[dict[str, Any]]:
        return _artifact_dicts(workspace(), "upload", artifacts())

    def task_create() -> Iterator[dict[str, Any]]:
        return _create_dicts(workspace(), artifacts())

    state = root_path / ".envbuild"
    dep_file = str(state / "doit.db")
    try:
        state.mkdir(parents=True, exist_ok=True)
    except OSError:  # a read-only workspace: `list` and `info` still work
        dep_file = dep_file if Path(dep_file).exists() else ":memory:"
    return {
        "DOIT_CONFIG": {
            "dep_file": dep_file,
            "backend": "sqlite3",
            "default_tasks": ["resolve", *ARTIFACT_STAGES],
            "verbosity": 1,
            "num_process": 4,
            "continue": True,  # one failing env x arch does not stop the others
            "par_type": "thread",
            "reporter": _reporter(lambda: runs[0].summary() if runs else [], verbose),
        },
        "task_channel": task_channel,
        "task_resolve": task_resolve,
        "task_fetch": task_fetch,
        "task_build": task_build,
        "task_transmute": task_transmute,
        "task_upload": task_upload,
        "task_create": task_create,
    }


STAGES = (
    "channel",
    "resolve",
    *ARTIFACT_STAGES,
    "create",
)  # envbuild's own creators, in graph order
# What each stage's tasks may depend on (setup and task_dep), directly or not.
_UPSTREAM = {
    "channel": (),
    "resolve": ("channel",),
    "fetch": ("channel", "resolve"),
    "build": ("channel", "resolve", "fetch"),
    "transmute": ("channel", "resolve", "fetch"),
    "upload": ("channel", "resolve", "fetch", "build", "transmute"),
    "create": ("channel", "resolve", "fetch", "build", "transmute"),
}


def needed_stages(pos_args: list[str], namespace: Mapping[str, Any]) -> set[str] | None:
    """The stages a run of ``pos_args`` needs (the named ones and what they depend on), so
    that ``envbuild resolve`` does not make the artifact stages' tasks; None for all (a
    name envbuild does not know). No task named: the default tasks."""
    names = [a.split(":", 1)[0] for a in pos_args if "=" not in a and not a.startswith("-")]
    if not names:
        names = list(namespace["DOIT_CONFIG"].get("default_tasks", ()))
    needed: set[str] = set()
    for name in names:
        if name not in _UPSTREAM:
            return None
        needed.update((name, *_UPSTREAM[name]))
    return needed


def task_loader(
    root: str | Path = ".",
    preloaded: Workspace | None = None,
    extra: Mapping[str, Callable[[], Any]] | None = None,
    verbose: bool = True,
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
            needed = needed_stages(pos_args, self.namespace) if cmd.execute_tasks else None
            for name, given in creators:
                if needed is not None and given is None and name not in needed:
                    continue  # a stage the requested tasks cannot depend on
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

    return Loader(workspace_tasks(root, preloaded, verbose))


__all__ = [  # noqa: F822
    "DOIT_CONFIG",
    "task_build",
    "task_channel",
    "task_create",
    "task_fetch",
    "task_resolve",
    "task_transmute",
    "task_upload",
    "workspace_tasks",
]


def __getattr__(name: str) -> Any:
    """``from envbuild.tasks import *`` in a dodo.py: the tasks of the current directory's
    workspace, made only when a dodo asks for them (importing this module has no effect)."""
    if name in __all__ and name != "workspace_tasks":
        return workspace_tasks(".")[name]
    raise AttributeError(name)
