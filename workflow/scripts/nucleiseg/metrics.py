"""Instance segmentation scores: object matching by IoU, as in the 2018 Data Science Bowl.

Pure NumPy/SciPy. A true and a predicted nucleus match when their IoU is strictly above the
threshold (DSB2018's rule), one to one. At thresholds >= 0.5 such matches are unique (two objects
cannot both overlap one by more than half of their union); below 0.5 an optimal assignment picks
the most matches, then the highest total IoU (as StarDist's `matching`).

Label images are 2D, integer, non-negative arrays of one shape: 0 is background, every other
value one object. Values need not be sequential (7 and 300 are two objects).

SCORE_COLUMNS defines, once, every column `score_image` returns; `summarize` averages them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from .labels import check_labels, relabel

# 0.50, 0.55, ..., 0.95, rounded so that 0.55 is the float 0.55 and not 0.5500000000000002.
DSB_THRESHOLDS: tuple[float, ...] = tuple(float(t) for t in np.round(np.arange(0.5, 1.0, 0.05), 2))


def _threshold_name(threshold: float) -> str:
    """0.5 -> '50', 0.75 -> '75': the suffix of the per-threshold columns."""
    return f"{round(threshold * 100):02d}"


def _score_columns() -> dict[str, str]:
    columns = {
        "dice": "Dice of the foreground masks (label > 0): 2|T & P| / (|T| + |P|); 1 if both empty",
        "iou": "IoU of the foreground masks: |T & P| / |T | P|; 1 if both empty",
    }
    for t in DSB_THRESHOLDS:
        columns[f"ap_{_threshold_name(t)}"] = (
            f"DSB2018 precision at IoU > {t:.2f}: tp / (tp + fp + fn); 1 if both empty")
    columns.update({
        "dsb_score": "mean of ap_50 ... ap_95 (the DSB2018 score of one image)",
        "n_true": "number of true objects (distinct non-zero labels)",
        "n_pred": "number of predicted objects",
        "tp_50": "true objects matched one to one by a prediction with IoU > 0.5",
        "fp_50": "predicted objects without a match at IoU > 0.5",
        "fn_50": "true objects without a match at IoU > 0.5",
        "mean_matched_iou_50": "mean IoU of the matched pairs at IoU > 0.5; 0 if none matched",
    })
    return columns


SCORE_COLUMNS: dict[str, str] = _score_columns()


@dataclass(frozen=True)
class Matching:
    """The one-to-one matching of true and predicted objects at one IoU threshold.

    precision = tp / n_pred, recall = tp / n_true, f1 = 2 tp / (n_true + n_pred),
    ap = tp / (tp + fp + fn) (what DSB2018 calls precision); each is 1 when both images are
    empty and 0 when only one is. mean_matched_iou is the mean IoU of the matched pairs, 0 when
    none matched (as StarDist's mean_matched_score).
    """

    threshold: float
    n_true: int
    n_pred: int
    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f1: float
    mean_matched_iou: float
    ap: float

    def as_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------------------------------
# Validation and overlaps
# ---------------------------------------------------------------------------------------------


def _check_pair(true, pred) -> tuple[np.ndarray, np.ndarray]:
    true = check_labels(true, "true")
    pred = check_labels(pred, "pred")
    if true.shape != pred.shape:
        raise ValueError(f"true and pred must have the same shape, got {true.shape} and {pred.shape}")
    return true, pred


def _compact(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Flat indices 0 (background), 1..n (objects in increasing label order), and n."""
    compact, n = relabel(labels, dtype=np.int64)
    return compact.ravel(), n


def _iou(true: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """IoU of every true object (rows, in label order) with every predicted one (columns).

    One bincount over joint (true, pred) indices gives every intersection; areas are its sums.
    """
    t, n_true = _compact(true)
    p, n_pred = _compact(pred)
    counts = np.bincount(t * (n_pred + 1) + p, minlength=(n_true + 1) * (n_pred + 1))
    counts = counts.reshape(n_true + 1, n_pred + 1)
    area_true = counts.sum(axis=1)[1:]
    area_pred = counts.sum(axis=0)[1:]
    inter = counts[1:, 1:]
    union = area_true[:, None] + area_pred[None, :] - inter
    return inter / np.maximum(union, 1)  # every object has area >= 1, so union >= 1


def iou_matrix(true, pred) -> np.ndarray:
    """(n_true, n_pred) IoU of labelled objects; rows and columns in increasing label order."""
    return _iou(*_check_pair(true, pred))


# ---------------------------------------------------------------------------------------------
# Matching
# ---------------------------------------------------------------------------------------------


def _check_threshold(threshold: float) -> float:
    threshold = float(threshold)
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"IoU threshold must be in [0, 1], got {threshold}")
    return threshold


def _matched_ious(iou: np.ndarray, threshold: float) -> np.ndarray:
    """IoUs of the one-to-one matched pairs (IoU > threshold)."""
    if iou.size == 0:
        return np.zeros(0)
    if threshold >= 0.5:  # IoU > 0.5 pairs are unique: no assignment needed
        return iou[iou > threshold]
    candidate = iou > threshold
    # Most matches first, then the largest total IoU: every candidate is worth more than the
    # IoU of all pairs together (each IoU <= 1, at most min(n_true, n_pred) pairs).
    weight = candidate + iou / (2 * min(iou.shape))
    rows, cols = linear_sum_assignment(weight, maximize=True)
    keep = candidate[rows, cols]
    return iou[rows[keep], cols[keep]]


def _ratio(num: int, den: int, n_true: int, n_pred: int) -> float:
    if n_true == 0 and n_pred == 0:
        return 1.0
    return num / den if den else 0.0


def _matching(iou: np.ndarray, threshold: float) -> Matching:
    n_true, n_pred = iou.shape
    matched = _matched_ious(iou, threshold)
    tp = int(matched.size)
    fp, fn = n_pred - tp, n_true - tp
    return Matching(
        threshold=threshold, n_true=n_true, n_pred=n_pred, tp=tp, fp=fp, fn=fn,
        precision=_ratio(tp, n_pred, n_true, n_pred),
        recall=_ratio(tp, n_true, n_true, n_pred),
        f1=_ratio(2 * tp, n_true + n_pred, n_true, n_pred),
        mean_matched_iou=float(matched.mean()) if tp else 0.0,
        ap=_ratio(tp, tp + fp + fn, n_true, n_pred),
    )


def match(true, pred, threshold: float = 0.5) -> Matching:
    """Match true and predicted objects one to one at IoU > threshold."""
    return _matching(iou_matrix(true, pred), _check_threshold(threshold))


def average_precisions(true, pred, thresholds=DSB_THRESHOLDS) -> dict[float, float]:
    """{threshold: tp / (tp + fp + fn)} for each threshold, from one IoU matrix."""
    thresholds = [_check_threshold(t) for t in thresholds]
    iou = iou_matrix(true, pred)
    return {t: _matching(iou, t).ap for t in thresholds}


def dsb_score(true, pred) -> float:
    """The DSB2018 score of one image: mean precision over IoU thresholds 0.50 ... 0.95."""
    return float(np.mean(list(average_precisions(true, pred).values())))


# ---------------------------------------------------------------------------------------------
# Foreground overlap, one row per image, tables
# ---------------------------------------------------------------------------------------------


def _foreground(true: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    t, p = true > 0, pred > 0
    inter = int(np.count_nonzero(t & p))
    total = int(np.count_nonzero(t)) + int(np.count_nonzero(p))
    if total == 0:
        return 1.0, 1.0
    return 2 * inter / total, inter / (total - inter)


def foreground_scores(true, pred) -> tuple[float, float]:
    """(dice, iou) of the binary foreground masks (label > 0); (1.0, 1.0) when both are empty."""
    return _foreground(*_check_pair(true, pred))


def score_image(true, pred) -> dict:
    """Every SCORE_COLUMNS value for one image, as one flat row (a dict in column order)."""
    true, pred = _check_pair(true, pred)
    dice, fg_iou = _foreground(true, pred)
    iou = _iou(true, pred)
    at = {t: _matching(iou, t) for t in DSB_THRESHOLDS}
    half = at[0.5]
    row = {"dice": dice, "iou": fg_iou}
    row.update({f"ap_{_threshold_name(t)}": m.ap for t, m in at.items()})
    row.update({
        "dsb_score": float(np.mean([m.ap for m in at.values()])),
        "n_true": half.n_true, "n_pred": half.n_pred,
        "tp_50": half.tp, "fp_50": half.fp, "fn_50": half.fn,
        "mean_matched_iou_50": half.mean_matched_iou,
    })
    return row


def summarize(rows: pd.DataFrame, by: str | None = "modality") -> pd.DataFrame:
    """Mean of every score column per group of `by`, then an `overall` row over all images.

    Columns: `by`, n_images, then the SCORE_COLUMNS present in `rows` (others are ignored).
    With by=None there is only the overall row.
    """
    scores = [c for c in SCORE_COLUMNS if c in rows.columns]
    if not scores:
        raise ValueError(f"no score columns in the table (expected some of {list(SCORE_COLUMNS)})")
    if len(rows) == 0:
        raise ValueError("the table has no rows: nothing to summarize")
    key = by or "group"
    if by is not None and by not in rows.columns:
        raise ValueError(f"cannot group by {by!r}: no such column (columns: {list(rows.columns)})")
    parts = []
    if by is not None:
        groups = rows.groupby(by, sort=True, dropna=False)
        per_group = groups[scores].mean()
        per_group.insert(0, "n_images", groups.size())
        parts.append(per_group.reset_index())
    overall = rows[scores].mean().to_frame().T
    overall.insert(0, "n_images", len(rows))
    overall.insert(0, key, "overall")
    parts.append(overall)
    table = pd.concat(parts, ignore_index=True)
    table["n_images"] = table["n_images"].astype(int)
    return table
