"""Channel handling, modality and percentile normalization: everything done to pixel values.

The same functions serve training data and new batches, so that the network sees inputs
prepared one way only. Normalization is outside the network and its settings are recorded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MODALITIES = ("fluorescence", "brightfield", "stained")


@dataclass(frozen=True)
class NormStats:
    """The intensities that mapped to 0 and 1, kept per image so the mapping can be audited."""

    low: float
    high: float


def to_channels_last(image: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, C) as stored -> (H, W, 1) grayscale or (H, W, 3) colour.

    Alpha is dropped; an RGB image whose three channels are equal is grayscale (DSB2018 stores
    fluorescence as RGBA PNGs with R = G = B). Raises ValueError for other channel layouts.
    """
    if image.ndim == 2:
        return image[..., None]
    if image.ndim != 3:
        raise ValueError(f"expected a 2D image, got an array of shape {image.shape}")
    channels = image.shape[-1]
    if channels in (2, 4):  # gray + alpha, RGB + alpha
        image = image[..., : channels - 1]
    elif channels not in (1, 3):
        raise ValueError(f"expected 1, 3 or 4 channels (last axis), got shape {image.shape}")
    if image.shape[-1] == 3 and _channels_equal(image):
        image = image[..., :1]
    return image


def _channels_equal(image: np.ndarray) -> bool:
    return bool(np.array_equal(image[..., 0], image[..., 1]) and
                np.array_equal(image[..., 0], image[..., 2]))


def classify_modality(image: np.ndarray) -> str:
    """Colour -> stained; grayscale with a bright background -> brightfield; else fluorescence.

    The median pixel is background in nuclei images, so where it lies in the image's own range
    tells dark from bright background whatever the bit depth.
    """
    image = to_channels_last(image)
    if image.shape[-1] == 3:
        return "stained"
    lo, hi = float(image.min()), float(image.max())
    if hi <= lo:
        return "fluorescence"
    median = float(np.median(image))
    return "brightfield" if (median - lo) / (hi - lo) > 0.5 else "fluorescence"


def percentile_normalize(
    image: np.ndarray, p_low: float = 1.0, p_high: float = 99.8
) -> tuple[np.ndarray, NormStats]:
    """Map the p_low percentile to 0 and p_high to 1 (jointly over channels), as float32.

    Joint percentiles keep the colour balance of stained tissue. Values outside are not clipped
    (as in CSBDeep/StarDist): bright nuclei above p_high stay distinguishable. A constant image
    maps to zeros rather than dividing by zero.
    """
    _check_percentiles(p_low, p_high)
    data = np.asarray(image, dtype=np.float32)
    stats = NormStats(*(float(v) for v in np.percentile(data, [p_low, p_high])))
    return normalize_with(data, stats), stats


def _check_percentiles(p_low: float, p_high: float) -> None:
    if not 0 <= p_low < p_high <= 100:
        raise ValueError(f"need 0 <= p_low < p_high <= 100, got {p_low}, {p_high}")


def normalize_with(image: np.ndarray, stats: NormStats) -> np.ndarray:
    """`image` mapped so that stats.low is 0 and stats.high 1, as float32 (zeros if they are
    equal): percentile_normalize's mapping, for percentiles found elsewhere (a large image's
    histogram, percentiles_from_histogram)."""
    data = np.asarray(image, dtype=np.float32)
    scale = stats.high - stats.low
    if scale <= 0:
        return np.zeros_like(data)
    return (data - stats.low) / scale


def percentiles_from_histogram(counts: np.ndarray, first: int, p_low: float,
                               p_high: float) -> NormStats:
    """np.percentile's values (method linear) of the integers whose histogram is `counts`
    (counts[i]: pixels of value first + i), without the pixels themselves: a large image's
    percentiles, equal to percentile_normalize's on the whole image.

    Follows NumPy's own arithmetic (virtual index (n - 1) q, then the lerp from the side of
    the nearer value), so that the float values are NumPy's, bit for bit.
    """
    _check_percentiles(p_low, p_high)
    cumulative = np.cumsum(counts, dtype=np.int64)
    n = int(cumulative[-1])
    quantiles = np.asarray([p_low, p_high], np.float64) / 100
    virtual = (n - 1) * quantiles
    previous = np.floor(virtual)
    gamma = virtual - previous
    ranks = np.clip(np.stack([previous, previous + 1]), 0, n - 1).astype(np.int64)
    ranks[:, virtual >= n - 1] = n - 1
    # the value at rank r: the first whose cumulative count exceeds r
    values = (np.searchsorted(cumulative, ranks, side="right") + first).astype(np.float32)
    a, b = values
    difference = (b - a).astype(np.float32)
    low_side = a + difference * gamma
    high_side = b - difference * (1 - gamma)
    result = np.where(gamma >= 0.5, high_side, low_side)
    return NormStats(float(result[0]), float(result[1]))


def as_three_channels(image: np.ndarray) -> np.ndarray:
    """A prepared image (H, W), (H, W, 1) or (H, W, 3) -> (H, W, 3) float32, as the network takes it.

    Grayscale is repeated: the ImageNet encoder expects three channels.
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    return image
