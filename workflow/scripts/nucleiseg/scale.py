"""Nucleus size: an image's typical nucleus diameter, and rescaling its nuclei to the training's.

A network sees nuclei at the sizes it was trained on; three times larger or smaller, it splits
or misses them (Cellpose's size model and StarDist's advice to rescale to the training
magnification answer the same problem). The model folder records the sizes of the training
nuclei (`train_nucleus_diameters` in config.json: the quartiles of the training tiles' median
diameters); each image's own median is estimated from a first pass at native scale, an image
whose nuclei lie outside the training's middle half is resized to its nearer edge, predicted,
and the maps and labels are brought back onto the image's own pixel grid.

Chosen on DSB2018's val split (benchmarks/robustness.py, BENCHMARKS.md): resizing every image
to the training median cost the network 0.018 DSB on images at their own scale, where it had
been trained on DSB2018's own range of sizes; resizing only those outside the middle half, to
its nearer edge, cost less there and gained as much on images at half and twice the scale.

`inference.Rescaling` is the setting (`segment.rescale`, `segment.rescale_factor`); `Resize` the
geometry of one image's resize and its way back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .inference import FACTOR_RANGE
from .instances import Thresholds, confidence
from .labels import relabel

# Fewer nuclei than this (not touching the image's border) give no estimate: factor 1.
MIN_NUCLEI = 5
# The first pass's nuclei, for the estimate only: fixed, since the chosen thresholds belong to
# the training scale (and are not chosen yet while thresholds are searched). Objects under 12
# pixels are specks of noise (on a dim 16-bit field they outnumbered the nuclei and made the
# estimate 2 px); nuclei at a quarter of the training scale still have about 25.
ESTIMATE_THRESHOLDS = Thresholds(foreground=0.5, contour=0.5, min_size=12)
# A second estimate, at the network's scale, whose factor is within this ratio of the first's
# keeps the second pass; further away, a third pass predicts at the refined factor.
REFINE_TOLERANCE = 1.1
# Large textured nuclei (stained tissue at twice its size) come out of the first pass as
# fragments about the training's size, and an image whose nuclei look small is enlarged, where
# the fragments, enlarged too, look the same. Fragments do not halve when the image does;
# nuclei do. So an image whose nuclei look small is also seen at COARSE_FACTOR of its size, and
# when the nuclei found there (brought back to the image's grid) are more than FRAGMENT_RATIO
# times as wide, they are the nuclei and the first pass's objects their fragments. Chosen on
# DSB2018's val split (benchmarks/experiments/estimate_passes.py, BENCHMARKS.md).
COARSE_FACTOR = 0.5
FRAGMENT_RATIO = 2.0


def equivalent_diameters(labels: np.ndarray, inner: bool = True) -> np.ndarray:
    """Each nucleus's equivalent diameter (of the disk with its area), in pixels.

    inner: leave out nuclei touching the image's border, whose visible part is smaller.
    """
    areas = np.bincount(labels.ravel())[1:].astype(float)
    if inner and labels.size:
        border = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
        areas[np.unique(border[border > 0]) - 1] = 0
    return 2 * np.sqrt(areas[areas > 0] / np.pi)


def median_diameter(labels: np.ndarray) -> float:
    """The median equivalent diameter of the nuclei not touching the border; NaN for fewer than
    MIN_NUCLEI of them (no estimate)."""
    diameters = equivalent_diameters(labels)
    return float(np.median(diameters)) if len(diameters) >= MIN_NUCLEI else math.nan


def auto_factor(diameter: float, train_diameters: tuple[float, float, float]) -> float:
    """The factor that brings nuclei of `diameter` into the training's middle half (the lower to
    the upper quartile of train_diameters), to its nearer edge, within FACTOR_RANGE; 1 inside it
    or for no estimate (NaN)."""
    low, _, high = train_diameters
    if not diameter > 0 or low <= diameter <= high:
        return 1.0
    return float(np.clip((low if diameter < low else high) / diameter, *FACTOR_RANGE))


def factor_to_diameter(labels: np.ndarray, diameter: float) -> float:
    """The factor that brings the nuclei of `labels` to `diameter` pixels (their median
    equivalent diameter; all nuclei's where fewer than MIN_NUCLEI are off the border), within
    FACTOR_RANGE; 1 for labels without nuclei. How training at one size resizes its images."""
    own = median_diameter(labels)
    if not own > 0:
        every = equivalent_diameters(labels, inner=False)
        own = float(np.median(every)) if len(every) else math.nan
    return float(np.clip(diameter / own, *FACTOR_RANGE)) if own > 0 else 1.0


# segment.rescale search: the factors tried on every image (steps of sqrt 2 from half to twice
# its size), and the confidence a pass at the image's own size is given ahead of the others.
# Chosen on DSB2018's val split (benchmarks/scale_search.py, BENCHMARKS.md): the network is surest
# of its nuclei near the scale its training images had, which a new image does not tell.
SEARCH_FACTORS = (0.5, 0.71, 1.0, 1.41, 2.0)
NATIVE_MARGIN = 0.01


def pass_confidence(foreground: np.ndarray) -> float:
    """How sure the network is of one pass's nuclei: the confidence (instances.confidence) of
    all the pixels it calls foreground taken as one object; 0 where it calls none."""
    values = confidence(foreground, (foreground > 0.5).astype(np.uint8))
    return float(values[0]) if len(values) else 0.0


@dataclass(frozen=True)
class Resize:
    """One image resized by `factor` to the network's scale, and the way back to its own grid."""

    shape: tuple[int, int]  # the image's own (height, width)
    factor: float

    @property
    def scaled_shape(self) -> tuple[int, int]:
        return tuple(max(1, round(n * self.factor)) for n in self.shape)

    @property
    def identity(self) -> bool:
        return self.scaled_shape == tuple(self.shape)

    def to_network(self, image: np.ndarray) -> np.ndarray:
        """The image at the network's scale: bilinear, anti-aliased when shrinking."""
        return _resize(image, self.scaled_shape, antialias=self.factor < 1)

    def labels_to_network(self, labels: np.ndarray) -> np.ndarray:
        """Labels on the image's grid at the network's scale (read_labels); nuclei lost on the
        way are dropped and the rest renumbered 1..n."""
        if self.identity:
            return labels
        return relabel(read_labels(labels, self.scaled_shape))[0]

    def maps_back(self, maps: np.ndarray) -> np.ndarray:
        """(h, w, C) maps at the network's scale back on the image's grid (bilinear)."""
        return _resize(maps, self.shape, antialias=self.factor > 1)

    def labels_back(self, labels: np.ndarray, foreground: np.ndarray | None = None,
                    threshold: float = 0.5) -> np.ndarray:
        """Labels at the network's scale back on the image's grid (read_labels; by the
        foreground probability and threshold they were made with, where given); nuclei lost on
        the way (smaller than a pixel of the image) are dropped and the rest renumbered 1..n."""
        if self.identity:
            return labels
        return relabel(read_labels(labels, self.shape, foreground, threshold))[0]


# Rows of the output read at once by read_labels: bounds its memory (a few float32 arrays of
# 4 x READ_ROWS x width) on large images.
READ_ROWS = 256


def read_labels(labels: np.ndarray, shape: tuple[int, int], foreground: np.ndarray | None = None,
                threshold: float = 0.5) -> np.ndarray:
    """`labels` read onto a grid of `shape` spanning the same field: each new pixel takes the
    label whose indicator, interpolated bilinearly at its centre from the four old pixels
    around it, is largest (a nucleus where it ties with the background).

    With `foreground`, the probability map the labels were made from (on their grid), and the
    foreground `threshold` they were made with, a new pixel's extent comes from the probability
    instead: it is foreground where the probability interpolated at its centre passes the
    threshold and one of the four old pixels holds a nucleus, and takes the nucleus with the
    largest interpolated indicator. The probability places a boundary within an old pixel,
    which its 0/1 labels cannot.

    Nearest neighbour reads a single old pixel, up to half an old pixel from the new centre: at
    an exact factor 2 the new centre lies on the corner of four old pixels and nearest
    neighbour always takes the same one of them, which shifts every nucleus a quarter of a new
    pixel (on nuclei 5-9 px wide read back from twice their size, the DSB score of a perfect
    answer falls from 0.87 to 0.74; read by a probability that is each pixel's share inside
    its nucleus, it is 0.97: benchmarks/experiments/label_reading.py)."""
    rows, cols = (_neighbours(new, old) for new, old in zip(shape, labels.shape))
    out = np.empty(tuple(shape), labels.dtype)
    for start in range(0, shape[0], READ_ROWS):
        band = slice(start, start + READ_ROWS)
        candidates, weights, probability = [], [], np.float32(0)
        for r, wr in ((rows[0][band], rows[2][band]), (rows[1][band], 1 - rows[2][band])):
            for c, wc in ((cols[0], cols[2]), (cols[1], 1 - cols[2])):
                candidates.append(labels[r[:, None], c[None, :]])
                weights.append(wr[:, None] * wc[None, :])
                if foreground is not None:
                    probability = probability + weights[-1] * foreground[r[:, None], c[None, :]]
        candidates, weights = np.stack(candidates), np.stack(weights)
        totals = np.stack([(weights * (candidates == label)).sum(0) for label in candidates])
        if foreground is None:
            totals += np.float32(1e-4) * (candidates > 0)  # ties go to the nucleus
        else:
            totals[candidates == 0] = -1  # the likeliest nucleus; the probability says whether
        read = np.take_along_axis(candidates, totals.argmax(0)[None], 0)[0]
        out[band] = read if foreground is None else np.where(probability > threshold, read, 0)
    return out


def _neighbours(new: int, old: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each of `new` pixels spanning the field of `old` pixels, the old pixels before and
    after its centre and the weight of the one before (bilinear; clamped at the edges)."""
    centre = np.clip((np.arange(new) + 0.5) * old / new - 0.5, 0, old - 1)
    before = np.floor(centre).astype(np.intp)
    after = np.minimum(before + 1, old - 1)
    return before, after, (1 - (centre - before)).astype(np.float32)


def _resize(array: np.ndarray, shape: tuple[int, int], antialias: bool) -> np.ndarray:
    from skimage.transform import resize

    if tuple(array.shape[:2]) == tuple(shape):
        return array
    return resize(array, tuple(shape) + array.shape[2:], order=1, mode="reflect",
                  anti_aliasing=antialias, preserve_range=True).astype(np.float32)


def training_diameters(label_images) -> tuple[float, float, float]:
    """The lower quartile, median and upper quartile of the median diameters of `label_images`
    (training tiles) that have MIN_NUCLEI nuclei off their border; zeros where none has."""
    medians = [median_diameter(labels) for labels in label_images]
    medians = np.array([m for m in medians if m > 0])
    if not len(medians):
        return (0.0, 0.0, 0.0)
    return tuple(round(float(q), 2) for q in np.percentile(medians, (25, 50, 75)))
