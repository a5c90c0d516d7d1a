"""Test-time augmentation: the maps averaged over flipped and rotated copies of the image.

Each copy is predicted, mapped back onto the image's own grid, and the maps averaged. `flips`
uses the image, its two mirror images (left-right, up-down) and both mirrors at once (a half
turn): a group of four; `d4` the whole symmetry group of the square, eight copies: four
rotations by 90 degrees, each with and without a mirror. Averaging over a
group makes the prediction equivariant: the maps of a rotated image are the rotated maps.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .errors import ConfigError

# (rotations by 90 degrees, mirror left-right first): the group's elements as array moves.
_GROUPS = {
    "off": ((0, False),),
    "flips": ((0, False), (0, True), (2, True), (2, False)),  # (2, True): the up-down mirror
    "d4": tuple((k, mirror) for mirror in (False, True) for k in range(4)),
}
TTA_MODES = tuple(_GROUPS)


def check_tta(mode: str) -> str:
    if mode not in _GROUPS:
        raise ConfigError(f"segment.tta must be one of {', '.join(TTA_MODES)}, got {mode!r}")
    return mode


def _forward(image: np.ndarray, k: int, mirror: bool) -> np.ndarray:
    if mirror:
        image = image[:, ::-1]
    return np.rot90(image, k, axes=(0, 1))


def _inverse(maps: np.ndarray, k: int, mirror: bool) -> np.ndarray:
    maps = np.rot90(maps, -k, axes=(0, 1))
    return maps[:, ::-1] if mirror else maps


def predict_augmented(predict: Callable[[np.ndarray], np.ndarray], image: np.ndarray,
                      mode: str) -> np.ndarray:
    """The mean of predict(copy), each mapped back, over the copies `mode` names (float32)."""
    moves = _GROUPS[check_tta(mode)]
    total = None
    for k, mirror in moves:
        maps = _inverse(predict(np.ascontiguousarray(_forward(image, k, mirror))), k, mirror)
        total = maps.astype(np.float32) if total is None else total + maps
    if len(moves) > 1:
        total /= len(moves)
    return total
