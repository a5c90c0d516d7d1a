"""Kaggle's run-length encoding of masks, and DSB2018 solution files written with it.

EncodedPixels is "start length start length ...": pixels are numbered from 1 in column-major
order (top to bottom, then left to right), so in an image of height H pixel (row r, column c) is
number c * H + r + 1. As Kaggle's checker requires, runs are positive, sorted and do not overlap.

A solution file (stage1_solution.csv) has columns ImageId, EncodedPixels, Height, Width, Usage:
one row per nucleus.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .errors import BadInputError
from .io import write_csv
from .labels import label_dtype

SOLUTION_COLUMNS = ("ImageId", "EncodedPixels", "Height", "Width", "Usage")
_REQUIRED = ("ImageId", "EncodedPixels", "Height", "Width")


# ---------------------------------------------------------------------------------------------
# One mask
# ---------------------------------------------------------------------------------------------


def _parse_runs(encoded: str, n_pixels: int) -> tuple[np.ndarray, np.ndarray]:
    """0-based starts and lengths of the runs, checked; ValueError says what is wrong."""
    values = []
    for field in str(encoded).split():
        try:
            values.append(int(field))
        except ValueError:
            raise ValueError(f"{field!r} is not a whole number") from None
    outside = [v for v in values if v > n_pixels]  # also keeps huge values out of int64
    if outside:
        raise ValueError(f"value {outside[0]} is past the image's {n_pixels} pixels")
    if values and min(values) < 1:
        raise ValueError("starts and lengths must be positive (pixels are numbered from 1)")
    numbers = np.array(values, dtype=np.int64)
    if numbers.size % 2:
        raise ValueError(f"odd number of values ({numbers.size}): runs come as start length pairs")
    starts, lengths = numbers[0::2] - 1, numbers[1::2]
    ends = starts + lengths
    if np.any(starts[1:] < ends[:-1]):
        raise ValueError("runs must be sorted by start and must not overlap")
    if numbers.size and ends[-1] > n_pixels:
        raise ValueError(
            f"a run ends at pixel {ends[-1]}, past the image's {n_pixels} pixels")
    return starts, lengths


def _run_pixels(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The 0-based column-major pixel numbers the runs cover, in order."""
    total = int(lengths.sum())
    # Each pixel is its run's start plus its position within the run.
    offsets = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.repeat(starts, lengths) + offsets


def _check_size(height, width) -> tuple[int, int]:
    height, width = int(height), int(width)
    if height < 1 or width < 1:
        raise ValueError(f"height and width must be at least 1, got {height}x{width}")
    return height, width


def rle_decode(encoded: str, height: int, width: int) -> np.ndarray:
    """The (height, width) bool mask of an EncodedPixels string ("" is an empty mask).

    Raises ValueError for values that are not whole numbers, an odd count, non-positive starts
    or lengths, unsorted or overlapping runs, or runs past the last pixel.
    """
    height, width = _check_size(height, width)
    starts, lengths = _parse_runs(encoded, height * width)
    flat = np.zeros(height * width, bool)
    flat[_run_pixels(starts, lengths)] = True
    return flat.reshape(width, height).T  # column-major numbering


def _encode_pixels(pixels: np.ndarray) -> str:
    """EncodedPixels of sorted 0-based column-major pixel numbers."""
    if pixels.size == 0:
        return ""
    breaks = np.flatnonzero(np.diff(pixels) != 1) + 1
    starts = pixels[np.concatenate([[0], breaks])]
    ends = pixels[np.concatenate([breaks - 1, [pixels.size - 1]])]
    runs = np.column_stack([starts + 1, ends - starts + 1]).ravel()
    return " ".join(map(str, runs.tolist()))


def rle_encode(mask: np.ndarray) -> str:
    """EncodedPixels of a 2D mask (non-zero = inside); "" for an empty mask."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"expected a 2D mask, got an array of shape {mask.shape}")
    return _encode_pixels(np.flatnonzero(mask.T))


# ---------------------------------------------------------------------------------------------
# Solution files
# ---------------------------------------------------------------------------------------------


def _read_solution(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise BadInputError(path, "no such file")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise BadInputError(path, f"cannot be read as CSV ({exc})") from exc
    missing = [c for c in _REQUIRED if c not in table.columns]
    if missing:
        raise BadInputError(
            path, f"lacks the column(s) {', '.join(missing)} (has {', '.join(table.columns)})",
            f"A DSB2018 solution file has columns {','.join(SOLUTION_COLUMNS)}")
    if table.empty:
        raise BadInputError(path, "has no rows (a solution has one row per nucleus)")
    return table


def _row_size(path: Path, where: str, row) -> tuple[int, int]:
    try:
        return _check_size(row.Height, row.Width)
    except ValueError:
        raise BadInputError(
            path, f"{where}: Height and Width must be whole numbers >= 1, got "
            f"{row.Height!r} and {row.Width!r}") from None


def solution_labels(csv_path: str | Path) -> dict[str, np.ndarray]:
    """{ImageId: label image} from a solution file; nuclei numbered 1.. in row order.

    Where two nuclei of an image overlap, the pixel keeps the earlier row's label (as
    masks_to_labels does). Raises BadInputError naming the file, the row (1 = first data row)
    and the image for a Height/Width that disagree with the image's first row, an empty or
    malformed EncodedPixels, or runs outside the image.
    """
    path = Path(csv_path)
    table = _read_solution(path)
    sizes: dict[str, tuple[int, int]] = {}
    pixels: dict[str, list[np.ndarray]] = {}
    for number, row in enumerate(table.itertuples(index=False), start=1):
        image_id = row.ImageId.strip()
        where = f"row {number} (line {number + 1}), image {image_id!r}"
        if not image_id:
            raise BadInputError(path, f"row {number} (line {number + 1}): ImageId is empty")
        size = _row_size(path, where, row)
        first = sizes.setdefault(image_id, size)
        if size != first:
            raise BadInputError(
                path, f"{where}: Height x Width {size[0]}x{size[1]} disagrees with the image's "
                f"earlier rows ({first[0]}x{first[1]})")
        if not row.EncodedPixels.strip():
            raise BadInputError(path, f"{where}: EncodedPixels is empty (a row is one nucleus)")
        try:
            starts, lengths = _parse_runs(row.EncodedPixels, size[0] * size[1])
        except ValueError as exc:
            raise BadInputError(path, f"{where}: bad EncodedPixels: {exc}") from None
        pixels.setdefault(image_id, []).append(_run_pixels(starts, lengths))
    return {image_id: _paint(runs, sizes[image_id]) for image_id, runs in pixels.items()}


def _paint(nuclei: list[np.ndarray], size: tuple[int, int]) -> np.ndarray:
    """Label image from per-nucleus column-major pixel numbers; earlier nuclei win overlaps."""
    height, width = size
    flat = np.zeros(height * width, label_dtype(len(nuclei)))
    for label, where in enumerate(nuclei, start=1):
        free = where[flat[where] == 0]
        flat[free] = label
    return flat.reshape(width, height).T.copy()


def write_solution_csv(labels_by_id: dict[str, np.ndarray], path: str | Path,
                       usage: str = "Public") -> None:
    """Write label images as a solution file, one row per nucleus in label order, atomically.

    Every image needs at least one nucleus: a solution row is a nucleus, so an image without
    any would vanish from the file.
    """
    rows = []
    for image_id, labels in labels_by_id.items():
        labels = np.asarray(labels)
        if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"{image_id}: expected a 2D integer label image, got "
                             f"{labels.dtype} {labels.shape}")
        height, width = labels.shape
        encoded = _encode_labels(labels)
        if not encoded:
            raise ValueError(f"{image_id}: no nucleus (a solution has one row per nucleus)")
        rows += [(image_id, e, height, width, usage) for e in encoded]
    write_csv(pd.DataFrame(rows, columns=list(SOLUTION_COLUMNS)), path)


def _encode_labels(labels: np.ndarray) -> list[str]:
    """EncodedPixels of each non-zero label, in increasing label order, in one sort."""
    flat = labels.T.ravel()  # column-major
    order = np.argsort(flat, kind="stable")  # pixels grouped by label, each group sorted
    values = flat[order]
    bounds = np.flatnonzero(np.diff(values)) + 1
    groups = np.split(order, bounds)
    firsts = values[np.concatenate([[0], bounds])] if values.size else values
    return [_encode_pixels(g) for g, v in zip(groups, firsts) if v != 0]
