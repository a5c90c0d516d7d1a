"""The synthetic generator: its truth must be exact, since other tests measure against it."""

from __future__ import annotations

import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.draw import ellipse
from skimage.measure import regionprops

from nucleiseg.errors import ConfigError
from nucleiseg.labels import EIGHT, FOUR
from nucleiseg.manifest import Manifest
from nucleiseg.synthetic import (
    TRUTH_COLUMNS,
    dataset_sample,
    make_nuclei,
    make_synthetic_dataset,
)


def neighbours(labels: np.ndarray, label: int, structure=EIGHT) -> set[int]:
    """Labels other than `label` and 0 within one pixel of it."""
    mask = labels == label
    ring = ndi.binary_dilation(mask, structure) & ~mask
    return set(np.unique(labels[ring]).tolist()) - {0}


def angle_difference(a: float, b: float) -> float:
    """Orientations are axes: pi apart is the same orientation."""
    d = (a - b) % np.pi
    return min(d, np.pi - d)


# ---------------------------------------------------------------------------------------------
# Labels and truth table
# ---------------------------------------------------------------------------------------------


def test_labels_are_exact_and_match_the_truth_table():
    s = make_nuclei(shape=(160, 160), n_nuclei=15, radius=(6, 10), aspect=(1.0, 2.2), seed=1)
    assert s.labels.dtype == np.uint16 and s.labels.shape == (160, 160)
    assert list(s.nuclei.columns) == list(TRUTH_COLUMNS)
    assert s.n_nuclei == 15
    assert sorted(np.unique(s.labels)) == list(range(16))
    counts = np.bincount(s.labels.ravel(), minlength=16)
    for row in s.nuclei.itertuples():
        assert counts[row.label] == row.area
        assert row.a >= row.b > 0
        assert -np.pi / 2 <= row.orientation <= np.pi / 2
    assert (s.labels > 0).sum() == s.nuclei["area"].sum()  # no pixel claimed twice

    props = {p.label: p for p in regionprops(s.labels)}
    for row in s.nuclei.itertuples():
        p = props[row.label]
        assert p.centroid == pytest.approx((row.y, row.x), abs=0.5)
        assert p.axis_major_length / 2 == pytest.approx(row.a, abs=0.5 + 0.05 * row.a)
        assert p.axis_minor_length / 2 == pytest.approx(row.b, abs=0.5 + 0.05 * row.b)
        assert p.area == pytest.approx(np.pi * row.a * row.b, rel=0.15)
        if row.a / row.b > 1.3:  # orientation of a near-circle is meaningless
            assert angle_difference(p.orientation, row.orientation) < 0.12


def test_nuclei_lie_inside_the_image_and_apart():
    s = make_nuclei(shape=(96, 128), n_nuclei=20, radius=(5, 8), seed=2)
    assert s.n_nuclei == 20 and s.pairs == ()
    for row in s.nuclei.itertuples():  # the whole ellipse was drawn: none is cut by the edge
        rr, cc = ellipse(row.y, row.x, row.a, row.b, rotation=row.orientation)
        assert len(rr) == row.area
        assert rr.min() >= 0 and cc.min() >= 0 and rr.max() < 96 and cc.max() < 128
        assert (s.labels[rr, cc] == row.label).all()
    for label in s.nuclei["label"]:
        assert neighbours(s.labels, label) == set()
    assert (s.nuclei["partner"] == 0).all()


def test_touching_pairs_touch_without_overlap_and_nothing_else_touches():
    s = make_nuclei(shape=(160, 160), n_nuclei=16, touching_pairs=5, radius=(6, 10), seed=3)
    assert s.n_nuclei == 16
    assert len(s.pairs) == 5
    partner = dict(zip(s.nuclei["label"], s.nuclei["partner"]))
    counts = np.bincount(s.labels.ravel(), minlength=17)
    for a, b in s.pairs:
        assert partner[a] == b and partner[b] == a
        # share a boundary: some pixel of b is 4-adjacent to a pixel of a
        assert (ndi.binary_dilation(s.labels == a, FOUR) & (s.labels == b)).any()
        # both kept every pixel they were drawn with: nothing was painted over
        area = s.nuclei.set_index("label")["area"]
        assert counts[a] == area[a] and counts[b] == area[b]
    for label in s.nuclei["label"]:
        expected = {partner[label]} - {0}
        assert neighbours(s.labels, label) == expected
    assert (s.nuclei["partner"] > 0).sum() == 10


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------


def test_8_bit_fluorescence_is_bright_nuclei_on_dark():
    s = make_nuclei(shape=(128, 128), n_nuclei=12, modality="fluorescence", bit_depth=8, seed=4)
    assert s.image.dtype == np.uint8 and s.image.shape == (128, 128)
    inside, outside = s.image[s.labels > 0], s.image[s.labels == 0]
    assert np.median(outside) < 30
    assert np.median(inside) > np.median(outside) + 40


def test_16_bit_uses_a_camera_like_range_not_8_bit_times_257():
    s = make_nuclei(shape=(128, 128), n_nuclei=12, modality="fluorescence", bit_depth=16, seed=4)
    assert s.image.dtype == np.uint16
    background = np.median(s.image[s.labels == 0])
    assert 50 < background < 500  # camera offset
    assert 1000 < np.median(s.image[s.labels > 0]) < 6000
    assert s.image.max() < 20000
    assert len(np.unique(s.image)) > 1000  # a real range of values, not 256 levels spread out
    assert not np.all(s.image % 257 == 0)


@pytest.mark.parametrize("bit_depth", [8, 16])
def test_brightfield_has_dark_nuclei_on_a_bright_background(bit_depth):
    s = make_nuclei(shape=(128, 128), n_nuclei=12, modality="brightfield", bit_depth=bit_depth,
                    seed=5)
    inside = np.median(s.image[s.labels > 0])
    outside = np.median(s.image[s.labels == 0])
    full = 255 if bit_depth == 8 else 4000
    assert s.image.dtype == (np.uint8 if bit_depth == 8 else np.uint16)
    assert outside > 0.7 * full
    assert inside < 0.75 * outside


def test_stained_is_rgb_with_purple_blue_nuclei_on_a_light_pink_background():
    s = make_nuclei(shape=(128, 128), n_nuclei=12, modality="stained", seed=6)
    assert s.image.dtype == np.uint8 and s.image.shape == (128, 128, 3)
    r_in, g_in, b_in = np.median(s.image[s.labels > 0], axis=0)
    r_out, g_out, b_out = np.median(s.image[s.labels == 0], axis=0)
    assert min(r_out, g_out, b_out) > 170  # light
    assert r_out > g_out  # eosin: pink
    assert b_in > r_in > g_in  # hematoxylin: purple-blue
    assert r_in < r_out - 50


def test_two_channels_give_nuclei_then_cytoplasm():
    s = make_nuclei(shape=(128, 128), n_nuclei=10, channels=2, seed=7)
    assert s.image.shape == (128, 128, 2) and s.image.dtype == np.uint8
    nucleus, cytoplasm = s.image[..., 0], s.image[..., 1]
    ring = ndi.binary_dilation(s.labels > 0, iterations=3) & (s.labels == 0)
    far = ~ndi.binary_dilation(s.labels > 0, iterations=20)
    assert np.median(nucleus[s.labels > 0]) > np.median(nucleus[ring]) + 20
    assert np.median(cytoplasm[ring]) > np.median(cytoplasm[far]) + 15
    assert np.median(cytoplasm[ring]) > np.median(cytoplasm[s.labels > 0])


def test_blur_and_noise_change_the_image_never_the_labels():
    sharp = make_nuclei(shape=(96, 96), n_nuclei=8, blur_sigma=0, noise=0, shot_noise=False,
                        texture=0, illumination=0, seed=8)
    blurred = make_nuclei(shape=(96, 96), n_nuclei=8, blur_sigma=3, noise=0.1, seed=8)
    np.testing.assert_array_equal(sharp.labels, blurred.labels)
    assert not np.array_equal(sharp.image, blurred.image)
    # no blur, texture, noise or lighting: each nucleus is flat, the background one value
    assert len(np.unique(sharp.image[sharp.labels == 0])) == 1
    for label in sharp.nuclei["label"]:
        assert len(np.unique(sharp.image[sharp.labels == label])) == 1


# ---------------------------------------------------------------------------------------------
# Determinism and edge cases
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("modality", ["fluorescence", "brightfield", "stained"])
def test_same_seed_same_arrays_other_seed_other_arrays(modality):
    kwargs = dict(shape=(64, 64), n_nuclei=6, touching_pairs=1, modality=modality)
    first, again = make_nuclei(seed=11, **kwargs), make_nuclei(seed=11, **kwargs)
    other = make_nuclei(seed=12, **kwargs)
    np.testing.assert_array_equal(first.image, again.image)
    np.testing.assert_array_equal(first.labels, again.labels)
    assert first.nuclei.equals(again.nuclei) and first.pairs == again.pairs
    assert not np.array_equal(first.labels, other.labels)
    assert not np.array_equal(first.image, other.image)


def test_no_nuclei_gives_an_empty_label_image():
    s = make_nuclei(shape=(64, 64), n_nuclei=0, touching_pairs=3, seed=0)
    assert not s.labels.any() and s.labels.dtype == np.uint16
    assert s.n_nuclei == 0 and s.pairs == ()
    assert list(s.nuclei.columns) == list(TRUTH_COLUMNS)
    assert s.image.shape == (64, 64) and np.median(s.image) < 30


@pytest.mark.parametrize(
    "shape, n_nuclei, fits",
    [((1, 50), 5, 0), ((20, 20), 10, None), ((3, 3), 2, 0), ((64, 64), 1000, None)],
)
def test_small_or_crowded_images_place_what_fits_quickly(shape, n_nuclei, fits):
    start = time.perf_counter()
    s = make_nuclei(shape=shape, n_nuclei=n_nuclei, touching_pairs=2, seed=9)
    assert time.perf_counter() - start < 2.0
    assert s.labels.shape == shape and s.image.shape == shape
    assert s.n_nuclei < n_nuclei
    if fits is not None:
        assert s.n_nuclei == fits
    assert sorted(np.unique(s.labels)) == list(range(s.n_nuclei + 1))
    assert (np.bincount(s.labels.ravel())[1:] == s.nuclei["area"].to_numpy()).all()


def test_tiny_radius_fits_a_narrow_image():
    s = make_nuclei(shape=(12, 50), n_nuclei=3, radius=(2, 3), aspect=(1, 1), seed=1)
    assert s.n_nuclei == 3


@pytest.mark.parametrize(
    "kwargs",
    [dict(modality="phase"), dict(bit_depth=12), dict(radius=(5, 2)), dict(aspect=(0.5, 1)),
     dict(modality="stained", channels=1), dict(n_nuclei=-1), dict(shape=(0, 10))],
)
def test_bad_arguments_are_refused(kwargs):
    with pytest.raises(ValueError):
        make_nuclei(**kwargs)


# ---------------------------------------------------------------------------------------------
# Kaggle-layout dataset
# ---------------------------------------------------------------------------------------------


def stacked_masks(folder: Path, shape) -> np.ndarray:
    """Rebuild an instance label image from one-PNG-per-nucleus masks; checks each mask."""
    labels = np.zeros(shape, np.uint16)
    for index, path in enumerate(sorted(folder.glob("*.png")), start=1):
        mask = iio.imread(path)
        assert mask.dtype == np.uint8 and mask.shape == shape
        assert set(np.unique(mask).tolist()) == {0, 255}
        assert not labels[mask > 0].any()  # masks never overlap
        labels[mask > 0] = index
    return labels


@pytest.mark.parametrize("bit_depth", [8, 16])
def test_make_synthetic_dataset_layout_masks_and_manifest(tmp_path, bit_depth):
    out = tmp_path / "synthetic"
    manifest = make_synthetic_dataset(out, n_images=4, height=48, width=64, bit_depth=bit_depth,
                                      seed=5)
    train = out / "stage1_train"
    ids = ["synth_0000_fluorescence", "synth_0001_brightfield", "synth_0002_stained",
           "synth_0003_fluorescence"]
    assert sorted(p.name for p in train.iterdir()) == ids
    assert manifest == Manifest.read(out / "dataset.json")
    assert manifest.source == "synthetic" and manifest.n_images == 4
    assert manifest.stage1_train == str(train.resolve())
    assert "seed=5" in manifest.origin
    assert manifest.stage1_test is None and manifest.stage1_solution is None
    assert sorted(p.name for p in out.iterdir()) == ["dataset.json", "stage1_train"]

    for index, image_id in enumerate(ids):
        assert sorted(p.name for p in (train / image_id).iterdir()) == ["images", "masks"]
        image = iio.imread(train / image_id / "images" / f"{image_id}.png")
        _, sample = dataset_sample(index, height=48, width=64, bit_depth=bit_depth, seed=5)
        np.testing.assert_array_equal(image, sample.image)
        if image_id.endswith("stained"):
            assert image.dtype == np.uint8 and image.shape == (48, 64, 3)
        else:
            assert image.dtype == (np.uint8 if bit_depth == 8 else np.uint16)
            assert image.shape == (48, 64)
        masks = train / image_id / "masks"
        assert len(list(masks.glob("*.png"))) == sample.n_nuclei
        np.testing.assert_array_equal(stacked_masks(masks, (48, 64)), sample.labels)


def test_dataset_samples_vary_and_are_stable():
    one = [dataset_sample(i, height=256, width=256, bit_depth=8, seed=1)[1] for i in range(4)]
    again = dataset_sample(3, height=256, width=256, bit_depth=8, seed=1)[1]
    np.testing.assert_array_equal(one[3].labels, again.labels)
    counts = [s.n_nuclei for s in one]
    assert len(set(counts)) > 1 and all(10 <= c <= 60 for c in counts)
    assert all(len(s.pairs) >= 1 for s in one)
    mean_areas = [s.nuclei["area"].mean() for s in one]
    assert max(mean_areas) > 1.1 * min(mean_areas)


def test_rewriting_replaces_the_dataset(tmp_path):
    make_synthetic_dataset(tmp_path, n_images=3, height=32, width=32, bit_depth=8, seed=1)
    make_synthetic_dataset(tmp_path, n_images=1, height=32, width=32, bit_depth=8, seed=1,
                           modalities=["brightfield"])
    assert [p.name for p in (tmp_path / "stage1_train").iterdir()] == ["synth_0000_brightfield"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset.json", "stage1_train"]
    assert Manifest.read(tmp_path / "dataset.json").n_images == 1


@pytest.mark.parametrize(
    "kwargs, key",
    [(dict(bit_depth=12), "bit_depth"), (dict(modalities=["phase"]), "modalities"),
     (dict(modalities=[]), "modalities"), (dict(n_images=0), "n_images")],
)
def test_bad_dataset_settings_name_the_config_key_and_write_nothing(tmp_path, kwargs, key):
    settings = dict(n_images=2, height=32, width=32, bit_depth=8, seed=0) | kwargs
    with pytest.raises(ConfigError, match=f"dataset.synthetic.{key}"):
        make_synthetic_dataset(tmp_path / "out", **settings)
    assert not (tmp_path / "out").exists()
