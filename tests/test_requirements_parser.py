"""Tests for the requirements.txt parser (envbuild.parsers.requirements)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.requirements import InvalidRequirement, Requirement

from envbuild.errors import SpecError
from envbuild.parsers import Dep, ParsedSpec
from envbuild.parsers.requirements import parse_requirements

PATH = "envs/web.txt"
HASH_A = "a" * 64
HASH_B = "b" * 64


def pypi(text: str) -> list[str]:
    return [d.value for d in parse_requirements(text, PATH).pypi]


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_requirements(text, PATH)
    return list(info.value.problems)


def invalid(line: str) -> str:
    """The expected 'not a valid requirement' message, ending in packaging's own first line."""
    with pytest.raises(InvalidRequirement) as info:
        Requirement(line)
    return f"'{line}' is not a valid requirement: {str(info.value).splitlines()[0]}"


# --------------------------------------------------------------------------- accepted lines


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        # plain PEP 508, normalised
        ("requests", "requests"),
        ("Requests >= 2.0 , <3", "requests<3,>=2.0"),
        ("requests<3,>=2.0", "requests<3,>=2.0"),
        ("Foo_Bar.baz==1.0", "foo-bar-baz==1.0"),
        ("foo[B, a,a]>=1", "foo[a,b]>=1"),
        ("foo[Some_Extra]", "foo[some-extra]"),
        ("numpy==1.26.*", "numpy==1.26.*"),
        # markers are kept (and normalised)
        ("foo>=1; python_version<'3.12'", 'foo>=1; python_version < "3.12"'),
        ('foo>=1 ;python_version < "3.12"', 'foo>=1; python_version < "3.12"'),
        ('foo ; sys_platform == "linux"', 'foo; sys_platform == "linux"'),
        # direct references
        ("Foo @ https://example.com/foo-1.0.tar.gz", "foo @ https://example.com/foo-1.0.tar.gz"),
        ("foo@https://example.com/foo.zip", "foo @ https://example.com/foo.zip"),
        ("foo @ git+https://github.com/x/foo@v1.0", "foo @ git+https://github.com/x/foo@v1.0"),
        ("foo @ file:///srv/wheels/foo.whl", "foo @ file:///srv/wheels/foo.whl"),
        (
            "foo[b,A] @ https://x/foo.whl ; python_version<'3.12'",
            'foo[a,b] @ https://x/foo.whl ; python_version < "3.12"',
        ),
        # VCS requirements, verbatim
        ("git+https://github.com/x/y@v1.0#egg=y", "git+https://github.com/x/y@v1.0#egg=y"),
        ("hg+https://hg.example.com/y#egg=y", "hg+https://hg.example.com/y#egg=y"),
        ("bzr+lp:y#egg=y", "bzr+lp:y#egg=y"),
        ("svn+svn://svn.example.com/y#egg=y", "svn+svn://svn.example.com/y#egg=y"),
        ("  git+ssh://git@github.com/x/y.git  ", "git+ssh://git@github.com/x/y.git"),
        # local paths, verbatim
        ("./pkgs/foo", "./pkgs/foo"),
        ("../foo", "../foo"),
        ("/abs/foo-1.0.tar.gz", "/abs/foo-1.0.tar.gz"),
        ("file:///abs/foo", "file:///abs/foo"),
        (".", "."),
        ("dist/foo-1.0-py3-none-any.whl", "dist/foo-1.0-py3-none-any.whl"),
        ("foo-1.0-py3-none-any.whl", "foo-1.0-py3-none-any.whl"),
        ("vendor/foo-1.0.tar.gz", "vendor/foo-1.0.tar.gz"),
        ("vendor/foo-1.0.tar.bz2", "vendor/foo-1.0.tar.bz2"),
        ("https://example.com/foo-1.0.zip", "https://example.com/foo-1.0.zip"),
        # comments
        ("foo==1.0  # pinned for reasons", "foo==1.0"),
        ("foo==1.0\t#tab comment", "foo==1.0"),
        ("git+https://github.com/x/y#egg=y # comment", "git+https://github.com/x/y#egg=y"),
    ],
)
def test_requirement_lines(line: str, expected: str) -> None:
    assert parse_requirements(line, PATH) == ParsedSpec(pypi=(Dep(expected),))


def test_hashes_are_kept_apart_from_the_requirement() -> None:
    for text in (
        f"foo==1.0 --hash=sha256:{HASH_A}",
        f"Foo==1.0 --hash sha256:{HASH_A.upper()}",
        f"foo==1.0 --hash=sha256:{HASH_A} --hash=sha256:{HASH_A}",
    ):
        assert parse_requirements(text, PATH) == ParsedSpec(
            pypi=(Dep("foo==1.0"),),
            hashes=(("foo", f"sha256:{HASH_A}"),),
            hash_origins=(("foo", f"{PATH}:1"),),
        )


def test_normalised_requirements_reparse_to_themselves() -> None:
    for value in pypi("Foo[b,A] @ https://x/y.zip ; python_version<'3'\nBar>=1,<2; os_name=='nt'"):
        assert pypi(str(Requirement(value))) == [value]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("--extra-index-url https://a/simple", ParsedSpec(extra_indexes=("https://a/simple",))),
        ("--extra-index-url=https://a/simple", ParsedSpec(extra_indexes=("https://a/simple",))),
        (
            "--extra-index-url https://b\n--extra-index-url=https://a\n--extra-index-url https://b",
            ParsedSpec(extra_indexes=("https://b", "https://a")),
        ),
        ("-f https://w/links", ParsedSpec(find_links=("https://w/links",))),
        ("-fhttps://w/links", ParsedSpec(find_links=("https://w/links",))),
        ("--find-links ./wheels", ParsedSpec(find_links=("./wheels",))),
        ("--find-links=./wheels\n-f ./wheels", ParsedSpec(find_links=("./wheels",))),
        ("--trusted-host pypi.corp", ParsedSpec(trusted_hosts=("pypi.corp",))),
        ("--trusted-host=pypi.corp", ParsedSpec(trusted_hosts=("pypi.corp",))),
        ("--pre", ParsedSpec(pre=True)),
        ("--no-index", ParsedSpec(no_index=True)),
        ("--pre\n--no-index\n--pre", ParsedSpec(pre=True, no_index=True)),
        ("--conda-channel conda-forge", ParsedSpec(channels=("conda-forge",))),
        (
            "--conda-channel=bioconda\n--conda-channel conda-forge\n--conda-channel bioconda",
            ParsedSpec(channels=("bioconda", "conda-forge")),
        ),
        ("--conda-pkg numpy", ParsedSpec(conda=(Dep("numpy"),))),
        ("--conda-pkg   cudatoolkit   >=11.8  ", ParsedSpec(conda=(Dep("cudatoolkit >=11.8"),))),
        ("--conda-pkg=libgcc-ng\t>=12", ParsedSpec(conda=(Dep("libgcc-ng >=12"),))),
        ("--conda-pkg a\n--conda-pkg b\n--conda-pkg  a", ParsedSpec(conda=(Dep("a"), Dep("b")))),
        ("--sys-pkg __cuda==12.0", ParsedSpec(sys=(("__cuda", "12.0"),))),
        ("--sys-pkg __glibc == 2.27", ParsedSpec(sys=(("__glibc", "2.27"),))),
        (
            "--sys-pkg __glibc==2.27\n--sys-pkg __cuda==12.0\n--sys-pkg __glibc==2.27",
            ParsedSpec(sys=(("__glibc", "2.27"), ("__cuda", "12.0"))),
        ),
        # python
        ("python==3.11", ParsedSpec(python="3.11.*")),
        ("python == 3.11.*", ParsedSpec(python="3.11.*")),
        ("python==3.11.4", ParsedSpec(python="3.11.4")),
        ("python==3", ParsedSpec(python="3.*")),
        ("python>=3.10", ParsedSpec(python=">=3.10")),
        ("Python >= 3.10, <3.13", ParsedSpec(python="<3.13,>=3.10")),
        ("python==3.11\npython == 3.11", ParsedSpec(python="3.11.*")),
        # blank and comment lines
        ("\n\n   \n# a comment\n   # indented comment\n", ParsedSpec()),
        ("", ParsedSpec()),
    ],
)
def test_option_lines(text: str, expected: ParsedSpec) -> None:
    assert parse_requirements(text, PATH) == expected


def test_mixed_file_keeps_first_appearance_order() -> None:
    text = """\
# web environment
--conda-channel conda-forge
--conda-pkg nodejs >=18
--sys-pkg __cuda==12.0
python==3.11

Flask>=2 ; python_version >= "3.8"
requests
git+https://github.com/x/y@v1.0#egg=y
./vendor/lib
requests   # duplicate
flask >=2; python_version>='3.8'
--extra-index-url https://pypi.corp/simple
--trusted-host pypi.corp
"""
    assert parse_requirements(text, PATH) == ParsedSpec(
        conda=(Dep("nodejs >=18"),),
        pypi=(
            Dep('flask>=2; python_version >= "3.8"'),
            Dep("requests"),
            Dep("git+https://github.com/x/y@v1.0#egg=y"),
            Dep("./vendor/lib"),
        ),
        channels=("conda-forge",),
        extra_indexes=("https://pypi.corp/simple",),
        trusted_hosts=("pypi.corp",),
        python="3.11.*",
        sys=(("__cuda", "12.0"),),
    )


# --------------------------------------------------------------------------- continuations


def test_continuation_lines_are_joined() -> None:
    text = f"foo>=1,\\\n<2\nbar==1.0 \\\n    --hash=sha256:{HASH_A} \\\n    --hash=sha256:{HASH_B}\nbaz"
    assert pypi(text) == ["foo<2,>=1", "bar==1.0", "baz"]


def test_continuation_of_an_option() -> None:
    assert parse_requirements("--extra-index-url \\\n  https://a", PATH).extra_indexes == (
        "https://a",
    )


def test_continuation_at_end_of_file() -> None:
    assert pypi("foo \\") == ["foo"]


def test_comment_line_ends_a_continuation() -> None:
    assert pypi("foo \\\n# comment\nbar") == ["foo", "bar"]


def test_continuation_error_reports_first_physical_line() -> None:
    text = "ok\n\nfoo >= \\\n  bad! \\\n  more\nalso-ok"
    assert problems(text) == [f"{PATH}:3: {invalid('foo >=   bad!   more')}"]


def test_packaging_message_is_one_line() -> None:
    (message,) = problems("foo bar")
    assert message.startswith(f"{PATH}:1: 'foo bar' is not a valid requirement: Expected ")
    assert "\n" not in message


def test_line_numbers_count_blank_and_comment_lines() -> None:
    text = "# header\n\nok\n  # indented\n--weird"
    assert problems(text) == [f"{PATH}:5: '--weird' {UNSUPPORTED_MSG}"]


def test_crlf_line_endings() -> None:
    assert pypi("foo\r\nbar \\\r\n>=1\r\n") == ["foo", "bar>=1"]


# --------------------------------------------------------------------------- errors

INDEX_MSG = (
    "is not supported: set `pypi-index` in the [workspace] table of envbuild.toml for the "
    "base index, and use --extra-index-url for additional indexes"
)
EDITABLE_MSG = "editable installs are not supported: write"
INLINE_MSG = "is not supported here: {} needs a requirements file, named by `file` in envbuild.toml"
UNSUPPORTED_MSG = "is not a supported line in a requirements.txt"
SYS_MSG = "is not a valid --sys-pkg: expected __name==version (e.g. --sys-pkg __cuda==12.0)"
PYTHON_MSG = (
    "is not valid: python can only be constrained by a plain version specifier "
    "(e.g. python==3.11 or python>=3.10), without extras, URL or marker"
)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("-i https://pypi.corp/simple", f"'-i https://pypi.corp/simple' {INDEX_MSG}"),
        ("-ihttps://pypi.corp/simple", f"'-ihttps://pypi.corp/simple' {INDEX_MSG}"),
        ("--index-url https://p/simple", f"'--index-url https://p/simple' {INDEX_MSG}"),
        ("--index-url=https://p/simple", f"'--index-url=https://p/simple' {INDEX_MSG}"),
        ("-e ./foo", f"'-e ./foo': {EDITABLE_MSG} 'foo @ ./foo' or just './foo'"),
        ("-e.", f"'-e.': {EDITABLE_MSG} 'NAME @ .' or just '.'"),
        ("--editable ./foo", f"'--editable ./foo': {EDITABLE_MSG} 'foo @ ./foo' or just './foo'"),
        (
            "--editable=git+https://x/y#egg=y",
            f"'--editable=git+https://x/y#egg=y': {EDITABLE_MSG} 'y @ git+https://x/y'",
        ),
        ("-r other.txt", "'-r other.txt' " + INLINE_MSG.format("-r")),
        (
            "--requirement other.txt",
            "'--requirement other.txt' " + INLINE_MSG.format("--requirement"),
        ),
        ("-c constraints.txt", "'-c constraints.txt' " + INLINE_MSG.format("-c")),
        ("--prefer-binary x", "'--prefer-binary x' is not valid: --prefer-binary takes no value"),
        (
            "--only-binary",
            "'--only-binary' is not valid: --only-binary takes one value: comma-separated "
            "package names, :all: or :none:",
        ),
        (
            "--no-binary a, b",
            "'--no-binary a, b' is not valid: --no-binary takes one value: comma-separated "
            "package names, :all: or :none:",
        ),
        (
            "--no-binary=a,-b",
            "'--no-binary=a,-b' is not valid: '-b' is not a package name, :all: or :none:",
        ),
        ("--hash=sha256:abcd", f"'--hash=sha256:abcd' {UNSUPPORTED_MSG}"),
        ("-", f"'-' {UNSUPPORTED_MSG}"),
        ("  --use-feature  x  # c", f"'--use-feature  x' {UNSUPPORTED_MSG}"),
        ("--sys-pkg __cuda>=12.0", f"'--sys-pkg __cuda>=12.0' {SYS_MSG}"),
        ("--sys-pkg cuda==12.0", f"'--sys-pkg cuda==12.0' {SYS_MSG}"),
        ("--sys-pkg __cuda", f"'--sys-pkg __cuda' {SYS_MSG}"),
        ("--sys-pkg __cuda==", f"'--sys-pkg __cuda==' {SYS_MSG}"),
        ("--sys-pkg", f"'--sys-pkg' {SYS_MSG}"),
        ("--sys-pkg __cuda==12,<13", f"'--sys-pkg __cuda==12,<13' {SYS_MSG}"),
        ("--pre yes", "'--pre yes' is not valid: --pre takes no value"),
        ("--no-index=1", "'--no-index=1' is not valid: --no-index takes no value"),
        (
            "--extra-index-url",
            "'--extra-index-url' is not valid: --extra-index-url takes exactly one value",
        ),
        (
            "--find-links a b",
            "'--find-links a b' is not valid: --find-links takes exactly one value",
        ),
        ("-f", "'-f' is not valid: -f takes exactly one value"),
        (
            "--trusted-host=",
            "'--trusted-host=' is not valid: --trusted-host takes exactly one value",
        ),
        (
            "--conda-channel a b",
            "'--conda-channel a b' is not valid: --conda-channel takes exactly one value",
        ),
        ("--conda-pkg", "'--conda-pkg' is not valid: --conda-pkg needs a conda package spec"),
        ("python", f"'python' {PYTHON_MSG}"),
        ("python[x]==3.11", f"'python[x]==3.11' {PYTHON_MSG}"),
        ("python==3.11; os_name=='nt'", f"'python==3.11; os_name=='nt'' {PYTHON_MSG}"),
        ("python @ https://x/python.tar.gz", f"'python @ https://x/python.tar.gz' {PYTHON_MSG}"),
        ("foo bar", invalid("foo bar")),
        ("foo>=1 <2", invalid("foo>=1 <2")),
        ("foo=1", invalid("foo=1")),
        ("foo >= 1 ; nonsense", invalid("foo >= 1 ; nonsense")),
        ("https://example.com/foo", invalid("https://example.com/foo")),
        (
            "foo==1.0 --global-option=x",
            (
                "'foo==1.0 --global-option=x' uses the per-requirement option '--global-option', "
                "which envbuild does not support (only --hash is accepted)"
            ),
        ),
    ],
)
def test_error_lines(line: str, message: str) -> None:
    assert problems(f"ok\n{line}") == [f"{PATH}:2: {message}"]


def test_conflicting_sys_pkg() -> None:
    assert problems("--sys-pkg __cuda==12.0\n--sys-pkg __cuda==11.8") == [
        f"{PATH}:2: '--sys-pkg __cuda==11.8' conflicts with an earlier --sys-pkg __cuda==12.0"
    ]


def test_conflicting_python() -> None:
    assert problems("python==3.11\npython>=3.10") == [
        f"{PATH}:2: 'python>=3.10' conflicts with an earlier python requirement (3.11.*)"
    ]


def test_all_problems_are_collected() -> None:
    text = """\
ok>=1
-i https://pypi.corp/simple
-e ./foo
not valid!
# comment
--sys-pkg cuda==12
--weird
also-ok
"""
    with pytest.raises(SpecError) as info:
        parse_requirements(text, "a/b.txt")
    assert info.value.problems == (
        f"a/b.txt:2: '-i https://pypi.corp/simple' {INDEX_MSG}",
        f"a/b.txt:3: '-e ./foo': {EDITABLE_MSG} 'foo @ ./foo' or just './foo'",
        f"a/b.txt:4: {invalid('not valid!')}",
        f"a/b.txt:6: '--sys-pkg cuda==12' {SYS_MSG}",
        f"a/b.txt:7: '--weird' {UNSUPPORTED_MSG}",
    )


# --------------------------------------------------------------------------- property


@dataclass(frozen=True)
class _Req:
    name: str
    extras: tuple[str, ...]
    specs: tuple[tuple[str, str], ...]
    marker: tuple[str, str, str] | None  # (variable, op, value)


_REQS = (
    _Req("requests", (), ((">=", "2.0"), ("<", "3")), None),
    _Req("Flask_Login", ("Security", "async"), (("~=", "0.6"),), None),
    _Req("numpy", (), (("==", "1.26.*"),), ("python_version", "<", "3.13")),
    _Req("attrs", ("tests",), ((">", "21"), ("!=", "22.1.0"), ("<=", "24")), None),
    _Req("pywin32", (), (), ("sys_platform", "==", "win32")),
    _Req("Zope.Interface", (), (("===", "5.0"),), None),
)
_VERBATIM = (
    "git+https://github.com/x/y@v1.0#egg=y",
    "svn+https://svn.example.com/z#egg=z",
    "./vendor/pkg",
    "dist/thing-1.0-py3-none-any.whl",
    "file:///srv/wheels/w.tar.gz",
)
_OPTIONS = (
    "--extra-index-url https://a/simple",
    "--extra-index-url=https://b/simple",
    "-f https://links",
    "--find-links=./wheels",
    "--trusted-host pypi.corp",
    "--pre",
    "--no-index",
    "--conda-channel conda-forge",
    "--conda-pkg nodejs >=18",
    "--sys-pkg __cuda==12.0",
    "python>=3.10",
    "pkg @ https://example.com/pkg-1.0.zip",
)

_space = st.sampled_from(["", " ", "  ", "\t"])


@st.composite
def _render(draw: st.DrawFn, req: _Req) -> str:
    """Render ``req`` with random spacing, name case and separator spelling, extra/spec order."""
    name = "".join(c.upper() if draw(st.booleans()) else c.lower() for c in req.name)
    name = name.replace("_", draw(st.sampled_from(["_", "-", "."])))
    out = name + draw(_space)
    if req.extras:
        extras = draw(st.permutations(req.extras))
        sep = "," + draw(_space)
        out += "[" + draw(_space) + sep.join(extras) + draw(_space) + "]" + draw(_space)
    specs = draw(st.permutations(req.specs))
    parts = [op + draw(_space) + version for op, version in specs]
    out += (draw(_space) + "," + draw(_space)).join(parts)
    if req.marker is not None:
        var, op, value = req.marker
        quote = draw(st.sampled_from(["'", '"']))
        out += draw(_space) + ";" + draw(_space)
        out += var + draw(_space) + op + draw(_space) + quote + value + quote
    return draw(_space) + out + draw(_space)


@st.composite
def _noise(draw: st.DrawFn) -> str:
    return draw(st.sampled_from(["", "   ", "# a comment", "   # indented comment", "\t"]))


@st.composite
def _shuffled_file(draw: st.DrawFn, lines: list[tuple[str, _Req | None]]) -> str:
    """Shuffle, duplicate and re-space ``lines``, interleaving blank and comment lines."""
    chosen = lines + draw(st.lists(st.sampled_from(lines), max_size=6))
    out: list[str] = []
    for plain, req in draw(st.permutations(chosen)):
        out.extend(draw(st.lists(_noise(), max_size=2)))
        line = draw(_render(req)) if req is not None else draw(_space) + plain + draw(_space)
        if draw(st.booleans()):
            line += draw(st.sampled_from([" ", "\t"])) + "# trailing comment"
        out.append(line)
    return "\n".join(out)


def _summary(spec: ParsedSpec) -> tuple[object, ...]:
    return (
        {d.value for d in spec.pypi},
        {d.value for d in spec.conda},
        set(spec.channels),
        set(spec.extra_indexes),
        set(spec.find_links),
        set(spec.trusted_hosts),
        set(spec.sys),
        spec.pre,
        spec.no_index,
        spec.python,
    )


@st.composite
def _line_sets(draw: st.DrawFn) -> list[tuple[str, _Req | None]]:
    reqs = draw(st.lists(st.sampled_from(_REQS), min_size=1, unique=True))
    plain = draw(st.lists(st.sampled_from(_VERBATIM + _OPTIONS), unique=True))
    lines: list[tuple[str, _Req | None]] = [("", r) for r in reqs]
    return lines + [(p, None) for p in plain]


@settings(max_examples=200, deadline=None)
@given(data=st.data(), lines=_line_sets())
def test_order_spacing_duplicates_and_comments_do_not_matter(
    data: st.DataObject, lines: list[tuple[str, _Req | None]]
) -> None:
    def canonical(req: _Req) -> str:
        out = req.name + (f"[{','.join(req.extras)}]" if req.extras else "")
        out += ",".join(op + v for op, v in req.specs)
        return out + (f"; {req.marker[0]}{req.marker[1]}'{req.marker[2]}'" if req.marker else "")

    reference = "\n".join(canonical(r) if r is not None else p for p, r in lines)
    expected = parse_requirements(reference, PATH)
    parsed = parse_requirements(data.draw(_shuffled_file(lines)), PATH)
    assert _summary(parsed) == _summary(expected)
    # Deduplication: each distinct requirement appears exactly once.
    assert len(parsed.pypi) == len(expected.pypi)
    assert len(parsed.extra_indexes) == len(expected.extra_indexes)


@pytest.mark.parametrize(
    ("text", "only_binary", "no_binary"),
    [
        ("--only-binary=:all:\n", (":all:",), ()),
        ("--no-binary :all:\n", (), (":all:",)),
        ("--only-binary Foo_Bar,baz.qux\n", ("baz-qux", "foo-bar"), ()),
        # pip's semantics, applied in order: a later option moves a name to its own set...
        ("--no-binary a,b\n--only-binary a\n", ("a",), ("b",)),
        # ... :all: empties both sets, and names win over :all: for their own package
        ("--no-binary a\n--only-binary :all:\n--no-binary b\n", (":all:",), ("b",)),
        # :none: empties its set; names after it are added again
        ("--only-binary a,b\n--only-binary :none:,c\n", ("c",), ()),
        ("--only-binary :all:,:none:\n", (), ()),
    ],
)
def test_binary_options(
    text: str, only_binary: tuple[str, ...], no_binary: tuple[str, ...]
) -> None:
    spec = parse_requirements(text + "numpy\n", "r.txt")
    assert (spec.only_binary, spec.no_binary) == (only_binary, no_binary)
    assert spec.pypi == (Dep("numpy"),)
