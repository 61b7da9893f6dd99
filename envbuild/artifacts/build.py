"""Building wheels for lock entries that must be built: a source's stable key, which built
wheel fits a target, one `uv build`, and the errors that say what to do when a wheel cannot
be built here.

Pure parts (``source_key``, ``pick_wheel``, ``check_buildable``, ``check_wheel``) take
everything as parameters; ``build_wheel`` runs its subprocesses through ``runner`` (by
default :func:`envbuild.runner.run`) and touches only its ``out_dir`` (and, for a local
directory, whatever the project's own build backend writes into its tree).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from envbuild.channels import redact_text, redact_url
from envbuild.errors import EnvbuildError
from envbuild.lock import Source
from envbuild.runner import Runner, ToolError, clean_env, run

VirtualPackages = Iterable[tuple[str, str, str]]

LOG_TAIL_LINES = 30
_KEY_VERSION = "envbuild-source-v1"


class BuildError(EnvbuildError):
    """A wheel could not be built (or not here). ``log_tail`` holds the end of the build's
    log (credentials redacted), when there was a build."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(message)
        self.log_tail = log_tail


class ForeignPlatformError(BuildError):
    """The package builds a platform wheel and the target arch is not this machine's."""


# --------------------------------------------------------------------------- pure parts


def source_key(source: Source) -> str:
    """The stable identity built wheels are stored under: the sha256 (hex) of a canonical
    string of every field of the source (kind, url, path, vcs, commit, subdirectory, content
    sha256). The lock's paths are workspace-relative and its URLs redacted; URLs are redacted
    again here so that a credential can never change (or be recovered from) a key."""
    fields = [
        _KEY_VERSION,
        source.kind,
        _redacted(source.url),
        source.path,
        source.vcs,
        source.commit,
        source.subdirectory,
        source.sha256.lower(),
    ]
    canonical = json.dumps(fields, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def _redacted(url: str) -> str:
    try:
        return redact_url(url) if url else ""
    except ValueError:  # not parseable as a URL (an unbalanced "[" host): nothing to redact
        return url


def wheel_tags_of(filename: str) -> frozenset[str] | None:
    """The tags (``py3-none-any``, ...) of a wheel filename; None if it is not one."""
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename

    if not filename.endswith(".whl"):
        return None
    try:
        _, _, _, tags = parse_wheel_filename(filename)
    except (InvalidWheelFilename, ValueError):
        return None
    return frozenset(str(t) for t in tags)


def is_platform_wheel(filename: str) -> bool:
    """True when a wheel is for some platforms only (a tag's platform is not ``any``)."""
    tags = wheel_tags_of(filename) or frozenset()
    return any(not t.endswith("-any") for t in tags)


def pick_wheel(
    filenames: Iterable[str],
    arch: str,
    python_version: str,
    virtual_packages: VirtualPackages,
) -> str | None:
    """The wheel among ``filenames`` that CPython ``python_version`` on target ``arch``
    (with ``virtual_packages``) prefers: the one whose best tag comes first in
    :func:`envbuild.platforms.wheel_tags`; ties go to the smaller filename, so the answer
    does not depend on listing order. None when no filename fits. Pure."""
    from envbuild.platforms import wheel_tags

    rank: dict[str, int] = {}
    for i, tag in enumerate(wheel_tags(arch, python_version, tuple(virtual_packages))):
        rank.setdefault(str(tag), i)
    best: tuple[int, str] | None = None
    for filename in filenames:
        tags = wheel_tags_of(filename)
        ranks = [rank[t] for t in tags or () if t in rank]
        if ranks and (best is None or (min(ranks), filename) < best):
            best = (min(ranks), filename)
    return best[1] if best else None


def _label(name: str, version: str, source: Source | None = None) -> str:
    label = f"{name} {version}".strip()
    return label or (source.identity if source is not None else "the package")


def _foreign(label: str, wheel: str, arch: str) -> ForeignPlatformError:
    from envbuild.platforms import os_of

    if os_of(arch) == "win":  # envbuild runs on linux and macOS only
        return ForeignPlatformError(
            f"{label} builds a platform wheel ({wheel}), which does not fit {arch}, and "
            f"envbuild does not build on Windows: publish a {arch} wheel of it on an index "
            f"(or find-links) the env uses and resolve again"
        )
    return ForeignPlatformError(
        f"{label} builds a platform wheel ({wheel}), which does not fit {arch}: build it on "
        f"an {arch} machine with `envbuild build arch={arch}`; the wheel it uploads is then "
        "found by everyone"
    )


def check_buildable(
    name: str, version: str, known_wheels: Iterable[str], *, arch: str, host_arch: str
) -> None:
    """Before building: raise :class:`ForeignPlatformError` when building here cannot give a
    wheel for ``arch``. That is known when ``arch`` is not this host's and a wheel already
    built from the same source (``known_wheels``: the store's or the cache's listing for
    its :func:`source_key`; call this only when :func:`pick_wheel` found none of them fit)
    is a platform wheel. With no such evidence, build, then :func:`check_wheel`. Pure."""
    if arch == host_arch:
        return
    platform_wheels = sorted(w for w in known_wheels if is_platform_wheel(w))
    if platform_wheels:
        raise _foreign(_label(name, version), platform_wheels[0], arch)


def check_wheel(
    name: str,
    version: str,
    wheel: str,
    *,
    arch: str,
    python_version: str,
    virtual_packages: VirtualPackages,
    host_arch: str,
) -> None:
    """After building: raise when the built ``wheel`` (a filename) does not fit the target.
    A platform wheel built on another arch gives :class:`ForeignPlatformError`, naming the
    arch of machine that can build it; any other misfit (a wheel for another python) a
    :class:`BuildError`. Pure."""
    if pick_wheel([wheel], arch, python_version, virtual_packages) is not None:
        return
    label = _label(name, version)
    if arch != host_arch and is_platform_wheel(wheel):
        raise _foreign(label, wheel, arch)
    major_minor = ".".join(python_version.split(".")[:2])
    raise BuildError(
        f"{label} built a wheel ({wheel}) that python {major_minor} on {arch} does not "
        f"accept: was it built with a python other than {major_minor}?"
    )


def build_environment(arch: str, virtual_packages: VirtualPackages) -> dict[str, str]:
    """Extra environment for building wheels for ``arch``: on macOS targets,
    ``MACOSX_DEPLOYMENT_TARGET`` from the target's ``__osx`` (else a platform wheel gets the
    build machine's macOS version and may not fit the target). Pure."""
    from envbuild.platforms import os_of, uv_platform

    if os_of(arch) != "osx":
        return {}
    return uv_platform(arch, tuple(virtual_packages))[1]


# --------------------------------------------------------------------------- interpreter


def build_python(
    python_version: str,
    *,
    package: str = "",
    finder: Callable[[str], tuple[str, str]] | None = None,
) -> str:
    """The interpreter to build with: a host python of ``python_version``'s major.minor
    (``finder`` defaults to :func:`envbuild.platforms.find_host_python`, cached per process).
    A clear :class:`BuildError` naming the version to install when there is none."""
    from envbuild.platforms import find_host_python

    major_minor = ".".join(python_version.split(".")[:2])
    try:
        path, _ = (finder or find_host_python)(f"{major_minor}.*")
    except LookupError:
        what = f"building {package}" if package else "building wheels"
        raise BuildError(
            f"{what} needs python {major_minor} on this machine, and none was found on PATH "
            f"or among pyenv's versions: install python {major_minor} (e.g. `pyenv install "
            f"{major_minor}`), or build on a machine that has it"
        ) from None
    return path


# --------------------------------------------------------------------------- building


def _tail(text: str, lines: int = LOG_TAIL_LINES) -> str:
    return "\n".join(redact_text(text).rstrip().splitlines()[-lines:])


def _sha256_file(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _checkout(
    source: Source,
    dest: Path,
    label: str,
    runner: Runner,
    timeout: float | None,
    extra_env: Mapping[str, str] | None = None,
) -> Path:
    """Clone a vcs source into ``dest`` at its commit; the directory to build. ``extra_env``
    may give git logins (:func:`envbuild.credentials.git_credential_env`)."""
    if source.vcs != "git":
        raise BuildError(f"{label}: cannot build from {source.vcs or 'an unknown'} VCS (only git)")
    if not source.commit:
        raise BuildError(f"{label}: the lock gives no commit for {source.identity}: re-resolve")
    env = clean_env({**(extra_env or {}), "GIT_TERMINAL_PROMPT": "0"})
    shown = redact_url(source.url)

    def git(*args: str) -> None:
        runner(["git", *args], env=env, timeout=timeout)

    try:
        git("clone", "--quiet", "--no-checkout", source.url, str(dest))
        try:
            git("-C", str(dest), "checkout", "--quiet", "--detach", source.commit)
        except ToolError:  # a commit no branch or tag reaches: ask for it by id
            git("-C", str(dest), "fetch", "--quiet", "origin", source.commit)
            git("-C", str(dest), "checkout", "--quiet", "--detach", source.commit)
        if (dest / ".gitmodules").exists():
            git("-C", str(dest), "submodule", "update", "--quiet", "--init", "--recursive")
    except ToolError as exc:
        tail = _tail(exc.stderr or str(exc))
        raise BuildError(
            f"{label}: could not check out {shown} at {source.commit}:\n{tail}", tail
        ) from None
    src = dest / source.subdirectory if source.subdirectory else dest
    if not src.is_dir():
        raise BuildError(
            f"{label}: {shown} at {source.commit} has no subdirectory {source.subdirectory!r}"
        )
    return src


def _local_source(source: Source, root: Path, sdist: Path | None, label: str, verify: bool) -> Path:
    """The sdist file or source tree to build (checked against the lock's hash)."""
    from envbuild.fs import tree_hash

    if source.kind in ("sdist", "archive") and source.url:
        if sdist is None:
            raise BuildError(f"{label}: no local copy of {source.url} was given to build from")
        src = Path(sdist)
        what = source.url
    elif source.kind in ("directory", "archive") and source.path:
        src = root / source.path
        what = source.path
    else:
        raise BuildError(f"{label}: the lock's source {source.to_dict()} gives nothing to build")
    if not src.exists():
        raise BuildError(f"{label}: {src} does not exist")
    if verify and source.sha256:
        actual = _sha256_file(src) if src.is_file() else tree_hash(src)
        if actual != source.sha256.lower():
            raise BuildError(
                f"{label}: {what} has changed since the lock was made (sha256 {actual}, the "
                f"lock says {source.sha256}): run `envbuild resolve`"
            )
    return src


def build_wheel(
    source: Source,
    *,
    root: Path,
    sdist: Path | None,
    out_dir: Path,
    python: str,
    runner: Runner = run,
    name: str = "",
    version: str = "",
    uv: str | None = None,
    uv_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    verify: bool = True,
) -> Path:
    """Build ONE wheel of ``source`` with ``uv build --wheel`` (isolated build environment,
    no uv configuration files, no python downloads) run by interpreter ``python``, and move
    it into ``out_dir`` (created if needed) atomically; return its path.

    What is built: ``sdist`` (the caller's verified local copy) for an sdist or a remote
    archive; ``root / source.path`` for a local directory or archive; for git, a clone at
    ``source.commit`` (+ ``subdirectory``) in a temp dir. ``verify`` checks local inputs
    against ``source.sha256`` first. ``name``/``version`` (the lock entry's) name the package
    in errors and are checked against the wheel built. ``uv_args`` go to ``uv build`` (e.g.
    ``--default-index URL``, ``--offline``), ``env`` into its environment (e.g.
    :func:`build_environment`). A failed build raises :class:`BuildError` with the tail of
    the build log; so does a build that gives no wheel or several."""
    label = _label(name, version, source)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if uv is None:
        from envbuild.resolve.pypi import uv_binary

        uv = uv_binary()
    with tempfile.TemporaryDirectory(prefix=".build-", dir=out_dir) as work:
        tmp = Path(work)
        if source.kind == "vcs":
            src = _checkout(source, tmp / "src", label, runner, timeout, env)
        else:
            src = _local_source(source, Path(root), sdist, label, verify)
        wheel_dir = tmp / "wheel"
        cmd = [
            uv, "build", "--wheel", "--no-config", "--no-python-downloads", "--color", "never",
            "--no-create-gitignore", "--out-dir", str(wheel_dir), "--python", python,
            *uv_args, str(src),
        ]  # fmt: skip
        try:
            runner(cmd, env=clean_env(env), timeout=timeout)
        except ToolError as exc:
            tail = _tail(exc.stderr or str(exc))
            first = f"building {label} failed"
            if exc.returncode:
                first += f" (uv build exit {exc.returncode})"
            raise BuildError(
                f"{first}; the end of its build log:\n{tail}" if tail else first, tail
            ) from None
        wheels = sorted(p for p in wheel_dir.glob("*.whl") if p.is_file())
        if len(wheels) != 1:
            names = ", ".join(p.name for p in wheels) or "none"
            raise BuildError(f"building {label} gave {len(wheels)} wheels ({names}), not one")
        _check_identity(wheels[0].name, name, version, label)
        target = out_dir / wheels[0].name
        os.replace(wheels[0], target)
    return target


def _check_identity(wheel: str, name: str, version: str, label: str) -> None:
    from packaging.utils import canonicalize_name, parse_wheel_filename
    from packaging.version import InvalidVersion, Version

    built_name, built_version, _, _ = parse_wheel_filename(wheel)
    if name and canonicalize_name(name) != built_name:
        raise BuildError(f"building {label} gave a wheel of another project: {wheel}")
    try:
        same = not version or Version(version) == built_version
    except InvalidVersion:
        same = False
    if not same:
        raise BuildError(
            f"building {label} gave version {built_version} ({wheel}), not the lock's "
            f"{version}: its version is not reproducible from the source; re-resolve"
        )
