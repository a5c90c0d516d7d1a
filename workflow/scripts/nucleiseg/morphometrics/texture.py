"""Haralick texture features, as CellProfiler 4.2.8.1's MeasureTexture computes them (with
mahotas 1.4.18's haralick, ignore_zeros=True) at TEXTURE_SCALE px and GREY_LEVELS grey levels.

The intensity is scaled to [0, 1] by the image's full scale (CellProfiler's loader divides an
integer image by its type's maximum: 255, 65535) and quantized as scikit-image's img_as_ubyte:
round(255 x), clipped to 0..255. In each of four directions (DIRECTIONS, CellProfiler's _00 to
_03: (row, column) steps (0, 1), (1, 1), (1, 0), (1, -1), times the scale) the grey-level
co-occurrence matrix counts, both ways round, the pairs of the object's pixels that far apart,
leaving out grey level 0 (mahotas' ignore_zeros: so a pixel of level 0 inside a nucleus is
left out too). An object without such a pair in some direction gets 0 for every feature, as
CellProfiler writes it (mahotas raises, CellProfiler records NaN as 0). The thirteen features
are mahotas' formulas, from sparse counts of all objects at once rather than one 256 x 256 matrix
per object; DifferenceVariance is the variance of the difference distribution over levels 0 to
the object's largest grey level, as mahotas sizes its matrix.
"""

from __future__ import annotations

import numpy as np

TEXTURE_SCALE = 3  # px: CellProfiler's default texture scale
GREY_LEVELS = 256  # CellProfiler 4's default (and mahotas' 8-bit input)
DIRECTIONS = ((0, 1), (1, 1), (1, 0), (1, -1))
FEATURES = ("AngularSecondMoment", "Contrast", "Correlation", "Variance",
            "InverseDifferenceMoment", "SumAverage", "SumVariance", "SumEntropy", "Entropy",
            "DifferenceVariance", "DifferenceEntropy", "InfoMeas1", "InfoMeas2")
TEXTURE = "texture"  # the keys' prefix: texture-<k>, k = direction * len(FEATURES) + feature


def grey_levels(intensity: np.ndarray, full_scale: float) -> np.ndarray:
    """The intensity as CellProfiler's MeasureTexture sees it: 0..255 (uint8)."""
    scaled = np.rint(np.multiply(intensity / full_scale, GREY_LEVELS - 1, dtype=np.float64))
    return np.clip(scaled, 0, GREY_LEVELS - 1).astype(np.uint8)


def _pairs(labels, grey, step):
    """(object label, grey a, grey b) of each pixel pair `step` apart inside one object, both
    levels above 0, each pair both ways round (the symmetric matrix)."""
    dr, dc = step
    h, w = labels.shape
    a = (slice(0, h - dr), slice(max(0, -dc), w - max(0, dc)))
    b = (slice(dr, h), slice(max(0, dc), w - max(0, -dc)))
    la, ga, gb = labels[a], grey[a], grey[b]
    hit = (la == labels[b]) & (la != 0) & (ga > 0) & (gb > 0)
    la, ga, gb = la[hit], ga[hit].astype(np.int64), gb[hit].astype(np.int64)
    return np.r_[la, la], np.r_[ga, gb], np.r_[gb, ga]


def _entropy(obj, p, n):
    """-sum p log2 p per object (mahotas' _entropy: zeros contribute 0)."""
    return -np.bincount(obj, p * np.log2(p), n)


def _by(obj, key, p, n, size):
    """Sums of p per (object, key), key < size, and the nonzero ones as (object, key, value)."""
    table = np.bincount(obj * size + key, p, n * size)
    at = np.flatnonzero(table)
    return table.reshape(n, size), at // size, at % size, table[at]


def _direction(obj, a, b, n, top):
    """The thirteen features per object from its pairs in one direction; top: each object's
    largest grey level. Objects without pairs give NaN."""
    levels = GREY_LEVELS
    cells, counts = np.unique((obj * levels + a) * levels + b, return_counts=True)
    o, i, j = cells // (levels * levels), cells // levels % levels, cells % levels
    total = np.bincount(o, counts, n)
    p = counts / total[o]
    marginal, mo, mk, mp = _by(o, j, p, n, levels)  # mahotas' px = p.sum(0); py is the same
    k = np.arange(levels)
    ux = marginal @ k
    vx = marginal @ k**2 - ux**2
    sx = np.sqrt(vx)
    with np.errstate(invalid="ignore", divide="ignore"):
        correlation = np.where(sx == 0, 1.0, (np.bincount(o, i * j * p, n) - ux * ux) / sx / sx)
        plus = _by(o, i + j, p, n, 2 * levels)
        minus_table, mio, _, mip = _by(o, np.abs(i - j), p, n, levels)
        tk = np.arange(2 * levels)
        sum_average = plus[0] @ tk
        width = top + 1  # mahotas' matrix side, so the length of its difference distribution
        mean = minus_table.sum(1) / width
        spread = ((minus_table - mean[:, None]) ** 2 * (k[None, :] < width[:, None])).sum(1)
        entropy = _entropy(o, p, n)
        hx = _entropy(mo, mp, n)
        hxy1 = -np.bincount(o, p * np.log2(marginal[o, i] * marginal[o, j]), n)
        mass = marginal.sum(1)
        hxy2 = hx * mass + hx * mass
        info1 = np.where(hx == 0, entropy - hxy1, (entropy - hxy1) / hx)
        info2 = np.sqrt(np.maximum(0, 1 - np.exp(-2.0 * (hxy2 - entropy))))
        return np.array([
            np.bincount(o, p * p, n), np.bincount(o, (i - j) ** 2 * p, n), correlation, vx,
            np.bincount(o, p / (1.0 + (i - j) ** 2), n), sum_average,
            plus[0] @ tk**2 - sum_average**2, _entropy(plus[1], plus[3], n), entropy,
            spread / width, _entropy(mio, mip, n), info1, info2])


def texture_stats(labels: np.ndarray, intensity: np.ndarray, index: np.ndarray,
                  full_scale: float) -> dict:
    """Per label of index (sorted): FEATURES in each of DIRECTIONS, keyed `texture-<k>`."""
    n = index.size
    grey = grey_levels(intensity, full_scale)
    top = np.zeros(n, np.int64)
    inside = labels != 0
    np.maximum.at(top, np.searchsorted(index, labels[inside]), grey[inside])
    features, empty = [], np.zeros(n, bool)
    for step in DIRECTIONS:
        label, a, b = _pairs(labels, grey, (step[0] * TEXTURE_SCALE, step[1] * TEXTURE_SCALE))
        obj = np.searchsorted(index, label)
        empty |= np.bincount(obj, minlength=n) == 0
        features.append(_direction(obj, a, b, n, top))
    stats = {}
    for d, values in enumerate(features):
        values = np.where(empty | ~np.isfinite(values), 0.0, values)
        stats.update({f"{TEXTURE}-{d * len(FEATURES) + f}": v for f, v in enumerate(values)})
    return stats
