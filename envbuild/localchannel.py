"""Local channels built from recipe files: real .conda/.tar.bz2 packages, indexed with rattler."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envbuild.errors import SpecError, toml_problem
from envbuild.fs import make_dir_mode_default, read_utf8, temp_dir
from envbuild.platforms import ARCHS

log = logging.getLogger(__name__)
EPOCH = 1_700_000_000  # fixed mtime and timestamp: the same recipe gives the same bytes
_RECIPE_KEYS = {"name", "version", "build", "build_number", "subdirs", "noarch", "depends",
                "constrains", "license", "format", "files", "timestamp"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Recipe:
    """A package to build: metadata, target subdirs (or noarch) and file contents."""

    name: str
    version: str
    build: str = "0"
    build_number: int = 0
    subdirs: tuple[str, ...] = ()
    noarch: str = ""  # "generic" for noarch packages
    depends: tuple[str, ...] = ()
    constrains: tuple[str, ...] = ()
    license: str = "MIT"
    format: str = ".conda"
    files: tuple[tuple[str, str], ...] = field(default=())
    timestamp: int = EPOCH  # build time in index.json, seconds since 1970 (exclude-newer reads it)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str) -> Recipe:
        problems = [f"{where}: unknown key '{k}'" for k in data if k not in _RECIPE_KEYS]
        for key in ("name", "version"):
            if not isinstance(data.get(key), str):
                problems.append(f"{where}: '{key}' must be a string")
        subdirs = tuple(data.get("subdirs", ()))
        problems += [
            f"{where}: subdir '{s}' is not one of {', '.join(ARCHS)}"
            for s in subdirs
            if s not in ARCHS
        ]
        if bool(subdirs) == bool(data.get("noarch")):
            problems.append(f'{where}: give either subdirs = [...] or noarch = "generic"')
        number = data.get("build_number", 0)
        if not isinstance(number, int) or isinstance(number, bool) or number < 0:
            problems.append(f"{where}: build_number must be a whole number, like build_number = 0")
        for key in ("depends", "constrains", "subdirs"):
            value = data.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                problems.append(f'{where}: {key} must be a list of strings, like {key} = ["..."]')
        if not isinstance(data.get("files", {}), dict):
            problems.append(
                f'{where}: files must map paths to contents, like files = {{"a" = "text"}}'
            )
        if data.get("format", ".conda") not in (".conda", ".tar.bz2"):
            problems.append(f"{where}: format must be .conda or .tar.bz2")
        stamp = data.get("timestamp", EPOCH)
        if not isinstance(stamp, int) or isinstance(stamp, bool) or stamp < 0:
            problems.append(f"{where}: timestamp must be whole seconds since 1970, like {EPOCH}")
        if problems:
            raise SpecError(problems)
        return cls(
            name=data["name"],
            version=data["version"],
            build=str(data.get("build", "0")),
            build_number=int(data.get("build_number", 0)),
            subdirs=subdirs,
            noarch=str(data.get("noarch", "")),
            depends=tuple(data.get("depends", ())),
            constrains=tuple(data.get("constrains", ())),
            license=str(data.get("license", "MIT")),
            format=str(data.get("format", ".conda")),
            files=tuple(sorted((str(k), str(v)) for k, v in data.get("files", {}).items())),
            timestamp=stamp,
        )

    def filename(self) -> str:
        return f"{self.name}-{self.version}-{self.build}{self.format}"


def load_recipes(recipes_dir: Path) -> list[Recipe]:
    """Every ``*.toml`` recipe in ``recipes_dir`` (a file may hold several ``[[package]]``)."""
    recipes: list[Recipe] = []
    problems: list[str] = []
    for path in sorted(recipes_dir.glob("*.toml")):
        shown = f"{recipes_dir.name}/{path.name}"
        try:
            text = read_utf8(path, shown)
            data = tomllib.loads(text)
        except SpecError as exc:
            problems += exc.problems
            continue
        except tomllib.TOMLDecodeError as exc:
            problems.append(toml_problem(shown, exc, text))
            continue
        packages = data.get("package", [data])
        if not isinstance(packages, list) or not all(isinstance(p, dict) for p in packages):
            problems.append(f"{shown}: [[package]] must be tables of recipes")
            continue
        for i, pkg in enumerate(packages):
            try:
                recipes.append(Recipe.from_dict(pkg, f"{path.name} package {i + 1}"))
            except SpecError as exc:
                problems += exc.problems
    if problems:
        raise SpecError(problems)
    return recipes


def build_package(recipe: Recipe, subdir: str, out_dir: Path) -> Path:
    """Build one package file for ``subdir`` into ``out_dir`` with conda-package-handling."""
    from conda_package_handling import api

    out_dir.mkdir(parents=True, exist_ok=True)
    with temp_dir("package-") as tmp:
        prefix = Path(tmp)
        paths = []
        for rel, content in recipe.files:
            target = prefix / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            raw = content.encode("utf-8")
            target.write_bytes(raw)
            paths.append(
                {
                    "_path": rel,
                    "path_type": "hardlink",
                    "sha256": hashlib.sha256(raw).hexdigest(),
                    "size_in_bytes": len(raw),
                }
            )
        index = {
            "name": recipe.name, "version": recipe.version, "build": recipe.build,
            "build_number": recipe.build_number, "depends": list(recipe.depends),
            "constrains": list(recipe.constrains), "license": recipe.license,
            "subdir": subdir, "timestamp": recipe.timestamp * 1000,
        }  # fmt: skip
        if recipe.noarch:
            index["noarch"] = recipe.noarch
        else:
            index["arch"], index["platform"] = _arch_platform(subdir)
        info = prefix / "info"
        info.mkdir()
        (info / "index.json").write_text(json.dumps(index, indent=2, sort_keys=True))
        (info / "paths.json").write_text(json.dumps({"paths": paths, "paths_version": 1}, indent=2))
        (info / "files").write_text("".join(f"{rel}\n" for rel, _ in recipe.files))
        files = sorted(str(p.relative_to(prefix)) for p in prefix.rglob("*") if p.is_file())
        for p in prefix.rglob("*"):
            os.utime(p, (EPOCH, EPOCH))
        api.create(str(prefix), files, recipe.filename(), out_folder=str(out_dir.resolve()))
    if recipe.format == ".conda":
        _fix_zip_times(out_dir / recipe.filename())
    return out_dir / recipe.filename()


def _fix_zip_times(path: Path) -> None:
    """Rewrite a .conda (a zip) with fixed entry times so builds are byte-reproducible."""
    import time
    import zipfile

    stamp = time.gmtime(EPOCH)[:6]
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=stamp)
            fixed.compress_type = info.compress_type
            fixed.external_attr = info.external_attr
            dst.writestr(fixed, src.read(info.filename))
    os.replace(tmp, path)


def _arch_platform(subdir: str) -> tuple[str, str]:
    os_name, _, machine = subdir.partition("-")
    return {"64": "x86_64", "aarch64": "aarch64", "arm64": "arm64"}[machine], os_name


def build_channel(recipes_dir: Path, channel_dir: Path) -> None:
    """Build every recipe of ``recipes_dir`` into ``channel_dir`` and index it (atomically:
    the channel is assembled beside its final place and swapped in)."""
    recipes = load_recipes(recipes_dir)
    channel_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{channel_dir.name}.", dir=channel_dir.parent))
    make_dir_mode_default(staging)
    try:
        (staging / "noarch").mkdir()
        for recipe in recipes:
            for subdir in recipe.subdirs or ("noarch",):
                build_package(recipe, subdir, staging / subdir)
        index_channel(staging)
        (staging / BUILT_FROM).write_text(recipes_hash(recipes_dir) + "\n", encoding="utf-8")
        old = channel_dir.with_name(channel_dir.name + ".old")
        if channel_dir.exists():
            channel_dir.rename(old)
        staging.rename(channel_dir)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("built channel %s from %d recipes", channel_dir, len(recipes))


def index_channel(channel_dir: Path) -> None:
    """Index ``channel_dir`` with rattler, then set each record's ``indexed_timestamp`` (the
    upload time, which rattler sets to now and exclude-newer reads first) to the time of its
    recipe: the repodata is then the same on every build, and exclude-newer keeps a local
    package whose recipe time is before the cutoff."""
    import asyncio

    from rattler.index import index_fs

    asyncio.run(index_fs(channel_dir, write_zst=False, write_shards=False, force=True))
    for repodata in sorted(channel_dir.glob("*/repodata.json")):
        data = json.loads(repodata.read_text(encoding="utf-8"))
        for key in ("packages", "packages.conda"):
            for record in data.get(key, {}).values():
                if "timestamp" in record:
                    record["indexed_timestamp"] = record["timestamp"]
        repodata.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


BUILT_FROM = ".built-from"  # in a built channel: the hash of the recipes it was built from


def recipes_hash(recipes_dir: Path) -> str:
    """The content hash of a recipes directory (what a built channel is made from)."""
    from envbuild.fs import tree_hash

    return tree_hash(recipes_dir)


def is_built(recipes_dir: Path, channel_dir: Path) -> bool:
    """True when ``channel_dir`` was built from the recipes as they are now (decided from
    the files: the channel records the hash of its recipes)."""
    try:
        built = (channel_dir / BUILT_FROM).read_text(encoding="utf-8").strip()
    except OSError:
        return False
    return built == recipes_hash(recipes_dir)


def channel_targets(channel_dir: Path, recipes: list[Recipe]) -> list[Path]:
    """The repodata files a built channel has (the build task's targets)."""
    subdirs = {"noarch"} | {s for r in recipes for s in r.subdirs}
    return [channel_dir / s / "repodata.json" for s in sorted(subdirs)]
