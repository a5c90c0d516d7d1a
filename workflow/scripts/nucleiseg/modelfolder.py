"""A trained model is a folder: config.json, model.keras, thresholds.json, history, curves.

`check_model_folder` checks the folder (files present, config readable and of a compatible
version) before TensorFlow loads anything, so a wrong path fails at once with a clear message.
The Snakefile calls it at parse time, so this module uses the standard library only;
model.NucleusModel loads the folder.
"""

from __future__ import annotations

from pathlib import Path

from .errors import ConfigError
from .modelconfig import ModelConfig

CONFIG_FILE = "config.json"
MODEL_FILE = "model.keras"
THRESHOLDS_FILE = "thresholds.json"
THRESHOLD_SEARCH_FILE = "threshold_search.csv"
HISTORY_FILE = "history.csv"
CURVES_FILE = "training_curves.png"
MODEL_CARD_FILE = "MODEL_CARD.md"  # written by rule write_model_card (modelcard.py)
OPENVINO_FOLDER = "openvino"  # the network converted for OpenVINO, on first use (backends.py)


def check_model_folder(folder: str | Path, thresholds: bool = True) -> ModelConfig:
    """The folder's ModelConfig, or a ConfigError saying what is missing or incompatible.

    thresholds: thresholds.json must be there too (it is written after training, by the
    threshold search on the validation images).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"model folder {folder} does not exist; train one (rule train_model) or fix the path")
    needed = (CONFIG_FILE, MODEL_FILE, THRESHOLDS_FILE) if thresholds else (CONFIG_FILE, MODEL_FILE)
    missing = [name for name in needed if not (folder / name).is_file()]
    if set(missing) - {THRESHOLDS_FILE}:
        raise ConfigError(
            f"model folder {folder} lacks {', '.join(missing)}: it is not a nucleiseg model "
            "folder, or its training did not finish; point it at a finished run's "
            "results/model"
        )
    config = ModelConfig.load(folder / CONFIG_FILE)
    if missing:
        raise ConfigError(
            f"model folder {folder} lacks {THRESHOLDS_FILE}: run rule optimize_thresholds for "
            "that model (or copy the thresholds.json that came with it)"
        )
    return config


def model_files(folder: str | Path) -> dict[str, str]:
    """The folder's files that inference reads, by role (the rules' inputs)."""
    folder = Path(folder)
    return {"network": str(folder / MODEL_FILE), "config": str(folder / CONFIG_FILE),
            "thresholds": str(folder / THRESHOLDS_FILE)}
