"""The one way envbuild runs a subprocess: logged (credentials redacted), failures wrapped."""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from envbuild.channels import redact_text
from envbuild.errors import EnvbuildError

log = logging.getLogger(__name__)

# Configuration that must not leak from the user's environment into a resolution: the
# resolvers get their indexes, platforms and flags from the spec alone.
_SCRUB_PREFIXES = ("PIP_", "UV_")
_KEEP = {"UV_CACHE_DIR", "PIP_CACHE_DIR", "UV_OFFLINE", "UV_NATIVE_TLS"}


class ToolError(EnvbuildError):
    """An external tool failed. ``stderr`` holds its (redacted) error output."""

    def __init__(self, message: str, stderr: str = "", returncode: int = 0) -> None:
        super().__init__(message)
        self.stderr = stderr
        self.returncode = returncode


class Runner(Protocol):
    """What resolvers need to run a command (injected, so tests can pass a real one around)."""

    def __call__(
        self,
        cmd: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        timeout: float | None = None,
    ) -> subprocess.CompletedProcess[str]: ...


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The process environment without pip/uv configuration variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUB_PREFIXES) or k in _KEEP}
    env["PIP_CONFIG_FILE"] = os.devnull
    env.update(extra or {})
    return env


_LIVE: set[subprocess.Popen[str]] = set()  # children running now (stopped on Ctrl-C)
_LIVE_LOCK = threading.Lock()
_STOPPING = threading.Event()


def run(
    cmd: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd``; raise :class:`ToolError` (message and stderr redacted) when it fails.

    The child runs in its own process group (session), so that a timeout or
    :func:`stop_children` stops it with everything it started (uv's build backends)."""
    shown = redact_text(shlex.join(str(c) for c in cmd))
    log.info("run: %s", shown)
    if _STOPPING.is_set():
        raise ToolError(f"`{shown}` not started: envbuild is stopping")
    try:
        proc = subprocess.Popen(
            [str(c) for c in cmd],
            env=dict(env) if env is not None else None,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
    except FileNotFoundError:
        raise ToolError(f"{cmd[0]}: command not found: install it or fix PATH") from None
    with _LIVE_LOCK:
        _LIVE.add(proc)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc, signal.SIGKILL)
        proc.communicate()
        raise ToolError(f"`{shown}` took longer than {timeout:g} s and was stopped") from None
    finally:
        with _LIVE_LOCK:
            _LIVE.discard(proc)
    if proc.returncode:
        err = redact_text(stderr.strip() or stdout.strip())
        raise ToolError(f"`{shown}` failed (exit {proc.returncode}):\n{err}", err, proc.returncode)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def _kill_group(proc: subprocess.Popen[str], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def stop_children(grace: float = 2.0) -> int:
    """Stop every child :func:`run` started (SIGTERM to its process group, SIGKILL after
    ``grace`` seconds) and refuse new ones. Returns how many were running."""
    _STOPPING.set()
    with _LIVE_LOCK:
        live = list(_LIVE)
    for proc in live:
        _kill_group(proc, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in live:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        _kill_group(proc, signal.SIGKILL)  # its group may outlive it
    return len(live)
