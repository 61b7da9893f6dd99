"""Credentials never written, never in argv (issue 7 §5): conda channel tokens and basic auth
stay out of rattler's repodata cache, locks, logs and errors; PyPI credentials reach uv and
pip through their environment (percent-decoded), never their argv; ssh user names are kept."""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import LocalServer, _cli_env, _Handler, read_lock_json
from hypothesis import given
from hypothesis import strategies as st
from test_resolve_local import BASE_RECIPES, manifest
from test_resolve_pypi import CONDA_PY_DISTS, PYTHON

from envbuild.channels import redact_text, redact_url
from envbuild.credentials import (
    Login,
    git_credential_env,
    git_login_free,
    pip_index_options,
    split_login,
    token_mirrors,
    uv_index_options,
    with_login,
)
from envbuild.platforms import host_arch

TOKEN = "tk-Q7x9Zr2"
PASSWORD = "p@ss:w0rd"  # raw; percent-encoded in URLs
ENCODED = "p%40ss%3Aw0rd"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# --------------------------------------------------------------------------- pure helpers


@pytest.mark.parametrize(
    ("url", "public", "login"),
    [
        ("https://host/simple", "https://host/simple", None),
        (f"https://ann:{ENCODED}@host/simple", "https://host/simple", Login("ann", PASSWORD)),
        # a raw "@" in the password: the last "@" ends the userinfo
        ("https://ann:p@ss@host:8080/s", "https://host:8080/s", Login("ann", "p@ss")),
        ("https://us%40er@host/s", "https://host/s", Login("us@er")),  # a user name only
        ("https://ann:@host/s", "https://host/s", Login("ann", "")),
        # ${VAR} references in the userinfo come from the environment
        ("https://${CRED_T_USER}:${CRED_T_PASS}@h/s", "https://h/s", Login("eve", "x:y@z")),
    ],
)  # fmt: skip
def test_split_login_decodes(monkeypatch, url, public, login):
    monkeypatch.setenv("CRED_T_USER", "eve")
    monkeypatch.setenv("CRED_T_PASS", "x%3Ay%40z")
    assert split_login(url) == (public, login)


@given(
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",))),
)
def test_with_login_round_trips(user, password):
    login = Login(user, password)
    url = with_login("https://host:8443/simple", login)
    assert split_login(url) == ("https://host:8443/simple", login)
    assert login.header() == basic(user, password)


@given(
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=4),
    st.sampled_from(["https", "git+https", "http"]),
)
def test_redaction_hides_any_login(user, password, scheme):
    """Whatever the login, a message or a stored URL never shows its password (nor, for
    http(s), its user name), however it is encoded."""
    from urllib.parse import quote

    from hypothesis import assume

    url = with_login(f"{scheme}://h.example/simple/x/", Login(user, password))
    public = f"{scheme}://h.example/simple/x/"
    message = f"error: GET {url} failed (401)\nretry {url}"
    assume(quote(password, safe="") not in message.replace(url, public))
    assert redact_url(url) == public
    assert redact_text(message) == f"error: GET {public} failed (401)\nretry {public}"


@pytest.mark.parametrize(
    ("url", "public"),
    [
        ("https://h/t/abc/chan", "https://h/chan"),
        ("https://h/t/abc/chan/", "https://h/chan/"),
        ("https://h/t/abc/org/label/dev", "https://h/org/label/dev"),
        ("https://h/chan", "https://h/chan"),
        ("https://h/test/chan", "https://h/test/chan"),
    ],
)
def test_token_path_is_dropped(url, public):
    assert redact_url(url) == public


def test_token_mirrors(monkeypatch):
    monkeypatch.setenv("CRED_T_TOKEN", "t0k")
    pairs = [
        ("https://a/chan", "https://a/t/${CRED_T_TOKEN}/chan"),
        ("https://b/chan", "https://u:pw@b/t/x/chan"),  # the userinfo travels as a header
        ("https://c/simple", "https://u:pw@c/simple"),  # no token: no mirror
    ]
    assert token_mirrors(pairs) == {
        "https://a/chan/": "https://a/t/t0k/chan/",
        "https://b/chan/": "https://b/t/x/chan/",
    }
    with pytest.raises(ValueError, match=r"^https://a/chan$"):
        token_mirrors([*pairs, ("https://a/chan", "https://a/t/other/chan")])


@pytest.mark.parametrize(
    ("url", "public"),
    [
        ("git+ssh://git@github.com/org/repo.git@v1", "git+ssh://git@github.com/org/repo.git@v1"),
        ("ssh://git:secret@host/repo.git", "ssh://git@host/repo.git"),
        ("git+https://ann:tok@host/repo.git@abc", "git+https://host/repo.git@abc"),
        ("https://tok3n@host/repo.git", "https://host/repo.git"),  # a token as user name
        ("https://h/t/abc/chan/noarch/a.conda", "https://h/chan/noarch/a.conda"),
        ("git+file:///srv/repo", "git+file:///srv/repo"),
    ],
)
def test_redact_keeps_ssh_user_names(url, public):
    assert redact_url(url) == public
    assert redact_text(f"at {url}: failed\n", mark=False) == f"at {public}: failed\n"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("GET https://h/t/abc/chan/noarch/a.conda: 401", "GET https://h/t/***/chan/noarch/a.conda: 401"),
        ("(url https://h/t/abc)", "(url https://h/t/***)"),
        ("'https://u:pw@h/t/abc/c/' failed", "'https://h/t/***/c/' failed"),
        ("see https://h/test/abc/x", "see https://h/test/abc/x"),
    ],
)  # fmt: skip
def test_redact_text_marks_tokens(text, shown):
    assert redact_text(text) == shown


def test_redact_text_raw_at_in_password():
    text = "GET https://ann:p@ss@host/simple/x/ failed; see git+ssh://git@h/r.git"
    assert redact_text(text) == "GET https://host/simple/x/ failed; see git+ssh://git@h/r.git"


def test_uv_index_options():
    args, env = uv_index_options(
        f"https://ann:{ENCODED}@idx.example/simple",
        ["https://plain.example/simple", "https://${X}@tok.example/simple"],
        ["./wheels"],
    )
    assert args == [
        "--default-index", "envbuild0=https://idx.example/simple",
        "--index", "https://plain.example/simple",
        "--index", "envbuild2=https://tok.example/simple",
        "--find-links", "./wheels",
    ]  # fmt: skip
    assert env == {
        "UV_INDEX_ENVBUILD0_USERNAME": "ann",
        "UV_INDEX_ENVBUILD0_PASSWORD": PASSWORD,
        "UV_INDEX_ENVBUILD2_USERNAME": "${X}",  # unset: left as written
        "UV_INDEX_ENVBUILD2_PASSWORD": "",
    }
    # find-links with credentials: all of them through UV_FIND_LINKS
    args, env = uv_index_options("https://pypi.org/simple", [], ["/w", "https://a:b%40c@f/x/"])
    assert args == ["--default-index", "https://pypi.org/simple"]
    assert env == {"UV_FIND_LINKS": "/w,https://a:b%40c@f/x/"}


def test_pip_index_options():
    args, env = pip_index_options(
        "https://ann:p@ss@idx.example/simple",
        ["https://plain.example/simple", "https://bob:x@e2/simple", "https://c:y@e3/simple"],
        ["/w", "https://a:b@f/x/"],
    )
    assert args == [
        "--extra-index-url", "https://plain.example/simple", "--find-links", "/w",
    ]  # fmt: skip
    assert env == {
        "PIP_INDEX_URL": "https://ann:p%40ss@idx.example/simple",
        "PIP_EXTRA_INDEX_URL": "https://bob:x@e2/simple https://c:y@e3/simple",
        "PIP_FIND_LINKS": "https://a:b@f/x/",
    }


# --------------------------------------------------------------------------- servers


class _TokenHandler(_Handler):
    """Serves ``directory`` under ``/t/<token>/`` only, as anaconda.org serves private
    channels (anything else: 401), optionally behind basic auth too."""

    token = ""
    expected_auth: str | None = None

    def _allowed(self) -> bool:
        self._record()
        prefix = f"/t/{self.token}/"
        ok = self.path.startswith(prefix) and (
            self.expected_auth is None or self.headers.get("Authorization") == self.expected_auth
        )
        if not ok:
            self.send_error(401, "token or login required")
            return False
        self.path = "/" + self.path[len(prefix) :]
        return True

    def do_GET(self) -> None:
        if self._allowed():
            SimpleHTTPRequestHandler.do_GET(self)

    def do_HEAD(self) -> None:
        if self._allowed():
            SimpleHTTPRequestHandler.do_HEAD(self)


@pytest.fixture
def token_server() -> Iterator[Callable[..., LocalServer]]:
    """``token_server(directory, token, auth=None) -> LocalServer``."""
    started: list[ThreadingHTTPServer] = []

    def serve(directory: Path, token: str, auth: tuple[str, str] | None = None) -> LocalServer:
        record = LocalServer(url="", directory=directory)
        attrs: dict[str, Any] = {"server_record": record, "token": token}
        if auth:
            attrs["expected_auth"] = basic(*auth)
        handler = type("TokenHandler", (_TokenHandler,), attrs)
        server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(directory)))
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        started.append(server)
        record.url = f"http://127.0.0.1:{server.server_address[1]}"
        return record

    yield serve
    for server in started:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def sharded_channel(make_channel, tmp_path_factory) -> Path:
    """The base test channel, indexed again with repodata.json.zst and shards (rattler
    then caches shards as well as repodata)."""
    import asyncio

    from rattler.index import index_fs

    out = tmp_path_factory.mktemp("sharded") / "chan"
    shutil.copytree(make_channel(BASE_RECIPES, name="base"), out)
    asyncio.run(index_fs(out, write_zst=True, write_shards=True, force=True))
    return out


def files_holding(root: Path, *needles: str) -> list[str]:
    """Files under ``root`` (binary-safe) holding any of ``needles``."""
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and any(n.encode() in p.read_bytes() for n in needles)
    )


def run_traced(ws: Path, *args: str, env: dict[str, str] | None = None) -> tuple[Any, str]:
    """The envbuild CLI run under ``strace -f -e execve``: (result, every argv of every
    process it started, uv's and pip's children included). Skips without a usable strace."""
    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace is not installed: cannot see the argv of every child process")
    trace = ws.parent / f"execve-{os.getpid()}-{len(list(ws.parent.glob('execve-*')))}.txt"
    cmd = [strace, "-f", "-qq", "-s", "100000", "-e", "trace=execve", "-o", str(trace)]
    result = subprocess.run(
        [*cmd, sys.executable, "-m", "envbuild.cli", *args], cwd=ws, capture_output=True,
        text=True, env={**_cli_env(), **(env or {})}, timeout=600, check=False,
    )  # fmt: skip
    text = trace.read_text(errors="replace") if trace.exists() else ""
    if "execve(" not in text:
        pytest.skip(f"strace cannot trace here: {result.stderr.strip()[:200]}")
    trace.unlink()
    return result, text


def assert_ok(result: Any) -> None:
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "Traceback" not in result.stdout + result.stderr


# --------------------------------------------------------------------------- conda tokens


@pytest.mark.parametrize(
    ("sharded", "login"),
    [(True, None), (False, ("ann", PASSWORD))],
    ids=["shards+token", "repodata+token+login"],
)
def test_channel_token_never_written(
    sharded_channel, make_channel, token_server, tmp_path, sharded, login
):
    """Resolve and fetch through a channel that needs its token path (and a login): the
    token was used for everything, and no file, output or child's argv holds it."""
    channel = sharded_channel if sharded else make_channel(BASE_RECIPES, name="base")
    server = token_server(channel, TOKEN, login)
    host = server.url.removeprefix("http://")
    userinfo = f"ann:{ENCODED}@" if login else ""
    url = f"http://{userinfo}{host}/t/{TOKEN}"
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "envbuild.toml").write_text(
        manifest([url], {"app": {"conda": ["demo-hello", "demo-tool"]}}), encoding="utf-8"
    )
    debug = {"ENVBUILD_LOG": "DEBUG"}  # every log line of envbuild and its libraries
    result, trace = run_traced(ws, "resolve", env=debug)
    assert_ok(result)
    assert "solving demo-hello demo-tool for linux-64" in result.stderr
    fetched = run_traced(ws, "fetch", "env=app", env=debug)[0]
    assert_ok(fetched)
    # the token was really used, for repodata, shards and package files alike
    paths = [p for _, p, _ in server.requests]
    if sharded:
        assert any(p.startswith(f"/t/{TOKEN}/linux-64/shards/") for p in paths)
    else:
        assert f"/t/{TOKEN}/noarch/repodata.json" in paths
    assert any(p.startswith(f"/t/{TOKEN}/") and p.endswith(".conda") for p in paths)
    if login:
        assert all(h.get("authorization") == basic(*login) for _, _, h in server.requests)
    cache = ws / ".envbuild" / "cache" / "repodata"
    assert list(cache.glob("*.shards-cache-v1" if sharded else "*.info.json"))
    # ... and is in no file but the manifest, nor in any output or child's argv
    secrets = (TOKEN, PASSWORD, ENCODED)
    assert files_holding(ws, *secrets) == ["envbuild.toml"]
    out = result.stdout + result.stderr + fetched.stdout + fetched.stderr
    assert not [s for s in secrets if s in out + trace]
    for arch in ("linux-64", "osx-arm64"):
        lock = read_lock_json(ws, "app", arch)
        assert lock["spec"]["channels"] == [server.url]
        assert {p["channel"] for p in lock["packages"]} == {server.url}


def test_channel_token_from_environment(
    sharded_channel, token_server, tmp_path, run_cli, monkeypatch
):
    server = token_server(sharded_channel, TOKEN)
    ws = tmp_path / "ws"
    ws.mkdir()
    url = server.url + "/t/${CRED_CHANNEL_TOKEN}"
    (ws / "envbuild.toml").write_text(
        manifest([url], {"app": {"conda": ["demo-hello"]}}, archs=("linux-64",)),
        encoding="utf-8",
    )
    monkeypatch.setenv("CRED_CHANNEL_TOKEN", TOKEN)
    result = run_cli(ws, "resolve")
    assert_ok(result)
    assert f"/t/{TOKEN}/noarch/repodata_shards.msgpack.zst" in server.paths
    assert files_holding(ws, TOKEN) == []
    assert read_lock_json(ws, "app", "linux-64")["spec"]["channels"] == [server.url]


def test_wrong_channel_token_error_is_redacted(sharded_channel, token_server, tmp_path, run_cli):
    server = token_server(sharded_channel, TOKEN)
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "envbuild.toml").write_text(
        manifest([f"{server.url}/t/wr0ng-{TOKEN}"], {"app": {"conda": ["demo-hello"]}},
                 archs=("linux-64",)),
        encoding="utf-8",
    )  # fmt: skip
    result = run_cli(ws, "resolve")
    assert result.returncode == 2
    assert "Traceback" not in result.stdout + result.stderr
    assert TOKEN not in result.stdout + result.stderr
    first = result.stderr.splitlines()[0]
    # the URL shows that a token was sent, not which
    assert re.fullmatch(
        re.escape(
            f"envbuild: error: resolve app@linux-64: could not read channels for linux-64 from "
            f"{server.url}: HTTP status client error (401 token or login required) for url "
            f"({server.url}/t/***/"
        )
        + r"(linux-64|noarch)/repodata_shards\.msgpack\.zst"
        + re.escape("): check the channel's token or login"),
        first,
    ), first
    assert files_holding(ws, TOKEN) == ["envbuild.toml"]


def test_one_channel_two_tokens_is_an_input_error(tmp_path, run_cli):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "envbuild.toml").write_text(
        manifest(
            [],
            {
                "a": {"conda": ["x"], "channels": ["https://c.example/t/one/chan"]},
                "b": {"conda": ["x"], "channels": ["https://c.example/t/two/chan"]},
            },
            archs=("linux-64",),
        ),
        encoding="utf-8",
    )
    result = run_cli(ws, "resolve")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "envbuild: error: envbuild.toml: channel https://c.example/chan is given with "
        "different tokens (envs a, b): give every env the same token for one channel"
    ]


# --------------------------------------------------------------------------- PyPI credentials


@pytest.fixture(scope="module")
def py_channel(make_channel) -> str:
    """test_resolve_pypi's channel: python 3.11.9 and noarch pip, setuptools, wheel, six."""
    return str(make_channel([PYTHON, *CONDA_PY_DISTS], name="pychan").as_uri())


@pytest.fixture
def secret_indexes(pypi_index) -> dict[str, Any]:
    """A base index, an extra index and a find-links page, each behind its own login (the
    passwords hold "@" and ":"); ``urls``: as a manifest gives them, percent-encoded."""
    base = pypi_index(
        {"alpha": [("1.0", "wheel", None, ["gamma"])], "built": [("2.0", "sdist")]},
        auth=("ann", PASSWORD),
    )
    extra = pypi_index({"beta": ["1.0"]}, auth=("bob", "b:" + PASSWORD))
    links = pypi_index({"gamma": ["1.0"]}, auth=("cy", PASSWORD + "@"))
    return {
        "base": base,
        "extra": extra,
        "links": links,
        "urls": {
            "pypi-index": base.url.replace("http://", f"http://ann:{ENCODED}@"),
            "extra-indexes": [extra.url.replace("http://", f"http://bob:b%3A{ENCODED}@")],
        },
        "find-links": links.files_url.replace("http://", f"http://cy:{ENCODED}%40@"),
        "secrets": (PASSWORD, ENCODED, "b%3A" + ENCODED),
    }


@pytest.mark.parametrize("resolver", ["uv", "pip"])
def test_pypi_credentials_reach_tools_by_environment_only(
    secret_indexes, py_channel, tmp_path, resolver
):
    """Base index, extra index and find-links behind logins whose passwords hold "@" and
    ":" (percent-encoded in the manifest, decoded before use): the resolution succeeds, each
    server saw its own login, and no argv of any process (uv's and pip's children too), no
    file but the manifest, no output holds a password."""
    import tomli_w

    idx = secret_indexes
    ws = tmp_path / "ws"
    ws.mkdir()
    env = {"python": "3.11", "pypi": ["alpha", "beta", f"-f {idx['find-links']}"]}
    if resolver == "pip":
        env["pypi-resolver"] = "pip"
    table = {"archs": ["linux-64"], "channels": [py_channel], **idx["urls"]}
    (ws / "envbuild.toml").write_text(
        tomli_w.dumps({"workspace": table, "env": {"app": env}}), encoding="utf-8"
    )
    caches = tmp_path / "caches"  # the resolvers' own caches must not hold them either
    result, trace = run_traced(
        ws,
        "resolve",
        env={"UV_CACHE_DIR": str(caches / "uv"), "PIP_CACHE_DIR": str(caches / "pip")},
    )
    assert_ok(result)
    if resolver == "uv":
        assert list((caches / "uv").rglob("*.msgpack"))  # uv cached the index pages
    assert files_holding(caches, *idx["secrets"]) == []
    for name, login in (("base", ("ann", PASSWORD)), ("extra", ("bob", "b:" + PASSWORD)),
                        ("links", ("cy", PASSWORD + "@"))):  # fmt: skip
        seen = {h.get("authorization") for _, _, h in idx[name].server.requests}
        assert basic(*login) in seen, (name, seen)
    pkgs = {p["name"]: p for p in read_lock_json(ws, "app", "linux-64")["packages"]}
    assert pkgs["alpha"]["url"] == idx["base"].file_url("alpha-1.0-py3-none-any.whl")
    assert pkgs["beta"]["url"] == idx["extra"].file_url("beta-1.0-py3-none-any.whl")
    assert pkgs["gamma"]["url"] == idx["links"].file_url("gamma-1.0-py3-none-any.whl")
    execs = [line for line in trace.splitlines() if "execve(" in line]
    assert any(resolver in line for line in execs[1:])  # the resolver's argv was traced
    leaks = [line for line in execs if any(s in line for s in idx["secrets"])]
    assert leaks == []
    assert files_holding(ws, *idx["secrets"]) == ["envbuild.toml"]
    assert not [s for s in idx["secrets"] if s in result.stdout + result.stderr]


def test_build_gets_index_credentials_by_environment_only(secret_indexes, py_channel, tmp_path):
    """An sdist locked from an index behind a login is fetched and built: uv build gets the
    index (for build dependencies) with its login in the environment, not its argv."""
    import tomli_w

    idx = secret_indexes
    ws = tmp_path / "ws"
    ws.mkdir()
    table = {"archs": [host_arch()], "channels": [py_channel], **idx["urls"]}
    envs = {"app": {"python": "3.11", "pypi": ["built"]}}
    (ws / "envbuild.toml").write_text(
        tomli_w.dumps({"workspace": table, "env": envs}), encoding="utf-8"
    )
    assert_ok(run_traced(ws, "resolve")[0])
    result, trace = run_traced(ws, "build")
    assert_ok(result)
    builds = [line for line in trace.splitlines() if "execve(" in line and '"--wheel"' in line]
    assert builds and all("envbuild0=" + idx["base"].url in line for line in builds), builds
    leaks = [line for line in trace.splitlines() if any(s in line for s in idx["secrets"])]
    assert leaks == []
    assert any(p.endswith("built-2.0.tar.gz") for p in idx["base"].requests)
    assert files_holding(ws, *idx["secrets"]) == ["envbuild.toml"]


@pytest.mark.parametrize("resolver", ["uv", "pip"])
def test_resolvers_argv_through_the_runner(pypi_index, tmp_path, resolver):
    """The same check without strace, through the injectable runner (the real one, recorded):
    the argv holds no password, the environment holds it decoded."""
    from envbuild.platforms import virtual_packages
    from envbuild.resolve.pypi import PypiRequest, resolve_pip, resolve_uv, uv_binary
    from envbuild.runner import run

    idx = pypi_index({"alpha": ["1.0"]}, auth=("ann", PASSWORD))
    calls: list[tuple[list[str], dict[str, str]]] = []

    def recording(cmd, *, env=None, cwd=None, timeout=None):
        calls.append(([str(c) for c in cmd], dict(env or {})))
        return run(cmd, env=env, cwd=cwd, timeout=timeout)

    request = PypiRequest(
        requirements=("alpha",), arch="linux-64", python_version="3.11.9",
        virtual_packages=virtual_packages("linux-64", {}),
        index_url=idx.url.replace("http://", f"http://ann:{ENCODED}@"),
    )  # fmt: skip
    if resolver == "uv":
        resolved = resolve_uv(request, recording, uv_binary())
    else:
        resolved = resolve_pip(request, recording, sys.executable)
    assert [(r.name, r.version) for r in resolved] == [("alpha", "1.0")]
    ((argv, env),) = calls
    assert not [a for a in argv if PASSWORD in a or ENCODED in a]
    if resolver == "uv":
        assert argv[argv.index("--default-index") + 1] == f"envbuild0={idx.url}"
        assert env["UV_INDEX_ENVBUILD0_USERNAME"] == "ann"
        assert env["UV_INDEX_ENVBUILD0_PASSWORD"] == PASSWORD
    else:
        assert "--index-url" not in argv and "--isolated" not in argv
        assert env["PIP_INDEX_URL"] == idx.url.replace("http://", f"http://ann:{ENCODED}@")


# --------------------------------------------------------------------------- VCS logins


def test_git_credential_env():
    env = git_credential_env(
        [
            f"git+https://ann:{ENCODED}@git.example/org/repo.git@v1",
            "git+ssh://git@git.example/org/other.git",  # ssh: keys, nothing to give
            "https://pypi.example/simple",
        ]
    )
    assert env == {
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_COUNT": "2",
        # an empty helper first: no helper of the user's is asked to store the login
        "GIT_CONFIG_KEY_0": "credential.https://git.example.helper",
        "GIT_CONFIG_VALUE_0": "",
        "GIT_CONFIG_KEY_1": "credential.https://git.example.helper",
        "GIT_CONFIG_VALUE_1": "!f() { test \"$1\" = get && printf 'username=%s\\npassword=%s\\n' "
        '"$ENVBUILD_GIT_USERNAME_0" "$ENVBUILD_GIT_PASSWORD_0"; }; f',
        "ENVBUILD_GIT_USERNAME_0": "ann",
        "ENVBUILD_GIT_PASSWORD_0": PASSWORD,
    }
    assert git_login_free("git+https://ann:x@h/r.git@v1") == (
        "git+https://h/r.git@v1",
        Login("ann", "x"),
    )
    assert git_login_free("git+ssh://git@h/r.git@v1") == ("git+ssh://git@h/r.git@v1", None)


@pytest.fixture
def secret_git(tmp_path, http_server_auth) -> dict[str, Any]:
    """A git repo served over git's dumb HTTP protocol behind a login (loopback)."""
    from pypi_index import make_git_repo

    repo = make_git_repo(tmp_path / "work", "vcspkg", "0.1", [], tag="v0.1")
    served = tmp_path / "served"
    served.mkdir()
    bare = served / "repo.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(tmp_path / "work"), str(bare)], check=True)
    subprocess.run(["git", "-C", str(bare), "update-server-info"], check=True)
    server = http_server_auth(served, "ann", PASSWORD)
    return {"server": server, "commit": repo.commit, "public": f"{server.url}/repo.git"}


def test_vcs_login_never_in_argv_nor_lock(secret_git, py_channel, tmp_path):
    """``git+http://ann:p%40ss%3Aw0rd@host/repo.git``: uv resolves it and envbuild builds it
    with git getting the login from a credential helper (uv itself would put it in git's
    argv); the lock holds the URL without the login."""
    import tomli_w

    git = secret_git
    url = git["public"].replace("http://", f"http://ann:{ENCODED}@")
    ws = tmp_path / "ws"
    ws.mkdir()
    table = {"archs": [host_arch()], "channels": [py_channel]}
    envs = {"app": {"python": "3.11", "pypi": [f"vcspkg @ git+{url}@v0.1"]}}
    (ws / "envbuild.toml").write_text(
        tomli_w.dumps({"workspace": table, "env": envs}), encoding="utf-8"
    )
    # a user whose git stores every login it is given: envbuild's are not
    stored = tmp_path / "git-credentials"
    gitconfig = tmp_path / "gitconfig"
    gitconfig.write_text(f"[credential]\n\thelper = store --file {stored}\n", encoding="utf-8")
    user_git = {"GIT_CONFIG_GLOBAL": str(gitconfig)}
    result, trace = run_traced(ws, "resolve", env=user_git)
    assert_ok(result)
    pkg = {p["name"]: p for p in read_lock_json(ws, "app", host_arch())["packages"]}["vcspkg"]
    assert pkg["source"]["url"] == git["public"] and pkg["source"]["commit"] == git["commit"]
    built, build_trace = run_traced(ws, "build", env=user_git)
    assert_ok(built)
    assert not stored.exists()
    execs = [ln for ln in (trace + build_trace).splitlines() if "execve(" in ln]
    assert any('"fetch"' in ln or '"clone"' in ln for ln in execs)  # git ran, with a login
    assert basic("ann", PASSWORD) in {h.get("authorization") for _, _, h in git["server"].requests}
    assert [ln for ln in execs if PASSWORD in ln or ENCODED in ln] == []
    assert files_holding(ws, PASSWORD, ENCODED) == ["envbuild.toml"]
    assert any(p.name.startswith("vcspkg-0.1-") for p in (ws / ".envbuild").rglob("*.whl"))


def test_ssh_user_name_kept_in_lock_and_exports(tmp_path):
    """``git+ssh://git@host/...`` keeps its ``git@`` (a user name, not a secret) through
    the manifest, the lock entry and the requirements export; an https login does not."""
    from envbuild.resolve.pypi import Resolved, to_locked

    ssh = to_locked(
        Resolved("a", "1.0", vcs="git+ssh://git@github.com/org/a.git@" + "1" * 40), tmp_path
    )
    https = to_locked(
        Resolved("b", "1.0", vcs="git+https://ann:tok@h/org/b.git@" + "2" * 40), tmp_path
    )
    assert ssh.source.identity == "git+ssh://git@github.com/org/a.git@" + "1" * 40
    assert https.source.identity == "git+https://h/org/b.git@" + "2" * 40


def test_manifest_keeps_ssh_user_and_hides_https_login(tmp_path):
    from envbuild.spec import load_workspace

    ssh = "a @ git+ssh://git@github.com/org/a.git@v1"
    https = f"b @ git+https://ann:{ENCODED}@h/org/b.git@v2"
    (tmp_path / "envbuild.toml").write_text(
        manifest(["https://c.example/t/tok/chan"], {"app": {"pypi": [ssh, https], "python": "3.11"}},
                 archs=("linux-64",)),
        encoding="utf-8",
    )  # fmt: skip
    (env,) = load_workspace(tmp_path).envs
    assert sorted(d.value for d in env.pypi) == [ssh, "b @ git+https://h/org/b.git@v2"]
    assert env.channels == ("https://c.example/chan",)
    assert dict(env.credentials) == {
        "b @ git+https://h/org/b.git@v2": https,
        "https://c.example/chan": "https://c.example/t/tok/chan",
    }


@pytest.mark.parametrize("resolver", ["uv", "pip"])
def test_wrong_index_password_error_is_redacted(
    pypi_index, py_channel, tmp_path, run_cli, resolver
):
    import tomli_w

    idx = pypi_index({"alpha": ["1.0"]}, auth=("ann", PASSWORD))
    wrong = "Wr0ng:" + PASSWORD
    ws = tmp_path / "ws"
    ws.mkdir()
    table = {
        "archs": ["linux-64"], "channels": [py_channel], "pypi-resolver": resolver,
        "pypi-index": idx.url.replace("http://", "http://ann:Wr0ng%3Ap%40ss%3Aw0rd@"),
    }  # fmt: skip
    envs = {"app": {"python": "3.11", "pypi": ["alpha"]}}
    (ws / "envbuild.toml").write_text(
        tomli_w.dumps({"workspace": table, "env": envs}), encoding="utf-8"
    )
    result = run_cli(ws, "resolve")
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0] == (
        "envbuild: error: resolve app@linux-64: the PyPI requirements cannot be satisfied "
        "for linux-64 with python 3.11.9:"
    )
    assert (
        f"  hint: An index URL ({idx.url}) could not be queried due to a lack of valid "
        "authentication credentials (401 Unauthorized)"
        if resolver == "uv"
        else f"  WARNING: 401 Error, Credentials not correct for {idx.url}/alpha/"
    ) in lines
    out = result.stdout + result.stderr
    assert "Traceback" not in out
    assert not [s for s in (wrong, PASSWORD, ENCODED, "Wr0ng") if s in out]
    assert basic("ann", wrong) in {h.get("authorization") for _, _, h in idx.server.requests}
