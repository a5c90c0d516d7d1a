"""A model folder is checked before TensorFlow loads anything: each problem named, with a fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from nucleiseg.errors import ConfigError
from nucleiseg.instances import Thresholds
from nucleiseg.modelconfig import FORMAT_VERSION, ModelConfig
from nucleiseg.modelfolder import (CONFIG_FILE, MODEL_FILE, THRESHOLDS_FILE, check_model_folder,
                                   model_files)
from nucleiseg.thresholds import save_thresholds

TINY = ModelConfig(unet_alpha=0.35, unet_encoder_weights="none",
                   unet_decoder_filters=(16, 16, 8, 8, 8), train_patch_size=64)
CHOSEN = Thresholds(foreground=0.5, contour=0.2, min_size=16)


def make_folder(folder: Path, files=(CONFIG_FILE, MODEL_FILE, THRESHOLDS_FILE)) -> Path:
    """A model folder holding `files`: a real config.json and thresholds.json, and a placeholder
    model.keras (the checks here are parse-time ones, which never load the network)."""
    folder.mkdir(parents=True, exist_ok=True)
    if CONFIG_FILE in files:
        TINY.save(folder / CONFIG_FILE)
    if MODEL_FILE in files:
        (folder / MODEL_FILE).write_bytes(b"placeholder: not a Keras archive")
    if THRESHOLDS_FILE in files:
        save_thresholds(CHOSEN, folder / THRESHOLDS_FILE)
    return folder


def _message(folder: Path, **kwargs) -> str:
    with pytest.raises(ConfigError) as caught:
        check_model_folder(folder, **kwargs)
    return str(caught.value)


def test_complete_folder_gives_its_config(tmp_path):
    """Placeholder model.keras: check_model_folder only looks for it."""
    folder = make_folder(tmp_path / "model")
    assert check_model_folder(folder) == TINY
    assert check_model_folder(str(folder), thresholds=False) == TINY


def test_missing_folder_says_to_train_one(tmp_path):
    message = _message(tmp_path / "no_such_model")
    assert str(tmp_path / "no_such_model") in message and "does not exist" in message
    assert "train_model" in message


def test_a_file_is_not_a_folder(tmp_path):
    path = tmp_path / "model.keras"
    path.write_bytes(b"")
    assert "does not exist" in _message(path)


@pytest.mark.parametrize("present, missing", [
    ((), (CONFIG_FILE, MODEL_FILE)),
    ((CONFIG_FILE, THRESHOLDS_FILE), (MODEL_FILE,)),
    ((MODEL_FILE, THRESHOLDS_FILE), (CONFIG_FILE,)),
])
def test_missing_files_are_named(tmp_path, present, missing):
    """Placeholder model.keras: the check stops before anything would load it."""
    folder = make_folder(tmp_path / "model", present)
    for thresholds in (True, False):  # thresholds=False does not excuse the network's files
        message = _message(folder, thresholds=thresholds)
        assert str(folder) in message
        for name in (CONFIG_FILE, MODEL_FILE):
            assert (name in message) == (name in missing), (name, message)


def test_missing_thresholds_say_to_run_optimize_thresholds(tmp_path):
    """Placeholder model.keras: only thresholds.json is looked for after config.json is read."""
    folder = make_folder(tmp_path / "model", (CONFIG_FILE, MODEL_FILE))
    message = _message(folder)
    assert str(folder) in message and THRESHOLDS_FILE in message
    assert "optimize_thresholds" in message
    assert check_model_folder(folder, thresholds=False) == TINY  # a freshly trained model


@pytest.mark.parametrize("text, named", [
    ("{not json", "cannot read"),
    ('{"unet_depth": 5}', "unet_depth"),
    (f'{{"format_version": {FORMAT_VERSION + 1}}}', f"version {FORMAT_VERSION + 1}"),
])
def test_unreadable_or_incompatible_config_json_is_named(tmp_path, text, named):
    """Placeholder model.keras: a bad config.json is refused before the network is touched."""
    folder = make_folder(tmp_path / "model")
    (folder / CONFIG_FILE).write_text(text)
    message = _message(folder, thresholds=False)
    assert str(folder / CONFIG_FILE) in message and named in message


def test_model_files_are_the_folders_three_inference_files(tmp_path):
    """Placeholder model.keras: model_files only names paths."""
    folder = make_folder(tmp_path / "model")
    files = model_files(folder)
    assert files == {"network": str(folder / MODEL_FILE), "config": str(folder / CONFIG_FILE),
                     "thresholds": str(folder / THRESHOLDS_FILE)}
    assert {Path(path).name for path in files.values()} == {p.name for p in folder.iterdir()}
    assert model_files(str(folder)) == files


def test_a_checked_folder_with_a_real_network_loads(tmp_path):
    """A real tiny saved network: the folder check_model_folder passes is one that loads."""
    import keras

    from nucleiseg.model import NucleusModel
    from nucleiseg.network import build_unet

    folder = make_folder(tmp_path / "model", (CONFIG_FILE, THRESHOLDS_FILE))
    build_unet(TINY).save(folder / MODEL_FILE)
    assert check_model_folder(folder) == TINY
    loaded = NucleusModel.load(folder)
    assert loaded.config == TINY
    assert loaded.thresholds == CHOSEN
    assert isinstance(loaded.network, keras.Model)
    assert loaded.network.output_shape[-1] == TINY.n_outputs
