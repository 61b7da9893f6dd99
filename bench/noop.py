"""Benchmark: a no-op `envbuild resolve` in a workspace of 30 envs x 2 archs (target: < 0.3 s).

Self-contained and offline: the workspace's channel is built from recipes by the `channel`
task. The first run resolves all 60 locks; the timed runs must run no task at all.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _bytecode import ensure_bytecode

N_ENVS = 30
TARGET = 0.3  # seconds, median of the no-op runs
RECIPES = "\n".join(
    f"""
[[package]]
name = "pkg{i}"
version = "1.{i}.0"
subdirs = ["linux-64", "osx-arm64"]
depends = {[f"pkg{i - 1} >=1"] if i else []!r}
files = {{ "share/pkg{i}/VERSION" = "1.{i}.0" }}
""".replace("'", '"')
    for i in range(10)
)


def make_workspace(root: Path) -> None:
    (root / "recipes").mkdir(parents=True)
    (root / "recipes" / "pkgs.toml").write_text(RECIPES)
    envs = "\n".join(
        f'[env.env{i:02d}]\nconda = ["pkg{i % 10} >=1.{i % 10}"]\n' for i in range(N_ENVS)
    )
    (root / "envbuild.toml").write_text(
        '[workspace]\narchs = ["linux-64", "osx-arm64"]\nchannels = ["bench"]\n'
        'local-channels = { bench = "recipes" }\n\n' + envs
    )


def envbuild(root: Path, *args: str) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "envbuild.cli", *args], cwd=root, capture_output=True, text=True
    )
    elapsed = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"envbuild {' '.join(args)} failed:\n{proc.stdout}{proc.stderr}")
    return elapsed, proc.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    ensure_bytecode()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_workspace(root)
        cold, _ = envbuild(root, "resolve")
        locks = sorted(root.glob("locks/*/*.json"))
        assert len(locks) == 2 * N_ENVS, len(locks)
        times = []
        for _ in range(args.rounds):
            elapsed, out = envbuild(root, "resolve")
            ran = [line for line in out.splitlines() if line.startswith(".")]
            assert not ran, f"a no-op run ran tasks: {ran}"
            times.append(elapsed)
    print(f"workspace: {N_ENVS} envs x 2 archs = {2 * N_ENVS} resolve tasks")
    print(f"  cold resolve (incl. channel build)  {cold:.3f} s")
    median = statistics.median(times)
    print(f"  no-op resolve, median of {args.rounds}       {median:.3f} s "
          f"(min {min(times):.3f}, max {max(times):.3f})")  # fmt: skip
    verdict = "under" if median < TARGET else "NOT under"
    print(f"  {verdict} the {TARGET} s target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
