"""Test-time augmentation: maps mapped back onto the image's grid, equivariant, and no change
for an image the group leaves as it is."""

from __future__ import annotations

import numpy as np
import pytest

from nucleiseg.errors import ConfigError
from nucleiseg.inference import Tiling
from nucleiseg.model import NucleusModel
from nucleiseg.modelconfig import ModelConfig
from nucleiseg.tta import TTA_MODES, predict_augmented

TINY = ModelConfig(unet_alpha=0.35, unet_encoder_weights="none",
                   unet_decoder_filters=(16, 16, 8, 8, 8))


@pytest.fixture(scope="module")
def network():
    import keras

    from nucleiseg.network import build_unet

    keras.utils.set_random_seed(0)
    return build_unet(TINY)


def test_each_copy_is_mapped_back_before_averaging():
    """With a 'network' that returns its input, every copy maps back to the image itself."""
    image = np.random.default_rng(0).random((20, 30, 2)).astype(np.float32)
    for mode in TTA_MODES:
        np.testing.assert_allclose(predict_augmented(lambda x: x, image, mode), image, atol=1e-6)


def test_copies_are_the_group():
    seen = []
    image = np.arange(12, dtype=np.float32).reshape(3, 4, 1)
    predict_augmented(lambda x: seen.append(x.copy()) or np.zeros_like(x), image, "d4")
    assert len({x.tobytes() + bytes(x.shape) for x in seen}) == 8
    seen.clear()
    predict_augmented(lambda x: seen.append(x.copy()) or np.zeros_like(x), image, "flips")
    assert len(seen) == 4 and all(x.shape == image.shape for x in seen)


@pytest.mark.parametrize("mode", ["flips", "d4"])
def test_maps_of_a_transformed_image_are_the_transformed_maps(network, mode):
    model = NucleusModel(network, TINY, tiling=Tiling(128, 32, 2), tta=mode)
    image = np.random.default_rng(1).random((96, 160)).astype(np.float32)
    maps = model.predict(image)
    np.testing.assert_allclose(model.predict(image[::-1]), maps[::-1], atol=1e-5)
    if mode == "d4":
        np.testing.assert_allclose(model.predict(np.rot90(image)), np.rot90(maps), atol=1e-5)


def test_d4_of_a_symmetric_image_gives_symmetric_maps(network):
    """A disk in the middle of a square is left as it is by every move of the group: its maps
    are too, though the network alone (tta off) is not quite symmetric."""
    yy, xx = np.mgrid[:96, :96] - 47.5
    image = (np.hypot(yy, xx) < 20).astype(np.float32)
    plain = NucleusModel(network, TINY, tiling=Tiling(128, 32, 2)).predict(image)
    maps = NucleusModel(network, TINY, tiling=Tiling(128, 32, 2), tta="d4").predict(image)
    assert np.abs(plain - np.rot90(plain)).max() > 1e-4  # so the check below checks something
    for k in range(4):
        np.testing.assert_allclose(np.rot90(maps, k), maps, atol=1e-5)
    np.testing.assert_allclose(maps[:, ::-1], maps, atol=1e-5)


def test_an_unknown_mode_names_the_setting(network):
    with pytest.raises(ConfigError, match="segment.tta"):
        NucleusModel(network, TINY, tta="rotations")
