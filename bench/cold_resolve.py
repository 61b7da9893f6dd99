"""Benchmark: a cold `envbuild resolve` vs the same conda solves run concurrently by plain py-rattler.

Two cases over ../shared/data/conda-forge-subset (real conda-forge repodata):
- `4arch`: one env, python=3.9 + openssl, for linux-64, linux-aarch64, osx-64, osx-arm64 (4 solves);
- `30x2`: 30 envs (python=3.9 plus various packages) for linux-64 and osx-arm64 (60 solves).

The baseline is the strongest plain py-rattler use: one process, one Gateway, every solve of the
case started at once with `asyncio.gather`. Both sides run as fresh interpreters (subprocesses)
with empty caches, so each pays its own imports, repodata loading and solving; envbuild also
parses the manifest, runs the doit graph and writes one lockfile per solve. Rounds are
interleaved (alternating which side goes first); prints median and best of each side and the
ratio per case (targets: <= 1.3x for 4arch, <= 1.15x for 30x2). Skips when the data is absent.
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

PY = "python=3.9"
ENVS_30 = {  # 30 distinct envs, each satisfiable from the subset on linux-64 and osx-arm64
    "base": [PY],
    "ssl": [PY, "openssl"],
    "ssl11": [PY, "openssl=1.1"],
    "ssl3": [PY, "openssl=3", "ca-certificates"],
    "web": [PY, "curl", "certifi"],
    "curl7": [PY, "curl=7"],
    "libcurl": [PY, "libcurl", "libssh2"],
    "krb": [PY, "krb5"],
    "http2": [PY, "libnghttp2", "c-ares", "libev"],
    "sqlite": [PY, "sqlite"],
    "sqlite340": [PY, "sqlite=3.40"],
    "compress": [PY, "zstd", "lz4-c", "bzip2", "xz"],
    "zlib": [PY, "zlib"],
    "zstd15": [PY, "zstd=1.5"],
    "xml": [PY, "expat"],
    "libexpat": [PY, "libexpat"],
    "gdbm": [PY, "gdbm"],
    "term": [PY, "ncurses", "readline"],
    "tk": [PY, "tk"],
    "ffi": [PY, "libffi", "libuuid"],
    "x11": [PY, "xorg-libx11"],
    "xcb": [PY, "libxcb"],
    "edit": [PY, "libedit"],
    "patch": [PY, "patch"],
    "pip": [PY, "pip"],
    "pip23": [PY, "pip=23", "setuptools=68"],
    "build": [PY, "pip", "setuptools", "wheel"],
    "pyutil": [PY, "six", "pyparsing", "packaging"],
    "tz": [PY, "tzdata", "certifi"],
    "omp": [PY, "llvm-openmp"],
}
CASES: dict[str, tuple[list[str], dict[str, list[str]]]] = {
    "4arch": (["linux-64", "linux-aarch64", "osx-64", "osx-arm64"], {"py39": [PY, "openssl"]}),
    "30x2": (["linux-64", "osx-arm64"], ENVS_30),
}
TARGETS = {"4arch": 1.3, "30x2": 1.15}

# Plain py-rattler, as a user would write it at its best: one Gateway, all solves at once. It
# gets the virtual packages envbuild uses (from a JSON job file), so both solve the same problems.
RATTLER_SCRIPT = """
import asyncio, datetime, json, sys
import rattler
from rattler import BuildString, GenericVirtualPackage, Gateway, PackageName, Subdir, Version
async def solve(gw, channel, specs, arch, vps):
    vps = [GenericVirtualPackage(PackageName(n), Version(v), BuildString(b)) for n, v, b in vps]
    recs = await rattler.solve([channel], specs, gateway=gw, platforms=[Subdir(arch), Subdir("noarch")],
                               virtual_packages=vps, timeout=datetime.timedelta(seconds=120),
                               timestamp_policy="allow-missing")
    assert any(r.name.normalized == "python" for r in recs)
async def main(job):
    gw = Gateway(cache_dir=job["cache"])
    await asyncio.gather(*(solve(gw, job["channel"], *s) for s in job["solves"]))
with open(sys.argv[1]) as fh:
    asyncio.run(main(json.load(fh)))
import os; os._exit(0)  # py-rattler 0.28 can crash in interpreter teardown (envbuild does this too)
"""


def run_envbuild(tmp: Path, case: str) -> float:
    archs, envs = CASES[case]
    ws = tmp / f"ws-{case}"
    shutil.rmtree(ws, ignore_errors=True)
    ws.mkdir()
    manifest = f'[workspace]\narchs = {archs!r}\nchannels = ["{DATA.as_uri()}"]\n'
    manifest += "".join(f"\n[env.{name}]\nconda = {specs!r}\n" for name, specs in envs.items())
    (ws / "envbuild.toml").write_text(manifest.replace("'", '"'))
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "envbuild.cli", "resolve"], cwd=ws, check=True,
                   capture_output=True)  # fmt: skip
    elapsed = time.perf_counter() - start
    assert len(list(ws.glob("locks/*/*.json"))) == len(envs) * len(archs)
    return elapsed


def rattler_job(tmp: Path, case: str) -> Path:
    """The baseline's job file (written once, outside the timing)."""
    from envbuild.platforms import virtual_packages

    archs, envs = CASES[case]
    vps = {arch: virtual_packages(arch, {}) for arch in archs}
    solves = [(specs, arch, vps[arch]) for specs in envs.values() for arch in archs]
    job = {"channel": DATA.as_uri(), "cache": str(tmp / "rattler-cache"), "solves": solves}
    path = tmp / f"job-{case}.json"
    path.write_text(json.dumps(job))
    return path


def run_rattler(tmp: Path, job: Path) -> float:
    shutil.rmtree(tmp / "rattler-cache", ignore_errors=True)
    script = tmp / "solve.py"
    script.write_text(RATTLER_SCRIPT)
    start = time.perf_counter()
    subprocess.run([sys.executable, str(script), str(job)], check=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--case", choices=[*CASES, "all"], default="all")
    args = parser.parse_args()
    ensure_bytecode()
    if not DATA.is_dir():
        print(f"skipped: {DATA} is absent (it ships beside the repo as ../shared/data)")
        return 0
    cases = list(CASES) if args.case == "all" else [args.case]
    times: dict[tuple[str, str], list[float]] = {(c, s): [] for c in cases for s in "er"}
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        jobs = {case: rattler_job(tmp, case) for case in cases}
        for i in range(args.rounds):  # interleaved, so machine noise hits both alike
            for case in cases:
                for side in "er" if i % 2 == 0 else "re":
                    run = run_envbuild(tmp, case) if side == "e" else run_rattler(tmp, jobs[case])
                    times[case, side].append(run)
    for case in cases:
        archs, envs = CASES[case]
        env_t, rat_t = times[case, "e"], times[case, "r"]
        env_med, rat_med = statistics.median(env_t), statistics.median(rat_t)
        print(f"cold resolve {case}: {len(envs)} env(s) x {len(archs)} archs = "
              f"{len(envs) * len(archs)} solves ({args.rounds} interleaved rounds)")  # fmt: skip
        print(f"  envbuild resolve              median {env_med:.3f} s   best {min(env_t):.3f} s")
        print(f"  py-rattler, asyncio.gather    median {rat_med:.3f} s   best {min(rat_t):.3f} s")
        print(f"  ratio envbuild/rattler: {env_med / rat_med:.2f} median, "
              f"{min(env_t) / min(rat_t):.2f} best (target <= {TARGETS[case]:.2f})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
