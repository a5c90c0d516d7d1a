"""Instance label images from per-nucleus binary masks."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def label_dtype(n_labels: int) -> np.dtype:
    """uint16 (opens everywhere) unless there are more nuclei than it can number."""
    return np.dtype(np.uint16) if n_labels <= np.iinfo(np.uint16).max else np.dtype(np.uint32)


def masks_to_labels(masks: Sequence[np.ndarray]) -> tuple[np.ndarray, int]:
    """Stack binary masks into one label image: masks[k] becomes label k + 1.

    Where masks overlap, the pixel keeps the label of the earlier mask. Callers pass masks in
    file-name order, so the result does not depend on the order the file system lists them.
    Returns the label image and the number of overlapping pixels that were resolved.
    """
    if not masks:
        raise ValueError("no masks given")
    shape = masks[0].shape
    labels = np.zeros(shape, dtype=label_dtype(len(masks)))
    overlap = 0
    for index, mask in enumerate(masks, start=1):
        if mask.shape != shape:
            raise ValueError(f"mask {index} has shape {mask.shape}, the first has {shape}")
        mask = mask.astype(bool)
        taken = mask & (labels != 0)
        overlap += int(taken.sum())
        labels[mask & ~taken] = index
    return labels, overlap
