"""Benchmark: envbuild's transmute (.tar.bz2 -> .conda) at 1 and 2 workers vs `cph transmute`.

Self-contained and offline: 8 packages of a few MB each (source-like text that compresses
well and random bytes that do not) are built as .tar.bz2 with envbuild's own recipe builder.
Both sides convert the same files to .conda at the same zstd level, as fresh interpreters
(subprocesses), so each pays its own start-up and imports; rounds are interleaved (the order
of the sides rotates each round). Throughput is input (.tar.bz2) MB per second, median of
`--rounds`. Note that `cph transmute` also re-reads both files afterwards to check that
their member lists and sizes match; envbuild hashes its output instead (tests check the
contents).
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _bytecode import ensure_bytecode

CPH = Path(sys.executable).with_name("cph")
N_PACKAGES = 8
WORDS = ("self", "return", "import", "value", "data", "path", "index", "result", "config",
         "name", "items", "for", "in", "if", "else", "None", "True", "len", "append", "dict")  # fmt: skip

ENVBUILD_SCRIPT = """
import sys
from pathlib import Path
from envbuild.artifacts.transmute import transmute_many
out, level, workers, *srcs = sys.argv[1:]
done = transmute_many([(Path(s), Path(out)) for s in srcs], ".conda", int(level), int(workers))
assert len(done) == len(srcs)
"""


def source_text(rng: random.Random, size: int) -> str:
    """Python-like lines: compresses about 5x, like a package's .py files."""
    lines, total = [], 0
    while total < size:
        indent = " " * 4 * rng.randrange(4)
        words = rng.choices(WORDS, k=rng.randrange(2, 9))
        line = f"{indent}{words[0]}_{rng.randrange(500)} = {'.'.join(words[1:])}({rng.randrange(10**4)})"
        lines.append(line)
        total += len(line) + 1
    return "\n".join(lines) + "\n"


def binary_ish(rng: random.Random, size: int) -> str:
    """Random bytes as text (the recipe builder writes UTF-8 text): compresses only to about
    2/3, like a shared library's code."""
    return rng.randbytes(size * 2 // 3).decode("latin-1")


def make_packages(out_dir: Path) -> list[Path]:
    """N_PACKAGES .tar.bz2 packages of 3-7 MB of content each (about 40% text)."""
    from envbuild.localchannel import Recipe, build_package

    rng = random.Random(8)
    paths = []
    for i in range(N_PACKAGES):
        files: dict[str, str] = {}
        for j in range(rng.randrange(3, 7)):
            files[f"lib/python3.11/site-packages/pkg{i}/mod{j}.py"] = source_text(rng, 400_000)
        for j in range(rng.randrange(1, 4)):
            files[f"lib/libpkg{i}_{j}.so"] = binary_ish(rng, 1_500_000)
        files[f"share/doc/pkg{i}/README"] = source_text(rng, 5_000)
        recipe = Recipe.from_dict(
            {"name": f"pkg{i}", "version": "1.0", "subdirs": ["linux-64"],
             "format": ".tar.bz2", "files": files},
            f"package {i}",
        )  # fmt: skip
        paths.append(build_package(recipe, "linux-64", out_dir))
    return paths


def run_envbuild(srcs: list[Path], out: Path, level: int, workers: int) -> float:
    args = [str(out), str(level), str(workers), *map(str, srcs)]
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", ENVBUILD_SCRIPT, *args], check=True)
    return time.perf_counter() - start


def run_cph(src_dir: Path, out: Path, level: int, workers: int) -> float:
    cmd = [str(CPH), "transmute", str(src_dir / "*.tar.bz2"), ".conda", "--out-folder", str(out),
           "--zstd-compression-level", str(level), "--processes", str(workers)]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--zstd-level", type=int, default=3)
    args = parser.parse_args()
    ensure_bytecode()
    if not CPH.exists():
        print(f"skipped: {CPH} is absent (conda-package-handling's CLI)")
        return 0
    sides = [("envbuild", 1), ("envbuild", 2), ("cph", 1), ("cph", 2)]
    times: dict[tuple[str, int], list[float]] = {side: [] for side in sides}
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        start = time.perf_counter()
        srcs = make_packages(tmp / "in")
        built = time.perf_counter() - start
        mb = sum(p.stat().st_size for p in srcs) / 1e6
        for i in range(args.rounds):  # interleaved, so machine noise hits all sides alike
            for side in sides[i % 4 :] + sides[: i % 4]:
                out = tmp / "out"
                shutil.rmtree(out, ignore_errors=True)
                out.mkdir()
                tool, workers = side
                if tool == "envbuild":
                    elapsed = run_envbuild(srcs, out, args.zstd_level, workers)
                else:
                    elapsed = run_cph(tmp / "in", out, args.zstd_level, workers)
                assert len(list(out.glob("*.conda"))) == len(srcs), side
                times[side].append(elapsed)
    print(f"input: {len(srcs)} .tar.bz2 packages, {mb:.1f} MB (built in {built:.1f} s); "
          f"to .conda at zstd level {args.zstd_level}, median of {args.rounds} rounds")  # fmt: skip
    print(f"  {'side':<10} {'workers':>7} {'median s':>9} {'MB/s':>7} {'best s':>7} {'MB/s':>7}")
    rate = {}
    for tool, workers in sides:
        median, best = statistics.median(times[tool, workers]), min(times[tool, workers])
        rate[tool, workers] = mb / median
        print(f"  {tool:<10} {workers:>7} {median:>9.3f} {rate[tool, workers]:>7.1f} "
              f"{best:>7.3f} {mb / best:>7.1f}")  # fmt: skip
    for workers in (1, 2):
        ratio = rate["envbuild", workers] / rate["cph", workers]
        print(
            f"ratio envbuild/cph MB/s (medians) at {workers} worker{'s' * (workers > 1)}: {ratio:.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
