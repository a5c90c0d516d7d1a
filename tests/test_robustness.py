"""benchmarks/robustness.py: its resized copies keep each image on its truth's grid.

A nucleus a few pixels wide loses IoU at the DSB score's upper thresholds if the image it is
segmented from sits a fraction of a pixel off its truth; that is a fault of the benchmark, not of
the method it scores. Here the image is the truth's own foreground, so the two must agree on
where each nucleus is.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import ndimage as ndi

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from robustness import resized  # noqa: E402


def _disks(size=240, spacing=40, seed=1):
    """Labels of disks of radius 5-9 at jittered places, and their foreground as the image."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    labels = np.zeros((size, size), np.int32)
    centres = range(spacing // 2, size, spacing)
    for number, (cy, cx) in enumerate(((y, x) for y in centres for x in centres), start=1):
        radius, dy, dx = rng.uniform(5, 9), *rng.uniform(-3, 3, 2)
        labels[(yy - cy - dy) ** 2 + (xx - cx - dx) ** 2 < radius ** 2] = number
    return SimpleNamespace(image=(labels > 0).astype(np.float32), truth=labels)


@pytest.mark.parametrize("factor", [0.5, 0.75, 1.5, 2])
def test_a_resized_image_stays_on_its_truths_grid(factor):
    item = _disks()
    image, truth = resized(item, factor)
    assert image.shape == truth.shape
    ids = np.arange(1, truth.max() + 1)
    assert len(ids) == item.truth.max()  # no nucleus lost
    in_image = np.array(ndi.center_of_mass(image, truth, ids))
    in_truth = np.array(ndi.center_of_mass(truth > 0, truth, ids))
    # each nucleus where its truth is, on average within a 30th of a pixel (interpolating the
    # image between the pixels the truth is read at put it 0.11 pixel off at x0.5)
    assert np.abs((in_image - in_truth).mean(axis=0)).max() < 1 / 30
    # and resized as a whole, not cropped or shifted: its mean is the original's
    assert image.mean() == pytest.approx(item.image.mean(), rel=0.05)
