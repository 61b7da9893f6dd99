"""The only module that knows doit: typed stage specs turned into doit task dicts.

In a workspace, a ``dodo.py`` of ``from envbuild.tasks import *`` gives ``doit resolve``;
elsewhere ``globals().update(workspace_tasks("path/to/workspace"))`` does the same.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envbuild.errors import EnvbuildError, format_error
from envbuild.fs import atomic_write, tree_hash
from envbuild.spec import MANIFEST, EnvSpec, Workspace, load_workspace

log = logging.getLogger(__name__)
FAILURES: list[EnvbuildError] = []  # user errors raised by actions in this process (for exit 2)
_GATEWAYS: dict[Path, Any] = {}
_GATEWAY_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class ResolveTask:
    """One env x arch resolution: what it reads, what it writes, what makes it stale."""

    env: EnvSpec
    arch: str
    root: Path
    lock: Path
    file_dep: tuple[Path, ...]
    local_channels: tuple[tuple[str, Path], ...]
    cache_dir: Path
    local_sources: tuple[tuple[str, str], ...] = ()  # (path, content hash) of local requirements

    @property
    def name(self) -> str:
        return f"{self.env.name}@{self.arch}"

    @property
    def uptodate_key(self) -> dict[str, Any]:
        key: dict[str, Any] = {
            "req_id": self.env.req_id,
            "settings": self.env.settings.to_dict(),
            "lock": 1,
        }
        if self.local_sources:  # a local source tree that changes makes the lock stale too
            key["local_sources"] = dict(self.local_sources)
        return key


def local_sources(env: EnvSpec, root: Path) -> dict[str, str]:
    """Content hashes of the local directories/files an env's PyPI requirements name."""
    from envbuild.parsers import is_local_path, requirement_target

    out: dict[str, str] = {}
    for dep in env.pypi:
        target = requirement_target(dep.value)
        if is_local_path(target):
            path = root / target
            out[target] = tree_hash(path) if path.exists() else "missing"
    return out


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


@dataclass(frozen=True, slots=True)
class SpecTask:
    """Snapshot one env's normalised spec from the manifest and its spec files. The snapshot is
    rewritten only when it changes, so editing one env in the manifest leaves the others'
    resolve tasks up to date."""

    env: EnvSpec
    file_dep: tuple[Path, ...]
    target: Path


def spec_tasks(ws: Workspace, envs: set[str] | None = None) -> list[SpecTask]:
    return [
        SpecTask(
            env=env,
            file_dep=(ws.manifest, *(ws.root / f for f in env.spec_files)),
            target=ws.spec_snapshot(env.name),
        )
        for env in ws.envs
        if not envs or env.name in envs
    ]


def run_spec(task: SpecTask) -> bool:
    atomic_write(task.target, json.dumps(task.env.to_dict(), sort_keys=True, indent=1) + "\n")
    return True


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


def resolve_tasks(
    ws: Workspace, envs: set[str] | None, archs: set[str] | None
) -> list[ResolveTask]:
    """The resolve subtasks, filtered by env and arch names."""
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
    ws.state_dir.mkdir(parents=True, exist_ok=True)
    local = {c.name: c for c in channel_tasks(ws)} if ws.local_channels else {}
    out = []
    for env in ws.envs:
        if envs and env.name not in envs:
            continue
        deps = [ws.root / f for f in env.spec_files] + [ws.spec_snapshot(env.name)]
        sources = tuple(local_sources(env, ws.root).items())  # hashed once for all archs
        for ch in env.channels:
            if ch in local:
                deps += local[ch].targets
        for arch in env.archs:
            if archs and arch not in archs:
                continue
            out.append(
                ResolveTask(
                    env=env,
                    arch=arch,
                    root=ws.root,
                    lock=ws.lock_path(env.name, arch),
                    file_dep=tuple(deps),
                    local_channels=tuple((n, c.out) for n, c in sorted(local.items())),
                    cache_dir=ws.state_dir / "cache" / "repodata",
                    local_sources=sources,
                )
            )
    return out


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


def run_resolve(task: ResolveTask) -> bool | Exception:
    """The action of one resolve subtask. User errors are reported without a traceback."""
    from envbuild.platforms import host_arch
    from envbuild.resolve.env import Context, resolve_env

    ctx = Context(
        root=task.root,
        gateway=gateway(task.cache_dir),
        host_arch=host_arch(),
        local_channels=dict(task.local_channels),
    )
    try:
        lock = resolve_env(task.env, task.arch, ctx)
    except EnvbuildError as exc:
        return _user_error(f"resolve {task.name}", exc)
    atomic_write(task.lock, lock.dumps())
    log.info(
        "locked %s: %d packages, full_id %s", task.name, len(lock.packages), lock.env_id.full_id
    )
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


def _spec_dicts(ws: Workspace) -> Iterator[dict[str, Any]]:
    from doit import get_var
    from doit.tools import config_changed

    doc = "Snapshot each env's normalised spec (what its resolve tasks depend on)."
    yield {"basename": "spec", "name": None, "doc": doc}
    for task in spec_tasks(ws, _split(get_var("env"))):
        yield {
            "name": task.env.name,
            "actions": [(run_spec, [task])],
            "file_dep": [str(p) for p in task.file_dep],
            "targets": [str(task.target)],
            # also when the same files normalise differently (a newer envbuild)
            "uptodate": [config_changed(task.env.to_dict())],
            "clean": True,
        }


def _resolve_dicts(ws: Workspace) -> Iterator[dict[str, Any]]:
    from doit import get_var
    from doit.exceptions import InvalidDodoFile
    from doit.tools import config_changed

    try:
        tasks = resolve_tasks(ws, _split(get_var("env")), _split(get_var("arch")))
    except EnvbuildError as exc:
        FAILURES.append(exc)
        raise InvalidDodoFile(str(exc)) from None
    doc = "Resolve every env x arch into a lockfile (filter: env=NAME,... arch=ARCH,...)."
    yield {"basename": "resolve", "name": None, "doc": doc}
    for task in tasks:
        yield {
            "name": task.name,
            "actions": [(run_resolve, [task])],
            "file_dep": [str(p) for p in task.file_dep],
            "targets": [str(task.lock)],
            "uptodate": [config_changed(task.uptodate_key)],
            "clean": True,
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

    def task_spec() -> Iterator[dict[str, Any]]:
        return _spec_dicts(workspace())

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
        "task_spec": task_spec,
        "task_resolve": task_resolve,
    }


def task_loader(root: str | Path = ".", preloaded: Workspace | None = None) -> Any:
    """A doit task loader for the ``envbuild`` command. Same tasks as the dodo.py route, but
    created in a fixed order: doit's module loader orders task creators by tokenizing their
    source (``inspect.getsourcelines``), about 10 ms of every run."""
    from doit.cmd_base import ModuleTaskLoader
    from doit.loader import generate_tasks

    class Loader(ModuleTaskLoader):  # type: ignore[misc]
        def load_tasks(self, cmd: Any, pos_args: list[str]) -> list[Any]:
            tasks: list[Any] = []
            for name in ("channel", "spec", "resolve"):
                creator = self.namespace[f"task_{name}"]
                tasks.extend(generate_tasks(name, creator(), creator.__doc__))
            return tasks

    return Loader(workspace_tasks(root, preloaded))


__all__ = ["DOIT_CONFIG", "task_channel", "task_resolve", "task_spec", "workspace_tasks"]  # noqa: F822


def __getattr__(name: str) -> Any:
    """``from envbuild.tasks import *`` in a dodo.py: the tasks of the current directory's
    workspace, made only when a dodo asks for them (importing this module has no effect)."""
    if name in ("DOIT_CONFIG", "task_channel", "task_resolve", "task_spec"):
        return workspace_tasks(".")[name]
    raise AttributeError(name)
