"""Pure helpers for local PyPI test data: real wheels, sdists, source trees and git repos,
and PEP 503 "simple" (optionally PEP 691 JSON) indexes and find-links directories.

Everything here is deterministic (fixed zip/tar timestamps, fixed git identities and dates),
so file hashes and git commit ids are stable from run to run. Source distributions, source
trees and git repos carry an IN-TREE PEP 517 backend (``backend.py``, ``requires = []``), so
frontends (uv, pip) can build them without downloading anything.

Nothing here contacts the network or starts servers (see the fixtures in ``conftest.py``).
"""

from __future__ import annotations

import base64
import csv
import gzip
import hashlib
import html
import io
import itertools
import json
import os
import shutil
import subprocess
import tarfile
import tomllib
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from packaging.utils import (
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version

ZIP_DATE = (1980, 1, 1, 0, 0, 0)
TAR_MTIME = 315532800  # 1980-01-01T00:00:00Z
GIT_DATE = 1704067200  # 2024-01-01T00:00:00Z; commit n is dated GIT_DATE + n minutes


# --------------------------------------------------------------------------- names


def normalize_name(name: str) -> str:
    """PEP 503 normalised project name (``Foo_Bar.baz`` -> ``foo-bar-baz``)."""
    return str(canonicalize_name(name))


def dist_filename_name(name: str) -> str:
    """The distribution name as it appears in wheel/sdist file names (``foo_bar_baz``)."""
    return normalize_name(name).replace("-", "_")


def module_name(name: str) -> str:
    """The import package a made distribution contains (``foo-bar`` -> ``foo_bar``)."""
    return dist_filename_name(name)


def normalize_version(version: str) -> str:
    return str(Version(version))


def expand_tag(tag: str) -> list[str]:
    """Expand a compressed tag set: ``cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64``
    -> ``["cp311-cp311-manylinux_2_17_x86_64", "cp311-cp311-manylinux2014_x86_64"]``."""
    parts = tag.split("-")
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"not a wheel tag (python-abi-platform): {tag!r}")
    pys, abis, plats = (p.split(".") for p in parts)
    return ["-".join(t) for t in itertools.product(pys, abis, plats)]


def wheel_filename(name: str, version: str, tag: str = "py3-none-any") -> str:
    return f"{dist_filename_name(name)}-{normalize_version(version)}-{tag}.whl"


def sdist_filename(name: str, version: str) -> str:
    """PEP 625 sdist name: ``{normalised_name}-{version}.tar.gz`` (also the top directory)."""
    return f"{dist_filename_name(name)}-{normalize_version(version)}.tar.gz"


def sha256_hex(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _record_hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


# --------------------------------------------------------------------------- metadata


def core_metadata(
    name: str,
    version: str,
    requires: Iterable[str] = (),
    *,
    metadata_version: str = "2.1",
    requires_python: str | None = None,
    extra_metadata: str = "",
    dynamic: Sequence[str] = (),
) -> str:
    """A METADATA / PKG-INFO document (RFC 822 style, no body)."""
    lines = [
        f"Metadata-Version: {metadata_version}",
        f"Name: {name}",
        f"Version: {normalize_version(version)}",
        "Summary: test distribution",
    ]
    if requires_python:
        lines.append(f"Requires-Python: {requires_python}")
    lines += [f"Dynamic: {d}" for d in dynamic]
    lines += [f"Requires-Dist: {req}" for req in requires]
    text = "\n".join(lines) + "\n"
    extra = extra_metadata.strip("\n")
    return text + (extra + "\n" if extra else "")


def _wheel_file(tag: str) -> str:
    purelib = tag.split("-")[-1] == "any"
    lines = [
        "Wheel-Version: 1.0",
        "Generator: envbuild-tests (1.0)",
        f"Root-Is-Purelib: {'true' if purelib else 'false'}",
    ]
    lines += [f"Tag: {t}" for t in expand_tag(tag)]
    return "\n".join(lines) + "\n"


def _zip_bytes(files: Mapping[str, bytes]) -> bytes:
    """A deterministic zip of ``files`` in the given order."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for arcname, data in files.items():
            info = zipfile.ZipInfo(arcname, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (0o100644 & 0xFFFF) << 16
            info.create_system = 3
            zf.writestr(info, data)
    return buf.getvalue()


def wheel_bytes(
    name: str,
    version: str,
    tag: str,
    files: Mapping[str, bytes],
    metadata: str,
) -> bytes:
    """A wheel (zip) holding ``files`` plus dist-info METADATA, WHEEL and RECORD."""
    dist_info = f"{dist_filename_name(name)}-{normalize_version(version)}.dist-info"
    contents: dict[str, bytes] = dict(files)
    contents[f"{dist_info}/METADATA"] = metadata.encode("utf-8")
    contents[f"{dist_info}/WHEEL"] = _wheel_file(tag).encode("utf-8")
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for arcname, data in contents.items():
        writer.writerow([arcname, _record_hash(data), str(len(data))])
    writer.writerow([f"{dist_info}/RECORD", "", ""])
    contents[f"{dist_info}/RECORD"] = record.getvalue().encode("utf-8")
    return _zip_bytes(contents)


def _module_init(name: str, version: str) -> bytes:
    return f'"""{name} (test distribution)."""\n\n__version__ = "{version}"\n'.encode()


def make_wheel(
    out_dir: Path,
    name: str,
    version: str,
    tag: str = "py3-none-any",
    requires: Sequence[str] = (),
    extra_metadata: str = "",
    *,
    requires_python: str | None = None,
) -> Path:
    """Write a real, installable wheel ``{dist}-{version}-{tag}.whl`` into ``out_dir``.

    It contains ``{module}/__init__.py`` (``__version__ = version``) and a dist-info with
    METADATA (2.1, one ``Requires-Dist`` per entry of ``requires``; ``extra_metadata`` lines
    are appended verbatim), WHEEL (one ``Tag:`` per member of a compressed tag set) and RECORD.
    Byte-for-byte reproducible."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    metadata = core_metadata(
        name, version, requires, requires_python=requires_python, extra_metadata=extra_metadata
    )
    files = {f"{module_name(name)}/__init__.py": _module_init(name, normalize_version(version))}
    path = out_dir / wheel_filename(name, version, tag)
    path.write_bytes(wheel_bytes(name, version, tag, files, metadata))
    return path


def wheel_metadata(path: Path) -> bytes:
    """The METADATA member of a wheel (what a PEP 658 ``.metadata`` file serves)."""
    with zipfile.ZipFile(path) as zf:
        (member,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        return zf.read(member)


# --------------------------------------------------------------------------- in-tree backend

BACKEND_PY = '''\
"""In-tree PEP 517 backend for test distributions (stdlib only, needs no download)."""

import base64
import csv
import gzip
import hashlib
import io
import os
import tarfile
import zipfile
from pathlib import Path

try:
    import tomllib
except ImportError:  # pragma: no cover - Python < 3.11
    tomllib = None

ROOT = Path(__file__).resolve().parent
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
SKIP = {".git", "__pycache__", "build", "dist", ".venv"}


def _project():
    if tomllib is None:
        raise RuntimeError("the test backend needs Python >= 3.11 (tomllib)")
    with open(ROOT / "pyproject.toml", "rb") as f:
        data = tomllib.load(f)
    project = dict(data["project"])
    if "dependencies" in project.get("dynamic", []):
        project["dependencies"] = data["tool"]["test-backend"]["dependencies"]
    return project


def _dist(project):
    name = project["name"].lower()
    for ch in "-.":
        name = name.replace(ch, "_")
    while "__" in name:
        name = name.replace("__", "_")
    return name


def _metadata(project):
    lines = ["Metadata-Version: 2.1", "Name: " + project["name"], "Version: " + project["version"]]
    if project.get("requires-python"):
        lines.append("Requires-Python: " + project["requires-python"])
    lines += ["Requires-Dist: " + r for r in project.get("dependencies", [])]
    return "\\n".join(lines) + "\\n"


def _dist_info(project):
    return "%s-%s.dist-info" % (_dist(project), project["version"])


def _write_dist_info(directory, project):
    target = Path(directory) / _dist_info(project)
    target.mkdir(parents=True, exist_ok=True)
    (target / "METADATA").write_text(_metadata(project), encoding="utf-8")
    (target / "WHEEL").write_text(
        "Wheel-Version: 1.0\\nGenerator: test-backend\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
        encoding="utf-8",
    )
    return target.name


def _tree_files():
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP)
        for fn in sorted(filenames):
            path = Path(dirpath) / fn
            yield path.relative_to(ROOT).as_posix(), path


def _record_hash(data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode("ascii")


def _zip(path, contents):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for arcname, data in contents.items():
            info = zipfile.ZipInfo(arcname, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)


def _wheel(wheel_directory, project, files):
    dist_info = _dist_info(project)
    contents = dict(files)
    contents[dist_info + "/METADATA"] = _metadata(project).encode("utf-8")
    contents[dist_info + "/WHEEL"] = (
        "Wheel-Version: 1.0\\nGenerator: test-backend\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"
    ).encode("utf-8")
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\\n")
    for arcname, data in contents.items():
        writer.writerow([arcname, _record_hash(data), str(len(data))])
    writer.writerow([dist_info + "/RECORD", "", ""])
    contents[dist_info + "/RECORD"] = record.getvalue().encode("utf-8")
    name = "%s-%s-py3-none-any.whl" % (_dist(project), project["version"])
    Path(wheel_directory).mkdir(parents=True, exist_ok=True)
    _zip(Path(wheel_directory) / name, contents)
    return name


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    return _write_dist_info(metadata_directory, _project())


def prepare_metadata_for_build_editable(metadata_directory, config_settings=None):
    return _write_dist_info(metadata_directory, _project())


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    project = _project()
    module = _dist(project) + "/"
    files = {rel: p.read_bytes() for rel, p in _tree_files() if rel.startswith(module)}
    return _wheel(wheel_directory, project, files)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    project = _project()
    pth = (str(ROOT) + "\\n").encode("utf-8")
    return _wheel(wheel_directory, project, {"_%s_editable.pth" % _dist(project): pth})


def build_sdist(sdist_directory, config_settings=None):
    project = _project()
    base = "%s-%s" % (_dist(project), project["version"])
    pkg_info = _metadata(project).replace("Metadata-Version: 2.1", "Metadata-Version: 2.2", 1)
    members = [("PKG-INFO", pkg_info.encode("utf-8"))]
    members += [(rel, p.read_bytes()) for rel, p in _tree_files() if rel != "PKG-INFO"]
    Path(sdist_directory).mkdir(parents=True, exist_ok=True)
    with open(Path(sdist_directory) / (base + ".tar.gz"), "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
            with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
                for rel, data in sorted(members):
                    info = tarfile.TarInfo(base + "/" + rel)
                    info.size, info.mtime, info.mode = len(data), 315532800, 0o644
                    tar.addfile(info, io.BytesIO(data))
    return base + ".tar.gz"
'''


def _toml_str(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def pyproject_toml(
    name: str,
    version: str,
    requires: Sequence[str] = (),
    requires_python: str | None = None,
    dynamic: bool = False,
) -> str:
    """pyproject.toml with ``[project]`` metadata and the in-tree backend. ``dynamic``
    declares ``dynamic = ["dependencies"]`` (kept in ``[tool.test-backend]``), so a frontend
    must run the backend to learn them."""
    deps = ", ".join(_toml_str(r) for r in requires)
    lines = [
        "[build-system]",
        "requires = []",
        'build-backend = "backend"',
        'backend-path = ["."]',
        "",
        "[project]",
        f"name = {_toml_str(name)}",
        f"version = {_toml_str(normalize_version(version))}",
        'dynamic = ["dependencies"]' if dynamic else f"dependencies = [{deps}]",
    ]
    if requires_python:
        lines.append(f"requires-python = {_toml_str(requires_python)}")
    if dynamic:
        lines += ["", "[tool.test-backend]", f"dependencies = [{deps}]"]
    return "\n".join(lines) + "\n"


def source_tree_files(
    name: str,
    version: str,
    requires: Sequence[str] = (),
    requires_python: str | None = None,
    dynamic: bool = False,
) -> dict[str, bytes]:
    """The files of a buildable project (relative path -> bytes): pyproject.toml, backend.py
    and ``{module}/__init__.py``."""
    return {
        "pyproject.toml": pyproject_toml(
            name, version, requires, requires_python, dynamic
        ).encode(),
        "backend.py": BACKEND_PY.encode("utf-8"),
        f"{module_name(name)}/__init__.py": _module_init(name, normalize_version(version)),
    }


def make_source_tree(
    directory: Path,
    name: str,
    version: str,
    requires: Sequence[str] = (),
    *,
    requires_python: str | None = None,
    dynamic: bool = False,
) -> Path:
    """Write a local project into ``directory`` (created if needed) and return it (absolute).
    Usable as ``name @ file:///abs/dir`` (``path.as_uri()``) or a plain path; building it
    needs no download (``build-system.requires = []``, in-tree ``backend.py``). Metadata is
    static in pyproject.toml unless ``dynamic`` (then only a build reveals the requirements)."""
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    for rel, data in source_tree_files(name, version, requires, requires_python, dynamic).items():
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return directory


def _tar_gz_bytes(members: Mapping[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        dirs = sorted({str(Path(m).parent) for m in members} - {"."})
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, TAR_MTIME
            tar.addfile(info)
        for arcname in sorted(members):
            data = members[arcname]
            info = tarfile.TarInfo(arcname)
            info.size, info.mode, info.mtime = len(data), 0o644, TAR_MTIME
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def make_sdist(
    out_dir: Path,
    name: str,
    version: str,
    requires: Sequence[str] = (),
    *,
    requires_python: str | None = None,
    dynamic: bool = False,
) -> Path:
    """Write ``{dist}-{version}.tar.gz`` into ``out_dir``: top directory ``{dist}-{version}/``
    with PKG-INFO (Metadata-Version 2.2, no ``Dynamic:``, so it is read statically), the
    in-tree backend's pyproject.toml + backend.py and the module. Byte-for-byte reproducible.
    ``dynamic=True`` marks the requirements dynamic (``Dynamic: Requires-Dist`` and
    ``dynamic = ["dependencies"]``): resolvers must then BUILD it (offline, in-tree backend)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    base = sdist_filename(name, version).removesuffix(".tar.gz")
    pkg_info = core_metadata(
        name,
        version,
        () if dynamic else requires,  # dynamic: only the backend knows them
        metadata_version="2.2",
        requires_python=requires_python,
        dynamic=("Requires-Dist",) if dynamic else (),
    )
    members = {f"{base}/PKG-INFO": pkg_info.encode("utf-8")}
    for rel, data in source_tree_files(name, version, requires, requires_python, dynamic).items():
        members[f"{base}/{rel}"] = data
    path = out_dir / sdist_filename(name, version)
    path.write_bytes(_tar_gz_bytes(members))
    return path


# --------------------------------------------------------------------------- git


class GitRepo(NamedTuple):
    """``url`` is ``git+file:///abs/path``; ``commit`` the 40-hex id of HEAD."""

    url: str
    commit: str


def git_env() -> dict[str, str]:
    """An environment for reproducible git commits, isolated from user/system config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_NAME="Test Author",
        GIT_AUTHOR_EMAIL="author@example.invalid",
        GIT_COMMITTER_NAME="Test Author",
        GIT_COMMITTER_EMAIL="author@example.invalid",
        GIT_TERMINAL_PROMPT="0",
    )
    return env


def git(repo: Path, *args: str, env: Mapping[str, str] | None = None) -> str:
    """Run ``git -C repo ARGS`` (isolated config) and return stripped stdout."""
    proc = subprocess.run(
        ["git", "-C", str(repo), "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false", *args],
        capture_output=True,
        text=True,
        env=dict(env) if env is not None else git_env(),
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc.stdout.strip()


def git_commit(
    repo: Path,
    *,
    version: str | None = None,
    requires: Sequence[str] | None = None,
    files: Mapping[str, str | bytes] | None = None,
    message: str | None = None,
) -> str:
    """Add a commit to a repo made by ``make_git_repo`` and return its id. ``version`` /
    ``requires`` rewrite the project (name kept); ``files`` (relative path -> content) are
    written as well. Commit dates are GIT_DATE + (number of the commit) minutes, so ids are
    reproducible."""
    repo = Path(repo)
    if version is not None or requires is not None:
        data = tomllib.loads((repo / "pyproject.toml").read_text(encoding="utf-8"))
        project = data["project"]
        dynamic = "dependencies" in project.get("dynamic", [])
        old_requires = (
            data["tool"]["test-backend"]["dependencies"]
            if dynamic
            else project.get("dependencies", [])
        )
        make_source_tree(
            repo,
            project["name"],
            version if version is not None else project["version"],
            list(requires) if requires is not None else old_requires,
            requires_python=project.get("requires-python"),
            dynamic=dynamic,
        )
    for rel, content in (files or {}).items():
        path = repo / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    count = int(git(repo, "rev-list", "--count", "--all") or "0") if (repo / ".git").exists() else 0
    date = f"@{GIT_DATE + 60 * count} +0000"
    env = git_env()
    env.update(GIT_AUTHOR_DATE=date, GIT_COMMITTER_DATE=date)
    git(repo, "add", "-A", env=env)
    git(repo, "commit", "-q", "--allow-empty", "-m", message or f"commit {count + 1}", env=env)
    return git(repo, "rev-parse", "HEAD")


def git_tag(repo: Path, tag: str, commit: str = "HEAD") -> str:
    """Create a lightweight tag; returns the commit id it points to."""
    git(Path(repo), "tag", tag, commit)
    return git(Path(repo), "rev-parse", f"{tag}^{{commit}}")


def git_url(repo: Path) -> str:
    return "git+" + Path(repo).resolve().as_uri()


def make_git_repo(
    directory: Path,
    name: str,
    version: str,
    requires: Sequence[str] = (),
    *,
    tag: str | None = None,
    branch: str = "main",
    dynamic: bool = False,
) -> GitRepo:
    """``git init`` a repo at ``directory`` holding ``make_source_tree(...)`` and commit it
    (fixed identity/date: the commit id is reproducible). Optionally tag that commit.
    Returns ``GitRepo(url="git+file:///abs/dir", commit=<40 hex>)``."""
    directory = make_source_tree(Path(directory), name, version, requires, dynamic=dynamic)
    if (directory / ".git").exists():
        raise FileExistsError(f"{directory} is already a git repo")
    git(directory, "init", "-q", "-b", branch)
    commit = git_commit(directory, message=f"{name} {version}")
    if tag:
        git_tag(directory, tag)
    return GitRepo(git_url(directory), commit)


# --------------------------------------------------------------------------- index


@dataclass
class IndexFile:
    """One file of an index: ``path`` (inside the index's ``files/`` dir), its project
    (normalised), ``requires_python`` (``data-requires-python``), ``yanked`` (False, True or a
    reason string: ``data-yanked``) and ``upload_time`` (ISO 8601, JSON API only)."""

    path: Path
    project: str
    requires_python: str | None = None
    yanked: bool | str = False
    upload_time: str | None = None

    @property
    def filename(self) -> str:
        return self.path.name

    @property
    def sha256(self) -> str:
        return sha256_hex(self.path)


def project_of(filename: str) -> str:
    """Normalised project name of a wheel / sdist file name."""
    if filename.endswith(".whl"):
        return normalize_name(parse_wheel_filename(filename)[0])
    if filename.endswith((".tar.gz", ".zip")):
        return normalize_name(parse_sdist_filename(filename)[0])
    raise ValueError(f"not a wheel or sdist: {filename}")


def _attrs(f: IndexFile, core_metadata: bool) -> str:
    out = ""
    if f.requires_python:
        out += f' data-requires-python="{html.escape(f.requires_python, quote=True)}"'
    if f.yanked is not False:
        reason = "" if f.yanked is True else str(f.yanked)
        out += f' data-yanked="{html.escape(reason, quote=True)}"'
    if core_metadata and f.filename.endswith(".whl"):
        digest = hashlib.sha256(wheel_metadata(f.path)).hexdigest()
        out += f' data-core-metadata="sha256={digest}" data-dist-info-metadata="sha256={digest}"'
    return out


def _page(title: str, anchors: Iterable[str]) -> str:
    body = "\n".join(f"    {a}<br/>" for a in anchors)
    return (
        "<!DOCTYPE html>\n<html>\n  <head>\n"
        '    <meta name="pypi:repository-version" content="1.1">\n'
        f"    <title>{html.escape(title)}</title>\n  </head>\n  <body>\n"
        f"    <h1>{html.escape(title)}</h1>\n{body}\n  </body>\n</html>\n"
    )


@dataclass
class PypiIndex:
    """A PEP 503 simple index under ``root``: ``root/files/FILE`` and
    ``root/simple/index.html`` + ``root/simple/<project>/index.html``. Serve ``root`` and
    use ``<base>/simple/`` as the index URL.

    ``core_metadata=True`` also writes PEP 658 ``FILE.metadata`` files for wheels and
    advertises them; ``json_api=True`` also writes PEP 691 ``index.json`` files (with PEP 700
    ``upload-time`` where set), which a content-negotiating server returns for
    ``Accept: application/vnd.pypi.simple.v1+json``. ``hashes=False`` publishes no file
    hashes (no ``#sha256=`` fragments, empty PEP 691 ``hashes``), as some indexes do."""

    root: Path
    core_metadata: bool = False
    json_api: bool = False
    hashes: bool = True
    entries: list[IndexFile] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.files_dir.mkdir(parents=True, exist_ok=True)
        self.simple_dir.mkdir(parents=True, exist_ok=True)

    @property
    def files_dir(self) -> Path:
        return self.root / "files"

    @property
    def simple_dir(self) -> Path:
        return self.root / "simple"

    def add(
        self,
        file: Path,
        *,
        requires_python: str | None = None,
        yanked: bool | str = False,
        upload_time: str | None = None,
    ) -> Path:
        """Add a wheel/sdist (copied into ``files/`` unless already there); returns the
        path inside the index. Call ``write()`` afterwards."""
        file = Path(file)
        target = self.files_dir / file.name
        if file.resolve() != target.resolve():
            shutil.copyfile(file, target)
        self.entries = [e for e in self.entries if e.filename != file.name]
        self.entries.append(
            IndexFile(target, project_of(file.name), requires_python, yanked, upload_time)
        )
        return target

    def projects(self) -> dict[str, list[IndexFile]]:
        out: dict[str, list[IndexFile]] = {}
        for e in sorted(self.entries, key=lambda e: e.filename):
            out.setdefault(e.project, []).append(e)
        return dict(sorted(out.items()))

    def write(self) -> Path:
        """(Re)write the simple pages (and .metadata / index.json files, and
        ``files/index.html``, a find-links page of all files); returns ``simple_dir``. Projects that lost all their files keep an empty page."""
        projects = self.projects()
        for old in self.simple_dir.iterdir():
            if old.is_dir() and old.name not in projects:
                shutil.rmtree(old)
        root_links = [f'<a href="{p}/">{p}</a>' for p in projects]
        (self.simple_dir / "index.html").write_text(_page("Simple index", root_links), "utf-8")
        if self.json_api:
            root_json = {
                "meta": {"api-version": "1.1"},
                "projects": [{"name": p} for p in projects],
            }
            (self.simple_dir / "index.json").write_text(json.dumps(root_json, indent=1), "utf-8")
        for project, entries in projects.items():
            page_dir = self.simple_dir / project
            page_dir.mkdir(exist_ok=True)
            anchors = []
            for e in entries:
                if self.core_metadata and e.filename.endswith(".whl"):
                    Path(f"{e.path}.metadata").write_bytes(wheel_metadata(e.path))
                href = f"../../files/{e.filename}"
                if self.hashes:
                    href += f"#sha256={e.sha256}"
                anchors.append(f'<a href="{href}"{_attrs(e, self.core_metadata)}>{e.filename}</a>')
            (page_dir / "index.html").write_text(_page(f"Links for {project}", anchors), "utf-8")
            if self.json_api:
                (page_dir / "index.json").write_text(
                    json.dumps(self._project_json(project, entries), indent=1), "utf-8"
                )
        write_find_links(self.files_dir, [])
        return self.simple_dir

    def _project_json(self, project: str, entries: list[IndexFile]) -> dict[str, Any]:
        files: list[dict[str, Any]] = []
        for e in entries:
            item: dict[str, Any] = {
                "filename": e.filename,
                "url": f"../../files/{e.filename}",
                "hashes": {"sha256": e.sha256} if self.hashes else {},
                "size": e.path.stat().st_size,
            }
            if e.requires_python:
                item["requires-python"] = e.requires_python
            if e.yanked is not False:
                item["yanked"] = e.yanked
            if e.upload_time:
                item["upload-time"] = e.upload_time
            if self.core_metadata and e.filename.endswith(".whl"):
                digest = hashlib.sha256(wheel_metadata(e.path)).hexdigest()
                item["core-metadata"] = {"sha256": digest}
                item["dist-info-metadata"] = {"sha256": digest}
            files.append(item)
        versions = sorted(
            {
                str(
                    parse_wheel_filename(e.filename)[1]
                    if e.filename.endswith(".whl")
                    else parse_sdist_filename(e.filename)[1]
                )
                for e in entries
            },
            key=Version,
        )
        return {
            "meta": {"api-version": "1.1"},
            "name": project,
            "versions": versions,
            "files": files,
        }


def write_find_links(directory: Path, files: Iterable[Path], *, html_page: bool = True) -> Path:
    """A flat "find-links" directory: ``files`` copied into ``directory`` (usable as
    ``--find-links DIR``) plus, with ``html_page``, ``index.html`` listing them with
    ``#sha256=`` fragments (usable as ``--find-links http://host/``). Returns ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for f in files:
        target = directory / Path(f).name
        if Path(f).resolve() != target.resolve():
            shutil.copyfile(f, target)
    if html_page:
        names = sorted(
            p.name for p in directory.iterdir() if p.name.endswith((".whl", ".tar.gz", ".zip"))
        )
        anchors = [f'<a href="{n}#sha256={sha256_hex(directory / n)}">{n}</a>' for n in names]
        (directory / "index.html").write_text(_page("Find links", anchors), "utf-8")
    return directory


# --------------------------------------------------------------------------- index specs


@dataclass(frozen=True)
class Dist:
    """One file to build for an index. ``kind`` is ``"wheel"`` or ``"sdist"``; ``tag`` is the
    wheel tag (None: ``py3-none-any``)."""

    version: str
    kind: str = "wheel"
    tag: str | None = None
    requires: tuple[str, ...] = ()
    requires_python: str | None = None
    yanked: bool | str = False
    upload_time: str | None = None
    extra_metadata: str = ""
    dynamic: bool = False  # sdist only: requirements need a build to be known


DistSpec = Dist | str | Sequence[Any] | Mapping[str, Any]


def as_dist(spec: DistSpec) -> Dist:
    """Accept a ``Dist``, a bare version string (a py3-none-any wheel), a tuple
    ``(version, kind="wheel", tag=None, requires=())`` or a dict of ``Dist`` fields."""
    if isinstance(spec, Dist):
        return spec
    if isinstance(spec, str):
        return Dist(spec)
    if isinstance(spec, Mapping):
        data = dict(spec)
        data["requires"] = tuple(data.get("requires", ()))
        return Dist(**data)
    items = list(spec)
    if not 1 <= len(items) <= 4:
        raise ValueError(f"expected (version, kind, tag, requires), got {spec!r}")
    padded: list[Any] = [*items, *(None,) * (4 - len(items))]
    version, kind, tag, requires = padded
    return Dist(str(version), kind or "wheel", tag, tuple(requires or ()))


def build_dist(out_dir: Path, name: str, dist: Dist) -> Path:
    if dist.kind == "wheel":
        return make_wheel(
            out_dir, name, dist.version, dist.tag or "py3-none-any", dist.requires,
            dist.extra_metadata, requires_python=dist.requires_python,
        )  # fmt: skip
    if dist.kind == "sdist":
        return make_sdist(
            out_dir,
            name,
            dist.version,
            dist.requires,
            requires_python=dist.requires_python,
            dynamic=dist.dynamic,
        )
    raise ValueError(f"unknown dist kind {dist.kind!r} (wheel or sdist)")


IndexSpec = Mapping[str, Sequence[DistSpec]] | Iterable[Path]


def build_index(
    root: Path,
    spec: IndexSpec,
    *,
    core_metadata: bool = False,
    json_api: bool = False,
    hashes: bool = True,
) -> PypiIndex:
    """Build every distribution of ``spec`` (``{name: [dist, ...]}``, see ``as_dist``) or
    take a list of already-built files, and write a ``PypiIndex`` at ``root``
    (``hashes=False``: one that publishes no file hashes)."""
    index = PypiIndex(Path(root), core_metadata=core_metadata, json_api=json_api, hashes=hashes)
    if isinstance(spec, Mapping):
        for name, dists in spec.items():
            for raw in dists:
                dist = as_dist(raw)
                built = build_dist(index.files_dir, name, dist)
                index.add(
                    built,
                    requires_python=dist.requires_python,
                    yanked=dist.yanked,
                    upload_time=dist.upload_time,
                )
    else:
        for path in spec:
            index.add(Path(path))
    index.write()
    return index
