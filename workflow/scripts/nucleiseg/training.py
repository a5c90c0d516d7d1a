"""Training: tiles -> a model folder (config.json, model.keras, history.csv, training_curves.png).

Schedule (transfer learning): `train_epochs_frozen` epochs with the ImageNet encoder frozen (only
the decoder learns, at `train_learning_rate`), then every layer at `train_finetune_learning_rate`
until `train_epochs`, early stopping or the time budget. The fine-tuning rate is halved on
plateaus of the validation loss, or, with `train_decay_epochs`, follows a cosine down to
DECAY_FLOOR of itself (`finetune_rate`). The loss is BCE + Dice per head
(losses.py). The best epoch on validation loss is kept, or, with `train_average_epochs` N, the
mean of the last N epochs' weights (stochastic weight averaging, Izmailov et al. 2018:
`average_weights`; BatchNorm's moving statistics are averaged with the rest). Progress is
checkpointed in a state folder outside the outputs, so a rerun of an interrupted training
resumes from its last finished epoch.

Several GPUs (train.gpus, SLURM's --gpus) train data-parallel with tf.distribute.MirroredStrategy
(devices.py): one replica of the model per GPU, gradients summed across them each step.
train.patches_per_step is the global step, split evenly over the replicas (8 on 2 GPUs: 4
patches per GPU per step), so the same settings take the same number of steps and see the same
patches per epoch on any number of GPUs. BatchNorm statistics and the Dice term of the loss are
computed per replica, on its share of the patches. One GPU or the CPU trains under TensorFlow's
default strategy.
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from pathlib import Path

import pandas as pd

from .data import (TileSet, load_tiles, make_dataset, tiles_nucleus_diameters,
                   validation_for_replicas)
from .devices import (configure_tensorflow, distribution_strategy, patches_per_replica,
                      select_device, training_devices)
from .errors import ConfigError
from .losses import bce_dice_loss, foreground_dice
from .modelconfig import DECAY_FLOOR, ModelConfig
from .modelfolder import CONFIG_FILE, CURVES_FILE, HISTORY_FILE, MODEL_FILE
from .network import build_unet, float32_copy, set_encoder_trainable

log = logging.getLogger(__name__)


def finetune_rate(config: ModelConfig, epoch: int) -> float:
    """The learning rate of fine-tuning epoch `epoch` (counted from 0, frozen epochs included).

    With `train_decay_epochs` N, a cosine from `train_finetune_learning_rate` at the first
    fine-tuning epoch down to DECAY_FLOOR of it N epochs later, flat after. It depends on the
    epoch alone, not on `train_epochs`: a longer training starts as a shorter one.
    """
    rate = config.train_finetune_learning_rate
    if not config.train_decay_epochs:
        return rate
    done = min(max(epoch - config.train_epochs_frozen, 0), config.train_decay_epochs)
    cosine = 0.5 * (1.0 + math.cos(math.pi * done / config.train_decay_epochs))
    return rate * (DECAY_FLOOR + (1.0 - DECAY_FLOOR) * cosine)


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

    class LastEpochs(keras.callbacks.Callback):
        """Each epoch's weights, the last train_average_epochs of them kept."""

        def on_epoch_end(self, epoch, logs=None):
            self.model.save_weights(state / f"{EPOCH_WEIGHTS}{epoch + 1:04d}.weights.h5")
            for old in epoch_weights(state)[:-config.train_average_epochs]:
                old.unlink()

    callbacks = [
        keras.callbacks.BackupAndRestore(str(state / f"backup_{phase}")),
        keras.callbacks.CSVLogger(str(state / HISTORY_FILE), append=True),
        best,
        EpochLog(),
        TimeBudget(),
    ] + ([LastEpochs()] if config.train_average_epochs else [])
    if phase == "finetune":
        callbacks += [
            keras.callbacks.LearningRateScheduler(lambda epoch, _: finetune_rate(config, epoch))
            if config.train_decay_epochs else
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss", factor=0.5, patience=config.train_reduce_lr_patience, min_lr=1e-6
            ),
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=config.train_early_stopping_patience
            ),
        ]
    return callbacks


# The files of each epoch's weights in the state folder (train_average_epochs), by epoch.
EPOCH_WEIGHTS = "epoch"


def epoch_weights(state: Path) -> list[Path]:
    """The epoch weight files in `state`, first epoch first."""
    return sorted(Path(state).glob(f"{EPOCH_WEIGHTS}*.weights.h5"))


def epoch_of(file: Path) -> int:
    """The epoch (from 1) whose weights `file` holds, from its name (epoch0007.weights.h5: 7)."""
    return int(Path(file).name.split(".")[0].removeprefix(EPOCH_WEIGHTS))


def average_weights(model, files: list[Path]) -> None:
    """Set `model`'s weights to the mean of those saved in `files`."""
    total = None
    for file in files:
        model.load_weights(file)
        weights = model.get_weights()
        total = weights if total is None else [t + w for t, w in zip(total, weights)]
    model.set_weights([t / len(files) for t in total])
    log.info("weights: the mean of %d epochs' (%s)", len(files),
             ", ".join(str(epoch_of(f)) for f in files))


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
    under MirroredStrategy, with `config.train_patches_per_step` as the global step. `devices`
    replaces that choice with these TensorFlow devices (e.g. ["/cpu:0", "/cpu:1"], logical
    CPUs in the tests), through the same path.
    """
    import keras

    configure_tensorflow(threads)
    strategy, device, mixed = _strategy(config, require_gpu, mixed_precision, gpus, devices)
    keras.utils.set_random_seed(config.train_seed)
    state, out = Path(state_dir), Path(out_dir)
    _prepare_state(state, config)
    train, val = _load_data(config, train_tiles, val_tiles, max_val_tiles,
                            strategy.num_replicas_in_sync)
    steps = config.train_steps_per_epoch or max(1, len(train) // config.train_patches_per_step)
    log.info("%d training tiles, %d validation tiles, %d steps per epoch", len(train), len(val), steps)
    data = (make_dataset(train, config, True), make_dataset(val, config, False), steps)

    with strategy.scope():  # variables (model, optimizer, metrics) live on every replica
        model = build_unet(config)
    started = time.perf_counter()
    _fit_frozen(model, strategy, config, state, data, started)
    _fit_finetune(model, strategy, config, state, data, started)
    if config.train_average_epochs and epoch_weights(state):
        average_weights(model, epoch_weights(state))
    elif (state / "best.weights.h5").exists():
        model.load_weights(state / "best.weights.h5")
    if mixed:
        model = float32_copy(model, config)
    saved = config.replace(train_device=device, train_mixed_precision=mixed,
                           train_nucleus_diameters=tiles_nucleus_diameters(train_tiles))
    write_model_folder(model, saved, state / HISTORY_FILE, out)
    shutil.rmtree(state)
    return saved


def _strategy(config: ModelConfig, require_gpu: bool, mixed_precision: str, gpus: int,
              devices: list[str] | None):
    """(strategy, device description, mixed precision) for this training; logs the device."""
    import keras
    import tensorflow as tf

    device, mixed = select_device(require_gpu, mixed_precision)
    if devices is None:
        devices = training_devices(gpus, len(tf.config.list_physical_devices("GPU")))
    strategy, description = distribution_strategy(devices)
    if strategy.num_replicas_in_sync > 1:
        device = description
        patches_per_replica(config.train_patches_per_step, strategy.num_replicas_in_sync)
    policy = keras.mixed_precision.global_policy().name
    log.info("training on %s%s", device, f" with mixed precision ({policy})" if mixed else "")
    return strategy, device, mixed


def _load_data(config: ModelConfig, train_tiles, val_tiles, max_val_tiles: int,
               replicas: int) -> tuple[TileSet, TileSet]:
    train, val = load_tiles(train_tiles, config), load_tiles(val_tiles, config, max_val_tiles)
    val = validation_for_replicas(val, config.train_patches_per_step, replicas)
    if config.train_patch_size > train.images.shape[1]:
        raise ConfigError(
            f"train.patch_size ({config.train_patch_size}) exceeds the tile size "
            f"({train.images.shape[1]}); lower it or raise tiles.size"
        )
    return train, val


def _fit_frozen(model, strategy, config: ModelConfig, state: Path, data, started: float) -> None:
    """The first epochs, encoder frozen; skipped (its weights reloaded) when resuming after it."""
    train_ds, val_ds, steps = data
    frozen_done = state / "frozen.done"
    if config.train_epochs_frozen and not frozen_done.exists():
        set_encoder_trainable(model, False)
        with strategy.scope():
            _compile(model, config.train_learning_rate)
        model.fit(train_ds, validation_data=val_ds,
                  epochs=min(config.train_epochs_frozen, config.train_epochs),
                  steps_per_epoch=steps, verbose=0, shuffle=False,
                  callbacks=_callbacks(config, state, "frozen", started, _best_so_far(state)))
        model.save_weights(state / "frozen.weights.h5")
        frozen_done.touch()
    elif frozen_done.exists():
        log.info("resuming: the frozen-encoder phase finished before")
        model.load_weights(state / "frozen.weights.h5")


def _fit_finetune(model, strategy, config: ModelConfig, state: Path, data,
                  started: float) -> None:
    """Every layer trains, up to train_epochs, early stopping or the time budget."""
    train_ds, val_ds, steps = data
    set_encoder_trainable(model, True)
    with strategy.scope():
        _compile(model, config.train_finetune_learning_rate)
    if config.train_epochs > config.train_epochs_frozen and not model.stop_training:
        model.fit(train_ds, validation_data=val_ds, epochs=config.train_epochs,
                  initial_epoch=config.train_epochs_frozen, steps_per_epoch=steps, verbose=0,
                  shuffle=False,
                  callbacks=_callbacks(config, state, "finetune", started, _best_so_far(state)))


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
