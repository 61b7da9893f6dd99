"""The inputs of one PyPI resolution: the request, and the files, command lines and environment given to uv or pip."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from envbuild.parsers import VCS_PREFIXES, is_local_path, requirement_target
from envbuild.platforms import marker_environment, platform_tags, wheel_tags
from envbuild.spec import DEFAULT_PYPI_INDEX


@dataclass(frozen=True, slots=True)
class PypiRequest:
    """Everything one PyPI resolution depends on. URLs are the real ones (credentials
    included, ``${VAR}`` expanded at run time): never log or store them unredacted."""

    requirements: tuple[str, ...]
    arch: str
    python_version: str  # exact, e.g. "3.12.4"
    virtual_packages: tuple[tuple[str, str, str], ...]
    index_url: str = DEFAULT_PYPI_INDEX
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    trusted_hosts: tuple[str, ...] = ()
    pre: bool = False
    no_index: bool = False
    constraints: tuple[str, ...] = ()  # name==version pins of what conda provides
    # (name, stub wheel) of what conda provides: required as ``name @ file:///stub.whl``,
    # which makes the stub the only candidate (the index's wheel never brings its deps)
    stub_wheels: tuple[tuple[str, Path], ...] = ()
    only_binary: tuple[str, ...] = ()  # names or (":all:",): wheels only
    no_binary: tuple[str, ...] = ()  # names or (":all:",): sources only
    prefer_binary: bool = False  # an older wheel over a newer sdist: see pypi._prefer_wheels
    # A host interpreter of the target's python major.minor: uv builds the metadata of
    # source packages with it. "" when this machine has none: see pypi.resolve_uv.
    build_python: str = ""
    exclude_newer: str = ""
    base_dir: Path = Path(".")  # relative paths (requirements, find-links) start here
    # (name, version) pins of the env's existing lock: kept when possible (uv only)
    preferences: tuple[tuple[str, str], ...] = ()
    # refresh cached index data of these packages (":all:": of every package), as --update asks
    refresh: tuple[str, ...] = ()


def _expand(url: str) -> str:
    return os.path.expandvars(url)


def _requirement_lines(request: PypiRequest) -> tuple[str, list[str]]:
    """The requirements file's text, and the VCS URLs whose http(s) logins were taken out of
    it: uv would put them in git's argv (see :func:`envbuild.credentials.git_credential_env`)."""
    from envbuild.credentials import git_login_free

    lines, vcs = [], []
    for req in request.requirements:
        if is_local_path(req):
            req = str((request.base_dir / req).resolve())
        target = requirement_target(req)
        if target.startswith(VCS_PREFIXES):
            public, login = git_login_free(target)
            if login is not None:
                vcs.append(target)
                req = req.replace(target, public, 1)
        lines.append(req)
    return "\n".join(lines) + "\n", vcs


def _links(request: PypiRequest) -> list[str]:
    out = []
    for link in request.find_links:
        if "://" not in link:
            link = str((request.base_dir / link).resolve())
        out.append(_expand(link))
    return out


def write_inputs(work: Path, request: PypiRequest) -> dict[str, str]:
    """Write the requirements and constraints files; the environment that gives git the
    logins of the VCS requirements."""
    from envbuild.credentials import git_credential_env

    stubs = "".join(f"{name} @ {path.resolve().as_uri()}\n" for name, path in request.stub_wheels)
    text, vcs = _requirement_lines(request)
    (work / "requirements.in").write_text(text + stubs)
    (work / "constraints.txt").write_text("".join(f"{c}\n" for c in request.constraints))
    return git_credential_env(vcs)


def write_preferences(path: Path, preferences: tuple[tuple[str, str], ...]) -> None:
    """A minimal pylock.toml of the existing pins: ``uv pip compile -o`` keeps the pins of
    its output file as preferences (moved only when the requirements demand it)."""
    import tomli_w

    packages = [{"name": n, "version": v} for n, v in preferences]
    doc = {"lock-version": "1.0", "created-by": "envbuild", "packages": packages}
    path.write_text(tomli_w.dumps(doc), encoding="utf-8")


def source_args(
    request: PypiRequest, tool: str, insecure_host: str, pre: list[str]
) -> tuple[list[str], dict[str, str]]:
    """(argv, environment) of the index, find-links and flag options of ``tool`` (uv or pip):
    credentials go through the environment only (other processes can read argv)."""
    from envbuild.credentials import pip_index_options, uv_index_options

    options = uv_index_options if tool == "uv" else pip_index_options
    args, env = options(
        _expand(request.index_url),
        [_expand(url) for url in request.extra_index_urls],
        _links(request),
    )
    for host in request.trusted_hosts:
        args += [insecure_host, host]
    return args + (pre if request.pre else []) + (["--no-index"] if request.no_index else []), env


def uv_command(request: PypiRequest, uv: str, platform: str, sources: list[str]) -> list[str]:
    """The ``uv pip compile`` command line of ``request`` (run in the directory of
    :func:`write_inputs`), for uv's ``platform``, with the index options ``sources``."""
    cmd = [
        uv, "pip", "compile", "requirements.in", "--output-file", "pylock.toml",
        "--format", "pylock.toml", "--no-config", "--no-header", "--quiet",
        "--python-version", request.python_version, "--python-platform", platform,
        # This interpreter only builds metadata of source packages; without it uv would
        # look for (or download) a python of the target version.
        "--python", request.build_python or sys.executable, "--no-python-downloads",
        "--constraints", "constraints.txt",
        *sources,
    ]  # fmt: skip
    cmd += [arg for name in request.only_binary for arg in ("--only-binary", name)]
    cmd += [arg for name in request.no_binary for arg in ("--no-binary", name)]
    if request.exclude_newer:
        cmd += ["--exclude-newer", request.exclude_newer]
    if ":all:" in request.refresh:
        cmd += ["--refresh"]
    else:
        cmd += [arg for name in request.refresh for arg in ("--refresh-package", name)]
    return cmd


# pip evaluates environment markers for the interpreter running it, whatever --platform
# says; this runs pip with its marker environment set to the target's instead.
_PIP_FOR_TARGET = """
import json, sys
import pip._vendor.packaging.markers as markers
target = json.loads(sys.argv[1])
markers.default_environment = lambda: dict(target)
from pip._internal.cli.main import main
sys.exit(main(sys.argv[2:]))
"""


def pip_command(request: PypiRequest, python: str, sources: list[str]) -> list[str]:
    """The ``pip install --dry-run --report`` command line of ``request`` (run by ``python``
    in the directory of :func:`write_inputs`), with the index options ``sources``: wheels
    only, for the target's marker environment, platforms and ABIs."""
    from packaging.tags import Tag

    tags = wheel_tags(request.arch, request.python_version, request.virtual_packages)
    env_json = json.dumps(marker_environment(request.arch, request.python_version))
    cmd = [
        python, "-c", _PIP_FOR_TARGET, env_json,
        "install", "--dry-run", "--ignore-installed", "--no-input",
        "--quiet", "--disable-pip-version-check", "--report", "report.json",
        "-r", "requirements.in", "-c", "constraints.txt", *sources,
    ]  # fmt: skip
    if request.exclude_newer:
        cmd += ["--uploaded-prior-to", request.exclude_newer]
    # pip resolves for a foreign target only from wheels (it refuses platform options
    # otherwise), so this fallback is wheels-only for every target, the host included:
    # that also keeps its picks the same as uv's, which use the target's tags too.
    major_minor = ".".join(request.python_version.split(".")[:2])
    cmd += ["--python-version", major_minor, "--implementation", "cp"]
    cmd += ["--only-binary", ":all:"]
    cmd += [
        arg
        for p in platform_tags(request.arch, request.virtual_packages)
        for arg in ("--platform", p)
    ]
    cmd += [
        arg for abi in sorted({t.abi for t in tags if isinstance(t, Tag)}) for arg in ("--abi", abi)
    ]
    return cmd
