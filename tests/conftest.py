"""Shared fixtures for the integration tests: real local channels, a real loopback HTTP
server, the shared channel data, and the ``envbuild`` CLI run as a subprocess."""

from __future__ import annotations

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
    from envbuild.localchannel import Recipe, build_package, index_channel

    channel_dir.mkdir(parents=True, exist_ok=True)
    (channel_dir / "noarch").mkdir(exist_ok=True)
    for i, data in enumerate(recipes):
        recipe = Recipe.from_dict(dict(data), f"recipe {i + 1}")
        for subdir in recipe.subdirs or ("noarch",):
            build_package(recipe, subdir, channel_dir / subdir)
    index_channel(channel_dir)
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


# --------------------------------------------------------------------------- local PyPI index

import base64  # noqa: E402

from pypi_index import IndexSpec, PypiIndex, build_index, normalize_name  # noqa: E402

PYPI_JSON = "application/vnd.pypi.simple.v1+json"


class _IndexHandler(_Handler):
    """``_Handler`` plus optional HTTP basic auth (``expected_auth``: the full
    ``Authorization`` header value; anything else gets 401 + ``WWW-Authenticate``) and PEP 691
    content negotiation (a directory's ``index.json`` is served for ``Accept: ...v1+json``).
    Every request is recorded, denied ones included."""

    expected_auth: str | None = None

    def end_headers(self) -> None:
        # Ports are reused from test to test and uv caches index pages by URL: it must ask
        # again each time (and is never answered 304, below), or one test would resolve
        # against the pages of another test's index that had the same port.
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def send_head(self):  # type: ignore[no-untyped-def]
        # If-Modified-Since is not honoured: another index made in the same second would
        # answer 304 to a page cached from an index that had this port before.
        del self.headers["If-Modified-Since"]
        return super().send_head()

    def _denied(self) -> bool:
        if self.expected_auth is None or self.headers.get("Authorization") == self.expected_auth:
            return False
        body = b"401 Unauthorized\n"
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="test index"')
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        return True

    def _json_page(self) -> Path | None:
        if PYPI_JSON not in self.headers.get("Accept", ""):
            return None
        path = self.path.split("?", 1)[0].split("#", 1)[0]
        if not path.endswith("/"):
            return None
        page = Path(self.translate_path(path)) / "index.json"
        return page if page.is_file() else None

    def _serve(self, head: bool) -> None:
        self._record()
        if self._denied():
            return
        page = self._json_page()
        if page is None:
            if head:
                SimpleHTTPRequestHandler.do_HEAD(self)
            else:
                SimpleHTTPRequestHandler.do_GET(self)
            return
        body = page.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", PYPI_JSON)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_HEAD(self) -> None:
        self._serve(head=True)


def basic_auth_header(user: str, password: str) -> str:
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


class _ServerPool:
    """Loopback servers started by one test, all shut down by ``close()``."""

    def __init__(self) -> None:
        self.started: list[tuple[ThreadingHTTPServer, threading.Thread]] = []

    def serve(self, directory: Path, auth: tuple[str, str] | None = None) -> LocalServer:
        record = LocalServer(url="", directory=Path(directory))
        attrs: dict[str, Any] = {"server_record": record}
        if auth is not None:
            attrs["expected_auth"] = basic_auth_header(*auth)
        handler = type("IndexHandler", (_IndexHandler,), attrs)
        server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(directory)))
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        self.started.append((server, thread))
        record.url = f"http://127.0.0.1:{server.server_address[1]}"
        return record

    def close(self) -> None:
        for server, thread in self.started:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)


@pytest.fixture
def http_server_auth() -> Iterator[Callable[[Path, str, str], LocalServer]]:
    """``http_server_auth(directory, user, password) -> LocalServer``: like ``http_server``
    but every request without ``Authorization: Basic base64(user:password)`` gets a 401 (it is
    still recorded in ``.requests``, so a test can see whether credentials were sent)."""
    pool = _ServerPool()
    yield lambda directory, user, password: pool.serve(Path(directory), (user, password))
    pool.close()


@dataclass
class ServedIndex:
    """A ``PypiIndex`` served on loopback.

    ``url``: the simple index URL ``http://127.0.0.1:PORT/simple`` (no trailing slash; what
    tests pass as ``pypi-index`` / ``extra-indexes`` / ``--index-url``); ``auth_url``: the same
    with ``user:password@`` when the server requires auth (else equal to ``url``);
    ``base_url``: the server root; ``files_url``: ``base_url + "/files/"`` (an HTML listing
    of the files, usable as ``--find-links``); ``dir``: the served root (``simple/``,
    ``files/``); ``files``: file name -> Path (inside ``dir/files``); ``index``: the
    ``PypiIndex`` (``add()`` + ``write()`` to change it while served); ``server``: the
    ``LocalServer``; ``requests``: request paths so far (``server.requests`` has method and
    headers)."""

    index: PypiIndex
    server: LocalServer
    auth: tuple[str, str] | None = None

    @property
    def dir(self) -> Path:
        return self.index.root

    @property
    def base_url(self) -> str:
        return self.server.url

    @property
    def url(self) -> str:
        return f"{self.server.url}/simple"

    @property
    def auth_url(self) -> str:
        if self.auth is None:
            return self.url
        user, password = self.auth
        return self.url.replace("http://", f"http://{user}:{password}@", 1)

    @property
    def files_url(self) -> str:
        return f"{self.server.url}/files/"

    @property
    def files(self) -> dict[str, Path]:
        return {e.filename: e.path for e in self.index.entries}

    @property
    def requests(self) -> list[str]:
        return self.server.paths

    def file_url(self, filename: str) -> str:
        return f"{self.server.url}/files/{filename}"

    def project_files(self, project: str) -> list[Path]:
        """Files of one project (any spelling of its name), sorted by file name."""
        return [e.path for e in self.index.projects().get(normalize_name(project), [])]


@pytest.fixture
def pypi_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., ServedIndex]]:
    """``pypi_index(spec, *, auth=None, core_metadata=False, json_api=False) -> ServedIndex``:
    build a PEP 503 index and serve it on an ephemeral loopback port (shut down after the test).

    ``spec`` is ``{name: [dist, ...]}`` where a dist is a version string (py3-none-any wheel),
    a tuple ``(version, kind="wheel"|"sdist", tag_or_None, requires)`` (trailing items
    optional), a ``pypi_index.Dist`` or a dict of its fields (``requires_python``, ``yanked``,
    ``upload_time``, ``extra_metadata`` ...); or a list of already-built wheel/sdist paths.
    ``auth=(user, password)`` makes the server answer 401 to requests without that basic auth.
    ``core_metadata`` adds PEP 658 ``.metadata`` files; ``json_api`` serves PEP 691 JSON pages
    to clients that ask for them (needed for PEP 700 ``upload-time``); ``hashes=False`` serves an
    index that publishes no file hashes."""
    pool = _ServerPool()

    def make(
        spec: IndexSpec,
        *,
        auth: tuple[str, str] | None = None,
        core_metadata: bool = False,
        json_api: bool = False,
        hashes: bool = True,
    ) -> ServedIndex:
        root = tmp_path_factory.mktemp("pypi-index")
        index = build_index(
            root, spec, core_metadata=core_metadata, json_api=json_api, hashes=hashes
        )
        return ServedIndex(index, pool.serve(root, auth), auth)

    yield make
    pool.close()


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


# --------------------------------------------------------------------------- S3 on loopback
# moto's ThreadedMotoServer with requests counted at the server: see tests/s3server.py.

from s3server import S3Server, s3_bucket, s3_env, s3_server  # noqa: E402,F401
