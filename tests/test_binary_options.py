"""``only-binary`` / ``no-binary``: manifest keys (workspace, env), requirements lines, their
place in req_id, and what they do to a real resolution (uv against a loopback index)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from conftest import ServedIndex
from pypi_index import sha256_hex

from envbuild.errors import ResolveError, SpecError
from envbuild.manifest import parse_manifest
from envbuild.spec import EnvSpec, Workspace


def parse(root: Path, manifest: str, files: dict[str, str] | None = None) -> Workspace:
    for rel, text in (files or {}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    return parse_manifest(textwrap.dedent(manifest), root, "linux-64")


def problems(root: Path, manifest: str, files: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse(root, manifest, files)
    return list(info.value.problems)


def binary(env: EnvSpec) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return env.only_binary, env.no_binary


# --------------------------------------------------------------------------- manifest


def test_env_keys_replace_workspace_keys_and_spec_files_add(tmp_path: Path) -> None:
    ws = parse(
        tmp_path,
        """\
        [workspace]
        only-binary = [":all:"]
        no-binary = ["Foo_Bar"]

        [env.inherits]
        pypi = ["x"]

        [env.own]
        pypi = ["x"]
        only-binary = ["B", "a"]

        [env.none]
        pypi = ["x"]
        only-binary = []
        no-binary = []

        [env.file]
        file = "reqs.txt"
        only-binary = []

        [env.inline]
        pypi = ["--no-binary c", "x"]
        """,
        {"reqs.txt": "--only-binary z.z\nx\n"},
    )
    got = {e.name: binary(e) for e in ws.envs}
    assert got == {
        "inherits": ((":all:",), ("foo-bar",)),
        "own": (("a", "b"), ("foo-bar",)),
        "none": ((), ()),
        "file": (("z-z",), ("foo-bar",)),
        "inline": ((":all:",), ("c", "foo-bar")),
    }


def test_req_id_holds_the_options_sorted(tmp_path: Path) -> None:
    ws = parse(
        tmp_path,
        """\
        [env.a]
        pypi = ["x"]
        only-binary = ["b", "a"]
        no-binary = ["c"]

        [env.b]
        pypi = ["x"]
        only-binary = ["a", "b", "a"]
        no-binary = ["c"]

        [env.plain]
        pypi = ["x"]
        """,
    )
    a, b, plain = ws.envs
    assert a.req_categories()["flags"] == ["--only-binary a", "--only-binary b", "--no-binary c"]
    assert a.req_id == b.req_id != plain.req_id
    assert plain.req_categories()["flags"] == []
    assert EnvSpec.from_dict(a.to_dict()) == a
    assert (a.to_dict()["only_binary"], a.to_dict()["no_binary"]) == (["a", "b"], ["c"])


@pytest.mark.parametrize(
    ("setting", "problem"),
    [
        (
            'only-binary = [":all:", "foo"]',
            "':all:' must be the only entry (got :all:, foo): list exceptions in no-binary",
        ),
        (
            'no-binary = ["foo", ":all:"]',
            "':all:' must be the only entry (got foo, :all:): list exceptions in only-binary",
        ),
        (
            'no-binary = [":none:"]',
            "':none:' is not needed here: use no-binary = [] for no package",
        ),
        ('only-binary = ["bad name"]', "'bad name' is not a package name (use names or \":all:\")"),
        ('only-binary = "foo"', 'must be a list of strings, like only-binary = ["..."]'),
    ],
)
@pytest.mark.parametrize("table", ["workspace", "env.web"])
def test_value_errors(tmp_path: Path, table: str, setting: str, problem: str) -> None:
    manifest = f'[env.web]\npypi = ["x"]\n\n[{table}]\n{setting}\n'
    if table == "env.web":
        manifest = f'[env.web]\npypi = ["x"]\n{setting}\n'
    line = 5 if table == "workspace" else 3
    key = setting.split(" = ")[0]
    assert problems(tmp_path, manifest) == [f"envbuild.toml:{line}: [{table}] {key}: {problem}"]


def test_a_package_in_both_lists_is_an_error(tmp_path: Path) -> None:
    manifest = """\
    [workspace]
    no-binary = ["foo"]

    [env.web]
    pypi = ["x"]
    only-binary = ["Foo", "bar"]

    [env.files]
    file = "reqs.txt"
    pypi = ["--no-binary bar"]
    only-binary = [":all:"]
    no-binary = [":all:"]
    """
    assert problems(tmp_path, manifest, {"reqs.txt": "--only-binary bar\nx\n"}) == [
        "envbuild.toml:4: [env.web]: 'foo' is in both only-binary ([env.web] only-binary) and "
        "no-binary ([workspace] no-binary): a package cannot be both wheels-only and "
        "sources-only: remove it from one",
        "envbuild.toml:8: [env.files]: ':all:' is in both only-binary ([env.files] "
        "only-binary) and no-binary ([env.files] no-binary): a package cannot be both "
        "wheels-only and sources-only: remove it from one",
        "envbuild.toml:8: [env.files]: 'bar' is in both only-binary (reqs.txt) and no-binary "
        "([env.files] pypi): a package cannot be both wheels-only and sources-only: remove it "
        "from one",
    ]


# --------------------------------------------------------------------------- resolution


@pytest.fixture
def index(pypi_index) -> ServedIndex:
    """``both`` has a wheel and an sdist of 1.0, ``srconly`` only an sdist, ``whlonly``
    only a wheel; every sdist's metadata is static."""
    return pypi_index(
        {
            "both": ["1.0", ("1.0", "sdist")],
            "srconly": [("2.0", "sdist")],
            "whlonly": ["3.0"],
        }
    )


def resolve_host_env(ws_root: Path, spec: EnvSpec, arch: str = "linux-64") -> dict[str, tuple]:
    """Resolve a pip-only host-python env (no conda channel needed) for ``arch``:
    name -> (filename, needs_build)."""
    from envbuild.resolve.env import Context, resolve_env

    ctx = Context(root=ws_root, gateway=None, host_arch="linux-64")  # type: ignore[arg-type]
    lock = resolve_env(spec, arch, ctx)
    return {p.name: (p.filename, p.needs_build) for p in lock.packages}


def env_of(
    root: Path, index: ServedIndex, env: str, files: dict[str, str] | None = None
) -> EnvSpec:
    manifest = (
        f'[workspace]\npypi-index = "{index.url}"\npython-source = "host"\n\n'
        f'[env.e]\npython = "3.11"\n{env}\n'
    )
    return parse(root, manifest, files).env("e")


@pytest.mark.parametrize(
    ("env", "files", "expected"),
    [
        pytest.param(
            'pypi = ["both", "srconly"]',
            None,
            {"both": ("both-1.0-py3-none-any.whl", False), "srconly": ("srconly-2.0.tar.gz", True)},
            id="default-sdists-allowed",
        ),
        pytest.param(
            'pypi = ["both", "srconly"]\nno-binary = ["both"]',
            None,
            {"both": ("both-1.0.tar.gz", True), "srconly": ("srconly-2.0.tar.gz", True)},
            id="manifest-no-binary",
        ),
        pytest.param(
            'file = "reqs.txt"',
            {"reqs.txt": "--no-binary both\nboth\nwhlonly\n"},
            {"both": ("both-1.0.tar.gz", True), "whlonly": ("whlonly-3.0-py3-none-any.whl", False)},
            id="requirements-no-binary",
        ),
        pytest.param(
            'pypi = ["both", "whlonly"]\nonly-binary = [":all:"]',
            None,
            {
                "both": ("both-1.0-py3-none-any.whl", False),
                "whlonly": ("whlonly-3.0-py3-none-any.whl", False),
            },
            id="manifest-only-binary-all",
        ),
        pytest.param(
            'file = "reqs.txt"',
            {"reqs.txt": "--only-binary=:all:\n--no-binary=srconly\nboth\nsrconly\n"},
            {"both": ("both-1.0-py3-none-any.whl", False), "srconly": ("srconly-2.0.tar.gz", True)},
            id="requirements-only-binary-all-but-one",
        ),
    ],
)
def test_resolution_follows_the_options(
    tmp_path: Path, index: ServedIndex, env: str, files: dict[str, str] | None, expected: dict
) -> None:
    spec = env_of(tmp_path, index, env, files)
    for arch in ("linux-64", "osx-arm64"):  # the same for the host and a foreign arch
        assert resolve_host_env(tmp_path, spec, arch) == expected


@pytest.mark.parametrize(
    ("env", "files"),
    [
        ('pypi = ["srconly"]\nonly-binary = ["srconly"]', None),
        ('file = "reqs.txt"', {"reqs.txt": "--only-binary :all:\nsrconly\n"}),
    ],
    ids=["manifest", "requirements"],
)
def test_only_binary_makes_an_sdist_only_package_unsatisfiable(
    tmp_path: Path, index: ServedIndex, env: str, files: dict[str, str] | None
) -> None:
    from envbuild.errors import UnsatisfiableError

    spec = env_of(tmp_path, index, env, files)
    with pytest.raises(UnsatisfiableError) as info:
        resolve_host_env(tmp_path, spec)
    message = str(info.value)
    assert message.startswith(
        "the PyPI requirements cannot be satisfied for linux-64 with python 3.11:\n"
    )
    assert "srconly==2.0 has no usable wheels" in message


def test_pip_resolver_refuses_no_binary(tmp_path: Path, index: ServedIndex) -> None:
    spec = env_of(tmp_path, index, 'pypi = ["both"]\nno-binary = ["both"]\npypi-resolver = "pip"')
    with pytest.raises(ResolveError) as info:
        resolve_host_env(tmp_path, spec)
    assert str(info.value) == (
        'pypi-resolver = "pip" resolves wheels only, and no-binary asks to build both from '
        'source: use pypi-resolver = "uv" (the default) for this env'
    )


def test_locked_sdist_is_the_index_file(tmp_path: Path, index: ServedIndex) -> None:
    from envbuild.resolve.env import Context, resolve_env

    spec = env_of(tmp_path, index, 'pypi = ["both"]\nno-binary = [":all:"]')
    ctx = Context(root=tmp_path, gateway=None, host_arch="osx-arm64")  # type: ignore[arg-type]
    (pkg,) = resolve_env(spec, "linux-64", ctx).packages
    assert (pkg.name, pkg.version, pkg.needs_build) == ("both", "1.0", True)
    assert pkg.url == index.file_url("both-1.0.tar.gz")
    assert pkg.sha256 == sha256_hex(index.files["both-1.0.tar.gz"])
