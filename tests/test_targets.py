import time

import numpy as np
import pytest
from scipy import ndimage as ndi

from nucleiseg.synthetic import make_nuclei
from nucleiseg.errors import ConfigError
from nucleiseg.modelconfig import HEADS, n_maps
from nucleiseg.targets import contour_map, make_targets, make_targets_batch, touch_map


def two_touching_squares() -> np.ndarray:
    labels = np.zeros((12, 20), np.uint16)
    labels[2:10, 2:10] = 1
    labels[2:10, 10:18] = 2  # column 9 of label 1 touches column 10 of label 2
    return labels


def test_shared_border_is_contour_on_both_sides():
    labels = two_touching_squares()
    contour = contour_map(labels, width=2)
    assert contour[2:10, 8:12].all()  # two columns on each side of the shared border
    assert contour[labels == 0].sum() == 0  # drawn inside the nuclei only
    interior = (labels > 0) & (contour == 0)
    parts, n = ndi.label(interior, structure=np.ones((3, 3)))
    assert n == 2  # apart even under 8-connectivity
    assert set(np.unique(labels[parts == 1])) != set(np.unique(labels[parts == 2]))


def test_touch_band_is_the_contour_between_two_nuclei_only():
    """Within `width` steps of another nucleus: two columns on each side of the shared border;
    nothing along the background, nothing on a nucleus alone, inside the contour band."""
    labels = np.zeros((12, 26), np.uint16)
    labels[2:10, 2:10] = 1
    labels[2:10, 10:18] = 2
    labels[3:8, 20:25] = 3  # alone: two background columns from label 2
    for width in (1, 2):
        touch = touch_map(labels, width)
        expected = np.zeros(labels.shape, bool)
        expected[2:10, 10 - width:10 + width] = True
        np.testing.assert_array_equal(touch, expected)
        assert touch.dtype == np.float32 and (contour_map(labels, width)[touch > 0] == 1).all()
    assert not touch_map(np.zeros((5, 5), np.uint16)).any()
    assert not touch_map(labels > 0).any()  # a mask is objects that do not touch
    targets = make_targets(labels, touch=True)
    assert targets.shape == labels.shape + (3,)
    np.testing.assert_array_equal(targets[..., 2], touch_map(labels))
    assert make_targets_batch(labels[None], touch=True).shape == (1,) + labels.shape + (3,)
    with pytest.raises(ValueError, match="touch band weighs the contour head"):
        make_targets(labels, heads="mask", touch=True)


def test_width_sets_the_band_thickness():
    labels = np.zeros((15, 15), np.uint16)
    labels[1:14, 1:14] = 1  # 13x13
    for width in (1, 2, 3):
        interior = (labels > 0) & (contour_map(labels, width) == 0)
        side = 13 - 2 * width
        assert interior.sum() == side * side
    with pytest.raises(ValueError, match="width"):
        contour_map(labels, width=0)


def test_one_pixel_and_thin_nuclei_are_all_contour():
    labels = np.zeros((7, 9), np.uint16)
    labels[1, 1] = 1
    labels[3:6, 2:8] = 2  # 3 rows: thinner than 2 * width
    contour = contour_map(labels, width=2)
    np.testing.assert_array_equal(contour, (labels > 0).astype(np.float32))


def test_image_edge_is_not_a_boundary():
    """A nucleus cut by the tile edge gets no contour along the cut."""
    labels = np.zeros((10, 10), np.uint16)
    labels[:, :6] = 1
    contour = contour_map(labels, width=1)
    assert contour[:, 5].all() and contour[:, :5].sum() == 0


def test_empty_labels_give_zeros():
    targets = make_targets(np.zeros((5, 7), np.uint16))
    assert targets.shape == (5, 7, 2) and targets.dtype == np.float32
    assert not targets.any()


def test_channels_shapes_and_dtypes():
    labels = two_touching_squares()
    both = make_targets(labels, heads="contour")
    assert both.shape == labels.shape + (2,) and both.dtype == np.float32
    np.testing.assert_array_equal(both[..., 0], labels > 0)
    np.testing.assert_array_equal(both[..., 1], contour_map(labels))
    mask = make_targets(labels, heads="mask")
    assert mask.shape == labels.shape + (1,)
    np.testing.assert_array_equal(mask[..., 0], both[..., 0])
    assert [n_maps(h) for h in HEADS] == [1, 2]


def test_batch_matches_one_by_one():
    batch = np.stack([make_nuclei((32, 40), 3, seed=s).labels for s in range(3)])
    targets = make_targets_batch(batch, heads="contour", contour_width=1)
    assert targets.shape == (3, 32, 40, 2) and targets.dtype == np.float32
    for one, labels in zip(targets, batch):
        np.testing.assert_array_equal(one, make_targets(labels, contour_width=1))
    assert make_targets_batch(batch, heads="mask").shape == (3, 32, 40, 1)


def test_bad_inputs_are_rejected():
    with pytest.raises(ConfigError, match="heads"):
        make_targets(np.zeros((4, 4), np.uint16), heads="edges")
    with pytest.raises(ValueError, match="2D label image|3D label image"):
        make_targets(np.zeros((2, 4, 4), np.uint16))
    with pytest.raises(ValueError, match="2D label image|3D label image"):
        make_targets_batch(np.zeros((4, 4), np.uint16))
    with pytest.raises(ValueError, match="integer"):
        make_targets(np.zeros((4, 4), np.float32))


def test_fast_enough_for_on_the_fly_targets():
    tile = make_nuclei((256, 256), 100, radius=(4, 8), seed=1).labels
    big = make_nuclei((1024, 1024), 300, seed=1).labels
    contour_map(tile)
    start = time.perf_counter()
    for _ in range(10):
        contour_map(tile)
    assert (time.perf_counter() - start) / 10 < 0.01
    start = time.perf_counter()
    contour_map(big)
    assert time.perf_counter() - start < 0.2


def test_real_dsb_masks_separate_into_their_nuclei(dsb_meta):
    """On hand-drawn DSB2018 masks, nuclei with an interior keep exactly one interior each."""
    from conftest import SHARED_DSB, pick_ids

    from nucleiseg.io import read_image
    from nucleiseg.labels import masks_to_labels

    sample_id = pick_ids(dsb_meta, {"fluorescence_gray": 1})[0]
    paths = sorted((SHARED_DSB / "stage1_train" / sample_id / "masks").glob("*.png"))
    labels, _ = masks_to_labels([read_image(p) > 0 for p in paths])
    contour = contour_map(labels, width=2)
    interior = (labels > 0) & (contour == 0)
    parts, n = ndi.label(interior, structure=np.ones((3, 3)))
    owners = ndi.labeled_comprehension(labels, parts, np.arange(1, n + 1),
                                       lambda v: len(np.unique(v)), int, 0)
    assert (owners == 1).all()  # no interior spans two nuclei
    assert n >= 0.8 * len(paths)
