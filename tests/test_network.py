"""The U-Net: its shapes, its encoder's taps and freezing, and its encoder's weights.

Tiny networks with random encoders (alpha 0.35, no download) except one test that loads the real
ImageNet weights from the shared folder into a full-size encoder."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import SHARED_WEIGHTS
from nucleiseg.errors import ConfigError
from nucleiseg.modelconfig import DIVISOR, HEADS, ModelConfig
from nucleiseg.network import (BOTTLENECK_LAYER, ENCODER_NAME, KERAS_WEIGHTS_NAME,
                               RANDOM_ENCODER_BN_MOMENTUM, SKIP_LAYERS, build_unet,
                               resolve_encoder_weights, set_encoder_trainable)

IMAGENET = SHARED_WEIGHTS / KERAS_WEIGHTS_NAME.format(alpha=1.0)
TINY = ModelConfig(unet_alpha=0.35, unet_encoder_weights="none",
                   unet_decoder_filters=(16, 16, 8, 8, 8))


def _encoder_batchnorms(network) -> list:
    return [layer for layer in network.get_layer(ENCODER_NAME).layers
            if type(layer).__name__ == "BatchNormalization"]


@pytest.fixture(scope="module", params=HEADS)
def heads(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def network(heads):
    import keras

    keras.utils.set_random_seed(0)
    return build_unet(TINY.replace(heads=heads))


def test_output_is_one_float32_probability_map_per_head_map(heads, network):
    config = TINY.replace(heads=heads)
    image = np.random.default_rng(0).random((2, 2 * DIVISOR, 3 * DIVISOR, 3), dtype=np.float32)
    maps = np.asarray(network.predict_on_batch(image))
    assert maps.shape == (2, 2 * DIVISOR, 3 * DIVISOR, config.n_outputs)
    assert maps.dtype == np.float32
    assert (maps >= 0).all() and (maps <= 1).all() and maps.std() > 0


def test_outputs_stay_float32_under_mixed_precision():
    import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        network = build_unet(TINY)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    assert network.get_layer("full_conv").compute_dtype == "float16"  # the policy did apply
    assert network.output.dtype == "float32"
    maps = np.asarray(network.predict_on_batch(np.zeros((1, DIVISOR, DIVISOR, 3), np.float32)))
    assert maps.dtype == np.float32


def test_encoder_taps_the_named_layers_at_strides_2_to_32(network):
    encoder = network.get_layer(ENCODER_NAME)
    for name in (*SKIP_LAYERS, BOTTLENECK_LAYER):
        encoder.get_layer(name)  # raises ValueError if MobileNetV2 has no such layer
    taps = encoder.predict_on_batch(np.zeros((1, 2 * DIVISOR, 2 * DIVISOR, 3), np.float32))
    assert [tap.shape[1] for tap in taps] == [2 * DIVISOR // 2**k for k in range(1, 6)]


def test_set_encoder_trainable_freezes_exactly_the_encoders_weights():
    network = build_unet(TINY)
    encoder = network.get_layer(ENCODER_NAME)
    everything = {id(v) for v in network.trainable_weights}
    encoders = {id(v) for v in encoder.trainable_weights}
    assert encoders and encoders < everything  # the decoder has weights of its own

    set_encoder_trainable(network, False)
    assert len(network.trainable_weights) == len(everything) - len(encoders)
    assert {id(v) for v in network.trainable_weights} == everything - encoders
    assert not encoder.trainable_weights

    set_encoder_trainable(network, True)
    assert {id(v) for v in network.trainable_weights} == everything


def test_random_encoder_batchnorm_uses_the_fast_momentum(network):
    momenta = {layer.momentum for layer in _encoder_batchnorms(network)}
    assert momenta == {RANDOM_ENCODER_BN_MOMENTUM}
    # The decoder keeps Keras' default: only the encoder's statistics start at random.
    assert network.get_layer("full_bn").momentum != RANDOM_ENCODER_BN_MOMENTUM


@pytest.mark.parametrize("setting, expected", [("none", None), ("imagenet", "imagenet")])
def test_keyword_weight_settings_pass_through(setting, expected):
    assert resolve_encoder_weights(setting, 0.35) == expected


def test_local_weights_file_becomes_an_absolute_path(tmp_path, monkeypatch):
    path = tmp_path / "weights" / KERAS_WEIGHTS_NAME.format(alpha=0.35)
    path.parent.mkdir()
    path.write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    assert resolve_encoder_weights(str(path.relative_to(tmp_path)), 0.35) == str(path.resolve())
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_encoder_weights(f"~/weights/{path.name}", 0.35) == str(path.resolve())


def test_missing_weights_file_names_the_key_and_keras_file_name(tmp_path):
    with pytest.raises(ConfigError) as caught:
        resolve_encoder_weights(str(tmp_path / "missing.h5"), 0.5)
    message = str(caught.value)
    assert "model.encoder_weights" in message and str(tmp_path / "missing.h5") in message
    assert KERAS_WEIGHTS_NAME.format(alpha=0.5) in message


def test_weights_file_for_another_alpha_names_both(tmp_path):
    path = tmp_path / KERAS_WEIGHTS_NAME.format(alpha=1.0)
    path.write_bytes(b"")
    with pytest.raises(ConfigError) as caught:
        resolve_encoder_weights(str(path), 0.35)
    message = str(caught.value)
    assert "model.encoder_weights" in message and "alpha 1.0" in message
    assert "model.alpha is 0.35" in message


def test_a_weights_file_keras_cannot_read_names_the_key(tmp_path):
    path = tmp_path / "my_encoder.h5"
    path.write_bytes(b"not an HDF5 file")
    with pytest.raises(ConfigError) as caught:
        build_unet(TINY.replace(unet_encoder_weights=str(path)))
    message = str(caught.value)
    assert "model.encoder_weights" in message and KERAS_WEIGHTS_NAME.format(alpha=0.35) in message


@pytest.mark.skipif(not IMAGENET.is_file(), reason=f"ImageNet weights not found at {IMAGENET}")
def test_imagenet_weights_fill_every_encoder_layer_and_keep_their_momentum():
    """Full-size (alpha 1.0) encoder from the shared no-top file: every weighted encoder layer
    holds the file's arrays, and its BatchNorm keeps Keras' slow momentum (ImageNet statistics)."""
    import h5py

    network = build_unet(ModelConfig(unet_alpha=1.0, unet_encoder_weights=str(IMAGENET),
                                     unet_decoder_filters=(8,) * 5))
    encoder = network.get_layer(ENCODER_NAME)
    weighted = [layer for layer in encoder.layers if layer.weights]
    with h5py.File(IMAGENET, "r") as h5:
        for layer in weighted:
            names = h5[layer.name].attrs["weight_names"]
            stored = [np.asarray(h5[layer.name][n]) for n in names]
            loaded = layer.get_weights()
            assert len(stored) == len(loaded), layer.name
            for a, b in zip(stored, loaded):
                np.testing.assert_array_equal(a, b, err_msg=layer.name)
    assert len(weighted) > 100
    momenta = {layer.momentum for layer in _encoder_batchnorms(network)}
    assert RANDOM_ENCODER_BN_MOMENTUM not in momenta and len(momenta) == 1
