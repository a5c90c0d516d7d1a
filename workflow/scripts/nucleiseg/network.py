"""The network: a U-Net whose encoder is ImageNet-pretrained MobileNetV2 (Keras 3).

Skips are tapped where the TensorFlow segmentation tutorial taps them; each decoder step is a
stride-2 transposed convolution + BatchNorm + ReLU, concatenation with the skip, and a 3x3
convolution block. One more step returns to full resolution, where 1x1 sigmoid heads give the
foreground and (heads: contour) the nucleus-contour probabilities, always in float32 so that
mixed precision on a GPU does not round probabilities.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from .errors import ConfigError
from .modelconfig import ModelConfig

log = logging.getLogger(__name__)

SKIP_LAYERS = ("block_1_expand_relu", "block_3_expand_relu", "block_6_expand_relu", "block_13_expand_relu")
BOTTLENECK_LAYER = "block_16_project"
ENCODER_NAME = "encoder"
KERAS_WEIGHTS_NAME = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{alpha}_224_no_top.h5"


def resolve_encoder_weights(setting: str, alpha: float) -> str | None:
    """`imagenet` (Keras downloads it), `none`, or a checked absolute path to a local .h5 file."""
    if setting == "none":
        return None
    if setting == "imagenet":
        return "imagenet"
    path = Path(setting).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"model.encoder_weights: {path} does not exist. Point it at a MobileNetV2 no-top "
            f"weights file (Keras' name: {KERAS_WEIGHTS_NAME.format(alpha=alpha)}), or use "
            "imagenet (downloads) or none (random initialisation)"
        )
    found = re.search(r"_(\d\.\d+)_\d+_no_top", path.name)
    if found and float(found.group(1)) != alpha:
        raise ConfigError(
            f"model.encoder_weights: {path.name} holds weights for alpha {found.group(1)}, but "
            f"model.alpha is {alpha}; set model.alpha: {found.group(1)} or use the matching file"
        )
    return str(path.resolve())


def build_encoder(alpha: float, weights: str | None):
    """MobileNetV2 without its classifier, any input size; weight problems become ConfigErrors."""
    import keras

    try:
        return keras.applications.MobileNetV2(
            input_shape=(None, None, 3), include_top=False, weights=weights, alpha=alpha
        )
    except Exception as exc:  # Keras' download raises a bare Exception after a DNS failure
        name = KERAS_WEIGHTS_NAME.format(alpha=alpha)
        if weights == "imagenet":
            raise ConfigError(
                f"could not get the ImageNet MobileNetV2 weights (alpha {alpha}) from the "
                f"internet ({exc}). On a machine without internet, download {name} elsewhere "
                "and set model.encoder_weights to its path (or copy it into ~/.keras/models/)"
            ) from exc
        raise ConfigError(
            f"model.encoder_weights: {weights} cannot be loaded into MobileNetV2 alpha {alpha} "
            f"({type(exc).__name__}: {exc}); it must be Keras' no-top file ({name})"
        ) from exc


def _upsample(x, filters: int, name: str):
    from keras import layers

    x = layers.Conv2DTranspose(filters, 3, strides=2, padding="same", use_bias=False, name=f"{name}_up")(x)
    x = layers.BatchNormalization(name=f"{name}_up_bn")(x)
    return layers.ReLU(name=f"{name}_up_relu")(x)


def _conv_block(x, filters: int, name: str):
    from keras import layers

    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


# MobileNetV2's BatchNorm layers average their statistics with momentum 0.999: right for
# ImageNet statistics being fine-tuned, but a randomly initialised encoder trained for a few
# hundred steps (the demo, the tests) then predicts with statistics still ~90% at their initial
# values, and its inference output is near zero though training looks fine.
RANDOM_ENCODER_BN_MOMENTUM = 0.9


def _fast_batchnorm(encoder) -> None:
    for layer in encoder.layers:
        if type(layer).__name__ == "BatchNormalization":
            layer.momentum = RANDOM_ENCODER_BN_MOMENTUM


def float32_copy(model, config: ModelConfig):
    """The trained `model` rebuilt in float32 with its weights: what a mixed-precision training
    saves. Its variables are float32 already, but a network saved with a mixed policy computes
    in float16/bfloat16 wherever it is loaded and keeps the casts in its graph, which OpenVINO
    cannot compile (a Convert to an unresolved type)."""
    import keras

    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        plain = build_unet(config)
    finally:
        keras.mixed_precision.set_global_policy(policy)
    plain.set_weights(model.get_weights())
    return plain


def build_unet(config: ModelConfig):
    """The Keras model: (batch, H, W, 3) in [0, 1]-ish -> (batch, H, W, n_outputs) probabilities.

    H and W must be multiples of modelconfig.DIVISOR; predict.predict_tiled handles any size.
    """
    import keras
    from keras import layers

    if len(config.unet_decoder_filters) != 5:
        raise ConfigError(
            f"model.decoder_filters needs 5 values (1/16 to full resolution), got {config.unet_decoder_filters}"
        )
    weights = resolve_encoder_weights(config.unet_encoder_weights, config.unet_alpha)
    backbone = build_encoder(config.unet_alpha, weights)
    if weights is None:
        _fast_batchnorm(backbone)
    taps = [backbone.get_layer(name).output for name in (*SKIP_LAYERS, BOTTLENECK_LAYER)]
    encoder = keras.Model(backbone.input, taps, name=ENCODER_NAME)

    image = keras.Input((None, None, config.input_channels), name="image")
    x = layers.Rescaling(config.input_scale, config.input_offset, name="to_imagenet_range")(image)
    *skips, x = encoder(x)
    for step, (filters, skip) in enumerate(zip(config.unet_decoder_filters[:4], reversed(skips))):
        x = _upsample(x, filters, f"decoder{step}")
        x = layers.Concatenate(name=f"decoder{step}_concat")([x, skip])
        x = _conv_block(x, filters, f"decoder{step}")
    x = _upsample(x, config.unet_decoder_filters[4], "full")
    x = _conv_block(x, config.unet_decoder_filters[4], "full")
    maps = layers.Conv2D(config.n_outputs, 1, activation="sigmoid", dtype="float32", name="maps")(x)
    return keras.Model(image, maps, name=f"mobilenetv2_unet_{config.heads}")


def set_encoder_trainable(model, trainable: bool) -> None:
    model.get_layer(ENCODER_NAME).trainable = trainable
