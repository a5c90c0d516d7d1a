"""The dataset manifest: the one file that the download (or generate) stage hands to preparation.

`dataset.json` records where the Kaggle-layout folders are, so that a local, already-extracted
dataset is read in place rather than copied. It is written last, atomically: its presence means
the data it points at is complete.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import ConfigError
from .io import read_json, write_json

MANIFEST_NAME = "dataset.json"


@dataclass(frozen=True)
class Manifest:
    source: str  # kaggle | bbbc038 | local | synthetic
    origin: str  # competition name, URL or local path the data came from
    stage1_train: str  # absolute path of the Kaggle-layout training folder
    n_images: int  # image folders found in stage1_train
    stage1_test: str | None = None  # absolute path, when the source has the stage 1 test set
    stage1_solution: str | None = None  # absolute path of stage1_solution.csv (RLE masks)

    def write(self, path: str | Path) -> None:
        write_json(asdict(self), path)

    @classmethod
    def read(cls, path: str | Path) -> "Manifest":
        try:
            return cls(**read_json(path))
        except (TypeError, ValueError) as exc:  # ValueError: not JSON (empty, cut short)
            raise ConfigError(
                f"{path}: not a dataset manifest this version understands ({exc}); "
                "delete it and rerun the download rule"
            ) from exc
