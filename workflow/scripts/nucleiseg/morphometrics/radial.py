"""Radial intensity distribution, as CellProfiler 4.2.8.1's MeasureObjectIntensityDistribution
measures it with its default settings: BINS rings, scaled to each object, centred on the object
itself (measureobjectintensitydistribution.py:799-1170, line numbers below).

Each object's centre is its pixel farthest from its edge (the largest distance to a pixel of
another value, `distance_to_edge`). Where several pixels tie for it (about half of all nuclei),
CellProfiler takes whichever its NumPy's unstable argsort of the whole image's distances puts
last (scipy's maximum_position): nucleiseg replays NumPy 1.23's sort (introsort.py) to take the
same one. A pixel's distance from the centre is the length of the
shortest 8-connected path to it inside the object, steps of 1 and sqrt(2) (centrosome's
`propagate` on a zero image); pixels the path cannot reach (another piece of the object) are
left out. Its ring: floor(BINS * d_centre / (d_centre + d_edge + 0.001)). Per ring: FracAtD,
the ring's share of the object's intensity; MeanFrac, that over the ring's share of the
object's pixels; RadialCV, the coefficient of variation (population) of the mean intensities
of the ring's eight wedges around the centre (0 where the ring has no pixel).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .introsort import argsort, maximum_positions

BINS = 4  # CellProfiler's default bin count, scaled bins, no overflow ring
RADIAL = "radial"  # the keys' prefix: radial-<k>, k = feature * BINS + ring
FEATURES = ("FracAtD", "MeanFrac", "RadialCV")
_EDGE_OFFSET = 0.001  # CellProfiler's, added to the total distance (:1006)


def _touching_pairs(labels: np.ndarray) -> np.ndarray:
    """Distinct (a, b) label pairs, a < b, of 8-neighbouring pixels of two objects."""
    pairs = []
    for a, b in (((slice(1, None), slice(None)), (slice(None, -1), slice(None))),
                 ((slice(None), slice(1, None)), (slice(None), slice(None, -1))),
                 ((slice(1, None), slice(1, None)), (slice(None, -1), slice(None, -1))),
                 ((slice(1, None), slice(None, -1)), (slice(None, -1), slice(1, None)))):
        u, v = labels[a].ravel(), labels[b].ravel()
        hit = (u != v) & (u != 0) & (v != 0)
        pairs.append(np.column_stack([np.minimum(u[hit], v[hit]), np.maximum(u[hit], v[hit])]))
    return np.unique(np.concatenate(pairs), axis=0)


def colours(labels: np.ndarray, index: np.ndarray) -> np.ndarray:
    """A colour (1, 2, ...) per label of index, different for any two 8-touching objects, so
    that each colour's objects can be measured as one mask (centrosome's color_labels idea;
    any such colouring gives the same measurements)."""
    colour = np.zeros(index.size, np.int64)
    pairs = np.searchsorted(index, _touching_pairs(labels))
    neighbours = [[] for _ in range(index.size)]
    for a, b in pairs:
        neighbours[a].append(b)
        neighbours[b].append(a)
    for k in np.argsort([-len(n) for n in neighbours], kind="stable"):
        taken = {colour[n] for n in neighbours[k]}
        colour[k] = next(c for c in range(1, len(taken) + 2) if c not in taken)
    return colour


def _distances(labels, index, pixel_colour, n_colours):
    """Per pixel: distance to the edge (centrosome's distance_to_edge: the Euclidean distance
    transform of its colour's mask); per object: its centre (flat index), the pixel with the
    largest, as scipy's maximum_position picks it among ties: the last in the image's
    argsort, NumPy 1.23's (introsort.py), where CellProfiler 4.2.8.1 runs."""
    to_edge = np.zeros(labels.shape)
    for c in range(1, n_colours + 1):
        mask = pixel_colour == c
        to_edge[mask] = ndi.distance_transform_edt(mask)[mask]
    flat = np.flatnonzero(labels)
    obj = np.searchsorted(index, labels.ravel()[flat])
    distance = to_edge.ravel()[flat]

    def places(candidates):  # in the argsort of the whole image's distances
        needed = np.zeros(labels.size, bool)
        needed[flat[candidates]] = True
        place = np.zeros(labels.size, np.int64)
        place[argsort(to_edge, needed)] = np.arange(labels.size)
        return place[flat[candidates]]

    element, tied = maximum_positions(distance, obj, index.size, places)
    centres = flat[element]
    return to_edge, tied, centres


def _from_centre(labels, centres, pixel_colour, n_colours):
    """Shortest-path distance from the centre inside each object (inf where unreachable)."""
    from skimage.graph import MCP_Geometric

    distance = np.full(labels.shape, np.inf)
    for c in range(1, n_colours + 1):
        mask = pixel_colour == c
        starts = np.column_stack(np.unravel_index(centres[mask.ravel()[centres]], labels.shape))
        cost, _ = MCP_Geometric(np.where(mask, 1.0, np.inf)).find_costs(starts)
        distance[mask] = cost[mask]
    return distance


def _radial_cv(values, obj, ring, wedge, n):
    """Per object and ring, CellProfiler's RadialCV over the eight wedges (:1098-1118): the
    masked std / mean of the wedges' mean intensities, 0 without any pixel, the std where the
    mean is (nearly) 0 (numpy.ma's masked division keeps the numerator)."""
    cell = (obj * BINS + ring) * 8 + wedge
    total = np.bincount(cell, values, n * BINS * 8).reshape(n, BINS, 8)
    count = np.bincount(cell, minlength=n * BINS * 8).reshape(n, BINS, 8)
    present = count > 0
    wedges = present.sum(2)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(present, total / np.maximum(count, 1), 0.0)
        mean = means.sum(2) / wedges
        std = np.sqrt((np.where(present, means - mean[..., None], 0.0) ** 2).sum(2) / wedges)
        cv = np.where(np.abs(std) * np.finfo(float).tiny >= np.abs(mean), std, std / mean)
    return np.where(wedges == 0, 0.0, cv)


def radial_stats(labels: np.ndarray, intensity: np.ndarray, index: np.ndarray) -> dict:
    """Per label of index (sorted): FracAtD, MeanFrac and RadialCV of each ring, keyed
    `radial-<feature * BINS + ring>`; NaN for an object without intensity (0 / 0), as
    CellProfiler; `radial-tied`: whether several pixels tie for its centre."""
    n = index.size
    colour = colours(labels, index)
    pixel_colour = np.r_[0, colour][np.searchsorted(np.r_[0, index], labels)]
    n_colours = int(colour.max(initial=0))
    to_edge, tied, centres = _distances(labels, index, pixel_colour, n_colours)
    from_centre = _from_centre(labels, centres, pixel_colour, n_colours)
    rows, cols = np.nonzero(np.isfinite(from_centre) & (labels != 0))
    obj = np.searchsorted(index, labels[rows, cols])
    d = from_centre[rows, cols]
    ring = np.minimum((d / (d + to_edge[rows, cols] + _EDGE_OFFSET) * BINS).astype(int), BINS)
    values = intensity[rows, cols]
    cell = obj * (BINS + 1) + ring
    histogram = np.bincount(cell, values, n * (BINS + 1)).reshape(n, BINS + 1)
    number = np.bincount(cell, minlength=n * (BINS + 1)).reshape(n, BINS + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = histogram / histogram.sum(1, keepdims=True)
        mean_fraction = fraction / (number / number.sum(1, keepdims=True) + np.finfo(float).eps)
    centre_rows, centre_cols = np.unravel_index(centres, labels.shape)
    di, dj = rows - centre_rows[obj], cols - centre_cols[obj]
    wedge = (di > 0) + (dj > 0) * 2 + (np.abs(di) > np.abs(dj)) * 4
    cv = _radial_cv(values, obj, ring, wedge, n)
    stats = {f"{RADIAL}-tied": tied}
    for f, table in enumerate((fraction[:, :BINS], mean_fraction[:, :BINS], cv)):
        stats.update({f"{RADIAL}-{f * BINS + b}": table[:, b] for b in range(BINS)})
    return stats
