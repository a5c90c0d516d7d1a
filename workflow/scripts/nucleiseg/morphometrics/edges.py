"""The intensity of each nucleus's edge, as CellProfiler measures it.

An edge pixel belongs to a nucleus and has a 4-neighbour of another value (background or
another nucleus): scikit-image's `find_boundaries(labels, mode="inner")` on the whole label image,
as CellProfiler 4.2.8.1's MeasureObjectIntensity (measureobjectintensity.py:335-337, 503-545).
It sees the neighbours, so it is measured on the whole image, not per bounding box as
features' extra properties are. Beyond the image border the labels are mirrored, so the border
does not count as outside: a nucleus cut by it has no edge along it.
"""

from __future__ import annotations

import numpy as np
from skimage.segmentation import find_boundaries

EDGE_STATS = "edge_stats"  # the keys' prefix: edge_stats-0 ... edge_stats-4


def edge_pixels(labels: np.ndarray) -> np.ndarray:
    """True on every nucleus's edge pixels."""
    return find_boundaries(labels, mode="inner")


def edge_stats(labels: np.ndarray, intensity: np.ndarray, index: np.ndarray) -> dict:
    """Per label of index (sorted): integrated, mean, std (population), min and max intensity of
    its edge pixels, as `edge_stats-<i>`. A nucleus without edge pixels (one filling the whole
    image) gets 0 for each, as CellProfiler writes."""
    edge = edge_pixels(labels)
    values = intensity[edge]
    at = np.searchsorted(index, labels[edge])  # each edge pixel's position in index
    count = np.bincount(at, minlength=index.size)
    total = np.bincount(at, values, minlength=index.size)
    found = count > 0
    mean = np.divide(total, count, out=np.zeros(index.size), where=found)
    squares = np.bincount(at, (values - mean[at]) ** 2, minlength=index.size)
    std = np.sqrt(np.divide(squares, count, out=np.zeros(index.size), where=found))
    low, high = np.full(index.size, np.inf), np.full(index.size, -np.inf)
    np.minimum.at(low, at, values)
    np.maximum.at(high, at, values)
    stats = [total, mean, std, np.where(found, low, 0.0), np.where(found, high, 0.0)]
    return {f"{EDGE_STATS}-{i}": value for i, value in enumerate(stats)}
