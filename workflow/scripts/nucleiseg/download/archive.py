"""Zip archives: integrity checks, and safe, atomic extraction of DSB2018's (nested) zips.

Nothing here touches the network. Every file or folder is written under a temporary name beside
its target and renamed into place only once complete (`io.atomic_path`/`io.atomic_dir`), so an
interrupted run never leaves something that looks finished. Members that would land outside the
target folder (absolute paths, `..`: "zip-slip") make the whole archive refused before anything
is written.
"""

from __future__ import annotations

import logging
import shutil
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..errors import DownloadError
from ..io import atomic_dir, atomic_path

log = logging.getLogger(__name__)

TRAIN, TEST, SOLUTION = "stage1_train", "stage1_test", "stage1_solution.csv"
TRAIN_ZIP, TEST_ZIP, SOLUTION_ZIP = f"{TRAIN}.zip", f"{TEST}.zip", f"{SOLUTION}.zip"
SOLUTION_HEADER = "ImageId"  # stage1_solution.csv: ImageId,EncodedPixels,Height,Width,Usage

_JUNK_PREFIXES = ("__MACOSX/",)
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Layout:
    """Where a source's Kaggle-layout data ended up (absolute paths)."""

    origin: str
    stage1_train: Path
    stage1_test: Path | None = None
    stage1_solution: Path | None = None


# --- integrity -------------------------------------------------------------------------------


def zip_problem(path: str | Path) -> str | None:
    """Why `path` is not a complete zip archive (None when it opens and every CRC matches)."""
    path = Path(path)
    if not path.is_file():
        return "no such file"
    try:
        with zipfile.ZipFile(path) as zf:
            if not zf.infolist():
                return "the archive is empty"
            bad = zf.testzip()
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        OSError,
        EOFError,
        ValueError,
        zlib.error,
    ) as exc:
        # BadZipFile: truncated (no central directory) or not a zip at all; EOFError/OSError:
        # data ends early inside a member; ValueError: unsupported compression; zlib.error:
        # corrupt deflate data.
        return f"not a readable zip archive ({type(exc).__name__}: {exc})"
    if bad is not None:
        return f"member {bad!r} is corrupt (CRC mismatch)"
    return None


# What to do about a damaged archive that this workflow downloaded, and one the user gave.
REDOWNLOAD = "The file is incomplete or damaged; delete it and download it again"
REPLACE_LOCAL = ("The file is incomplete or damaged. Replace it with a complete copy (Kaggle's "
                 "data-science-bowl-2018.zip or stage1_train.zip), or point dataset.local.path at "
                 "an extracted folder")


def verify_zip(path: str | Path, what: str | None = None, remedy: str = REDOWNLOAD) -> None:
    """Raise DownloadError naming `path` unless it is a complete zip archive."""
    problem = zip_problem(path)
    if problem:
        raise DownloadError(f"{what or path}: {problem}. {remedy}")


def check_solution_csv(path: str | Path, what: str | None = None) -> None:
    """Raise DownloadError unless `path` starts like Kaggle's stage1_solution.csv."""
    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(256).decode("utf-8", errors="replace").lstrip("\ufeff")
    if not head.startswith(SOLUTION_HEADER):
        shown = head.splitlines()[0][:80] if head.strip() else "nothing (empty file)"
        raise DownloadError(
            f"{what or path}: does not look like stage1_solution.csv (it should start with "
            f"'{SOLUTION_HEADER},EncodedPixels', it starts with {shown!r}); the download may be "
            "an error page. Delete it and download it again"
        )


# --- member names ----------------------------------------------------------------------------


def safe_member_path(name: str) -> PurePosixPath:
    """The relative path a zip member extracts to; DownloadError if it would escape the target."""
    normalized = name.replace("\\", "/")
    path = PurePosixPath(normalized)
    first = path.parts[0] if path.parts else ""
    if (
        normalized.startswith("/")
        or (len(first) >= 2 and first[1] == ":")  # C:/... (a Windows drive)
        or ".." in path.parts
        or "\x00" in name
    ):
        raise DownloadError(f"unsafe member {name!r}")
    return path


def _is_junk(name: str) -> bool:
    return name.startswith(_JUNK_PREFIXES) or PurePosixPath(name).name in (".DS_Store",)


NOT_GENUINE = ("The archive is not a genuine DSB2018 archive; get it again from Kaggle or the "
               "Broad Institute")


def check_members(zf: zipfile.ZipFile, archive: str | Path, remedy: str = NOT_GENUINE) -> None:
    """Refuse the whole archive if any member would land outside the extraction folder."""
    for name in zf.namelist():
        try:
            safe_member_path(name)
        except DownloadError:
            raise DownloadError(
                f"{archive}: refusing to extract, member {name!r} would be written outside "
                f"the target folder (absolute path or '..'). {remedy}"
            ) from None


def find_member(zf: zipfile.ZipFile, basename: str) -> str | None:
    """The member whose file name is `basename` (in any folder), shallowest first."""
    hits = [
        n
        for n in zf.namelist()
        if not n.endswith("/") and not _is_junk(n) and PurePosixPath(n).name == basename
    ]
    return min(hits, key=lambda n: (n.count("/"), n)) if hits else None


def image_layout_prefixes(names: list[str]) -> set[str]:
    """Folder prefixes in front of Kaggle-layout images `<id>/images/<id>.<ext>` ('' = root)."""
    prefixes = set()
    for name in names:
        if _is_junk(name):
            continue
        parts = name.replace("\\", "/").split("/")
        if len(parts) >= 3 and parts[-2] == "images" and PurePosixPath(parts[-1]).stem == parts[-3]:
            prefixes.add("/".join(parts[:-3]))
    return prefixes


def has_masks(names: list[str]) -> bool:
    return any("/masks/" in f"/{n}" and not n.endswith("/") for n in names if not _is_junk(n))


# --- extraction ------------------------------------------------------------------------------


# What reading a damaged or truncated archive raises, from the zip module and the inflater.
_READ_ERRORS = (zipfile.BadZipFile, OSError, EOFError, zlib.error)


def _damaged(archive, what: str, exc: Exception) -> DownloadError:
    return DownloadError(f"{archive}: {what} ({type(exc).__name__}: {exc}). The archive is "
                         "damaged; delete it and download it again")


def extract_member(archive: str | Path, member: str, target: str | Path) -> Path:
    """Copy one member of `archive` to the file `target`, atomically. CRCs are checked on read."""
    target = Path(target)
    try:
        with (
            zipfile.ZipFile(archive) as zf,
            atomic_path(target) as tmp,
            zf.open(member) as src,
            open(tmp, "wb") as out,
        ):
            shutil.copyfileobj(src, out, _CHUNK)
    except _READ_ERRORS as exc:
        raise _damaged(archive, f"cannot extract {member!r}", exc) from exc
    log.info("extracted %s from %s -> %s", member, archive, target)
    return target


def extract_folder(zf: zipfile.ZipFile, prefix: str, target: str | Path) -> int:
    """Extract the members under the folder `prefix` ('' = the root) to the folder `target`,
    without that prefix, atomically (an existing `target` is replaced once the new one is
    complete); junk (`__MACOSX/`, `.DS_Store`) and members elsewhere are skipped. The names
    must have passed `check_members`. Returns the number of files written."""
    strip = PurePosixPath(prefix).parts if prefix else ()
    n_files = skipped = 0
    with atomic_dir(target) as tmp:
        for info in zf.infolist():
            rel = safe_member_path(info.filename)
            if _is_junk(info.filename) or rel.parts[: len(strip)] != strip:
                skipped += 1
                continue
            if len(rel.parts) == len(strip):
                continue
            out = tmp.joinpath(*rel.parts[len(strip):])
            if info.is_dir():
                out.mkdir(parents=True, exist_ok=True)
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst, _CHUNK)
            n_files += 1
    if skipped:
        log.warning("%s: skipped %d members outside %r", zf.filename, skipped, prefix or "/")
    return n_files


def extract_layout_zip(archive: str | Path, target: str | Path, *, need_masks: bool) -> Path:
    """Extract a stage1_train/stage1_test zip into the folder `target`, atomically.

    The images may sit at the zip's root (`<id>/images/<id>.png`, Kaggle's) or under one folder
    (`stage1_train/<id>/...`); that folder is stripped so `target` holds the `<id>` folders.
    An existing `target` is replaced only once the new extraction is complete.
    """
    archive, target = Path(archive), Path(target)
    try:
        with zipfile.ZipFile(archive) as zf:
            check_members(zf, archive)
            names = zf.namelist()
            prefixes = image_layout_prefixes(names)
            if not prefixes:
                raise DownloadError(
                    f"{archive}: holds no images in Kaggle's layout (<id>/images/<id>.png); "
                    f"expected the DSB2018 {target.name}.zip"
                )
            if len(prefixes) > 1:
                raise DownloadError(
                    f"{archive}: images sit under several folders ({', '.join(sorted(prefixes))});"
                    f" expected one Kaggle-layout {target.name} folder"
                )
            if need_masks and not has_masks(names):
                raise DownloadError(
                    f"{archive}: holds images but no masks (<id>/masks/*.png), so it is not the "
                    "training set (stage1_test.zip has no masks); use stage1_train.zip"
                )
            n_files = extract_folder(zf, prefixes.pop(), target)
    except _READ_ERRORS as exc:
        raise _damaged(archive, "extraction failed", exc) from exc
    log.info("extracted %s -> %s (%d files)", archive, target, n_files)
    return target


def install_kaggle_outer(outer: str | Path, dest: str | Path, origin: str) -> Layout:
    """Unpack Kaggle's competition zip: nested stage1_train.zip, stage1_test.zip, solution CSV.

    Inner zips go to `dest/downloads/` (reused on a rerun while newer than `outer` and intact),
    then are extracted to `dest/stage1_train/`, `dest/stage1_test/`, `dest/stage1_solution.csv`.
    """
    outer, dest = Path(outer), Path(dest)
    downloads = dest / "downloads"
    try:
        with zipfile.ZipFile(outer) as zf:
            check_members(zf, outer)
            members = {name: find_member(zf, name) for name in (TRAIN_ZIP, TEST_ZIP, SOLUTION_ZIP)}
    except zipfile.BadZipFile as exc:
        raise DownloadError(f"{outer}: not a readable zip archive ({exc})") from exc
    if members[TRAIN_ZIP] is None:
        raise DownloadError(
            f"{outer}: has no {TRAIN_ZIP} inside; expected Kaggle's data-science-bowl-2018.zip "
            f"(holding {TRAIN_ZIP}, {TEST_ZIP}, {SOLUTION_ZIP}, ...)"
        )
    inner: dict[str, Path | None] = {}
    for name, member in members.items():
        if member is None:
            log.info("%s: has no %s; skipping it", outer, name)
            inner[name] = None
            continue
        path = downloads / name
        fresh = path.is_file() and path.stat().st_mtime >= outer.stat().st_mtime
        if fresh and zip_problem(path) is None:
            log.info("reusing %s (already extracted from %s and verified)", path, outer)
        else:
            extract_member(outer, member, path)
            verify_zip(path, f"{path} (extracted from {outer})")
            log.info("verified %s", path)
        inner[name] = path
    return install_stage_files(
        dest,
        origin,
        train_zip=inner[TRAIN_ZIP],
        test_zip=inner[TEST_ZIP],
        solution_zip=inner[SOLUTION_ZIP],
    )


def install_stage_files(
    dest: str | Path,
    origin: str,
    *,
    train_zip: Path,
    test_zip: Path | None = None,
    solution_csv: Path | None = None,
    solution_zip: Path | None = None,
) -> Layout:
    """Extract verified stage archives into `dest`'s Kaggle layout and say where they went."""
    dest = Path(dest)
    train = extract_layout_zip(train_zip, dest / TRAIN, need_masks=True)
    test = extract_layout_zip(test_zip, dest / TEST, need_masks=False) if test_zip else None
    solution = None
    if solution_zip is not None:
        with zipfile.ZipFile(solution_zip) as zf:
            member = find_member(zf, SOLUTION)
        if member is None:
            raise DownloadError(f"{solution_zip}: has no {SOLUTION} inside")
        solution = extract_member(solution_zip, member, dest / SOLUTION)
        check_solution_csv(solution)
    elif solution_csv is not None:
        check_solution_csv(solution_csv)
        solution = dest / SOLUTION
        if Path(solution_csv).resolve() != solution.resolve():
            with atomic_path(solution) as tmp:
                shutil.copyfile(solution_csv, tmp)
            log.info("copied %s -> %s", solution_csv, solution)
    return Layout(origin, train, test, solution)
