"""The trained model as one object: its network, config and thresholds, and its verbs.

Like StarDist's model object: loading a model folder gives back the network, the settings it was
trained with (`config.json`) and the thresholds chosen for it (`thresholds.json`), and a few
verbs turn images into nuclei:

- `normalize(raw)`: the percentile normalization the training images had (from config.json);
- `predict(image)`: probability maps of a normalized image, in overlapping tiles, averaged over
  flipped and rotated copies with test-time augmentation (`tta`);
- `instances(maps)`: instance labels from those maps, with the model's thresholds;
- `segment(image)`: both, timed, as one `Segmentation`;
- `optimize_thresholds(images)`: choose the thresholds on validation images.

Segmentation of new batches, the threshold search and evaluation all go through these verbs,
so that what is evaluated is exactly what users get.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .inference import Tiling
from .instances import Thresholds, confidence, head_maps, labels_from_maps
from .modelconfig import ModelConfig
from .modelfolder import MODEL_FILE, THRESHOLDS_FILE, check_model_folder
from .normalize import percentile_normalize
from .predict import predict_tiled
from .thresholds import load_thresholds, save_thresholds, search_thresholds
from .tta import check_tta, predict_augmented

log = logging.getLogger(__name__)


@dataclass
class Segmentation:
    """One image's result: instance labels, probability maps, and the seconds of each stage."""

    labels: np.ndarray  # (H, W) uint16 (uint32 past 65,535 nuclei), 0 = background
    maps: np.ndarray  # (H, W, n_maps) float32: foreground first, then contour
    seconds: dict[str, float]  # predict, instances

    @property
    def confidence(self) -> np.ndarray:
        """Mean foreground probability of each nucleus (element k: label k + 1)."""
        return confidence(self.maps[..., 0], self.labels)


@dataclass
class TruthImage:
    """A normalized image with its true instance labels (validation or held-out)."""

    id: str
    modality: str
    set: str
    image: np.ndarray  # normalized float32 (H, W) or (H, W, 3)
    truth: np.ndarray  # instance labels


class NucleusModel:
    """A MobileNetV2 U-Net with the settings it was trained with and its thresholds."""

    def __init__(self, network, config: ModelConfig, thresholds: Thresholds | None = None,
                 tiling: Tiling = Tiling(), folder: Path | None = None, tta: str = "off"):
        self.network = network  # keras.Model
        self.config = config
        self.thresholds = thresholds
        self.tiling = tiling
        self.folder = folder
        self.tta = check_tta(tta)

    @classmethod
    def load(cls, folder: str | Path, tiling: Tiling = Tiling(), thresholds: bool = True,
             tta: str = "off") -> NucleusModel:
        """The model in `folder`; thresholds: read thresholds.json (else none are set yet)."""
        import keras

        folder = Path(folder)
        config = check_model_folder(folder, thresholds=thresholds)
        network = keras.models.load_model(folder / MODEL_FILE, compile=False)
        chosen = load_thresholds(folder / THRESHOLDS_FILE) if thresholds else None
        return cls(network, config, chosen, tiling, folder, tta)

    def __repr__(self) -> str:
        return (f"NucleusModel({self.folder or 'in memory'}, heads {self.config.heads}, "
                f"thresholds {self.thresholds and self.thresholds.to_dict()}, {self.tiling}, "
                f"tta {self.tta})")

    def normalize(self, raw: np.ndarray) -> np.ndarray:
        """A raw image mapped as the training images were (the percentiles in config.json)."""
        normalized, _ = percentile_normalize(raw, self.config.norm_p_low, self.config.norm_p_high)
        return normalized

    def predict(self, image: np.ndarray) -> np.ndarray:
        """(H, W, n_maps) float32 probability maps of a normalized image, tile by tile."""
        return predict_augmented(lambda copy: predict_tiled(self.network, copy, self.tiling),
                                 image, self.tta)

    def instances(self, maps: np.ndarray, thresholds: Thresholds | None = None) -> np.ndarray:
        """Instance labels from the maps, with `thresholds` or the model's own."""
        thresholds = thresholds or self.thresholds
        if thresholds is None:
            raise ValueError("this model has no thresholds yet: load them with the folder or "
                             "choose them with optimize_thresholds")
        foreground, contour = head_maps(maps, self.config.heads)
        return labels_from_maps(foreground, contour, thresholds)

    def segment(self, image: np.ndarray) -> Segmentation:
        """Maps and instance labels of a normalized image, each stage timed."""
        start = time.perf_counter()
        maps = self.predict(image)
        predicted = time.perf_counter()
        labels = self.instances(maps)
        seconds = {"predict": predicted - start, "instances": time.perf_counter() - predicted}
        return Segmentation(labels, maps, seconds)

    def optimize_thresholds(self, images: Iterable[TruthImage],
                            grid: dict | None = None) -> tuple[Thresholds, object]:
        """Choose and set the thresholds with the best mean DSB score on `images` (val).

        The maps are predicted as segment predicts them, so the thresholds are chosen on the
        maps they will be applied to. Returns them and the whole search table, best first.
        """
        maps, truths = [], []
        for item in images:
            maps.append(self.predict(item.image))
            truths.append(item.truth)
        if not maps:
            raise ValueError("no validation image to choose thresholds on; raise "
                             "split.fractions.val")
        log.info("searching thresholds on %d validation images", len(maps))
        self.thresholds, table = search_thresholds(maps, truths, self.config.heads, grid)
        return self.thresholds, table

    def save_thresholds(self, path: str | Path | None = None) -> None:
        """Write the thresholds to thresholds.json in the model folder (or `path`)."""
        save_thresholds(self.thresholds, path or self.folder / THRESHOLDS_FILE)
