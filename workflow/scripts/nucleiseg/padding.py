"""Reflect padding as index arithmetic, shared by training tiles and inference tiles.

An index array into the image instead of a padded copy: tiles are cut from the image through
it, so no padded whole image is ever built.
"""

from __future__ import annotations

import numpy as np


def reflect_index(positions: np.ndarray, length: int) -> np.ndarray:
    """np.pad's `reflect` as indices: -1 -> 1, length -> length - 2, repeating past the ends.

    An axis of one pixel repeats it (np.pad's `symmetric`, as `reflect` has nothing to mirror).
    """
    if length == 1:
        return np.zeros_like(positions)
    period = 2 * (length - 1)
    folded = np.mod(positions, period)
    return np.where(folded < length, folded, period - folded)


def round_up(value: int, divisor: int) -> int:
    """The smallest multiple of divisor that is at least value."""
    return value + (-value % divisor)
