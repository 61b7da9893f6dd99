"""The Lock model: one resolved env x arch, with deterministic, versioned JSON (de)serialisation."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envbuild.errors import LockError
from envbuild.ids import full_id
from envbuild.spec import EnvSpec

LOCK_VERSION = 1


@dataclass(frozen=True, slots=True)
class EnvId:
    """An environment's identity: what was asked (req_id), what was got (full_id), for which arch."""

    req_id: str
    full_id: str
    arch: str

    def to_dict(self) -> dict[str, str]:
        return {"req_id": self.req_id, "full_id": self.full_id, "arch": self.arch}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EnvId:
        return cls(str(data["req_id"]), str(data["full_id"]), str(data["arch"]))


@dataclass(frozen=True, slots=True)
class LockedPackage:
    """One package of a lock. ``kind`` is ``conda`` or ``pypi``; hashes are lowercase hex."""

    kind: str
    name: str
    version: str
    url: str
    filename: str
    sha256: str
    md5: str = ""
    size: int = 0
    build: str = ""
    build_number: int = 0
    channel: str = ""
    subdir: str = ""
    depends: tuple[str, ...] = ()
    constrains: tuple[str, ...] = ()
    noarch: str = ""
    license: str = ""
    timestamp: int = 0  # ms since the epoch, as in repodata; 0 when absent
    track_features: tuple[str, ...] = ()
    # PyPI packages that must be built into a wheel (sdist, VCS checkout, local path):
    # ``source`` is their identity: the sdist URL (hash in sha256), ``git+URL@COMMIT``
    # (``#subdirectory=...``), or ``path:REL`` relative to the workspace (tree hash in sha256).
    needs_build: bool = False
    source: str = ""

    @property
    def digest(self) -> str:
        """The strongest hash known: sha256, else md5."""
        return self.sha256 or self.md5

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "version": self.version,
            "build": self.build,
            "build_number": self.build_number,
            "channel": self.channel,
            "subdir": self.subdir,
            "url": self.url,
            "filename": self.filename,
            "md5": self.md5,
            "sha256": self.sha256,
            "size": self.size,
            "depends": list(self.depends),
            "constrains": list(self.constrains),
            "noarch": self.noarch,
            "license": self.license,
            "timestamp": self.timestamp,
            "track_features": list(self.track_features),
            "needs_build": self.needs_build,
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LockedPackage:
        return cls(
            kind=data["kind"],
            name=data["name"],
            version=data["version"],
            build=data.get("build", ""),
            build_number=int(data.get("build_number", 0)),
            channel=data.get("channel", ""),
            subdir=data.get("subdir", ""),
            url=data["url"],
            filename=data["filename"],
            md5=data.get("md5", ""),
            sha256=data.get("sha256", ""),
            size=int(data.get("size", 0)),
            depends=tuple(data.get("depends", ())),
            constrains=tuple(data.get("constrains", ())),
            noarch=data.get("noarch", ""),
            license=data.get("license", ""),
            timestamp=int(data.get("timestamp", 0)),
            track_features=tuple(data.get("track_features", ())),
            needs_build=bool(data.get("needs_build", False)),
            source=data.get("source", ""),
        )


@dataclass(frozen=True, slots=True)
class Lock:
    """A resolved environment for one arch: its id, the spec it came from, and its packages."""

    env_id: EnvId
    spec: EnvSpec
    packages: tuple[LockedPackage, ...] = field(default=())
    version: int = LOCK_VERSION
    python_source: str = ""  # "conda" or "host"; "" when the env has no python
    python_version: str = ""  # the exact python version the env was resolved with

    @classmethod
    def build(
        cls,
        spec: EnvSpec,
        arch: str,
        packages: list[LockedPackage],
        python_source: str = "",
        python_version: str = "",
    ) -> Lock:
        """Make a lock, computing its full_id and putting packages in canonical order."""
        ordered = tuple(sorted(packages, key=lambda p: (p.kind, p.name, p.filename, p.source)))
        fid = full_id(((p.filename or p.source, p.digest) for p in ordered), arch)
        if not python_version:
            python_version = next(
                (p.version for p in ordered if p.kind == "conda" and p.name == "python"), ""
            )
            python_source = "conda" if python_version else ""
        return cls(
            EnvId(spec.req_id, fid, arch),
            spec,
            ordered,
            LOCK_VERSION,
            python_source,
            python_version,
        )

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def kind(self) -> str:
        return self.spec.kind

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "env": self.spec.name,
            "kind": self.kind,
            "env_id": self.env_id.to_dict(),
            "spec": self.spec.to_dict(),
            "packages": [p.to_dict() for p in self.packages],
            "python": {"source": self.python_source, "version": self.python_version},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Lock:
        version = data.get("version")
        if version != LOCK_VERSION:
            raise LockError(
                f"lock format version {version!r} is not supported (this envbuild reads "
                f"version {LOCK_VERSION}): re-resolve with `envbuild forget resolve && envbuild resolve`"
            )
        return cls(
            env_id=EnvId.from_dict(data["env_id"]),
            spec=EnvSpec.from_dict(data["spec"]),
            packages=tuple(LockedPackage.from_dict(p) for p in data["packages"]),
            version=version,
            python_source=data.get("python", {}).get("source", ""),
            python_version=data.get("python", {}).get("version", ""),
        )

    def dumps(self) -> str:
        """Deterministic JSON: sorted keys, fixed indentation, trailing newline."""
        return json.dumps(self.to_dict(), sort_keys=True, indent=1, ensure_ascii=False) + "\n"

    @classmethod
    def loads(cls, text: str, where: str = "lock") -> Lock:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise LockError(f"{where}: not valid JSON ({exc}): re-resolve to rewrite it") from exc
        try:
            return cls.from_dict(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise LockError(f"{where}: malformed lock ({exc!r}): re-resolve to rewrite it") from exc


def read_lock(path: Path) -> Lock:
    """Read a lockfile, with a clear error when it does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LockError(f"{path}: no lockfile: run `envbuild resolve` first") from None
    return Lock.loads(text, str(path))
