"""Parser for requirements.txt files (the metaflow Conda plugin's grammar, rc5 and later)."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from envbuild.errors import SpecError
from envbuild.parsers import (
    VCS_PREFIXES,
    Dep,
    ParsedSpec,
    is_local_path,
    normalise_conda_spec,
)
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
_FLAG_OPTIONS = ("--pre", "--no-index", "--require-hashes", "--prefer-binary")
_INCLUDE_OPTIONS = ("-r", "--requirement", "-c", "--constraint")
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_BOM = "\ufeff"


@dataclass
class _Frame:
    """One file being read: the top file, or one it includes with -r / -c."""

    path: str  # relative to the workspace root (as messages show it)
    reldir: str  # its directory relative to the top file's directory ("." for the top)
    constraint: bool = False  # read by -c: its requirement lines are constraints
    lineno: int = 0  # the line of the -r / -c being followed, while it is
    line: str = ""


@dataclass
class _State:
    """Mutable accumulator; all collections keep first appearances only (deduplicated)."""

    frames: list[_Frame]
    root: Path | None = None  # None: -r / -c cannot be followed (inline requirements)
    problems: list[str] = field(default_factory=list)
    lists: dict[str, list[str]] = field(default_factory=dict)
    conda: list[str] = field(default_factory=list)
    pypi: list[str] = field(default_factory=list)
    sys: dict[str, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    python: str | None = None
    only_binary: set[str] = field(default_factory=set)
    no_binary: set[str] = field(default_factory=set)
    constraints: list[str] = field(default_factory=list)
    hashes: dict[str, list[str]] = field(default_factory=dict)  # name -> ["sha256:..."]
    hash_origins: dict[str, str] = field(default_factory=dict)  # name -> "file:line"
    unhashed: list[str] = field(default_factory=list)  # "file:line: 'line'" without --hash
    files: list[str] = field(default_factory=list)  # included files, relative to the root

    @property
    def frame(self) -> _Frame:
        return self.frames[-1]

    def problem(self, lineno: int, message: str) -> None:
        self.problems.append(f"{self.frame.path}:{lineno}: {message}")

    def rebase(self, value: str) -> str:
        """A relative path of the current file, made relative to the top file's directory."""
        if self.frame.reldir == ".":
            return value
        joined = posixpath.normpath(posixpath.join(self.frame.reldir, value))
        if joined in (".", "..") or joined.startswith(("../", "/")):
            return joined
        return "./" + joined

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
        state.problem(lineno, _editable_message(line, value))
    elif opt in _INCLUDE_OPTIONS:
        _include(state, lineno, line, opt, value)
    elif opt in _FLAG_OPTIONS:
        if value:
            state.problem(lineno, f"'{line}' is not valid: {opt} takes no value")
        else:
            state.flags.add(opt)
    elif opt in _VALUE_OPTIONS:
        if not value or len(value.split()) != 1:
            state.problem(lineno, f"'{line}' is not valid: {opt} takes exactly one value")
        elif _VALUE_OPTIONS[opt] == "find_links" and "://" not in value:
            state.add("find_links", state.rebase(value) if _is_relative(value) else value)
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


def _is_relative(value: str) -> bool:
    return not value.startswith(("/", "~", "$"))


def _editable_message(line: str, value: str) -> str:
    """What to write instead of an editable requirement."""
    target = value.split("#", 1)[0]
    name = ""
    if "#egg=" in value:
        name = value.split("#egg=", 1)[1].split("&", 1)[0]
    elif target and not target.lower().startswith(VCS_PREFIXES) and "://" not in target:
        name = posixpath.basename(posixpath.normpath(target.rstrip("/")))
        if name in (".", "..", ""):
            name = ""
    name = name or "NAME"
    if target.startswith(_PATH_PREFIXES) or target in _PATH_EXACT:
        instead = f"'{name} @ {target}' or just '{target}'"
    else:
        instead = f"'{name} @ {target or 'URL'}'"
    return f"'{line}': editable installs are not supported: write {instead}"


def _include(state: _State, lineno: int, line: str, opt: str, value: str) -> None:
    """``-r FILE`` / ``-c FILE``: read FILE (relative to the file naming it) into the state."""
    if not value or len(value.split()) != 1:
        state.problem(lineno, f"'{line}' is not valid: {opt} takes exactly one file")
        return
    if state.root is None:
        state.problem(
            lineno,
            f"'{line}' is not supported here: {opt} needs a requirements file, named by "
            "`file` in envbuild.toml",
        )
        return
    frame = state.frame
    frame.lineno, frame.line = lineno, line
    target = posixpath.normpath(posixpath.join(posixpath.dirname(frame.path), value))
    for i, outer in enumerate(state.frames):
        if outer.path == target:
            chain = [f.path for f in state.frames[i + 1 :]] + [target]
            state.problems.append(
                f"{outer.path}:{outer.lineno}: {outer.line}: includes itself through "
                + " -> ".join(chain)
            )
            return
    file = state.root / target
    if not file.is_file():
        state.problem(lineno, f"{line}: '{target}' does not exist: create it or fix the path")
        return
    from envbuild.fs import read_utf8

    try:
        text = read_utf8(file, target)
    except SpecError as exc:  # not UTF-8: located in the included file
        state.problems.extend(exc.problems)
        return
    except OSError as exc:
        state.problem(lineno, f"{line}: '{target}' cannot be read: {exc.strerror or exc}")
        return
    top = posixpath.dirname(state.frames[0].path) or "."
    here = posixpath.dirname(target) or "."
    reldir = here if posixpath.isabs(here) else posixpath.relpath(here, top)
    constraint = frame.constraint or opt in ("-c", "--constraint")
    if target not in state.files:
        state.files.append(target)
    state.frames.append(_Frame(target, reldir, constraint))
    try:
        _parse_lines(state, text)
    finally:
        state.frames.pop()


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


def _split_hashes(state: _State, lineno: int, line: str) -> tuple[str, list[str]] | None:
    """The requirement without its ``--hash`` options, and those hashes (``sha256:HEX``);
    None (after a problem) if another option is present or a hash is not a sha256."""
    tokens = line.split()
    kept: list[str] = []
    hashes: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.startswith("--hash=") or token == "--hash":
            value = token[len("--hash=") :] if token != "--hash" else ""
            if token == "--hash":
                value = tokens[i + 1] if i + 1 < len(tokens) else ""
                i += 1
            i += 1
            algo, _, digest = value.partition(":")
            if algo != "sha256" or not _SHA256_RE.fullmatch(digest.lower()):
                state.problem(
                    lineno,
                    f"'{line}': '--hash={value}' is not a sha256 hash "
                    "(sha256:<64 hex digits>): only sha256 can be checked against the lock",
                )
                return None
            hashes.append(f"sha256:{digest.lower()}")
        elif token.startswith("--"):
            state.problem(
                lineno,
                f"'{line}' uses the per-requirement option '{token.split('=', 1)[0]}', "
                "which envbuild does not support (only --hash is accepted)",
            )
            return None
        else:
            kept.append(token)
            i += 1
    return " ".join(kept), hashes


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
    split = _split_hashes(state, lineno, line)
    if split is None:
        return
    value, hashes = split
    if state.frame.constraint:
        _parse_constraint(state, lineno, line, value, hashes)
        return
    lowered = value.lower()
    is_path = value.startswith(_PATH_PREFIXES) or value in _PATH_EXACT
    req: Requirement | None = None
    if not (is_path or lowered.startswith(VCS_PREFIXES)):
        try:
            req = Requirement(value)
        except InvalidRequirement as exc:
            if not lowered.endswith(_ARCHIVE_SUFFIXES):
                message = str(exc).splitlines()[0] if str(exc) else "unparseable"
                state.problem(lineno, f"'{line}' is not a valid requirement: {message}")
                return
        if req is not None and lowered.endswith(_ARCHIVE_SUFFIXES) and not req.url:
            req = None  # a "name" ending in .whl/.zip/... is a local archive, not a project
    if req is not None and canonicalize_name(req.name) == "python":
        if hashes:
            state.problem(lineno, f"'{line}': python comes from conda: --hash cannot apply")
        else:
            _set_python(state, lineno, line, req)
        return
    if hashes:
        if req is None:
            state.problem(
                lineno,
                f"'{line}': --hash needs a named requirement, like 'name @ {value}', to "
                "find the locked file it applies to",
            )
            return
        name = canonicalize_name(req.name)
        known = state.hashes.setdefault(name, [])
        known.extend(h for h in hashes if h not in known)
        state.hash_origins.setdefault(name, f"{state.frame.path}:{lineno}")
    else:
        state.unhashed.append(f"{state.frame.path}:{lineno}: '{line}'")
    if req is None:
        if is_local_path(value) and not _exists(state, lineno, line, value):
            return
        state.pypi.append(state.rebase(value) if is_local_path(value) else value)
    else:
        target = (
            (req.url or "").removeprefix("file:")
            if (req.url or "").startswith(("file:./", "file:../", "./", "../"))
            else ""
        )
        if target and not _exists(state, lineno, line, target):
            return
        state.pypi.append(_normalise(req))


def _exists(state: _State, lineno: int, line: str, target: str) -> bool:
    """Whether the local path ``target`` (relative to the file naming it) exists; a problem
    when it does not. Unchecked (True) without a workspace root (inline requirements)."""
    if state.root is None:
        return True
    where = posixpath.dirname(state.frame.path)
    if (state.root / where / target).exists():
        return True
    state.problem(
        lineno,
        f"'{line}': '{target}' does not exist (relative to {state.frame.path}): create it or "
        "fix the path",
    )
    return False


def _parse_constraint(state: _State, lineno: int, line: str, value: str, hashes: list[str]) -> None:
    """A requirement line of a file read with -c: a named constraint, never a requirement."""
    try:
        req = Requirement(value)
    except InvalidRequirement as exc:
        message = str(exc).splitlines()[0] if str(exc) else "unparseable"
        state.problem(
            lineno, f"'{line}' is not a valid constraint (a named requirement): {message}"
        )
        return
    if hashes:
        state.problem(lineno, f"'{line}': --hash is not supported in a constraints file")
    elif req.extras:
        state.problem(lineno, f"'{line}' is not a valid constraint: constraints take no extras")
    elif canonicalize_name(req.name) == "python":
        state.problem(
            lineno,
            f"'{line}' is not a valid constraint: python comes from conda; set python in "
            "envbuild.toml instead",
        )
    else:
        state.constraints.append(_normalise(req))


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


def _parse_lines(state: _State, text: str) -> None:
    for lineno, line in _logical_lines(text.removeprefix(_BOM)):
        if line.startswith("-"):
            _parse_option(state, lineno, line)
        else:
            _parse_requirement(state, lineno, line)


def parse_requirements(text: str, path: str, root: Path | None = None) -> ParsedSpec:
    """Parse requirements.txt ``text``; ``path`` names it in messages.

    With ``root``, ``path`` is the file's path relative to ``root``, and ``-r FILE`` /
    ``-c FILE`` read FILE relative to the file naming it (relative paths of an included file
    are made relative to ``path``'s directory). Without it, -r and -c are refused.

    Raises :class:`SpecError` with every problem found (each prefixed ``path:line:``).
    """
    state = _State(frames=[_Frame(path, ".")], root=root)
    _parse_lines(state, text)
    if "--require-hashes" in state.flags:
        state.problems += [
            f"{where} has no --hash, and --require-hashes asks every requirement to carry one"
            for where in state.unhashed
        ]
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
        prefer_binary="--prefer-binary" in state.flags,
        constraints=_dedupe(state.constraints),
        hashes=tuple(sorted((n, h) for n, hs in state.hashes.items() for h in hs)),
        hash_origins=tuple(sorted(state.hash_origins.items())),
        files=tuple(state.files),
    )
