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
from envbuild.pypi_names import pypi_name

# Conda packages that depend on python but are not Python distributions.
NOT_DISTRIBUTIONS = frozenset({"python", "python_abi", "libpython-static", "python-freethreading"})


def python_distributions(packages: Iterable[LockedPackage]) -> dict[str, str]:
    """PyPI name -> version for every conda package that is a Python distribution: noarch
    python packages and packages depending on python, their names mapped by
    ``envbuild.pypi_names`` (e.g. ``pytorch`` -> ``torch``)."""
    from packaging.utils import canonicalize_name
    from packaging.version import InvalidVersion, Version

    out: dict[str, str] = {}
    for pkg in packages:
        if pkg.kind != "conda" or pkg.name in NOT_DISTRIBUTIONS:
            continue
        depends_on_python = any(d.split(" ", 1)[0] == "python" for d in pkg.depends)
        if pkg.noarch != "python" and not depends_on_python:
            continue
        try:
            version = str(Version(pkg.version))
        except InvalidVersion:
            continue  # not a PEP 440 version: PyPI could not be pinned to it anyway
        name = pypi_name(pkg.name, version)
        if not name:
            continue
        out[canonicalize_name(name)] = version
    return dict(sorted(out.items()))


def write_stub_wheels(dists: dict[str, str], out_dir: Path) -> dict[str, Path]:
    """A metadata-only ``name-version-py3-none-any.whl`` per distribution, with no
    dependencies: offered to the PyPI resolver as already-present packages. Returns
    name -> wheel path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
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
        out[name] = out_dir / f"{dist}-{version}-py3-none-any.whl"
        out[name].write_bytes(buffer.getvalue())
    return out


def explain_conda_pins(text: str, stub_wheels: Iterable[tuple[str, Path]]) -> str:
    """A resolver's error with each stub's path shown as ``conda:FILE``, and a last line
    naming the conda-provided distributions it mentions (PyPI cannot change those)."""
    from packaging.utils import parse_wheel_filename

    mentioned = []
    for name, path in stub_wheels:
        shown = f"conda:{path.name}"
        for form in (path.resolve().as_uri(), str(path.resolve()), str(path)):
            text = text.replace(form, shown)
        version = str(parse_wheel_filename(path.name)[1])
        if shown in text or f"{name}=={version}" in text:
            mentioned.append(f"{name} {version}")
    if mentioned:
        text += (
            f"\n{', '.join(mentioned)}: provided by the conda packages of this env, so PyPI "
            "cannot change it: change the conda spec or the PyPI requirement that conflicts"
        )
    return text


def _b64(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
