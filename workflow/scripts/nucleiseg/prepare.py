"""Preparation: each Kaggle-layout sample becomes a normalized float32 image and a label image.

Outputs (written atomically, all or nothing):
  images/<id>.tif   float32, (H, W) grayscale or (H, W, 3) colour, percentile-normalized
  labels/<id>.tif   uint16 instance labels (uint32 past 65,535 nuclei), 0 = background
  a table with one row per image (size, modality, nucleus count, normalization statistics)
  skipped.csv       id, path, reason for each input left out (on_bad_image: skip)
"""

from __future__ import annotations

import logging
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import BadInputError, check_on_bad_image
from .io import atomic_dir, read_image, write_csv, write_tiff
from .labels import masks_to_labels
from .layout import Sample, list_samples
from .normalize import classify_modality, percentile_normalize, to_channels_last

log = logging.getLogger(__name__)

SKIPPED_COLUMNS = ["id", "path", "reason"]


@dataclass(frozen=True)
class PrepareSettings:
    p_low: float = 1.0
    p_high: float = 99.8
    on_bad_image: str = "fail"

    def __post_init__(self):
        check_on_bad_image(self.on_bad_image, "prepare.on_bad_image")

    @classmethod
    def from_config(cls, section: dict) -> "PrepareSettings":
        norm = section.get("normalize", {})
        return cls(
            p_low=float(norm.get("p_low", cls.p_low)),
            p_high=float(norm.get("p_high", cls.p_high)),
            on_bad_image=section.get("on_bad_image", cls.on_bad_image),
        )


def _read_mask(path: Path, shape: tuple[int, int]) -> np.ndarray:
    mask = read_image(path)
    if mask.ndim == 3:  # masks saved as RGB(A): any non-zero channel is nucleus
        mask = mask.max(axis=-1)
    if mask.shape != shape:
        raise BadInputError(
            path, f"mask of size {mask.shape[1]}x{mask.shape[0]} does not match its image "
            f"({shape[1]}x{shape[0]})", "Masks must have their image's width and height",
        )
    mask = mask > 0
    if not mask.any():
        raise BadInputError(path, "mask is empty (no nucleus pixel)", "Remove the mask file")
    return mask


def _load_sample(sample: Sample) -> tuple[np.ndarray, np.ndarray, int, dict]:
    raw = read_image(sample.image)
    try:
        image = to_channels_last(raw)
    except ValueError as exc:
        raise BadInputError(sample.image, str(exc)) from exc
    shape = image.shape[:2]
    masks = [_read_mask(path, shape) for path in sample.masks]
    labels, overlap = masks_to_labels(masks)
    source = {"source_dtype": str(raw.dtype), "source_channels": 1 if raw.ndim == 2 else raw.shape[-1]}
    return image, labels, overlap, source


def prepare_sample(sample: Sample, settings: PrepareSettings, images_dir: Path, labels_dir: Path) -> dict:
    """Read, check, label and normalize one sample; write its two TIFFs; return its table row.

    Everything is read and checked before anything is written, so a bad sample writes nothing.
    """
    image, labels, overlap, source = _load_sample(sample)
    normalized, stats = percentile_normalize(image, settings.p_low, settings.p_high)
    write_tiff(images_dir / f"{sample.id}.tif", normalized[..., 0] if normalized.shape[-1] == 1 else normalized)
    write_tiff(labels_dir / f"{sample.id}.tif", labels)
    return {
        "id": sample.id,
        "height": image.shape[0],
        "width": image.shape[1],
        "channels": image.shape[-1],
        "modality": classify_modality(image),
        "n_nuclei": int(len(np.unique(labels)) - 1),
        "n_masks": len(sample.masks),
        "overlap_pixels": overlap,
        **source,
        "norm_low": stats.low,
        "norm_high": stats.high,
    }


def _prepare_or_report(args) -> dict | BadInputError:
    try:
        return prepare_sample(*args)
    except BadInputError as problem:
        return problem


def _skipped_row(problem: BadInputError, root: Path) -> dict:
    try:
        sample_id = problem.path.relative_to(root).parts[0]
    except (ValueError, IndexError):
        sample_id = ""
    return {"id": sample_id, "path": str(problem.path), "reason": problem.problem}


def _raise_first(problems: list[BadInputError]) -> None:
    first = problems[0]
    more = f" ({len(problems) - 1} more bad inputs)" if len(problems) > 1 else ""
    hint = (first.hint + ". " if first.hint else "") + (
        "To leave bad images out and list them in skipped.csv, set prepare.on_bad_image: skip"
    )
    raise BadInputError(first.path, first.problem + more, hint)


def prepare_dataset(
    stage1_train: str | Path,
    images_dir: str | Path,
    labels_dir: str | Path,
    table_csv: str | Path,
    skipped_csv: str | Path,
    settings: PrepareSettings,
    threads: int = 1,
) -> pd.DataFrame:
    """Prepare every sample of a Kaggle-layout folder. Returns the per-image table."""
    root = Path(stage1_train)
    samples, problems = list_samples(root)
    if problems and settings.on_bad_image == "fail":
        _raise_first(problems)
    log.info("preparing %d images from %s with %d processes", len(samples), root, threads)
    with atomic_dir(images_dir) as tmp_images, atomic_dir(labels_dir) as tmp_labels:
        jobs = [(sample, settings, tmp_images, tmp_labels) for sample in samples]
        if threads > 1:
            with ProcessPoolExecutor(max_workers=threads) as pool:
                results = list(pool.map(_prepare_or_report, jobs, chunksize=4))
        else:
            results = [_prepare_or_report(job) for job in jobs]
        rows = [r for r in results if isinstance(r, dict)]
        problems += [r for r in results if isinstance(r, BadInputError)]
        if problems and settings.on_bad_image == "fail":
            _raise_first(problems)
        if not rows:
            raise BadInputError(root, "no usable image was found", "See skipped.csv and the log")
    for problem in problems:
        log.warning("skipped %s", problem)
    write_csv(pd.DataFrame([_skipped_row(p, root) for p in problems], columns=SKIPPED_COLUMNS), skipped_csv)
    table = pd.DataFrame(rows).sort_values("id", ignore_index=True)
    write_csv(table, table_csv)
    log.info("prepared %d images, skipped %d", len(rows), len(problems))
    return table
