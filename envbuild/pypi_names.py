"""Conda package name -> PyPI distribution name, from a table derived from grayskull's mapping."""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import logging
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from envbuild.errors import EnvbuildError, format_error
from envbuild.fs import atomic_write, temp_dir
from envbuild.runner import Runner, run

log = logging.getLogger(__name__)

TABLE_FILE = "conda_pypi_names.json"  # in envbuild/data/ (package data)
SOURCE_PACKAGE = "conda-pypi"  # the PyPI wheel that ships grayskull's mapping
SOURCE_MEMBER = "conda_pypi/grayskull_pypi_mapping.json"
# envbuild's own additions, for conda packages grayskull does not map (they win over it).
# "" means "depends on python but is not a Python distribution": never pinned on PyPI.
EXTRA_NAMES: Mapping[str, str] = {
    "google-cloud-bigquery-core": "google-cloud-bigquery",
    "libxgboost": "",
    "numpy-base": "",
    "py-opencv": "opencv-python",
    "py-xgboost": "xgboost",
    "pyarrow-core": "pyarrow",
    "python-lmdb": "lmdb",
    "pytorch-cpu": "torch",
    "pytorch-gpu": "torch",
    "tensorflow-base": "tensorflow",
    "tensorflow-cpu": "tensorflow",
}
# grayskull holds a few machine-made PyPI names that are hex digests, not projects.
_JUNK_NAME = re.compile(r"[0-9a-f]{32,}")


class PypiNamesError(EnvbuildError):
    """The name table or its source (the conda-pypi wheel) is missing or malformed."""


@dataclass(frozen=True, slots=True)
class NameTable:
    """The loaded table: ``names`` maps a conda name to its canonical PyPI name ("" for
    no PyPI name); ``ranges`` maps a conda name to ``(min, max, pypi)`` version ranges
    (``min <= version < max``) for names whose PyPI name depends on the version."""

    names: Mapping[str, str]
    ranges: Mapping[str, tuple[tuple[str, str, str], ...]]
    version: str  # see mapping_version()


def _canonical(name: str) -> str:
    from packaging.utils import canonicalize_name

    return str(canonicalize_name(name))


def table_path() -> Path:
    """The shipped table (package data of ``envbuild``) in the source tree or install."""
    return Path(str(resources.files("envbuild") / "data" / TABLE_FILE))


# Process-global state: the table is read from the package data once, on first use, and
# never changes afterwards (regenerating it needs a new process to take effect).
@functools.cache
def load_table() -> NameTable:
    """The shipped table, read once per process."""
    path = resources.files("envbuild") / "data" / TABLE_FILE
    try:
        raw = path.read_bytes()
        data = json.loads(raw)
        names = {str(k): str(v) for k, v in data["names"].items()}
        ranges = {
            str(k): tuple((str(lo), str(hi), str(n)) for lo, hi, n in v)
            for k, v in data["ranges"].items()
        }
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PypiNamesError(
            f"{path}: cannot read the conda -> PyPI name table ({exc}): reinstall envbuild "
            "or run `python -m envbuild.pypi_names regenerate`"
        ) from None
    return NameTable(names, ranges, "sha256:" + hashlib.sha256(raw).hexdigest())


def mapping_version() -> str:
    """``sha256:<hex>`` of the shipped table file: changes whenever any name mapping does
    (for the inputs hash of a lock)."""
    return load_table().version


def pypi_name(conda_name: str, version: str = "") -> str:
    """The canonical PyPI name of conda package ``conda_name`` (at ``version``, for the few
    names that depend on it); "" when it has no PyPI name. Unknown names map to themselves."""
    from packaging.version import InvalidVersion, Version

    table = load_table()
    if version and conda_name in table.ranges:
        try:
            v = Version(version)
            for lo, hi, name in table.ranges[conda_name]:
                if Version(lo) <= v < Version(hi):
                    return name
        except InvalidVersion:
            pass
    return table.names.get(conda_name, _canonical(conda_name))


def build_table(
    grayskull: Mapping[str, Any],
    source: Mapping[str, str],
    extras: Mapping[str, str] = EXTRA_NAMES,
) -> bytes:
    """The compact table (deterministic bytes) from grayskull's mapping (``{pypi_name:
    {"conda_name", "pypi_name", ["delimiter_min", "delimiter_max"]}}``): only conda names
    whose PyPI name differs once both are canonicalised, then ``extras``. A conda name with
    several PyPI names keeps itself if it is one of them, else the version ranges when
    grayskull gives them (the default is the newest range), else the first name in order."""
    candidates: dict[str, set[tuple[str, str, str]]] = {}
    for entry in grayskull.values():
        if not isinstance(entry, Mapping):
            continue
        conda, pypi = entry.get("conda_name"), entry.get("pypi_name")
        if not isinstance(conda, str) or not isinstance(pypi, str) or not conda or not pypi:
            continue
        if _JUNK_NAME.fullmatch(pypi):
            continue
        low, high = str(entry.get("delimiter_min") or ""), str(entry.get("delimiter_max") or "")
        candidates.setdefault(conda, set()).add((_canonical(pypi), low, high))
    names: dict[str, str] = {}
    ranges: dict[str, list[list[str]]] = {}
    for conda, found in candidates.items():
        pypi_names = sorted({name for name, _, _ in found})
        ranged = [(lo, hi, name) for name, lo, hi in found if lo and hi]
        if _canonical(conda) in pypi_names:
            continue
        if len(pypi_names) > 1 and len(ranged) == len(found):
            ranged.sort(key=lambda r: _version_key(r[0]))
            ranges[conda] = [list(r) for r in ranged]
            names[conda] = ranged[-1][2]
        else:
            names[conda] = pypi_names[0]
    for conda, pypi in extras.items():
        names[conda] = _canonical(pypi) if pypi else ""
        ranges.pop(conda, None)
    names = {k: v for k, v in names.items() if v != _canonical(k)}
    doc = {
        "about": "conda package name -> PyPI name where they differ (canonicalised); '' = "
        "no PyPI name. Generated by `python -m envbuild.pypi_names regenerate`: do not edit.",
        "source": dict(source),
        "names": names,
        "ranges": ranges,
    }
    return (json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=True) + "\n").encode()


def _version_key(text: str) -> Any:
    from packaging.version import InvalidVersion, Version

    try:
        return (0, Version(text))
    except InvalidVersion:
        return (1, text)


def table_from_wheel(wheel: Path) -> bytes:
    """The table built from a conda-pypi wheel file."""
    import zipfile

    from packaging.utils import InvalidWheelFilename, parse_wheel_filename

    try:
        _, version, _, _ = parse_wheel_filename(wheel.name)
        with zipfile.ZipFile(wheel) as zf:
            raw = zf.read(SOURCE_MEMBER)
        grayskull = json.loads(raw)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, InvalidWheelFilename) as exc:
        raise PypiNamesError(
            f"{wheel}: not a {SOURCE_PACKAGE} wheel holding {SOURCE_MEMBER} ({exc}): pass "
            f"the wheel of `pip download --no-deps {SOURCE_PACKAGE}`"
        ) from None
    if not isinstance(grayskull, dict):
        raise PypiNamesError(f"{wheel}: {SOURCE_MEMBER} is not a JSON object")
    source = {
        "package": SOURCE_PACKAGE,
        "version": str(version),
        "file": SOURCE_MEMBER,
        "sha256": hashlib.sha256(raw).hexdigest(),
        "entries": str(len(grayskull)),
    }
    return build_table(grayskull, source)


def download_wheel(directory: Path, version: str = "", runner: Runner = run) -> Path:
    """``pip download --no-deps conda-pypi`` (the user's pip configuration applies) into
    ``directory``; returns the wheel."""
    requirement = f"{SOURCE_PACKAGE}=={version}" if version else SOURCE_PACKAGE
    runner(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
         "--disable-pip-version-check", "--quiet", "--dest", str(directory), requirement],
        timeout=600,
    )  # fmt: skip
    wheels = sorted(directory.glob("*.whl"))
    if len(wheels) != 1:
        raise PypiNamesError(
            f"pip download {requirement} left {len(wheels)} wheels in {directory}, expected one"
        )
    return wheels[0]


def regenerate(
    output: Path, wheel: Path | None = None, version: str = "", runner: Runner = run
) -> Path:
    """Write the table built from ``wheel`` (downloaded when None) to ``output``."""
    if wheel is None:
        with temp_dir("conda-pypi-") as tmp:
            data = table_from_wheel(download_wheel(Path(tmp), version, runner))
    else:
        data = table_from_wheel(wheel)
    atomic_write(output, data)
    log.info("wrote %s (%d bytes)", output, len(data))
    return output


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m envbuild.pypi_names regenerate [--wheel PATH] [--version V] [--output P]``."""
    parser = argparse.ArgumentParser(prog="python -m envbuild.pypi_names", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    regen = sub.add_parser("regenerate", help=f"rebuild the table from the {SOURCE_PACKAGE} wheel")
    regen.add_argument("--wheel", type=Path, help=f"a downloaded {SOURCE_PACKAGE} wheel")
    regen.add_argument("--version", default="", help=f"the {SOURCE_PACKAGE} version to download")
    regen.add_argument("--output", type=Path, default=None, help="default: the shipped table")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        out = regenerate(args.output or table_path(), args.wheel, args.version)
    except EnvbuildError as exc:
        sys.stderr.write(format_error(str(exc)))
        return exc.exit_code
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
