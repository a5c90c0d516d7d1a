"""One synthetic image and its exact truth: `make_nuclei`, and `dataset_sample` for datasets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from ..normalize import MODALITIES
from .placement import place_nuclei
from .render import render

BIT_DEPTHS = (8, 16)
TRUTH_COLUMNS = ("label", "y", "x", "a", "b", "orientation", "area", "partner")


@dataclass(frozen=True)
class SyntheticImage:
    """One synthetic image and its exact truth.

    image: (H, W) for one channel, else (H, W, C); uint8 or uint16.
    labels: (H, W) uint16, 0 = background, 1..N = nuclei.
    nuclei: one row per nucleus, columns TRUTH_COLUMNS: centre y/x (pixels, row/column), semi-axes
        a >= b, orientation in radians as skimage's regionprops reports it (angle between the
        row axis and the major axis, in (-pi/2, pi/2]), area in pixels as drawn, and partner (the
        label it touches, 0 for none).
    pairs: the touching pairs, (label, label).
    """

    image: np.ndarray
    labels: np.ndarray
    nuclei: pd.DataFrame
    pairs: tuple[tuple[int, int], ...]
    modality: str
    bit_depth: int

    @property
    def n_nuclei(self) -> int:
        return len(self.nuclei)


def _check_args(shape, n_nuclei, touching_pairs, radius, aspect, modality, bit_depth, channels):
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"shape must be (height, width) of at least 1x1, got {shape}")
    if not 0 <= n_nuclei <= np.iinfo(np.uint16).max:
        raise ValueError(f"n_nuclei must be 0..65535, got {n_nuclei}")
    if touching_pairs < 0:
        raise ValueError(f"touching_pairs must be >= 0, got {touching_pairs}")
    if not 0.5 <= radius[0] <= radius[1]:
        raise ValueError(f"radius must be (min, max) with 0.5 <= min <= max, got {radius}")
    if not 1.0 <= aspect[0] <= aspect[1]:
        raise ValueError(f"aspect must be (min, max) with 1 <= min <= max, got {aspect}")
    if modality not in MODALITIES:
        raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}")
    if bit_depth not in BIT_DEPTHS:
        raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth}")
    if modality == "stained" and channels != 3:
        raise ValueError(f"stained images are RGB (channels=3), got channels={channels}")
    if channels < 1:
        raise ValueError(f"channels must be >= 1, got {channels}")


def make_nuclei(
    shape: tuple[int, int] = (256, 256),
    n_nuclei: int = 30,
    radius: tuple[float, float] = (6.0, 11.0),
    aspect: tuple[float, float] = (1.0, 1.8),
    touching_pairs: int = 0,
    modality: str = "fluorescence",
    bit_depth: int = 8,
    channels: int | None = None,
    texture: float = 0.25,
    blur_sigma: float = 1.0,
    noise: float = 0.02,
    shot_noise: bool = True,
    illumination: float = 0.05,
    seed: int | np.random.Generator | None = 0,
) -> SyntheticImage:
    """Draw up to `n_nuclei` elliptical nuclei and render an image of them.

    radius: range of the equivalent-circle radius sqrt(a*b) in pixels; aspect: range of a/b
    (1 = round). touching_pairs: how many of the nuclei come as touching pairs. As many nuclei
    as fit are placed, nuclei entirely inside the image: a small or crowded image gets fewer
    (never an endless search). channels: 1 gives (H, W); 2 or more gives (H, W, C) with the
    nuclear channel first, then a cytoplasm-like channel, then whole-cell markers; stained is
    always RGB. texture: relative amplitude of the smooth variation inside nuclei; blur_sigma:
    gaussian blur of the image (never of the labels); noise: read-noise std as a fraction of the
    nucleus/background contrast; shot_noise: Poisson noise; illumination: relative amplitude of
    uneven lighting. The same seed gives the same arrays.
    """
    shape = tuple(int(v) for v in shape)
    channels = (3 if modality == "stained" else 1) if channels is None else int(channels)
    _check_args(shape, n_nuclei, touching_pairs, radius, aspect, modality, bit_depth, channels)
    rng = np.random.default_rng(seed)

    canvas = place_nuclei(shape, n_nuclei, touching_pairs, radius, aspect, rng)
    image = render(canvas.labels, radius=radius, modality=modality, bit_depth=bit_depth,
                   channels=channels, texture=texture, blur_sigma=blur_sigma, noise=noise,
                   shot_noise=shot_noise, illumination=illumination, rng=rng)
    nuclei = pd.DataFrame(canvas.rows, columns=list(TRUTH_COLUMNS))
    pairs = tuple((r["label"], r["partner"]) for r in canvas.rows if 0 < r["label"] < r["partner"])
    return SyntheticImage(image, canvas.labels, nuclei, pairs, modality, bit_depth)


def dataset_sample(index: int, *, height: int, width: int, bit_depth: int, seed: int,
                   modalities: Sequence[str] = MODALITIES) -> tuple[str, SyntheticImage]:
    """Image `index` of a synthetic dataset, and its id; what make_synthetic_dataset writes.

    Each image has its own generator seeded by (seed, index), so an image does not change when
    the dataset grows. Modalities cycle; nucleus size and count vary a little per image, about
    15-35 nuclei on 256x256 as in DSB2018, about one in three in a touching pair.
    """
    modality = modalities[index % len(modalities)]
    rng = np.random.default_rng([seed, index])
    scale = rng.uniform(0.75, 1.3)
    per_area = rng.uniform(15, 35) / scale**2 / (256 * 256)
    n_nuclei = max(1, int(round(per_area * height * width)))
    sample = make_nuclei(
        shape=(height, width), n_nuclei=n_nuclei, radius=(6 * scale, 10 * scale),
        touching_pairs=n_nuclei // 6, modality=modality,
        bit_depth=8 if modality == "stained" else bit_depth, seed=rng,
    )
    return f"synth_{index:04d}_{modality}", sample
