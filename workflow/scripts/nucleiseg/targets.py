"""Training targets from instance labels: what the network learns to predict, per pixel.

A network that only predicts foreground merges touching nuclei: their pixels form one blob. Like
the 2018 Data Science Bowl winners, the "contour" head also predicts each nucleus's boundary,
drawn inside the nucleus, so that the boundary between two touching nuclei is a band of contour
that keeps their interiors apart; instances.labels_from_maps grows them back from those
interiors.

Channels of a target, in this order: foreground (labels > 0), then contour (heads "contour"),
then, when the training weighs it (train.touch_weight), the touch band: the contour where two
nuclei touch, which the loss weighs more (losses.bce_dice_loss), as the Data Science Bowl's
winners weighed the pixels between touching nuclei and the U-Net paper the gaps between cells:
they are few, and a nucleus merged with its neighbour costs both.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .labels import check_labels
from .modelconfig import check_heads, n_maps


def _interior(labels: np.ndarray) -> np.ndarray:
    """Labels where all four neighbours carry the same label, 0 elsewhere (one erosion step).

    Edges are replicated: a nucleus cut by the image edge has no boundary there (the cut is the
    tile's, not the nucleus's). The four neighbours (not eight) are enough to keep two touching
    nuclei apart: the interiors of two different labels are never even diagonally adjacent,
    since the pixel that two diagonal neighbours share would have to belong to both.
    """
    padded = np.pad(labels, 1, mode="edge")
    core = padded[1:-1, 1:-1]
    same = ((core == padded[:-2, 1:-1]) & (core == padded[2:, 1:-1])
            & (core == padded[1:-1, :-2]) & (core == padded[1:-1, 2:]))
    return np.where(same, core, 0)


def contour_map(labels: np.ndarray, width: int = 2) -> np.ndarray:
    """1.0 on each nucleus's boundary band, `width` pixels thick and inside the nucleus.

    A pixel is contour when it lies within `width` steps (4-connected) of a pixel of another
    label or of the background; so the border between two touching nuclei is contour on both
    sides, and a nucleus thinner than 2 * width is contour throughout. Returns float32 (H, W).
    """
    labels = check_labels(labels, ndim=2, masks=True)
    if width < 1:
        raise ValueError(f"contour width must be at least 1 pixel, got {width}")
    inner = labels
    for _ in range(int(width)):
        inner = _interior(inner)
    return ((labels != 0) & (inner == 0)).astype(np.float32)


def touch_map(labels: np.ndarray, width: int = 2) -> np.ndarray:
    """1.0 on the contour band where two nuclei touch: nucleus pixels within `width` steps
    (4-connected, as contour_map) of a pixel of another nucleus; the band along the background
    is not touch. Returns float32 (H, W)."""
    labels = check_labels(labels, ndim=2, masks=True).astype(np.int64, copy=False)
    if width < 1:
        raise ValueError(f"contour width must be at least 1 pixel, got {width}")
    diamond = ndi.generate_binary_structure(2, 1)
    diamond = ndi.iterate_structure(diamond, int(width))
    # Another nucleus nearby: a larger label (the maximum) or a smaller non-zero one (the
    # minimum with the background set above every label).
    above = ndi.maximum_filter(labels, footprint=diamond, mode="nearest")
    below = ndi.minimum_filter(np.where(labels == 0, np.iinfo(labels.dtype).max, labels),
                               footprint=diamond, mode="nearest")
    return ((labels != 0) & ((above != labels) | (below != labels))).astype(np.float32)


def make_targets(labels: np.ndarray, heads: str = "contour", contour_width: int = 2,
                 touch: bool = False) -> np.ndarray:
    """Float32 (H, W, C) targets of one label image: foreground, then contour for "contour",
    then the touch band when `touch` (heads "contour" only)."""
    check_heads(heads)
    if touch and heads != "contour":
        raise ValueError(f"the touch band weighs the contour head; heads {heads!r} has none")
    labels = check_labels(labels, ndim=2, masks=True)
    channels = [(labels != 0).astype(np.float32)]
    if heads == "contour":
        channels.append(contour_map(labels, contour_width))
    if touch:
        channels.append(touch_map(labels, contour_width))
    return np.stack(channels, axis=-1)


def make_targets_batch(labels: np.ndarray, heads: str = "contour", contour_width: int = 2,
                       touch: bool = False) -> np.ndarray:
    """Float32 (N, H, W, C) targets of a batch of (N, H, W) label images."""
    labels = check_labels(labels, ndim=3, masks=True)
    out = np.empty(labels.shape + (n_maps(heads) + bool(touch),), np.float32)
    for i, one in enumerate(labels):
        out[i] = make_targets(one, heads, contour_width, touch)
    return out
