"""Each nucleus's neighbours, as CellProfiler 4.2.8.1's MeasureObjectNeighbors measures them.

The nuclei are their own neighbours. Two scales: `Adjacent` (another nucleus within a 4-neighbour
step) and `Within` NEIGHBOUR_DISTANCE px (another nucleus's pixel within that Euclidean distance
of one of ours: CellProfiler's dilation by centrosome's `strel_disk`). PercentTouching: the share
of the nucleus's outline pixels (centrosome's `outline`: a pixel with an 8-neighbour of another
value, or on the image border) within the slightly larger disk `strel_disk(distance + 0.5)` of
another nucleus. The closest neighbours are by centroid distance, over all nuclei, at any
distance (the same at both scales). Line numbers are in measureobjectneighbors.py.

Instead of CellProfiler's dilation of each object's bounding box, each edge pixel looks at the
disk's offsets around it: an object's nearest pixel to anything outside it is an edge pixel, and
the bounding box grown by the distance holds every pixel the disk reaches, so the sets are equal.
"""

from __future__ import annotations

import numpy as np

NEIGHBOUR_DISTANCE = 5  # px: CellProfiler's "Within a specified distance", the profile's scale
SCALES = ("Adjacent", str(NEIGHBOUR_DISTANCE))  # CellProfiler's suffix of each scale's columns
FEATURES = ("NumberOfNeighbors", "PercentTouching", "FirstClosestObjectNumber",
            "FirstClosestDistance", "SecondClosestObjectNumber", "SecondClosestDistance",
            "AngleBetweenNeighbors")
NEIGHBOURS = "neighbours"  # the keys' prefix: neighbours_<scale>-<i>, i in FEATURES' order
_ROW_CHUNK = 1024  # rows of the centroid distance matrix sorted at once (memory, not results)


def _disk(radius: float) -> np.ndarray:
    """centrosome's strel_disk(radius) as (dr, dc) offsets, the centre left out."""
    reach = int(radius)
    dr, dc = np.mgrid[-reach:reach + 1, -reach:reach + 1]
    inside = (dr**2 + dc**2 <= radius * radius) & ((dr != 0) | (dc != 0))
    return np.column_stack([dr[inside], dc[inside]])


def outline(labels: np.ndarray) -> np.ndarray:
    """centrosome.outline.outline: True where a nucleus's pixel has an 8-neighbour of another
    value, or lies on the image border."""
    different = np.zeros(labels.shape, bool)
    for a, b in (((slice(1, None), slice(None)), (slice(None, -1), slice(None))),
                 ((slice(None), slice(1, None)), (slice(None), slice(None, -1))),
                 ((slice(1, None), slice(1, None)), (slice(None, -1), slice(None, -1))),
                 ((slice(1, None), slice(None, -1)), (slice(None, -1), slice(1, None)))):
        differs = labels[a] != labels[b]
        different[a] |= differs
        different[b] |= differs
    different[[0, -1], :] = True
    different[:, [0, -1]] = True
    return different & (labels != 0)


def _others_around(labels: np.ndarray, rows, cols, offsets) -> tuple[np.ndarray, np.ndarray]:
    """(pixel index, other label) for each offset from the given pixels that lands on another
    nucleus inside the image."""
    own = labels[rows, cols]
    found_at, found = [], []
    for dr, dc in offsets:
        r, c = rows + dr, cols + dc
        inside = (r >= 0) & (r < labels.shape[0]) & (c >= 0) & (c < labels.shape[1])
        at = np.flatnonzero(inside)
        other = labels[r[at], c[at]]
        hit = (other != 0) & (other != own[at])
        found_at.append(at[hit])
        found.append(other[hit])
    return np.concatenate(found_at), np.concatenate(found)


def _count_and_touching(labels, index, edge, perimeter_rows, perimeter_cols, distance):
    """NumberOfNeighbors and PercentTouching of each label of index at one distance."""
    rows, cols = np.nonzero(edge)
    at, other = _others_around(labels, rows, cols, _disk(distance))
    pairs = np.unique(np.column_stack([labels[rows[at], cols[at]], other]), axis=0)
    count = np.bincount(np.searchsorted(index, pairs[:, 0]), minlength=index.size)
    at, _ = _others_around(labels, perimeter_rows, perimeter_cols, _disk(distance + 0.5))
    touching = np.zeros(perimeter_rows.size, bool)
    touching[at] = True
    owner = np.searchsorted(index, labels[perimeter_rows, perimeter_cols])
    perimeter = np.bincount(owner, minlength=index.size)
    return count.astype(np.float64), np.bincount(owner, touching, index.size) * 100 / perimeter


def _closest(centres: np.ndarray) -> np.ndarray:
    """Per nucleus, the indices of the nuclei in order of centroid distance (itself first),
    the first three; ties in index order (CellProfiler's stable lexsort, :535-560)."""
    n = len(centres)
    order = np.empty((n, min(n, 3)), np.int64)
    for start in range(0, n, _ROW_CHUNK):
        block = centres[start:start + _ROW_CHUNK]
        di = block[:, None, 0] - centres[None, :, 0]
        dj = block[:, None, 1] - centres[None, :, 1]
        distance = np.sqrt(di * di + dj * dj)
        order[start:start + _ROW_CHUNK] = np.argsort(distance, axis=1, kind="stable")[:, :3]
    return order


def closest_stats(centres: np.ndarray, index: np.ndarray, order: np.ndarray | None = None,
                  own: np.ndarray | None = None) -> list[np.ndarray]:
    """First/SecondClosestObjectNumber (as labels), their distances, and the angle between them
    at the nucleus (degrees); 0 where there is no such neighbour (:384-414, :540-560).

    For the nuclei `own` (indices into centres; all by default), whose nearest nuclei, itself
    first, are the rows of `order` (_closest's by default; a large image's come from a k-d
    tree over all its nuclei: measure_blocks)."""
    order = _closest(centres) if order is None else order
    own = np.arange(len(centres)) if own is None else own
    n = len(own)
    first = order[:, 1]
    v1 = centres[first] - centres[own]
    number1, distance1 = index[first], np.hypot(v1[:, 0], v1[:, 1])
    number2, distance2, angle = np.zeros(n, index.dtype), np.zeros(n), np.zeros(n)
    if len(centres) > 2:
        second = order[:, 2]
        v2 = centres[second] - centres[own]
        number2, distance2 = index[second], np.hypot(v2[:, 0], v2[:, 1])
        with np.errstate(invalid="ignore", divide="ignore"):
            dot = (v1 * v2).sum(1) / np.sqrt((v1**2).sum(1) * (v2**2).sum(1))
            angle = np.arccos(dot) * 180.0 / np.pi
    return [number1, distance1, number2, distance2, angle]


def _centres(labels: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Centroids (row, col) as sums of integer coordinates over the count, as scipy's
    center_of_mass gives CellProfiler's (exact sums: equal distances tie as in CellProfiler)."""
    rows, cols = np.nonzero(labels)
    at = np.searchsorted(index, labels[rows, cols])
    count = np.bincount(at, minlength=index.size)
    return np.column_stack([np.bincount(at, rows, index.size) / count,
                            np.bincount(at, cols, index.size) / count])


def neighbour_stats(labels: np.ndarray, index: np.ndarray) -> dict:
    """Per label of index (sorted): FEATURES at each scale, keyed `neighbours_<scale>-<i>`.
    A nucleus alone in its image gets 0 for each."""
    n = index.size
    if n < 2:  # CellProfiler measures nothing without a second object (:367)
        zeros = [np.zeros(n)] * len(FEATURES)
        return {f"{NEIGHBOURS}_{s}-{i}": v for s in SCALES for i, v in enumerate(zeros)}
    from skimage.segmentation import find_boundaries

    edge = find_boundaries(labels, mode="inner") & (labels != 0)
    perimeter_rows, perimeter_cols = np.nonzero(outline(labels))
    closest = closest_stats(_centres(labels, index), index)
    stats = {}
    for scale, distance in zip(SCALES, (1, NEIGHBOUR_DISTANCE)):
        values = [*_count_and_touching(labels, index, edge, perimeter_rows, perimeter_cols,
                                       distance), *closest]
        stats.update({f"{NEIGHBOURS}_{scale}-{i}": v for i, v in enumerate(values)})
    return stats
