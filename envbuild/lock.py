"""The Lock model: one resolved env x arch, with deterministic, versioned JSON (de)serialisation."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from envbuild.errors import LockError
from envbuild.ids import full_id
from envbuild.spec import EnvSpec

LOCK_VERSION = 2
SourceKind = Literal["sdist", "vcs", "directory", "archive"]
SOURCE_KINDS: tuple[str, ...] = ("sdist", "vcs", "directory", "archive")


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
class Source:
    """Where a PyPI package that must be built comes from.

    - ``sdist``: an sdist from an index (``url``, ``sha256`` of the file);
    - ``vcs``: a checkout (``vcs`` type, repository ``url``, ``commit``, ``subdirectory``);
    - ``directory``: a local source tree (``path`` relative to the workspace, ``sha256`` of
      the tree as :func:`envbuild.fs.tree_hash` computes it);
    - ``archive``: a local file (``path``) or a direct-URL file (``url``), ``sha256`` of it.

    URLs never hold credentials; paths inside the workspace are relative to it.
    """

    kind: SourceKind
    url: str = ""
    path: str = ""
    vcs: str = ""  # git, hg, svn, bzr
    commit: str = ""
    subdirectory: str = ""
    sha256: str = ""

    @property
    def identity(self) -> str:
        """One string naming the source, as pip writes it: the sdist/archive URL,
        ``git+URL@COMMIT[#subdirectory=DIR]``, or ``path:REL``."""
        if self.kind == "vcs":
            ref = f"{self.vcs}+{self.url}@{self.commit}"
            return ref + (f"#subdirectory={self.subdirectory}" if self.subdirectory else "")
        return self.url if self.url else f"path:{self.path}"

    def to_dict(self) -> dict[str, str]:
        return {k: v for k, v in _source_items(self) if v or k == "kind"}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Source:
        kind = str(data["kind"])
        if kind not in SOURCE_KINDS:
            raise ValueError(f"source kind {kind!r} is not one of {', '.join(SOURCE_KINDS)}")
        return cls(
            kind=kind,  # type: ignore[arg-type]
            url=str(data.get("url", "")),
            path=str(data.get("path", "")),
            vcs=str(data.get("vcs", "")),
            commit=str(data.get("commit", "")),
            subdirectory=str(data.get("subdirectory", "")),
            sha256=str(data.get("sha256", "")),
        )


def _source_items(s: Source) -> list[tuple[str, str]]:
    return [
        ("kind", s.kind),
        ("url", s.url),
        ("path", s.path),
        ("vcs", s.vcs),
        ("commit", s.commit),
        ("subdirectory", s.subdirectory),
        ("sha256", s.sha256),
    ]


# Fields with a default (a lock may omit them), and how from_dict reads them.
_OPTIONAL_DEFAULTS: dict[str, Any] = {
    "md5": "",
    "size": 0,
    "build": "",
    "build_number": 0,
    "channel": "",
    "subdir": "",
    "depends": (),
    "constrains": (),
    "noarch": "",
    "license": "",
    "license_family": "",
    "timestamp": 0,
    "track_features": (),
    "features": "",
    "arch": "",
    "platform": "",
    "legacy_bz2_md5": "",
    "legacy_bz2_size": 0,
    "python_site_packages_path": "",
    "index": "",
}
_TUPLES = ("depends", "constrains", "track_features")
_INTS = ("size", "build_number", "timestamp", "legacy_bz2_size")


@dataclass(frozen=True, slots=True)
class LockedPackage:
    """One package of a lock. ``kind`` is ``conda`` or ``pypi``; hashes are lowercase hex.

    Conda packages keep every repodata field rattler needs to rebuild the
    ``RepoDataRecord`` that installs them. PyPI packages keep the index they came from
    (``index``, no credentials) and, when they must be built into a wheel, a ``source``.
    """

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
    license_family: str = ""
    timestamp: int = 0  # ms since the epoch, as in repodata; 0 when absent
    track_features: tuple[str, ...] = ()
    features: str = ""
    arch: str = ""
    platform: str = ""
    legacy_bz2_md5: str = ""
    legacy_bz2_size: int = 0
    python_site_packages_path: str = ""
    index: str = ""  # PyPI: the index URL the file was found on ("" for find-links/direct)
    source: Source | None = None  # PyPI: set when the package must be built

    @property
    def needs_build(self) -> bool:
        return self.source is not None

    @property
    def digest(self) -> str:
        """The strongest hash known: sha256, else md5."""
        return self.sha256 or self.md5

    @property
    def identity(self) -> str:
        """What names the package's file in the full_id: its filename, else its source."""
        return self.filename or (self.source.identity if self.source else "")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "name": self.name,
            "version": self.version,
            "url": self.url,
            "filename": self.filename,
            "sha256": self.sha256,
        }
        for key in _OPTIONAL_DEFAULTS:
            value = getattr(self, key)
            out[key] = list(value) if key in _TUPLES else value
        out["source"] = self.source.to_dict() if self.source is not None else None
        out["needs_build"] = self.needs_build  # derived from source, for readers of the JSON
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LockedPackage:
        extra: dict[str, Any] = {}
        for key in _OPTIONAL_DEFAULTS:
            if key in data:
                value = data[key]
                if key in _TUPLES:
                    value = tuple(str(v) for v in value)
                elif key in _INTS:
                    value = int(value)
                else:
                    value = str(value)
                extra[key] = value
        source = data.get("source")
        return cls(
            kind=str(data["kind"]),
            name=str(data["name"]),
            version=str(data["version"]),
            url=str(data["url"]),
            filename=str(data["filename"]),
            sha256=str(data.get("sha256", "")),
            source=Source.from_dict(source) if source else None,
            **extra,
        )


@dataclass(frozen=True, slots=True)
class Lock:
    """A resolved environment for one arch: its id, the inputs it was resolved from, the
    normalised spec (without archs and spec-file names: they are not resolve inputs), and
    its packages."""

    env_id: EnvId
    spec: EnvSpec
    packages: tuple[LockedPackage, ...] = field(default=())
    version: int = LOCK_VERSION
    python_source: str = ""  # "conda" or "host"; "" when the env has no python
    python_version: str = ""  # the python version the env was resolved with
    inputs: Mapping[str, Any] = field(default_factory=dict)  # freshness.Inputs.to_dict()

    @classmethod
    def build(
        cls,
        spec: EnvSpec,
        arch: str,
        packages: list[LockedPackage],
        python_source: str = "",
        python_version: str = "",
        inputs: Mapping[str, Any] | None = None,
    ) -> Lock:
        """Make a lock, computing its full_id and putting packages in canonical order."""
        ordered = tuple(sorted(packages, key=lambda p: (p.kind, p.name, p.filename, p.identity)))
        if not python_version:
            python_version = next(
                (p.version for p in ordered if p.kind == "conda" and p.name == "python"), ""
            )
            python_source = "conda" if python_version else ""
        return cls(
            EnvId(spec.req_id, package_full_id(ordered, arch), arch),
            spec.for_lock(),
            ordered,
            LOCK_VERSION,
            python_source,
            python_version,
            dict(inputs or {}),
        )

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def damaged(self) -> bool:
        """True when the packages do not give the recorded full_id (hand-edited or
        merge-damaged) or the spec does not give the recorded req_id."""
        return (
            package_full_id(self.packages, self.env_id.arch) != self.env_id.full_id
            or self.spec.req_id != self.env_id.req_id
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "env": self.spec.name,
            "kind": self.kind,
            "env_id": self.env_id.to_dict(),
            "inputs": dict(self.inputs),
            "spec": self.spec.lock_echo(),
            "packages": [p.to_dict() for p in self.packages],
            "python": {"source": self.python_source, "version": self.python_version},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Lock:
        version = data.get("version")
        if version != LOCK_VERSION:
            raise LockError(
                f"lock format version {version!r} is older than this envbuild's "
                f"({LOCK_VERSION}): `envbuild resolve` rewrites it"
                if isinstance(version, int) and version < LOCK_VERSION
                else f"lock format version {version!r} is not supported (this envbuild "
                f"reads version {LOCK_VERSION}): upgrade envbuild, or re-resolve"
            )
        return cls(
            env_id=EnvId.from_dict(data["env_id"]),
            spec=EnvSpec.from_dict(data["spec"]),
            packages=tuple(LockedPackage.from_dict(p) for p in data["packages"]),
            version=version,
            python_source=data.get("python", {}).get("source", ""),
            python_version=data.get("python", {}).get("version", ""),
            inputs=dict(data.get("inputs", {})),
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
        if not isinstance(data, dict):
            raise LockError(f"{where}: not a lock (a JSON object): re-resolve to rewrite it")
        try:
            return cls.from_dict(data)
        except LockError as exc:
            raise LockError(f"{where}: {exc}") from None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise LockError(f"{where}: malformed lock ({exc!r}): re-resolve to rewrite it") from exc


def package_full_id(packages: tuple[LockedPackage, ...], arch: str) -> str:
    """The full_id of a package list for ``arch`` (see docs/ids.md)."""
    return full_id(((p.identity, p.digest) for p in packages), arch)


def read_lock(path: Path) -> Lock:
    """Read a lockfile, with a clear error when it does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LockError(f"{path}: no lockfile: run `envbuild resolve` first") from None
    except UnicodeDecodeError:
        raise LockError(f"{path}: not UTF-8 text: re-resolve to rewrite it") from None
    return Lock.loads(text, str(path))
