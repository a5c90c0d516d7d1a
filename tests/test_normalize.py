import numpy as np
import pytest

from nucleiseg.normalize import classify_modality, percentile_normalize, to_channels_last


def test_8bit_percentiles_map_to_0_and_1():
    image = np.arange(256, dtype=np.uint8).reshape(16, 16)
    out, stats = percentile_normalize(image, 1.0, 99.8)
    assert out.dtype == np.float32
    assert stats.low == pytest.approx(np.percentile(image, 1.0))
    assert stats.high == pytest.approx(np.percentile(image, 99.8))
    assert np.percentile(out, 1.0) == pytest.approx(0.0, abs=1e-6)
    assert np.percentile(out, 99.8) == pytest.approx(1.0, abs=1e-6)
    assert out.max() > 1.0  # above p_high is kept, not clipped


def test_16bit_uses_its_full_precision():
    rng = np.random.default_rng(0)
    image = rng.integers(1000, 4000, size=(64, 64), dtype=np.uint16)
    out, stats = percentile_normalize(image, 1.0, 99.8)
    assert 1000 <= stats.low < stats.high <= 4000
    # 3000 distinct input levels must stay distinct after normalization (no 8-bit squashing).
    assert len(np.unique(out)) == len(np.unique(image))


def test_constant_image_gives_zeros_not_nan():
    out, stats = percentile_normalize(np.full((8, 8), 7, np.uint16))
    assert stats.low == stats.high == 7
    assert np.all(out == 0) and np.isfinite(out).all()


def test_bad_percentiles_rejected():
    with pytest.raises(ValueError, match="p_low < p_high"):
        percentile_normalize(np.zeros((4, 4)), 99, 1)


def test_channels_rgba_gray_and_colour():
    gray = np.random.default_rng(1).integers(0, 255, (5, 6), dtype=np.uint8)
    rgba_gray = np.dstack([gray, gray, gray, np.full_like(gray, 255)])
    assert to_channels_last(rgba_gray).shape == (5, 6, 1)
    assert np.array_equal(to_channels_last(rgba_gray)[..., 0], gray)
    colour = np.dstack([gray, gray // 2, gray, np.full_like(gray, 255)])
    assert to_channels_last(colour).shape == (5, 6, 3)
    assert to_channels_last(gray).shape == (5, 6, 1)
    with pytest.raises(ValueError, match="channels"):
        to_channels_last(np.zeros((5, 6, 7)))


def test_modality_from_background_and_colour():
    dark = np.zeros((20, 20), np.uint8)
    dark[5:10, 5:10] = 200
    assert classify_modality(dark) == "fluorescence"
    assert classify_modality(255 - dark) == "brightfield"
    colour = np.dstack([dark, dark // 2, dark])
    assert classify_modality(colour) == "stained"


def test_modality_matches_dsb_metadata_on_real_images(dsb_meta):
    """The heuristic agrees with the shared index on a sample of every modality."""
    from conftest import SHARED_DSB, pick_ids
    from nucleiseg.io import read_image

    names = {"fluorescence_gray": "fluorescence", "color_stained": "stained", "brightfield_gray": "brightfield"}
    ids = pick_ids(dsb_meta, {"fluorescence_gray": 6, "color_stained": 4, "brightfield_gray": 2})
    expected = dsb_meta.set_index("id")["modality"]
    for sample_id in ids:
        image = read_image(SHARED_DSB / "stage1_train" / sample_id / "images" / f"{sample_id}.png")
        assert classify_modality(image) == names[expected[sample_id]], sample_id
