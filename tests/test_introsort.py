"""NumPy 1.23's argsort replayed (introsort.py): a sorting permutation, NumPy's order where no
values tie and on short arrays (insertion sort: stable), and the same places for the elements
asked for whether or not the rest is sorted. tests/test_cellprofiler.py checks its picks
among ties against CellProfiler (on NumPy 1.23) itself."""

from __future__ import annotations

import numpy as np
import pytest

from nucleiseg.morphometrics.introsort import argsort


@pytest.fixture
def values() -> np.ndarray:
    """20,000 values with many ties (sqrt of small integers, mostly 0), as distances are."""
    rng = np.random.default_rng(7)
    found = np.sqrt(rng.integers(0, 30, 20000)).astype(np.float64)
    found[rng.random(found.size) < 0.5] = 0
    return found


def test_it_sorts(values):
    order = argsort(values)
    assert sorted(order.tolist()) == list(range(values.size))
    assert np.all(np.diff(values[order]) >= 0)


def test_without_ties_it_is_numpys_order():
    values = np.random.default_rng(3).permutation(5000).astype(np.float64)
    assert np.array_equal(argsort(values), np.argsort(values))


@pytest.mark.parametrize("size", [2, 7, 16])
def test_short_arrays_are_insertion_sorted_stably(size):
    values = np.random.default_rng(size).integers(0, 3, size).astype(np.float64)
    assert np.array_equal(argsort(values), np.argsort(values, kind="stable"))


def test_the_elements_asked_for_get_their_places_without_sorting_the_rest(values):
    needed = values == values.max()
    full, partial = argsort(values), argsort(values, needed)
    place_full, place_partial = np.empty_like(full), np.empty_like(partial)
    place_full[full] = np.arange(full.size)
    place_partial[partial] = np.arange(partial.size)
    assert np.array_equal(place_full[needed], place_partial[needed])
