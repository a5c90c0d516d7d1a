"""Training data: the tiles of one split, their targets, augmentation and the tf.data pipeline.

Tiles are memory-mapped (tiles.py wrote them); targets are made from their labels once
(targets.py). Augmentation is stateless and seeded, so a seed gives the same patches.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import ConfigError
from .modelconfig import ModelConfig
from .scale import training_diameters
from .targets import make_targets_batch

log = logging.getLogger(__name__)


@dataclass
class TileSet:
    """One split's tiles in memory-mapped arrays, with targets made from the labels once."""

    images: np.ndarray  # (N, T, T, 3) float16, memory-mapped
    targets: np.ndarray  # (N, T, T, C) uint8 0/1 (targets.make_targets' channels)
    colour: np.ndarray  # (N,) bool: stained tissue (gets colour jitter)
    # (N,) chance of each tile in a training step, or None: every tile alike. Tiles of images
    # resized to one nucleus size (tiles.nucleus_diameter) are drawn by their `weight` in
    # tiles.csv, so that each image weighs what it weighed at its own scale.
    chances: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.images)


def load_tiles(folder: str | Path, config: ModelConfig, max_tiles: int = 0) -> TileSet:
    folder = Path(folder)
    images = np.load(folder / "images.npy", mmap_mode="r")
    labels = np.load(folder / "labels.npy", mmap_mode="r")
    table = pd.read_csv(folder / "tiles.csv")
    index = np.arange(len(images))
    if max_tiles and len(index) > max_tiles:  # an even, deterministic subset
        index = np.linspace(0, len(index) - 1, max_tiles).round().astype(int)
        images = images[index]
    targets = make_targets_batch(np.asarray(labels[index]), config.heads, config.contour_width,
                                 touch=config.train_touch_weight > 0)
    chances = None
    if "weight" in table and not np.allclose(table["weight"], 1):
        weights = table["weight"].to_numpy()[index]
        chances = weights / weights.sum()
    return TileSet(images, targets.astype(np.uint8),
                   table["modality"].to_numpy()[index] == "stained", chances)


def tiles_nucleus_diameters(folder: str | Path) -> tuple[float, float, float]:
    """The quartiles of a split's tiles' median nucleus diameters (scale.training_diameters):
    each tile cropped to the image it came from (no reflected padding), nuclei cut by its edge
    left out."""
    folder = Path(folder)
    labels = np.load(folder / "labels.npy", mmap_mode="r")
    table = pd.read_csv(folder / "tiles.csv")
    return training_diameters(np.asarray(labels[row.tile, :row.valid_height, :row.valid_width])
                             for row in table.itertuples())


# Optical densities of haematoxylin, eosin and DAB in RGB (Ruifrok and Johnston 2001, as
# scikit-image's rgb_from_hed): the stain space that `stain` augmentation jitters in.
_RGB_FROM_HED = np.array([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]])
_RGB_FROM_HED = _RGB_FROM_HED / np.linalg.norm(_RGB_FROM_HED, axis=1, keepdims=True)
_RGB_FROM_HED[2] = np.cross(_RGB_FROM_HED[0], _RGB_FROM_HED[1])
_HED_FROM_RGB = np.linalg.inv(_RGB_FROM_HED)


def _augment(image, target, colour, seed, config: ModelConfig):
    """Random geometry (image and targets together), then intensity and stain (image only);
    stateless: a seed gives the same patch."""
    import tensorflow as tf

    seeds = tf.random.experimental.stateless_split(seed, 16)
    image, target = _geometry(image, target, seeds[:5], config)
    if config.train_augment_lowres:  # an image enlarged from a smaller one, as rescale auto does
        image = _lower_resolution(image, seeds[15], config.train_augment_lowres)
    if config.train_augment_stain:
        image = tf.where(colour, _stain_jitter(image, seeds[12:14]), image)
    if config.train_augment_colour:
        gain = tf.random.stateless_uniform([3], seeds[8], 0.88, 1.12)
        shift = tf.random.stateless_uniform([3], seeds[9], -0.05, 0.05)
        image = tf.where(colour, image * gain + shift, image)
    if config.train_augment_grayscale:  # stained tissue as a grayscale camera shows it
        gray = tf.random.stateless_uniform([], seeds[14]) < config.train_augment_grayscale
        image = tf.where(colour & gray, tf.repeat(tf.reduce_mean(image, -1, keepdims=True), 3, -1),
                         image)
    if config.train_augment_intensity:
        gamma = tf.random.stateless_uniform([], seeds[5], 0.7, 1.4)
        contrast = tf.random.stateless_uniform([], seeds[6], 0.75, 1.3)
        brightness = tf.random.stateless_uniform([], seeds[7], -0.1, 0.1)
        image = tf.pow(tf.maximum(image, 0.0), gamma)
        image = (image - 0.5) * contrast + 0.5 + brightness
    if config.train_augment_dim:  # a dim image among far brighter objects, percentile-normalized
        top = tf.random.stateless_uniform([], seeds[10], 0.1, 0.5)
        dim = tf.random.stateless_uniform([], seeds[11]) < config.train_augment_dim
        image = tf.where(dim, image * top, image)
    return image, target


def _geometry(image, target, seeds, config: ModelConfig):
    """A random crop at a random zoom (log-uniform in train_augment_scale: as likely halved as
    doubled), then flips and quarter turns. Zooming out further than the tile allows shrinks the
    whole tile and mirrors it at its edges to fill the patch."""
    import tensorflow as tf

    size = config.train_patch_size
    both = tf.concat([image, target], axis=-1)
    low, high = config.train_augment_scale
    zoom = (tf.exp(tf.random.stateless_uniform([], seeds[0], np.log(low), np.log(high)))
            if high > low else tf.constant(1.0))
    tile = tf.shape(both)[0]
    crop = tf.minimum(tf.cast(tf.round(size / zoom), tf.int32), tile)
    both = tf.image.stateless_random_crop(both, tf.stack([crop, crop, tf.shape(both)[-1]]), seeds[1])
    if high > low:
        side = tf.minimum(tf.cast(tf.round(tf.cast(crop, tf.float32) * zoom), tf.int32), size)
        side = tf.maximum(side, size // 3 + 1)  # a mirror must be narrower than what it mirrors
        pixels = tf.image.resize(both[..., :3], tf.stack([side, side]), method="bilinear")
        masks = tf.image.resize(both[..., 3:], tf.stack([side, side]), method="nearest")
        both = _mirror_to(tf.concat([pixels, masks], axis=-1), size)
    if config.train_augment_flips:
        both = tf.image.stateless_random_flip_left_right(both, seeds[2])
        both = tf.image.stateless_random_flip_up_down(both, seeds[3])
        both = tf.image.rot90(both, tf.random.stateless_uniform([], seeds[4], 0, 4, dtype=tf.int32))
    both = tf.ensure_shape(both, [size, size, None])
    return both[..., :3], both[..., 3:]


# How much `lowres` augmentation shrinks a tile before enlarging it back (log-uniform): the
# factors by which segment.rescale auto enlarges images whose nuclei are half the training's.
LOWRES_RANGE = (1.25, 2.5)


def _lower_resolution(image, seed, chance: float):
    """With `chance`, the image shrunk by a factor in LOWRES_RANGE (anti-aliased) and enlarged
    back to its size (bilinear): the detail a smaller image lacks, at the same size."""
    import tensorflow as tf

    seeds = tf.random.experimental.stateless_split(seed, 2)
    low, high = np.log(LOWRES_RANGE)
    factor = tf.exp(tf.random.stateless_uniform([], seeds[0], low, high))
    size = tf.shape(image)[:2]
    small = tf.maximum(tf.cast(tf.round(tf.cast(size, tf.float32) / factor), tf.int32), 1)
    blurred = tf.image.resize(tf.image.resize(image, small, method="bilinear", antialias=True),
                              size, method="bilinear")
    apply = tf.random.stateless_uniform([], seeds[1]) < chance
    return tf.where(apply, tf.reshape(blurred, tf.shape(image)), image)


def _mirror_to(patch, size: int):
    """A square patch of side <= size reflect-padded (at most once per side) to size x size."""
    import tensorflow as tf

    missing = size - tf.shape(patch)[0]
    before = missing // 2
    pads = tf.stack([[before, missing - before], [before, missing - before], [0, 0]])
    return tf.pad(patch, pads, mode="REFLECT")


def _stain_jitter(image, seeds):
    """H&E stain variation: the image in optical densities of haematoxylin, eosin and DAB, each
    scaled by ~U(0.95, 1.05) and shifted by ~U(-0.05, 0.05), and back (as Tellez et al. 2018;
    skimage's rgb2hed / hed2rgb in TensorFlow)."""
    import tensorflow as tf

    density = -tf.math.log(tf.clip_by_value(image, 1e-6, 1.0))
    hed = tf.matmul(density, tf.constant(_HED_FROM_RGB, tf.float32))
    hed = (hed * tf.random.stateless_uniform([3], seeds[0], 0.95, 1.05)
           + tf.random.stateless_uniform([3], seeds[1], -0.05, 0.05))
    rgb = tf.exp(-tf.matmul(hed, tf.constant(_RGB_FROM_HED, tf.float32)))
    return tf.clip_by_value(rgb, 0.0, 1.0)


def make_dataset(tiles: TileSet, config: ModelConfig, training: bool):
    """A tf.data pipeline: shuffled, augmented, grouped into steps and prefetched (reading overlaps
    training)."""
    import tensorflow as tf

    n, size = len(tiles), tiles.images.shape[1]
    channels = tiles.targets.shape[-1]
    # The touch band, when there is one, carries its extra weight (losses.bce_dice_loss).
    scale = np.ones(channels, np.float32)
    if channels > config.n_outputs:
        scale[config.n_outputs:] = config.train_touch_weight

    def fetch(i):
        return (tiles.images[i].astype(np.float32), tiles.targets[i].astype(np.float32) * scale,
                np.bool_(tiles.colour[i]))

    def read(i):
        image, target, colour = tf.numpy_function(fetch, [i], [tf.float32, tf.float32, tf.bool])
        image.set_shape([size, size, 3])
        target.set_shape([size, size, channels])
        colour.set_shape([])
        return image, target, colour

    ds = tf.data.Dataset.range(n)
    if not training:
        ds = ds.map(read).map(lambda x, y, c: (x, y))
        return ds.batch(config.train_patches_per_step).prefetch(tf.data.AUTOTUNE)
    if tiles.chances is None:
        ds = ds.shuffle(n, seed=config.train_seed, reshuffle_each_iteration=True).repeat()
    else:  # drawn with replacement, each tile by its chance
        cumulative = tf.constant(np.cumsum(tiles.chances), tf.float64)
        ds = tf.data.Dataset.random(seed=config.train_seed).map(
            lambda r: tf.minimum(tf.searchsorted(
                cumulative, tf.reshape(tf.cast(r % 2**32, tf.float64) / 2**32, [1]),
                out_type=tf.int64)[0], n - 1))
    ds = ds.map(read, num_parallel_calls=tf.data.AUTOTUNE)
    seeds = tf.data.Dataset.random(seed=config.train_seed).batch(2)
    ds = tf.data.Dataset.zip((ds, seeds)).map(
        lambda sample, seed: _augment(*sample, seed, config), num_parallel_calls=tf.data.AUTOTUNE
    )
    return ds.batch(config.train_patches_per_step, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def validation_for_replicas(tiles: TileSet, patches_per_step: int, replicas: int) -> TileSet:
    """The validation tiles, less a last step too small to give every replica a tile.

    A step's tiles are split over the replicas as evenly as they go; a last step of fewer tiles
    than replicas leaves a replica none, which the loss cannot take. Its tiles (fewer than the
    replicas) are left out; the training steps are always full.
    """
    rest = len(tiles) % patches_per_step
    if replicas <= 1 or not rest or rest >= replicas:
        return tiles
    keep = len(tiles) - rest
    if not keep:
        raise ConfigError(
            f"{len(tiles)} validation tile(s) cannot be split over {replicas} replicas: use "
            "more validation images (split.fractions.val, train.max_val_tiles) or fewer GPUs "
            "(train.gpus)"
        )
    log.warning("validation: the last %d of %d tiles are left out, a step of fewer tiles than "
                "the %d replicas would leave one without data", rest, len(tiles), replicas)
    return TileSet(tiles.images[:keep], tiles.targets[:keep], tiles.colour[:keep])
