"""Benchmark: resolving a 20-package PyPI set for linux-64 and osx-arm64 with envbuild, with
raw `uv pip compile`, and with the `pip install --dry-run --report` approach, in one run.

envbuild runs as a pip-only env whose python 3.12 comes from ../shared/data/stub-channel
(skips when absent). Every tool resolves the same requirements for the same two targets,
pinned with the same exclude-newer date; caches are warmed by one untimed round first.
Targets: envbuild <= 1.3x raw uv, and >= 3x faster than pip.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _bytecode import ensure_bytecode

from envbuild.platforms import platform_tags, uv_platform, virtual_packages
from envbuild.resolve.pypi import uv_binary
from envbuild.runner import clean_env

STUB = Path(__file__).resolve().parents[2] / "shared" / "data" / "stub-channel"
PACKAGES = [
    "pandas", "scikit-learn", "requests", "boto3", "fastapi", "sqlalchemy", "numpy", "scipy",
    "pydantic", "httpx", "jinja2", "click", "rich", "pyyaml", "matplotlib", "pillow", "attrs",
    "cryptography", "flask", "pytest",
]  # fmt: skip
ARCHS = ("linux-64", "osx-arm64")
EXCLUDE_NEWER = "2025-12-01T00:00:00Z"  # after the stub channel's pythons and pip (exclude-newer reaches conda too)
PYTHON = {"linux-64": "3.12.4", "osx-arm64": "3.12.12"}  # the stub channel's pythons
# macOS 13 (uv's own default target): scikit-learn's arm64 wheels need macOS >= 12.
VIRTUAL = {"__osx": "13.0"}


def timed(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{cmd[:3]} failed:\n{proc.stdout}\n{proc.stderr}")
    return time.perf_counter() - start


def envbuild_round(ws: Path) -> float:
    shutil.rmtree(ws / "locks", ignore_errors=True)
    shutil.rmtree(ws / ".envbuild", ignore_errors=True)
    return timed([sys.executable, "-m", "envbuild.cli", "resolve"], ws)


def uv_round(work: Path) -> float:
    total = 0.0
    for arch in ARCHS:
        platform, env = uv_platform(arch, virtual_packages(arch, VIRTUAL))
        total += timed(
            [uv_binary(), "pip", "compile", "requirements.in", "-o", f"pylock.{arch}.toml",
             "--format", "pylock.toml", "--no-config", "--quiet", "--python", sys.executable,
             "--no-python-downloads", "--python-version", PYTHON[arch], "--python-platform", platform,
             "--exclude-newer", EXCLUDE_NEWER],
            work, clean_env(env),
        )  # fmt: skip
    return total


def pip_round(work: Path) -> float:
    total = 0.0
    for arch in ARCHS:
        platforms = platform_tags(arch, virtual_packages(arch, VIRTUAL))
        total += timed(
            [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
             "--isolated", "--quiet", "--report", f"report.{arch}.json", "-r", "requirements.in",
             "--only-binary", ":all:", "--python-version", "3.12", "--implementation", "cp",
             "--abi", "cp312", "--abi", "abi3", "--abi", "none",
             "--uploaded-prior-to", EXCLUDE_NEWER,
             *[a for p in platforms for a in ("--platform", p)]],
            work, clean_env(),
        )  # fmt: skip
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    ensure_bytecode()
    if not STUB.is_dir():
        print(f"skipped: {STUB} is absent (it ships beside the repo as ../shared/data)")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "requirements.in").write_text("\n".join(PACKAGES) + "\n")
        ws = work / "ws"
        ws.mkdir()
        (ws / "envbuild.toml").write_text(
            f'[workspace]\narchs = {list(ARCHS)!r}\nchannels = ["{STUB.as_uri()}"]\n'
            f'exclude-newer = "{EXCLUDE_NEWER}"\n[workspace.virtual-packages]\n__osx = "13.0"\n\n'
            f'[env.big]\npython = "3.12"\n'
            f"pypi = {PACKAGES!r}\n".replace("'", '"')
        )
        envbuild_round(ws), uv_round(work), pip_round(work)  # warm every cache
        times: dict[str, list[float]] = {"envbuild": [], "uv": [], "pip": []}
        for _ in range(args.rounds):
            times["envbuild"].append(envbuild_round(ws))
            times["uv"].append(uv_round(work))
            times["pip"].append(pip_round(work))
        pins = sum(1 for line in (ws / "locks" / "big" / "linux-64.json").read_text().splitlines()
                   if '"kind": "pypi"' in line)  # fmt: skip
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"PyPI resolve of {len(PACKAGES)} packages ({pins} pins) for {' + '.join(ARCHS)}, "
          f"median of {args.rounds} warm rounds:")  # fmt: skip
    print(f"  envbuild resolve                 {med['envbuild']:.2f} s")
    print(f"  raw uv pip compile (x2)          {med['uv']:.2f} s")
    print(f"  pip install --dry-run --report   {med['pip']:.2f} s")
    print(f"  envbuild / uv  = {med['envbuild'] / med['uv']:.2f}x   (target <= 1.3x)")
    print(f"  pip / envbuild = {med['pip'] / med['envbuild']:.1f}x   (target >= 3x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
