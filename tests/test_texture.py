"""Haralick texture (MeasureTexture's columns) on nuclei with known answers; tests/
test_cellprofiler.py compares it with CellProfiler itself."""

from __future__ import annotations

import numpy as np
import pytest

from nucleiseg.morphometrics import measure_labels
from nucleiseg.morphometrics.profile_columns import IMAGE
from nucleiseg.morphometrics.texture import DIRECTIONS, FEATURES, GREY_LEVELS, TEXTURE_SCALE


def _name(feature: str, direction: int) -> str:
    return f"Texture_{feature}_{IMAGE}_{TEXTURE_SCALE}_{direction:02d}_{GREY_LEVELS}"


def _texture(labels, intensity, **kwargs):
    table = measure_labels(labels, intensity, features=["texture"], **kwargs)
    return table.filter(like="Texture_")


@pytest.fixture
def stripes() -> tuple[np.ndarray, np.ndarray]:
    """A 30 x 30 nucleus of vertical stripes TEXTURE_SCALE px wide, grey 100 and 200."""
    labels = np.zeros((34, 34), np.int32)
    labels[2:32, 2:32] = 1
    columns = np.arange(34) // TEXTURE_SCALE % 2
    intensity = np.broadcast_to(np.where(columns, 200, 100), labels.shape).astype(np.uint8)
    return labels, intensity


def test_stripes_contrast_across_and_correlate_along(stripes):
    row = _texture(*stripes).iloc[0]
    across, along = DIRECTIONS.index((0, 1)), DIRECTIONS.index((1, 0))
    assert row[_name("Contrast", across)] == pytest.approx(100**2)
    assert row[_name("Correlation", across)] == pytest.approx(-1)
    assert row[_name("Contrast", along)] == 0
    assert row[_name("Correlation", along)] == pytest.approx(1)
    # along the stripes a pixel meets its own grey: two equally likely cells, one bit
    assert row[_name("AngularSecondMoment", along)] == pytest.approx(0.5)
    assert row[_name("Entropy", along)] == pytest.approx(1)
    assert row[_name("InverseDifferenceMoment", along)] == pytest.approx(1)
    assert row[_name("SumAverage", along)] == pytest.approx(300)


def test_a_constant_nucleus_has_no_contrast_and_full_correlation():
    labels = np.zeros((12, 12), np.int32)
    labels[1:11, 1:11] = 1
    row = _texture(labels, np.full(labels.shape, 90, np.uint8)).iloc[0]
    for d in range(len(DIRECTIONS)):
        assert row[_name("Contrast", d)] == 0
        assert row[_name("Correlation", d)] == 1
        assert row[_name("AngularSecondMoment", d)] == 1
        assert row[_name("Entropy", d)] == 0


def test_without_pixel_pairs_every_feature_is_0():
    """A nucleus narrower than the scale has no pair in some direction (CellProfiler writes 0);
    so has one whose pixels are all grey level 0 (left out)."""
    labels = np.zeros((10, 20), np.int32)
    labels[2:4, 2:18] = 1  # two rows: no vertical pair 3 px apart
    labels[6:10, 6:10] = 2
    intensity = np.where(labels == 1, 120, 0).astype(np.uint8)
    table = _texture(labels, intensity)
    assert table.shape[1] == len(FEATURES) * len(DIRECTIONS)
    assert (table == 0).all().all()


def test_grey_levels_follow_the_full_scale(stripes):
    """16-bit data is scaled by 65535 as CellProfiler's loader does: the same image in 16 bits
    gives the same texture; a given full scale overrides the type's."""
    labels, intensity = stripes
    eight = _texture(labels, intensity)
    sixteen = _texture(labels, intensity.astype(np.uint16) * 257)
    floats = _texture(labels, intensity.astype(np.float64), full_scale=255)
    assert np.allclose(eight.to_numpy(float), sixteen.to_numpy(float))
    assert np.allclose(eight.to_numpy(float), floats.to_numpy(float))
    with pytest.raises(ValueError, match="full_scale must be a positive number"):
        _texture(labels, intensity, full_scale=0)
