"""The network and its training, with tiny models on synthetic tiles (CPU, seconds)."""

from __future__ import annotations

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
from nucleiseg.modelconfig import ModelConfig
from nucleiseg.modelfolder import load_model_folder
from nucleiseg.network import build_unet, predict_maps, resolve_encoder_weights
from nucleiseg.synthetic import make_nuclei

WEIGHTS = SHARED_WEIGHTS / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
TINY = dict(unet_alpha=0.35, unet_encoder_weights="none", unet_decoder_filters=(16, 16, 8, 8, 8),
            train_patch_size=64, train_batch_size=4, train_epochs_frozen=1, train_epochs=3,
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
    assert ModelConfig.load(folder / "config.json") == config
    assert not (folder.parent / "state").exists()  # checkpoints are cleaned up once done


def test_saved_model_predicts_exactly_like_the_trained_one(trained, tiles):
    folder, config = trained
    loaded = load_model_folder(folder)
    assert loaded.config == config
    rebuilt = build_unet(config)
    rebuilt.set_weights(loaded.network.get_weights())
    image = np.load(tiles[1] / "images.npy")[0].astype(np.float32)
    first = predict_maps(loaded.network, image)
    np.testing.assert_allclose(predict_maps(load_model_folder(folder).network, image), first, atol=1e-6)
    np.testing.assert_allclose(predict_maps(rebuilt, image), first, atol=1e-5)


@pytest.mark.parametrize("shape", [(37, 101), (1, 50), (64, 96), (250, 33)])
def test_any_input_size(trained, shape):
    network = load_model_folder(trained[0]).network
    image = np.random.default_rng(0).random(shape, dtype=np.float32)
    maps = predict_maps(network, image)
    assert maps.shape == shape + (2,)
    assert maps.dtype == np.float32 and (maps >= 0).all() and (maps <= 1).all()


def test_sizes_that_fit_are_not_padded(trained):
    network = load_model_folder(trained[0]).network
    image = np.random.default_rng(1).random((64, 96, 3), dtype=np.float32)
    direct = np.asarray(network.predict_on_batch(image[None]))[0]
    np.testing.assert_allclose(predict_maps(network, image), direct, atol=1e-6)


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

    from nucleiseg.training import select_device

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
