"""Zernike shape features, as CellProfiler 4.2.8.1's MeasureObjectSizeShape computes them.

centrosome 1.2.3's zernike.zernike (zernike.py:140): each object's pixels are put in its
enclosing circle (enclosing_circle.py: centrosome's, not the true minimum one) as
x = (column - centre column) / radius, y = (row - centre row) / radius; for each (n, m) the sum
over the pixels inside the unit disk (x^2 + y^2 <= 1) of R_n^m(r) (y + ix)^m, R's coefficients
(-1)^k (n - k)! / (k! ((n + m)/2 - k)! ((n - m)/2 - k)!) taken by Horner's rule in r^2, and the
feature is the sum's magnitude over the circle's area pi radius^2 (not normalized by (n + 1) /
pi). All objects at once: every pixel is touched once per (n, m), never in a Python loop.
"""

from __future__ import annotations

from math import factorial

import numpy as np

from .enclosing_circle import convex_hulls, enclosing_circles

ZERNIKE_DEGREE = 9  # CellProfiler's fixed ZERNIKE_N: every (n, m) with n <= 9, m = n, n-2, ... >= 0
ZERNIKE = "zernike"  # the keys' prefix: zernike-<k>, k in INDEXES' order
INDEXES = tuple((n, m) for n in range(ZERNIKE_DEGREE + 1) for m in range(n % 2, n + 1, 2))


def _coefficients(n: int, m: int) -> list[float]:
    """R_n^m's coefficients, highest power of r^2 first (centrosome's lookup table)."""
    return [(-1) ** k * float(factorial(n - k))
            / (factorial(k) * factorial((n + m) // 2 - k) * factorial((n - m) // 2 - k))
            for k in range((n - m) // 2 + 1)]


def zernike_stats(labels: np.ndarray, index: np.ndarray, other_pick: bool = False) -> dict:
    """Per label of index (sorted): |Zernike n, m| for every (n, m) of INDEXES, keyed
    `zernike-<k>`. A single pixel (radius 0) gives NaN, as CellProfiler does. other_pick:
    enclosing_circles'."""
    centres, radii, _ = enclosing_circles(*convex_hulls(labels, index), other_pick)
    rows, cols = np.nonzero(labels)
    obj = np.searchsorted(index, labels[rows, cols])
    with np.errstate(invalid="ignore", divide="ignore"):
        y = (rows - centres[obj, 0]) / radii[obj]
        x = (cols - centres[obj, 1]) / radii[obj]
        r2 = np.square(x) + np.square(y)
        outside = r2 > 1
        z = y + 1j * x
        powers = {0: None, 1: z}
        areas = np.square(radii) * np.pi
        stats = {}
        for k, (n, m) in enumerate(INDEXES):
            s = np.zeros_like(r2)
            for coefficient in _coefficients(n, m):
                s = s * r2 + coefficient
            s[outside] = 0
            if m not in powers:
                powers[m] = z**m
            real = np.bincount(obj, s if m == 0 else s * powers[m].real, index.size)
            imag = (np.zeros(index.size) if m == 0
                    else np.bincount(obj, s * powers[m].imag, index.size))
            stats[f"{ZERNIKE}-{k}"] = np.sqrt(real**2 + imag**2) / areas
    return stats
