"""Convert conda packages between .tar.bz2 and .conda (conda-package-streaming), atomically and in parallel."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from envbuild.errors import EnvbuildError

log = logging.getLogger(__name__)

FORMATS = (".tar.bz2", ".conda")
DEFAULT_ZSTD_LEVEL = 3  # level 19 (the library's default) is ~6x slower for ~10% smaller files
ZSTD_LEVELS = range(1, 23)
# A .conda is a zip whose entry times are "now": they are replaced by this fixed time so the
# same input gives the same bytes (and so the same sha256) on every machine.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
CHUNK = 1 << 20


class TransmuteError(EnvbuildError):
    """A package could not be converted (corrupt archive, unknown extension, I/O error)."""


@dataclass(frozen=True, slots=True)
class Transmuted:
    """A converted package: the source's sha256 and the output's filename, sha256 and size."""

    source_sha256: str
    filename: str
    sha256: str
    size: int


def package_format(path: Path) -> str | None:
    """``.tar.bz2`` or ``.conda`` from a package's filename, or None for anything else."""
    return next((fmt for fmt in FORMATS if path.name.endswith(fmt)), None)


def transmute(
    src: Path, out_dir: Path, fmt: str, zstd_level: int = DEFAULT_ZSTD_LEVEL
) -> Transmuted:
    """Convert the package ``src`` to ``fmt`` as ``out_dir/<same stem><fmt>``.

    ``src`` must carry its package filename (a .conda's components are named after it). The
    output is assembled in a temp directory inside ``out_dir`` and renamed into place, so an
    interrupted conversion never leaves a file with the final name; an existing output is
    replaced. Converting to the format ``src`` already has is an error (the caller decides
    whether that means "nothing to do"). Both directions are byte-reproducible.
    """
    in_fmt = package_format(src)
    if in_fmt is None:
        raise TransmuteError(
            f"cannot transmute {src}: unknown extension (expected .tar.bz2 or .conda)"
        )
    if fmt not in FORMATS:
        raise TransmuteError(
            f"cannot transmute {src}: unknown target format '{fmt}' (expected .tar.bz2 or .conda)"
        )
    if fmt == in_fmt:
        raise TransmuteError(f"cannot transmute {src}: it is already a {fmt} package")
    if zstd_level not in ZSTD_LEVELS:
        raise TransmuteError(f"cannot transmute {src}: zstd level {zstd_level} is not in 1..22")
    stem = src.name[: -len(in_fmt)]
    final = out_dir / f"{stem}{fmt}"
    start = time.perf_counter()
    try:
        source_sha256 = _sha256(src)[0]
        out_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{stem}.transmute-", dir=out_dir))
    except OSError as exc:
        raise TransmuteError(f"cannot transmute {src} into {out_dir}: {_reason(exc)}") from exc
    try:
        try:
            made = _convert(src, tmp, stem, fmt, zstd_level)
        except _corrupt_errors() as exc:
            if isinstance(exc, OSError) and exc.errno is not None:  # not a decoder's error
                raise TransmuteError(
                    f"cannot transmute {src} into {out_dir}: {_reason(exc)}"
                ) from exc
            log.debug("transmute %s: %r", src, exc)
            if isinstance(exc, LookupError) and in_fmt == ".conda":
                raise TransmuteError(
                    f"cannot transmute {src}: not a valid .conda package "
                    "(no info-/pkg- component named after the file)"
                ) from exc
            raise TransmuteError(
                f"cannot transmute {src}: not a valid {in_fmt} package (corrupt or truncated archive)"
            ) from exc
        try:
            sha256, size = _sha256(made)
            os.replace(made, final)
        except OSError as exc:
            raise TransmuteError(f"cannot transmute {src} into {out_dir}: {_reason(exc)}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info(
        "transmuted %s -> %s (%d bytes, %.2f s)",
        src.name,
        final.name,
        size,
        time.perf_counter() - start,
    )
    return Transmuted(source_sha256, final.name, sha256, size)


def transmute_many(
    jobs: Sequence[tuple[Path, Path]],
    fmt: str,
    zstd_level: int = DEFAULT_ZSTD_LEVEL,
    workers: int | None = None,
) -> list[Transmuted]:
    """``transmute(src, out_dir, fmt, zstd_level)`` for every ``(src, out_dir)`` of ``jobs``,
    in a pool of at most ``workers`` threads (default: one per CPU); results in job order.

    Threads, not processes: bz2 and zstd run outside the GIL (zstd even in its own thread),
    and measured on 2 cores threads were as fast as a process pool without its start-up
    cost. The first failing job's :class:`TransmuteError` is raised once the running jobs
    end; jobs not yet started are cancelled."""
    count = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    if count == 1:
        return [transmute(src, out, fmt, zstd_level) for src, out in jobs]
    with ThreadPoolExecutor(count, thread_name_prefix="transmute") as pool:
        futures: list[Future[Transmuted]] = [
            pool.submit(transmute, src, out, fmt, zstd_level) for src, out in jobs
        ]
        try:
            return [future.result() for future in futures]
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def _convert(src: Path, tmp: Path, stem: str, fmt: str, zstd_level: int) -> Path:
    """Convert ``src`` into ``tmp/<stem><fmt>`` with conda-package-streaming."""
    from conda_package_handling.utils import is_info_member_path
    from conda_package_streaming.package_streaming import (  # type: ignore[import-untyped]
        stream_conda_component,
    )
    from conda_package_streaming.transmute import (  # type: ignore[import-untyped]
        transmute_stream,
        transmute_tar_bz2,
    )

    if fmt == ".tar.bz2":
        return Path(transmute_tar_bz2(str(src), str(tmp)))
    # transmute_stream over our own stream rather than transmute(): it closes the source file
    # when done (transmute() leaves that to the garbage collector).
    with src.open("rb") as fh:
        transmute_stream(
            stem,
            str(tmp),
            package_stream=stream_conda_component(src.name, fh),
            is_info=is_info_member_path,  # CEP 35, as conda-package-handling splits them
            compression_level=zstd_level,
            compression_threads=1,
        )
    made = tmp / f"{stem}.conda"
    fixed = tmp / f"{stem}.fixed.conda"
    _fix_zip_times(made, fixed)
    return fixed


def _fix_zip_times(src: Path, dst: Path) -> None:
    """Copy the zip ``src`` to ``dst`` with every entry's time set to :data:`ZIP_TIME` (the
    entries are stored, not compressed: this is a plain copy of their bytes)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "x") as zout:
        for entry in zin.infolist():
            fixed = zipfile.ZipInfo(entry.filename, date_time=ZIP_TIME)
            fixed.compress_type = entry.compress_type
            fixed.external_attr = entry.external_attr
            fixed.file_size = entry.file_size
            big = entry.file_size > zipfile.ZIP64_LIMIT - (1 << 20)
            with zin.open(entry) as reader, zout.open(fixed, "w", force_zip64=big) as writer:
                shutil.copyfileobj(reader, writer, CHUNK)


def _sha256(path: Path) -> tuple[str, int]:
    """The sha256 and size of a file."""
    with path.open("rb") as fh:
        digest = hashlib.file_digest(fh, "sha256")
        return digest.hexdigest(), fh.tell()


def _corrupt_errors() -> tuple[type[Exception], ...]:
    """What reading a corrupt or truncated package raises: bz2's OSError("Invalid data
    stream") (no errno) and EOFError, tar and zip errors, zstd's error, LookupError (a .conda
    without its components) and ValueError (bad header fields)."""
    from conda_package_streaming.package_streaming import zstd  # (untyped: see _convert)

    return (OSError, EOFError, tarfile.TarError, zipfile.BadZipFile, zstd.ZstdError,
            LookupError, ValueError)  # fmt: skip


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)
