"""A model folder shared as a zip archive (`segment.model` by address), fetched once by the rule
fetch_model: `fetch_model(address, sha256, folder)`.

The archive is downloaded (http:// or https://) or read where it lies (file:// or a path); its
SHA-256 must be `segment.model_sha256`; it must hold exactly one model folder (config.json,
model.keras, thresholds.json, and a config.json this nucleiseg reads), at its root or in one
top folder, and no member that would land outside it. The folder is unpacked under a temporary
name that becomes `resources/models/<sha256>/` only when complete (`download.archive`'s safe
extraction). Each failure is one DownloadError line naming the address and what to do, and
leaves nothing behind in resources/models/.
"""

from __future__ import annotations

import json
import logging
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from .download.archive import check_members, extract_folder, zip_problem
from .download.bbbc038 import NotOnServer, download
from .errors import ConfigError, DownloadError
from .io import file_sha256
from .modelconfig import ModelConfig
from .modelfolder import CONFIG_FILE, MODEL_FILE, THRESHOLDS_FILE
from .modelsource import HOW_TO_HASH, ModelArchive

log = logging.getLogger(__name__)

MODEL_FOLDER_FILES = (CONFIG_FILE, MODEL_FILE, THRESHOLDS_FILE)
UNREACHABLE = ("Check the address in segment.model; if this machine cannot reach it, download "
               "the archive on one that can, copy it here and set segment.model to its path "
               "(segment.model_sha256 stays the same)")
NOT_A_MODEL = ("Share a model as the zip of one finished model folder: "
               "`zip -r model.zip model/` (the folder holding config.json, model.keras and "
               "thresholds.json), then `sha256sum model.zip`")


def fetch_model(address: str, sha256: str, folder: str | Path) -> Path:
    """Fetch the archive at `address`, check it against `sha256`, unpack its model folder to
    `folder`. DownloadError (one line) if any of it fails; `folder` is then left absent."""
    archive = ModelArchive(address, sha256.strip().lower())
    folder = Path(folder)
    remote = archive.local_path() is None
    download_to = folder.with_name(f"{folder.name}.zip")  # beside it: the same file system
    try:
        path = _download(address, download_to) if remote else _local_archive(archive)
        check_sha256(path, archive)
        unpack_model(path, folder, address)
    except BaseException:
        _remove_if_empty(folder)  # Snakemake creates an output's folder before the job
        raise
    finally:
        if remote:  # the archive was only the way to the folder
            download_to.unlink(missing_ok=True)
    log.info("unpacked the model folder of %s (sha256 %s) to %s", address, archive.sha256,
             folder)
    return folder


def _local_archive(archive: ModelArchive) -> Path:
    path = archive.local_path()
    if not path.is_file():
        shown = "" if str(path) == archive.address else f" ({path})"
        raise DownloadError(
            f"{archive.address}: no such file{shown}. Fix the path in segment.model, or copy "
            "the model's zip archive there"
        )
    return path


def _download(url: str, target: Path) -> Path:
    try:
        return download(url, target, check=lambda path: None, remedy=UNREACHABLE)
    except NotOnServer as exc:
        raise DownloadError(f"{exc}. {UNREACHABLE}") from exc


def check_sha256(path: Path, archive: ModelArchive) -> None:
    """DownloadError unless the file's SHA-256 is the one the archive is named by."""
    got = file_sha256(path)
    if got != archive.sha256:
        raise DownloadError(
            f"{archive.address}: SHA-256 mismatch, expected {archive.sha256} "
            f"(segment.model_sha256), got {got}: it is not the archive the checksum names, and "
            "nothing was unpacked. Check segment.model, and segment.model_sha256 with whoever "
            f"shared the model: {HOW_TO_HASH}, where the archive was made, prints it"
        )
    log.info("%s: SHA-256 %s as expected", archive.address, got)


def unpack_model(path: Path, folder: Path, address: str) -> None:
    """Check the zip at `path` (named `address` in messages) and unpack its one model folder to
    `folder`, atomically."""
    problem = zip_problem(path)
    if problem:
        raise DownloadError(f"{address}: {problem}. {NOT_A_MODEL}")
    try:
        with zipfile.ZipFile(path) as zf:
            check_members(zf, address, remedy=NOT_A_MODEL)
            prefix = model_prefix(zf.namelist(), address)
            check_model_config(zf, prefix, address)
            n_files = extract_folder(zf, prefix, folder)
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
        raise DownloadError(
            f"{address}: unpacking it to {folder} failed ({type(exc).__name__}: {exc}); free "
            "space there if the disk is full, then rerun"
        ) from exc
    log.info("%s: %d files of the model folder %r", address, n_files, prefix or "/")


def model_prefix(names: list[str], address: str) -> str:
    """The folder of the archive's one model folder: '' for its root, or its one top folder.

    DownloadError, saying what is missing, unless exactly one folder at those depths holds a
    model folder's files and it holds all of them.
    """
    found: dict[str, set[str]] = {}
    for name in names:
        path = PurePosixPath(name)
        if path.name in MODEL_FOLDER_FILES and len(path.parts) <= 2:
            found.setdefault("/".join(path.parts[:-1]), set()).add(path.name)
    if not found:
        tops = sorted({PurePosixPath(name).parts[0] for name in names if name})[:5]
        raise DownloadError(
            f"{address}: holds no model folder: no {', '.join(MODEL_FOLDER_FILES)} at its root "
            f"or in a top folder (it holds {', '.join(tops) or 'nothing'}). {NOT_A_MODEL}"
        )
    if len(found) > 1:
        shown = ", ".join(f"{prefix or 'the root'}" for prefix in sorted(found))
        raise DownloadError(
            f"{address}: holds {len(found)} model folders ({shown}), expected one. {NOT_A_MODEL}"
        )
    prefix, present = found.popitem()
    missing = [name for name in MODEL_FOLDER_FILES if name not in present]
    if missing:
        where = f"its folder {prefix}/" if prefix else "its root"
        raise DownloadError(
            f"{address}: {where} lacks {', '.join(missing)}, so it is not a complete model "
            f"folder. {NOT_A_MODEL}"
        )
    return prefix


def check_model_config(zf: zipfile.ZipFile, prefix: str, address: str) -> ModelConfig:
    """The archive's config.json as a ModelConfig: one this nucleiseg reads, or DownloadError."""
    member = f"{prefix}/{CONFIG_FILE}" if prefix else CONFIG_FILE
    source = f"{address} ({member})"
    try:
        data = json.loads(zf.read(member))
    except (ValueError, UnicodeDecodeError) as exc:
        raise DownloadError(f"{source}: cannot read the model's config ({exc}). {NOT_A_MODEL}") \
            from exc
    try:
        return ModelConfig.from_dict(data, source=source)
    except ConfigError as exc:
        raise DownloadError(str(exc)) from None


def _remove_if_empty(folder: Path) -> None:
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
