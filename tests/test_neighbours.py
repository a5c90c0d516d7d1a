"""The neighbours family (MeasureObjectNeighbors' columns) on label images with known answers;
tests/test_cellprofiler.py compares it with CellProfiler itself."""

from __future__ import annotations

import numpy as np
import pytest
from nucleiseg.morphometrics import FEATURES, column_names, measure_labels
from nucleiseg.morphometrics.neighbours import NEIGHBOUR_DISTANCE, outline


def _measure(labels: np.ndarray):
    return measure_labels(labels, np.ones(labels.shape)).set_index("Label")


def _square_with_sides(k: int) -> np.ndarray:
    """A 5x5 nucleus (label 1) with k 5x5 nuclei flush against its sides (top, right, bottom,
    left), 8 px of background around everything else."""
    labels = np.zeros((30, 30), np.int32)
    labels[10:15, 10:15] = 1
    sides = [(slice(5, 10), slice(10, 15)), (slice(10, 15), slice(15, 20)),
             (slice(15, 20), slice(10, 15)), (slice(10, 15), slice(5, 10))]
    for label, side in enumerate(sides[:k], start=2):
        labels[side] = label
    return labels


@pytest.mark.parametrize("k", [0, 1, 2, 3, 4])
def test_a_nucleus_with_k_touching_neighbours(k):
    row = _measure(_square_with_sides(k)).loc[1]
    assert row["Neighbors_NumberOfNeighbors_Adjacent"] == k
    assert row["Neighbors_NumberOfNeighbors_5"] == k
    # 16 outline pixels; each flush side touches its 5, the corners shared by two sides once
    touching = {0: 0, 1: 5, 2: 9, 3: 13, 4: 16}[k]
    assert row["Neighbors_PercentTouching_Adjacent"] == pytest.approx(100 * touching / 16)


@pytest.mark.parametrize("gap, within", [(NEIGHBOUR_DISTANCE - 1, True),
                                         (NEIGHBOUR_DISTANCE, False)])
def test_within_the_distance_and_not_beyond(gap, within):
    """gap background pixels between two nuclei: their pixels are gap + 1 apart."""
    labels = np.zeros((20, 40), np.int32)
    labels[5:10, 5:10] = 1
    labels[5:10, 10 + gap:15 + gap] = 2
    table = _measure(labels)
    assert (table["Neighbors_NumberOfNeighbors_5"] == int(within)).all()
    assert (table["Neighbors_NumberOfNeighbors_Adjacent"] == 0).all()
    assert (table["Neighbors_PercentTouching_Adjacent"] == 0).all()
    # within the distance, the side facing the other nucleus is within distance + 0.5 of it
    assert (table["Neighbors_PercentTouching_5"] > 0).all() == within


def test_closest_neighbours_and_the_angle_between_them():
    """Centroids at (10, 10), (10, 20), (30, 10), labels 7, 3, 9 (not 1..n: labels come back)."""
    labels = np.zeros((40, 40), np.int32)
    for label, (r, c) in zip((7, 3, 9), [(10, 10), (10, 20), (30, 10)]):
        labels[r - 1:r + 2, c - 1:c + 2] = label
    row = _measure(labels).loc[7]
    assert row["Neighbors_FirstClosestObjectNumber_5"] == 3
    assert row["Neighbors_FirstClosestDistance_5"] == pytest.approx(10)
    assert row["Neighbors_SecondClosestObjectNumber_5"] == 9
    assert row["Neighbors_SecondClosestDistance_5"] == pytest.approx(20)
    assert row["Neighbors_AngleBetweenNeighbors_5"] == pytest.approx(90)
    assert row["Neighbors_NumberOfNeighbors_5"] == 0  # 8 px apart: not within 5


def test_two_nuclei_have_no_second_closest_and_one_has_nothing():
    labels = np.zeros((20, 20), np.int32)
    labels[2:5, 2:5] = 1
    labels[2:5, 5:8] = 2
    two = _measure(labels)
    assert (two["Neighbors_FirstClosestObjectNumber_Adjacent"] == [2, 1]).all()
    assert (two[["Neighbors_SecondClosestObjectNumber_5", "Neighbors_SecondClosestDistance_5",
                 "Neighbors_AngleBetweenNeighbors_5"]] == 0).all().all()
    labels[labels == 2] = 0
    alone = _measure(labels).filter(like="Neighbors_")
    assert (alone == 0).all().all()


def test_outline_counts_the_image_border_and_8_neighbours():
    labels = np.zeros((5, 5), np.int32)
    labels[:3, :3] = 1
    expected = np.zeros((5, 5), bool)
    expected[:3, :3] = True
    expected[1, 1] = False  # its 8 neighbours are all its own, and it is off the border
    assert (outline(labels) == expected).all()


def test_features_choose_the_families():
    labels = _square_with_sides(2)
    core = measure_labels(labels, np.ones(labels.shape), features=())
    assert not core.filter(like="Neighbors_").columns.size
    assert list(core.columns) == column_names(features=())
    full = measure_labels(labels, np.ones(labels.shape), pixel_size_um=0.5)
    assert list(full.columns) == column_names(physical=True, features=FEATURES)
    assert (full["Neighbors_FirstClosestDistance_5_um"]
            == full["Neighbors_FirstClosestDistance_5"] * 0.5).all()
    with pytest.raises(ValueError, match="unknown measurement families"):
        measure_labels(labels, np.ones(labels.shape), features=["haralick"])
