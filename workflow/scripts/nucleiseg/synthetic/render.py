"""The image drawn from the labels: stain signals, blur, lighting, noise, counts.

Only the image is blurred and noised, never the labels, so the truth stays exact. Gray images
are fluorescence (bright on dark) or brightfield (dark on bright); stained ones are H&E-like RGB.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import expand_labels

# Stain optical-density vectors (Ruifrok & Johnston 2001): hematoxylin (blue-purple, nuclei) and
# eosin (pink, cytoplasm and background). Beer-Lambert mixing of the two gives H&E-like colours.
_HEMATOXYLIN = np.array([0.65, 0.70, 0.29]) / np.linalg.norm([0.65, 0.70, 0.29])
_EOSIN = np.array([0.07, 0.99, 0.11]) / np.linalg.norm([0.07, 0.99, 0.11])


def render(labels: np.ndarray, *, radius: tuple[float, float], modality: str, bit_depth: int,
           channels: int, texture: float, blur_sigma: float, noise: float, shot_noise: bool,
           illumination: float, rng: np.random.Generator) -> np.ndarray:
    """The image of `labels` (arguments as nuclei.make_nuclei takes them), drawing from `rng`."""
    cells = _cell_masks(labels, radius) if (channels > 1 or modality == "stained") else labels
    level_range = (0.6, 1.0) if modality == "fluorescence" else (0.8, 1.0)
    nuclear = _nuclear_signal(labels, int(labels.max()), texture, rng, level_range)
    common = dict(blur_sigma=blur_sigma, noise=noise, shot_noise=shot_noise,
                  illumination=illumination, rng=rng)
    if modality == "stained":
        return _render_stained(nuclear, cells, bit_depth, **common)
    signals = [nuclear] + _extra_signals(labels, cells, channels - 1, texture, rng)
    return _render_gray(signals, modality, bit_depth, **common)


# Signals: stain amount per pixel, before optics and camera.


def _smooth_noise(rng: np.random.Generator, shape, sigma: float) -> np.ndarray:
    """Low-frequency noise with unit standard deviation: chromatin texture, uneven lighting."""
    field_ = ndi.gaussian_filter(rng.standard_normal(shape), sigma, mode="reflect")
    std = field_.std()
    return field_ / std if std > 0 else field_


def _nuclear_signal(labels, n, texture, rng, level_range) -> np.ndarray:
    """Stain amount per pixel: each nucleus its own level (DNA content varies), times texture."""
    levels = np.concatenate([[0.0], rng.uniform(*level_range, size=n)])
    tex = np.clip(1 + texture * _smooth_noise(rng, labels.shape, 2.0), 0, None)
    return levels[labels] * tex


def _cell_masks(labels: np.ndarray, radius: tuple[float, float]) -> np.ndarray:
    """Cell bodies grown around the nuclei (for cytoplasm channels and eosin)."""
    return expand_labels(labels, distance=max(1, int(round(np.mean(radius)))))


def _extra_signals(labels, cells, n_extra, texture, rng) -> list[np.ndarray]:
    """Channels after the nuclear one: a dim cytoplasm, then whole-cell markers in some cells.

    The cytoplasm channel is dimmer over the nucleus, as most cytoplasmic stains are; each further
    channel marks a random half of the cells, as a positive/negative marker would.
    """
    signals = []
    for k in range(n_extra):
        tex = np.clip(1 + texture * _smooth_noise(rng, labels.shape, 3.0), 0, None)
        if k == 0:
            level = np.where(labels > 0, 0.12, np.where(cells > 0, 0.4, 0.0))
        else:
            positive = np.concatenate([[False], rng.random(labels.max()) < 0.5])
            level = 0.6 * positive[cells]
        signals.append(level * tex)
    return signals


# Optics and camera: from stain amounts to counts.


def _illumination(rng, shape, amount: float) -> np.ndarray:
    """Uneven lighting: a broad multiplicative field near 1."""
    if amount <= 0:
        return np.ones(shape)
    return 1 + amount * _smooth_noise(rng, shape, max(shape) / 4)


def _exposure(modality: str, bit_depth: int, rng) -> tuple[float, float]:
    """(background, nucleus) levels in counts, drawn per image around what DSB2018 shows.

    8-bit fluorescence: black background, nuclei ~40-200; brightfield: background ~210, nuclei
    about half as bright. 16-bit imitates a camera: an offset of a few hundred counts and signal
    of a few thousand, not the 8-bit range times 257.
    """
    if modality == "fluorescence":
        if bit_depth == 8:
            return rng.uniform(4, 14), rng.uniform(90, 200)
        return rng.uniform(100, 300), rng.uniform(1500, 4000)
    background = rng.uniform(195, 225) if bit_depth == 8 else rng.uniform(2500, 3800)
    return background, background * rng.uniform(0.4, 0.55)


def _noisy(counts, contrast, noise, shot_noise, bit_depth, rng) -> np.ndarray:
    """Shot noise (Poisson on photons) and read noise (Gaussian, `noise` x contrast)."""
    if shot_noise:
        gain = 0.25 if bit_depth == 8 else 1.0  # counts per photon
        counts = rng.poisson(np.clip(counts, 0, None) / gain) * gain
    if noise > 0:
        counts = counts + rng.normal(0, noise * contrast, counts.shape)
    return counts


def _quantise(counts: np.ndarray, bit_depth: int) -> np.ndarray:
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    return np.clip(np.rint(counts), 0, np.iinfo(dtype).max).astype(dtype)


def _blur(signal: np.ndarray, sigma: float) -> np.ndarray:
    return ndi.gaussian_filter(signal, sigma) if sigma > 0 else signal


# Modalities: the signals rendered as a gray or a stained picture.


def _render_gray(signals, modality, bit_depth, blur_sigma, noise, shot_noise, illumination, rng):
    """Fluorescence (bright on dark) or brightfield (dark on bright), one channel per signal."""
    background, nucleus = _exposure(modality, bit_depth, rng)
    light = _illumination(rng, signals[0].shape, illumination)
    channels = []
    for signal in signals:
        counts = (background + (nucleus - background) * _blur(signal, blur_sigma)) * light
        counts = _noisy(counts, abs(nucleus - background), noise, shot_noise, bit_depth, rng)
        channels.append(_quantise(counts, bit_depth))
    return channels[0] if len(channels) == 1 else np.stack(channels, axis=-1)


def _render_stained(hematoxylin, cells, bit_depth, blur_sigma, noise, shot_noise, illumination,
                    rng):
    """H&E-like RGB by Beer-Lambert: light background tinted pink by eosin, purple-blue nuclei.

    A faint hematoxylin everywhere greys the background towards what DSB2018 shows.
    """
    white = 240.0 if bit_depth == 8 else 4000.0
    shape = hematoxylin.shape
    eosin = rng.uniform(0.05, 0.15) * np.clip(1 + 0.3 * _smooth_noise(rng, shape, 8.0), 0, None)
    eosin = eosin + rng.uniform(0.05, 0.2) * (cells > 0)
    h = _blur(rng.uniform(0.03, 0.1) + hematoxylin * rng.uniform(0.8, 1.1), blur_sigma)
    e = _blur(eosin, blur_sigma)
    density = h[..., None] * _HEMATOXYLIN + e[..., None] * _EOSIN
    counts = white * np.exp(-density) * _illumination(rng, shape, illumination)[..., None]
    counts = _noisy(counts, white / 2, noise, shot_noise, bit_depth, rng)
    return _quantise(counts, bit_depth)
