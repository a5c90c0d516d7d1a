"""Each object's convex hull and enclosing circle, as centrosome 1.2.3 finds them for CellProfiler.

The circle is the frame of the Zernike features (zernike.py), so it must be centrosome's to the
last bit: a true minimum enclosing circle differs where centrosome's search stops early, and a
pixel on the circle is in or out by rounding. centrosome's `minimum_enclosing_circle`
(cpmorphology.py:1414) walks Chrystal's algorithm from the first two hull vertices; its
`convex_hull_ijv` (_convex_hull.pyx) gives the vertices, strictly convex (collinear points
dropped), counter-clockwise with x the column and y the row, starting at the topmost pixel of the
leftmost column: the lower envelope (smallest row per column) left to right, then the upper
envelope right to left. Both are done here for all objects at once, with centrosome's arithmetic
(its formulas, in its order) wherever a float is produced.
"""

from __future__ import annotations

import numpy as np

from .introsort import argsort

# Angles this close may tie or not by the last bit of arccos, which differs between NumPy's SIMD
# code and the C library's (so between CPUs, and NumPy versions): there, centrosome's pick, and
# so the circle's last bits, are not reproducible (nor CellProfiler's own from CPU to CPU).
NEAR_TIE = 1e-12


def _column_ends(rows, cols, obj, width):
    """Per object column (sorted by object, then column): object, column, smallest and largest
    row. rows, cols, obj: the objects' pixels in raster order."""
    key = obj.astype(np.int64) * width + cols
    order = np.argsort(key, kind="stable")  # raster order keeps rows ascending in a column
    key, r = key[order], rows[order]
    start = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    end = np.r_[start[1:], key.size] - 1
    return key[start] // width, key[start] % width, r[start], r[end]


def _cross(i, j, a, b, c):
    """centrosome's CONVEX turn a -> b -> c (x the column, y the row): > 0 is convex."""
    return (j[b] - j[a]) * (i[c] - i[b]) - (j[c] - j[b]) * (i[b] - i[a])


def _envelope_hull(obj, i, j, sign):
    """Which points of each object's envelope (one per column, columns ascending) are vertices
    of its hull: points not strictly convex (sign * turn <= 0) are removed until none is left;
    each removed point lies on or beyond the chord of its neighbours, so no vertex goes."""
    keep = np.ones(obj.size, bool)
    while True:
        at = np.flatnonzero(keep)
        a, b, c = at[:-2], at[1:-1], at[2:]
        inner = (obj[a] == obj[b]) & (obj[b] == obj[c])
        flat = inner & (sign * _cross(i, j, a, b, c) <= 0)
        if not flat.any():
            return keep
        keep[b[flat]] = False


def convex_hulls(labels: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hull vertices of the labels in index (sorted), as centrosome's convex_hull_ijv orders
    them: (points (k, 2) as (row, column), counts per label); a single pixel is its own hull,
    a line its two ends."""
    rows, cols = np.nonzero(labels)
    obj = np.searchsorted(index, labels[rows, cols])
    o, j, low, high = _column_ends(rows.astype(np.int64), cols.astype(np.int64), obj,
                                   labels.shape[1])
    lower = _envelope_hull(o, low, j, 1)
    upper = _envelope_hull(o, high, j, -1)
    # the lower envelope left to right, then the upper one right to left, without the pixels
    # both envelopes keep (a column's only pixel at either end)
    lower_keys = (o * labels.shape[1] + j) * labels.shape[0] + low
    upper_keys = (o * labels.shape[1] + j) * labels.shape[0] + high
    upper &= ~np.isin(upper_keys, lower_keys[lower])
    obj_all = np.r_[o[lower], o[upper]]
    side = np.r_[np.zeros(lower.sum(), int), np.ones(upper.sum(), int)]
    along = np.r_[j[lower], -j[upper]]
    order = np.lexsort((along, side, obj_all))
    points = np.column_stack([np.r_[low[lower], high[upper]], np.r_[j[lower], j[upper]]])
    return points[order], np.bincount(obj_all, minlength=index.size)


def _angles(s0, s1, v):
    """centrosome's angles at S1 (S0-S1-V), at S0 (S1-S0-V) and at V (S0-V-S1), its formulas,
    and the two cosines they come from."""
    s01 = (s0 - s1).astype(float)
    vs0 = (v - s0).astype(float)
    vs1 = (v - s1).astype(float)
    dot_vs1s0 = np.sum(s01 * vs1, 1) / np.sqrt(np.sum(s01**2, 1) * np.sum(vs1**2, 1))
    angle_vs1s0 = np.abs(np.arccos(dot_vs1s0))
    dot_vs0s1 = np.sum(-s01 * vs0, 1) / np.sqrt(np.sum(s01**2, 1) * np.sum(vs0**2, 1))
    angle_vs0s1 = np.abs(np.arccos(dot_vs0s1))
    return (angle_vs1s0, angle_vs0s1, np.pi - angle_vs1s0 - angle_vs0s1,
            np.column_stack([dot_vs1s0, dot_vs0s1]))


def _circumcircle(ss0, ss1, vv):
    """Centre (row, column) and radius through three points, centrosome's formulas."""
    y_, x_ = 0, 1
    d = 2 * (ss0[:, x_] * (ss1[:, y_] - vv[:, y_]) + ss1[:, x_] * (vv[:, y_] - ss0[:, y_])
             + vv[:, x_] * (ss0[:, y_] - ss1[:, y_]))
    q0, q1, qv = np.sum(ss0**2, 1), np.sum(ss1**2, 1), np.sum(vv**2, 1)
    x = (q0 * (ss1[:, y_] - vv[:, y_]) + q1 * (vv[:, y_] - ss0[:, y_])
         + qv * (ss0[:, y_] - ss1[:, y_])) / d
    y = (q0 * (vv[:, x_] - ss1[:, x_]) + q1 * (ss0[:, x_] - vv[:, x_])
         + qv * (ss1[:, x_] - ss0[:, x_])) / d
    centre = np.column_stack([y, x])
    return centre, np.sqrt(np.sum((ss0 - centre) ** 2, 1))


def _smallest_angle(obj, angle, cosines, n, other_pick=False):
    """Per object, the position (into angle) of its smallest angle, the angle (-1 and inf
    without candidates), and whether another from other cosines is within NEAR_TIE of it. On
    ties, the one scipy's minimum_position picks: the first in NumPy 1.23's argsort of all the
    angles (introsort.py; NaN sorts last there, as inf here); with other_pick, that other."""
    smallest = np.full(n, np.inf)
    np.fmin.at(smallest, obj, angle)  # NaN (arccos beyond 1) loses, as in the sort
    at_min = angle == smallest[obj]
    rank = np.arange(angle.size)
    tied = np.bincount(obj[at_min], minlength=n) > 1
    if tied.any():
        needed = at_min & tied[obj]
        order = argsort(np.where(np.isnan(angle), np.inf, angle), needed)
        rank[order] = np.arange(angle.size)
    first = np.full(n, angle.size)
    np.minimum.at(first, obj[at_min], rank[at_min])
    position = np.full(n, -1)
    chosen = at_min & (rank == first[obj])
    position[obj[chosen]] = np.flatnonzero(chosen)
    # equal cosines give equal angles whatever the arccos; others may tie on one CPU only
    close = np.abs(angle - smallest[obj]) <= NEAR_TIE
    other = close & (cosines != cosines[np.maximum(position, 0)][obj]).any(axis=1)
    if other_pick:
        alternative = np.full(n, angle.size)
        np.minimum.at(alternative, obj[other], np.flatnonzero(other))
        position = np.where(alternative < angle.size, alternative, position)
    return position, smallest, np.bincount(obj[other], minlength=n) > 0


def enclosing_circles(points: np.ndarray, counts: np.ndarray,
                      other_pick: bool = False) -> tuple[np.ndarray, ...]:
    """centrosome's minimum_enclosing_circle from convex_hulls' output: centres (row, column)
    and radii. Chrystal's walk: S = the first two vertices; V = the vertex seeing S under the
    smallest angle; V obtuse: S is the diameter; S0-S1-V acute: their circumcircle; otherwise V
    replaces the end of S with the obtuse angle. Also: per object, whether the walk ever met
    two angles within NEAR_TIE at its smallest (its circle may then differ from CellProfiler's
    in the last bits, and a pixel on it fall in or out). other_pick: take the other of such
    angles, to see which objects' features turn on the pick (tests/test_cellprofiler.py)."""
    n = counts.size
    first = np.r_[0, np.cumsum(counts)[:-1]]
    owner = np.repeat(np.arange(n), counts)
    position = np.arange(points.shape[0]) - first[owner]
    centres, radii = np.full((n, 2), np.nan), np.zeros(n)
    one, two = counts == 1, counts == 2
    centres[one] = points[first[one]]
    centres[two] = (points[first[two]] + points[first[two] + 1]) / 2
    gap = centres[two] - points[first[two]]
    radii[two] = np.sqrt(gap[:, 0] ** 2 + gap[:, 1] ** 2)
    s0, s1 = first.copy(), first + 1
    active, near = counts > 2, np.zeros(n, bool)
    while active.any():
        candidate = active[owner] & (position >= 0)
        candidate[s0[active]] = candidate[s1[active]] = False
        at = np.flatnonzero(candidate)
        vo = owner[at]
        a1, a0, av, cosines = _angles(points[s0[vo]], points[s1[vo]], points[at])
        best, smallest, close = _smallest_angle(vo, av, cosines, n, other_pick)
        near |= close & active
        done = active & ((best < 0) | (smallest >= np.pi / 2))
        ends0, ends1 = points[s0[done]].astype(float), points[s1[done]].astype(float)
        centres[done] = (ends0 + ends1) / 2
        radii[done] = np.sqrt(np.sum((ends0 - ends1) ** 2, 1)) / 2
        active &= ~done
        k = best[active]
        acute = (a1[k] <= np.pi / 2) & (a0[k] <= np.pi / 2) & (av[k] <= np.pi / 2)
        three = np.flatnonzero(active)[acute]
        centres[three], radii[three] = _circumcircle(
            points[s0[three]].astype(float), points[s1[three]].astype(float),
            points[at[best[three]]].astype(float))
        active[three] = False
        moving = np.flatnonzero(active)
        k = best[moving]
        obtuse_s0 = a0[k] > np.pi / 2
        s0[moving[obtuse_s0]] = at[k[obtuse_s0]]
        s1[moving[~obtuse_s0]] = at[k[~obtuse_s0]]
    return centres, radii, near
