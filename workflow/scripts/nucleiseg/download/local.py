"""Source `local`: data already on this machine, at `dataset.local.path`. Nothing is downloaded.

The path may be:
- Kaggle's competition zip (data-science-bowl-2018.zip, holding nested stage1_train.zip, ...):
  its inner zips are unpacked to `dest/downloads/`, then extracted into `dest`;
- stage1_train.zip itself (`<id>/images/<id>.png` at its root or under `stage1_train/`):
  extracted into `dest/stage1_train/`;
- an extracted Kaggle-layout folder, used IN PLACE (never copied): either the root holding
  `stage1_train/` (and optionally `stage1_test/`, `stage1_solution.csv`), or the `stage1_train`
  folder itself;
- a folder holding the BBBC038 files (stage1_train.zip, optionally stage1_test.zip and
  stage1_solution.csv), as downloaded by hand from the Broad Institute: extracted into `dest`.
"""

from __future__ import annotations

import logging
import os
import zipfile
from pathlib import Path

from ..errors import ConfigError
from ..io import is_hidden
from .archive import (
    SOLUTION,
    TEST,
    TEST_ZIP,
    TRAIN,
    TRAIN_ZIP,
    Layout,
    check_members,
    check_solution_csv,
    find_member,
    image_layout_prefixes,
    install_kaggle_outer,
    install_stage_files,
    REPLACE_LOCAL,
    verify_zip,
)

log = logging.getLogger(__name__)

ACCEPTED = (
    "dataset.local.path must be Kaggle's data-science-bowl-2018.zip, stage1_train.zip, an "
    "extracted Kaggle-layout folder (the folder holding stage1_train/, or stage1_train/ itself, "
    "with <id>/images/<id>.png inside), or a folder holding stage1_train.zip"
)


def _is_sample_folder(folder: Path) -> bool:
    return folder.is_dir() and not is_hidden(folder) and (folder / "images").is_dir()


def looks_like_train_folder(folder: Path) -> bool:
    """True when `folder` holds Kaggle-layout sample folders (`<id>/images/`)."""
    return any(_is_sample_folder(entry) for entry in folder.iterdir())


def _from_folder(folder: Path, dest: Path) -> Layout:
    if (folder / TRAIN).is_dir():
        test, solution = folder / TEST, folder / SOLUTION
        if solution.is_file():
            check_solution_csv(solution)
        log.info("using %s in place (not copied)", folder / TRAIN)
        return Layout(
            str(folder),
            folder / TRAIN,
            test if test.is_dir() else None,
            solution if solution.is_file() else None,
        )
    if looks_like_train_folder(folder):
        log.info("using %s in place (not copied)", folder)
        return Layout(str(folder), folder)
    if (folder / TRAIN_ZIP).is_file():
        train_zip, test_zip, solution = folder / TRAIN_ZIP, folder / TEST_ZIP, folder / SOLUTION
        present = [p for p in (train_zip, test_zip) if p.is_file()]
        for archive in present:
            verify_zip(archive, remedy=REPLACE_LOCAL)
            log.info("verified %s", archive)
        return install_stage_files(
            dest,
            str(folder),
            train_zip=train_zip,
            test_zip=test_zip if test_zip.is_file() else None,
            solution_csv=solution if solution.is_file() else None,
        )
    raise ConfigError(
        f"dataset.local.path: {folder} is a folder, but it holds neither {TRAIN}/ nor "
        f"<id>/images/ folders nor {TRAIN_ZIP}. {ACCEPTED}"
    )


def _from_zip(archive: Path, dest: Path) -> Layout:
    verify_zip(archive, remedy=REPLACE_LOCAL)
    log.info("verified %s", archive)
    with zipfile.ZipFile(archive) as zf:
        check_members(zf, archive)
        nested = find_member(zf, TRAIN_ZIP) is not None
        flat = bool(image_layout_prefixes(zf.namelist()))
    if nested:
        return install_kaggle_outer(archive, dest, origin=str(archive))
    if flat:
        return install_stage_files(dest, str(archive), train_zip=archive)
    raise ConfigError(
        f"dataset.local.path: {archive} is a zip archive but neither Kaggle's competition zip "
        f"(it has no {TRAIN_ZIP} inside) nor {TRAIN_ZIP} (no <id>/images/<id>.png inside). "
        f"{ACCEPTED}"
    )


def fetch_local(settings: dict, dest: Path) -> Layout:
    section = settings.get("local") or {}
    if not isinstance(section, dict):
        raise ConfigError("dataset.local must be a mapping like {path: /data/dsb2018}")
    raw = section.get("path")
    if raw is None or not str(raw).strip():
        raise ConfigError(f"dataset.source is local but dataset.local.path is empty. {ACCEPTED}")
    path = Path(os.path.expanduser(str(raw).strip())).absolute()
    if not path.exists():
        raise ConfigError(
            f"dataset.local.path: {path} does not exist (relative paths are taken from the "
            f"working directory, {Path.cwd()}). {ACCEPTED}"
        )
    if path.is_dir():
        return _from_folder(path, dest)
    if path.is_file() and zipfile.is_zipfile(path):
        return _from_zip(path, dest)
    if path.is_file() and path.suffix.lower() == ".zip":
        verify_zip(path, remedy=REPLACE_LOCAL)  # raises DownloadError: damaged or truncated
    raise ConfigError(
        f"dataset.local.path: {path} is neither a zip archive nor a folder. {ACCEPTED}"
    )
