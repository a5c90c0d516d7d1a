"""The brightest pixel of each object, as CellProfiler 4.2.8.1's MeasureObjectIntensity finds it.

scipy's maximum_position over the objects' pixels in row-major order
(measureobjectintensity.py:349-411): where several pixels tie for the largest intensity, the
one that NumPy's unstable argsort of all those intensities puts last. nucleiseg replays NumPy
1.23's sort (introsort.py), the one CellProfiler 4.2.8.1 runs on, only where ties exist.
"""

from __future__ import annotations

import numpy as np

from .introsort import argsort, maximum_positions

BRIGHTEST = "brightest"  # the keys: brightest-0 (row), brightest-1 (column)


def brightest(labels: np.ndarray, intensity: np.ndarray, index: np.ndarray) -> dict:
    """Per label of index (sorted): row and column of its brightest pixel, as
    `brightest-0`, `brightest-1`."""
    flat = np.flatnonzero(labels)
    obj = np.searchsorted(index, labels.ravel()[flat])
    values = intensity.ravel()[flat]

    def places(candidates):  # in the argsort of the objects' intensities, row-major
        place = np.empty(values.size, np.int64)
        place[argsort(values, candidates)] = np.arange(values.size)
        return place[candidates]

    element, _ = maximum_positions(values, obj, index.size, places)
    rows, cols = np.unravel_index(flat[element], labels.shape)
    return {f"{BRIGHTEST}-0": rows, f"{BRIGHTEST}-1": cols}
