"""Failing well (issue 7 §7): every input error of the corpus is one line per problem on
stderr, naming the file, line or key and a fix, with exit 2 and no traceback; a closed
stdout is quiet. Each case runs through the real CLI in its own workspace."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import _cli_env
from test_resolve_local import BASE_RECIPES

E = "envbuild: error: "
SECONDS = "must be a positive number of seconds, like solve-timeout = 120"
NOT_URL = (
    "is not an index URL: write http://, https:// or file:// and a host or path, like "
    "https://pypi.org/simple"
)
NAME_RULE = (
    "may only hold a-z, 0-9, '_', '.', '-' and must start with a letter or digit (it names a "
    "directory of locks): rename the table"
)
RECIPE = 'name = "foo"\nversion = "1.0"\nnoarch = "generic"\n'
LATIN1 = "# café\n".encode("latin-1")


@pytest.fixture(scope="module")
def channel(make_channel) -> str:
    return str(make_channel(BASE_RECIPES, name="base").as_uri())


def manifest(channel: str, ws: str = "", env: str = 'conda = ["demo-lib"]', name: str = "a") -> str:
    return (
        f'[workspace]\narchs = ["linux-64", "osx-arm64"]\nchannels = ["{channel}"]\n{ws}\n'
        f"[env.{name}]\n{env}\n"
    )


# (id, manifest parts or raw bytes, other files, argv, expected stderr lines). In a manifest
# made by ``manifest``, the workspace's extra line is line 4, [env.NAME] line 5, its keys
# from line 6.
CASES: list[tuple[str, dict[str, str] | bytes, dict[str, str | bytes], list[str], list[str]]] = [
    (
        "non-utf8-manifest",
        b'[workspace]\nchannels = ["conda-forge"]\n' + LATIN1 + b'[env.a]\nconda = ["zlib"]\n',
        {},
        ["resolve"],
        [E + "envbuild.toml:3: not UTF-8 text (byte 0xe9 at column 6): save the file as UTF-8"],
    ),
    (
        "non-utf8-requirements",
        {"env": 'python = "3.11"\nfile = "req.txt"'},
        {"req.txt": b"six\n" + LATIN1},
        ["resolve"],
        [E + "req.txt:2: not UTF-8 text (byte 0xe9 at column 6): save the file as UTF-8"],
    ),
    (
        "non-utf8-included-requirements",
        {"env": 'python = "3.11"\nfile = "req.txt"'},
        {"req.txt": "-r sub/more.txt\n", "sub/more.txt": b"six\n" + LATIN1},
        ["resolve"],
        [E + "sub/more.txt:2: not UTF-8 text (byte 0xe9 at column 6): save the file as UTF-8"],
    ),
    (
        "non-utf8-environment-yml",
        {"env": 'file = "env.yml"'},
        {"env.yml": b"dependencies:\n  - zlib\n" + LATIN1},
        ["resolve"],
        [E + "env.yml:3: not UTF-8 text (byte 0xe9 at column 6): save the file as UTF-8"],
    ),
    (
        "non-utf8-recipe",
        {"ws": 'local-channels = {demo = "recipes"}'},
        {"recipes/foo.toml": RECIPE.encode() + LATIN1},
        ["resolve"],
        [E + "recipes/foo.toml:4: not UTF-8 text (byte 0xe9 at column 6): save the file as UTF-8"],
    ),
    (
        "env-name-slash",
        {"name": '"a/b"'},
        {},
        ["resolve"],
        [E + f"envbuild.toml:5: [env.\"a/b\"]: env name 'a/b' {NAME_RULE}"],
    ),
    (
        "env-name-dotdot",
        {"name": '".."'},
        {},
        ["resolve"],
        [E + f"envbuild.toml:5: [env.\"..\"]: env name '..' {NAME_RULE}"],
    ),
    (
        "env-name-traversal",
        {"name": '"../../etc"'},
        {},
        ["show", "x"],
        [E + f"envbuild.toml:5: [env.\"../../etc\"]: env name '../../etc' {NAME_RULE}"],
    ),
    (
        "env-name-control-char",
        {"name": '"a\\u0007b"'},
        {},
        ["resolve"],
        [E + f'envbuild.toml:5: [env."a\\u0007b"]: env name "a\\u0007b" {NAME_RULE}'],
    ),
    (
        "env-name-newline",
        {"name": '"a\\nb"'},
        {},
        ["resolve"],
        [E + f'envbuild.toml:5: [env."a\\nb"]: env name "a\\nb" {NAME_RULE}'],
    ),
    (
        "solve-timeout-nan",
        {"ws": "solve-timeout = nan"},
        {},
        ["resolve"],
        [E + f"envbuild.toml:4: [workspace] solve-timeout: {SECONDS} (got nan)"],
    ),
    (
        "solve-timeout-inf",
        {"ws": "solve-timeout = inf"},
        {},
        ["resolve"],
        [E + f"envbuild.toml:4: [workspace] solve-timeout: {SECONDS} (got inf)"],
    ),
    (
        "solve-timeout-text",
        {"ws": 'solve-timeout = "ten"'},
        {},
        ["resolve", "--check"],
        [E + f'envbuild.toml:4: [workspace] solve-timeout: {SECONDS} (got "ten")'],
    ),
    (
        "python-garbage",
        {"env": 'python = "banana"\npypi = ["six"]'},
        {},
        ["resolve"],
        [
            E + "envbuild.toml:6: [env.a] python: 'banana' is not a python version: write one "
            'like python = "3.11", "3.11.4" or ">=3.10,<3.13"'
        ],
    ),
    (
        "virtual-package-version",
        {"ws": 'virtual-packages = { __glibc = "abc!!" }'},
        {},
        ["resolve"],
        [
            E + "envbuild.toml:4: [workspace] virtual-packages: 'abc!!' is not a version for "
            '__glibc: write digits and dots, like __glibc = "2.28" (or "VERSION=BUILD")'
        ],
    ),
    (
        "virtual-package-name",
        {"env": 'conda = ["demo-lib"]\nvirtual-packages = { "__Glibc!" = "2.28" }'},
        {},
        ["resolve"],
        [
            E + "envbuild.toml:7: [env.a] virtual-packages: '__Glibc!' is not a virtual "
            "package name: use __ and a-z, 0-9, '_', like __glibc"
        ],
    ),
    (
        "pypi-index-not-url",
        {"ws": 'pypi-index = "pypi.org/simple"'},
        {},
        ["resolve"],
        [E + f"envbuild.toml:4: [workspace] pypi-index: 'pypi.org/simple' {NOT_URL}"],
    ),
    (
        "extra-indexes-not-urls",
        {"ws": 'extra-indexes = ["htp:/x", "https://", "http://h:port/simple"]'},
        {},
        ["resolve"],
        [
            E + f"envbuild.toml:4: [workspace] extra-indexes: 'htp:/x' {NOT_URL}",
            E + f"envbuild.toml:4: [workspace] extra-indexes: 'https://' {NOT_URL}",
            E + f"envbuild.toml:4: [workspace] extra-indexes: 'http://h:port/simple' {NOT_URL}",
        ],
    ),
    (
        "env-extra-index-not-url",
        {"env": 'conda = ["demo-lib"]\nextra-indexes = ["not a url"]'},
        {},
        ["resolve"],
        [E + f"envbuild.toml:7: [env.a] extra-indexes: 'not a url' {NOT_URL}"],
    ),
    (
        "channel-url-without-host",
        {"env": 'conda = ["demo-lib"]\nchannels = ["https://"]'},
        {},
        ["resolve"],
        [E + "envbuild.toml:7: [env.a] channels: 'https://' is not a channel name, path or URL"],
    ),
    (
        "environment-yml-channel-without-host",
        {"env": 'file = "env.yml"'},
        {"env.yml": "channels: ['http://']\ndependencies: [demo-lib]\n"},
        ["resolve"],
        [E + "env.yml: 'http://' is not a channel name, path or URL"],
    ),
    (
        "store-scheme",
        {"ws": 'store = "s4://bucket/envs"'},
        {},
        ["resolve"],
        [
            E + "envbuild.toml:4: [workspace] store: 's4://bucket/envs' is not a store: give "
            "s3://BUCKET/PREFIX or a directory"
        ],
    ),
    (
        "store-endpoint-not-url",
        {"ws": 'store-endpoint = "localhost:9000"'},
        {},
        ["resolve"],
        [
            E + "envbuild.toml:4: [workspace] store-endpoint: 'localhost:9000' is not an "
            "endpoint URL: write http(s)://HOST[:PORT]"
        ],
    ),
    (
        "locks-dir-parent",
        {"ws": 'locks-dir = "../elsewhere"'},
        {},
        ["resolve"],
        [
            E + "envbuild.toml:4: [workspace] locks-dir: '../elsewhere' is outside the "
            'workspace: give a relative path inside it, like locks-dir = "locks"'
        ],
    ),
    (
        "locks-dir-absolute",
        {"ws": 'locks-dir = "/tmp/locks"'},
        {},
        ["resolve", "--check"],
        [
            E + "envbuild.toml:4: [workspace] locks-dir: '/tmp/locks' is outside the "
            'workspace: give a relative path inside it, like locks-dir = "locks"'
        ],
    ),
    (
        "spec-file-is-a-directory",
        {"env": 'file = "envs"'},
        {"envs/env.yml": "dependencies: [zlib]\n"},
        ["resolve"],
        [E + "envbuild.toml:6: [env.a] file: 'envs' is a directory: name a spec file in it"],
    ),
    (
        "spec-file-empty",
        {"env": 'file = ""'},
        {},
        ["resolve"],
        [E + 'envbuild.toml:6: [env.a] file: must name a spec file, like file = "environment.yml"'],
    ),
    (
        "export-format-unknown",
        {},
        {},
        ["export", "a", "--format", "yaml", "-o", "x"],
        [
            E + "envbuild export: argument --format: invalid choice: 'yaml' (choose from "
            "'conda-lock', 'explicit', 'requirements', 'pylock') (see envbuild export --help)"
        ],
    ),
    (
        "recipe-not-toml",
        {"ws": 'local-channels = {demo = "recipes"}'},
        {"recipes/foo.toml": 'name = "foo"\nversion =\n'},
        ["resolve"],
        [
            E + "recipes/foo.toml:2: not valid TOML: Invalid value (at line 2, column 10): fix "
            "the syntax there"
        ],
    ),
    (
        "recipe-bad-values",
        {"ws": 'local-channels = {demo = "recipes"}'},
        {"recipes/foo.toml": RECIPE + 'build_number = "x"\ndepends = "zlib"\n'},
        ["resolve"],
        [
            E + "foo.toml package 1: build_number must be a whole number, like build_number = 0",
            E + 'foo.toml package 1: depends must be a list of strings, like depends = ["..."]',
        ],
    ),
    (
        "python-contradicts-conda-list",
        {"env": 'python = "3.11"\nconda = ["python=3.12", "demo-lib"]'},
        {},
        ["resolve"],
        [
            E + "envbuild.toml:6: [env.a] python: python = \"3.11\" contradicts 'python=3.12' "
            "in conda: give the python version once (remove one of them)"
        ],
    ),
    (
        "python-key-with-bare-conda-python",  # not a contradiction: only a check that runs
        {"env": 'python = "banana"\nconda = ["python", "demo-lib"]'},
        {},
        ["resolve"],
        [
            E + "envbuild.toml:6: [env.a] python: 'banana' is not a python version: write one "
            'like python = "3.11", "3.11.4" or ">=3.10,<3.13"'
        ],
    ),
    (
        "manifest-not-toml",
        b'[workspace]\nchannels = ["conda-forge"\n',
        {},
        ["resolve"],
        [
            E + "envbuild.toml:2: not valid TOML: Unclosed array (at end of document): fix "
            "the syntax there"
        ],
    ),
    (
        "filter-unknown-env",
        {},
        {},
        ["resolve", "env=b,aa"],
        [
            E + "env=b: no such env in envbuild.toml (known: a)",
            E + "env=aa: no such env in envbuild.toml (did you mean 'a'?) (known: a)",
        ],
    ),
    (
        "filter-unknown-arch",
        {},
        {},
        ["fetch", "arch=linux64"],
        [
            E + "arch=linux64: not a supported arch (did you mean 'linux-64'?) (use linux-64, "
            "linux-aarch64, osx-64, osx-arm64, win-64)"
        ],
    ),
    (
        "filter-unknown-key",
        {},
        {},
        ["resolve", "envs=a"],
        [
            E + "envs=a: unknown filter 'envs' (did you mean 'env'?): the filters are "
            "env=NAME,... arch=ARCH,... update=NAME,..."
        ],
    ),
    (
        "filter-empty",
        {},
        {},
        ["resolve", "env="],
        [E + "env=: give at least one name, like env=a"],
    ),
    (
        "filter-update-empty",
        {},
        {},
        ["resolve", "update="],
        [E + "update=: give package names or :all:, like update=numpy,scipy"],
    ),
    (
        "info-unknown-task",
        {},
        {},
        ["info", "reslove"],
        [E + "unknown command or task 'reslove' (did you mean 'resolve'?): see envbuild --help"],
    ),
    (
        "command-typo",
        {},
        {},
        ["reslove"],
        [E + "unknown command or task 'reslove' (did you mean 'resolve'?): see envbuild --help"],
    ),
    (
        "run-task-typo",
        {},
        {},
        ["run", "resolve", "fetc"],
        [E + "unknown command or task 'fetc' (did you mean 'fetch'?): see envbuild --help"],
    ),
    (
        "task-option-unknown",
        {},
        {},
        ["resolve", "--chek"],
        [E + "Error parsing Task: option --chek not recognized (see envbuild --help)"],
    ),
    (
        "subtask-typo",
        {},
        {},
        ["fecth:a@linux-64"],
        [
            E + "unknown command or task 'fecth:a@linux-64' (did you mean 'fetch'?): see "
            "envbuild --help"
        ],
    ),
    (
        "show-arch-typo",
        {},
        {},
        ["show", "a", "--arch", "osx-arm"],
        [
            E + "env 'a' is not resolved for osx-arm (did you mean 'osx-arm64'?): its archs are "
            "linux-64, osx-arm64 (set archs in [env.a] of envbuild.toml to add one)"
        ],
    ),
]


def run(ws: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "envbuild.cli", *args], cwd=ws, capture_output=True, text=True,
        env=_cli_env(), timeout=120, check=False,
    )  # fmt: skip


def make_ws(root: Path, channel: str, text: dict[str, str] | bytes, files: dict) -> Path:
    root.mkdir(parents=True)
    raw = text if isinstance(text, bytes) else manifest(channel, **text).encode()
    (root / "envbuild.toml").write_bytes(raw)
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return root


@pytest.mark.parametrize(
    ("case", "text", "files", "args", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_input_error(tmp_path, channel, case, text, files, args, expected):
    ws = make_ws(tmp_path / "ws", channel, text, files)
    result = run(ws, *args)
    assert "Traceback" not in result.stdout + result.stderr
    assert (result.returncode, result.stderr.splitlines()) == (2, expected)
    assert not (ws / "locks").exists()


def test_show_with_one_arch_unresolved(tmp_path, channel):
    """The arch that has a lock is shown; the one without is named with the command that
    makes it; exit 2."""
    ws = make_ws(tmp_path / "ws", channel, {}, {})
    assert run(ws, "resolve", "arch=linux-64").returncode == 0
    result = run(ws, "show", "a")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        E + "locks/a/osx-arm64.json: no lockfile: run `envbuild resolve env=a arch=osx-arm64` first"
    ]
    assert result.stdout.startswith("env a [linux-64] (conda)\n")


@pytest.mark.parametrize(
    "args",
    [
        ("show", "a"),
        ("show", "a", "--json"),
        ("export", "a", "--arch", "linux-64", "--format", "explicit", "-o", "-"),
        ("--help",),
    ],
)
def test_closed_stdout_is_quiet(tmp_path, channel, args):
    """``envbuild show a | true``: the reader is gone before envbuild writes; no
    BrokenPipeError, nothing on stderr, the exit status of a program SIGPIPE stopped."""
    ws = make_ws(tmp_path / "ws", channel, {}, {})
    assert run(ws, "resolve").returncode == 0
    command = f"{sys.executable} -m envbuild.cli {' '.join(args)} | true; echo ${{PIPESTATUS[0]}}"
    shell = subprocess.run(
        ["bash", "-c", command], cwd=ws, capture_output=True, text=True, env=_cli_env(),
        timeout=60, check=False,
    )  # fmt: skip
    assert (shell.stdout, shell.stderr) == ("141\n", "")


# --------------------------------------------------------------------------- validators

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from envbuild.validate import is_index_url, is_python_version  # noqa: E402

HOSTS = st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z]{2,6}){0,2}", fullmatch=True)
PATHS = st.from_regex(r"(/[A-Za-z0-9._~-]{1,12}){0,4}/?", fullmatch=True)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["http", "https"]), HOSTS, st.integers(1, 65535) | st.none(), PATHS)
def test_http_urls_are_index_urls(scheme, host, port, path):
    url = f"{scheme}://{host}{f':{port}' if port else ''}{path}"
    assert is_index_url(url)
    assert not is_index_url(url.replace("://", ":/", 1))  # one slash short
    assert not is_index_url(f"{url} x")  # a space is never part of one


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_index_url_check_never_raises(text):
    assert is_index_url(text) in (True, False)
    assert is_python_version(text) in (True, False)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, 99),
    st.integers(0, 99) | st.none(),
    st.sampled_from(["", "==", ">=", "<", "~=", "!="]),
)
def test_python_versions(minor, micro, op):
    version = f"{op}3.{minor}" + (f".{micro}" if micro is not None else "")
    assert is_python_version(version)
    assert is_python_version(f"{version},<4")
    assert not is_python_version(f"{version}; rm -rf /")
    assert not is_python_version(version.replace("3.", "three.", 1))
    assert not is_python_version(f"{version} || 3.12")
