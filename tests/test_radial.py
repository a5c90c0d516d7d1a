"""The radial intensity distribution (MeasureObjectIntensityDistribution's columns) on nuclei
with known answers; tests/test_cellprofiler.py compares it with CellProfiler itself."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.draw import disk

from nucleiseg.morphometrics import measure_labels
from nucleiseg.morphometrics.profile_columns import IMAGE
from nucleiseg.morphometrics.radial import BINS, radial_stats

RINGS = range(1, BINS + 1)


def _rings(intensity: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    table = measure_labels(labels, intensity, features=["radial"])
    return {feature: np.array([table[f"RadialDistribution_{feature}_{IMAGE}_{b}of{BINS}"].iat[0]
                               for b in RINGS])
            for feature in ("FracAtD", "MeanFrac", "RadialCV")}


@pytest.fixture
def nucleus() -> np.ndarray:
    labels = np.zeros((41, 41), np.int32)
    labels[disk((20, 20), 15)] = 1
    return labels


def test_uniform_intensity_is_spread_as_the_pixels_are(nucleus):
    rings = _rings(np.full(nucleus.shape, 7.0), nucleus)
    assert rings["FracAtD"].sum() == pytest.approx(1)
    assert rings["MeanFrac"] == pytest.approx(np.ones(BINS))
    assert rings["RadialCV"] == pytest.approx(np.zeros(BINS), abs=1e-12)
    # rings of equal width hold more pixels further out
    assert np.all(np.diff(rings["FracAtD"]) > 0)


def test_a_bright_rim_puts_the_intensity_in_the_outer_ring(nucleus):
    """Intensity only in the outermost quarter of the radius (a nuclear envelope)."""
    rr, cc = np.mgrid[:41, :41]
    rim = np.hypot(rr - 20, cc - 20) > 12
    rings = _rings(np.where(rim, 100.0, 0.0), nucleus)
    assert rings["FracAtD"][0] == 0
    assert rings["FracAtD"][-1] > 0.9
    assert rings["MeanFrac"][-1] > 1 > rings["MeanFrac"][0]


def test_a_bright_centre_puts_it_in_the_inner_ring(nucleus):
    rr, cc = np.mgrid[:41, :41]
    rings = _rings(np.where(np.hypot(rr - 20, cc - 20) < 3, 100.0, 1.0), nucleus)
    assert rings["FracAtD"].argmax() == 0
    assert rings["MeanFrac"][0] > 1 > rings["MeanFrac"][-1]


def test_one_bright_side_makes_the_rings_uneven_around_the_centre(nucleus):
    intensity = np.where(np.mgrid[:41, :41][1] > 20, 10.0, 1.0)
    rings = _rings(intensity, nucleus)
    assert np.all(rings["RadialCV"] > 0.5)


def test_the_centre_is_the_pixel_farthest_from_the_edge():
    """A 5 x 5 square has one such pixel, its middle, so its rings are symmetric (RadialCV 0);
    a 4 x 4 square has four (CellProfiler's pick among them: introsort.py)."""
    labels = np.zeros((12, 12), np.int32)
    labels[1:6, 1:6] = 1
    labels[7:11, 7:11] = 2
    stats = radial_stats(labels, np.ones(labels.shape), np.array([1, 2]))
    assert stats["radial-tied"].tolist() == [False, True]
    assert all(stats[f"radial-{2 * BINS + b}"][0] == pytest.approx(0) for b in range(BINS))


def test_touching_nuclei_are_measured_apart():
    """Two nuclei side by side: each one's rings are its own (the other is its edge)."""
    labels = np.zeros((20, 30), np.int32)
    labels[5:15, 5:15] = 1
    labels[5:15, 15:25] = 2
    intensity = np.where(labels == 2, 50.0, 1.0)
    alone = labels * (labels == 1)
    together = radial_stats(labels, intensity, np.array([1, 2]))
    single = radial_stats(alone, intensity, np.array([1]))
    for k in range(3 * BINS):
        assert together[f"radial-{k}"][0] == pytest.approx(single[f"radial-{k}"][0])
