"""Parser for requirements.txt files (the metaflow Conda plugin's grammar, rc5 and later)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from envbuild.errors import SpecError
from envbuild.parsers import VCS_PREFIXES, Dep, ParsedSpec, normalise_conda_spec
from envbuild.parsers.binary import apply_option, normalise

__all__ = ["parse_requirements"]

_COMMENT_RE = re.compile(r"(^|\s+)#.*$")
_PATH_PREFIXES = ("./", "../", "/", "file:")
_PATH_EXACT = (".", "..")
_ARCHIVE_SUFFIXES = (".whl", ".tar.gz", ".zip", ".tar.bz2")
_SYS_NAME_RE = re.compile(r"__[a-z0-9_]+")
_SYS_VERSION_RE = re.compile(r"[A-Za-z0-9_.+!*-]+")
_BARE_MINOR_RE = re.compile(r"\d+(\.\d+)?")

# Options taking exactly one whitespace-free value, and the ParsedSpec field they feed.
_VALUE_OPTIONS = {
    "--extra-index-url": "extra_indexes",
    "-f": "find_links",
    "--find-links": "find_links",
    "--trusted-host": "trusted_hosts",
    "--conda-channel": "channels",
}
_FLAG_OPTIONS = ("--pre", "--no-index")


@dataclass
class _State:
    """Mutable accumulator; all collections keep first appearances only (deduplicated)."""

    path: str
    problems: list[str] = field(default_factory=list)
    lists: dict[str, list[str]] = field(default_factory=dict)
    conda: list[str] = field(default_factory=list)
    pypi: list[str] = field(default_factory=list)
    sys: dict[str, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    python: str | None = None
    only_binary: set[str] = field(default_factory=set)
    no_binary: set[str] = field(default_factory=set)

    def problem(self, lineno: int, message: str) -> None:
        self.problems.append(f"{self.path}:{lineno}: {message}")

    def add(self, key: str, value: str) -> None:
        items = self.lists.setdefault(key, [])
        if value not in items:
            items.append(value)


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Strip comments, join backslash continuations, drop blanks; keep first line numbers."""
    result: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = _COMMENT_RE.sub("", raw)
        if not pending:
            start = lineno
        if line.endswith("\\"):
            pending.append(line[:-1])
            continue
        pending.append(line)
        result.append((start, "".join(pending).strip()))
        pending = []
    if pending:
        result.append((start, "".join(pending).strip()))
    return [(lineno, line) for lineno, line in result if line]


def _split_option(line: str) -> tuple[str, str]:
    """Split ``--opt=v``, ``--opt v`` or ``-xV`` into the option and its (stripped) value."""
    parts = line.split(None, 1)
    first = parts[0]
    rest = parts[1].strip() if len(parts) > 1 else ""
    if first.startswith("--"):
        if "=" in first:
            first, _, attached = first.partition("=")
            rest = f"{attached} {rest}".strip()
    elif len(first) > 2:
        first, attached = first[:2], first[2:]
        rest = f"{attached} {rest}".strip()
    return first, rest


def _parse_option(state: _State, lineno: int, line: str) -> None:
    opt, value = _split_option(line)
    if opt in ("-i", "--index-url"):
        state.problem(
            lineno,
            f"'{line}' is not supported: set `pypi-index` in the [workspace] table of "
            "envbuild.toml for the base index, and use --extra-index-url for additional indexes",
        )
    elif opt in ("-e", "--editable"):
        state.problem(
            lineno,
            f"'{line}' is an editable requirement, which envbuild does not support: "
            "use a plain path or VCS URL instead",
        )
    elif opt in _FLAG_OPTIONS:
        if value:
            state.problem(lineno, f"'{line}' is not valid: {opt} takes no value")
        else:
            state.flags.add(opt)
    elif opt in _VALUE_OPTIONS:
        if not value or len(value.split()) != 1:
            state.problem(lineno, f"'{line}' is not valid: {opt} takes exactly one value")
        else:
            state.add(_VALUE_OPTIONS[opt], value)
    elif opt == "--conda-pkg":
        if not value:
            state.problem(lineno, f"'{line}' is not valid: --conda-pkg needs a conda package spec")
        else:
            try:
                state.conda.append(normalise_conda_spec(value))
            except ValueError as exc:
                state.problem(
                    lineno, f"'{line}' is not valid: '{value}' is not a conda spec: {exc}"
                )
    elif opt == "--sys-pkg":
        _parse_sys_pkg(state, lineno, line, value)
    elif opt in ("--only-binary", "--no-binary"):
        _parse_binary(state, lineno, line, opt, value)
    else:
        state.problem(lineno, f"'{line}' is not a supported line in a requirements.txt")


def _parse_binary(state: _State, lineno: int, line: str, opt: str, value: str) -> None:
    """pip's ``--only-binary`` / ``--no-binary``: comma-separated names, ``:all:``,
    ``:none:``; applied in order, a later option overriding an earlier one for a name."""
    if not value or len(value.split()) != 1:
        state.problem(
            lineno,
            f"'{line}' is not valid: {opt} takes one value: comma-separated package names, "
            ":all: or :none:",
        )
        return
    only, no = state.only_binary, state.no_binary
    target, other = (only, no) if opt == "--only-binary" else (no, only)
    for bad in apply_option(value, target, other):
        state.problem(
            lineno, f"'{line}' is not valid: '{bad}' is not a package name, :all: or :none:"
        )


def _parse_sys_pkg(state: _State, lineno: int, line: str, value: str) -> None:
    name, sep, version = "".join(value.split()).partition("==")
    if not (sep and _SYS_NAME_RE.fullmatch(name) and _SYS_VERSION_RE.fullmatch(version)):
        state.problem(
            lineno,
            f"'{line}' is not a valid --sys-pkg: expected __name==version "
            "(e.g. --sys-pkg __cuda==12.0)",
        )
        return
    known = state.sys.get(name)
    if known is None:
        state.sys[name] = version
    elif known != version:
        state.problem(lineno, f"'{line}' conflicts with an earlier --sys-pkg {name}=={known}")


def _strip_hashes(state: _State, lineno: int, line: str) -> str | None:
    """Drop trailing ``--hash`` options; None (after a problem) if another option is present."""
    tokens = line.split()
    kept: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.startswith("--hash="):
            i += 1
        elif token == "--hash":
            i += 2
        elif token.startswith("--"):
            state.problem(
                lineno,
                f"'{line}' uses the per-requirement option '{token.split('=', 1)[0]}', "
                "which envbuild does not support (only --hash is accepted, and dropped)",
            )
            return None
        else:
            kept.append(token)
            i += 1
    return " ".join(kept)


def _normalise(req: Requirement) -> str:
    """Canonical rendering, equal to ``str(req)`` up to name and extras canonicalisation."""
    out: str = canonicalize_name(req.name)
    if req.extras:
        out += "[" + ",".join(sorted({canonicalize_name(e) for e in req.extras})) + "]"
    if req.url:
        out += f" @ {req.url}"
        if req.marker is not None:
            out += " "
    else:
        out += str(req.specifier)
    if req.marker is not None:
        out += f"; {req.marker}"
    return out


def _python_spec(req: Requirement) -> str | None:
    """The conda version spec for a bare ``python<specifier>`` line, or None if not bare."""
    if req.url or req.extras or req.marker is not None or not req.specifier:
        return None
    specs = list(req.specifier)
    if len(specs) == 1 and specs[0].operator == "==":
        version = specs[0].version
        return f"{version}.*" if _BARE_MINOR_RE.fullmatch(version) else version
    return str(req.specifier)


def _parse_requirement(state: _State, lineno: int, line: str) -> None:
    value = _strip_hashes(state, lineno, line)
    if value is None:
        return
    lowered = value.lower()
    is_path = value.startswith(_PATH_PREFIXES) or value in _PATH_EXACT
    if is_path or lowered.startswith(VCS_PREFIXES):
        state.pypi.append(value)
        return
    is_archive = lowered.endswith(_ARCHIVE_SUFFIXES)
    try:
        req = Requirement(value)
    except InvalidRequirement as exc:
        if is_archive:
            state.pypi.append(value)
        else:
            message = str(exc).splitlines()[0] if str(exc) else "unparseable"
            state.problem(lineno, f"'{line}' is not a valid requirement: {message}")
        return
    if is_archive and not req.url:
        # A "name" ending in .whl/.zip/... is a local archive, not a project on an index.
        state.pypi.append(value)
    elif canonicalize_name(req.name) == "python":
        _set_python(state, lineno, line, req)
    else:
        state.pypi.append(_normalise(req))


def _set_python(state: _State, lineno: int, line: str, req: Requirement) -> None:
    spec = _python_spec(req)
    if spec is None:
        state.problem(
            lineno,
            f"'{line}' is not valid: python can only be constrained by a plain version "
            "specifier (e.g. python==3.11 or python>=3.10), without extras, URL or marker",
        )
    elif state.python is None:
        state.python = spec
    elif state.python != spec:
        state.problem(
            lineno, f"'{line}' conflicts with an earlier python requirement ({state.python})"
        )


def _dedupe(values: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def parse_requirements(text: str, path: str) -> ParsedSpec:
    """Parse requirements.txt ``text``; ``path`` is only used in messages.

    Raises :class:`SpecError` with every problem found (each prefixed ``path:line:``).
    """
    state = _State(path=path)
    for lineno, line in _logical_lines(text):
        if line.startswith("-"):
            _parse_option(state, lineno, line)
        else:
            _parse_requirement(state, lineno, line)
    if state.problems:
        raise SpecError(state.problems)
    return ParsedSpec(
        conda=tuple(Dep(v) for v in _dedupe(state.conda)),
        pypi=tuple(Dep(v) for v in _dedupe(state.pypi)),
        channels=tuple(state.lists.get("channels", [])),
        extra_indexes=tuple(state.lists.get("extra_indexes", [])),
        find_links=tuple(state.lists.get("find_links", [])),
        trusted_hosts=tuple(state.lists.get("trusted_hosts", [])),
        pre="--pre" in state.flags,
        no_index="--no-index" in state.flags,
        python=state.python,
        sys=tuple(state.sys.items()),
        only_binary=normalise(state.only_binary),
        no_binary=normalise(state.no_binary),
    )
