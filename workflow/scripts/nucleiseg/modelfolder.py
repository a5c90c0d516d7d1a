"""A trained model is a folder: config.json, model.keras, history.csv, thresholds.json, curves.

`load_model_folder` checks the folder (files present, config readable and of a compatible
version) before TensorFlow loads anything, so a wrong path fails at once with a clear message.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError
from .modelconfig import ModelConfig

CONFIG_FILE = "config.json"
MODEL_FILE = "model.keras"
THRESHOLDS_FILE = "thresholds.json"


@dataclass
class LoadedModel:
    network: object  # keras.Model
    config: ModelConfig
    folder: Path


def check_model_folder(folder: str | Path) -> ModelConfig:
    """The folder's ModelConfig, or a ConfigError saying what is missing or incompatible."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"model folder {folder} does not exist; train one (rule train_model) or fix the path")
    missing = [name for name in (CONFIG_FILE, MODEL_FILE) if not (folder / name).is_file()]
    if missing:
        raise ConfigError(
            f"model folder {folder} lacks {', '.join(missing)}: it is not a nucleiseg model "
            "folder, or its training did not finish"
        )
    return ModelConfig.load(folder / CONFIG_FILE)


def load_model_folder(folder: str | Path) -> LoadedModel:
    import keras

    config = check_model_folder(folder)
    network = keras.models.load_model(Path(folder) / MODEL_FILE, compile=False)
    return LoadedModel(network, config, Path(folder))
