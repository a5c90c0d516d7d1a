"""Instance label images: one integer per nucleus, 0 for background.

The helpers every stage shares: the connectivities objects are made of, the dtype a label image
is stored in, the check that an array is a label image, renumbering through a lookup table, and
stacking per-nucleus masks into one label image.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import ndimage as ndi

# 4-connectivity: pixels that share a side ("touching"); 8-connectivity: sides or corners.
FOUR = ndi.generate_binary_structure(2, 1)
EIGHT = ndi.generate_binary_structure(2, 2)

# Past this many lookup-table entries per pixel, renumbering sorts the values instead (a uint32
# label of 4e9 must not allocate a 4e9-entry table).
_MAX_LUT_PER_PIXEL = 4


def label_dtype(n_labels: int) -> np.dtype:
    """uint16 (opens everywhere) unless there are more nuclei than it can number."""
    return np.dtype(np.uint16) if n_labels <= np.iinfo(np.uint16).max else np.dtype(np.uint32)


def check_labels(labels, name: str = "labels", ndim: int = 2,
                 masks: bool = False) -> np.ndarray:
    """`labels` as an array, or a ValueError: `ndim` dimensions, integer, none < 0.

    masks: a bool array (one object per connected region, e.g. a mask) is accepted too.
    """
    labels = np.asarray(labels)
    if labels.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}D label image, got an array of shape "
                         f"{labels.shape}")
    if labels.dtype.kind not in ("biu" if masks else "iu"):
        raise ValueError(
            f"{name} must have an integer dtype (0 = background, 1.. = objects), got "
            f"{labels.dtype}; label a binary mask first (e.g. scipy.ndimage.label)")
    if labels.size and labels.dtype.kind == "i" and labels.min() < 0:
        raise ValueError(f"{name} has negative labels (min {labels.min()}); labels must be >= 0")
    return labels


def relabel(labels: np.ndarray, keep: np.ndarray | None = None,
            dtype=None) -> tuple[np.ndarray, int]:
    """Labels renumbered 1..n in their original order, and n.

    keep: one bool per label value 0..max (e.g. `np.bincount(labels.ravel()) >= min_size`);
    objects it marks False become background. None keeps every label present. dtype: of the
    result; None is label_dtype(n). Values far sparser than the pixels (a max label more than
    four times the pixel count) are renumbered by sorting instead of a lookup table.
    """
    flat = labels.ravel()
    top = int(flat.max()) if flat.size else 0
    if keep is None and top > max(_MAX_LUT_PER_PIXEL * flat.size, 1 << 16):
        values, index = np.unique(flat, return_inverse=True)
        if values[0] != 0:  # no background pixel: index 0 must stay background
            index = index + 1
        n = int(np.count_nonzero(values))
        return index.reshape(labels.shape).astype(dtype or label_dtype(n)), n
    if keep is None:
        keep = np.bincount(flat, minlength=top + 1) > 0
    keep = np.array(keep, bool)  # a copy: keep[0] is changed below
    keep[0] = False
    n = int(keep.sum())
    lut = np.cumsum(keep) * keep
    return lut.astype(dtype or label_dtype(n))[labels], n


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
