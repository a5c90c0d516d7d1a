"""The classical baseline: threshold and watershed, as CellProfiler's IdentifyPrimaryObjects.

The steps of CellProfiler's defaults, on a prepared (percentile-normalized) image of any
modality: one channel in which nuclei are bright, light Gaussian smoothing, an Otsu threshold,
holes filled, small objects removed, then touching nuclei split by a watershed on the distance
transform, seeded at its maxima no closer than the typical nucleus radius allows. No learning,
no settings per dataset: the figure a network has to beat. Deterministic.

Its known limit, kept so that the baseline stays the standard one: one global threshold separates
the brightest class from the rest. Where nuclei sit inside cytoplasm of intermediate intensity
(DSB2018's brightfield cytology images) that class is the cells, not the nuclei.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.feature import peak_local_max
from skimage.filters import threshold_otsu
from skimage.segmentation import watershed

from .labels import EIGHT, label_dtype, relabel

# Below this spread of values (the input is percentile-normalized: nuclei vs background ~1) the
# image holds no contrast to threshold, and Otsu would split noise.
_MIN_CONTRAST = 1e-3


def nuclear_channel(image: np.ndarray) -> np.ndarray:
    """(H, W) float64 in which nuclei are bright, from (H, W) or (H, W, C).

    Colour: the channel mean (nuclear stains darken all channels). Then, if the background is
    bright (the median, which is background in nuclei images, lies in the upper half of the
    1-99 percentile range), the image is inverted so that nuclei stand out bright on dark.
    """
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 3:
        image = image.mean(axis=-1)
    if image.ndim != 2:
        raise ValueError(f"expected an (H, W) or (H, W, C) image, got shape {image.shape}")
    low, median, high = np.percentile(image, [1, 50, 99])
    if high > low and (median - low) / (high - low) > 0.5:
        image = -image
    return image


def _foreground(channel: np.ndarray, sigma: float) -> np.ndarray:
    """Otsu on the smoothed channel, holes filled; all False for an image without contrast."""
    smooth = ndi.gaussian_filter(channel, sigma) if sigma > 0 else channel
    if np.ptp(smooth) < _MIN_CONTRAST:
        return np.zeros(channel.shape, bool)
    return ndi.binary_fill_holes(smooth > threshold_otsu(smooth))


def _remove_small(mask: np.ndarray, min_size: int) -> tuple[np.ndarray, int]:
    """Connected components (8-connected) of at least min_size pixels, and their count."""
    components, n = ndi.label(mask, structure=EIGHT)
    sizes = np.bincount(components.ravel(), minlength=n + 1)
    keep = sizes >= min_size
    keep[0] = False
    lut = np.zeros(n + 1, np.int64)
    lut[keep] = np.arange(1, int(keep.sum()) + 1)
    return lut[components], int(keep.sum())


def _typical_radius(components: np.ndarray) -> float:
    """The median object's equivalent-circle radius sqrt(area / pi), 0 without objects."""
    sizes = np.bincount(components.ravel())[1:]
    sizes = sizes[sizes > 0]
    return float(np.sqrt(np.median(sizes) / np.pi)) if sizes.size else 0.0


def _split_touching(components: np.ndarray, radius: float) -> np.ndarray:
    """Watershed of the smoothed distance transform from its maxima, within each component.

    Maxima closer than half the typical radius are one nucleus, and so are touching maxima of
    equal height (a plateau is one peak, not two). Outside the image counts as background, so a
    nucleus cut by the border still peaks inside and an image that is all foreground has a
    distance transform. A component left without a seed keeps its own label.
    """
    mask = components > 0
    distance = ndi.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    distance = ndi.gaussian_filter(distance, 1.0)
    min_distance = max(1, round(radius / 2))
    peaks = peak_local_max(distance, min_distance=min_distance, labels=components,
                           exclude_border=False)
    is_peak = np.zeros(components.shape, bool)
    is_peak[tuple(peaks.T)] = True
    markers, _ = ndi.label(is_peak, structure=EIGHT)
    split = watershed(-distance, markers, mask=mask)
    unseeded = mask & (split == 0)
    if unseeded.any():
        rest, _ = ndi.label(unseeded, structure=EIGHT)
        split = np.where(unseeded, rest + split.max(), split)
    return split


def segment_classical(image: np.ndarray, min_size: int = 15, sigma: float = 1.0) -> np.ndarray:
    """Nuclei of a prepared image as a label image (0 = background, 1..N), uint16 or uint32.

    image: (H, W) or (H, W, C) float, percentile-normalized, any modality. sigma: the Gaussian
    smoothing before thresholding (pixels). min_size: smallest object kept, in pixels, before
    splitting. An image without contrast gives all zeros.
    """
    if min_size < 1:
        raise ValueError(f"min_size must be at least 1 pixel, got {min_size}")
    channel = nuclear_channel(image)
    mask = _foreground(channel, sigma)
    components, n = _remove_small(mask, min_size)
    if n == 0:
        return np.zeros(channel.shape, label_dtype(0))
    return relabel(_split_touching(components, _typical_radius(components)))[0]
