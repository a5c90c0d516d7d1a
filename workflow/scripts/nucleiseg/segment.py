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

from .batch_io import (BatchImage, check_images, check_pages, is_large_image, read_batch_image,
                       with_skip_hint)
from .blocks import BLOCK_MARGIN, BLOCK_SIZE, check_block_settings
from .batches import image_id
from .errors import BadInputError, ConfigError, check_on_bad_image
from .io import write_csv, write_tiff
from .model import NucleusModel, Segmentation
from .pipeline import WriteBehind, read_ahead
from .segment_blocks import segment_large_image
from .tables import CONFIDENCE_COLUMNS, SEGMENTED_COLUMNS

log = logging.getLogger(__name__)
BLOCK_WISE = "block-wise"  # read_image's answer for an image above segment.block_size


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
    block_size: int = BLOCK_SIZE  # TIFFs, OME-Zarrs with a longer side: block by block
    block_margin: int = BLOCK_MARGIN  # pixels around each block's core: over half any nucleus

    def __post_init__(self):
        check_pages(self.pages)
        check_block_settings(self.block_size, self.block_margin)
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
            block_size=int(section.get("block_size", BLOCK_SIZE)),
            block_margin=int(section.get("block_margin", BLOCK_MARGIN)),
        )

    def pixel_size(self, image: BatchImage) -> tuple[float | None, str]:
        """The pixel size to measure with and where it came from: config, then the file."""
        if self.pixel_size_um > 0:
            return self.pixel_size_um, "config"
        return image.pixel_size_um, image.pixel_size_source


def read_image(model: NucleusModel, path: Path, settings: SegmentSettings
               ) -> tuple[BatchImage | BadInputError, np.ndarray | None, dict[str, float]]:
    """The file read and normalized as the model's training data was, each step timed; a file
    that cannot be used gives its BadInputError in place of the image."""
    start = time.perf_counter()
    try:
        if is_large_image(path, settings.block_size):
            return BLOCK_WISE, None, {}  # read block by block when its turn comes
        image = read_batch_image(path, settings.nuclear_channel, settings.pages)
    except BadInputError as exc:
        return exc, None, {"read": time.perf_counter() - start}
    read = time.perf_counter()
    normalized = model.normalize(image.image)
    return image, normalized, {"read": read - start, "normalize": time.perf_counter() - read}


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


def _write_result(image: BatchImage, result: Segmentation, seconds: dict[str, float],
                  row: dict, settings: SegmentSettings, probabilities_dir: Path,
                  confidences: list) -> None:
    """Write one image's labels (and maps), add its confidences, and time it all in `row`."""
    start = time.perf_counter()
    write_labels(row["labels_file"], result.labels, row["pixel_size_um"])
    if settings.save_probabilities:
        write_tiff(probabilities_dir / f"{image.id}.tif",
                   np.moveaxis(result.maps, -1, 0), compression="zlib")
    n = row["n_nuclei"]
    confidences.append(pd.DataFrame({"image_id": image.id, "label": np.arange(1, n + 1),
                                     "confidence": result.confidence}))
    seconds["write"] = time.perf_counter() - start
    row.update({f"seconds_{k}": v for k, v in seconds.items()})
    log.info("%s (%s, %dx%d): %d nuclei in %.2f s (predict %.2f s)", image.id,
             image.description, image.height, image.width, n, sum(seconds.values()),
             seconds["predict"])


def _bad_row(path: Path, exc: BadInputError, seconds: float) -> dict:
    return {"image_id": image_id(path), "file": str(path), "status": "skipped",
            "reason": exc.problem if exc.hint is None else f"{exc.problem}. {exc.hint}",
            "seconds_read": seconds}


def segment_images(model: NucleusModel, files: list[Path], settings: SegmentSettings,
                   labels_dir: Path, probabilities_dir: Path, table_path: Path,
                   confidence_path: Path) -> pd.DataFrame:
    """Segment `files` into labels_dir/<id>.tif; write the per-image table and confidences.

    A TIFF or OME-Zarr with a side above settings.block_size is segmented block by block into
    labels_dir/<id>.ome.tif (segment_blocks.py), its row and confidences alike.

    The table has tables.SEGMENTED_COLUMNS, one row per file (status ok or skipped); confidence_path gets
    one row per nucleus: image_id, label, confidence (mean foreground probability).
    """
    if settings.on_bad_image == "fail":  # every unusable file named, before any is segmented
        check_images(files, settings.nuclear_channel, settings.pages, settings.block_size)
    labels_dir.mkdir(parents=True, exist_ok=True)
    probabilities_dir.mkdir(parents=True, exist_ok=True)
    rows, confidences = [], []
    # The network predicts image k while a thread reads and normalizes image k + 1 and another
    # writes image k - 1 (pipeline.py): the stages' seconds overlap, their sum exceeds the wall.
    with WriteBehind() as writer:
        for path, (image, normalized, seconds) in read_ahead(
                lambda path: read_image(model, path, settings), files):
            if image is BLOCK_WISE:  # read, segmented and written block by block
                try:
                    rows.append(segment_large_image(model, path, settings, labels_dir,
                                                    confidences))
                    rows[-1].update(backend=model.backend.name,
                                    precision=model.backend.precision)
                    continue
                except BadInputError as exc:
                    image, seconds = exc, {"read": 0.0}
            if isinstance(image, BadInputError):
                if settings.on_bad_image == "fail":
                    raise with_skip_hint(image) from None
                log.warning("skipping %s: %s", path, image.problem)
                rows.append(_bad_row(path, image, seconds["read"]))
                continue
            result = model.segment(normalized)
            seconds.update(result.seconds)
            pixel_size, source = settings.pixel_size(image)
            rows.append({
                "image_id": image.id, "file": str(path), "status": "ok", "reason": "",
                "description": image.description, "height": image.height,
                "width": image.width, "pixel_size_um": pixel_size, "pixel_size_source": source,
                "n_nuclei": int(result.labels.max(initial=0)),
                "nucleus_diameter_px": result.diameter, "rescale_factor": result.factor,
                "labels_file": str(labels_dir / f"{image.id}.tif"),
                "backend": model.backend.name, "precision": model.backend.precision,
            })
            writer.submit(_write_result, image, result, seconds, rows[-1], settings,
                          probabilities_dir, confidences)
    table = pd.DataFrame(rows, columns=list(SEGMENTED_COLUMNS))
    conf = (pd.concat(confidences, ignore_index=True) if confidences
            else pd.DataFrame(columns=list(CONFIDENCE_COLUMNS)))
    # In the files' order, whichever thread added an image's rows first.
    order = {image: k for k, image in enumerate(table["image_id"])}
    conf = conf.sort_values("image_id", key=lambda ids: ids.map(order), kind="stable")
    write_csv(conf, confidence_path)
    write_csv(table, table_path)
    return table
