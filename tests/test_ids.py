"""Tests for environment identity (envbuild.ids), EnvSpec.req_id and the Lock model."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from envbuild import ids
from envbuild.errors import LockError, SpecError
from envbuild.ids import Alias, ExactRef, parse_env_ref
from envbuild.lock import LOCK_VERSION, EnvId, Lock, LockedPackage, read_lock
from envbuild.manifest import parse_manifest
from envbuild.parsers import Dep
from envbuild.platforms import ARCHS
from envbuild.spec import EnvSpec, ResolverSettings

ROOT = Path("/nonexistent-workspace-root")  # manifests below name no files
HEX_A = "a" * 40
HEX_B = "0123456789abcdef0123456789abcdef01234567"


def sha1_lines(*lines: str) -> str:
    return hashlib.sha1("".join(f"{line}\n" for line in lines).encode()).hexdigest()


def toml_list(values: list[str]) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def manifest(
    conda: list[str],
    pypi: list[str],
    channels: tuple[str, ...] = ("conda-forge", "bioconda"),
    extra: str = "",
    python: str | None = "3.11",
) -> str:
    return (
        "[workspace]\n"
        f"channels = {toml_list(list(channels))}\n"
        'archs = ["linux-64", "osx-arm64"]\n'
        "\n[env.web]\n"
        + (f"python = {json.dumps(python)}\n" if python else "")
        + f"conda = {toml_list(conda)}\n"
        f"pypi = {toml_list(pypi)}\n" + extra
    )


def env_of(text: str) -> EnvSpec:
    (env,) = parse_manifest(text, ROOT, "linux-64").envs
    return env


# --------------------------------------------------------------------------- req_id

# Each dependency with several spellings that must normalise to the same thing.
CONDA_SPELLINGS: list[list[str]] = [
    ["numpy>=1.26", " numpy >= 1.26 ", "NumPy>=1.26", "numpy  >=1.26", "numpy>= 1.26"],
    ["scipy>=1.11,<2", "scipy >= 1.11, <2", "scipy >=1.11 , <2", "SciPy>=1.11,<2"],
    ["pandas=2", "pandas 2.*", " pandas=2 "],
    ["zlib", " zlib", "zlib "],
    ["libgcc==13.2", "libgcc == 13.2", "libgcc ==13.2"],
    ["python-dateutil>=2.8", "python-dateutil >= 2.8"],
]
PYPI_SPELLINGS: list[list[str]] = [
    ["requests>=2", "Requests>=2", "requests >=2", " Requests >= 2 "],
    ["foo-bar<2,>=1", "Foo_Bar>=1,<2", "foo.bar >= 1 , < 2"],
    ["flask[async]>=2", "Flask[Async] >= 2", "flask[ASYNC]>=2"],
    ["attrs", " attrs ", "Attrs"],
]


@st.composite
def spelled(draw: st.DrawFn, spellings: list[list[str]], chosen: list[int]) -> list[str]:
    """Some spelling of every chosen dep, plus some duplicates, in a random order."""
    out = [draw(st.sampled_from(spellings[i])) for i in chosen]
    dups = draw(st.lists(st.sampled_from(chosen), max_size=3)) if chosen else []
    out += [draw(st.sampled_from(spellings[i])) for i in dups]
    return draw(st.permutations(out))


@st.composite
def equivalent_manifests(draw: st.DrawFn) -> tuple[str, str]:
    """(canonical manifest, the same requirements reordered/duplicated/re-spaced)."""
    conda = sorted(draw(st.sets(st.integers(0, len(CONDA_SPELLINGS) - 1))))
    pypi = sorted(draw(st.sets(st.integers(0, len(PYPI_SPELLINGS) - 1))))
    canonical = manifest(
        [CONDA_SPELLINGS[i][0] for i in conda], [PYPI_SPELLINGS[i][0] for i in pypi]
    )
    variant = manifest(draw(spelled(CONDA_SPELLINGS, conda)), draw(spelled(PYPI_SPELLINGS, pypi)))
    return canonical, variant


@settings(max_examples=60, deadline=None)
@given(equivalent_manifests())
def test_req_id_invariant_under_order_duplicates_and_whitespace(case: tuple[str, str]) -> None:
    canonical, variant = case
    assert env_of(variant).req_id == env_of(canonical).req_id


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (manifest(["numpy>=1.26"], []), manifest([" numpy >= 1.26 "], [])),
        (manifest([], ["Requests>=2"]), manifest([], ["requests >=2"])),
        (
            manifest(["numpy>=1.26", "zlib"], ["requests", "attrs"]),
            manifest(["zlib", "numpy>=1.26", "zlib"], ["attrs", "requests", "Attrs"]),
        ),
        (manifest(["python=3.11", "zlib"], []), manifest(["zlib"], [])),
        (manifest(["zlib", "python=3.11"], [], python=None), manifest(["zlib"], [])),
        (manifest(["zlib", "python 3.11.*"], [], python=None), manifest(["zlib"], [])),
    ],
)
def test_req_id_equal_examples(a: str, b: str) -> None:
    assert env_of(a).req_id == env_of(b).req_id


@settings(max_examples=40, deadline=None)
@given(
    conda=st.sets(st.integers(0, len(CONDA_SPELLINGS) - 1)),
    pypi=st.sets(st.integers(0, len(PYPI_SPELLINGS) - 1)),
    data=st.data(),
)
def test_req_id_changes_when_a_dep_is_added(
    conda: set[int], pypi: set[int], data: st.DataObject
) -> None:
    base = env_of(
        manifest([CONDA_SPELLINGS[i][0] for i in conda], [PYPI_SPELLINGS[i][0] for i in pypi])
    )
    which = data.draw(st.sampled_from(["conda", "pypi"]))
    if which == "conda":
        missing = sorted(set(range(len(CONDA_SPELLINGS))) - conda)
        assume(missing)
        added = conda | {data.draw(st.sampled_from(missing))}
        bigger = manifest(
            [CONDA_SPELLINGS[i][0] for i in added], [PYPI_SPELLINGS[i][0] for i in pypi]
        )
    else:
        missing = sorted(set(range(len(PYPI_SPELLINGS))) - pypi)
        assume(missing)
        added = pypi | {data.draw(st.sampled_from(missing))}
        bigger = manifest(
            [CONDA_SPELLINGS[i][0] for i in conda], [PYPI_SPELLINGS[i][0] for i in added]
        )
    assert env_of(bigger).req_id != base.req_id


BASE = manifest(["numpy>=1.26"], ["requests>=2"])


@pytest.mark.parametrize(
    "other",
    [
        pytest.param(manifest(["numpy>=1.26", "zlib"], ["requests>=2"]), id="conda-dep-added"),
        pytest.param(manifest(["numpy>=1.26"], ["requests>=2", "attrs"]), id="pypi-dep-added"),
        pytest.param(manifest(["numpy>=1.27"], ["requests>=2"]), id="conda-version"),
        pytest.param(manifest(["numpy>=1.26"], ["requests>=3"]), id="pypi-version"),
        pytest.param(
            manifest(["numpy>=1.26"], ["requests>=2"], channels=("bioconda", "conda-forge")),
            id="channel-order",
        ),
        pytest.param(
            manifest(["numpy>=1.26"], ["requests>=2"], channels=("conda-forge",)),
            id="channel-removed",
        ),
        pytest.param(
            manifest(
                ["numpy>=1.26"], ["requests>=2"], extra='virtual-packages = { __glibc = "2.28" }\n'
            ),
            id="virtual-package-added",
        ),
        pytest.param(manifest(["numpy>=1.26"], ["requests>=2"], python="3.12"), id="python"),
        pytest.param(
            manifest(
                ["numpy>=1.26"],
                ["requests>=2"],
                extra='extra-indexes = ["https://x.example/simple"]\n',
            ),
            id="extra-index",
        ),
    ],
)
def test_req_id_changes(other: str) -> None:
    assert env_of(other).req_id != env_of(BASE).req_id


def test_req_id_changes_with_virtual_package_version() -> None:
    glibc = manifest(["zlib"], [], extra='virtual-packages = { __glibc = "2.28" }\n')
    newer = manifest(["zlib"], [], extra='virtual-packages = { __glibc = "2.34" }\n')
    assert env_of(glibc).req_id != env_of(newer).req_id


@pytest.mark.parametrize(
    "change",
    [
        {"pre": True},
        {"no_index": True},
        {"trusted_hosts": ("x.example",)},
        {"find_links": ("./wheels",)},
        {"pypi_index": "https://mirror.example/simple"},
        {"virtual_packages": (("__cuda", "12.0"),)},
        {"conda": (Dep("numpy >=1.26", ("linux-64",)),)},
        {"python": None},
    ],
    ids=lambda c: next(iter(c)),
)
def test_req_id_changes_with_flags_and_sources(change: dict[str, object]) -> None:
    env = env_of(BASE)
    assert dataclasses.replace(env, **change).req_id != env.req_id  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "change",
    [
        {"name": "other"},
        {"archs": ARCHS},
        {"spec_files": ("envs/web.yml",)},
        {"settings": ResolverSettings("flexible", 10.0)},
    ],
    ids=lambda c: next(iter(c)),
)
def test_req_id_ignores_name_archs_files_and_settings(change: dict[str, object]) -> None:
    env = env_of(BASE)
    assert dataclasses.replace(env, **change).req_id == env.req_id  # type: ignore[arg-type]


def test_req_id_format() -> None:
    assert ids.req_id({}) == sha1_lines()
    got = ids.req_id({"pypi": ["b", " a ", "b", ""], "conda": ["z"], "flags": ["--pre"]})
    assert got == sha1_lines("conda::z", "pypi::a", "pypi::b", "flags::--pre")


def test_req_id_lines_as_documented() -> None:
    """docs/ids.md: one ``category::value`` line per value, categories in a fixed order."""
    env = EnvSpec(
        name="web",
        archs=("linux-64", "osx-arm64"),
        channels=("https://conda.anaconda.org/conda-forge", "./local"),
        conda=(Dep("numpy >=1.26"), Dep("libgcc", ("linux-64", "linux-aarch64"))),
        pypi=(Dep("requests>=2"), Dep("attrs", ("osx-arm64",))),
        python="3.11.*",
        extra_indexes=("https://x.example/simple",),
        find_links=("./wheels",),
        trusted_hosts=("x.example",),
        pre=True,
        no_index=True,
        virtual_packages=(("__cuda", "12.0"), ("__glibc", "2.28")),
    )
    assert env.req_id == sha1_lines(
        "conda::libgcc [linux-64,linux-aarch64]",
        "conda::numpy >=1.26",
        "conda::python 3.11.*",
        "pypi::attrs [osx-arm64]",
        "pypi::requests>=2",
        "sys::__cuda=12.0",
        "sys::__glibc=2.28",
        "channels::https://conda.anaconda.org/conda-forge | ./local",
        "indexes::base:https://pypi.org/simple",
        "indexes::extra:https://x.example/simple",
        "indexes::find-links:./wheels",
        "flags::--no-index",
        "flags::--pre",
        "flags::--trusted-host x.example",
    )


def test_req_id_unknown_category() -> None:
    with pytest.raises(ValueError) as info:
        ids.req_id({"conda": ["x"], "extras": ["y"], "bogus": []})
    assert str(info.value) == "unknown req_id categories: ['bogus', 'extras']"


# --------------------------------------------------------------------------- full_id, coresolved_id

_PKGS = st.lists(
    st.tuples(
        st.from_regex(r"[a-z][a-z0-9-]{0,10}-[0-9]\.[0-9]-[a-z0-9_]{1,6}\.conda", fullmatch=True),
        st.from_regex(r"[0-9a-f]{64}", fullmatch=True),
    ),
    max_size=8,
)


@settings(max_examples=60, deadline=None)
@given(pkgs=_PKGS, data=st.data(), arch=st.sampled_from(ARCHS))
def test_full_id_invariant_under_order_and_duplicates(
    pkgs: list[tuple[str, str]], data: st.DataObject, arch: str
) -> None:
    shuffled = data.draw(st.permutations(pkgs + pkgs[:2]))
    assert ids.full_id(shuffled, arch) == ids.full_id(pkgs, arch)
    assert ids.full_id(iter(pkgs), arch) == ids.full_id(pkgs, arch)


@settings(max_examples=30, deadline=None)
@given(pkgs=_PKGS)
def test_full_id_changes_with_arch(pkgs: list[tuple[str, str]]) -> None:
    assert len({ids.full_id(pkgs, arch) for arch in ARCHS}) == len(ARCHS)


def test_full_id_changes_with_a_hash_or_a_package() -> None:
    pkgs = [("numpy-1.26.4-py311_0.conda", "1" * 64), ("zlib-1.3-0.conda", "2" * 64)]
    base = ids.full_id(pkgs, "linux-64")
    assert ids.full_id([pkgs[0], ("zlib-1.3-0.conda", "3" * 64)], "linux-64") != base
    assert ids.full_id(pkgs[:1], "linux-64") != base
    assert ids.full_id([*pkgs, ("pip-24-0.conda", "4" * 64)], "linux-64") != base


def test_full_id_format() -> None:
    pkgs = [("z-1-0.conda", "ff"), ("a-1-0.conda", "ee")]
    assert ids.full_id(pkgs, "osx-64") == sha1_lines(
        "a-1-0.conda#ee", "z-1-0.conda#ff", "arch::osx-64"
    )
    assert ids.full_id([], "linux-64") == sha1_lines("arch::linux-64")


@settings(max_examples=40, deadline=None)
@given(
    mapping=st.dictionaries(
        st.sampled_from(ARCHS), st.from_regex(r"[0-9a-f]{40}", fullmatch=True), min_size=1
    ),
    data=st.data(),
)
def test_coresolved_id_order_independent(mapping: dict[str, str], data: st.DataObject) -> None:
    items = data.draw(st.permutations(list(mapping.items())))
    assert ids.coresolved_id(dict(items)) == ids.coresolved_id(mapping)
    assert ids.coresolved_id(mapping) == sha1_lines(
        *(f"{a}::{f}" for a, f in sorted(mapping.items()))
    )


def test_coresolved_id_changes_with_any_full_id() -> None:
    base = {"linux-64": HEX_A, "osx-arm64": HEX_B}
    assert ids.coresolved_id({"linux-64": HEX_A, "osx-arm64": HEX_A}) != ids.coresolved_id(base)
    assert ids.coresolved_id({"linux-64": HEX_B, "osx-arm64": HEX_A}) != ids.coresolved_id(base)
    assert ids.coresolved_id({"linux-64": HEX_A}) != ids.coresolved_id(base)


def test_settings_hash() -> None:
    a = ids.settings_hash([("priority", "strict"), ("timeout", "120")])
    assert a == ids.settings_hash([("timeout", "120"), ("priority", "strict")])
    assert a == sha1_lines("priority=strict", "timeout=120")[:16]
    assert a != ids.settings_hash([("priority", "flexible"), ("timeout", "120")])


# --------------------------------------------------------------------------- env references


@pytest.mark.parametrize(
    ("text", "expected", "mutable"),
    [
        ("web", Alias("web", "latest"), True),
        ("web:latest", Alias("web", "latest"), True),
        ("web:candidate", Alias("web", "candidate"), True),
        ("web:stable", Alias("web", "stable"), True),
        ("web:v1", Alias("web", "v1"), False),
        ("web:2024-01-01", Alias("web", "2024-01-01"), False),
        ("web:latest-1", Alias("web", "latest-1"), False),
        ("team/ml_env-2:rc_1", Alias("team/ml_env-2", "rc_1"), False),
        ("  web:stable  ", Alias("web", "stable"), True),
        (f"{HEX_A}:latest", Alias(HEX_A, "latest"), True),
    ],
)
def test_alias(text: str, expected: Alias, mutable: bool) -> None:
    got = parse_env_ref(text)
    assert got == expected
    assert isinstance(got, Alias)
    assert got.mutable is mutable


@pytest.mark.parametrize("tag", ["latest", "candidate", "stable"])
def test_mutable_tags(tag: str) -> None:
    assert ids.MUTABLE_TAGS == {"latest", "candidate", "stable"}
    assert Alias("x", tag).mutable
    assert not Alias("x", tag + "2").mutable
    assert not Alias("x", tag.upper()).mutable


def test_alias_default_tag_is_latest() -> None:
    assert Alias("web").tag == "latest"
    assert str(Alias("web")) == "web:latest"


@pytest.mark.parametrize(("req", "full"), [(HEX_A, HEX_B), (HEX_B, HEX_A), (HEX_A, HEX_A)])
def test_exact_ref(req: str, full: str) -> None:
    got = parse_env_ref(f"{req}:{full}")
    assert got == ExactRef(req, full)
    assert str(got) == f"{req}:{full}"
    assert parse_env_ref(str(got)) == got


@pytest.mark.parametrize("text", [HEX_A, HEX_B, f"  {HEX_B}\n"])
def test_bare_id_refused(text: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_env_ref(text)
    assert info.value.problems == (
        f"env reference '{text.strip()}' is a bare id, which is ambiguous: "
        "use req_id:full_id or an alias",
    )


def _name_msg(text: str, name: str) -> str:
    return f"alias '{text}': name '{name}' may only hold a-z, 0-9, '-', '_' and inner '/'"


def _tag_msg(text: str, tag: str) -> str:
    return f"alias '{text}': tag '{tag}' may only hold a-z, 0-9, '-' and '_'"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Web:v1", [_name_msg("Web:v1", "Web")]),
        ("web env", [_name_msg("web env", "web env")]),
        ("/web", [_name_msg("/web", "/web")]),
        ("team/:v1", [_name_msg("team/:v1", "team/")]),
        (":v1", [_name_msg(":v1", "")]),
        ("", [_name_msg("", "")]),
        ("web.v2", [_name_msg("web.v2", "web.v2")]),
        ("a:b:c", [_name_msg("a:b:c", "a:b")]),
        ("web:", [_tag_msg("web:", "")]),
        ("web:V1", [_tag_msg("web:V1", "V1")]),
        ("web:v1.0", [_tag_msg("web:v1.0", "v1.0")]),
        ("web:a/b", [_tag_msg("web:a/b", "a/b")]),
        (f"{HEX_A.upper()}", [_name_msg(HEX_A.upper(), HEX_A.upper())]),
        ("We b:V 1", [_name_msg("We b:V 1", "We b"), _tag_msg("We b:V 1", "V 1")]),
    ],
)
def test_invalid_alias(text: str, expected: list[str]) -> None:
    with pytest.raises(SpecError) as info:
        parse_env_ref(text)
    assert list(info.value.problems) == expected


_SEGMENT = r"[-a-z0-9_]+"
_NAMES = st.from_regex(rf"{_SEGMENT}(/{_SEGMENT})*", fullmatch=True)
_TAGS = st.from_regex(_SEGMENT, fullmatch=True)


def _is_hex40(s: str) -> bool:
    return len(s) == 40 and all(c in "0123456789abcdef" for c in s)


@settings(max_examples=150, deadline=None)
@given(name=_NAMES, tag=_TAGS)
def test_alias_round_trips(name: str, tag: str) -> None:
    assume(not (_is_hex40(name) and _is_hex40(tag)))
    alias = Alias(name, tag)
    assert parse_env_ref(str(alias)) == alias
    assert str(parse_env_ref(str(alias))) == f"{name}:{tag}"
    if not _is_hex40(name):
        assert parse_env_ref(name) == Alias(name, "latest")


@settings(max_examples=60, deadline=None)
@given(
    name=_NAMES,
    bad=st.sampled_from("ABZ.:@#!+é"),
    at=st.integers(min_value=0),
)
def test_alias_with_a_bad_character_in_the_name_is_refused(name: str, bad: str, at: int) -> None:
    at %= len(name) + 1
    bad_name = name[:at] + bad + name[at:]
    assume(":" not in bad_name)
    text = f"{bad_name}:v1"
    with pytest.raises(SpecError) as info:
        parse_env_ref(text)
    assert info.value.problems == (_name_msg(text, bad_name),)


# --------------------------------------------------------------------------- lock model

SPEC_MANIFEST = """\
[workspace]
channels = ["conda-forge"]
archs = ["linux-64", "osx-arm64"]
virtual-packages = { __glibc = "2.28" }
channel-priority = "flexible"
solve-timeout = 30
extra-indexes = ["https://x.example/simple"]

[env.web]
python = "3.11"
conda = ["numpy>=1.26", "zlib"]
pypi = ["Requests>=2"]
virtual-packages = { __cuda = "12.0" }
"""


@pytest.fixture(scope="module")
def spec() -> EnvSpec:
    return env_of(SPEC_MANIFEST)


def test_env_spec_round_trip(spec: EnvSpec) -> None:
    assert EnvSpec.from_dict(spec.to_dict()) == spec
    assert EnvSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    assert spec.virtual_packages == (("__cuda", "12.0"), ("__glibc", "2.28"))
    assert spec.settings == ResolverSettings("flexible", 30.0)


def test_env_spec_round_trip_with_arch_deps_and_flags(spec: EnvSpec) -> None:
    full = dataclasses.replace(
        spec,
        conda=(Dep("numpy >=1.26"), Dep("libgcc", ("linux-64",))),
        pypi=(Dep("torch", ("linux-64",)),),
        pre=True,
        no_index=True,
        find_links=("./wheels",),
        trusted_hosts=("x.example",),
        spec_files=("envs/web.yml",),
    )
    assert EnvSpec.from_dict(json.loads(json.dumps(full.to_dict()))) == full


@pytest.mark.parametrize(
    "env_id", [EnvId(HEX_A, HEX_B, "linux-64"), EnvId(HEX_B, HEX_A, "osx-arm64")]
)
def test_env_id_round_trip(env_id: EnvId) -> None:
    assert env_id.to_dict() == {
        "req_id": env_id.req_id,
        "full_id": env_id.full_id,
        "arch": env_id.arch,
    }
    assert EnvId.from_dict(env_id.to_dict()) == env_id


_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
_HEX64 = st.from_regex(r"[0-9a-f]{64}", fullmatch=True)
_HEX32 = st.from_regex(r"[0-9a-f]{32}", fullmatch=True)
_COUNT = st.integers(min_value=0, max_value=2**53)

_PACKAGES = st.builds(
    LockedPackage,
    kind=st.sampled_from(["conda", "pypi"]),
    name=st.from_regex(r"[a-z][a-z0-9-]{0,12}", fullmatch=True),
    version=st.from_regex(r"[0-9]{1,3}(\.[0-9]{1,3}){0,2}", fullmatch=True),
    url=_TEXT,
    filename=_TEXT,
    sha256=st.one_of(st.just(""), _HEX64),
    md5=st.one_of(st.just(""), _HEX32),
    size=_COUNT,
    build=_TEXT,
    build_number=_COUNT,
    channel=_TEXT,
    subdir=st.sampled_from(["", "noarch", *ARCHS]),
    depends=st.lists(_TEXT, max_size=3).map(tuple),
    constrains=st.lists(_TEXT, max_size=3).map(tuple),
    noarch=st.sampled_from(["", "python", "generic"]),
    license=_TEXT,
    timestamp=_COUNT,
    track_features=st.lists(_TEXT, max_size=2).map(tuple),
)


@settings(max_examples=100, deadline=None)
@given(_PACKAGES)
def test_locked_package_round_trip(pkg: LockedPackage) -> None:
    assert LockedPackage.from_dict(pkg.to_dict()) == pkg
    assert LockedPackage.from_dict(json.loads(json.dumps(pkg.to_dict()))) == pkg
    assert pkg.digest == (pkg.sha256 or pkg.md5)


def test_locked_package_defaults_for_missing_optional_fields() -> None:
    data = {"kind": "conda", "name": "zlib", "version": "1.3", "url": "u", "filename": "f"}
    assert LockedPackage.from_dict(data) == LockedPackage("conda", "zlib", "1.3", "u", "f", "")


def _pkg(name: str, kind: str = "conda", digest: str = "") -> LockedPackage:
    filename = f"{name}-1.0-0.conda" if kind == "conda" else f"{name}-1.0-py3-none-any.whl"
    return LockedPackage(
        kind=kind,
        name=name,
        version="1.0",
        url=f"https://example.invalid/{filename}",
        filename=filename,
        sha256=digest or hashlib.sha256(name.encode()).hexdigest(),
        md5=hashlib.md5(name.encode()).hexdigest(),
        size=len(name),
    )


PACKAGES = [
    _pkg("python"),
    _pkg("numpy"),
    _pkg("zlib"),
    _pkg("requests", "pypi"),
    _pkg("urllib3", "pypi"),
    _pkg("Ünïcode-pkg"),
]


def test_lock_build_orders_packages_and_computes_ids(spec: EnvSpec) -> None:
    lock = Lock.build(spec, "osx-arm64", list(reversed(PACKAGES)))
    assert [(p.kind, p.name) for p in lock.packages] == [
        ("conda", "numpy"),
        ("conda", "python"),
        ("conda", "zlib"),
        ("conda", "Ünïcode-pkg"),
        ("pypi", "requests"),
        ("pypi", "urllib3"),
    ]
    assert lock.env_id == EnvId(
        spec.req_id,
        ids.full_id(((p.filename, p.sha256) for p in PACKAGES), "osx-arm64"),
        "osx-arm64",
    )
    assert lock.version == LOCK_VERSION == 2
    assert lock.name == "web"
    assert lock.kind == "mixed"


@settings(max_examples=30, deadline=None)
@given(st.permutations(PACKAGES), st.permutations(PACKAGES))
def test_lock_dumps_is_deterministic(
    first: list[LockedPackage], second: list[LockedPackage]
) -> None:
    spec = env_of(SPEC_MANIFEST)
    a = Lock.build(spec, "linux-64", first)
    b = Lock.build(spec, "linux-64", second)
    assert a == b
    assert a.dumps() == b.dumps()
    assert a.dumps().endswith("}\n")


def test_lock_dumps_loads_round_trip(spec: EnvSpec) -> None:
    lock = Lock.build(spec, "linux-64", PACKAGES)
    text = lock.dumps()
    assert Lock.loads(text) == lock
    assert Lock.loads(text).dumps() == text
    assert Lock.from_dict(lock.to_dict()) == lock
    data = json.loads(text)
    assert list(data) == sorted(data)
    assert data["env"] == "web"
    assert data["kind"] == "mixed"
    assert data["version"] == 2


def test_lock_file_round_trip(spec: EnvSpec, tmp_path: Path) -> None:
    lock = Lock.build(spec, "linux-64", PACKAGES)
    path = tmp_path / "locks" / "web" / "linux-64.json"
    path.parent.mkdir(parents=True)
    path.write_text(lock.dumps(), encoding="utf-8")
    assert read_lock(path) == lock


OLDER = "is older than this envbuild's (2): `envbuild resolve` rewrites it"
NEWER = "is not supported (this envbuild reads version 2): upgrade envbuild, or re-resolve"


@pytest.mark.parametrize(
    ("version", "message"),
    [
        (1, f"1 {OLDER}"),
        (0, f"0 {OLDER}"),
        (3, f"3 {NEWER}"),
        ("1", f"'1' {NEWER}"),
        (None, f"None {NEWER}"),
    ],
)
def test_lock_wrong_version(spec: EnvSpec, version: object, message: str) -> None:
    data = Lock.build(spec, "linux-64", PACKAGES).to_dict()
    data["version"] = version
    with pytest.raises(LockError) as info:
        Lock.loads(json.dumps(data), "locks/web/linux-64.json")
    assert str(info.value) == f"locks/web/linux-64.json: lock format version {message}"


def test_lock_missing_version(spec: EnvSpec) -> None:
    data = Lock.build(spec, "linux-64", PACKAGES).to_dict()
    del data["version"]
    with pytest.raises(LockError) as info:
        Lock.loads(json.dumps(data))
    assert str(info.value) == f"lock: lock format version None {NEWER}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "{not json",
            "locks/web/linux-64.json: not valid JSON (Expecting property name enclosed in double "
            "quotes: line 1 column 2 (char 1)): re-resolve to rewrite it",
        ),
        (
            "",
            "locks/web/linux-64.json: not valid JSON (Expecting value: line 1 column 1 (char 0)): re-resolve to rewrite it",
        ),
        (
            '{"version": 1}',
            f"locks/web/linux-64.json: lock format version 1 {OLDER}",
        ),
    ],
)
def test_lock_loads_errors(text: str, message: str) -> None:
    with pytest.raises(LockError) as info:
        Lock.loads(text, "locks/web/linux-64.json")
    assert str(info.value) == message


def test_lock_has_no_credentials() -> None:
    spec = env_of(
        "[workspace]\n"
        'channels = ["https://user:s3cret@repo.example/chan", '
        '"https://conda.anaconda.org/t/s3cret-token/private"]\n'
        'pypi-index = "https://user:s3cret@pypi.example/simple"\n'
        'extra-indexes = ["https://user:s3cret@extra.example/simple"]\n'
        '[env.web]\nconda = ["zlib"]\n'
    )
    text = Lock.build(spec, "linux-64", PACKAGES).dumps()
    assert "s3cret" not in text


def test_read_lock_missing(tmp_path: Path) -> None:
    path = tmp_path / "locks" / "web" / "linux-64.json"
    with pytest.raises(LockError) as info:
        read_lock(path)
    assert str(info.value) == f"{path}: no lockfile: run `envbuild resolve` first"


def test_lock_dumps_shuffled_many(spec: EnvSpec) -> None:
    rng = random.Random(1234)
    texts = set()
    for _ in range(20):
        pkgs = list(PACKAGES)
        rng.shuffle(pkgs)
        texts.add(Lock.build(spec, "linux-64", pkgs).dumps())
    assert len(texts) == 1
