"""Measurements scikit-image lacks, as regionprops `extra_properties`.

Each is f(regionmask[, intensity]) on the object's bounding box and returns several values;
regionprops_table names them `<function>-<i>`, the keys columns.COLUMNS reads them from. Where a
column is CellProfiler's, the function follows CellProfiler 4.2.8.1's code (the line numbers
below are in it and in centrosome 1.2.3, the library it calls).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import ConvexHull


def _row_ends(regionmask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row of the object: its row, its first and its last column. Only these pixels can be
    corners of the convex hull, so the hull sees at most two pixels per row, not every pixel."""
    rows = np.flatnonzero(regionmask.any(axis=1))
    sub = regionmask[rows]
    first = sub.argmax(axis=1)
    last = sub.shape[1] - 1 - sub[:, ::-1].argmax(axis=1)
    return rows, first, last


def _hull(points: np.ndarray) -> np.ndarray:
    """Convex hull vertices (counter-clockwise); the two ends when the points lie on one line,
    the point itself when they are all one."""
    d = points - points[0]
    far = d[np.argmax((d**2).sum(axis=1))]
    if not (far[0] * d[:, 1] - far[1] * d[:, 0]).any():  # collinear: Qhull refuses them
        along = d @ far
        return points[[along.argmin(), along.argmax()]] if far.any() else points[:1]
    return points[ConvexHull(points).vertices]


def _feret(v: np.ndarray) -> tuple[float, float]:
    """(min, max) caliper width of a convex polygon. The minimum has one jaw flush with an edge
    (rotating calipers): over the edges, the smallest distance from the edge's line to the
    farthest vertex; the maximum is the longest distance between two vertices."""
    if len(v) == 1:
        return 0.0, 0.0
    edges = np.roll(v, -1, axis=0) - v
    normals = np.column_stack([-edges[:, 1], edges[:, 0]]) / np.hypot(*edges.T)[:, None]
    widths = np.abs(((v[None, :, :] - v[:, None, :]) * normals[:, None, :]).sum(-1)).max(1)
    diff = v[:, None, :] - v[None, :, :]
    return float(widths.min()), float(np.sqrt((diff**2).sum(-1).max()))


def feret(regionmask: np.ndarray) -> tuple[float, float]:
    """CellProfiler's (min, max) Feret diameter: of the convex hull of the pixel CENTRES
    (measureobjectsizeshape.py:660-672; cpmorphology.py:655 convex_hull_ijv, :4807
    feret_diameter). A single pixel: 0 and 0; a line of n pixels: 0 and n - 1."""
    rows, first, last = _row_ends(regionmask)
    points = np.column_stack([np.r_[rows, rows], np.r_[first, last]])
    return _feret(_hull(points))


def feret_squares(regionmask: np.ndarray) -> tuple[float, float]:
    """(min, max) Feret diameter of the pixels drawn as unit squares (nucleiseg's own): the
    caliper a ruler would give, a single pixel 1 and sqrt(2), a line of n pixels 1 and about n."""
    rows, first, last = _row_ends(regionmask)
    r = np.concatenate([rows - 0.5, rows + 0.5, rows - 0.5, rows + 0.5])
    c = np.concatenate([first - 0.5, first - 0.5, last + 0.5, last + 0.5])
    return _feret(_hull(np.column_stack([r, c])))


def radii(regionmask: np.ndarray) -> tuple[float, float, float]:
    """(max, mean, median) distance to the nearest outside pixel; padded so that the bounding
    box's edge counts as outside, as CellProfiler does."""
    distances = ndi.distance_transform_edt(np.pad(regionmask, 1))[1:-1, 1:-1][regionmask]
    return float(distances.max()), float(distances.mean()), float(np.median(distances))


def cellprofiler_quantile(ordered: np.ndarray, fraction: float) -> float:
    """CellProfiler's quantile of sorted values (measureobjectintensity.py:459-485): at 0-based
    position p = n * fraction, i = floor(p), v[i] * (1 - (p - i)) + v[i + 1] * (p - i), or v[i]
    when i is the last. Its median of [1, 2, 3] is 2.5, of [1, 2, 3, 4] 3."""
    position = ordered.size * fraction
    i = int(position)
    if i < ordered.size - 1:
        step = position - i
        return float(ordered[i] * (1 - step) + ordered[i + 1] * step)
    return float(ordered[i])


def _cellprofiler_order_stats(ordered: np.ndarray) -> list[float]:
    """CellProfiler's median, lower and upper quartile, and MAD (:488-500: the deviations from
    its median, at position n / 2)."""
    median = cellprofiler_quantile(ordered, 0.5)
    deviations = np.sort(np.abs(ordered - median))
    return [median, cellprofiler_quantile(ordered, 0.25), cellprofiler_quantile(ordered, 0.75),
            cellprofiler_quantile(deviations, 0.5)]


def _numpy_order_stats(values: np.ndarray) -> list[float]:
    """NumPy's median, lower and upper quartile (linear at position (n - 1) * fraction) and the
    median absolute deviation from that median."""
    q1, median, q3 = np.quantile(values, [0.25, 0.5, 0.75])
    return [median, q1, q3, float(np.median(np.abs(values - median)))]


def intensity_stats(regionmask: np.ndarray, intensity: np.ndarray) -> list[float]:
    """integrated, mean, std (population), min, max; CellProfiler's median, lower quartile,
    upper quartile, MAD; then NumPy's four."""
    values = intensity[regionmask]
    ordered = np.sort(values)
    return ([values.sum(), values.mean(), values.std(), ordered[0], ordered[-1]]
            + _cellprofiler_order_stats(ordered) + _numpy_order_stats(values))


def intensity_location(regionmask: np.ndarray, intensity: np.ndarray) -> list[float]:
    """Centre of mass (row, col) in bounding-box coordinates (the brightest pixel is
    brightest.py's: its ties need the whole image)."""
    rows, cols = np.nonzero(regionmask)
    weights = intensity[rows, cols]
    total = weights.sum()
    if total == 0:
        return [np.nan, np.nan]
    return [(rows * weights).sum() / total, (cols * weights).sum() / total]


EXTRA_PROPERTIES = (feret, feret_squares, radii, intensity_stats, intensity_location)
