"""Parsing and validating envbuild.toml (workspace settings + [env.NAME] tables) into a Workspace."""

from __future__ import annotations

import json
import math
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envbuild.channels import channel_url, is_valid_channel, redact_text, redact_url
from envbuild.errors import SpecError, toml_problem
from envbuild.fs import read_utf8
from envbuild.parsers import (
    NODEFAULTS,
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
from envbuild.platforms import ARCHS, check_arch
from envbuild.spec import DEFAULT_PYPI_INDEX, MANIFEST, EnvSpec, ResolverSettings, Workspace
from envbuild.validate import (
    NOT_URL,
    VIRTUAL_NAME,
    VIRTUAL_VERSION,
    has_location,
    is_index_url,
    is_python_version,
    shown,
    toml_value,
)

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


def _line_of(lines: list[str], table: str, key: str | None = None) -> int:
    """The 1-based line of ``[table]`` (or of ``key`` inside it); 0 if not found."""
    parts = [re.escape(p) for p in table.split(".")]
    header = re.compile(r"^\s*\[\s*" + r"\s*\.\s*".join(parts) + r"\s*\]")
    for i, line in enumerate(lines):
        if header.match(line):
            if key is None:
                return i + 1
            for j in range(i + 1, len(lines)):
                if lines[j].lstrip().startswith("["):
                    break
                if re.match(r"^\s*\"?" + re.escape(key) + r"\"?\s*=", lines[j]):
                    return j + 1
            return i + 1
    return 0


class _Checker:
    """Collects problems with ``envbuild.toml:LINE: [table] key ...`` locations."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.problems: list[str] = []

    def add(self, table: str, key: str | None, message: str) -> None:
        line = _line_of(self.lines, table, key)
        where = f"{MANIFEST}:{line}" if line else MANIFEST
        what = f"[{table}]" + (f" {key}" if key else "")
        self.problems.append(f"{where}: {what}: {message}")

    def keys(self, table: str, data: dict[str, Any], allowed: tuple[str, ...]) -> None:
        for key in data:
            if key not in allowed:
                self.add(table, key, f"unknown key '{key}': allowed keys are {', '.join(allowed)}")

    def str_list(self, table: str, data: dict[str, Any], key: str) -> tuple[str, ...] | None:
        value = data.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.add(table, key, f'must be a list of strings, like {key} = ["..."]')
            return None
        return tuple(dict.fromkeys(v.strip() for v in value if v.strip()))

    def string(self, table: str, data: dict[str, Any], key: str) -> str | None:
        value = data.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            self.add(table, key, f'must be a string, like {key} = "..."')
            return None
        return value.strip()

    def choice(
        self, table: str, data: dict[str, Any], key: str, options: tuple[str, ...]
    ) -> str | None:
        value = self.string(table, data, key)
        if value is not None and value not in options:
            self.add(table, key, f"'{value}' is not one of {', '.join(options)}")
            return None
        return value

    def archs(self, table: str, data: dict[str, Any]) -> tuple[str, ...] | None:
        archs = self.str_list(table, data, "archs")
        if archs is None:
            return None
        bad = [a for a in archs if not check_arch(a)]
        for a in bad:
            self.add(
                table, "archs", f"'{a}' is not a supported arch: use one of {', '.join(ARCHS)}"
            )
        if not archs:
            self.add(table, "archs", "must not be empty: list at least one arch")
        return None if bad or not archs else tuple(a for a in ARCHS if a in archs)

    def channels(
        self, table: str, data: dict[str, Any], local: dict[str, str]
    ) -> tuple[str, ...] | None:
        channels = self.str_list(table, data, "channels")
        if channels is None:
            return None
        out = []
        for ch in expand_defaults(channels):
            if ch == NODEFAULTS:
                self.add(
                    table,
                    "channels",
                    "'nodefaults' is for environment.yml: here the list is the whole list "
                    "already (envbuild adds no channel implicitly): remove it",
                )
            elif not is_valid_channel(ch) or ("://" in ch and not has_location(ch)):
                self.add(table, "channels", f"'{ch}' is not a channel name, path or URL")
            else:
                out.append(normalise_channel(ch, local))
        return tuple(out)

    def binary(self, table: str, data: dict[str, Any], key: str) -> tuple[str, ...] | None:
        """``only-binary`` / ``no-binary``: names or [":all:"]; None when not given."""
        values = self.str_list(table, data, key)
        if values is None:
            return None
        names, problems = binary_options.parse_list(values, key)
        for problem in problems:
            self.add(table, key, problem)
        return names

    def virtual(self, table: str, data: dict[str, Any]) -> dict[str, str]:
        value = data.get("virtual-packages", {})
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and k.startswith("__") and isinstance(v, str)
            for k, v in value.items()
        ):
            self.add(
                table, "virtual-packages", 'must map __names to versions, like __glibc = "2.28"'
            )
            return {}
        bad = False
        for name, version in value.items():
            if not VIRTUAL_NAME.match(name):
                bad = True
                self.add(
                    table,
                    "virtual-packages",
                    f"{shown(name)} is not a virtual package name: use __ and a-z, 0-9, '_', "
                    "like __glibc",
                )
            elif not VIRTUAL_VERSION.match(version.strip()):
                bad = True
                self.add(
                    table,
                    "virtual-packages",
                    f"{shown(version)} is not a version for {name}: write digits and dots, "
                    f'like {name} = "2.28" (or "VERSION=BUILD")',
                )
        return {} if bad else {k: v.strip() for k, v in value.items()}

    def seconds(self, table: str, data: dict[str, Any], key: str) -> float | None:
        """A positive, finite number of seconds; None when not given (or invalid)."""
        value = data.get(key)
        if value is None:
            return None
        if (
            not isinstance(value, (int, float))
            or isinstance(value, bool)
            or not math.isfinite(value)
            or value <= 0
        ):
            self.add(
                table,
                key,
                f"must be a positive number of seconds, like {key} = 120 (got {toml_value(value)})",
            )
            return None
        return float(value)

    def url(self, table: str, data: dict[str, Any], key: str) -> str | None:
        """An index URL (http, https or file); None when not given (or invalid)."""
        value = self.string(table, data, key)
        if value is None or is_index_url(value):
            return value
        self.add(table, key, NOT_URL.format(shown(value)))
        return None

    def urls(self, table: str, data: dict[str, Any], key: str) -> tuple[str, ...] | None:
        """A list of index URLs; the invalid ones are reported and left out."""
        values = self.str_list(table, data, key)
        if values is None:
            return None
        for value in values:
            if not is_index_url(value):
                self.add(table, key, NOT_URL.format(shown(value)))
        return tuple(v for v in values if is_index_url(v))

    def relative_dir(self, table: str, data: dict[str, Any], key: str) -> str | None:
        """A directory inside the workspace, as a relative path; None when not given."""
        value = self.string(table, data, key)
        if value is None:
            return None
        parts = value.replace("\\", "/").split("/")
        if not value or value.startswith(("/", "~")) or ".." in parts or ":" in parts[0]:
            self.add(
                table,
                key,
                f"{shown(value)} is outside the workspace: give a relative path inside it, "
                f'like {key} = "locks"',
            )
            return None
        return value


def normalise_channel(channel: str, local: dict[str, str]) -> str:
    """A channel as kept in a spec: local-channel names and relative paths as written (so the
    req_id does not depend on where the workspace lives); other names expanded to their URL."""
    if channel in local or channel.startswith((".", "/", "~")) or "://" in channel:
        return channel.rstrip("/")
    return channel_url(channel, Path("."))


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
    check = _Checker(text)
    for key in data:
        if key not in ("workspace", "env"):
            line = _line_of_prefix(check.lines, key)
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
        _timestamp(check, "workspace", ws) or "",
        check.binary("workspace", ws, "only-binary") or (),
        check.binary("workspace", ws, "no-binary") or (),
        bool(_flag(check, "workspace", ws, "prefer-binary")),
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
        raise SpecError(check.problems)
    return Workspace(
        root=root,
        envs=tuple(specs),
        store=store,
        store_options=store_options,
        locks_dir=locks_dir,
        preferred_format=fmt,
        local_channels=tuple(sorted(local.items())),
    )


def _check_channel_tokens(check: _Checker, specs: list[EnvSpec]) -> None:
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


def _line_of_prefix(lines: list[str], table: str) -> int:
    """The line of the first ``[table.…]`` header or ``table = …`` key; 0 if not found."""
    pattern = re.compile(
        r"^\s*(\[\s*" + re.escape(table) + r"\s*[.\]]|" + re.escape(table) + r"\s*=)"
    )
    return next((i + 1 for i, line in enumerate(lines) if pattern.match(line)), 0)


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


def _flag(check: _Checker, table: str, data: dict[str, Any], key: str) -> bool | None:
    """A true/false key; None when not given."""
    value = data.get(key)
    if value is not None and not isinstance(value, bool):
        check.add(table, key, f"must be true or false, like {key} = true")
        return None
    return value


def _inline_pypi(check: _Checker, table: str, entries: tuple[str, ...]) -> ParsedSpec:
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
    check: _Checker,
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
    own_prefer = _flag(check, table, env, "prefer-binary")
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
            exclude_newer=_timestamp(check, table, env) or defaults.exclude_newer,
        ),
        credentials=tuple(sorted(secrets.items())),
    )


def _timestamp(check: _Checker, table: str, data: dict[str, Any]) -> str | None:
    """``exclude-newer``: an RFC 3339 timestamp (a TOML datetime or a string), as UTC text."""
    import datetime

    value = data.get("exclude-newer")
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            value = None
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        value = datetime.datetime(value.year, value.month, value.day)
    if not isinstance(value, datetime.datetime):
        check.add(
            table,
            "exclude-newer",
            'must be a date-time, like exclude-newer = "2025-06-01T00:00:00Z"',
        )
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    return value.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
