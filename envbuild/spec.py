"""The workspace manifest (envbuild.toml) and its environments, parsed into frozen specs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envbuild import ids
from envbuild.errors import SpecError
from envbuild.parsers import Dep
from envbuild.platforms import host_arch

MANIFEST = "envbuild.toml"
DEFAULT_PYPI_INDEX = "https://pypi.org/simple"


@dataclass(frozen=True, slots=True)
class ResolverSettings:
    """Settings that change a solve without being requirements (part of the task's uptodate)."""

    channel_priority: str = "strict"
    solve_timeout: float = 120.0
    pypi_resolver: str = "uv"  # or "pip"
    exclude_newer: str = ""  # RFC 3339 timestamp: ignore files uploaded after it ("" = none)

    def to_dict(self) -> dict[str, Any]:
        return {
            "channel_priority": self.channel_priority,
            "exclude_newer": self.exclude_newer,
            "pypi_resolver": self.pypi_resolver,
            "solve_timeout": self.solve_timeout,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ResolverSettings:
        return cls(
            channel_priority=str(data["channel_priority"]),
            solve_timeout=float(data.get("solve_timeout", 120.0)),
            pypi_resolver=str(data.get("pypi_resolver", "uv")),
            exclude_newer=str(data.get("exclude_newer", "")),
        )


@dataclass(frozen=True, slots=True)
class EnvSpec:
    """One environment's normalised requirements and sources, for every arch it targets."""

    name: str
    archs: tuple[str, ...]
    channels: tuple[str, ...]  # as written, names expanded; order is priority
    conda: tuple[Dep, ...] = ()  # python excluded: see ``python``
    pypi: tuple[Dep, ...] = ()
    python: str | None = None  # conda version spec ("3.11.*"), "*" for any
    pypi_index: str = DEFAULT_PYPI_INDEX
    extra_indexes: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    trusted_hosts: tuple[str, ...] = ()
    pre: bool = False
    no_index: bool = False
    # Canonical names, or (":all:",): wheels only / sources only (parsers/binary.py). Sdists
    # are allowed for every target by default.
    only_binary: tuple[str, ...] = ()
    no_binary: tuple[str, ...] = ()
    # --prefer-binary: a package's newest version with a wheel over a newer one with only
    # an sdist (see resolve/pypi.py for how uv, which has no such switch, honours it)
    prefer_binary: bool = False
    virtual_packages: tuple[tuple[str, str], ...] = ()
    # PyPI constraints (-c FILE in a requirements file): named requirements, normalised
    pypi_constraints: tuple[str, ...] = ()
    # (canonical name, "sha256:HEX") from --hash: the locked file must have one of them
    pypi_hashes: tuple[tuple[str, str], ...] = ()
    spec_files: tuple[str, ...] = ()  # relative to the workspace root
    python_source: str = "conda"  # "conda": python from the channels; "host": a host interpreter
    settings: ResolverSettings = field(default_factory=ResolverSettings)
    # Public URL -> URL with credentials, for fetching only: never serialised or hashed.
    credentials: tuple[tuple[str, str], ...] = field(default=(), compare=False, repr=False)
    # (canonical name, "file:line") of each --hash, for messages only: never serialised
    hash_origins: tuple[tuple[str, str], ...] = field(default=(), compare=False, repr=False)

    def real_url(self, url: str) -> str:
        """The URL to fetch ``url`` with (credentials restored, if any were given)."""
        return dict(self.credentials).get(url, url)

    @property
    def kind(self) -> str:
        """``conda`` (conda deps only), ``pypi`` (python + PyPI deps) or ``mixed``."""
        if not self.pypi:
            return "conda"
        return "mixed" if self.conda else "pypi"

    def conda_specs(self, arch: str) -> list[str]:
        """The conda match specs to solve for ``arch`` (python first when given)."""
        specs = [f"python {self.python}" if self.python != "*" else "python"] if self.python else []
        specs += [d.value for d in self.conda if not d.archs or arch in d.archs]
        return specs

    def req_categories(self) -> dict[str, list[str]]:
        def dep(d: Dep) -> str:
            return d.value + (f" [{','.join(d.archs)}]" if d.archs else "")

        conda = [dep(d) for d in self.conda]
        if self.python:
            conda.append(f"python {self.python}")
        return {
            "conda": conda,
            "pypi": [dep(d) for d in self.pypi]
            + [f"constraint:{c}" for c in self.pypi_constraints]
            + [f"hash:{n} {h}" for n, h in self.pypi_hashes],
            "sys": [f"{n}={v}" for n, v in self.virtual_packages],
            # Channel order is priority, so the whole ordered list is one value.
            "channels": [" | ".join(self.channels)],
            "indexes": [f"base:{self.pypi_index}"]
            + [f"extra:{u}" for u in self.extra_indexes]
            + [f"find-links:{u}" for u in self.find_links],
            "flags": (
                [f"python-source:{self.python_source}"] if self.python_source != "conda" else []
            )
            + (["--pre"] if self.pre else [])
            + (["--no-index"] if self.no_index else [])
            + [f"--trusted-host {h}" for h in self.trusted_hosts]
            + [f"--only-binary {n}" for n in self.only_binary]
            + [f"--no-binary {n}" for n in self.no_binary]
            + (["--prefer-binary"] if self.prefer_binary else []),
        }

    @property
    def req_id(self) -> str:
        return ids.req_id(self.req_categories())

    def normalised(self) -> EnvSpec:
        """This spec with its dependency lists sorted and deduplicated: order and duplicates
        never change a resolution, so the lock echoes (and resolves) this form."""
        import dataclasses

        def norm(deps: tuple[Dep, ...]) -> tuple[Dep, ...]:
            return tuple(sorted(set(deps), key=lambda d: (d.value, d.archs)))

        return dataclasses.replace(
            self,
            conda=norm(self.conda),
            pypi=norm(self.pypi),
            pypi_constraints=tuple(sorted(set(self.pypi_constraints))),
            pypi_hashes=tuple(sorted(set(self.pypi_hashes))),
        )

    def for_lock(self) -> EnvSpec:
        """The spec as a lock records it: normalised, and only what is a resolve input. The
        env's arch list, its spec-file names and the solve timeout are left out, so changing
        them never makes a current lock's bytes stale."""
        import dataclasses

        settings = dataclasses.replace(
            self.settings, solve_timeout=ResolverSettings().solve_timeout
        )
        return dataclasses.replace(self.normalised(), archs=(), spec_files=(), settings=settings)

    def lock_echo(self) -> dict[str, Any]:
        """:meth:`for_lock` as the lock's JSON has it."""
        data = self.for_lock().to_dict()
        del data["archs"], data["spec_files"]
        data["settings"].pop("solve_timeout", None)
        return data

    def to_dict(self) -> dict[str, Any]:
        data = self._to_dict()
        # Written only when given, so the specs (and locks) of envs without them are unchanged
        if self.pypi_constraints:
            data["pypi_constraints"] = list(self.pypi_constraints)
        if self.pypi_hashes:
            data["pypi_hashes"] = [[n, h] for n, h in self.pypi_hashes]
        if self.prefer_binary:
            data["prefer_binary"] = True
        return data

    def _to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "archs": list(self.archs),
            "channels": list(self.channels),
            "conda": [d.to_dict() for d in self.conda],
            "pypi": [d.to_dict() for d in self.pypi],
            "python": self.python,
            "pypi_index": self.pypi_index,
            "extra_indexes": list(self.extra_indexes),
            "find_links": list(self.find_links),
            "trusted_hosts": list(self.trusted_hosts),
            "pre": self.pre,
            "no_index": self.no_index,
            "only_binary": list(self.only_binary),
            "no_binary": list(self.no_binary),
            "virtual_packages": {n: v for n, v in self.virtual_packages},
            "spec_files": list(self.spec_files),
            "python_source": self.python_source,
            "settings": self.settings.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EnvSpec:
        return cls(
            name=data["name"],
            archs=tuple(data.get("archs", ())),
            channels=tuple(data["channels"]),
            conda=tuple(Dep.from_dict(d) for d in data["conda"]),
            pypi=tuple(Dep.from_dict(d) for d in data["pypi"]),
            python=data["python"],
            pypi_index=data["pypi_index"],
            extra_indexes=tuple(data["extra_indexes"]),
            find_links=tuple(data["find_links"]),
            trusted_hosts=tuple(data["trusted_hosts"]),
            pre=bool(data["pre"]),
            no_index=bool(data["no_index"]),
            only_binary=tuple(data.get("only_binary", ())),
            no_binary=tuple(data.get("no_binary", ())),
            prefer_binary=bool(data.get("prefer_binary", False)),
            virtual_packages=tuple(sorted(data["virtual_packages"].items())),
            pypi_constraints=tuple(str(c) for c in data.get("pypi_constraints", ())),
            pypi_hashes=tuple((str(n), str(h)) for n, h in data.get("pypi_hashes", ())),
            spec_files=tuple(data.get("spec_files", ())),
            python_source=str(data.get("python_source", "conda")),
            settings=ResolverSettings.from_dict(data["settings"]),
        )


@dataclass(frozen=True, slots=True)
class Workspace:
    """A parsed envbuild.toml: where it is, its shared settings and its environments."""

    root: Path
    envs: tuple[EnvSpec, ...]
    store: str = ".envbuild/store"
    # (key, value) of store-endpoint, store-region, store-profile: added to boto3's config
    store_options: tuple[tuple[str, str], ...] = ()
    locks_dir: str = "locks"
    preferred_format: str = ".conda"  # used by the artifact stage (transmutation)
    local_channels: tuple[tuple[str, str], ...] = ()  # (name, recipes dir) built by a task

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST

    def env(self, name: str) -> EnvSpec:
        for env in self.envs:
            if env.name == name:
                return env
        known = ", ".join(e.name for e in self.envs) or "none"
        raise SpecError([f"{self.manifest.name}: no environment '{name}' (known: {known})"])

    def lock_path(self, env: str, arch: str) -> Path:
        return self.root / self.locks_dir / env / f"{arch}.json"

    @property
    def state_dir(self) -> Path:
        return self.root / ".envbuild"

    def spec_snapshot(self, env: str) -> Path:
        """Where the ``spec`` task writes an env's normalised spec (resolve's file_dep)."""
        return self.state_dir / "specs" / f"{env}.json"

    def local_channel_dir(self, name: str) -> Path:
        """Where the local channel ``name`` is built from its recipes."""
        return self.state_dir / "channels" / name


def load_workspace(root: Path) -> Workspace:
    """Parse ``root/envbuild.toml`` and every spec file it names. Collects all problems."""
    from envbuild.fs import read_utf8
    from envbuild.manifest import parse_manifest

    path = root / MANIFEST
    try:
        text = read_utf8(path, MANIFEST)
    except FileNotFoundError:
        raise SpecError(
            [f"{path}: not found: run envbuild in a workspace directory holding {MANIFEST}"]
        ) from None
    return parse_manifest(text, root, host_arch())
