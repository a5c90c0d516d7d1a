"""Choosing the thresholds that turn predicted maps into instances, on the validation split.

A grid search maximizing the mean DSB2018 score over the validation images (as StarDist's
`optimize_thresholds`, with a grid rather than an optimizer: the grid is small, and every point
is in the table for the report). Its cost is the watershed: one per image and (foreground,
contour) pair. The min_size values reuse that watershed, since dropping small objects is the
last step of instances.labels_from_maps and changes nothing before it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .instances import Thresholds, grid_labels, head_maps
from .io import read_json, write_json
from .modelconfig import check_heads

# Wide enough that DSB2018's optimum is inside, not on an edge: trained on all of stage1_train,
# the first grid (contour >= 0.2, min_size <= 32) put the validation optimum at 0.2 and 32.
DEFAULT_GRID: dict[str, tuple[float, ...]] = {
    "foreground": (0.3, 0.4, 0.5, 0.6, 0.7),
    "contour": (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5),
    "min_size": (0, 8, 16, 32, 48, 64, 96),
}
# Searched parameters per head, in the table's column order.
_SEARCHED = {"mask": ("foreground", "min_size"), "contour": ("foreground", "contour", "min_size")}
# Mean scores closer than this are a tie (the same label images give the same per-image scores,
# but their means may differ in the last bit when summed in another order).
_TIE = 1e-12


def _check_grid(grid: Mapping[str, Sequence] | None, heads: str) -> dict[str, tuple]:
    """The default grid with `grid`'s entries replacing its own; contour is dropped for "mask"."""
    grid = dict(grid or {})
    unknown = sorted(set(grid) - set(DEFAULT_GRID))
    if unknown:
        raise ValueError(f"unknown threshold grid key(s) {unknown}; the keys are "
                         f"{list(DEFAULT_GRID)}")
    merged = {}
    for name in _SEARCHED[heads]:
        values = tuple(grid.get(name, DEFAULT_GRID[name]))
        if not values:
            raise ValueError(f"threshold grid {name!r} is empty")
        if len(set(values)) != len(values):
            raise ValueError(f"threshold grid {name!r} repeats a value: {list(values)}")
        for value in values:  # each value must make a valid Thresholds (range, type)
            Thresholds(**{name: value})
        merged[name] = values
    return merged


def _check_inputs(predictions, truths, heads: str, backs=None) -> None:
    check_heads(heads)
    if backs is not None and len(backs) != len(truths):
        raise ValueError(f"{len(backs)} label mappings for {len(truths)} truths")
    if len(predictions) != len(truths):
        raise ValueError(f"{len(predictions)} predictions but {len(truths)} truths; they must "
                         "pair up one to one")
    if not predictions:
        raise ValueError("no validation images: the threshold search needs at least one")
    for index, (pred, truth) in enumerate(zip(predictions, truths)):
        shape = np.shape(pred)
        try:
            head_maps(pred, heads)
        except ValueError as exc:
            raise ValueError(f"prediction {index}: {exc}") from None
        if (backs is None or backs[index] is None) and np.shape(truth) != shape[:2]:
            raise ValueError(f"prediction {index} is {shape[:2]} but its truth is "
                             f"{np.shape(truth)}")


def _score_one_image(pred: np.ndarray, truth: np.ndarray, heads: str,
                     grid: dict[str, tuple], back: Callable | None = None) -> np.ndarray:
    """(n_foreground, n_contour, n_min_size, 2) array of (dsb_score, ap_50) for one image."""
    from .metrics import average_precisions

    foreground, contour = head_maps(pred, heads)
    contours = grid.get("contour", (None,))
    out = np.empty((len(grid["foreground"]), len(contours), len(grid["min_size"]), 2))
    for index, labels in grid_labels(foreground, contour, grid["foreground"], contours,
                                     grid["min_size"]):
        ap = average_precisions(
            truth, back(labels, threshold=grid["foreground"][index[0]]) if back else labels)
        out[index] = np.mean(list(ap.values())), ap[0.5]
    return out


def _table(scores: np.ndarray, heads: str, grid: dict[str, tuple]) -> pd.DataFrame:
    """One row per combination, best first: highest score, then nearest the grid's middle."""
    names = _SEARCHED[heads]
    axes = [grid[n] for n in names]
    rows = []
    for order, index in enumerate(itertools.product(*(range(len(a)) for a in axes))):
        full = index if heads == "contour" else (index[0], 0, index[1])
        dsb, ap50 = scores[full]
        off_centre = sum(abs(i - (len(a) - 1) / 2) for i, a in zip(index, axes))
        rows.append({**{n: a[i] for n, a, i in zip(names, axes, index)},
                     "dsb_score": dsb, "ap_50": ap50,
                     "_key": (-round(dsb / _TIE), off_centre, order)})
    rows.sort(key=lambda row: row["_key"])
    table = pd.DataFrame(rows).drop(columns="_key")
    table["min_size"] = table["min_size"].astype(int)
    return table


def search_thresholds(predictions: Sequence[np.ndarray], truths: Sequence[np.ndarray],
                        heads: str = "contour",
                        grid: Mapping[str, Sequence] | None = None,
                        backs: Sequence[Callable] | None = None
                        ) -> tuple[Thresholds, pd.DataFrame]:
    """The thresholds with the best mean DSB score over validation images, and the whole table.

    predictions: (H, W, C) probability maps, channel 0 foreground, channel 1 contour (heads
    "contour"); truths: the matching label images. grid: {"foreground": [...], "contour": [...],
    "min_size": [...]}, each entry replacing DEFAULT_GRID's (contour is not searched for heads
    "mask", which has no contour map). Ties go to the combination nearest the middle of the
    grid, then to the first in grid order. The table has one row per combination (the searched
    thresholds, mean dsb_score, mean ap_50), best first. backs: per image, what brings labels
    made on its maps onto its truth's grid (model.NucleusModel's rescale), if they differ:
    back(labels, threshold=<the foreground threshold they were made with>).
    """
    _check_inputs(predictions, truths, heads, backs)
    grid = _check_grid(grid, heads)
    total = sum(_score_one_image(np.asarray(p), np.asarray(t), heads, grid, back)
                for p, t, back in zip(predictions, truths, backs or [None] * len(truths)))
    table = _table(total / len(predictions), heads, grid)
    best = Thresholds(**{n: table.iloc[0][n] for n in _SEARCHED[heads]})
    return best, table


def save_thresholds(thresholds: Thresholds, path: str | Path) -> None:
    """Write thresholds.json (atomically)."""
    write_json(thresholds.to_dict(), path)


def load_thresholds(path: str | Path) -> Thresholds:
    """Read thresholds.json; unknown keys or bad values are a ConfigError naming the file."""
    from .errors import ConfigError

    try:
        return Thresholds.from_dict(read_json(path))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
