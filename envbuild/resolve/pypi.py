"""PyPI resolution for a target arch and python: uv (default) or pip, into locked packages."""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from envbuild.channels import redact_text, redact_url
from envbuild.errors import ResolveError, UnsatisfiableError
from envbuild.fs import temp_dir, tree_hash
from envbuild.lock import LockedPackage, Source
from envbuild.parsers import VCS_PREFIXES, requirement_target
from envbuild.platforms import needed_virtual, platform_tags, uv_platform, wheel_tags
from envbuild.resolve.pypi_args import PypiRequest as PypiRequest
from envbuild.resolve.pypi_args import (
    pip_command,
    source_args,
    uv_command,
    write_inputs,
    write_preferences,
)
from envbuild.runner import Runner, ToolError, clean_env

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Resolved:
    """One resolved distribution before it becomes a LockedPackage."""

    name: str
    version: str
    url: str = ""  # wheel or sdist URL ("" for VCS / directories)
    sha256: str = ""
    size: int = 0
    vcs: str = ""  # git+URL@COMMIT
    directory: str = ""  # absolute path of a local source tree
    archive: bool = False  # a direct-URL or local file, not one from an index
    index: str = ""  # the index the file was found on


_UV_LOCK = threading.Lock()
# One uv resolution at a time: concurrent uv processes contend for the locks of their shared
# cache, and two in parallel measured 1.3-6.4 s against 2.2 s one after the other.
_UV_RUN_LOCK = threading.Lock()
_UV: list[str] = []


def uv_binary() -> str:
    """The uv executable shipped with the ``uv`` package (looked up once per process:
    ``find_uv_bin`` is not safe to call from several threads at once)."""
    with _UV_LOCK:
        if not _UV:
            from uv import find_uv_bin

            _UV.append(find_uv_bin())
        return _UV[0]


def resolve_uv(request: PypiRequest, runner: Runner, uv: str) -> list[Resolved]:
    """Resolve with ``uv pip compile --format pylock.toml`` for the target platform."""
    resolved = _compile_uv(request, runner, uv)
    if request.prefer_binary:
        resolved = _prefer_wheels(request, runner, uv, resolved)
    _check_build_python(request, resolved)
    return resolved


def _index_sdists(resolved: list[Resolved], request: PypiRequest) -> set[str]:
    """Canonical names of the packages resolved to an sdist from an index (not a direct
    reference), other than those no-binary asks to build."""
    from packaging.utils import canonicalize_name

    return {
        str(canonicalize_name(r.name))
        for r in resolved
        if r.url and not r.archive and not _filename(r.url).endswith(".whl")
    } - set(request.no_binary)


def _prefer_wheels(
    request: PypiRequest, runner: Runner, uv: str, resolved: list[Resolved]
) -> list[Resolved]:
    """pip's ``--prefer-binary``, which uv lacks (uv takes a package's newest version even
    when only its sdist fits): the packages resolved to an index sdist are resolved again as
    wheels-only, so each takes its newest version that has a wheel; repeated while the new
    result brings other sdists. When their wheels do not fit together, each is tried alone
    (in name order), and a package whose wheels cannot satisfy the requirements keeps its
    source, as with pip."""
    import dataclasses

    if ":all:" in request.only_binary or ":all:" in request.no_binary:
        return resolved  # nothing is left to prefer
    wheels_only = set(request.only_binary)
    tried: set[str] = set()

    def attempt(names: set[str]) -> list[Resolved] | None:
        retry = dataclasses.replace(request, only_binary=tuple(sorted(wheels_only | names)))
        try:
            return _compile_uv(retry, runner, uv)
        except UnsatisfiableError:
            return None

    while sdists := _index_sdists(resolved, request) - wheels_only - tried:
        tried |= sdists
        result = attempt(sdists)
        if result is not None:
            wheels_only |= sdists
            resolved = result
            continue
        for name in sorted(sdists) if len(sdists) > 1 else ():
            result = attempt({name})
            if result is not None:
                wheels_only.add(name)
                resolved = result
        kept = sorted(sdists - wheels_only)
        log.info("prefer-binary: no wheel of %s fits for %s", ", ".join(kept), request.arch)
    return resolved


def _compile_uv(request: PypiRequest, runner: Runner, uv: str) -> list[Resolved]:
    """One ``uv pip compile`` of ``request``."""
    platform, env = uv_platform(request.arch, request.virtual_packages)
    sources, secrets = source_args(
        request, "uv", "--allow-insecure-host", ["--prerelease", "allow"]
    )
    with temp_dir("uv-") as tmp:
        work = Path(tmp)
        git = write_inputs(work, request)
        if request.preferences:
            write_preferences(work / "pylock.toml", request.preferences)
        cmd = uv_command(request, uv, platform, sources)
        try:
            with _UV_RUN_LOCK:
                runner(cmd, env=clean_env({**env, **secrets, **git}), cwd=work, timeout=600)
        except ToolError as exc:
            raise _resolution_error(request, exc) from None
        data = tomllib.loads((work / "pylock.toml").read_text(encoding="utf-8"))
    tags = {
        str(t): i
        for i, t in enumerate(
            wheel_tags(request.arch, request.python_version, request.virtual_packages)
        )
    }
    return [_from_pylock(p, request, tags) for p in data.get("packages", [])]


def _check_build_python(request: PypiRequest, resolved: list[Resolved]) -> None:
    """Without a host python of the target's major.minor, uv ran with envbuild's own
    interpreter, which may have built the metadata of source packages: refuse such a result
    rather than lock what another python version's build said (a lock never depends on the
    host). A result of wheels only is the same whatever interpreter uv had."""
    if request.build_python:
        return
    sources = sorted(
        r.name for r in resolved if r.vcs or r.directory or not _filename(r.url).endswith(".whl")
    )
    if sources:
        minor = ".".join(request.python_version.split(".")[:2])
        raise ResolveError(
            f"{', '.join(sources)} must be built from source, and reading their metadata may "
            f"need a build with python {minor}, which this machine does not have (looked for "
            f"python{minor} on PATH and in pyenv): install python {minor}, or take wheels "
            'only with only-binary = [":all:"]'
        )


def _from_pylock(pkg: dict[str, Any], request: PypiRequest, tags: dict[str, int]) -> Resolved:
    """One pylock.toml package; a wheel is chosen by the target's tag order (``tags``)."""
    name, version = pkg["name"], str(pkg.get("version", ""))
    if "vcs" in pkg:
        vcs = pkg["vcs"]
        ref = f"{vcs.get('type', 'git')}+{vcs['url']}@{vcs['commit-id']}"
        if vcs.get("subdirectory"):
            ref += f"#subdirectory={vcs['subdirectory']}"
        return Resolved(name, version, vcs=ref)
    if "directory" in pkg:
        return Resolved(name, version, directory=str(pkg["directory"]["path"]))
    index = str(pkg.get("index", ""))
    if "archive" in pkg:
        arch = pkg["archive"]
        url = arch.get("url") or Path(arch["path"]).resolve().as_uri()
        sha256, size = arch.get("hashes", {}).get("sha256", ""), arch.get("size", 0)
        return Resolved(name, version, url, sha256, size, archive=True)
    best: tuple[int, dict[str, Any]] | None = None
    for wheel in pkg.get("wheels", []):
        rank = _wheel_rank(_filename(wheel["url"]), tags)
        if rank is not None and (best is None or rank < best[0]):
            best = (rank, wheel)
    if best is not None:
        wheel = best[1]
        return Resolved(
            name, version, wheel["url"], wheel["hashes"]["sha256"], wheel.get("size", 0),
            index=index,
        )  # fmt: skip
    if "sdist" in pkg:
        sdist = pkg["sdist"]
        return Resolved(
            name, version, sdist["url"], sdist["hashes"]["sha256"], sdist.get("size", 0),
            index=index,
        )  # fmt: skip
    accepted = ", ".join(platform_tags(request.arch, request.virtual_packages)[:4])
    message = (
        f"{name} {version}: no wheel fits {request.arch} with python {request.python_version} "
        f"(accepted platforms: {accepted}, ...)"
    )
    available = sorted({t for w in pkg.get("wheels", []) for t in _platforms_of(w["url"])})
    if needed_virtual(request.arch, request.virtual_packages, available):
        message += "\n" + _raise_hint(request, name, version, available)
    raise ResolveError(message)


def _platforms_of(url: str) -> set[str]:
    """The platform tags of a wheel file URL (none for a name that is not a wheel's)."""
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename

    try:
        return {t.platform for t in parse_wheel_filename(_filename(url))[3]}
    except InvalidWheelFilename:
        return set()


def _filename(url: str) -> str:
    return unquote(urlsplit(url).path.rsplit("/", 1)[-1])


def _wheel_rank(filename: str, tags: dict[str, int]) -> int | None:
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename

    try:
        _, _, _, wheel_tags_ = parse_wheel_filename(filename)
    except InvalidWheelFilename:
        return None
    ranks = [tags[str(t)] for t in wheel_tags_ if str(t) in tags]
    return min(ranks) if ranks else None


def resolve_pip(request: PypiRequest, runner: Runner, python: str) -> list[Resolved]:
    """Resolve with ``pip install --dry-run --ignore-installed --report`` (the fallback:
    wheels only; requirements that need building need the uv resolver)."""
    if request.no_binary:
        raise ResolveError(
            f'pypi-resolver = "pip" resolves wheels only, and no-binary asks to build '
            f'{", ".join(request.no_binary)} from source: use pypi-resolver = "uv" (the '
            "default) for this env"
        )
    sources = [r for r in request.requirements if _is_source_requirement(r)]
    if sources:
        raise ResolveError(
            f'pypi-resolver = "pip" resolves wheels only, and {", ".join(sources)} must be '
            'built from source: use pypi-resolver = "uv" (the default) for this env'
        )

    with temp_dir("pip-") as tmp:
        work = Path(tmp)
        write_inputs(work, request)
        # Not --isolated: pip would ignore PIP_INDEX_URL & co, which carry the credentials
        # (clean_env keeps the user's pip configuration out all the same).
        sources, secrets = source_args(request, "pip", "--trusted-host", ["--pre"])
        cmd = pip_command(request, python, sources)
        try:
            runner(cmd, env=clean_env(secrets), cwd=work, timeout=900)
        except ToolError as exc:
            raise _resolution_error(request, exc) from None
        report = json.loads((work / "report.json").read_text(encoding="utf-8"))
    out = []
    for item in report.get("install", []):
        meta, info = item["metadata"], item["download_info"]
        name, version = meta["name"], meta["version"]
        if "vcs_info" in info:
            vcs = info["vcs_info"]
            out.append(
                Resolved(name, version, vcs=f"{vcs['vcs']}+{info['url']}@{vcs['commit_id']}")
            )
        elif "dir_info" in info:
            out.append(Resolved(name, version, directory=unquote(urlsplit(info["url"]).path)))
        else:
            hashes = info.get("archive_info", {}).get("hashes", {})
            out.append(Resolved(name, version, info["url"], hashes.get("sha256", "")))
    return out


def _is_source_requirement(req: str) -> bool:
    """A VCS URL or a local path (not a plain ``name[spec]`` or a wheel URL)."""
    target = requirement_target(req)
    if target.startswith(VCS_PREFIXES):
        return True
    return target.startswith((".", "/", "file:")) and not target.endswith(".whl")


def _resolution_error(request: PypiRequest, exc: ToolError) -> Exception:
    from envbuild.resolve.mixed import explain_conda_pins

    text = explain_conda_pins(exc.stderr or str(exc), request.stub_wheels)
    where = f"{request.arch} with python {request.python_version}"
    unsat = ("No solution found", "ResolutionImpossible", "Could not find a version", "conflict")
    if any(marker in text for marker in unsat):
        hints = "".join(f"\n{h}" for h in _platform_hints(request, text))
        return UnsatisfiableError(
            f"the PyPI requirements cannot be satisfied for {where}:\n{text}{hints}"
        )
    return ResolveError(f"PyPI resolution failed for {where}:\n{redact_text(text)}")


# uv's hint when no wheel of a package fits the target platform (one line per package)
_WHEELS_HINT = re.compile(
    r"Wheels are available for `([^`]+)` \(v([^)]+)\) on the following platforms?: (.+)"
)


def _platform_hints(request: PypiRequest, text: str) -> list[str]:
    """For each package that uv says has wheels on other platforms only: which virtual
    package to raise, and to what, when one of those wheels would then fit the target."""
    return [
        _raise_hint(request, name, version, re.findall(r"`([^`]+)`", tags))
        for name, version, tags in _WHEELS_HINT.findall(text)
        if needed_virtual(request.arch, request.virtual_packages, re.findall(r"`([^`]+)`", tags))
    ]


def _raise_hint(request: PypiRequest, name: str, version: str, available: list[str]) -> str:
    """One line: the virtual package and value that would let a wheel of ``name`` fit."""
    needed = needed_virtual(request.arch, request.virtual_packages, available)
    assert needed is not None
    vp, value = needed
    current = next((v for n, v, _ in request.virtual_packages if n == vp), "?")
    tags = [t for t in available if needed_virtual(request.arch, request.virtual_packages, [t])]
    return (
        f"{name} {version}: its wheels for {request.arch} need {vp} >= {value} "
        f'({", ".join(tags)}), and the target has {vp} {current}: set {vp} = "{value}" in '
        "[workspace.virtual-packages] or the env's virtual-packages"
    )


def to_locked(dist: Resolved, root: Path, indexes: tuple[str, ...] = ()) -> LockedPackage:
    """A resolved distribution as a lock entry (URLs redacted, local paths relative to the
    workspace ``root``). ``indexes``: the env's index URLs, base first, to record which one
    a file came from."""
    from packaging.utils import canonicalize_name

    name = canonicalize_name(dist.name)
    if dist.vcs:
        return LockedPackage(kind="pypi", name=name, version=dist.version, url="", filename="",
                             sha256="", source=vcs_source(redact_url(dist.vcs)))  # fmt: skip
    if dist.directory:
        path = Path(dist.directory)
        tree = Source("directory", path=_relative(path, root), sha256=tree_hash(path))
        return LockedPackage(
            kind="pypi", name=name, version=dist.version or _static_version(path), url="",
            filename="", sha256=tree.sha256, source=tree,
        )  # fmt: skip
    filename = _filename(dist.url)
    is_wheel = filename.endswith(".whl")
    if not is_wheel and dist.url.startswith("file:"):  # a local archive: no absolute path
        local = Path(unquote(urlsplit(dist.url).path))
        sha256 = dist.sha256 or tree_hash(local)
        archive = Source("archive", path=_relative(local, root), sha256=sha256)
        return LockedPackage(
            kind="pypi", name=name, version=dist.version, url="", filename=filename,
            sha256=sha256, size=dist.size, source=archive,
        )  # fmt: skip
    url = redact_url(dist.url)
    source: Source | None = None
    if not is_wheel:
        source = Source("archive" if dist.archive else "sdist", url=url, sha256=dist.sha256)
    return LockedPackage(
        kind="pypi", name=name, version=dist.version, url=url, filename=filename,
        sha256=dist.sha256, size=dist.size, source=source,
        index="" if dist.archive else index_of(url, indexes),
    )  # fmt: skip


def vcs_source(ref: str) -> Source:
    """``git+URL@COMMIT[#subdirectory=DIR]`` as a structured source."""
    vcs, _, rest = ref.partition("+")
    url, _, fragment = rest.partition("#")
    options = dict(kv.partition("=")[::2] for kv in fragment.split("&") if kv)
    parts = urlsplit(url)
    path, at, commit = parts.path.rpartition("@")  # not the host's user@
    if not at:
        path, commit = parts.path, ""
    return Source(
        "vcs",
        url=parts._replace(path=path).geturl(),
        vcs=vcs,
        commit=commit,
        subdirectory=options.get("subdirectory", ""),
    )


_FILES_HOSTS = {"files.pythonhosted.org": "pypi.org"}  # where an index serves files from


def index_of(url: str, indexes: tuple[str, ...]) -> str:
    """The index (of ``indexes``, redacted URLs, base first) a file URL was found on: the
    one on the file's host (PyPI's files host counts as PyPI's), else the only index.
    "" for a file on none of them (a find-links file)."""
    host = urlsplit(url).netloc
    host = _FILES_HOSTS.get(host, host)
    for index in indexes:
        if urlsplit(index).netloc == host:
            return index
    return indexes[0] if len(indexes) == 1 and not url.startswith("file:") else ""


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return os.path.relpath(path.resolve(), root.resolve())


def _static_version(path: Path) -> str:
    try:
        project = tomllib.loads((path / "pyproject.toml").read_text(encoding="utf-8"))["project"]
        return str(project.get("version", ""))
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return ""
