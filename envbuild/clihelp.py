"""What ``envbuild --help`` says, and the checks of a command line before doit sees it:
unknown commands, tasks and filters get the nearest name."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Sequence

from envbuild.errors import EnvbuildError, SpecError, format_error

# doit's own commands (``envbuild help COMMAND`` shows each one's options)
DOIT_COMMANDS = (
    "clean", "dumpdb", "forget", "help", "ignore", "info", "list", "reset-dep", "run", "strace",
    "tabcompletion",
)  # fmt: skip
OWN_COMMANDS = ("show", "export", "create", "pack", "alias", "get")
FILTERS = ("env", "arch", "update")


def help_text(version: str) -> str:
    """The text of ``envbuild --help`` and ``envbuild help``."""
    from envbuild.tasks import TASK_DOCS

    tasks = "\n".join(f"  {name:<11}{doc}" for name, doc in TASK_DOCS.items())
    return f"""\
envbuild {version}: reproducible conda + PyPI environments from envbuild.toml, built
incrementally (spec -> resolve -> lock -> artifacts -> store -> env).

usage: envbuild [-C DIR] [-v] [TASK[:ENV@ARCH] ...] [env=NAME,...] [arch=ARCH,...]
       envbuild COMMAND ...

With no task, envbuild runs resolve, fetch, build, transmute and upload. Work that is
current is skipped: a run with nothing to do prints one summary line.

Tasks (one subtask per env x arch, like resolve:web@linux-64):
{tasks}

Filters (with any task):
  env=NAME,...     only these envs          arch=ARCH,...   only these archs
  update=NAME,...  resolve again, lifting these packages' pins (:all: for every one)

Resolve options:
  envbuild resolve --check [--json]   list the locks that are not current, with the
                                      reason; writes nothing; exit 1 when any is not
  envbuild resolve --update [NAME,...]  same as update=

Commands:
  show ENV [--arch A] [--json]          what a lock holds (or NAME:TAG, from a store)
  export ENV --format F -o FILE [--arch A]
                                        F: conda-lock, explicit, requirements, pylock
                                        (-o - writes to stdout)
  create REF --prefix DIR [--store URL] an env from a store (REF: NAME:TAG or
                                        REQ_ID:FULL_ID), or --from-bundle FILE
  pack REF-or-ENV -o FILE [--arch A]    an offline bundle of one env x arch
  alias REF NAME:TAG [--store URL]      point an alias at an env in the store
  get REF [--store URL] [--json]        an env's descriptor
  upload --alias NAME:TAG               alias the env a run uploads

Options:
  -C DIR           the workspace (default: the current directory)
  -v, --verbose    one line per task (ran or up to date) instead of the summary
  --version        print the version

Every doit command works too: {", ".join(DOIT_COMMANDS[:7])},
{", ".join(DOIT_COMMANDS[7:])} (envbuild help COMMAND or TASK for its options).

Exit codes: 0 done, 1 `resolve --check` found locks not current, 2 an input or
resolution error (one line per problem), 130 interrupted.
"""


# doit options that take a value as the next argument
_VALUED = (
    "-n", "--process", "-P", "--parallel-type", "--db-file", "--dep-file", "--backend",
    "--check_file_uptodate", "-r", "--reporter", "-o", "--output-file", "--verbosity",
    "--seek-file", "-f", "--file", "-d", "--dir", "--codec-cls",
)  # fmt: skip


_TASK_ARGS = ("clean", "forget", "ignore", "info", "reset-dep", "strace")


def nearest(word: str, names: Iterable[str]) -> str:
    """`` (did you mean 'X'?)`` for the closest of ``names``, or ``""``."""
    import difflib

    close = difflib.get_close_matches(word, list(names), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def check_command(args: Sequence[str], stages: Sequence[str]) -> None:
    """Refuse a first word that is no command, task or target, suggesting the nearest; the
    task names of ``run`` (and of a run without ``run``) likewise."""
    words = []
    items = iter(args)
    for arg in items:
        if arg in _VALUED:
            next(items, None)
        elif not arg.startswith("-") and "=" not in arg:
            words.append(arg)
    if not words:
        return
    if words[0] == "run" or words[0].split(":", 1)[0] in stages:
        check = words[1:] if words[0] == "run" else words
        known: tuple[str, ...] = tuple(stages)
    elif words[0] in _TASK_ARGS:  # doit commands that take task names
        check, known = words[1:], tuple(stages)
    elif words[0] in (*DOIT_COMMANDS, *OWN_COMMANDS):
        return  # their own arguments are theirs to check
    else:
        check, known = words[:1], (*stages, *DOIT_COMMANDS, *OWN_COMMANDS)
    for word in check:
        base = word.split(":", 1)[0]
        if base in known or "/" in word or word.endswith(".json"):  # or a target file
            continue
        raise EnvbuildError(
            f"unknown command or task '{word}'{nearest(base, known)}: see envbuild --help"
        )


def check_filters(
    args: Sequence[str], envs: Sequence[str], archs: Sequence[str], manifest: str
) -> None:
    """Every ``key=value`` of a task run: a known filter naming known envs and archs."""
    problems = []
    for arg in args:
        if arg.startswith("-") or "=" not in arg:
            continue
        key, _, value = arg.partition("=")
        if key not in FILTERS:
            problems.append(
                f"{arg}: unknown filter '{key}'{nearest(key, FILTERS)}: the filters are "
                "env=NAME,... arch=ARCH,... update=NAME,..."
            )
            continue
        names = [v.strip() for v in value.split(",") if v.strip()]
        if key in ("env", "arch") and not names:
            problems.append(f"{arg}: give at least one name, like {key}={(envs or archs)[0]}")
        if key == "update" and not names:
            problems.append(f"{arg}: give package names or :all:, like update=numpy,scipy")
        for name in names:
            if key == "env" and name not in envs:
                problems.append(
                    f"env={name}: no such env in {manifest}{nearest(name, envs)} "
                    f"(known: {', '.join(envs)})"
                )
            elif key == "arch" and name not in archs:
                problems.append(
                    f"arch={name}: not a supported arch{nearest(name, archs)} "
                    f"(use {', '.join(archs)})"
                )
    if problems:
        raise SpecError(problems)


class DoitErrors:
    """While doit runs: its ``ERROR: ...`` lines (command-line and task-option errors)
    come out as envbuild's ``envbuild: error: ...``, without doit's "Type ..." hints."""

    def __init__(self) -> None:
        self.seen = False
        self.stream = sys.stderr

    def __enter__(self) -> DoitErrors:
        sys.stderr = self
        return self

    def __exit__(self, *exc: object) -> None:
        sys.stderr = self.stream

    def write(self, text: str) -> int:
        if text.startswith("ERROR: "):
            self.seen = True
            first = text.removeprefix("ERROR: ").splitlines()[0] if text.strip() else ""
            first = re.sub(r" \(parsing options: .*?\]\)\. Got: \[.*\]$", "", first)
            self.stream.write(format_error(f"{first} (see envbuild --help)"))
            return len(text)
        if self.seen and (text.startswith("Type ") or not text.strip()):
            return len(text)  # doit's hints after its error
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()
