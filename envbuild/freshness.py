"""Lock freshness: the inputs hash a lock records, and whether a lock is current, stale, missing or damaged."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from envbuild.errors import LockError
from envbuild.lock import LOCK_VERSION, Lock, read_lock
from envbuild.spec import EnvSpec

# Bumped whenever envbuild's resolution defaults change in a way that can change a lock
# for the same spec: default virtual packages, the lock format, how packages are picked.
# (The default virtual packages in effect and the conda->PyPI table are hashed directly too.)
DEFAULTS_VERSION = 1

Hasher = Callable[[Path], str]  # content hash of a file or tree (fs.tree_hash or a cache)


@dataclass(frozen=True, slots=True)
class Inputs:
    """Everything that can change the result of resolving one env for one arch, except the
    state of remote channels and indexes. Its :attr:`hash` is recorded in the lock."""

    arch: str
    req_id: str
    settings: tuple[tuple[str, str], ...]  # resolver settings that change results, sorted
    virtual_packages: tuple[str, ...]  # name=version=build, all in effect for the arch
    local: tuple[tuple[str, str], ...]  # (what, content hash) of local inputs, sorted
    defaults: str  # envbuild's resolution defaults (DEFAULTS_VERSION, lock format, tables)

    def _parts(self) -> dict[str, Any]:
        return {
            "arch": self.arch,
            "req_id": self.req_id,
            "settings": dict(self.settings),
            "virtual_packages": list(self.virtual_packages),
            "local": dict(self.local),
            "defaults": self.defaults,
        }

    @property
    def hash(self) -> str:
        text = json.dumps(self._parts(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return {"hash": self.hash, **self._parts()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Inputs:
        return cls(
            arch=str(data["arch"]),
            req_id=str(data["req_id"]),
            settings=tuple(sorted((str(k), str(v)) for k, v in data["settings"].items())),
            virtual_packages=tuple(str(v) for v in data["virtual_packages"]),
            local=tuple(sorted((str(k), str(v)) for k, v in data["local"].items())),
            defaults=str(data["defaults"]),
        )


def defaults_version() -> str:
    """The version of envbuild's resolution defaults, as recorded in every lock."""
    from envbuild.pypi_names import mapping_version

    return f"{DEFAULTS_VERSION}/lock{LOCK_VERSION}/names:{mapping_version()}"


def result_settings(spec: EnvSpec) -> tuple[tuple[str, str], ...]:
    """The resolver settings that can change a result (the solve timeout cannot)."""
    data = spec.settings.to_dict()
    data.pop("solve_timeout", None)
    if data.get("exclude_newer"):
        # exclude-newer once applied to PyPI files only: a lock made then is not current
        data["exclude_newer_applies_to"] = "conda,pypi"
    return tuple(sorted((k, json.dumps(v, sort_keys=True)) for k, v in data.items()))


def local_path(target: str, root: Path) -> Path | None:
    """The local file or directory a channel, find-links entry or requirement names (a
    relative path from the workspace, an absolute path, a ``file://`` URL), else None."""
    if target.startswith("file:"):
        return Path(unquote(urlsplit(target).path))
    if target.startswith(("./", "../", "/", "~")) or target in (".", ".."):
        return (root / Path(target).expanduser()).resolve()
    return None


def local_inputs(
    spec: EnvSpec,
    arch: str,
    root: Path,
    channel_recipes: Mapping[str, Path],
    hasher: Hasher,
) -> tuple[tuple[str, str], ...]:
    """(what, content hash) of every local input of ``spec`` for ``arch``: local channels
    built from recipes (their recipes), local-path channels (their repodata for ``arch`` and
    noarch), local find-links directories, and local source trees or archives."""
    from envbuild.parsers import requirement_target

    def hashed(path: Path) -> str:
        return hasher(path) if path.exists() else "missing"

    out: dict[str, str] = {}
    for channel in spec.channels:
        if channel in channel_recipes:
            out[f"channel:{channel}"] = hashed(channel_recipes[channel])
            continue
        path = local_path(channel, root)
        if path is not None:
            digest = hashlib.sha256()
            for subdir in (arch, "noarch"):
                digest.update(f"{subdir}:{hashed(path / subdir / 'repodata.json')}\n".encode())
            out[f"channel:{channel}"] = digest.hexdigest()
    for link in spec.find_links:
        path = local_path(link, root)
        if path is not None:
            out[f"find-links:{link}"] = hashed(path)
    for dep in spec.pypi:
        target = requirement_target(dep.value)
        path = local_path(target, root)
        if path is not None:
            out[f"source:{target}"] = hashed(path)
    return tuple(sorted(out.items()))


def inputs_for(
    spec: EnvSpec,
    arch: str,
    root: Path,
    channel_recipes: Mapping[str, Path],
    hasher: Hasher,
    defaults: str,
) -> Inputs:
    """The :class:`Inputs` of resolving ``spec`` for ``arch`` in the workspace ``root``."""
    from envbuild.platforms import virtual_packages

    vps = virtual_packages(arch, dict(spec.virtual_packages))
    return Inputs(
        arch=arch,
        req_id=spec.req_id,
        settings=result_settings(spec),
        virtual_packages=tuple(f"{n}={v}={b}" for n, v, b in vps),
        local=local_inputs(spec, arch, root, channel_recipes, hasher),
        defaults=defaults,
    )


State = Literal["current", "missing", "stale", "damaged", "orphaned"]


@dataclass(frozen=True, slots=True)
class LockStatus:
    """What ``resolve --check`` says of one lock file."""

    env: str
    arch: str
    path: str  # relative to the workspace
    state: State
    reasons: tuple[str, ...] = ()

    @property
    def current(self) -> bool:
        return self.state == "current"

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "arch": self.arch,
            "lock": self.path,
            "state": self.state,
            "reasons": list(self.reasons),
        }

    def line(self) -> str:
        why = "; ".join(self.reasons)
        return f"{self.path}: {self.state}" + (f": {why}" if why else "")


def check_lock(path: Path, rel: str, spec: EnvSpec, inputs: Inputs) -> LockStatus:
    """The status of the lock at ``path`` against the current ``spec`` and ``inputs``,
    decided from the file alone."""

    def status(state: State, *reasons: str) -> LockStatus:
        return LockStatus(spec.name, inputs.arch, rel, state, reasons)

    if not path.exists():
        return status("missing", "no lock file")
    try:
        lock = read_lock(path)
    except LockError as exc:
        message = str(exc).removeprefix(f"{path}: ")
        if "format version" in message:
            return status("stale", message)
        return status("damaged", message)
    if lock.damaged:
        return status(
            "damaged",
            "its packages or spec do not match its own full_id/req_id (edited by hand or "
            "damaged by a merge): it is re-resolved",
        )
    if lock.inputs.get("hash") == inputs.hash and lock.env_id.arch == inputs.arch:
        return status("current")
    return status("stale", *stale_reasons(lock, spec, inputs))


def stale_reasons(lock: Lock, spec: EnvSpec, inputs: Inputs) -> list[str]:
    """Why ``lock`` no longer matches ``spec`` and ``inputs``, in words."""
    try:
        old = Inputs.from_dict(lock.inputs)
    except (KeyError, TypeError, ValueError, AttributeError):
        return ["the lock records no inputs hash: it was written by an older envbuild"]
    reasons: list[str] = []
    if old.req_id != inputs.req_id:
        reasons.append(spec_change(lock.spec, spec.normalised()))
    if old.settings != inputs.settings:
        names = sorted({k for k, _ in set(old.settings) ^ set(inputs.settings)})
        reasons.append(f"resolver settings changed: {', '.join(names)}")
    if old.virtual_packages != inputs.virtual_packages:
        reasons.append(_changed("virtual packages", old.virtual_packages, inputs.virtual_packages))
    if old.local != inputs.local:
        before, now = dict(old.local), dict(inputs.local)
        for key in sorted(set(before) | set(now)):
            if before.get(key) != now.get(key):
                kind, _, what = key.partition(":")
                label = {"channel": "local channel", "source": "local source"}.get(kind, kind)
                state = "added" if key not in before else "removed" if key not in now else ""
                reasons.append(f"{label} {what} {state or 'content changed'}")
    if old.defaults != inputs.defaults:
        reasons.append(
            f"envbuild's resolution defaults changed ({old.defaults} -> {inputs.defaults})"
        )
    if old.arch != inputs.arch:
        reasons.append(f"the lock is for {old.arch}, not {inputs.arch}")
    return reasons or ["inputs hash differs"]


def _changed(what: str, before: Iterable[str], now: Iterable[str]) -> str:
    b, n = set(before), set(now)
    parts = [f"added {', '.join(sorted(n - b))}"] if n - b else []
    parts += [f"removed {', '.join(sorted(b - n))}"] if b - n else []
    return f"{what} changed: " + ("; ".join(parts) or "reordered")


def spec_change(old: EnvSpec, new: EnvSpec) -> str:
    """ "spec changed: added pandas; removed numpy" and the like, comparing two specs."""
    parts: list[str] = []

    def deps(spec: EnvSpec, which: str) -> set[str]:
        values = spec.conda if which == "conda" else spec.pypi
        return {d.value + (f" [{','.join(d.archs)}]" if d.archs else "") for d in values}

    for which in ("conda", "pypi"):
        before, now = deps(old, which), deps(new, which)
        if now - before:
            parts.append(f"added {', '.join(sorted(now - before))}")
        if before - now:
            parts.append(f"removed {', '.join(sorted(before - now))}")
    old_cat, new_cat = old.req_categories(), new.req_categories()
    for category in ("sys", "channels", "indexes", "flags"):
        if sorted(old_cat[category]) != sorted(new_cat[category]):
            parts.append(f"{category} changed")
    if old.python != new.python:
        parts.append(f"python {old.python or '-'} -> {new.python or '-'}")
    return "spec changed: " + ("; ".join(dict.fromkeys(parts)) or "requirements differ")


def orphaned_locks(
    root: Path, locks_dir: str, envs: Mapping[str, tuple[str, ...]]
) -> list[LockStatus]:
    """Lock files under ``locks_dir`` of envs or archs that the manifest no longer has
    (``envs``: env name -> its archs)."""
    out: list[LockStatus] = []
    base = root / locks_dir
    if not base.is_dir():
        return out
    for path in sorted(base.glob("*/*.json")):
        env, arch = path.parent.name, path.stem
        rel = path.relative_to(root).as_posix()
        if env not in envs:
            out.append(
                LockStatus(env, arch, rel, "orphaned", (f"env '{env}' is not in the manifest",))
            )
        elif arch not in envs[env]:
            out.append(
                LockStatus(env, arch, rel, "orphaned", (f"env '{env}' no longer targets {arch}",))
            )
    return out
