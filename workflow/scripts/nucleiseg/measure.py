"""Measuring every nucleus of a segmented group of images, and drawing their outlines.

Measurements are taken on the raw nuclear channel, re-read from the original file (not on the
normalized pixels the network saw), so intensities are in the microscope's own units. Each row
of the nuclei table is one nucleus: image id, label, whether it touches the image border (its
shape is then cut off: flagged, never dropped), the model's confidence, and every column of
morphometrics.COLUMNS. The micrometre columns are always present, empty where an image has no
pixel size, so that all tables of a batch have the same columns.
"""

from __future__ import annotations

import logging
import time
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import tifffile

from .batch_io import read_batch_image
from .blocks import BLOCK_MARGIN, BLOCK_SIZE, LABELS_SUFFIX, BlockGrid
from .io import atomic_path
from .large_io import TiffRegions, open_regions
from .measure_blocks import measure_large_image
from .morphometrics import (
    FEATURES,
    cellprofiler_cell,
    column_names,
    full_scale_of,
    markdown_rows,
    measure_labels,
    touches_border,
)
from .normalize import percentile_normalize
from .tables import MEASURE_SECONDS_COLUMNS

log = logging.getLogger(__name__)

# (name, unit, description): the columns nuclei.csv has before the morphometrics.
_ID_COLUMNS = (
    ("image_id", "-", "the image's file name without its suffix"),
    ("label", "-", "the nucleus's value in the image's label TIFF (labels/<chunk>/<image_id>.tif)"),
    ("touches_border", "-", "true when the nucleus has a pixel in the image's first or last row "
     "or column: its shape is cut off (flagged, not dropped)"),
    ("confidence", "-", "the model's mean foreground probability over the nucleus's pixels"),
)
ID_COLUMNS = tuple(name for name, _, _ in _ID_COLUMNS)
OVERLAY_MAX_SIDE = 1024  # overlays are for looking at: big images are shown downscaled
INTERIOR = (0.1, 0.9, 0.2)  # outline colours: green inside the image, orange at its border
BORDER = (1.0, 0.55, 0.0)


def nuclei_columns() -> list[str]:
    """image_id, label, touches_border, confidence, then morphometrics' columns (its Label is
    label), every optional family's too: one left out of segment.measure_features is empty, so
    that every batch table has the same columns."""
    return [*ID_COLUMNS, *(c for c in column_names(physical=True) if c != "Label")]


def markdown_table() -> str:
    """The README's table of nuclei.csv columns (between its `measurements` markers)."""
    lines = ["| Column | Unit | Family | CellProfiler | Description |", "|---|---|---|---|---|"]
    own = cellprofiler_cell(False)
    lines += [f"| `{name}` | {unit} | identity | {own} | {text} |"
              for name, unit, text in _ID_COLUMNS]
    return "\n".join(lines + markdown_rows(skip=("Label",))) + "\n"


def measure_image(labels: np.ndarray, intensity: np.ndarray, pixel_size_um: float | None,
                  image_id: str, confidence: pd.Series | None = None,
                  features=FEATURES, full_scale: float | None = None) -> pd.DataFrame:
    """One image's nuclei table, with nuclei_columns(); features: the optional families measured
    (segment.measure_features), the others' columns empty; full_scale: the intensity of white
    (measure_labels')."""
    table = measure_labels(labels, intensity, pixel_size_um, features, full_scale)
    table.insert(0, "image_id", image_id)
    table.insert(1, "label", table.pop("Label"))
    table.insert(2, "touches_border", table["label"].isin(touches_border(labels)))
    conf = np.nan if confidence is None else table["label"].map(confidence)
    table.insert(3, "confidence", conf)
    return table.reindex(columns=nuclei_columns())


def measure_nuclei(images: pd.DataFrame, confidences: pd.DataFrame, nuclear_channel: int,
                   overlays_dir: Path, pages: str = "refuse", features=FEATURES,
                   blocks: dict | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Nuclei of every segmented (status ok) image of a chunk's table, and an overlay each.

    The raw files are re-read with the settings segmentation read them with
    (segment.nuclear_channel, segment.pages); features: the optional measurement families
    (segment.measure_features). Images segmented block by block (labels_file an OME-TIFF,
    blocks.LABELS_SUFFIX) are measured block by block (measure_blocks.py), with the blocks
    segmentation had: `blocks` holds segment.block_size and segment.block_margin.

    Returns the nuclei table and per image the seconds taken to measure (image_id,
    seconds_measure, seconds_overlay).
    """
    overlays_dir.mkdir(parents=True, exist_ok=True)
    tables, timings = [], []
    by_image = {key: group.set_index("label")["confidence"]
                for key, group in confidences.groupby("image_id")}
    for row in images[images["status"] == "ok"].itertuples():
        start = time.perf_counter()
        pixel_size = None if pd.isna(row.pixel_size_um) else float(row.pixel_size_um)
        measure = partial(measure_image, pixel_size_um=pixel_size, image_id=row.image_id,
                          confidence=by_image.get(row.image_id), features=features)
        if str(row.labels_file).endswith(LABELS_SUFFIX):
            table, small = _measure_large(row, nuclear_channel, pages, measure, features,
                                          blocks or {}, pixel_size)
            tables.append(table)
            measured = time.perf_counter()
            picture = draw_outlines(small.image, small.labels,
                                    table.loc[table["touches_border"], "label"].to_numpy())
            _write_png(overlays_dir / f"{row.image_id}.png", picture)
        else:
            image = read_batch_image(row.file, nuclear_channel, pages)
            labels = tifffile.imread(row.labels_file)
            # white as the file stores it: a colour image's luminance is float, its file not
            tables.append(measure(labels, image.intensity,
                                  full_scale=full_scale_of(image.image.dtype)))
            measured = time.perf_counter()
            write_overlay(overlays_dir / f"{row.image_id}.png", image.image, labels)
        timings.append({"image_id": row.image_id, "seconds_measure": measured - start,
                        "seconds_overlay": time.perf_counter() - measured})
        log.info("%s: %d nuclei measured", row.image_id, len(tables[-1]))
    # one image's table as it is: a large image's is not copied again
    nuclei = (tables[0] if len(tables) == 1 else pd.concat(tables, ignore_index=True) if tables
              else pd.DataFrame(columns=nuclei_columns()))
    return nuclei, pd.DataFrame(timings, columns=list(MEASURE_SECONDS_COLUMNS))


def _display(image: np.ndarray) -> np.ndarray:
    """A raw (H, W, 1|3) image as (H, W, 3) floats in [0, 1], contrast-stretched (1-99.8%)."""
    shown, _ = percentile_normalize(image, 1.0, 99.8)
    shown = np.clip(shown, 0, 1)
    return np.repeat(shown, 3, axis=-1) if shown.shape[-1] == 1 else shown


def _measure_large(row, nuclear_channel: int, pages: str, measure, features, blocks: dict,
                   pixel_size: float | None):
    """A block-wise image's nuclei table and its downsampled copy (for the overlay)."""
    with TiffRegions(row.labels_file) as labels, \
            open_regions(row.file, nuclear_channel, pages) as raw:
        grid = BlockGrid(raw.height, raw.width, blocks.get("block_size", BLOCK_SIZE),
                         blocks.get("block_margin", BLOCK_MARGIN))
        table, small = measure_large_image(labels, raw, grid, measure, features, pixel_size,
                                           overlay_step(raw.height, raw.width))
    return table, small


def overlay_step(height: int, width: int) -> int:
    """Overlays show every step-th pixel: at most OVERLAY_MAX_SIDE on the longer side."""
    return max(1, -(-max(height, width) // OVERLAY_MAX_SIDE))


def overlay(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Nucleus outlines drawn on the image (uint8 RGB), downscaled to OVERLAY_MAX_SIDE."""
    step = overlay_step(*labels.shape)
    return draw_outlines(image[::step, ::step], labels[::step, ::step], touches_border(labels))


def draw_outlines(image: np.ndarray, labels: np.ndarray, border_labels: np.ndarray) -> np.ndarray:
    """Outlines of `labels` on `image` (uint8 RGB): orange for border_labels, green otherwise."""
    from skimage.segmentation import find_boundaries

    picture = _display(image)
    outlines = find_boundaries(labels, mode="inner")
    at_border = np.isin(labels, border_labels) & outlines
    picture[outlines & ~at_border] = INTERIOR
    picture[at_border] = BORDER
    return (picture * 255).round().astype(np.uint8)


def write_overlay(path: Path, image: np.ndarray, labels: np.ndarray) -> None:
    _write_png(path, overlay(image, labels))


def _write_png(path: Path, picture: np.ndarray) -> None:
    import imageio.v3 as iio

    # zlib level 1: 2.6x faster than the default for 10% more bytes (encoding was 3/4 of the
    # overlay's time on the 60-image DSB2018 batch).
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, picture, extension=".png", compress_level=1)
