"""Measuring the nuclei of a large image block by block, as the whole image would measure them.

The labels a large image was segmented into (segment_blocks: a tiled OME-TIFF) and its raw
pixels are read one window at a time. Each block measures the nuclei it owns (blocks.owned,
the rule segmentation stitched them by: every nucleus once, and whole in its window) over a
window NEIGHBOUR_DISTANCE + 1 pixels wider than segmentation's, so that the neighbours within
that distance and the edge pixels are those the whole image has. What needs the whole image
is taken from it: the coordinates are shifted to the image's, `touches_border` is the image's
border, and the closest neighbours (at any distance) come from a k-d tree over every
nucleus's centroid, gathered in a first pass over the labels (with segment.measure_features
neighbours). Rows then equal the whole-image path's, up to float rounding of the shifted
coordinates (about 1e-12 px) and label numbering.

A downsampled copy of the image and its labels (every step-th pixel) is gathered on the way,
for the overlay; the full-size image is never held. The blocks' rows wait in a temporary CSV
file (pandas reads floats back exactly), so that the table is held once, at the end,
not twice over while it is put together (about 1.5 KB per nucleus).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .blocks import BlockGrid, owned
from .large_io import Regions
from .morphometrics.columns import COLUMNS, PHYSICAL_COLUMNS, SCALED_COLUMNS
from .morphometrics.neighbours import NEIGHBOUR_DISTANCE, NEIGHBOURS, SCALES, closest_stats

log = logging.getLogger(__name__)

# The columns in image coordinates (pixels): shifted by the window's origin.
_X_COLUMNS = tuple(c.name for c in COLUMNS
                   if c.family in ("shape", "location") and c.name.endswith("_X"))
_Y_COLUMNS = tuple(c.name for c in COLUMNS
                   if c.family in ("shape", "location") and c.name.endswith("_Y"))
_BY_SOURCE = {c.source: c for c in COLUMNS if c.source}
_CLOSEST = range(2, 7)  # neighbour_stats' closest-neighbour keys (FEATURES[2:])
_CANDIDATES = 8  # nearest centroids fetched from the tree; ties beyond the third are rare


@dataclass
class Downsampled:
    """Every step-th pixel of a large image and of its labels (for its overlay)."""

    step: int
    image: np.ndarray  # (h, w, C) as stored
    labels: np.ndarray  # (h, w)


def measurement_grid(grid: BlockGrid) -> BlockGrid:
    """The blocks a large image is measured over: segmentation's `grid`, its margin
    NEIGHBOUR_DISTANCE + 1 wider (each block owns the nuclei it measures)."""
    return BlockGrid(grid.height, grid.width, grid.block_size,
                     grid.margin + NEIGHBOUR_DISTANCE + 1)


def measure_large_image(labels: Regions, raw: Regions, grid: BlockGrid,
                        measure_window: Callable[[np.ndarray, np.ndarray], pd.DataFrame],
                        features, pixel_size: float | None,
                        overlay_step: int) -> tuple[pd.DataFrame, Downsampled]:
    """The nuclei table of a large image and its downsampled copy.

    measure_window(labels, intensity) measures one window (measure.measure_image with the
    image's id, pixel size, confidences and features); grid: segmentation's blocks;
    pixel_size: micrometres per pixel (None: none); overlay_step: the downsampled copy's.
    """
    grid = measurement_grid(grid)
    closest = _closest_columns(labels, grid) if "neighbours" in features else None
    small = _downsampled(raw, overlay_step)
    with tempfile.TemporaryFile("w+") as rows:  # the rows so far, on disk, not in memory
        for block in grid:
            window = labels.read(*block.window)[..., 0]
            values, _ = owned(window, block)
            pixels = raw.batch_image(*block.window)
            _fill_downsampled(small, block, pixels.image, window)
            if values.size == 0:
                continue
            table = measure_window(window, pixels.intensity)
            table = table[table["label"].isin(values)].copy()
            y0, x0 = block.origin
            table[list(_X_COLUMNS)] += x0
            table[list(_Y_COLUMNS)] += y0
            table["touches_border"] = table["label"].isin(_image_border_labels(window, block))
            if closest is not None:
                _set_closest(table, closest, pixel_size)
            table.to_csv(rows, header=rows.tell() == 0, index=False)
        if rows.tell() == 0:
            return measure_window(np.zeros((1, 1), np.uint32), np.zeros((1, 1))), small
        rows.seek(0)
        nuclei = pd.read_csv(rows, dtype={"image_id": str})
    if not nuclei["label"].is_monotonic_increasing:
        nuclei = nuclei.sort_values("label", ignore_index=True)
    return nuclei, small


def _image_border_labels(window: np.ndarray, block) -> np.ndarray:
    """The labels of the window on the image's own border."""
    (ys, xs), (height, width) = block.window, block.image_shape
    edges = [edge for edge, on in ((window[0], ys.start == 0), (window[-1], ys.stop == height),
                                   (window[:, 0], xs.start == 0),
                                   (window[:, -1], xs.stop == width)) if on]
    found = np.unique(np.concatenate(edges)) if edges else np.empty(0, window.dtype)
    return found[found != 0]


def _centroid_pass(labels: Regions, grid: BlockGrid) -> tuple[np.ndarray, np.ndarray]:
    """(label values sorted, centroids (row, col) in the image) of every nucleus: sums of
    integer image coordinates over the count, as neighbours._centres computes them."""
    found, centres = [], []
    for block in grid:
        window = labels.read(*block.window)[..., 0]
        values, _ = owned(window, block)
        if values.size == 0:
            continue
        rows, cols = np.nonzero(np.isin(window, values) & (window > 0))
        at = np.searchsorted(values, window[rows, cols])
        y0, x0 = block.origin
        count = np.bincount(at, minlength=values.size)
        centres.append(np.column_stack([
            np.bincount(at, (rows + y0).astype(np.float64), values.size) / count,
            np.bincount(at, (cols + x0).astype(np.float64), values.size) / count]))
        found.append(values)
    if not found:
        return np.empty(0, np.int64), np.empty((0, 2))
    index = np.concatenate(found)
    order = np.argsort(index)
    return index[order], np.concatenate(centres)[order]


def _nearest(centres: np.ndarray) -> np.ndarray:
    """Per nucleus, the indices of the three nuclei nearest by centroid, itself first: ties in
    index order, distances as neighbours._closest computes them, candidates from a k-d tree."""
    from scipy.spatial import cKDTree

    k = min(len(centres), _CANDIDATES)
    _, candidates = cKDTree(centres).query(centres, k=k)
    candidates = candidates.reshape(len(centres), k)
    di = centres[:, None, 0] - centres[candidates, 0]
    dj = centres[:, None, 1] - centres[candidates, 1]
    distance = np.sqrt(di * di + dj * dj)
    ranked = np.lexsort((candidates, distance), axis=-1)
    return np.take_along_axis(candidates, ranked, axis=1)[:, :3]


def _closest_columns(labels: Regions, grid: BlockGrid) -> pd.DataFrame | None:
    """The closest-neighbour columns of every nucleus (indexed by label), or None when the
    image has fewer than two (neighbour_stats then leaves them 0, as it does per window)."""
    index, centres = _centroid_pass(labels, grid)
    if len(index) < 2:
        return None
    values = closest_stats(centres, index, _nearest(centres))
    columns = {}
    for scale in SCALES:
        for i, value in zip(_CLOSEST, values):
            column = _BY_SOURCE[f"{NEIGHBOURS}_{scale}-{i}"]
            columns[column.name] = np.asarray(value).astype(column.dtype)
    return pd.DataFrame(columns, index=index)


def _set_closest(table: pd.DataFrame, closest: pd.DataFrame, pixel_size: float | None) -> None:
    """The closest-neighbour columns (and their micrometre twins) from the whole image's."""
    rows = closest.loc[table["label"].to_numpy()]
    for name in closest.columns:
        table[name] = rows[name].to_numpy()
    if pixel_size is None:
        return
    for scaled, physical in zip(SCALED_COLUMNS, PHYSICAL_COLUMNS):
        if scaled.name in closest.columns:  # distances: lengths
            table[physical.name] = table[scaled.name].astype(np.float64) * pixel_size


def _downsampled(raw: Regions, step: int) -> Downsampled:
    shape = (-(-raw.height // step), -(-raw.width // step))
    return Downsampled(step, np.zeros((*shape, raw.channels), raw.dtype),
                       np.zeros(shape, np.uint32))


def _fill_downsampled(small: Downsampled, block, image: np.ndarray, window: np.ndarray) -> None:
    """Copy the block core's every step-th pixel (of the image's grid) into `small`."""
    step = small.step
    (core_y, core_x), (y0, x0) = block.core, block.origin
    ys = np.arange(-(-core_y.start // step) * step, core_y.stop, step)
    xs = np.arange(-(-core_x.start // step) * step, core_x.stop, step)
    if ys.size and xs.size:
        grid = np.ix_(ys - y0, xs - x0)
        target = np.ix_(ys // step, xs // step)
        small.image[target] = image[grid]
        small.labels[target] = window[grid]
