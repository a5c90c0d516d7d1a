"""Measurements scikit-image lacks, as regionprops `extra_properties`.

Each is f(regionmask[, intensity]) on the object's bounding box and returns several values;
regionprops_table names them `<function>-<i>`, the keys columns.COLUMNS reads them from.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import ConvexHull

from ..labels import EIGHT


def _hull_corners(regionmask: np.ndarray) -> np.ndarray:
    """Convex hull vertices (row, col) of the object drawn as unit squares.

    Only the first and last pixel of each row can be hull corners, so the hull sees at most
    four points per row, not every pixel.
    """
    rows = np.flatnonzero(regionmask.any(axis=1))
    sub = regionmask[rows]
    first = sub.argmax(axis=1)
    last = sub.shape[1] - 1 - sub[:, ::-1].argmax(axis=1)
    r = np.concatenate([rows - 0.5, rows + 0.5, rows - 0.5, rows + 0.5])
    c = np.concatenate([first - 0.5, first - 0.5, last + 0.5, last + 0.5])
    points = np.column_stack([r, c])
    return points[ConvexHull(points).vertices]  # counter-clockwise


def feret(regionmask: np.ndarray) -> tuple[float, float]:
    """(min, max) caliper width. The minimum has one jaw flush with a hull edge (rotating
    calipers); the maximum is the longest distance between two hull vertices."""
    v = _hull_corners(regionmask)
    edges = np.roll(v, -1, axis=0) - v
    normals = np.column_stack([-edges[:, 1], edges[:, 0]]) / np.hypot(*edges.T)[:, None]
    # widths[i]: farthest vertex from the line through edge i
    widths = np.abs(((v[None, :, :] - v[:, None, :]) * normals[:, None, :]).sum(-1)).max(1)
    diff = v[:, None, :] - v[None, :, :]
    return float(widths.min()), float(np.sqrt((diff**2).sum(-1).max()))


def radii(regionmask: np.ndarray) -> tuple[float, float, float]:
    """(max, mean, median) distance to the nearest outside pixel; padded so that the bounding
    box's edge counts as outside, as CellProfiler does."""
    distances = ndi.distance_transform_edt(np.pad(regionmask, 1))[1:-1, 1:-1][regionmask]
    return float(distances.max()), float(distances.mean()), float(np.median(distances))


def _edge(regionmask: np.ndarray) -> np.ndarray:
    """The object's pixels with an 8-neighbour outside it."""
    inner = ndi.binary_erosion(np.pad(regionmask, 1), EIGHT)[1:-1, 1:-1]
    return regionmask & ~inner


def _stats(values: np.ndarray) -> list[float]:
    """integrated, mean, std, min, max of the values."""
    return [values.sum(), values.mean(), values.std(), values.min(), values.max()]


def intensity_stats(regionmask: np.ndarray, intensity: np.ndarray) -> list[float]:
    """_stats, then median, lower quartile, upper quartile, MAD."""
    values = intensity[regionmask]
    q1, median, q3 = np.quantile(values, [0.25, 0.5, 0.75])
    mad = np.median(np.abs(values - median))
    return _stats(values) + [median, q1, q3, mad]


def edge_stats(regionmask: np.ndarray, intensity: np.ndarray) -> list[float]:
    """_stats of the edge pixels' intensities."""
    return _stats(intensity[_edge(regionmask)])


def intensity_location(regionmask: np.ndarray, intensity: np.ndarray) -> list[float]:
    """Centre of mass (row, col) and brightest pixel (row, col), in bounding-box coordinates."""
    rows, cols = np.nonzero(regionmask)
    weights = intensity[rows, cols]
    total = weights.sum()
    if total == 0:
        com = [np.nan, np.nan]
    else:
        com = [(rows * weights).sum() / total, (cols * weights).sum() / total]
    brightest = np.argmax(weights)
    return com + [rows[brightest], cols[brightest]]


EXTRA_PROPERTIES = (feret, radii, intensity_stats, edge_stats, intensity_location)
