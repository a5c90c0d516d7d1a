"""Training: tiles -> a model folder (config.json, model.keras, history.csv, training_curves.png).

Schedule (transfer learning): `train_epochs_frozen` epochs with the ImageNet encoder frozen (only
the decoder learns, at `train_learning_rate`), then every layer at `train_finetune_learning_rate`
until `train_epochs`, early stopping or the time budget. The loss is BCE + Dice per head. The best
epoch on validation loss is kept. Progress is checkpointed in a state folder outside the outputs,
so a rerun of an interrupted training resumes from its last finished epoch.

Several GPUs (train.gpus, SLURM's --gpus) train data-parallel with tf.distribute.MirroredStrategy:
one replica of the model per GPU, gradients summed across them each step. train.batch_size is the
global batch, split evenly over the replicas (8 on 2 GPUs: 4 patches per GPU per step), so the
same settings take the same number of steps and see the same patches per epoch on any number of
GPUs. BatchNorm statistics and the Dice term of the loss are computed per replica, on its share of
the batch. One GPU or the CPU trains under TensorFlow's default strategy, as before.
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import ConfigError
from .modelconfig import ModelConfig
from .modelfolder import CONFIG_FILE, MODEL_FILE
from .network import build_unet, set_encoder_trainable
from .targets import make_targets_batch

log = logging.getLogger(__name__)

HISTORY_FILE = "history.csv"
CURVES_FILE = "training_curves.png"


# --- data ---------------------------------------------------------------------------------------


@dataclass
class TileSet:
    """One split's tiles in memory-mapped arrays, with targets made from the labels once."""

    images: np.ndarray  # (N, T, T, 3) float16, memory-mapped
    targets: np.ndarray  # (N, T, T, C) uint8 0/1
    colour: np.ndarray  # (N,) bool: stained tissue (gets colour jitter)

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
    targets = make_targets_batch(np.asarray(labels[index]), config.heads, config.contour_width)
    return TileSet(images, targets.astype(np.uint8), table["modality"].to_numpy()[index] == "stained")


def _augment(image, target, colour, seed, config: ModelConfig):
    """Random geometry (image and targets together) and intensity (image only), stateless."""
    import tensorflow as tf

    seeds = tf.random.experimental.stateless_split(seed, 10)
    size = config.train_patch_size
    both = tf.concat([image, target], axis=-1)
    low, high = config.train_augment_scale
    zoom = tf.random.stateless_uniform([], seeds[0], low, high) if high > low else tf.constant(1.0)
    crop = tf.minimum(tf.cast(tf.round(size / zoom), tf.int32), tf.shape(both)[0])
    both = tf.image.stateless_random_crop(both, tf.stack([crop, crop, tf.shape(both)[-1]]), seeds[1])
    if high > low:
        pixels = tf.image.resize(both[..., :3], [size, size], method="bilinear")
        masks = tf.image.resize(both[..., 3:], [size, size], method="nearest")
        both = tf.concat([pixels, masks], axis=-1)
    if config.train_augment_flips:
        both = tf.image.stateless_random_flip_left_right(both, seeds[2])
        both = tf.image.stateless_random_flip_up_down(both, seeds[3])
        both = tf.image.rot90(both, tf.random.stateless_uniform([], seeds[4], 0, 4, dtype=tf.int32))
    image, target = both[..., :3], both[..., 3:]
    if config.train_augment_intensity:
        gamma = tf.random.stateless_uniform([], seeds[5], 0.7, 1.4)
        contrast = tf.random.stateless_uniform([], seeds[6], 0.75, 1.3)
        brightness = tf.random.stateless_uniform([], seeds[7], -0.1, 0.1)
        image = tf.pow(tf.maximum(image, 0.0), gamma)
        image = (image - 0.5) * contrast + 0.5 + brightness
    if config.train_augment_colour:
        gain = tf.random.stateless_uniform([3], seeds[8], 0.88, 1.12)
        shift = tf.random.stateless_uniform([3], seeds[9], -0.05, 0.05)
        image = tf.where(colour, image * gain + shift, image)
    return image, target


def make_dataset(tiles: TileSet, config: ModelConfig, training: bool):
    """A tf.data pipeline: shuffled, augmented, batched and prefetched (reading overlaps steps)."""
    import tensorflow as tf

    n, size = len(tiles), tiles.images.shape[1]
    channels = tiles.targets.shape[-1]

    def fetch(i):
        return (tiles.images[i].astype(np.float32), tiles.targets[i].astype(np.float32),
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
        return ds.batch(config.train_batch_size).prefetch(tf.data.AUTOTUNE)
    ds = ds.shuffle(n, seed=config.train_seed, reshuffle_each_iteration=True).repeat()
    ds = ds.map(read, num_parallel_calls=tf.data.AUTOTUNE)
    seeds = tf.data.Dataset.random(seed=config.train_seed).batch(2)
    ds = tf.data.Dataset.zip((ds, seeds)).map(
        lambda sample, seed: _augment(*sample, seed, config), num_parallel_calls=tf.data.AUTOTUNE
    )
    return ds.batch(config.train_batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def validation_for_replicas(tiles: TileSet, batch_size: int, replicas: int) -> TileSet:
    """The validation tiles, less a last batch too small to give every replica a tile.

    A global batch is split over the replicas as evenly as it goes; a last batch of fewer tiles
    than replicas leaves a replica an empty batch, which the loss cannot take. Its tiles (fewer
    than the replicas) are left out; the training batches are always full.
    """
    rest = len(tiles) % batch_size
    if replicas <= 1 or not rest or rest >= replicas:
        return tiles
    keep = len(tiles) - rest
    if not keep:
        raise ConfigError(
            f"{len(tiles)} validation tile(s) cannot be split over {replicas} replicas: use "
            "more validation images (split.fractions.val, train.max_val_tiles) or fewer GPUs "
            "(train.gpus)"
        )
    log.warning("validation: the last %d of %d tiles are left out, a batch of fewer tiles than "
                "the %d replicas would leave one without data", rest, len(tiles), replicas)
    return TileSet(tiles.images[:keep], tiles.targets[:keep], tiles.colour[:keep])


# --- loss and metrics ----------------------------------------------------------------------------


def bce_dice_loss(y_true, y_pred):
    """Sum over heads of binary cross-entropy + soft Dice loss (Dice over the whole batch)."""
    from keras import ops

    y_pred = ops.clip(ops.cast(y_pred, "float32"), 1e-6, 1 - 1e-6)
    y_true = ops.cast(y_true, "float32")
    bce = -ops.mean(y_true * ops.log(y_pred) + (1 - y_true) * ops.log(1 - y_pred), axis=(0, 1, 2))
    overlap = ops.sum(y_true * y_pred, axis=(0, 1, 2))
    total = ops.sum(y_true, axis=(0, 1, 2)) + ops.sum(y_pred, axis=(0, 1, 2))
    dice = 1 - (2 * overlap + 1) / (total + 1)
    loss, replicas = ops.sum(bce + dice), _replicas_in_sync()
    return loss / replicas if replicas > 1 else loss


def _replicas_in_sync() -> int:
    """Replicas that train in step (1 outside a MirroredStrategy).

    The replicas' gradients are summed, so each replica's loss must be divided by their number
    for the step to follow the mean gradient. Keras does that for losses it reduces from
    per-sample values, but leaves a scalar loss such as bce_dice_loss as it is; Keras then
    multiplies the logged loss back by the number of replicas.
    """
    import tensorflow as tf

    return tf.distribute.get_strategy().num_replicas_in_sync


def foreground_dice(y_true, y_pred):
    """Dice of the thresholded foreground head: what a person would call the mask's overlap."""
    from keras import ops

    truth = ops.cast(y_true[..., 0] > 0.5, "float32")
    pred = ops.cast(y_pred[..., 0] > 0.5, "float32")
    return (2 * ops.sum(truth * pred) + 1) / (ops.sum(truth) + ops.sum(pred) + 1)


# --- device ------------------------------------------------------------------------------------


def limit_threads(threads: int) -> None:
    """Keep TensorFlow to the job's cores (Snakemake's threads); 0 leaves its default (all)."""
    import tensorflow as tf

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(threads, 2))


def select_device(require_gpu: bool, mixed_precision: str) -> tuple[str, bool]:
    """Which device trains, and whether in mixed precision (auto: on a GPU only)."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if require_gpu and not gpus:
        raise ConfigError(
            "train.require_gpu is true but TensorFlow sees no GPU (check `nvidia-smi`, that the "
            "job asked for one, and that tensorflow[and-cuda] is installed; see "
            "requirements-gpu.txt); set train.require_gpu: false to train on the CPU"
        )
    use_mixed = {"auto": bool(gpus), "true": True, "false": False}[str(mixed_precision).lower()]
    if use_mixed:
        import keras

        keras.mixed_precision.set_global_policy("mixed_float16")
    device = f"GPU x{len(gpus)} ({', '.join(g.name for g in gpus)})" if gpus else "CPU"
    return device, use_mixed


def training_devices(requested: int, visible: int) -> list[str]:
    """The GPUs that train: the first `requested` of the `visible` ones ([] for none: the CPU).

    Asking for more than are visible trains on those there are, with a warning (on SLURM,
    --gpus=N makes N visible).
    """
    if requested < 1:
        raise ConfigError(f"train.gpus must be at least 1, got {requested}")
    if requested > max(visible, 1):
        log.warning(
            "train.gpus is %d but TensorFlow sees %s: training on %s", requested,
            f"{visible} GPU{'s' if visible > 1 else ''}" if visible else "no GPU",
            f"{visible} GPU{'s' if visible > 1 else ''}" if visible else "the CPU",
        )
    return [f"/gpu:{i}" for i in range(min(requested, visible))]


def distribution_strategy(devices=()):
    """(strategy, description) for training on `devices` (TensorFlow device names).

    Several devices: tf.distribute.MirroredStrategy over them, data-parallel, one replica each.
    None or one: TensorFlow's default strategy (whatever device TensorFlow places ops on).
    """
    import tensorflow as tf

    devices = list(devices)
    if len(devices) <= 1:
        return tf.distribute.get_strategy(), "default strategy"
    strategy = tf.distribute.MirroredStrategy(devices)
    kinds = sorted({tf.DeviceSpec.from_string(d).device_type or "device" for d in devices})
    return strategy, (
        f"{len(devices)} {'/'.join(kinds)}s (MirroredStrategy, "
        f"{strategy.num_replicas_in_sync} replicas: {', '.join(devices)})"
    )


def split_global_batch(batch_size: int, replicas: int) -> int:
    """Patches per replica of the global batch (train.batch_size); every replica needs one."""
    per_replica, rest = divmod(batch_size, replicas)
    if not per_replica:
        raise ConfigError(
            f"train.batch_size ({batch_size}) is the global batch, split over {replicas} GPUs: "
            f"it must be at least {replicas} (better a multiple of it)"
        )
    if rest:
        log.warning("train.batch_size %d (the global batch) does not split evenly over %d "
                    "replicas: %d or %d patches each", batch_size, replicas, per_replica + 1,
                    per_replica)
    else:
        log.info("train.batch_size %d is the global batch: %d patches per replica", batch_size,
                 per_replica)
    return per_replica


# --- training -----------------------------------------------------------------------------------


def _callbacks(config: ModelConfig, state: Path, phase: str, started: float, monitor_best: float):
    import keras

    class EpochLog(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            log.info(
                "epoch %d/%d (%s) %.0fs: loss %.4f val_loss %.4f val_foreground_dice %.4f lr %.2g",
                epoch + 1, config.train_epochs, phase, time.perf_counter() - self.start,
                logs.get("loss", math.nan), logs.get("val_loss", math.nan),
                logs.get("val_foreground_dice", math.nan), lr,
            )

    class TimeBudget(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if config.train_max_minutes and time.perf_counter() - started > 60 * config.train_max_minutes:
                log.info("time budget of %.1f minutes reached: stopping", config.train_max_minutes)
                self.model.stop_training = True

    best = keras.callbacks.ModelCheckpoint(
        str(state / "best.weights.h5"), monitor="val_loss", save_best_only=True, save_weights_only=True
    )
    best.best = monitor_best  # a resumed run keeps the best epoch seen before the interruption
    callbacks = [
        keras.callbacks.BackupAndRestore(str(state / f"backup_{phase}")),
        keras.callbacks.CSVLogger(str(state / HISTORY_FILE), append=True),
        best,
        EpochLog(),
        TimeBudget(),
    ]
    if phase == "finetune":
        callbacks += [
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss", factor=0.5, patience=config.train_reduce_lr_patience, min_lr=1e-6
            ),
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=config.train_early_stopping_patience
            ),
        ]
    return callbacks


def _best_so_far(state: Path) -> float:
    history = state / HISTORY_FILE
    if history.is_file() and history.stat().st_size:
        values = pd.read_csv(history).get("val_loss")
        if values is not None and len(values):
            return float(values.min())
    return math.inf


def _prepare_state(state: Path, config: ModelConfig) -> None:
    """Keep an interrupted run's checkpoints only if it was training with the same settings."""
    settings = state / CONFIG_FILE
    if settings.is_file():
        if ModelConfig.load(settings) == config:
            log.info("found checkpoints of an interrupted run with the same settings: resuming")
            return
        log.warning("settings changed since the interrupted run in %s: starting over", state)
        shutil.rmtree(state)
    state.mkdir(parents=True, exist_ok=True)
    config.save(settings)


def file_sha256(path: str | Path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _compile(model, learning_rate: float) -> None:
    import keras

    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=bce_dice_loss,
                  metrics=[foreground_dice])


def train_model(
    config: ModelConfig,
    train_tiles: str | Path,
    val_tiles: str | Path,
    out_dir: str | Path,
    state_dir: str | Path,
    require_gpu: bool = False,
    mixed_precision: str = "auto",
    max_val_tiles: int = 0,
    threads: int = 0,
    gpus: int = 1,
    devices: list[str] | None = None,
) -> ModelConfig:
    """Train and write the model folder. Returns the config as saved (with provenance).

    `gpus` (train.gpus): how many of the visible GPUs train; more than one trains data-parallel
    under MirroredStrategy, with `config.train_batch_size` as the global batch. `devices`
    replaces that choice with these TensorFlow devices (e.g. ["/cpu:0", "/cpu:1"], logical
    CPUs in the tests), through the same path.
    """
    import keras
    import tensorflow as tf

    limit_threads(threads)
    device, mixed = select_device(require_gpu, mixed_precision)
    if devices is None:
        devices = training_devices(gpus, len(tf.config.list_physical_devices("GPU")))
    strategy, description = distribution_strategy(devices)
    replicas = strategy.num_replicas_in_sync
    if replicas > 1:
        device = description
        log.info("training on %s%s", description, " with mixed precision" if mixed else "")
        split_global_batch(config.train_batch_size, replicas)
    else:
        log.info("training on %s%s", device, " with mixed precision" if mixed else "")
    keras.utils.set_random_seed(config.train_seed)
    state, out = Path(state_dir), Path(out_dir)
    _prepare_state(state, config)

    train, val = load_tiles(train_tiles, config), load_tiles(val_tiles, config, max_val_tiles)
    val = validation_for_replicas(val, config.train_batch_size, replicas)
    if config.train_patch_size > train.images.shape[1]:
        raise ConfigError(
            f"train.patch_size ({config.train_patch_size}) exceeds the tile size "
            f"({train.images.shape[1]}); lower it or raise tiles.size"
        )
    steps = config.train_steps_per_epoch or max(1, len(train) // config.train_batch_size)
    log.info("%d training tiles, %d validation tiles, %d steps per epoch", len(train), len(val), steps)
    train_ds, val_ds = make_dataset(train, config, True), make_dataset(val, config, False)

    with strategy.scope():  # variables (model, optimizer, metrics) live on every replica
        model = build_unet(config)
    started = time.perf_counter()
    frozen_done = state / "frozen.done"
    if config.train_epochs_frozen and not frozen_done.exists():
        set_encoder_trainable(model, False)
        with strategy.scope():
            _compile(model, config.train_learning_rate)
        model.fit(train_ds, validation_data=val_ds, epochs=min(config.train_epochs_frozen, config.train_epochs),
                  steps_per_epoch=steps, verbose=0, shuffle=False,
                  callbacks=_callbacks(config, state, "frozen", started, _best_so_far(state)))
        model.save_weights(state / "frozen.weights.h5")
        frozen_done.touch()
    elif frozen_done.exists():
        log.info("resuming: the frozen-encoder phase finished before")
        model.load_weights(state / "frozen.weights.h5")
    set_encoder_trainable(model, True)
    with strategy.scope():
        _compile(model, config.train_finetune_learning_rate)
    if config.train_epochs > config.train_epochs_frozen and not model.stop_training:
        model.fit(train_ds, validation_data=val_ds, epochs=config.train_epochs,
                  initial_epoch=config.train_epochs_frozen, steps_per_epoch=steps, verbose=0, shuffle=False,
                  callbacks=_callbacks(config, state, "finetune", started, _best_so_far(state)))
    if (state / "best.weights.h5").exists():
        model.load_weights(state / "best.weights.h5")
    saved = config.replace(train_device=device, train_mixed_precision=mixed)
    write_model_folder(model, saved, state / HISTORY_FILE, out)
    shutil.rmtree(state)
    return saved


def write_model_folder(model, config: ModelConfig, history_csv: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    partial = out / f".partial.{MODEL_FILE}"  # Keras insists on the .keras suffix
    model.save(partial)
    partial.replace(out / MODEL_FILE)
    config.save(out / CONFIG_FILE)
    history = pd.read_csv(history_csv)
    history.to_csv(out / HISTORY_FILE, index=False)
    plot_history(history, out / CURVES_FILE)


def plot_history(history: pd.DataFrame, path: Path) -> None:
    from .io import new_figure, save_figure

    fig, ((loss_ax, dice_ax),) = new_figure(1, 2, (10, 4))
    epochs = history["epoch"] + 1
    for column, style in (("loss", "-"), ("val_loss", "--")):
        if column in history:
            loss_ax.plot(epochs, history[column], style, label=column)
    for column, style in (("foreground_dice", "-"), ("val_foreground_dice", "--")):
        if column in history:
            dice_ax.plot(epochs, history[column], style, label=column)
    loss_ax.set(xlabel="epoch", ylabel="BCE + Dice loss", title="loss")
    dice_ax.set(xlabel="epoch", ylabel="Dice", title="foreground Dice (threshold 0.5)")
    for ax in (loss_ax, dice_ax):
        ax.legend()
        ax.grid(alpha=0.3)
    save_figure(fig, path)
