"""The exception hierarchy: one base, specific subclasses, messages that say what/where/how."""

from __future__ import annotations

from collections.abc import Iterable


class EnvbuildError(Exception):
    """Base class of every error envbuild raises on purpose (user-facing, exit code 2)."""

    exit_code = 2


class SpecError(EnvbuildError):
    """One or more problems in the manifest or a spec file.

    ``problems`` holds every problem found (all are collected before raising); each is a
    complete sentence starting with its location (``file:line`` or ``file: key``).
    """

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        if not self.problems:
            raise ValueError("SpecError needs at least one problem")
        super().__init__("; ".join(self.problems))


class UnsatisfiableError(EnvbuildError):
    """The solver proved that no package set satisfies the spec."""


class ResolveError(EnvbuildError):
    """Resolution failed for another reason (channel unreachable, timeout, ...)."""


class LockError(EnvbuildError):
    """A lockfile is missing, unreadable or of an unsupported version."""


class ExportError(EnvbuildError):
    """An export could not be produced."""


class CreateError(EnvbuildError):
    """An environment could not be created or updated."""


def collect(problems: list[str]) -> None:
    """Raise a :class:`SpecError` carrying all ``problems`` if there are any."""
    if problems:
        raise SpecError(problems)


def toml_problem(shown: str, exc: Exception, source: str = "") -> str:
    """A TOML syntax error of file ``shown`` (whose text is ``source``) as one problem:
    ``FILE:LINE: not valid TOML: WHAT (at line L, column C): fix the syntax there``."""
    import re

    text = str(exc)
    match = re.search(r"\(at line (\d+), column \d+\)", text)
    if match:
        shown += f":{match.group(1)}"
    elif "(at end of document)" in text and source:
        shown += f":{len(source.splitlines()) or 1}"
    return f"{shown}: not valid TOML: {text}: fix the syntax there"


def format_error(message: str) -> str:
    """A user error as the CLI prints it: ``envbuild: error: FIRST LINE`` and any further
    lines (a solver's explanation) indented below."""
    lines = message.splitlines() or [""]
    return "".join([f"envbuild: error: {lines[0]}\n", *(f"  {line}\n" for line in lines[1:])])
