"""Zernike shape features and centrosome's hull and enclosing circle, on shapes with known
answers; tests/test_cellprofiler.py compares them with CellProfiler itself."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.draw import disk, ellipse

from nucleiseg.morphometrics import measure_labels
from nucleiseg.morphometrics.enclosing_circle import convex_hulls, enclosing_circles
from nucleiseg.morphometrics.zernike import INDEXES


def _zernike(labels: np.ndarray) -> dict[tuple[int, int], np.ndarray]:
    table = measure_labels(labels, np.ones(labels.shape), features=["zernike"])
    return {(n, m): table[f"AreaShape_Zernike_{n}_{m}"].to_numpy() for n, m in INDEXES}


def test_indexes_are_cellprofilers_up_to_degree_9():
    assert len(INDEXES) == 30
    assert all((n - m) % 2 == 0 and 0 <= m <= n <= 9 for n, m in INDEXES)


def test_a_disk_has_only_rotation_symmetric_moments():
    """A disk centred on a pixel is symmetric under quarter turns: every moment with m not a
    multiple of 4 sums to 0; Zernike_0_0 is its area over the circle's, about 1."""
    labels = np.zeros((41, 41), np.int32)
    labels[disk((20, 20), 12)] = 1
    z = _zernike(labels)
    assert z[0, 0][0] == pytest.approx(1, abs=0.03)
    for (n, m), value in z.items():
        if m % 4:
            assert value[0] < 1e-12, (n, m)
        elif n:
            assert value[0] < z[0, 0][0] / 10, (n, m)


def test_two_pixels_by_hand():
    """Two pixels side by side: the circle through both has radius 0.5, so they lie at x = +-1
    on it: Z_0_0 = |1 + 1| / (pi 0.25), Z_1_1 = |i - i| = 0, Z_2_2 = |(-1) + (-1)| / (pi 0.25)."""
    labels = np.zeros((3, 4), np.int32)
    labels[1, 1:3] = 1
    z = _zernike(labels)
    assert z[0, 0][0] == pytest.approx(8 / np.pi)
    assert z[1, 1][0] == pytest.approx(0, abs=1e-12)
    assert z[2, 0][0] == pytest.approx(8 / np.pi)  # R_2^0(1) = 2 - 1
    assert z[2, 2][0] == pytest.approx(8 / np.pi)


def test_a_single_pixel_has_no_circle_to_scale_by():
    labels = np.zeros((3, 3), np.int32)
    labels[1, 1] = 1
    assert all(np.isnan(v[0]) for v in _zernike(labels).values())


@pytest.mark.parametrize("turn", [np.rot90, np.fliplr, np.flipud, np.transpose])
def test_magnitudes_do_not_change_when_the_nucleus_turns(turn):
    labels = np.zeros((40, 40), np.int32)
    labels[ellipse(20, 18, 14, 6, rotation=0.4)] = 1
    turned = np.ascontiguousarray(turn(labels))
    before, after = _zernike(labels), _zernike(turned)
    for index in INDEXES:
        assert after[index][0] == pytest.approx(before[index][0], rel=1e-9, abs=1e-12)


def test_hull_starts_top_left_and_runs_counter_clockwise():
    """centrosome's order: the leftmost column's topmost pixel, the lower envelope (smallest
    rows) to the right, then back along the largest rows; collinear pixels are no vertices."""
    labels = np.zeros((6, 6), np.int32)
    labels[1:4, 1:4] = 1  # a square: its corners
    labels[4, 2] = 2  # a single pixel: itself
    labels[5, 1:5] = 3  # a line: its ends
    points, counts = convex_hulls(labels, np.array([1, 2, 3]))
    assert counts.tolist() == [4, 1, 2]
    assert points.tolist() == [[1, 1], [1, 3], [3, 3], [3, 1], [4, 2], [5, 1], [5, 4]]
    centres, radii, _ = enclosing_circles(points, counts)
    assert centres.tolist() == [[2, 2], [4, 2], [5, 2.5]]
    assert radii.tolist() == pytest.approx([np.sqrt(2), 0, 1.5])


def test_enclosing_circle_of_a_triangle_is_its_circumcircle():
    """A right triangle's circumcircle has the hypotenuse as diameter; an acute one's passes
    through all three corners."""
    points = np.array([[0, 0], [0, 6], [3, 3]])  # acute (isosceles, 90 degrees at (3, 3))
    centres, radii, _ = enclosing_circles(points, np.array([3]))
    assert centres[0].tolist() == pytest.approx([0, 3])
    assert radii[0] == pytest.approx(3)
    points = np.array([[0, 0], [4, 8], [8, 2]])
    centres, radii, _ = enclosing_circles(points, np.array([3]))
    distances = np.hypot(*(points - centres[0]).T)
    assert distances == pytest.approx([radii[0]] * 3)
