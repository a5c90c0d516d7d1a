"""The classical baseline on synthetic nuclei with exact truth, edge cases, and one real image."""

import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.filters import threshold_otsu

from conftest import REPO, SHARED_DSB, pick_ids
from nucleiseg.classical import nuclear_channel, segment_classical
from nucleiseg.io import read_image
from nucleiseg.labels import masks_to_labels
from nucleiseg.metrics import match, score_image
from nucleiseg.normalize import percentile_normalize, to_channels_last
from nucleiseg.synthetic import make_nuclei


def prepared(image: np.ndarray) -> np.ndarray:
    """As the workflow prepares images: channels last, percentile-normalized, (H, W) if gray."""
    normalized, _ = percentile_normalize(to_channels_last(image))
    return normalized[..., 0] if normalized.shape[-1] == 1 else normalized


def otsu_components(image: np.ndarray) -> np.ndarray:
    """The naive alternative: Otsu on the smoothed image and connected components, no splitting."""
    smooth = ndi.gaussian_filter(image.astype(float), 1.0)
    labels, _ = ndi.label(smooth > threshold_otsu(smooth), structure=np.ones((3, 3)))
    return labels


def test_well_separated_nuclei_are_found():
    sample = make_nuclei((256, 256), n_nuclei=25, seed=0)
    labels = segment_classical(prepared(sample.image))
    assert labels.dtype == np.uint16 and labels.shape == (256, 256)
    row = score_image(sample.labels, labels)
    assert row["dsb_score"] > 0.7
    assert row["tp_50"] >= sample.n_nuclei - 1
    assert set(np.unique(labels)) == set(range(labels.max() + 1))  # numbered 1..N


def test_watershed_splits_touching_pairs_that_components_merge():
    sample = make_nuclei((256, 256), n_nuclei=30, touching_pairs=12, seed=4)
    assert len(sample.pairs) >= 5
    image = prepared(sample.image)
    split = match(sample.labels, segment_classical(image))
    merged = match(sample.labels, otsu_components(image))
    assert split.tp > merged.tp
    assert split.tp >= sample.n_nuclei - 4


@pytest.mark.parametrize("modality", ["brightfield", "stained"])
def test_dark_nuclei_on_a_bright_background(modality):
    sample = make_nuclei((256, 256), n_nuclei=25, touching_pairs=2, modality=modality, seed=2)
    image = prepared(sample.image)
    assert image.ndim == (3 if modality == "stained" else 2)
    assert score_image(sample.labels, segment_classical(image))["dsb_score"] > 0.5


def test_nuclear_channel_inverts_a_bright_background():
    dark_nuclei = np.full((20, 20), 0.9)
    dark_nuclei[5:10, 5:10] = 0.1
    channel = nuclear_channel(dark_nuclei)
    assert channel[7, 7] > channel[0, 0]  # the nucleus is now the bright one
    bright_nuclei = 1 - dark_nuclei
    assert nuclear_channel(bright_nuclei)[7, 7] > nuclear_channel(bright_nuclei)[0, 0]
    colour = np.stack([dark_nuclei] * 3, axis=-1)
    np.testing.assert_allclose(nuclear_channel(colour), channel)


def test_sixteen_bit_and_channel_axis_give_the_same_answer():
    sample = make_nuclei((128, 128), n_nuclei=10, bit_depth=16, seed=5)
    image = prepared(sample.image)
    np.testing.assert_array_equal(segment_classical(image), segment_classical(image[..., None]))


def test_deterministic():
    image = prepared(make_nuclei((128, 128), n_nuclei=12, touching_pairs=3, seed=6).image)
    np.testing.assert_array_equal(segment_classical(image), segment_classical(image.copy()))


# A fresh interpreter with another hash seed: nothing cached or ordered here carries over.
_SEGMENT_SAVED = """
import sys
import numpy as np
from nucleiseg.classical import segment_classical
folder = sys.argv[1]
for name in sys.argv[2:]:
    np.save(f"{folder}/{name}_labels.npy", segment_classical(np.load(f"{folder}/{name}.npy")))
"""


def _assert_same_in_another_process(images: dict[str, np.ndarray], folder) -> None:
    """segment_classical gives the same bytes here and in a second Python process."""
    for name, image in images.items():
        np.save(folder / f"{name}.npy", image)
    env = {**os.environ, "PYTHONPATH": str(REPO / "workflow" / "scripts"), "PYTHONHASHSEED": "4321"}
    result = subprocess.run([sys.executable, "-c", _SEGMENT_SAVED, str(folder), *images],
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    for name, image in images.items():
        here = segment_classical(image)
        there = np.load(folder / f"{name}_labels.npy")
        assert here.max() >= 5, name  # nuclei found: not two empty images compared
        assert (there.dtype, there.shape) == (here.dtype, here.shape), name
        assert there.tobytes() == here.tobytes(), name


def test_deterministic_across_processes_on_touching_disks(tmp_path):
    yy, xx = np.indices((128, 128))
    disks = np.zeros((128, 128))
    centres = [(30, 30, 10), (30, 47, 10), (80, 70, 12), (92, 85, 9), (60, 110, 8), (110, 20, 7)]
    for y, x, r in centres:  # two touching pairs, for the watershed
        disks[(yy - y) ** 2 + (xx - x) ** 2 <= r * r] = 1.0
    noise = 0.05 * np.random.default_rng(7).standard_normal(disks.shape)
    _assert_same_in_another_process({"disks": prepared(ndi.gaussian_filter(disks, 1.5) + noise)},
                                    tmp_path)


def test_deterministic_across_processes_on_real_images(tmp_path, dsb_meta):
    images = {}
    for sample_id in pick_ids(dsb_meta, {"fluorescence_gray": 1, "color_stained": 1}):
        images[sample_id] = prepared(
            read_image(SHARED_DSB / "stage1_train" / sample_id / "images" / f"{sample_id}.png"))
    _assert_same_in_another_process(images, tmp_path)


@pytest.mark.parametrize("image", [
    np.zeros((64, 64)),
    np.full((64, 64), 0.7),
    0.5 + 1e-6 * np.random.default_rng(0).random((64, 64)),  # below any visible contrast
    np.zeros((64, 64, 3)),
])
def test_no_contrast_gives_no_nuclei(image):
    labels = segment_classical(image)
    assert labels.shape == (64, 64) and labels.dtype == np.uint16
    assert not labels.any()


@pytest.mark.parametrize("shape", [(1, 60), (60, 1), (1, 1), (2, 2)])
def test_tiny_and_one_pixel_wide_images(shape):
    image = np.zeros(shape)
    flat = image.reshape(-1)
    flat[10:26] = 1.0  # one 16-pixel nucleus where it fits
    labels = segment_classical(image)
    assert labels.shape == shape
    if flat.size >= 60:
        assert labels.max() == 1 and np.count_nonzero(labels) >= 15
    else:
        assert not labels.any()


def test_small_objects_are_removed():
    image = np.zeros((40, 40))
    image[5:15, 5:15] = 1.0  # 100 px
    image[30:33, 30:33] = 1.0  # 9 px
    labels = segment_classical(image, min_size=20)
    assert labels.max() == 1 and labels[10, 10] == 1 and labels[31, 31] == 0
    assert segment_classical(image, min_size=5).max() == 2


def test_bad_settings_and_shapes():
    with pytest.raises(ValueError, match="min_size"):
        segment_classical(np.zeros((8, 8)), min_size=0)
    with pytest.raises(ValueError, match="shape"):
        segment_classical(np.zeros((2, 8, 8, 1)))


def test_real_fluorescence_image_is_plausible(dsb_meta):
    sample_id = pick_ids(dsb_meta, {"fluorescence_gray": 1})[0]
    folder = SHARED_DSB / "stage1_train" / sample_id
    image = prepared(read_image(folder / "images" / f"{sample_id}.png"))
    truth, _ = masks_to_labels([read_image(p) > 0 for p in sorted((folder / "masks").glob("*.png"))])
    labels = segment_classical(image)
    row = score_image(truth, labels)
    assert row["ap_50"] > 0.5
    assert 0.5 * row["n_true"] <= row["n_pred"] <= 1.5 * row["n_true"]
