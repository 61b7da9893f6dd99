"""Parsing and validating envbuild.toml (workspace settings + [env.NAME] tables) into a Workspace."""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envbuild.channels import is_valid_channel, redact_text, redact_url
from envbuild.errors import SpecError, toml_problem
from envbuild.fs import read_utf8
from envbuild.manifest_checks import Checker, line_of_prefix, normalise_channel
from envbuild.parsers import (
    Dep,
    ParsedSpec,
    combine,
    expand_defaults,
    is_local_path,
    normalise_conda_spec,
    plain_python_version,
    python_version_spec,
)
from envbuild.parsers import binary as binary_options
from envbuild.spec import DEFAULT_PYPI_INDEX, MANIFEST, EnvSpec, ResolverSettings, Workspace
from envbuild.validate import has_location, is_index_url, is_python_version, shown

FORMATS = (".conda", ".tar.bz2")
PRIORITIES = ("strict", "flexible", "disabled")
WORKSPACE_KEYS = (
    "archs", "channel-priority", "channels", "exclude-newer", "extra-indexes", "local-channels",
    "locks-dir", "no-binary", "only-binary", "prefer-binary", "preferred-format", "pypi-index",
    "pypi-resolver", "python-source", "solve-timeout", "store", "store-endpoint", "store-profile",
    "store-region", "virtual-packages",
)  # fmt: skip
ENV_KEYS = (
    "archs", "channel-priority", "channels", "conda", "exclude-newer", "extra-indexes", "extras",
    "file", "groups", "no-binary", "only-binary", "prefer-binary", "pypi", "pypi-resolver",
    "python", "python-source", "solve-timeout", "virtual-packages",
)  # fmt: skip
PYTHON_SOURCES = ("conda", "host")
PYPI_RESOLVERS = ("uv", "pip")
_ENV_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


def _read_spec_file(
    root: Path, rel: str, extras: tuple[str, ...] = (), groups: tuple[str, ...] = ()
) -> ParsedSpec:
    from envbuild.parsers.envyml import parse_environment_yml
    from envbuild.parsers.pyproject import parse_pyproject
    from envbuild.parsers.requirements import parse_requirements

    text = read_utf8(root / rel, rel)
    if rel.endswith((".yml", ".yaml")):
        return parse_environment_yml(text, rel, root)
    if Path(rel).name == "pyproject.toml":
        return parse_pyproject(text, rel, extras, groups)
    return parse_requirements(text, rel, root)


def parse_manifest(text: str, root: Path, default_arch: str) -> Workspace:
    """Parse a manifest's ``text``; spec files are read relative to ``root``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError([toml_problem(MANIFEST, exc, text)]) from None
    check = Checker(text)
    for key in data:
        if key not in ("workspace", "env"):
            line = line_of_prefix(check.lines, key)
            where = f"{MANIFEST}:{line}" if line else MANIFEST
            check.problems.append(
                f"{where}: unknown table '[{key}]': only [workspace] and [env.NAME] are allowed"
            )
    ws = data.get("workspace", {})
    envs = data.get("env", {})
    if not isinstance(ws, dict) or not isinstance(envs, dict):
        raise SpecError([f"{MANIFEST}: [workspace] and [env.NAME] must be tables"])
    check.keys("workspace", ws, WORKSPACE_KEYS)
    local_raw = ws.get("local-channels", {})
    if not isinstance(local_raw, dict) or not all(isinstance(v, str) for v in local_raw.values()):
        check.add(
            "workspace", "local-channels", 'must map names to recipe dirs, like demo = "recipes"'
        )
        local_raw = {}
    local: dict[str, str] = dict(local_raw)
    for name, rdir in local.items():
        if not (root / rdir).is_dir():
            check.add(
                "workspace",
                "local-channels",
                f"recipe dir '{rdir}' of '{name}' does not exist: create it or fix the path",
            )
    ws_archs = check.archs("workspace", ws) or (default_arch,)
    ws_channels = check.channels("workspace", ws, local) or ()
    ws_vp = check.virtual("workspace", ws)
    ws_prio = check.choice("workspace", ws, "channel-priority", PRIORITIES) or "strict"
    fmt = check.choice("workspace", ws, "preferred-format", FORMATS) or ".conda"
    timeout = check.seconds("workspace", ws, "solve-timeout") or 120.0
    index = check.url("workspace", ws, "pypi-index") or DEFAULT_PYPI_INDEX
    ws_extra = check.urls("workspace", ws, "extra-indexes") or ()
    defaults = _Defaults(
        ws_archs,
        ws_channels,
        ws_vp,
        ws_prio,
        timeout,
        index,
        ws_extra,
        check.choice("workspace", ws, "python-source", PYTHON_SOURCES) or "conda",
        check.choice("workspace", ws, "pypi-resolver", PYPI_RESOLVERS) or "uv",
        check.timestamp("workspace", ws) or "",
        check.binary("workspace", ws, "only-binary") or (),
        check.binary("workspace", ws, "no-binary") or (),
        bool(check.flag("workspace", ws, "prefer-binary")),
    )
    specs = [
        spec
        for name in sorted(envs)
        if (spec := _env_spec(check, root, name, envs[name], defaults, local)) is not None
    ]
    store = check.string("workspace", ws, "store") or ".envbuild/store"
    if "://" in store and not (store.startswith(("s3://", "file://")) and has_location(store)):
        check.add(
            "workspace",
            "store",
            f"{shown(store)} is not a store: give s3://BUCKET/PREFIX or a directory",
        )
    endpoint = check.string("workspace", ws, "store-endpoint")
    if endpoint and not (endpoint.startswith(("http://", "https://")) and is_index_url(endpoint)):
        check.add(
            "workspace",
            "store-endpoint",
            f"{shown(endpoint)} is not an endpoint URL: write http(s)://HOST[:PORT]",
        )
    store_options = tuple(
        (key, value)
        for key in ("store-endpoint", "store-region", "store-profile")
        if (value := check.string("workspace", ws, key))
    )
    locks_dir = check.relative_dir("workspace", ws, "locks-dir") or "locks"
    _check_channel_tokens(check, specs)
    if check.problems:
        raise SpecError(check.in_order())
    return Workspace(
        root=root,
        envs=tuple(specs),
        store=store,
        store_options=store_options,
        locks_dir=locks_dir,
        preferred_format=fmt,
        local_channels=tuple(sorted(local.items())),
    )


def _check_channel_tokens(check: Checker, specs: list[EnvSpec]) -> None:
    """One channel, one token: every env's requests for a channel go through one client."""
    from envbuild.credentials import token_mirrors

    seen: dict[str, tuple[str, str]] = {}  # public -> (real, first env)
    for spec in specs:
        for public, real in spec.credentials:
            if public not in spec.channels:
                continue
            first = seen.setdefault(public, (real, spec.name))
            try:
                token_mirrors([(public, first[0]), (public, real)])
            except ValueError:
                check.problems.append(
                    f"{MANIFEST}: channel {public} is given with different tokens (envs "
                    f"{first[1]}, {spec.name}): give every env the same token for one channel"
                )


@dataclass(frozen=True, slots=True)
class _Defaults:
    """The [workspace] values an env inherits."""

    archs: tuple[str, ...]
    channels: tuple[str, ...]
    virtual: dict[str, str]
    priority: str
    timeout: float
    index: str
    extra_indexes: tuple[str, ...]
    python_source: str
    pypi_resolver: str
    exclude_newer: str
    only_binary: tuple[str, ...]
    no_binary: tuple[str, ...]
    prefer_binary: bool


def _inline_pypi(check: Checker, table: str, entries: tuple[str, ...]) -> ParsedSpec:
    """The env's inline ``pypi`` list, in the requirements.txt grammar (options included);
    problems are located at the manifest line of the ``pypi`` key."""
    if not entries:
        return ParsedSpec()
    from envbuild.parsers.requirements import parse_requirements  # packaging: ~40 ms to import

    parsed = []
    for entry in entries:
        try:
            parsed.append(parse_requirements(entry, "-"))
        except SpecError as exc:
            for problem in exc.problems:
                check.add(table, "pypi", problem.removeprefix("-:1: "))
    return combine(*parsed)


def _env_spec(
    check: Checker,
    root: Path,
    name: str,
    env: Any,
    defaults: _Defaults,
    local: dict[str, str],
) -> EnvSpec | None:
    table = f"env.{name}"
    if not isinstance(env, dict):
        check.add(table, None, "must be a table")
        return None
    if not _ENV_NAME.match(name):
        header = table if re.fullmatch(r"[A-Za-z0-9_-]+", name) else f"env.{json.dumps(name)}"
        line = next(
            (
                i + 1
                for i, text in enumerate(check.lines)
                if re.match(r"^\s*\[\s*env\s*\.", text)
                and re.sub(r"\s", "", text.split("#")[0])
                in {f"[env.{key}]" for key in (name, json.dumps(name), f"'{name}'")}
            ),
            0,
        )
        check.problems.append(
            f"{MANIFEST}{f':{line}' if line else ''}: [{header}]: env name {shown(name)} may "
            "only hold a-z, 0-9, '_', '.', '-' and must start with a letter or digit (it names "
            "a directory of locks): rename the table"
        )
    check.keys(table, env, ENV_KEYS)
    archs = check.archs(table, env) or defaults.archs
    parsed = ParsedSpec()
    files: tuple[str, ...] = ()
    rel = check.string(table, env, "file")
    chosen = {key: check.str_list(table, env, key) or () for key in ("extras", "groups")}
    for key, names in chosen.items():
        if names and (rel is None or Path(rel).name != "pyproject.toml"):
            check.add(
                table,
                key,
                f'{key} are chosen from a pyproject.toml: set file = "pyproject.toml" '
                f"(or remove {key})",
            )
    if rel is not None:
        kind_ok = rel.endswith((".yml", ".yaml", ".txt", ".in"))
        kind_ok = kind_ok or Path(rel).name == "pyproject.toml"
        if not rel:
            check.add(table, "file", 'must name a spec file, like file = "environment.yml"')
        elif (root / rel).is_dir():
            check.add(table, "file", f"'{rel}' is a directory: name a spec file in it")
        elif not (root / rel).is_file():
            check.add(
                table,
                "file",
                f"'{rel}' does not exist: create it or fix the path (relative to {MANIFEST})",
            )
        elif not kind_ok:
            check.add(
                table,
                "file",
                f"'{rel}' is not an environment.yml (.yml), requirements (.txt, .in) or "
                "pyproject.toml",
            )
        else:
            files = (Path(rel).as_posix(),)
            try:
                parsed = _read_spec_file(root, rel, chosen["extras"], chosen["groups"])
                parsed = _rebase_paths(parsed, Path(rel).parent)
            except SpecError as exc:
                check.problems.extend(exc.problems)
    conda_inline: list[Dep] = []
    python = conda_python = None
    for spec in check.str_list(table, env, "conda") or ():
        try:
            value = normalise_conda_spec(spec)
        except ValueError as exc:
            check.add(table, "conda", f"'{spec}' is not a valid conda spec: {exc}")
            continue
        pkg, _, version = value.partition(" ")
        if pkg == "python":
            python = python_version_spec(version) or "*"
            conda_python = spec if version else None  # a bare "python" asks for no version
        else:
            conda_inline.append(Dep(value))
    py = env.get("python")
    if py is not None:
        if not isinstance(py, str) or not py.strip():
            check.add(table, "python", 'must be a version string, like python = "3.11"')
        elif not is_python_version(py.strip()):
            check.add(
                table,
                "python",
                f'{shown(py)} is not a python version: write one like python = "3.11", '
                '"3.11.4" or ">=3.10,<3.13"',
            )
        elif conda_python is not None and python_version_spec(py) != python:
            check.add(
                table,
                "python",
                f"python = {json.dumps(py)} contradicts '{conda_python}' in conda: give the "
                "python version once (remove one of them)",
            )
        else:
            python = python_version_spec(py)
    inline = _inline_pypi(check, table, check.str_list(table, env, "pypi") or ())
    merged = combine(parsed, ParsedSpec(conda=tuple(conda_inline), python=python), inline)
    spec_channels = []
    for ch in expand_defaults(merged.channels):  # --conda-channel defaults too
        if is_valid_channel(ch) and ("://" not in ch or has_location(ch)):
            spec_channels.append(normalise_channel(ch, local))
        else:
            where = files[0] if files else f"{MANIFEST} [{table}] pypi"
            check.problems.append(f"{where}: '{ch}' is not a channel name, path or URL")
    # The env's own list, else its spec files' (an environment.yml naming channels uses
    # those alone, as conda-lock does; with nodefaults even none), else the workspace's.
    implicit = () if merged.nodefaults else defaults.channels
    channels = check.channels(table, env, local) or tuple(spec_channels) or implicit
    python_source = check.choice(table, env, "python-source", PYTHON_SOURCES)
    python_source = python_source or defaults.python_source
    needs_channel = merged.conda or (merged.python and python_source == "conda")
    if not channels and needs_channel and merged.nodefaults:
        check.add(
            table,
            "channels",
            f"no channels: {files[0]} names only nodefaults, so the workspace's channels are "
            "not used: list its channels there, or set channels in this env",
        )
    elif not channels and needs_channel:
        check.add(table, "channels", "no channels: set channels in [workspace] or in this env")
    if python_source == "host" and merged.pypi and plain_python_version(merged.python) is None:
        got = f"got '{merged.python}'" if merged.python else "none given"
        check.add(
            table,
            "python",
            f'python-source = "host" needs a plain python version, like python = "3.11" or '
            f'"3.11.4" ({got}): the env resolves for it on every arch, and is created with a '
            "matching interpreter of the target machine",
        )
    given = []  # (where, key, values): an env's key replaces the workspace's; files add
    for key, default in (("only-binary", defaults.only_binary), ("no-binary", defaults.no_binary)):
        own = check.binary(table, env, key)
        where = f"[{table}] {key}" if own is not None else f"[workspace] {key}"
        given.append((where, key, default if own is None else own))
    for where, part in [*((f, parsed) for f in files), (f"[{table}] pypi", inline)]:
        given += [(where, "only-binary", part.only_binary), (where, "no-binary", part.no_binary)]
    own_prefer = check.flag(table, env, "prefer-binary")
    prefer_binary = defaults.prefer_binary if own_prefer is None else own_prefer
    prefer_binary = prefer_binary or merged.prefer_binary  # a file's --prefer-binary adds
    only_binary, no_binary, problems = binary_options.merge(given)
    for problem in problems:
        check.add(table, None, problem)
    vp = dict(defaults.virtual) | check.virtual(table, env) | dict(merged.sys)
    env_extra = check.urls(table, env, "extra-indexes") or ()
    extra_idx = tuple(dict.fromkeys(defaults.extra_indexes + env_extra + merged.extra_indexes))
    secrets: dict[str, str] = {}

    def hide(url: str) -> str:
        public = redact_url(url)
        if public != url:
            secrets[public] = url
        return public

    def hide_text(value: str) -> str:  # a direct URL may carry credentials too
        public = redact_text(value, mark=False)
        if public != value:
            secrets[public] = value
        return public

    pypi = [Dep(hide_text(dep.value), dep.archs) for dep in merged.pypi]
    return EnvSpec(
        name=name,
        archs=archs,
        channels=tuple(hide(c) for c in channels),
        conda=merged.conda,
        pypi=tuple(pypi),
        python=merged.python,
        pypi_index=hide(defaults.index),
        extra_indexes=tuple(hide(u) for u in extra_idx),
        find_links=tuple(hide(u) for u in merged.find_links),
        trusted_hosts=merged.trusted_hosts,
        pre=merged.pre,
        no_index=merged.no_index,
        only_binary=only_binary,
        no_binary=no_binary,
        prefer_binary=prefer_binary,
        virtual_packages=tuple(sorted(vp.items())),
        pypi_constraints=tuple(sorted({hide_text(c) for c in merged.constraints})),
        pypi_hashes=merged.hashes,
        hash_origins=merged.hash_origins,
        spec_files=files + tuple(f for f in parsed.files if f not in files),  # with -r / -c
        python_source=python_source,
        settings=ResolverSettings(
            channel_priority=check.choice(table, env, "channel-priority", PRIORITIES)
            or defaults.priority,
            solve_timeout=check.seconds(table, env, "solve-timeout") or defaults.timeout,
            pypi_resolver=check.choice(table, env, "pypi-resolver", PYPI_RESOLVERS)
            or defaults.pypi_resolver,
            exclude_newer=check.timestamp(table, env) or defaults.exclude_newer,
        ),
        credentials=tuple(sorted(secrets.items())),
    )


def _rebase_paths(parsed: ParsedSpec, spec_dir: Path) -> ParsedSpec:
    """Relative paths in a spec file (local requirements, find-links) are relative to that
    file; make them relative to the workspace root, where the resolver starts."""
    import dataclasses
    import posixpath

    if spec_dir == Path("."):
        return parsed

    def rebase(value: str) -> str:
        return "./" + posixpath.normpath(posixpath.join(spec_dir.as_posix(), value))

    def is_relative_link(value: str) -> bool:
        return "://" not in value and not value.startswith(("/", "~", "$"))

    return dataclasses.replace(
        parsed,
        pypi=tuple(
            Dep(rebase(d.value), d.archs) if is_local_path(d.value) else d for d in parsed.pypi
        ),
        find_links=tuple(rebase(u) if is_relative_link(u) else u for u in parsed.find_links),
    )
