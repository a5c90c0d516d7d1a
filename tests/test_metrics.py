"""Matching scores on hand-made label images, whose right answers can be counted by hand."""

import time

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage as ndi

from conftest import SHARED_DSB, pick_ids
from nucleiseg.io import read_image
from nucleiseg.labels import masks_to_labels
from nucleiseg.metrics import (
    DSB_THRESHOLDS,
    SCORE_COLUMNS,
    Matching,
    average_precisions,
    dsb_score,
    foreground_scores,
    iou_matrix,
    match,
    score_image,
    summarize,
)
from nucleiseg.synthetic import make_nuclei


def squares(shape, *boxes) -> np.ndarray:
    """A label image: boxes[k] = (row0, row1, col0, col1, label), half-open ranges."""
    labels = np.zeros(shape, np.uint16)
    for r0, r1, c0, c1, value in boxes:
        labels[r0:r1, c0:c1] = value
    return labels


def four_nuclei() -> np.ndarray:
    """Four separate 3x3 nuclei on a 10x10 image."""
    return squares((10, 10), (0, 3, 0, 3, 1), (0, 3, 5, 8, 2), (5, 8, 0, 3, 3), (5, 8, 5, 8, 4))


# ---------------------------------------------------------------------------------------------
# Thresholds, IoU matrix
# ---------------------------------------------------------------------------------------------


def test_dsb_thresholds_are_the_ten_exact_values():
    assert DSB_THRESHOLDS == (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)


def test_iou_matrix_counts_overlaps_in_label_order():
    true = squares((6, 6), (0, 4, 0, 4, 1))  # 16 px
    pred = squares((6, 6), (0, 4, 0, 3, 1), (0, 4, 3, 4, 2), (5, 6, 5, 6, 3))  # 12, 4, 1 px
    np.testing.assert_allclose(iou_matrix(true, pred), [[12 / 16, 4 / 16, 0.0]])


def test_label_values_need_not_be_sequential():
    true = squares((6, 6), (0, 2, 0, 2, 300), (3, 6, 3, 6, 7))
    pred = squares((6, 6), (0, 2, 0, 2, 2), (3, 6, 3, 5, 9))  # the 9 is 6 of the 7's 9 px
    # rows: labels 7, 300; columns: labels 2, 9
    np.testing.assert_allclose(iou_matrix(true, pred), [[0.0, 6 / 9], [1.0, 0.0]])
    m = match(true, pred)
    assert (m.tp, m.fp, m.fn) == (2, 0, 0)
    assert m.mean_matched_iou == pytest.approx((1 + 6 / 9) / 2)


def test_huge_label_values_in_uint32():
    true = np.zeros((6, 6), np.uint32)  # too large a label for a lookup table by value
    true[0:2, 0:2] = 4_000_000_000
    true[3:6, 3:6] = 1
    pred = (true > 0).astype(np.int32) * 5
    np.testing.assert_allclose(iou_matrix(true, pred), [[9 / 13], [4 / 13]])


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int32, np.uint64])
def test_any_integer_dtype(dtype):
    true = four_nuclei().astype(dtype)
    assert match(true, four_nuclei()).tp == 4


def test_iou_matrix_of_empty_images_has_no_rows_or_columns():
    assert iou_matrix(np.zeros((3, 3), int), four_nuclei()[:3, :3]).shape == (0, 1)
    assert iou_matrix(np.zeros((3, 3), int), np.zeros((3, 3), int)).shape == (0, 0)


# ---------------------------------------------------------------------------------------------
# Matching: the error cases of instance segmentation
# ---------------------------------------------------------------------------------------------


def test_perfect_prediction_scores_one_everywhere():
    true = four_nuclei()
    pred = np.where(true > 0, true + 10, 0)  # other numbers, same objects
    m = match(true, pred)
    assert m == Matching(threshold=0.5, n_true=4, n_pred=4, tp=4, fp=0, fn=0, precision=1.0,
                         recall=1.0, f1=1.0, mean_matched_iou=1.0, ap=1.0)
    assert set(average_precisions(true, pred).values()) == {1.0}
    assert dsb_score(true, pred) == 1.0
    assert foreground_scores(true, pred) == (1.0, 1.0)


def test_one_nucleus_split_in_two_unequal_parts():
    true = squares((6, 6), (0, 4, 0, 4, 1))  # 16 px
    pred = squares((6, 6), (0, 4, 0, 3, 1), (0, 4, 3, 4, 2))  # IoU 12/16 = 0.75 and 4/16
    m = match(true, pred, 0.5)
    assert (m.tp, m.fp, m.fn) == (1, 1, 0)
    assert (m.precision, m.recall, m.ap) == (0.5, 1.0, 0.5)
    assert m.f1 == pytest.approx(2 / 3)
    assert m.mean_matched_iou == 0.75
    aps = average_precisions(true, pred)
    assert [aps[t] for t in DSB_THRESHOLDS] == [0.5] * 5 + [0.0] * 5  # 0.75 is not > 0.75
    assert dsb_score(true, pred) == pytest.approx(0.25)
    assert foreground_scores(true, pred) == (1.0, 1.0)  # the foreground is perfect


def test_one_nucleus_split_in_halves_matches_nothing():
    true = squares((6, 6), (0, 4, 0, 4, 1))
    pred = squares((6, 6), (0, 4, 0, 2, 1), (0, 4, 2, 4, 2))  # IoU 8/16 = 0.5 each
    m = match(true, pred)
    assert (m.tp, m.fp, m.fn, m.ap) == (0, 2, 1, 0.0)
    assert m.mean_matched_iou == 0.0


def test_two_touching_nuclei_merged_into_one():
    true = squares((3, 6), (0, 3, 0, 4, 1), (0, 3, 4, 6, 2))  # 12 px and 6 px, touching
    pred = squares((3, 6), (0, 3, 0, 6, 1))  # IoU 12/18 and 6/18
    m = match(true, pred)
    assert (m.tp, m.fp, m.fn) == (1, 0, 1)
    assert (m.precision, m.recall, m.ap) == (1.0, 0.5, 0.5)
    assert m.mean_matched_iou == pytest.approx(2 / 3)
    aps = average_precisions(true, pred)
    assert [aps[t] for t in DSB_THRESHOLDS] == [0.5] * 4 + [0.0] * 6  # 0.667 > 0.65, not > 0.7
    assert dsb_score(true, pred) == pytest.approx(0.2)


def test_one_missed_nucleus():
    true = four_nuclei()
    pred = np.where(true == 4, 0, true)
    m = match(true, pred)
    assert (m.tp, m.fp, m.fn) == (3, 0, 1)
    assert (m.precision, m.recall, m.ap) == (1.0, 0.75, 0.75)
    assert m.f1 == pytest.approx(6 / 7)
    assert dsb_score(true, pred) == pytest.approx(0.75)
    dice, iou = foreground_scores(true, pred)
    assert (dice, iou) == (pytest.approx(2 * 27 / 63), pytest.approx(27 / 36))


def test_one_false_positive():
    true = four_nuclei()
    pred = true.copy()
    pred[9, 9] = 5
    m = match(true, pred)
    assert (m.tp, m.fp, m.fn) == (4, 1, 0)
    assert (m.precision, m.recall, m.ap) == (0.8, 1.0, 0.8)


def test_iou_exactly_at_the_threshold_does_not_match():
    true = squares((6, 6), (0, 4, 0, 4, 1))  # 16 px
    pred = squares((6, 6), (1, 3, 1, 3, 1))  # 4 px inside: IoU exactly 0.25
    assert match(true, pred, 0.25).tp == 0
    assert match(true, pred, 0.2).tp == 1
    pred = squares((6, 6), (0, 4, 0, 3, 1))  # IoU exactly 0.75, an exact float
    assert match(true, pred, 0.75).tp == 0
    assert match(true, pred, 0.7).tp == 1


def test_low_threshold_uses_an_optimal_one_to_one_assignment():
    # One row of pixels: true A = [0, 10), B = [10, 20); pred Y = [0, 3), X = [3, 15).
    # IoU(A, X) = 7/15, IoU(A, Y) = 3/10, IoU(B, X) = 5/17. Greedy (best IoU first) pairs A with
    # X and leaves B and Y unmatched; the optimum pairs A-Y and B-X.
    true = squares((1, 20), (0, 1, 0, 10, 1), (0, 1, 10, 20, 2))
    pred = squares((1, 20), (0, 1, 0, 3, 1), (0, 1, 3, 15, 2))
    m = match(true, pred, 0.25)
    assert (m.tp, m.fp, m.fn) == (2, 0, 0)
    assert m.mean_matched_iou == pytest.approx((3 / 10 + 5 / 17) / 2)
    assert match(true, pred, 0.0).tp == 2


def test_both_empty_is_perfect():
    empty = np.zeros((5, 5), np.uint8)
    m = match(empty, empty)
    assert (m.tp, m.fp, m.fn) == (0, 0, 0)
    assert (m.precision, m.recall, m.f1, m.ap) == (1.0, 1.0, 1.0, 1.0)
    assert dsb_score(empty, empty) == 1.0
    assert foreground_scores(empty, empty) == (1.0, 1.0)


def test_one_side_empty_scores_zero():
    empty = np.zeros((10, 10), np.uint8)
    for true, pred in [(empty, four_nuclei()), (four_nuclei(), empty)]:
        m = match(true, pred)
        assert (m.precision, m.recall, m.f1, m.ap) == (0.0, 0.0, 0.0, 0.0)
        assert dsb_score(true, pred) == 0.0
        assert foreground_scores(true, pred) == (0.0, 0.0)
    assert match(empty, four_nuclei()).fp == 4
    assert match(four_nuclei(), empty).fn == 4


def test_dsb_score_is_the_mean_of_the_ten_precisions():
    true = make_nuclei((128, 128), n_nuclei=15, touching_pairs=3, seed=1).labels
    pred = ndi.shift(true, (1, 2), order=0)  # off by a few pixels: IoUs spread over 0.5 to 0.9
    aps = average_precisions(true, pred)
    assert list(aps) == list(DSB_THRESHOLDS)
    assert len(set(aps.values())) > 3
    assert dsb_score(true, pred) == pytest.approx(np.mean(list(aps.values())))
    row = score_image(true, pred)
    assert row["dsb_score"] == pytest.approx(np.mean([row[f"ap_{k}"] for k in range(50, 100, 5)]))


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("true, pred, message", [
    (np.zeros((3, 3), int), np.zeros((3, 4), int), "same shape"),
    (np.zeros((3, 3), float), np.zeros((3, 3), int), "integer dtype"),
    (np.zeros((3, 3), bool), np.zeros((3, 3), int), "integer dtype"),
    (np.zeros((3, 3, 1), int), np.zeros((3, 3, 1), int), "2D"),
    (np.zeros((3, 3), int), np.full((3, 3), -1), "negative"),
])
def test_bad_inputs_say_what_is_wrong(true, pred, message):
    for function in (iou_matrix, match, dsb_score, foreground_scores, score_image):
        with pytest.raises(ValueError, match=message):
            function(true, pred)


def test_threshold_outside_zero_one_is_refused():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        match(four_nuclei(), four_nuclei(), 1.5)


# ---------------------------------------------------------------------------------------------
# One row per image, tables
# ---------------------------------------------------------------------------------------------


def test_score_image_row_has_every_column_in_order():
    true = four_nuclei()
    pred = np.where(true == 4, 0, true)
    row = score_image(true, pred)
    assert list(row) == list(SCORE_COLUMNS)
    assert list(row)[2:12] == [f"ap_{k}" for k in range(50, 100, 5)]
    assert (row["n_true"], row["n_pred"], row["tp_50"], row["fp_50"], row["fn_50"]) == (4, 3, 3, 0, 1)
    assert row["ap_50"] == row["ap_95"] == row["dsb_score"] == 0.75
    assert row["mean_matched_iou_50"] == 1.0


def test_summarize_means_per_group_and_overall():
    rows = pd.DataFrame({
        "id": ["a", "b", "c"],
        "modality": ["stained", "fluorescence", "fluorescence"],
        "dsb_score": [0.2, 0.6, 0.8],
        "ap_50": [0.5, 1.0, 0.0],
        "n_true": [10, 20, 40],
    })
    table = summarize(rows)
    assert list(table.columns) == ["modality", "n_images", "ap_50", "dsb_score", "n_true"]
    assert table["modality"].tolist() == ["fluorescence", "stained", "overall"]
    assert table["n_images"].tolist() == [2, 1, 3]
    np.testing.assert_allclose(table["dsb_score"], [0.7, 0.2, 1.6 / 3])
    np.testing.assert_allclose(table["ap_50"], [0.5, 0.5, 0.5])
    np.testing.assert_allclose(table["n_true"], [30, 10, 70 / 3])
    overall = summarize(rows, by=None)
    assert len(overall) == 1 and overall["n_images"].item() == 3


def test_summarize_refuses_a_missing_group_column():
    with pytest.raises(ValueError, match="no such column"):
        summarize(pd.DataFrame({"dsb_score": [1.0]}), by="modality")


def test_score_image_is_fast_on_a_large_crowded_image():
    """A 1024x1024 image with ~300 nuclei: one bincount, not one mask per object."""
    true = make_nuclei((1024, 1024), n_nuclei=300, radius=(8, 14), seed=3).labels
    pred = ndi.shift(true, (1, 1), order=0)
    score_image(true, pred)  # warm up
    start = time.perf_counter()
    score_image(true, pred)
    assert time.perf_counter() - start < 0.5  # ~0.02 s on a laptop; generous for CI


# ---------------------------------------------------------------------------------------------
# A real DSB2018 label image
# ---------------------------------------------------------------------------------------------


def _real_labels(sample_id: str) -> np.ndarray:
    masks = sorted((SHARED_DSB / "stage1_train" / sample_id / "masks").glob("*.png"))
    labels, _ = masks_to_labels([read_image(p) > 0 for p in masks])
    return labels


def _erode_each(labels: np.ndarray) -> np.ndarray:
    """Every object shrunk by one pixel (4-neighbourhood), objects kept apart."""
    cross = ndi.generate_binary_structure(2, 1)
    same = (ndi.minimum_filter(labels, footprint=cross, mode="nearest") ==
            ndi.maximum_filter(labels, footprint=cross, mode="nearest"))
    return np.where(same, labels, 0)


def test_real_labels_against_themselves_and_eroded(dsb_meta):
    sample_id = pick_ids(dsb_meta, {"fluorescence_gray": 1})[0]
    true = _real_labels(sample_id)
    row = score_image(true, true)
    assert row["dsb_score"] == row["dice"] == 1.0
    assert row["n_true"] == len(np.unique(true)) - 1 > 5

    eroded = score_image(true, _erode_each(true))
    assert eroded["dice"] < 1 and eroded["dsb_score"] < 1
    aps = [eroded[f"ap_{k}"] for k in range(50, 100, 5)]
    assert aps == sorted(aps, reverse=True)  # never better at a stricter threshold
    assert eroded["ap_50"] >= eroded["ap_75"] >= eroded["ap_95"]
    assert eroded["ap_95"] < eroded["ap_50"]
