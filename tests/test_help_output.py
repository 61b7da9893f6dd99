"""Help and output (issue 7 §8): ``envbuild --help`` describes envbuild; a no-op run is one
summary line (``-v``: a line per task); a resolve shows its progress in place on a terminal
(a real pseudo-terminal here) and plain lines elsewhere."""

from __future__ import annotations

import os
import pty
import sys
from pathlib import Path

import pytest
from conftest import _cli_env
from test_resolve_local import BASE_RECIPES

from envbuild.tasks import uptodate_line


@pytest.fixture(scope="module")
def channel(make_channel) -> str:
    return str(make_channel(BASE_RECIPES, name="base").as_uri())


@pytest.fixture
def ws(tmp_path: Path, channel: str) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "envbuild.toml").write_text(
        f'[workspace]\narchs = ["linux-64"]\nchannels = ["{channel}"]\n\n'
        '[env.a]\nconda = ["demo-lib"]\n\n[env.b]\nconda = ["demo-hello"]\n'
    )
    return root


def in_terminal(ws: Path, *args: str) -> tuple[int, str]:
    """``envbuild ARGS`` with stdout and stderr on a pseudo-terminal: (exit code, output)."""
    env = {**_cli_env(), "COLUMNS": "200", "LINES": "50"}
    pid, fd = pty.fork()
    if pid == 0:  # the child: envbuild on the terminal
        os.chdir(ws)
        os.execve(sys.executable, [sys.executable, "-m", "envbuild.cli", *args], env)
    out = b""
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        out += data
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), out.decode()


@pytest.mark.parametrize("args", [("--help",), ("-h",), ("help",)])
def test_help_describes_envbuild(tmp_path, run_cli, args):
    result = run_cli(tmp_path, *args)  # no workspace needed
    assert (result.returncode, result.stderr) == (0, "")
    text = result.stdout
    assert text.startswith("envbuild ")
    assert "reproducible conda + PyPI environments from envbuild.toml" in text
    for task in ("channel", "resolve", "fetch", "build", "transmute", "upload", "create"):
        assert f"\n  {task} " in text, task
    for command in ("show ENV", "export ENV", "create REF", "pack ", "alias REF", "get REF"):
        assert f"\n  {command}" in text, command
    for words in (
        "envbuild resolve --check",
        "env=NAME,...",
        "arch=ARCH,...",
        "-v, --verbose",
        "Every doit command works too: clean, dumpdb, forget, help, ignore, info, list",
        "2 an input or\nresolution error (one line per problem), 130 interrupted",
    ):
        assert words in text, words
    assert all(len(line) <= 92 for line in text.splitlines())


def test_help_of_a_task_and_of_a_doit_command(ws, run_cli):
    task = run_cli(ws, "help", "resolve")
    assert task.returncode == 0, task.stderr
    assert task.stdout.startswith("resolve  Resolve every env x arch into a lockfile")
    command = run_cli(ws, "help", "forget")
    assert command.returncode == 0, command.stderr
    assert "envbuild forget [TASK ...]" in command.stdout


def test_noop_is_one_line_and_verbose_lists_tasks(ws, run_cli):
    first = run_cli(ws, "resolve")
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [".  resolve:a@linux-64", ".  resolve:b@linux-64"]
    noop = run_cli(ws, "resolve")
    assert (noop.returncode, noop.stdout, noop.stderr) == (0, "", "2 locks up to date\n")
    for flag in ("-v", "--verbose"):
        verbose = run_cli(ws, flag, "resolve")
        assert (verbose.returncode, verbose.stderr) == (0, "")
        assert verbose.stdout.splitlines() == [
            "-- resolve:a@linux-64",
            "-- resolve:b@linux-64",
            "-- resolve:prune",
        ]


@pytest.mark.parametrize(
    ("counts", "line"),
    [
        ({"resolve": 60}, "60 locks up to date"),
        ({"resolve": 1}, "1 lock up to date"),
        (
            {"resolve": 4, "fetch": 4, "build": 4, "transmute": 4, "upload": 4},
            "4 locks, fetch, build, transmute, upload of 4 env x arch up to date",
        ),
        (
            {"channel": 1, "resolve": 4, "fetch": 4, "build": 2, "create": 1},
            "1 local channel, 4 locks, 1 env, fetch of 4 env x arch, build of 2 env x arch "
            "up to date",
        ),
    ],
)
def test_uptodate_line(counts, line):
    assert uptodate_line(counts) == line


def test_progress_on_a_terminal(ws, run_cli):
    """On a terminal: one status line redrawn in place (which env x arch is solving, how many
    are done), the report lines above it, no per-task lines; cleared at the end."""
    assert run_cli(ws, "resolve", "env=a").returncode == 0
    code, out = in_terminal(ws, "resolve")
    assert code == 0, out
    assert "\x1b[Kresolve 1/2 done; solving b@linux-64" in out  # a was up to date
    assert "\x1b[Kresolve 2/2 done" in out
    assert ".  resolve:" not in out and "-- resolve:" not in out
    lines = [ln.rsplit("\r", 1)[-1].replace("\x1b[K", "") for ln in out.split("\r\n")]
    assert [ln for ln in lines if ln] == ["locked b@linux-64: 2 packages", "1 lock up to date"]


def test_plain_lines_without_a_terminal(ws, run_cli):
    assert run_cli(ws, "resolve", "env=a").returncode == 0
    result = run_cli(ws, "resolve")
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stdout + result.stderr and "\x1b" not in result.stderr
    assert result.stdout == ".  resolve:b@linux-64\n"
    assert result.stderr == "locked b@linux-64: 2 packages\n1 lock up to date\n"


def test_noop_of_the_whole_graph_is_one_line(ws, run_cli):
    """The default tasks (resolve, fetch, build, transmute, upload to the workspace's local
    store) a second time: one line for all of them."""
    first = run_cli(ws)
    assert first.returncode == 0, first.stderr
    again = run_cli(ws)
    assert (again.returncode, again.stdout, again.stderr) == (
        0, "", "2 locks, fetch, build, transmute, upload of 2 env x arch up to date\n"
    )  # fmt: skip
