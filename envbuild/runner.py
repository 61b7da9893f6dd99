"""The one way envbuild runs a subprocess: logged (credentials redacted), failures wrapped."""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
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


def run(
    cmd: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd``; raise :class:`ToolError` (message and stderr redacted) when it fails."""
    shown = redact_text(shlex.join(str(c) for c in cmd))
    log.info("run: %s", shown)
    try:
        proc = subprocess.run(
            [str(c) for c in cmd],
            env=dict(env) if env is not None else None,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        raise ToolError(f"{cmd[0]}: command not found: install it or fix PATH") from None
    except subprocess.TimeoutExpired:
        raise ToolError(f"`{shown}` took longer than {timeout:g} s and was stopped") from None
    if proc.returncode:
        err = redact_text(proc.stderr.strip() or proc.stdout.strip())
        raise ToolError(f"`{shown}` failed (exit {proc.returncode}):\n{err}", err, proc.returncode)
    return proc
