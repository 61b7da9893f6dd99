"""Joining conda and PyPI: which conda packages are Python distributions, and pinning the PyPI
resolution to them with metadata-only stub wheels (so PyPI never replaces or duplicates them)."""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from collections.abc import Iterable
from pathlib import Path

from envbuild.lock import LockedPackage

# conda package name -> PyPI distribution name, where they differ (compared normalised).
CONDA_TO_PYPI: dict[str, str] = {
    "pytorch": "torch",
    "pytorch-cpu": "torch",
    "pytorch-gpu": "torch",
    "matplotlib-base": "matplotlib",
    "msgpack-python": "msgpack",
    "pytables": "tables",
    "py-opencv": "opencv-python",
    "pyqt": "pyqt5",
    "tensorflow-base": "tensorflow",
    "tensorflow-cpu": "tensorflow",
    "python-kubernetes": "kubernetes",
    "python-graphviz": "graphviz",
    "python-lmdb": "lmdb",
    "python-xxhash": "xxhash",
    "google-cloud-bigquery-core": "google-cloud-bigquery",
    "ruamel_yaml": "ruamel.yaml",
    "typing_extensions": "typing-extensions",
    "jupyter_core": "jupyter-core",
    "importlib_metadata": "importlib-metadata",
    "libxgboost": "",  # not a Python distribution
    "py-xgboost": "xgboost",
    "pyarrow-core": "pyarrow",
    "numpy-base": "",
}
# Conda packages that depend on python but are not Python distributions.
NOT_DISTRIBUTIONS = frozenset({"python", "python_abi", "libpython-static", "python-freethreading"})


def python_distributions(packages: Iterable[LockedPackage]) -> dict[str, str]:
    """PyPI name -> version for every conda package that is a Python distribution: noarch
    python packages and packages depending on python, mapped through CONDA_TO_PYPI."""
    from packaging.utils import canonicalize_name
    from packaging.version import InvalidVersion, Version

    out: dict[str, str] = {}
    for pkg in packages:
        if pkg.kind != "conda" or pkg.name in NOT_DISTRIBUTIONS:
            continue
        depends_on_python = any(d.split(" ", 1)[0] == "python" for d in pkg.depends)
        if pkg.noarch != "python" and not depends_on_python:
            continue
        name = CONDA_TO_PYPI.get(pkg.name, pkg.name)
        if not name:
            continue
        try:
            version = str(Version(pkg.version))
        except InvalidVersion:
            continue  # not a PEP 440 version: PyPI could not be pinned to it anyway
        out[canonicalize_name(name)] = version
    return dict(sorted(out.items()))


def write_stub_wheels(dists: dict[str, str], out_dir: Path) -> None:
    """A metadata-only ``name-version-py3-none-any.whl`` per distribution, with no
    dependencies: offered to the PyPI resolver as already-present packages."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, version in dists.items():
        dist = name.replace("-", "_")
        info = f"{dist}-{version}.dist-info"
        files = {
            f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
            f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: envbuild\nRoot-Is-Purelib: true\n"
            "Tag: py3-none-any\n",
        }
        record = "".join(
            f"{path},sha256={_b64(hashlib.sha256(text.encode()).digest())},{len(text.encode())}\n"
            for path, text in files.items()
        )
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as zf:
            for path, text in files.items():
                zf.writestr(zipfile.ZipInfo(path, (2020, 1, 1, 0, 0, 0)), text)
            zf.writestr(
                zipfile.ZipInfo(f"{info}/RECORD", (2020, 1, 1, 0, 0, 0)),
                record + f"{info}/RECORD,,\n",
            )
        (out_dir / f"{dist}-{version}-py3-none-any.whl").write_bytes(buffer.getvalue())


def _b64(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
