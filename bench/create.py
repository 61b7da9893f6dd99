"""Benchmark: `envbuild create` from a warm cache vs the raw tools doing the same work
(targets: <= 1.3x the sum of the raw steps; a one-package update <= 25% of a full create).

Self-contained and offline. A channel is built from recipes before timing (N_CONDA small
noarch packages, 20,000 files by default, like a data-science env, and a `python` of this
interpreter's version) and wheels are local files (`--find-links`); the env holds all of
them. After one untimed run (every package fetched into envbuild's cache, extracted into
rattler's, wheels unpacked), each round, in an order that rotates, with `os.sync()` after
each removal (so the removal's writes are not charged to the next step):

- **envbuild**: `envbuild create env=bench` into a removed prefix, a fresh process: doit's
  up-to-date checks of resolve, fetch, transmute and build, every file hashed in full,
  rattler's install and the wheels; then the same command again (the env is current:
  envbuild's fixed cost per run); then after the spec gained one conda package (its lock
  written beforehand, as `envbuild resolve` would): the update.
- **raw**: the strongest plain use of the same tools, fresh processes too:
  1. a py-rattler script that reads the channel's repodata, keeps the lock's records and
     makes ONE `rattler.install` into a removed prefix, with envbuild's rattler cache dir;
  2. `uv pip install --offline --no-deps --no-index` of the same wheels into that prefix,
     from a warm uv cache (uv's default link mode: hard links);
  3. the same rattler script with the one-package-larger lock (rattler's own update).

Why `uv pip install --prefix PREFIX --python THIS_PYTHON`: uv must run an interpreter of
the target env, and a conda env's python built from a recipe (as here, or the stub
channel's) cannot run. `--prefix` makes uv lay the wheels out under the conda prefix
(`lib/pythonX.Y/site-packages`, `bin`) exactly as in a runnable env of that version; it runs
this interpreter only to learn the layout and tags. envbuild runs no interpreter at all: it
installs wheels in-process with the `installer` library, for the lock's python version,
hard-linking their files from an unpacked copy (as uv and rattler do).
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from _bytecode import ensure_bytecode

N_CONDA, N_FILES = 400, 50  # conda packages, files each (20,000 files: a data-science env)
N_WHEELS, WHEEL_FILES = 20, 25  # wheels, modules each
RATIO_TARGET, UPDATE_TARGET = 1.3, 0.25
PY = f"{sys.version_info.major}.{sys.version_info.minor}"
UV = Path(sys.executable).with_name("uv")

RAW_RATTLER = """
import asyncio, json, os, sys
from pathlib import Path
import rattler
lock, channel, prefix, cache = sys.argv[1:]
wanted = {p["filename"] for p in json.loads(Path(lock).read_text())["packages"] if p["kind"] == "conda"}
records = []
for subdir in Path(channel).iterdir():
    if (subdir / "repodata.json").is_file():
        data = rattler.RepoData.from_path(subdir / "repodata.json")
        records += [r for r in data.into_repo_data(rattler.Channel(Path(channel).as_uri()))
                    if r.file_name in wanted]
assert len(records) == len(wanted), (len(records), len(wanted))
asyncio.run(rattler.install(records, target_prefix=Path(prefix), cache_dir=Path(cache),
                            show_progress=False, execute_link_scripts=False))
sys.stdout.flush()
os._exit(0)  # py-rattler 0.28 may crash at interpreter teardown (README); envbuild does the same
"""


def host_subdir() -> str:
    import platform

    machine = {"x86_64": "64", "aarch64": "aarch64", "arm64": "arm64"}[platform.machine()]
    return f"{'osx' if sys.platform == 'darwin' else 'linux'}-{machine}"


def recipes(n_conda: int, n_files: int) -> str:
    out = [f'[[package]]\nname = "python"\nversion = "{PY}.0"\nsubdirs = ["{host_subdir()}"]\n']
    for name in [f"pkg{i:03d}" for i in range(n_conda)] + ["extra"]:
        files = ", ".join(
            f'"share/{name}/d{j % 5}/f{j}.txt" = "{name} {j} {"x" * 200}"' for j in range(n_files)
        )
        out.append(
            f'[[package]]\nname = "{name}"\nversion = "1.0"\nnoarch = "generic"\n'
            f"files = {{ {files} }}\n"
        )
    return "\n".join(out)


def record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def write_wheel(out: Path, name: str, version: str = "1.0") -> Path:
    """A pure-Python wheel with WHEEL_FILES modules and a console script."""
    info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/m{j}.py": f"VALUE = {j}\n{'# padding ' * 40}\n".encode()
        for j in range(WHEEL_FILES)
    }
    files[f"{name}/__init__.py"] = b"def main():\n    print('hi')\n"
    files[f"{info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    )
    files[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    files[f"{info}/entry_points.txt"] = f"[console_scripts]\n{name} = {name}:main\n".encode()
    rows = io.StringIO()
    writer = csv.writer(rows, lineterminator="\n")
    for arc, data in files.items():
        writer.writerow([arc, record_hash(data), len(data)])
    writer.writerow([f"{info}/RECORD", "", ""])
    files[f"{info}/RECORD"] = rows.getvalue().encode()
    path = out / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for arc, data in files.items():
            zf.writestr(zipfile.ZipInfo(arc, (1980, 1, 1, 0, 0, 0)), data)
    return path


def manifest(n_conda: int, extra: bool) -> str:
    conda = [f"pkg{i:03d}" for i in range(n_conda)] + (["extra"] if extra else [])
    pypi = ["--no-index", "--find-links wheels"] + [f"w{i:02d}" for i in range(N_WHEELS)]
    return (
        f'[workspace]\narchs = ["{host_subdir()}"]\nchannels = ["./channel"]\n\n'
        f'[env.bench]\npython = "{PY}"\nconda = {conda!r}\npypi = {pypi!r}\n'
    ).replace("'", '"')


def run(cwd: Path, *args: str) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"{' '.join(args)} failed:\n{proc.stdout}{proc.stderr}")
    return elapsed, proc.stderr


def envbuild(root: Path, *args: str) -> tuple[float, str]:
    return run(root, sys.executable, "-m", "envbuild.cli", *args)


def files_under(prefix: Path, top: str) -> set[str]:
    return {str(p.relative_to(prefix)) for p in (prefix / top).rglob("*") if p.is_file()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--packages", type=int, default=N_CONDA, help="conda packages")
    parser.add_argument("--files", type=int, default=N_FILES, help="files per conda package")
    args = parser.parse_args()
    ensure_bytecode()
    from envbuild.localchannel import build_channel

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        recipes_dir = Path(tmp) / "recipes"
        recipes_dir.mkdir(parents=True)
        (recipes_dir / "pkgs.toml").write_text(recipes(args.packages, args.files))
        channel = root / "channel"
        build_channel(recipes_dir, channel)
        (root / "wheels").mkdir()
        wheels = [write_wheel(root / "wheels", f"w{i:02d}") for i in range(N_WHEELS)]
        lock_path = root / "locks" / "bench" / f"{host_subdir()}.json"
        specs = {}
        for extra in (True, False):  # resolve both specs; the one without "extra" last
            (root / "envbuild.toml").write_text(manifest(args.packages, extra))
            envbuild(root, "resolve")
            specs[extra] = ((root / "envbuild.toml").read_bytes(), lock_path.read_bytes())

        def use(extra: bool) -> None:
            (root / "envbuild.toml").write_bytes(specs[extra][0])
            lock_path.write_bytes(specs[extra][1])

        prefix = root / ".envbuild" / "envs" / "bench"
        raw = Path(tmp) / "raw"
        rattler_cache = root / ".envbuild" / "cache" / "rattler"
        uv_env = {**os.environ, "UV_CACHE_DIR": str(Path(tmp) / "uv-cache"), "UV_NO_CONFIG": "1"}

        def raw_rattler(lock: bytes) -> float:
            raw_lock = Path(tmp) / "raw-lock.json"
            raw_lock.write_bytes(lock)
            elapsed, _ = run(root, sys.executable, "-c", RAW_RATTLER, str(raw_lock),
                             str(channel), str(raw), str(rattler_cache))  # fmt: skip
            return elapsed

        def raw_uv() -> float:
            start = time.perf_counter()
            subprocess.run(
                [str(UV), "pip", "install", "--offline", "--no-deps", "--no-index", "--python",
                 sys.executable, "--prefix", str(raw), *map(str, wheels)],
                check=True, capture_output=True, env=uv_env,
            )  # fmt: skip
            return time.perf_counter() - start

        def fresh(path: Path) -> None:
            shutil.rmtree(path, ignore_errors=True)
            os.sync()  # the removal's writes are not charged to the step that follows

        use(False)
        cold, _ = envbuild(root, "create", "env=bench")  # fetch, extract: untimed warm-up
        fresh(raw)
        raw_rattler(specs[False][1])
        raw_uv()  # uv's cache and rattler's are warm from here on
        # both sides did the same work: the same conda files and the same modules
        assert files_under(prefix, "share") == files_under(raw, "share")
        site = f"lib/python{PY}/site-packages"
        mods = {p for p in files_under(prefix, site) if ".dist-info" not in p}
        assert mods == {p for p in files_under(raw, site) if ".dist-info" not in p}, "wheels"
        assert len(mods) == N_WHEELS * (WHEEL_FILES + 1)

        t: dict[str, list[float]] = {k: [] for k in ("full", "noop", "update", "rattler", "uv",
                                                     "raw_update")}  # fmt: skip
        for i in range(args.rounds):
            order = ("envbuild", "raw") if i % 2 == 0 else ("raw", "envbuild")
            for side in order:
                if side == "raw":
                    fresh(raw)
                    t["rattler"].append(raw_rattler(specs[False][1]))
                    t["uv"].append(raw_uv())
                    os.sync()
                    t["raw_update"].append(raw_rattler(specs[True][1]))
                else:
                    fresh(prefix)
                    use(False)
                    t["full"].append(envbuild(root, "create", "env=bench")[0])
                    t["noop"].append(envbuild(root, "create", "env=bench")[0])
                    use(True)
                    os.sync()
                    elapsed, err = envbuild(root, "create", "env=bench")
                    assert "env bench: updated: +extra 1.0" in err.splitlines(), err
                    t["update"].append(elapsed)

    t["raw"] = [r + u for r, u in zip(t["rattler"], t["uv"], strict=True)]
    med = statistics.median
    print(f"env: {args.packages} conda packages ({args.packages * args.files} files) + python, "
          f"{N_WHEELS} wheels ({N_WHEELS * (WHEEL_FILES + 4)} files); {args.rounds} rounds")  # fmt: skip
    print(f"  first create (fetch + extract)               {cold:.3f} s")
    rows = (
        ("full", "envbuild create, warm cache"),
        ("rattler", "raw: rattler.install"),
        ("uv", "raw: uv pip install"),
        ("raw", "raw: sum"),
        ("noop", "envbuild create, env current (fixed cost)"),
        ("update", "envbuild create, one package added"),
        ("raw_update", "raw: rattler.install, one package added"),
    )
    for key, label in rows:
        print(f"  {label:<44} median {med(t[key]):.3f} s, best {min(t[key]):.3f} s")
    ratio, ratio_best = med(t["full"]) / med(t["raw"]), min(t["full"]) / min(t["raw"])
    verdict = "meets" if ratio <= RATIO_TARGET else "MISSES"
    print(f"  create / raw sum: {ratio:.2f}x median, {ratio_best:.2f}x best "
          f"({verdict} the <= {RATIO_TARGET}x target)")  # fmt: skip
    beyond = (med(t["full"]) - med(t["noop"])) / med(t["raw"])
    print(f"  create minus its fixed cost / raw sum: {beyond:.2f}x median")
    fraction, fraction_best = med(t["update"]) / med(t["full"]), min(t["update"]) / min(t["full"])
    verdict = "meets" if fraction <= UPDATE_TARGET else "MISSES"
    print(f"  update / create: {fraction:.0%} median, {fraction_best:.0%} best "
          f"({verdict} the <= {UPDATE_TARGET:.0%} target); raw rattler: "
          f"{med(t['raw_update']) / med(t['rattler']):.0%}")  # fmt: skip
    # what bounds the share: the run's fixed cost plus rattler's own one-package update
    # (its path resolver walks every installed file); envbuild's update work beyond its
    # fixed cost, against a whole raw rattler update process
    beyond_update = (med(t["update"]) - med(t["noop"])) / med(t["raw_update"])
    floor = (med(t["noop"]) + med(t["raw_update"])) / med(t["full"])
    print(f"  update minus fixed cost / raw rattler update: {beyond_update:.2f}x median; "
          f"fixed cost + raw rattler update = {floor:.0%} of a create")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
