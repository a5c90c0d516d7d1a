"""The brightest pixel of each object, as CellProfiler 4.2.8.1's MeasureObjectIntensity finds it.

scipy's maximum_position over the objects' pixels in row-major order
(measureobjectintensity.py:349-411): where several pixels tie for the largest intensity, the
one that NumPy's unstable argsort of all those intensities puts last. nucleiseg replays NumPy
1.23's sort (introsort.py), the one CellProfiler 4.2.8.1 runs on, only where ties exist.
"""

from __future__ import annotations

import numpy as np

from .introsort import argsort

BRIGHTEST = "brightest"  # the keys: brightest-0 (row), brightest-1 (column)


def brightest(labels: np.ndarray, intensity: np.ndarray, index: np.ndarray) -> dict:
    """Per label of index (sorted): row and column of its brightest pixel, as
    `brightest-0`, `brightest-1`."""
    flat = np.flatnonzero(labels)
    obj = np.searchsorted(index, labels.ravel()[flat])
    values = intensity.ravel()[flat]
    top = np.full(index.size, -np.inf)
    np.maximum.at(top, obj, values)
    at_top = values == top[obj]
    tied = np.bincount(obj[at_top], minlength=index.size) > 1
    rank = np.arange(flat.size)
    if tied.any():
        order = argsort(values, at_top & tied[obj])
        rank[order] = np.arange(flat.size)
    last = np.full(index.size, -1)
    np.maximum.at(last, obj[at_top], rank[at_top])
    chosen = at_top & (rank == last[obj])
    rows, cols = np.unravel_index(flat[chosen], labels.shape)
    position = np.empty((2, index.size), np.int64)
    position[:, obj[chosen]] = rows, cols
    return {f"{BRIGHTEST}-0": position[0], f"{BRIGHTEST}-1": position[1]}
