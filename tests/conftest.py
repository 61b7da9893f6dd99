"""Shared fixtures for the integration tests: real local channels, a real loopback HTTP
server, the shared channel data, and the ``envbuild`` CLI run as a subprocess."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


# --------------------------------------------------------------------------- local channels


def build_channel_from_recipes(recipes: list[dict[str, Any]], channel_dir: Path) -> Path:
    """Build every recipe (``Recipe.from_dict`` format) into ``channel_dir`` and index it with
    rattler. ``noarch/`` always exists (a channel without it cannot be solved against)."""
    from rattler.index import index_fs

    from envbuild.localchannel import Recipe, build_package

    channel_dir.mkdir(parents=True, exist_ok=True)
    (channel_dir / "noarch").mkdir(exist_ok=True)
    for i, data in enumerate(recipes):
        recipe = Recipe.from_dict(dict(data), f"recipe {i + 1}")
        for subdir in recipe.subdirs or ("noarch",):
            build_package(recipe, subdir, channel_dir / subdir)
    asyncio.run(index_fs(channel_dir, write_zst=False, write_shards=False, force=True))
    return channel_dir


@pytest.fixture(scope="session")
def make_channel(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``make_channel(recipes, name="chan") -> Path``: a real, indexed conda channel.

    Builds are byte-reproducible, so identical recipe lists share one channel per session:
    treat the returned directory as read-only (pass ``fresh=True`` for a private copy).
    """
    cache: dict[str, Path] = {}

    def make(recipes: list[dict[str, Any]], name: str = "chan", fresh: bool = False) -> Path:
        key = json.dumps(recipes, sort_keys=True)
        if not fresh and key in cache:
            return cache[key]
        out = build_channel_from_recipes(recipes, tmp_path_factory.mktemp("channel") / name)
        if not fresh:
            cache[key] = out
        return out

    return make


def file_hashes(path: Path) -> dict[str, Any]:
    """md5, sha256 and size of a file on disk."""
    raw = path.read_bytes()
    return {
        "md5": hashlib.md5(raw).hexdigest(),
        "sha256": hashlib.sha256(raw).hexdigest(),
        "size": len(raw),
    }


# --------------------------------------------------------------------------- HTTP server


@dataclass
class LocalServer:
    """A directory served over ``http://127.0.0.1:<port>``; ``requests`` records every
    request as ``(method, path, headers)`` (header names lowercased)."""

    url: str
    directory: Path
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    @property
    def paths(self) -> list[str]:
        return [path for _, path, _ in self.requests]

    def __str__(self) -> str:
        return self.url


class _Handler(SimpleHTTPRequestHandler):
    server_record: LocalServer

    def _record(self) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.server_record.requests.append((self.command, self.path, headers))

    def do_GET(self) -> None:
        self._record()
        super().do_GET()

    def do_HEAD(self) -> None:
        self._record()
        super().do_HEAD()

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


@pytest.fixture
def http_server() -> Iterator[Callable[[Path], LocalServer]]:
    """``http_server(directory) -> LocalServer``: serve ``directory`` on an ephemeral loopback
    port in a thread (``.url`` is the base URL without a trailing slash). Every server started
    by a test is shut down after it."""
    started: list[tuple[ThreadingHTTPServer, threading.Thread]] = []

    def serve(directory: Path) -> LocalServer:
        record = LocalServer(url="", directory=Path(directory))
        handler = type("Handler", (_Handler,), {"server_record": record})
        server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(directory)))
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        started.append((server, thread))
        record.url = f"http://127.0.0.1:{server.server_address[1]}"
        return record

    yield serve
    for server, thread in started:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --------------------------------------------------------------------------- shared data


def shared_data_dir() -> Path:
    """/work/shared/data (``../shared/data`` from the repo root), or skip the calling test."""
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"shared channel data not found at {SHARED_DATA} "
            "(present in CI and on developer machines, not in a fresh clone)"
        )
    return SHARED_DATA


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared channel data folder; skips the test when it is absent."""
    return shared_data_dir()


# --------------------------------------------------------------------------- CLI + workspaces


def _cli_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k.lower() not in ("http_proxy", "https_proxy", "all_proxy") and k != "ENVBUILD_LOG"
    }
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


def run_envbuild(cwd: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``python -m envbuild.cli ARGS`` in ``cwd`` (a real process: real exit codes)."""
    return subprocess.run(
        [sys.executable, "-m", "envbuild.cli", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=_cli_env(),
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def run_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``run_cli(cwd, *args)``: the envbuild CLI as a subprocess, text stdout/stderr."""
    return run_envbuild


def run_python(cwd: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` (this interpreter) in ``cwd``, e.g. ``run_python(ws, "-m", "doit")``."""
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, env=_cli_env(),
        timeout=timeout, check=False,
    )  # fmt: skip


def write_workspace(
    root: Path, manifest: str, files: Mapping[str, str | bytes] | None = None
) -> Path:
    """Write ``envbuild.toml`` (and extra files, paths relative to ``root``) into ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "envbuild.toml").write_text(manifest, encoding="utf-8")
    for rel, content in (files or {}).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


@pytest.fixture
def workspace(tmp_path: Path) -> Callable[..., Path]:
    """``workspace(manifest, files=None, name="ws") -> Path``: a workspace dir in tmp_path."""

    def make(
        manifest: str, files: Mapping[str, str | bytes] | None = None, name: str = "ws"
    ) -> Path:
        return write_workspace(tmp_path / name, manifest, files)

    return make


def read_lock_json(root: Path, env: str, arch: str) -> dict[str, Any]:
    return json.loads((root / "locks" / env / f"{arch}.json").read_text(encoding="utf-8"))


def lock_packages(root: Path, env: str, arch: str) -> dict[str, dict[str, Any]]:
    """The packages of a lock by name."""
    return {p["name"]: p for p in read_lock_json(root, env, arch)["packages"]}


def copy_workspace(src: Path, dst: Path) -> Path:
    """Copy a workspace's sources, leaving out state (.envbuild) and generated locks."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".envbuild", "locks", "__pycache__"))
    return dst


# --------------------------------------------------------------------------- process exit

_EXIT_STATUS: list[int] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _EXIT_STATUS.append(int(exitstatus))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Leave without interpreter teardown once pytest has reported everything.

    py-rattler 0.28 (used in-process here by the channel fixtures and export checks)
    sometimes segfaults while the interpreter finalises; that would turn a green run into
    exit code 139. The same guard is in ``envbuild.cli.entry``.
    """
    if _EXIT_STATUS and os.environ.get("ENVBUILD_TEST_NORMAL_EXIT") != "1":
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_EXIT_STATUS[0])
