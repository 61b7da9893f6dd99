"""The env descriptor: a lock plus, for every package, the store key and hash of the file to install."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from envbuild.errors import EnvbuildError
from envbuild.lock import Lock

DESCRIPTOR_VERSION = 1


class DescriptorError(EnvbuildError):
    """A descriptor that cannot be read."""


@dataclass(frozen=True, slots=True)
class InstallFile:
    """The file that installs one package of the lock: the locked file itself, its
    transmuted form (``original_*`` then name the locked file), or a built wheel
    (``built_from``: the source identity it was built from)."""

    kind: str  # conda or pypi
    name: str
    filename: str
    sha256: str
    size: int
    key: str  # its store key
    original_filename: str = ""
    original_sha256: str = ""
    built_from: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "name": self.name,
            "filename": self.filename,
            "sha256": self.sha256,
            "size": self.size,
            "key": self.key,
        }
        if self.original_filename:
            out["original"] = {"filename": self.original_filename, "sha256": self.original_sha256}
        if self.built_from:
            out["built_from"] = self.built_from
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InstallFile:
        original = data.get("original") or {}
        return cls(
            kind=str(data["kind"]),
            name=str(data["name"]),
            filename=str(data["filename"]),
            sha256=str(data["sha256"]),
            size=int(data.get("size", 0)),
            key=str(data["key"]),
            original_filename=str(original.get("filename", "")),
            original_sha256=str(original.get("sha256", "")),
            built_from=str(data.get("built_from", "")),
        )


@dataclass(frozen=True, slots=True)
class Descriptor:
    """What the store knows of one env x arch: written only after all its files exist."""

    lock: Lock
    files: tuple[InstallFile, ...] = field(default=())
    version: int = DESCRIPTOR_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "env_id": self.lock.env_id.to_dict(),
            "lock": self.lock.to_dict(),
            "files": [f.to_dict() for f in sorted(self.files, key=lambda f: (f.kind, f.name))],
        }

    def dumps(self) -> bytes:
        """Deterministic JSON bytes."""
        text = json.dumps(self.to_dict(), sort_keys=True, indent=1, ensure_ascii=False) + "\n"
        return text.encode("utf-8")

    @classmethod
    def loads(cls, data: bytes, where: str) -> Descriptor:
        try:
            doc = json.loads(data)
            if doc.get("version") != DESCRIPTOR_VERSION:
                raise DescriptorError(
                    f"{where}: descriptor version {doc.get('version')!r} is not "
                    f"{DESCRIPTOR_VERSION}: upgrade envbuild"
                )
            return cls(
                lock=Lock.from_dict(doc["lock"]),
                files=tuple(InstallFile.from_dict(f) for f in doc["files"]),
            )
        except DescriptorError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError, EnvbuildError) as exc:
            raise DescriptorError(f"{where}: not a readable descriptor ({exc})") from None
