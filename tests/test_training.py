"""The network and its training, with tiny models on synthetic tiles (CPU, seconds)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import REPO, SHARED_WEIGHTS
from nucleiseg.errors import ConfigError
from nucleiseg.inference import BackendChoice
from nucleiseg.modelconfig import ModelConfig
from nucleiseg.model import NucleusModel
from nucleiseg.network import build_unet, resolve_encoder_weights
from nucleiseg.predict import predict_untiled
from nucleiseg.synthetic import make_nuclei

WEIGHTS = SHARED_WEIGHTS / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
TINY = dict(unet_alpha=0.35, unet_encoder_weights="none", unet_decoder_filters=(16, 16, 8, 8, 8),
            train_patch_size=64, train_patches_per_step=4, train_epochs_frozen=1, train_epochs=3,
            train_steps_per_epoch=8)


def write_tile_set(folder: Path, n: int, seed: int, size: int = 64) -> Path:
    """A tile folder as tile_images writes it, from synthetic nuclei with exact labels."""
    folder.mkdir(parents=True, exist_ok=True)
    images, labels = [], []
    for k in range(n):
        sample = make_nuclei((size, size), n_nuclei=6, radius=(4, 7), touching_pairs=1, seed=seed + k)
        image = sample.image.astype(np.float32)
        image = (image - image.min()) / max(float(image.max() - image.min()), 1.0)
        images.append(np.repeat(image[..., None], 3, axis=-1))
        labels.append(sample.labels)
    np.save(folder / "images.npy", np.stack(images).astype(np.float16))
    np.save(folder / "labels.npy", np.stack(labels).astype(np.uint16))
    pd.DataFrame({"tile": range(n), "id": [f"s{k}" for k in range(n)], "modality": "fluorescence",
                  "y": 0, "x": 0, "valid_height": size, "valid_width": size,
                  "n_objects": 6}).to_csv(folder / "tiles.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def tiles(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiles")
    return write_tile_set(root / "train", 12, seed=0), write_tile_set(root / "val", 4, seed=100)


@pytest.fixture(scope="module")
def trained(tiles, tmp_path_factory):
    from nucleiseg.training import train_model

    out = tmp_path_factory.mktemp("model")
    config = train_model(ModelConfig(**TINY), *tiles, out / "model", out / "state")
    return out / "model", config


def test_training_writes_the_model_folder_and_the_loss_falls(trained):
    folder, config = trained
    assert sorted(p.name for p in folder.iterdir()) == [
        "config.json", "history.csv", "model.keras", "training_curves.png"]
    history = pd.read_csv(folder / "history.csv")
    assert history["epoch"].tolist() == [0, 1, 2]
    assert history["loss"].iloc[-1] < history["loss"].iloc[0]
    assert config.train_device == "CPU"
    # radius 4-7 px: equivalent diameters 8-14 px (the sizes segment.rescale auto matches)
    low, median, high = config.train_nucleus_diameters
    assert 8 <= low <= median <= high <= 14
    assert ModelConfig.load(folder / "config.json") == config
    assert not (folder.parent / "state").exists()  # checkpoints are cleaned up once done


def test_the_decayed_rate_falls_along_a_cosine_whatever_the_last_epoch():
    from nucleiseg.training import finetune_rate

    config = ModelConfig(**{**TINY, "train_epochs_frozen": 2, "train_decay_epochs": 4,
                            "train_finetune_learning_rate": 1e-3})
    rates = [finetune_rate(config, epoch) for epoch in range(9)]
    assert rates[:3] == pytest.approx([1e-3] * 3)  # until fine-tuning starts, then falls
    assert rates[4] == pytest.approx(1e-3 * (0.01 + 0.99 * 0.5))  # halfway: halfway down
    assert rates[6:] == pytest.approx([1e-5] * 3)  # the floor, 1% of the rate, after 4 epochs
    assert all(a > b for a, b in zip(rates[2:6], rates[3:7]))
    longer = config.replace(train_epochs=40)
    assert [finetune_rate(longer, epoch) for epoch in range(9)] == rates
    assert finetune_rate(config.replace(train_decay_epochs=0), 7) == 1e-3  # off: constant


def test_a_training_with_decay_runs_its_epochs_at_the_decayed_rates(tiles, tmp_path, caplog):
    from nucleiseg.training import finetune_rate, train_model

    caplog.set_level("INFO", logger="nucleiseg")
    config = ModelConfig(**{**TINY, "train_epochs": 4, "train_steps_per_epoch": 2,
                            "train_decay_epochs": 2})
    train_model(config, *tiles, tmp_path / "model", tmp_path / "state")
    logged = [line.split(" lr ")[1] for line in caplog.text.splitlines() if " lr " in line]
    assert logged == [f"{config.train_learning_rate:.2g}"] + [
        f"{finetune_rate(config, epoch):.2g}" for epoch in (1, 2, 3)]
    assert logged[1:] == ["0.0003", "0.00015", "3e-06"]  # the rate, halfway down, the floor


def test_averaged_weights_are_the_mean_of_the_last_epochs(tiles, tmp_path, caplog):
    """train_average_epochs 3 over a frozen epoch and 3 fine-tuning ones: the saved model holds
    the mean of epochs 2-4, which a copy of the state folder taken before it is removed shows."""
    import shutil

    import keras

    from nucleiseg import training

    caplog.set_level("INFO", logger="nucleiseg")
    config = ModelConfig(**{**TINY, "train_epochs": 4, "train_steps_per_epoch": 2,
                            "train_average_epochs": 3})
    kept = tmp_path / "kept"
    original = training.average_weights

    def keep_then_average(model, files):
        kept.mkdir()
        for file in files:
            shutil.copy(file, kept)
        original(model, files)

    training.average_weights = keep_then_average
    try:
        training.train_model(config, *tiles, tmp_path / "model", tmp_path / "state")
    finally:
        training.average_weights = original
    assert [f.name for f in training.epoch_weights(kept)] == [
        "epoch0002.weights.h5", "epoch0003.weights.h5", "epoch0004.weights.h5"]
    assert "weights: the mean of 3 epochs' (2, 3, 4)" in caplog.text
    network = build_unet(config)
    epochs = []
    for file in training.epoch_weights(kept):
        network.load_weights(file)
        epochs.append(network.get_weights())
    saved = keras.models.load_model(tmp_path / "model" / "model.keras", compile=False).get_weights()
    assert len(saved) == len(epochs[0])
    for layer, *values in zip(saved, *epochs):
        np.testing.assert_allclose(layer, np.mean(values, axis=0), rtol=1e-5, atol=1e-6)
    assert any(not np.allclose(a, b) for a, b in zip(epochs[0], epochs[2]))  # they differ


def test_saved_model_predicts_exactly_like_the_trained_one(trained, tiles):
    folder, config = trained
    loaded = NucleusModel.load(folder, thresholds=False)
    assert loaded.config == config
    rebuilt = build_unet(config)
    rebuilt.set_weights(loaded.network.get_weights())
    image = np.load(tiles[1] / "images.npy")[0].astype(np.float32)
    first = predict_untiled(loaded.network, image)
    np.testing.assert_allclose(predict_untiled(NucleusModel.load(folder, thresholds=False).network, image), first, atol=1e-6)
    np.testing.assert_allclose(predict_untiled(rebuilt, image), first, atol=1e-5)


@pytest.mark.parametrize("shape", [(37, 101), (1, 50), (64, 96), (250, 33)])
def test_any_input_size(trained, shape):
    network = NucleusModel.load(trained[0], thresholds=False).network
    image = np.random.default_rng(0).random(shape, dtype=np.float32)
    maps = predict_untiled(network, image)
    assert maps.shape == shape + (2,)
    assert maps.dtype == np.float32 and (maps >= 0).all() and (maps <= 1).all()


def test_sizes_that_fit_are_not_padded(trained):
    network = NucleusModel.load(trained[0], thresholds=False).network
    image = np.random.default_rng(1).random((64, 96, 3), dtype=np.float32)
    direct = np.asarray(network.predict_on_batch(image[None]))[0]
    np.testing.assert_allclose(predict_untiled(network, image), direct, atol=1e-6)


def test_mask_head_has_one_output():
    network = build_unet(ModelConfig(**{**TINY, "heads": "mask"}))
    assert network.output_shape[-1] == 1


@pytest.mark.skipif(not WEIGHTS.is_file(), reason=f"ImageNet weights not found at {WEIGHTS}")
def test_local_imagenet_weights_end_up_in_the_encoder():
    import h5py

    network = build_unet(ModelConfig(unet_encoder_weights=str(WEIGHTS), unet_decoder_filters=(8,) * 5))
    encoder = network.get_layer("encoder")
    with h5py.File(WEIGHTS, "r") as h5:
        for layer_name in ("Conv1", "block_6_depthwise", "block_13_depthwise_BN", "block_16_project"):
            group = h5[layer_name]
            names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]]
            stored = [np.asarray(group[n]) for n in names]
            loaded = encoder.get_layer(layer_name).get_weights()
            assert len(stored) == len(loaded)
            for a, b in zip(stored, loaded):
                np.testing.assert_array_equal(a, b)


def test_weight_settings_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_encoder_weights(str(tmp_path / "missing.h5"), 1.0)
    wrong = tmp_path / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
    wrong.write_bytes(b"")
    with pytest.raises(ConfigError, match="alpha 1.0, but model.alpha is 0.35"):
        resolve_encoder_weights(str(wrong), 0.35)
    assert resolve_encoder_weights("none", 1.0) is None


def test_offline_imagenet_download_says_to_use_a_local_file(monkeypatch):
    """Keras' own download fails offline with a bare Exception; the user gets the way out."""
    from keras.src.applications import mobilenet_v2

    def offline(*args, **kwargs):  # what keras.utils.get_file raises without DNS
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: None -- "
                        "[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(mobilenet_v2.file_utils, "get_file", offline)
    with pytest.raises(ConfigError) as caught:
        build_unet(ModelConfig(unet_encoder_weights="imagenet", unet_decoder_filters=(8,) * 5))
    message = str(caught.value)
    assert "model.encoder_weights" in message
    assert "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5" in message


def test_require_gpu_without_a_gpu_is_a_clear_error():
    import tensorflow as tf

    from nucleiseg.devices import select_device

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU")
    with pytest.raises(ConfigError, match="train.require_gpu is true but TensorFlow sees no GPU"):
        select_device(require_gpu=True, mixed_precision="auto")
    assert select_device(require_gpu=False, mixed_precision="auto") == ("CPU", False)


RESUME_SCRIPT = """
import logging, sys
sys.path.insert(0, {scripts!r})
logging.basicConfig(level=logging.INFO)
from nucleiseg.modelconfig import ModelConfig
from nucleiseg.training import train_model
train_model(ModelConfig(**{config!r}), {train!r}, {val!r}, {out!r}, {state!r})
"""


@pytest.mark.slow
def test_interrupted_training_resumes_from_its_last_epoch(tiles, tmp_path):
    """Kill a real training process after its first epoch; the rerun continues, not restarts."""
    from nucleiseg.training import train_model

    config = {**TINY, "train_epochs": 4, "train_steps_per_epoch": 30}
    out, state = tmp_path / "model", tmp_path / "state"
    script = RESUME_SCRIPT.format(scripts=str(REPO / "workflow" / "scripts"), config=config,
                                  train=str(tiles[0]), val=str(tiles[1]), out=str(out), state=str(state))
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    history = state / "history.csv"
    deadline = time.time() + 240
    while time.time() < deadline and process.poll() is None:
        if history.is_file() and len(history.read_text().splitlines()) >= 2:  # header + epoch 0
            break
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    before = pd.read_csv(history)
    assert 1 <= len(before) < 4, "the kill must land after the first epoch and before the end"
    assert not out.exists()

    train_model(ModelConfig(**config), *tiles, out, state)
    after = pd.read_csv(out / "history.csv")
    assert after["epoch"].tolist() == [0, 1, 2, 3]  # each epoch once: nothing was redone
    pd.testing.assert_frame_equal(after.iloc[: len(before)], before)  # earlier epochs kept as run


# --- several devices: tf.distribute.MirroredStrategy ---------------------------------------------


def test_one_gpu_or_none_trains_under_the_default_strategy(caplog):
    import tensorflow as tf

    from nucleiseg.devices import distribution_strategy, training_devices

    assert training_devices(1, 0) == []  # the CPU
    assert training_devices(1, 2) == ["/gpu:0"]  # train.gpus: 1 on a node showing two
    assert training_devices(2, 4) == ["/gpu:0", "/gpu:1"]
    for devices in ([], ["/gpu:0"], ["/cpu:0"]):
        strategy, description = distribution_strategy(devices)
        assert strategy is tf.distribute.get_strategy()
        assert not isinstance(strategy, tf.distribute.MirroredStrategy)
        assert strategy.num_replicas_in_sync == 1 and description == "default strategy"
    assert not caplog.records


def test_more_gpus_asked_for_than_visible_trains_on_those_there_are(caplog):
    from nucleiseg.devices import training_devices

    assert training_devices(4, 2) == ["/gpu:0", "/gpu:1"]
    assert "train.gpus is 4 but TensorFlow sees 2 GPUs: training on 2 GPUs" in caplog.text
    caplog.clear()
    assert training_devices(2, 1) == ["/gpu:0"]
    assert "train.gpus is 2 but TensorFlow sees 1 GPU: training on 1 GPU" in caplog.text
    caplog.clear()
    assert training_devices(2, 0) == []
    assert "train.gpus is 2 but TensorFlow sees no GPU: training on the CPU" in caplog.text
    with pytest.raises(ConfigError, match="train.gpus must be at least 1"):
        training_devices(0, 1)


def test_a_steps_patches_are_split_over_the_replicas(caplog):
    from nucleiseg.devices import patches_per_replica

    caplog.set_level("INFO", logger="nucleiseg")
    assert patches_per_replica(8, 2) == 4
    assert "train.patches_per_step 8: 4 patches per replica" in caplog.text
    assert patches_per_replica(5, 2) == 2
    assert "does not split evenly over 2 replicas: 3 or 2 patches each" in caplog.text
    with pytest.raises(ConfigError, match=r"train.patches_per_step \(2\) is split over 4"):
        patches_per_replica(2, 4)


def test_validation_leaves_no_replica_without_tiles(caplog):
    from nucleiseg.data import TileSet, validation_for_replicas

    def tile_set(n):
        return TileSet(np.zeros((n, 8, 8, 3), np.float16), np.zeros((n, 8, 8, 2), np.uint8),
                       np.zeros(n, bool))

    # (tiles, patches per step, replicas) -> tiles kept: only a last step of fewer tiles than
    # replicas goes (5 tiles in steps of 4 on 2 replicas: [2, 2] then [1, 0])
    for n, batch, replicas, kept in [(5, 4, 1, 5), (8, 4, 2, 8), (6, 4, 2, 6), (5, 4, 2, 4),
                                     (9, 8, 4, 8), (11, 8, 4, 8), (12, 8, 4, 12), (3, 8, 2, 3)]:
        assert len(validation_for_replicas(tile_set(n), batch, replicas)) == kept, (n, batch, replicas)
    assert "the last 1 of 5 tiles are left out" in caplog.text
    with pytest.raises(ConfigError, match="1 validation tile.s. cannot be split over 2 replicas"):
        validation_for_replicas(tile_set(1), 4, 2)


# Two logical CPUs stand in for two GPUs: train_model(devices=...) takes the path that train.gpus
# > 1 takes on a GPU node. Logical devices must be set before TensorFlow initializes its devices,
# hence a fresh process.
MIRRORED_SCRIPT = """
import logging, sys
sys.path.insert(0, {scripts!r})
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
logging.getLogger("nucleiseg").setLevel(logging.INFO)
from nucleiseg.modelconfig import ModelConfig
from nucleiseg.devices import distribution_strategy
from nucleiseg.losses import bce_dice_loss
from nucleiseg.training import train_model
DEVICES = ["/cpu:0", "/cpu:1"]
train_model(ModelConfig(**{config!r}), {train!r}, {val!r}, {out!r}, {state!r},
            mixed_precision={mixed!r}, threads=2, devices=DEVICES)
# Each replica gets all the patches here: the replicas' losses must add up to the loss itself
# (Keras sums the replicas' gradients), not to twice it.
rng = np.random.default_rng(0)
truth = tf.constant((rng.random((4, 16, 16, 2)) > 0.7).astype("float32"))
pred = tf.constant(rng.uniform(0.05, 0.95, (4, 16, 16, 2)).astype("float32"))
strategy, _ = distribution_strategy(DEVICES)
per_replica = tf.function(lambda: strategy.run(bce_dice_loss, args=(truth, pred)))()
summed = strategy.reduce("SUM", per_replica, axis=None)
print("LOSSES", float(summed), float(bce_dice_loss(truth, pred)))
"""


def _mirrored_script(config: dict, tiles, out: Path, state: Path, mixed: str = "false") -> str:
    return MIRRORED_SCRIPT.format(scripts=str(REPO / "workflow" / "scripts"), config=config,
                                  train=str(tiles[0]), val=str(tiles[1]), out=str(out),
                                  state=str(state), mixed=mixed)


def _quiet_env() -> dict:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore"}


@pytest.mark.slow
def test_two_replicas_train_and_resume_under_mirrored_strategy(tiles, tmp_path):
    """Both phases (frozen, then fine-tuning re-compiled) train data-parallel on two devices;
    killed after its first epoch, the rerun resumes under the strategy instead of restarting."""
    config = {**TINY, "train_epochs_frozen": 1, "train_epochs": 2, "train_steps_per_epoch": 2}
    out, state = tmp_path / "model", tmp_path / "state"
    # 5 validation tiles in batches of 4: the last one would leave a replica without data
    tiles = (tiles[0], write_tile_set(tmp_path / "val", 5, seed=100))
    script = _mirrored_script(config, tiles, out, state)
    first_log = tmp_path / "first.log"
    with first_log.open("w") as stream:
        process = subprocess.Popen([sys.executable, "-c", script], stdout=stream, stderr=stream,
                                   start_new_session=True, env=_quiet_env())
        history = state / "history.csv"
        deadline = time.time() + 120
        while time.time() < deadline and process.poll() is None:
            if history.is_file() and len(history.read_text().splitlines()) >= 2:  # epoch 0 done
                break
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):  # it may have died on its own: see its log
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    first = first_log.read_text()
    assert "training on 2 CPUs (MirroredStrategy, 2 replicas: /cpu:0, /cpu:1)" in first, first
    assert "train.patches_per_step 4: 2 patches per replica" in first
    assert "validation: the last 1 of 5 tiles are left out" in first
    before = pd.read_csv(history)
    assert before["epoch"].tolist() == [0] and not out.exists(), first

    rerun = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           timeout=180, env=_quiet_env(), check=False)
    log = rerun.stdout + rerun.stderr
    assert rerun.returncode == 0, log
    assert "2 replicas" in log and "resuming" in log
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json", "history.csv", "model.keras", "training_curves.png"]
    after = pd.read_csv(out / "history.csv")
    assert after["epoch"].tolist() == [0, 1]  # epoch 0 was not redone
    pd.testing.assert_frame_equal(after.iloc[:1], before)
    assert np.isfinite(after[["loss", "val_loss"]].to_numpy()).all()
    # The loss is logged per sample as on one device (about 3 for this untrained network), not
    # multiplied by the number of replicas.
    assert (after["loss"] < 4.5).all()
    saved = ModelConfig.load(out / "config.json")
    assert saved.train_device.startswith("2 CPUs (MirroredStrategy") and not saved.train_mixed_precision
    assert NucleusModel.load(out, thresholds=False).network.output_shape[-1] == 2  # loads without the strategy
    summed, single = map(float, log.split("LOSSES")[1].split()[:2])
    assert summed == pytest.approx(single, rel=1e-5)


@pytest.mark.slow
def test_mixed_precision_under_mirrored_strategy(tiles, tmp_path):
    """The policy is set before the model is built in the strategy's scope, and the optimizer
    steps across the replicas (frozen phase only, to stay short on a CPU). On CPUs mixed
    precision is bfloat16; the model it saves loads and predicts as any other, on both engines,
    with the same maps to bfloat16's precision."""
    config = {**TINY, "train_epochs_frozen": 1, "train_epochs": 1, "train_steps_per_epoch": 2}
    out = tmp_path / "model"
    script = _mirrored_script(config, tiles, out, tmp_path / "state", mixed="true")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=180, env=_quiet_env(), check=False)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log
    assert "MirroredStrategy, 2 replicas" in log
    assert "with mixed precision (mixed_bfloat16)" in log
    history = pd.read_csv(out / "history.csv")
    assert history["epoch"].tolist() == [0] and np.isfinite(history["loss"]).all()
    assert ModelConfig.load(out / "config.json").train_mixed_precision
    image = make_nuclei((64, 64), n_nuclei=6, radius=(4, 7), seed=7).image.astype(np.float32)
    image = np.repeat((image / image.max())[..., None], 3, axis=-1)
    maps = {}
    for engine in ("tensorflow", "openvino"):
        model = NucleusModel.load(out, thresholds=False,
                                  backend=BackendChoice(engine, "float32"))
        maps[engine] = model.predict(image)
        assert maps[engine].dtype == np.float32 and np.isfinite(maps[engine]).all()
    np.testing.assert_allclose(maps["openvino"], maps["tensorflow"], atol=0.02)


def test_augmentation_zooms_out_past_the_tile_and_jitters_stains():
    """Zooms drawn log-uniformly in [0.5, 2] on a tile only 1.33x the patch: a ramp's slope in
    the patch's middle shows each zoom (a zoom out past the tile shrinks it, mirrored at its
    edges); the patch keeps its size and binary targets. Stain jitter keeps a white background
    about white and moves the stained pixels, a little."""
    import tensorflow as tf

    from nucleiseg.data import _augment

    config = ModelConfig(**{**TINY, "train_patch_size": 96, "train_augment_scale": (0.5, 2.0),
                            "train_augment_stain": True, "train_augment_colour": False,
                            "train_augment_intensity": False, "train_augment_flips": False})
    ramp = np.repeat(np.tile(np.arange(128, dtype=np.float32) / 128, (128, 1))[..., None], 3, -1)
    sample = make_nuclei((128, 128), n_nuclei=6, radius=(8, 12), seed=3)
    target = (sample.labels > 0)[..., None].astype(np.float32)
    zooms = []
    for k in range(40):
        out, out_target = (t.numpy() for t in _augment(
            tf.constant(ramp), tf.constant(target), tf.constant(False),
            tf.constant([k, 7], tf.int64), config))
        assert out.shape == (96, 96, 3) and set(np.unique(out_target)) <= {0.0, 1.0}
        zooms.append(1 / 128 / np.median(np.abs(np.diff(out[40:56, 40:56, 0], axis=1))))
    assert min(zooms) < 0.6 and max(zooms) > 1.6 and 0.45 < min(zooms) and max(zooms) < 2.1

    stained = np.ones((128, 128, 3), np.float32)
    stained[sample.labels > 0] = (0.4, 0.2, 0.6)  # haematoxylin-ish nuclei on white
    moved = []
    for k in range(8):
        out, out_target = (t.numpy() for t in _augment(
            tf.constant(stained), tf.constant(target), tf.constant(True),
            tf.constant([k, 1], tf.int64), config.replace(train_augment_scale=(1.0, 1.0))))
        assert np.median(out[out_target[..., 0] == 0]) > 0.9  # white stays about white
        moved.append(np.abs(np.median(out[out_target[..., 0] == 1], axis=0) - (0.4, 0.2, 0.6)))
    assert 0.005 < np.max(moved) < 0.2


def test_lowres_augmentation_blurs_some_tiles_and_keeps_their_size():
    """train.augment.lowres: stripes one pixel wide survive no shrinking, so a patch whose
    stripes are gone was shrunk and enlarged back; about `chance` of them are, the rest are
    untouched, and the targets never change."""
    import tensorflow as tf

    from nucleiseg.data import _augment

    config = ModelConfig(**{**TINY, "train_augment_lowres": 0.5, "train_augment_colour": False,
                            "train_augment_intensity": False, "train_augment_flips": False})
    stripes = np.zeros((64, 64, 3), np.float32)
    stripes[::2] = 1
    target = np.zeros((64, 64, 1), np.float32)
    target[10:30, 10:30] = 1
    blurred = []
    for k in range(200):
        out, out_target = (t.numpy() for t in _augment(
            tf.constant(stripes), tf.constant(target), tf.constant(False),
            tf.constant([k, 3], tf.int64), config))
        assert out.shape == (64, 64, 3) and np.array_equal(out_target, target)
        sharp = np.array_equal(out, stripes)
        assert sharp or np.abs(out - 0.5).max() < 0.45  # untouched, or the stripes are gone
        blurred.append(not sharp)
    assert 0.4 < np.mean(blurred) < 0.6
    config = config.replace(train_augment_lowres=0.0)
    out, _ = _augment(tf.constant(stripes), tf.constant(target), tf.constant(False),
                      tf.constant([0, 3], tf.int64), config)
    assert np.array_equal(out.numpy(), stripes)


def test_touch_weight_weighs_the_contour_loss_where_nuclei_touch():
    """A zero touch channel leaves the loss as it was; a touch channel of w adds w times the
    contour head's cross-entropy on those pixels (mean over every pixel); the foreground head
    and the Dice terms are untouched."""
    from nucleiseg.losses import bce_dice_loss

    rng = np.random.default_rng(1)
    truth = (rng.random((2, 8, 8, 2)) > 0.6).astype(np.float32)
    pred = rng.uniform(0.05, 0.95, (2, 8, 8, 2)).astype(np.float32)
    touch = (rng.random((2, 8, 8, 1)) > 0.8).astype(np.float32)
    plain = float(bce_dice_loss(truth, pred))
    zero = float(bce_dice_loss(np.concatenate([truth, 0 * touch], -1), pred))
    weighed = float(bce_dice_loss(np.concatenate([truth, 3 * touch], -1), pred))
    bce = -(truth[..., 1] * np.log(pred[..., 1]) + (1 - truth[..., 1]) * np.log(1 - pred[..., 1]))
    assert zero == pytest.approx(plain, rel=1e-6)
    assert weighed - plain == pytest.approx(np.mean(3 * touch[..., 0] * bce), rel=1e-4)


def test_touch_weight_reaches_the_training_targets(tiles, tmp_path):
    """train_touch_weight 4: the targets gain the touch band as a third channel, worth 4 where
    nuclei touch, and a tiny training runs on them."""
    from nucleiseg.data import load_tiles, make_dataset
    from nucleiseg.targets import touch_map
    from nucleiseg.training import train_model

    config = ModelConfig(**{**TINY, "train_epochs": 1, "train_steps_per_epoch": 2,
                            "train_touch_weight": 4.0})
    val = load_tiles(tiles[1], config)
    labels = np.load(tiles[1] / "labels.npy")
    _, targets = next(iter(make_dataset(val, config, training=False)))
    assert targets.shape[-1] == 3
    for one, target in zip(labels, targets.numpy()):
        np.testing.assert_array_equal(target[..., 2], 4 * touch_map(one, config.contour_width))
    assert targets.numpy()[..., 2].max() == 4  # the synthetic tiles have touching pairs
    saved = train_model(config, *tiles, tmp_path / "model", tmp_path / "state")
    assert saved.train_touch_weight == 4.0
    history = pd.read_csv(tmp_path / "model" / "history.csv")
    assert np.isfinite(history[["loss", "val_loss"]].to_numpy()).all()
    with pytest.raises(ConfigError, match="train.touch_weight .* needs model.heads: contour"):
        ModelConfig(**{**TINY, "heads": "mask", "train_touch_weight": 1.0})
