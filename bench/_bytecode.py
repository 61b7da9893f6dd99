"""Benchmarks measure envbuild as installed: with its modules' bytecode compiled."""

from __future__ import annotations

import compileall
from pathlib import Path

import envbuild


def ensure_bytecode() -> None:
    """Compile envbuild's modules (a wheel install does this; an editable install under
    PYTHONDONTWRITEBYTECODE=1, as on these machines, never does, and every run would then
    recompile ~25 modules: 40 ms, as much as the whole doit import)."""
    compileall.compile_dir(Path(envbuild.__file__).parent, quiet=1)
