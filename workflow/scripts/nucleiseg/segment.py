"""Segmenting one chunk of a batch's images: read, normalize, predict (tiled), instance labels.

One call handles the images of one chunk (`segment_images`, the rule's function): the model is
loaded once, then each image goes through the model's verbs, timed one by one so that BENCHMARKS.md can say where the
time goes. Each image's label TIFF is written as soon as it is done; the per-image table is
written last, so a job that dies leaves no table that looks complete. A file that cannot be
used stops the job (on_bad_image: fail) or becomes a `skipped` row with the reason (skip).
Measuring the nuclei is the next rule's job (measure.py), on the raw pixels.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .batch_io import (BatchImage, check_images, check_pages, read_batch_image,
                       with_skip_hint)
from .batches import image_id
from .errors import BadInputError, ConfigError, check_on_bad_image
from .io import write_csv, write_tiff
from .model import NucleusModel, Segmentation
from .tables import CONFIDENCE_COLUMNS, SEGMENTED_COLUMNS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SegmentSettings:
    """The config's `segment` keys about reading and writing images, checked.

    How the model runs (the tiling) is the model's: inference.Tiling, set when it is loaded.
    """

    nuclear_channel: int = 0
    pages: str = "refuse"  # TIFF pages without axis metadata: refused, or channels (batch_io.PAGES)
    pixel_size_um: float = 0.0  # 0: from each file's metadata
    on_bad_image: str = "fail"
    save_probabilities: bool = False

    def __post_init__(self):
        check_pages(self.pages)
        check_on_bad_image(self.on_bad_image, "segment.on_bad_image")
        if self.pixel_size_um < 0:
            raise ConfigError(f"segment.pixel_size_um must be >= 0, got {self.pixel_size_um}")

    @classmethod
    def from_config(cls, section: dict) -> SegmentSettings:
        return cls(
            nuclear_channel=int(section.get("nuclear_channel", 0)),
            pages=section.get("pages", "refuse"),
            pixel_size_um=float(section.get("pixel_size_um", 0.0)),
            on_bad_image=section.get("on_bad_image", "fail"),
            save_probabilities=bool(section.get("save_probabilities", False)),
        )

    def pixel_size(self, image: BatchImage) -> tuple[float | None, str]:
        """The pixel size to measure with and where it came from: config, then the file."""
        if self.pixel_size_um > 0:
            return self.pixel_size_um, "config"
        return image.pixel_size_um, image.pixel_size_source


def segment_image(model: NucleusModel, image: BatchImage) -> Segmentation:
    """Normalize as the model's training data was, then the model's segment (tiled)."""
    start = time.perf_counter()
    normalized = model.normalize(image.image)
    seconds = time.perf_counter() - start
    result = model.segment(normalized)
    result.seconds = {"normalize": seconds, **result.seconds}
    return result


def write_labels(path: str | Path, labels: np.ndarray, pixel_size_um: float | None) -> None:
    """A label TIFF that Fiji and napari open: uint16 (uint32 past 65,535 nuclei), compressed.

    With a pixel size, uint16 labels carry ImageJ's calibration (unit micron), so Fiji shows
    micrometres; ImageJ has no uint32 type, so those are plain TIFFs.
    """
    kwargs = {"compression": "zlib"}
    if pixel_size_um and labels.dtype == np.uint16:
        kwargs.update(imagej=True, resolution=(1 / pixel_size_um, 1 / pixel_size_um),
                      metadata={"unit": "micron", "axes": "YX"})
    write_tiff(path, labels, **kwargs)


def _bad_row(path: Path, exc: BadInputError, seconds: float) -> dict:
    return {"image_id": image_id(path), "file": str(path), "status": "skipped",
            "reason": exc.problem if exc.hint is None else f"{exc.problem}. {exc.hint}",
            "seconds_read": seconds}


def segment_images(model: NucleusModel, files: list[Path], settings: SegmentSettings,
                   labels_dir: Path, probabilities_dir: Path, table_path: Path,
                   confidence_path: Path) -> pd.DataFrame:
    """Segment `files` into labels_dir/<id>.tif; write the per-image table and confidences.

    The table has tables.SEGMENTED_COLUMNS, one row per file (status ok or skipped); confidence_path gets
    one row per nucleus: image_id, label, confidence (mean foreground probability).
    """
    if settings.on_bad_image == "fail":  # every unusable file named, before any is segmented
        check_images(files, settings.nuclear_channel, settings.pages)
    labels_dir.mkdir(parents=True, exist_ok=True)
    probabilities_dir.mkdir(parents=True, exist_ok=True)
    rows, confidences = [], []
    for path in files:
        start = time.perf_counter()
        try:
            image = read_batch_image(path, settings.nuclear_channel, settings.pages)
        except BadInputError as exc:
            if settings.on_bad_image == "fail":
                raise with_skip_hint(exc) from None
            log.warning("skipping %s: %s", path, exc.problem)
            rows.append(_bad_row(path, exc, time.perf_counter() - start))
            continue
        read_seconds = time.perf_counter() - start

        result = segment_image(model, image)
        pixel_size, source = settings.pixel_size(image)
        start = time.perf_counter()
        labels_file = labels_dir / f"{image.id}.tif"
        write_labels(labels_file, result.labels, pixel_size)
        if settings.save_probabilities:
            write_tiff(probabilities_dir / f"{image.id}.tif",
                       np.moveaxis(result.maps, -1, 0), compression="zlib")
        n = int(result.labels.max(initial=0))
        confidences.append(pd.DataFrame({"image_id": image.id, "label": np.arange(1, n + 1),
                                         "confidence": result.confidence}))
        seconds = {"read": read_seconds, **result.seconds, "write": time.perf_counter() - start}
        rows.append({
            "image_id": image.id, "file": str(path), "status": "ok", "reason": "",
            "description": image.description, "height": image.height, "width": image.width,
            "pixel_size_um": pixel_size, "pixel_size_source": source, "n_nuclei": n,
            "labels_file": str(labels_file),
            **{f"seconds_{k}": v for k, v in seconds.items()},
        })
        log.info("%s (%s, %dx%d): %d nuclei in %.2f s (predict %.2f s)", image.id,
                 image.description, image.height, image.width, n, sum(seconds.values()),
                 seconds["predict"])
    table = pd.DataFrame(rows, columns=list(SEGMENTED_COLUMNS))
    conf = (pd.concat(confidences, ignore_index=True) if confidences
            else pd.DataFrame(columns=list(CONFIDENCE_COLUMNS)))
    write_csv(conf, confidence_path)
    write_csv(table, table_path)
    return table
