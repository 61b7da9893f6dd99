"""Benchmark: `envbuild forget upload && envbuild upload` after a full run, 20 envs x 2 archs (target: < 1 s).

Self-contained and offline: the workspace's channel is built from recipes by the `channel`
task; the store is a local directory and/or an S3 bucket on a moto server started here on
loopback. One full `envbuild` run fills the store; each timed round then forgets doit's
record of the upload tasks and runs `upload` again, which must find every descriptor in the
store and upload nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from _bytecode import ensure_bytecode

N_ENVS = 20
ARCHS = ("linux-64", "osx-arm64")
TARGET = 1.0  # seconds, median of the reruns (forget + upload)
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
) + "\n".join(  # noarch, in the other format: transmuted to .conda before upload
    f"""
[[package]]
name = "tool{i}"
version = "2.{i}"
noarch = "generic"
format = ".tar.bz2"
depends = ["pkg{i} >=1"]
files = {{ "share/tool{i}/README" = "tool {i}" }}
"""
    for i in range(5)
)


def make_workspace(root: Path, store: str) -> None:
    (root / "recipes").mkdir(parents=True)
    (root / "recipes" / "pkgs.toml").write_text(RECIPES)
    envs = "\n".join(
        f'[env.env{i:02d}]\nconda = ["pkg{i % 10} >=1.{i % 10}", "tool{(i + i // 10) % 5}"]\n'
        for i in range(N_ENVS)  # 20 different requirement sets
    )
    archs = ", ".join(f'"{a}"' for a in ARCHS)
    (root / "envbuild.toml").write_text(
        f'[workspace]\narchs = [{archs}]\nchannels = ["bench"]\nstore = "{store}"\n'
        'local-channels = { bench = "recipes" }\n\n' + envs
    )


def envbuild(root: Path, env: dict[str, str], *args: str) -> tuple[float, str, str]:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "envbuild.cli", *args], cwd=root, capture_output=True,
        text=True, env=env,
    )  # fmt: skip
    elapsed = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"envbuild {' '.join(args)} failed:\n{proc.stdout}{proc.stderr}")
    return elapsed, proc.stdout, proc.stderr


@contextmanager
def s3_endpoint() -> Iterator[tuple[str, dict[str, str]]]:
    """A moto S3 server on loopback with one bucket: (store URL, environment for it)."""
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        env = {
            "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true", "AWS_ENDPOINT_URL_S3": url,
            "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
        }  # fmt: skip
        client = boto3.session.Session().client(
            "s3", endpoint_url=url, region_name="us-east-1",
            aws_access_key_id="bench", aws_secret_access_key="bench",
        )  # fmt: skip
        client.create_bucket(Bucket="bench-store")
        yield "s3://bench-store/envs", env
    finally:
        server.stop()


def measure(store: str, env: dict[str, str], rounds: int) -> tuple[float, list[float]]:
    """(cold full run, rerun times) for a fresh workspace on ``store``."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_workspace(root, store)
        cold, _, err = envbuild(root, env)
        uploaded = [ln for ln in err.splitlines() if ln.startswith("uploaded ")]
        assert len(uploaded) == N_ENVS * len(ARCHS), err
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            envbuild(root, env, "forget", "upload")
            _, out, err = envbuild(root, env, "upload")
            times.append(time.perf_counter() - start)
            ran = [ln for ln in out.splitlines() if ln.startswith(".")]
            assert not ran, f"the rerun ran tasks: {ran}"
            assert not [ln for ln in err.splitlines() if ln.startswith("uploaded ")], err
    return cold, times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--store", choices=("local", "s3", "both"), default="both")
    args = parser.parse_args()
    ensure_bytecode()
    base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    print(f"workspace: {N_ENVS} envs x {len(ARCHS)} archs = {N_ENVS * len(ARCHS)} upload tasks")
    for kind in ("local", "s3") if args.store == "both" else (args.store,):
        if kind == "local":
            cold, times = measure(".envbuild/store", base, args.rounds)
        else:
            with s3_endpoint() as (store, env):
                cold, times = measure(store, {**base, **env}, args.rounds)
        median = statistics.median(times)
        print(f"  {kind} store: cold full run {cold:.2f} s; rerun (forget upload + upload), "
              f"median of {args.rounds} {median:.3f} s, best {min(times):.3f} s")  # fmt: skip
        verdict = "under" if median < TARGET else "NOT under"
        print(f"    {verdict} the {TARGET} s target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
