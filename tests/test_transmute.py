"""Transmute: real packages go .tar.bz2 <-> .conda with identical members, atomically."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from envbuild.artifacts import transmute as tm
from envbuild.artifacts.transmute import Transmuted, TransmuteError, transmute, transmute_many
from envbuild.localchannel import Recipe, build_package

# Text, "binary-ish" text (NUL, control and non-ASCII characters: the recipe builder writes
# UTF-8 text), nested directories, an empty file and a file that mentions a build prefix.
FILES = {
    "bin/tool": "#!/bin/sh\necho tool\n",
    "lib/libdemo.so": "".join(map(chr, range(256))) * 300 + "\x00\x00\uffff\U0001f600",
    "lib/python3.11/site-packages/demo/__init__.py": "VALUE = 1\n" * 2000,
    "share/demo/empty.txt": "",
    "share/demo/prefix.txt": "prefix=/opt/anaconda1anaconda2anaconda3\n",
}


def recipe(fmt: str, **extra: Any) -> Recipe:
    data = {"name": "demo", "version": "1.2.3", "build": "h0_0", "subdirs": ["linux-64"],
            "depends": ["python >=3.11"], "format": fmt, "files": FILES, **extra}  # fmt: skip
    return Recipe.from_dict(data, "test recipe")


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same recipe built by envbuild's builder as .tar.bz2 and as .conda, plus a package
    made with conda-package-handling directly holding what the builder cannot make: a
    symlink, an executable, raw non-UTF-8 bytes and a declared prefix placeholder."""
    root = tmp_path_factory.mktemp("pkgs")
    made = {fmt: build_package(recipe(fmt), "linux-64", root / "built") for fmt in tm.FORMATS}
    made["special"] = special_package(root)
    return made


def special_package(root: Path) -> Path:
    from conda_package_handling import api

    prefix = root / "special-prefix"
    files = {
        "bin/run": b"#!/bin/sh\nexec /opt/anaconda1anaconda2anaconda3/bin/python\n",
        "lib/libraw.so.1": bytes(range(256)) * 64 + os.urandom(4096),
        "info/test/run_test.sh": b"run\n",
    }
    for rel, raw in files.items():
        (prefix / rel).parent.mkdir(parents=True, exist_ok=True)
        (prefix / rel).write_bytes(raw)
    (prefix / "bin/run").chmod(0o755)
    (prefix / "lib/libraw.so").symlink_to("libraw.so.1")
    paths = [
        {"_path": "bin/run", "path_type": "hardlink", "file_mode": "text",
         "prefix_placeholder": "/opt/anaconda1anaconda2anaconda3"},
        {"_path": "lib/libraw.so", "path_type": "softlink"},
        {"_path": "lib/libraw.so.1", "path_type": "hardlink"},
    ]  # fmt: skip
    index = {"name": "special", "version": "1", "build": "0", "build_number": 0, "depends": [],
             "subdir": "linux-64", "arch": "x86_64", "platform": "linux"}  # fmt: skip
    (prefix / "info/index.json").write_text(json.dumps(index))
    (prefix / "info/paths.json").write_text(json.dumps({"paths": paths, "paths_version": 1}))
    (prefix / "info/has_prefix").write_text("/opt/anaconda1anaconda2anaconda3 text bin/run\n")
    (prefix / "info/files").write_text("bin/run\nlib/libraw.so\nlib/libraw.so.1\n")
    names = sorted(str(p.relative_to(prefix)) for p in prefix.rglob("*") if not p.is_dir())
    out = root / "special"
    out.mkdir()
    api.create(str(prefix), names, "special-1-0.tar.bz2", out_folder=str(out))
    return out / "special-1-0.tar.bz2"


Member = tuple[str, int, str, int, bytes]  # type, mode, link target, mtime, content


def members(path: Path) -> dict[str, dict[str, Member]]:
    """Every member of a package by component (a .tar.bz2's split by CEP 35: info/...),
    read with conda-package-streaming: name -> (type, mode, link target, mtime, bytes)."""
    from conda_package_streaming.package_streaming import stream_conda_component  # type: ignore[import-untyped]

    found: dict[str, dict[str, Member]] = {"info": {}, "pkg": {}}
    comps = ["pkg"] if path.name.endswith(".tar.bz2") else ["info", "pkg"]
    for comp in comps:
        for tar, m in stream_conda_component(str(path), component=comp):
            raw = tar.extractfile(m).read() if m.isfile() else b""
            where = comp if len(comps) == 2 else "info" if m.name.startswith("info/") else "pkg"
            found[where][m.name] = (m.type.decode(), m.mode, m.linkname, int(m.mtime), raw)
    return found


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_record(done: Transmuted, src: Path, out: Path) -> None:
    assert done.filename == out.name
    assert done.source_sha256 == sha256(src)
    assert done.sha256 == sha256(out)
    assert done.size == out.stat().st_size


def only_file(directory: Path) -> Path:
    """The one entry of ``directory`` (no temp file or directory is left beside it)."""
    entries = list(directory.iterdir())
    assert len(entries) == 1, entries
    return entries[0]


def test_tar_bz2_to_conda_and_back_keeps_every_member(
    packages: dict[str, Path], tmp_path: Path
) -> None:
    for src in (packages[".tar.bz2"], packages["special"]):
        there = transmute(src, tmp_path / src.stem / "conda", ".conda")
        conda = only_file(tmp_path / src.stem / "conda")
        check_record(there, src, conda)
        assert conda.name == src.name.removesuffix(".tar.bz2") + ".conda"
        back = transmute(conda, tmp_path / src.stem / "back", ".tar.bz2")
        tar_bz2 = only_file(tmp_path / src.stem / "back")
        check_record(back, conda, tar_bz2)
        original = members(src)
        assert members(conda) == original
        assert members(tar_bz2) == original
        assert len(original["info"]) >= 3 and len(original["pkg"]) >= 3


def test_special_members_survive(packages: dict[str, Path], tmp_path: Path) -> None:
    transmute(packages["special"], tmp_path, ".conda")
    got = members(tmp_path / "special-1-0.conda")
    assert got["pkg"]["lib/libraw.so"][:3] == ("2", 0o777, "libraw.so.1")  # a symlink
    assert got["pkg"]["bin/run"][1] & 0o111  # still executable
    assert b"anaconda1anaconda2anaconda3" in got["pkg"]["bin/run"][4]
    assert "info/test/run_test.sh" in got["info"]  # CEP 35: all of info/ in the info component


def test_conversion_matches_the_builders_own_conda(
    packages: dict[str, Path], tmp_path: Path
) -> None:
    """The .conda made from the builder's .tar.bz2 holds the members of the builder's .conda."""
    transmute(packages[".tar.bz2"], tmp_path, ".conda")
    assert members(tmp_path / packages[".conda"].name) == members(packages[".conda"])


def test_conda_to_tar_bz2_and_back_keeps_every_member(
    packages: dict[str, Path], tmp_path: Path
) -> None:
    src = packages[".conda"]
    there = transmute(src, tmp_path / "bz2", ".tar.bz2")
    tar_bz2 = only_file(tmp_path / "bz2")
    check_record(there, src, tar_bz2)
    back = transmute(tar_bz2, tmp_path / "conda", ".conda")
    conda = only_file(tmp_path / "conda")
    check_record(back, tar_bz2, conda)
    assert members(tar_bz2) == members(src) == members(conda)


def test_outputs_are_byte_reproducible(
    packages: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two conversions a day apart give the same bytes (a .conda's zip entry times are
    "now" in the library; transmute fixes them)."""
    now = time.time()
    results = []
    for i, shift in enumerate((0, 86_400 + 7)):
        monkeypatch.setattr(time, "time", lambda s=shift: now + s)
        conda = transmute(packages[".tar.bz2"], tmp_path / f"c{i}", ".conda")
        bz2 = transmute(packages[".conda"], tmp_path / f"b{i}", ".tar.bz2")
        results.append((conda, bz2))
    assert results[0] == results[1]
    assert (tmp_path / "c0" / results[0][0].filename).read_bytes() == (
        tmp_path / "c1" / results[1][0].filename
    ).read_bytes()


def test_zstd_level_is_used(packages: dict[str, Path], tmp_path: Path) -> None:
    fast = transmute(packages["special"], tmp_path / "1", ".conda", zstd_level=1)
    small = transmute(packages["special"], tmp_path / "19", ".conda", zstd_level=19)
    assert fast.sha256 != small.sha256
    assert members(tmp_path / "1" / fast.filename) == members(tmp_path / "19" / small.filename)


def test_rattler_reads_the_outputs(packages: dict[str, Path], tmp_path: Path) -> None:
    import rattler
    import rattler.package_streaming

    conda = transmute(packages[".tar.bz2"], tmp_path / "c", ".conda")
    bz2 = transmute(packages[".conda"], tmp_path / "b", ".tar.bz2")
    for done, path in ((conda, tmp_path / "c"), (bz2, tmp_path / "b")):
        out = path / done.filename
        record = asyncio.run(rattler.RepoDataRecord.from_package_archive(out))
        assert (record.name.normalized, str(record.version), str(record.build)) == (
            "demo",
            "1.2.3",
            "h0_0",
        )
        assert record.depends == ["python >=3.11"]
        sha, _md5 = rattler.package_streaming.extract(out, tmp_path / f"x-{done.filename}")
        assert sha.hex() == done.sha256
        extracted = tmp_path / f"x-{done.filename}"
        for rel, content in FILES.items():
            assert (extracted / rel).read_bytes() == content.encode("utf-8")


def test_transmute_many_matches_sequential(packages: dict[str, Path], tmp_path: Path) -> None:
    srcs = [packages[".tar.bz2"], packages["special"]]
    jobs = [(src, tmp_path / "par" / str(i)) for i, src in enumerate(srcs * 2)]
    parallel = transmute_many(jobs, ".conda", 3, workers=2)
    sequential = [
        transmute(src, tmp_path / "seq" / str(i), ".conda", 3) for i, (src, _) in enumerate(jobs)
    ]
    assert parallel == sequential
    for (_, out), done in zip(jobs, parallel, strict=True):
        assert sha256(out / done.filename) == done.sha256
    back = transmute_many([(packages[".conda"], tmp_path / "back")], ".tar.bz2", workers=2)
    assert back == [transmute(packages[".conda"], tmp_path / "back1", ".tar.bz2")]


def test_transmute_many_raises_the_first_error(packages: dict[str, Path], tmp_path: Path) -> None:
    bad = tmp_path / "bad-1-0.tar.bz2"
    bad.write_bytes(b"BZh9 not really")
    jobs = [(packages["special"], tmp_path / "out"), (bad, tmp_path / "out")]
    with pytest.raises(TransmuteError) as err:
        transmute_many(jobs, ".conda", workers=2)
    assert (
        str(err.value)
        == f"cannot transmute {bad}: not a valid .tar.bz2 package (corrupt or truncated archive)"
    )
    assert [p.name for p in (tmp_path / "out").iterdir()] in ([], ["special-1-0.conda"])


def flipped(raw: bytes) -> bytes:
    """``raw`` with one byte flipped where bz2 itself sees it: the package holds random
    bytes, and a flip in a part of the stream that decodes to the same data (an unused
    Huffman table entry) would leave a valid package."""
    import bz2

    for at in range(200, len(raw)):
        damaged = raw[:at] + bytes([raw[at] ^ 0xFF]) + raw[at + 1 :]
        try:
            bz2.decompress(damaged)
        except (OSError, ValueError, EOFError):
            return damaged
    raise AssertionError("no single flipped byte breaks this bz2 stream")


def corruptions(packages: dict[str, Path], tmp_path: Path) -> list[tuple[Path, str]]:
    """Damaged copies of the built packages, each with its input format."""
    tar_bz2 = packages[".tar.bz2"].read_bytes()
    conda = packages[".conda"].read_bytes()
    damaged = {
        "truncated-1-0.tar.bz2": tar_bz2[: len(tar_bz2) // 2],
        "flipped-1-0.tar.bz2": flipped(tar_bz2),
        "garbage-1-0.tar.bz2": b"not a package at all",
        "empty-1-0.conda": b"",
        "garbage-1-0.conda": b"PK\x03\x04 not really a zip",
        "truncated-1-0.conda": conda[: len(conda) // 2],
    }
    made = []
    for name, raw in damaged.items():
        (tmp_path / name).write_bytes(raw)
        made.append((tmp_path / name, ".tar.bz2" if name.endswith(".tar.bz2") else ".conda"))
    return made


def test_corrupt_input_is_a_one_line_error_and_leaves_nothing(
    packages: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    for src, fmt in corruptions(packages, tmp_path):
        target = ".conda" if fmt == ".tar.bz2" else ".tar.bz2"
        with pytest.raises(TransmuteError) as err:
            transmute(src, out, target)
        assert str(err.value) == (
            f"cannot transmute {src}: not a valid {fmt} package (corrupt or truncated archive)"
        )
        assert list(out.iterdir()) == [], src.name


def test_bad_requests_are_errors(packages: dict[str, Path], tmp_path: Path) -> None:
    zipped = tmp_path / "demo-1-0.zip"
    zipped.write_bytes(b"PK")
    src = packages[".conda"]
    cases = [
        (zipped, ".conda", f"cannot transmute {zipped}: unknown extension (expected .tar.bz2 or .conda)"),
        (src, ".whl", f"cannot transmute {src}: unknown target format '.whl' (expected .tar.bz2 or .conda)"),
        (src, ".conda", f"cannot transmute {src}: it is already a .conda package"),
        (tmp_path / "gone-1-0.conda", ".tar.bz2",
         f"cannot transmute {tmp_path / 'gone-1-0.conda'} into {tmp_path / 'out'}: No such file or directory"),
    ]  # fmt: skip
    for path, fmt, message in cases:
        with pytest.raises(TransmuteError) as err:
            transmute(path, tmp_path / "out", fmt)
        assert str(err.value) == message
    renamed = tmp_path / "renamed-1-0.conda"  # its components are named after another stem
    renamed.write_bytes(src.read_bytes())
    with pytest.raises(TransmuteError) as err:
        transmute(renamed, tmp_path / "out", ".tar.bz2")
    assert str(err.value) == (
        f"cannot transmute {renamed}: not a valid .conda package "
        "(no info-/pkg- component named after the file)"
    )
    with pytest.raises(TransmuteError, match=r"zstd level 0 is not in 1\.\.22$"):
        transmute(src, tmp_path / "out", ".tar.bz2", zstd_level=0)
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    with pytest.raises(TransmuteError) as err:
        transmute(src, blocked / "out", ".tar.bz2")
    assert str(err.value) == f"cannot transmute {src} into {blocked / 'out'}: Not a directory"


@pytest.mark.parametrize("fmt", [".conda", ".tar.bz2"])
def test_an_interrupted_conversion_leaves_no_file(
    fmt: str, packages: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after the library wrote its output, before the rename: nothing is left, and
    the final name never existed."""
    src = packages[".tar.bz2" if fmt == ".conda" else ".conda"]
    out = tmp_path / "out"
    final = out / (src.name.removesuffix(".conda").removesuffix(".tar.bz2") + fmt)
    real = tm._sha256

    def interrupted(path: Path) -> tuple[str, int]:
        if path.parent.parent == out:  # the converted file, still in its temp directory
            assert path.stat().st_size > 0 and not final.exists()
            raise KeyboardInterrupt
        return real(path)

    monkeypatch.setattr(tm, "_sha256", interrupted)
    with pytest.raises(KeyboardInterrupt):
        transmute(src, out, fmt)
    assert list(out.iterdir()) == []
    monkeypatch.setattr(tm, "_sha256", real)
    transmute(src, out, fmt)
    assert only_file(out) == final
