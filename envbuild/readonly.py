"""A workspace envbuild cannot write (a read-only checkout or volume): what still works,
and the one line that says what does not."""

from __future__ import annotations

import os
import sys

from envbuild.errors import EnvbuildError
from envbuild.spec import Workspace


def read_only_run(ws: Workspace, args: list[str]) -> int | None:
    """In a workspace envbuild cannot write: ``resolve`` with current locks says so and
    exits 0; anything that would write says in one line which path it cannot write."""
    from envbuild.fs import unwritable

    names = [a.split(":", 1)[0] for a in args if not a.startswith("-") and "=" not in a]
    resolving = bool(names) and set(names) <= {"resolve", "run"}
    paths = [ws.root / ws.locks_dir, ws.state_dir]
    where = unwritable(paths if resolving else paths[::-1])
    if where is None:
        return None
    path, why = where
    rel = os.path.relpath(path, ws.root)
    if resolving:
        from envbuild.fs import HashCache
        from envbuild.resolve.stage import lock_status, resolve_tasks, split_names

        variables = dict(a.split("=", 1) for a in args if "=" in a and not a.startswith("-"))
        envs, archs = split_names(variables.get("env")), split_names(variables.get("arch"))
        hasher = HashCache(ws.state_dir / "cache" / "hashes.json")
        statuses = [lock_status(t, hasher.tree) for t in resolve_tasks(ws, envs, archs)]
        stale = [s for s in statuses if not s.current]
        if not stale and "update" not in variables:
            print(f"{len(statuses)} lock{'s' * (len(statuses) != 1)} up to date", file=sys.stderr)
            return 0
        first = stale[0] if stale else statuses[0]
        more = f" and {len(stale) - 1} more (see `envbuild resolve --check`)" * (len(stale) > 1)
        raise EnvbuildError(
            f"cannot write {first.path} ({why}){more}: resolve where the workspace is writable"
        )
    raise EnvbuildError(
        f"cannot write {rel} ({why}): run envbuild where the workspace is writable "
        "(`resolve --check`, `show` and `export -o ELSEWHERE` work here)"
    )
