"""Benchmark: cold `envbuild resolve` of python=3.9 + openssl for 4 archs vs a direct py-rattler solve.

Both run as fresh interpreters (subprocesses) with empty caches, so each pays its own imports,
repodata loading and solving; envbuild additionally parses the manifest, runs the doit graph
and writes four lockfiles. Prints the median of N rounds and the ratio (target: <= 1.3x).
Needs ../shared/data/conda-forge-subset (skips with a message when absent).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _bytecode import ensure_bytecode

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "conda-forge-subset"
ARCHS = ["linux-64", "linux-aarch64", "osx-64", "osx-arm64"]
SPECS = ["python=3.9", "openssl"]

# A plain py-rattler script, as a user would write it; it gets the same virtual packages
# envbuild uses (passed in as JSON), so both solve the same problem.
RATTLER_SCRIPT = """
import asyncio, datetime, json, sys
import rattler
from rattler import BuildString, GenericVirtualPackage, Gateway, PackageName, Subdir, Version
VPS = json.loads(sys.argv[3])
async def main(channel, cache):
    gw = Gateway(cache_dir=cache)
    for arch, vps in VPS.items():
        vps = [GenericVirtualPackage(PackageName(n), Version(v), BuildString(b)) for n, v, b in vps]
        recs = await rattler.solve([channel], SPECS, gateway=gw, platforms=[Subdir(arch), Subdir("noarch")],
                                   virtual_packages=vps, timeout=datetime.timedelta(seconds=120),
                                   timestamp_policy="allow-missing")
        assert any(r.name.normalized == "python" for r in recs)
asyncio.run(main(sys.argv[1], sys.argv[2]))
import os; os._exit(0)  # py-rattler 0.28 can crash in interpreter teardown (envbuild does this too)
""".replace("SPECS", repr(SPECS))


def run_envbuild(tmp: Path) -> float:
    ws = tmp / "ws"
    shutil.rmtree(ws, ignore_errors=True)
    ws.mkdir()
    (ws / "envbuild.toml").write_text(
        f'[workspace]\narchs = {ARCHS!r}\nchannels = ["{DATA.as_uri()}"]\n\n'
        f"[env.py39]\nconda = {SPECS!r}\n".replace("'", '"')
    )
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "envbuild.cli", "resolve"], cwd=ws, check=True,
                   capture_output=True)  # fmt: skip
    elapsed = time.perf_counter() - start
    assert len(list((ws / "locks" / "py39").glob("*.json"))) == 4
    return elapsed


def run_rattler(tmp: Path) -> float:
    cache = tmp / "rattler-cache"
    shutil.rmtree(cache, ignore_errors=True)
    script = tmp / "solve.py"
    script.write_text(RATTLER_SCRIPT)
    start = time.perf_counter()
    from envbuild.platforms import virtual_packages

    vps = json.dumps({arch: virtual_packages(arch, {}) for arch in ARCHS})
    subprocess.run([sys.executable, str(script), DATA.as_uri(), str(cache), vps], check=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    ensure_bytecode()
    if not DATA.is_dir():
        print(f"skipped: {DATA} is absent (it ships beside the repo as ../shared/data)")
        return 0
    env_times, rat_times = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):  # interleaved, so machine noise hits both alike
            env_times.append(run_envbuild(Path(tmp)))
            rat_times.append(run_rattler(Path(tmp)))
    env_med, rat_med = statistics.median(env_times), statistics.median(rat_times)
    env_min, rat_min = min(env_times), min(rat_times)
    print(f"cold resolve, 4 archs, {' '.join(SPECS)} ({args.rounds} interleaved rounds):")
    print(f"  envbuild resolve     median {env_med:.3f} s   best {env_min:.3f} s")
    print(f"  direct py-rattler    median {rat_med:.3f} s   best {rat_min:.3f} s")
    print(f"  ratio                median {env_med / rat_med:.2f}x    best {env_min / rat_min:.2f}x"
          "   (target <= 1.3x)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
