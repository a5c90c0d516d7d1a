"""The trained model as one object: its network, config and thresholds, and its verbs.

Like StarDist's model object: loading a model folder gives back the network, the settings it was
trained with (`config.json`) and the thresholds chosen for it (`thresholds.json`), and a few
verbs turn images into nuclei:

- `normalize(raw)`: the percentile normalization the training images had (from config.json);
- `predict(image)`: probability maps of a normalized image, in overlapping tiles, averaged over
  flipped and rotated copies with test-time augmentation (`tta`), the network run by the
  engine `segment.backend` chose (`backends.py`: TensorFlow, or OpenVINO on a CPU);
- `instances(maps)`: instance labels from those maps, with the model's thresholds;
- `segment(image)`: both, timed, as one `Segmentation`; with `rescale` (segment.rescale), the
  image is first resized so that its nuclei have the training's diameter (`scale.py`), and maps
  and labels come back on the image's own grid;
- `optimize_thresholds(images)`: choose the thresholds on validation images.

Segmentation of new batches, the threshold search and evaluation all go through these verbs,
so that what is evaluated is exactly what users get.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .backends import open_backend
from .errors import ConfigError
from .inference import BackendChoice, Rescaling, Tiling
from .instances import Thresholds, confidence, head_maps, labels_from_maps
from .modelconfig import ModelConfig
from .modelfolder import MODEL_FILE, THRESHOLDS_FILE, check_model_folder
from .normalize import percentile_normalize
from .predict import predict_tiled, predict_window
from .scale import (COARSE_FACTOR, ESTIMATE_THRESHOLDS, FRAGMENT_RATIO, NATIVE_MARGIN,
                    REFINE_TOLERANCE, SEARCH_FACTORS, Resize, auto_factor, median_diameter,
                    pass_confidence)
from .thresholds import load_thresholds, save_thresholds, search_thresholds
from .tta import check_tta, predict_augmented

log = logging.getLogger(__name__)


@dataclass
class Segmentation:
    """One image's result: instance labels, probability maps, and the seconds of each stage."""

    labels: np.ndarray  # (H, W) uint16 (uint32 past 65,535 nuclei), 0 = background
    maps: np.ndarray  # (H, W, n_maps) float32: foreground first, then contour
    seconds: dict[str, float]  # predict, instances
    diameter: float = math.nan  # the image's estimated nucleus diameter (px; rescale auto)
    factor: float = 1.0  # the image was resized by this for the network (segment.rescale)

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
                 tiling: Tiling = Tiling(), folder: Path | None = None, tta: str = "off",
                 rescale: Rescaling = Rescaling(),
                 backend: BackendChoice = BackendChoice("tensorflow"), threads: int = 0):
        self.network = network  # keras.Model
        # The engine that runs it (segment.backend), on `threads` CPU threads (0: all): the
        # Keras network as given unless another is chosen (load: segment.backend's default).
        self.backend_choice = backend
        self.threads = threads
        self._backend = None
        self.config = config
        self.thresholds = thresholds
        self.tiling = tiling
        self.folder = folder
        self.tta = check_tta(tta)
        self.rescale = rescale
        if rescale.mode == "auto" and not min(config.train_nucleus_diameters) > 0:
            raise ConfigError(
                f"segment.rescale auto needs the training nuclei's diameters, which "
                f"{folder or 'this model'}'s config.json lacks (train_nucleus_diameters; a model "
                "trained before nucleiseg recorded it): set segment.rescale to off, or to factor "
                "with segment.rescale_factor")

    @classmethod
    def load(cls, folder: str | Path, tiling: Tiling = Tiling(), thresholds: bool = True,
             tta: str = "off", rescale: Rescaling = Rescaling(),
             backend: BackendChoice = BackendChoice(), threads: int = 0) -> NucleusModel:
        """The model in `folder`; thresholds: read thresholds.json (else none are set yet).

        backend: which engine runs the network (opened on first use), on `threads` CPU
        threads (0: all).
        """
        import keras

        folder = Path(folder)
        config = check_model_folder(folder, thresholds=thresholds)
        network = keras.models.load_model(folder / MODEL_FILE, compile=False)
        chosen = load_thresholds(folder / THRESHOLDS_FILE) if thresholds else None
        return cls(network, config, chosen, tiling, folder, tta, rescale, backend, threads)

    @property
    def backend(self):
        """The engine that runs the network (backends.py), opened on first use: a model loaded
        for its Keras network alone (export, tests) converts nothing."""
        if self._backend is None:
            self._backend = open_backend(self.backend_choice, self.network, self.folder,
                                         self.threads)
        return self._backend

    def __repr__(self) -> str:
        return (f"NucleusModel({self.folder or 'in memory'}, heads {self.config.heads}, "
                f"thresholds {self.thresholds and self.thresholds.to_dict()}, {self.tiling}, "
                f"tta {self.tta}, {self.rescale}, backend {self.backend})")

    def normalize(self, raw: np.ndarray) -> np.ndarray:
        """A raw image mapped as the training images were (the percentiles in config.json)."""
        normalized, _ = percentile_normalize(raw, self.config.norm_p_low, self.config.norm_p_high)
        return normalized

    def predict(self, image: np.ndarray) -> np.ndarray:
        """(H, W, n_maps) float32 probability maps of a normalized image, tile by tile."""
        return predict_augmented(lambda copy: predict_tiled(self.backend, copy, self.tiling),
                                 image, self.tta)

    def predict_window(self, read, shape: tuple[int, int],
                       window: tuple[slice, slice]) -> np.ndarray | None:
        """predict's maps of a whole image of `shape` on `window` alone, reading only the
        region its tiles need (`read(ys, xs)`: that region, normalized); so a large image
        processed block by block gets the maps of one pass. None where that cannot hold:
        test-time augmentation and rescaling work on whole images."""
        if self.tta != "off" or self.rescale.mode != "off":
            return None
        return predict_window(self.backend, read, shape, window, self.tiling)

    def instances(self, maps: np.ndarray, thresholds: Thresholds | None = None) -> np.ndarray:
        """Instance labels from the maps, with `thresholds` or the model's own."""
        thresholds = thresholds or self.thresholds
        if thresholds is None:
            raise ValueError("this model has no thresholds yet: load them with the folder or "
                             "choose them with optimize_thresholds")
        foreground, contour = head_maps(maps, self.config.heads)
        return labels_from_maps(foreground, contour, thresholds)

    def instances_back(self, maps: np.ndarray, resize: Resize,
                       thresholds: Thresholds | None = None) -> np.ndarray:
        """Instance labels from maps at the network's scale, on the image's own grid: made at
        the network's scale (so min_size counts pixels there) and read back by their foreground
        probability (scale.read_labels)."""
        thresholds = thresholds or self.thresholds
        foreground, _ = head_maps(maps, self.config.heads)
        return resize.labels_back(self.instances(maps, thresholds), foreground,
                                  thresholds.foreground)

    def predict_scaled(self, image: np.ndarray) -> tuple[np.ndarray, Resize, float]:
        """The maps at the network's scale (segment.rescale), the resize that took the image
        there, and the image's estimated nucleus diameter (NaN unless rescale is auto).

        auto: a first pass at the image's own scale; its nuclei (at ESTIMATE_THRESHOLDS, not
        the chosen ones, which belong to the training scale) give the diameter; where they look
        small, a pass at COARSE_FACTOR tells them from fragments of larger nuclei
        (`_unless_fragments`). An image whose nuclei already match the training's keeps that
        first pass's maps. Otherwise the second pass, at the network's scale, where nuclei far
        smaller or larger than the training's are seen as the network knows them, estimates
        again; a factor more than REFINE_TOLERANCE away from the first makes a third pass at
        the refined one.
        """
        shape = image.shape[:2]
        if self.rescale.mode == "search":
            return self._search_scale(image)
        if self.rescale.mode != "auto":
            factor = self.rescale.factor if self.rescale.mode == "factor" else 1.0
            resize = Resize(shape, factor)
            return self.predict(resize.to_network(image)), resize, math.nan
        maps = self.predict(image)
        diameter = self._estimate_diameter(maps)
        if auto_factor(diameter, self.config.train_nucleus_diameters) > 1:
            diameter = self._unless_fragments(image, diameter)
        resize = Resize(shape, auto_factor(diameter, self.config.train_nucleus_diameters))
        if resize.identity:
            return maps, resize, diameter
        maps = self.predict(resize.to_network(image))
        refined = self._estimate_diameter(maps) / resize.factor
        if not refined > 0:
            return maps, resize, diameter
        better = Resize(shape, auto_factor(refined, self.config.train_nucleus_diameters))
        if abs(math.log(better.factor / resize.factor)) <= math.log(REFINE_TOLERANCE):
            return maps, resize, refined
        return self.predict(better.to_network(image)), better, refined

    def _unless_fragments(self, image: np.ndarray, diameter: float) -> float:
        """The diameter of nuclei that look small, or of the nuclei they are fragments of: a
        pass at COARSE_FACTOR whose nuclei, on the image's grid, are more than FRAGMENT_RATIO
        times as wide says which (scale.py)."""
        coarse = Resize(image.shape[:2], COARSE_FACTOR)
        wide = self._estimate_diameter(self.predict(coarse.to_network(image))) / coarse.factor
        return wide if wide > FRAGMENT_RATIO * diameter else diameter

    def _search_scale(self, image: np.ndarray) -> tuple[np.ndarray, Resize, float]:
        """rescale search: a pass at each of SEARCH_FACTORS; the one whose nuclei the network is
        surest of (scale.pass_confidence, the image's own size given NATIVE_MARGIN ahead) is kept.
        The diameter reported is its nuclei's, at ESTIMATE_THRESHOLDS, on the image's grid."""
        best = None
        for factor in SEARCH_FACTORS:
            resize = Resize(image.shape[:2], factor)
            maps = self.predict(resize.to_network(image))
            foreground, _ = head_maps(maps, self.config.heads)
            score = pass_confidence(foreground) + (NATIVE_MARGIN if resize.identity else 0.0)
            if best is None or score > best[0]:
                best = (score, maps, resize)
        _, maps, resize = best
        return maps, resize, self._estimate_diameter(maps) / resize.factor

    def _estimate_diameter(self, maps: np.ndarray) -> float:
        """The median diameter of the nuclei in maps, at ESTIMATE_THRESHOLDS (NaN: too few)."""
        foreground, contour = head_maps(maps, self.config.heads)
        return median_diameter(labels_from_maps(foreground, contour, ESTIMATE_THRESHOLDS))

    def segment(self, image: np.ndarray) -> Segmentation:
        """Maps and instance labels of a normalized image, each stage timed.

        The labels are made at the network's scale (so min_size counts pixels there) and both
        come back on the image's own grid.
        """
        start = time.perf_counter()
        maps, resize, diameter = self.predict_scaled(image)
        predicted = time.perf_counter()
        labels = self.instances_back(maps, resize)
        maps = resize.maps_back(maps)
        seconds = {"predict": predicted - start, "instances": time.perf_counter() - predicted}
        return Segmentation(labels, maps, seconds, diameter, resize.factor)

    def optimize_thresholds(self, images: Iterable[TruthImage],
                            grid: dict | None = None) -> tuple[Thresholds, object]:
        """Choose and set the thresholds with the best mean DSB score on `images` (val).

        The maps are predicted as segment predicts them (at the network's scale, labels
        brought back to the truth's grid), so the thresholds are chosen on the maps they will
        be applied to. Returns them and the whole search table, best first.
        """
        maps, truths, backs = [], [], []
        for item in images:
            scaled, resize, _ = self.predict_scaled(item.image)
            maps.append(scaled)
            truths.append(item.truth)
            backs.append(functools.partial(resize.labels_back,
                                           foreground=head_maps(scaled, self.config.heads)[0]))
        if not maps:
            raise ValueError("no validation image to choose thresholds on; raise "
                             "split.fractions.val")
        log.info("searching thresholds on %d validation images", len(maps))
        self.thresholds, table = search_thresholds(maps, truths, self.config.heads, grid,
                                                   backs)
        return self.thresholds, table

    def save_thresholds(self, path: str | Path | None = None) -> None:
        """Write the thresholds to thresholds.json in the model folder (or `path`)."""
        save_thresholds(self.thresholds, path or self.folder / THRESHOLDS_FILE)
