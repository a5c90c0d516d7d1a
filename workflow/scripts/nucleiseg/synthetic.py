"""Synthetic nuclei images with exact ground truth, for the tests and the offline demo.

Real DSB2018 masks are hand-drawn and imperfect. A generator that draws the nuclei itself knows
every pixel's true label, so tests can check segmentation and measurements against exact answers,
and the demo workflow runs with no download and no credentials.

Nuclei are filled ellipses (`skimage.draw.ellipse`). They never overlap and, apart from the
requested touching pairs, never touch (not even diagonally). A touching pair shares a boundary
(4-adjacent pixels, no shared pixel, two labels): exactly the case an instance segmentation has to
learn to split. The image is rendered from the labels (texture, blur, illumination, noise); the
labels themselves are never blurred or noised, so they stay exact.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import ndimage as ndi
from skimage.draw import ellipse
from skimage.segmentation import expand_labels

from .errors import ConfigError
from .io import atomic_dir
from .manifest import MANIFEST_NAME, Manifest

log = logging.getLogger(__name__)

MODALITIES = ("fluorescence", "brightfield", "stained")
BIT_DEPTHS = (8, 16)
TRUTH_COLUMNS = ("label", "y", "x", "a", "b", "orientation", "area", "partner")

# Attempts at one nucleus before the image counts as full: bounds the work on tiny or crowded
# images (a 1x50 image fits no nucleus, and must say so quickly rather than loop).
_TRIES_PER_NUCLEUS = 100
# Stain optical-density vectors (Ruifrok & Johnston 2001): hematoxylin (blue-purple, nuclei) and
# eosin (pink, cytoplasm and background). Beer-Lambert mixing of the two gives H&E-like colours.
_HEMATOXYLIN = np.array([0.65, 0.70, 0.29]) / np.linalg.norm([0.65, 0.70, 0.29])
_EOSIN = np.array([0.07, 0.99, 0.11]) / np.linalg.norm([0.07, 0.99, 0.11])
_CROSS = ndi.generate_binary_structure(2, 1)  # 4-connectivity: "touching"
_SQUARE = ndi.generate_binary_structure(2, 2)  # 8-connectivity: "not even diagonally"


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


# ---------------------------------------------------------------------------------------------
# Placement
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Shape:
    """An ellipse drawn once near the origin; placing it is an integer shift of its pixels.

    Shifting by whole pixels keeps the drawn pixel set (and so the area) exact wherever it lands.
    (fy, fx) is the sub-pixel centre the ellipse was drawn at.
    """

    rr: np.ndarray
    cc: np.ndarray
    fy: float
    fx: float
    a: float
    b: float
    theta: float

    def _dilated(self, structure: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        y0, x0 = self.rr.min() - 1, self.cc.min() - 1
        box = np.zeros((self.rr.max() - y0 + 2, self.cc.max() - x0 + 2), bool)
        box[self.rr - y0, self.cc - x0] = True
        ry, rx = np.nonzero(ndi.binary_dilation(box, structure))
        return ry + y0, rx + x0

    @cached_property
    def halo4(self) -> tuple[np.ndarray, np.ndarray]:
        """The pixels and their 4-neighbours: a nucleus here touches this one."""
        return self._dilated(_CROSS)

    @cached_property
    def halo8(self) -> tuple[np.ndarray, np.ndarray]:
        """The pixels and their 8-neighbours: must be free of nuclei other than a partner."""
        return self._dilated(_SQUARE)


def _sample_shape(rng: np.random.Generator, radius: tuple[float, float],
                  aspect: tuple[float, float]) -> _Shape:
    """Radius is the equivalent-circle radius sqrt(a*b), so elongation does not change the area."""
    r = rng.uniform(*radius)
    e = rng.uniform(*aspect)
    a, b = r * np.sqrt(e), r / np.sqrt(e)
    theta = rng.uniform(-np.pi / 2, np.pi / 2)
    fy, fx = rng.uniform(0, 1, size=2)
    rr, cc = ellipse(fy, fx, a, b, rotation=theta)
    return _Shape(rr, cc, float(fy), float(fx), float(a), float(b), float(theta))


class _Canvas:
    """The label image being filled, with the checks that keep nuclei apart."""

    def __init__(self, shape: tuple[int, int]):
        self.labels = np.zeros(shape, np.uint16)
        self.rows: list[dict] = []

    def inside(self, s: _Shape, dy: int, dx: int) -> bool:
        h, w = self.labels.shape
        return (s.rr.min() + dy >= 0 and s.rr.max() + dy < h
                and s.cc.min() + dx >= 0 and s.cc.max() + dx < w)

    def _at(self, coords: tuple[np.ndarray, np.ndarray], dy: int, dx: int) -> np.ndarray:
        """Labels under shifted coordinates, those outside the image dropped."""
        h, w = self.labels.shape
        ry, rx = coords[0] + dy, coords[1] + dx
        keep = (ry >= 0) & (ry < h) & (rx >= 0) & (rx < w)
        return self.labels[ry[keep], rx[keep]]

    def overlaps(self, s: _Shape, dy: int, dx: int) -> bool:
        return bool(self._at((s.rr, s.cc), dy, dx).any())

    def fits(self, s: _Shape, dy: int, dx: int, partner: int = 0) -> bool:
        """Inside the image, on free pixels, and not 8-adjacent to any nucleus but `partner`."""
        if not self.inside(s, dy, dx) or self.overlaps(s, dy, dx):
            return False
        near = self._at(s.halo8, dy, dx)
        return bool(np.all((near == 0) | (near == partner)))

    def touches(self, s: _Shape, dy: int, dx: int, partner: int) -> bool:
        return bool((self._at(s.halo4, dy, dx) == partner).any())

    def draw(self, s: _Shape, dy: int, dx: int, partner: int = 0) -> int:
        label = len(self.rows) + 1
        self.labels[s.rr + dy, s.cc + dx] = label
        self.rows.append(dict(label=label, y=s.fy + dy, x=s.fx + dx, a=s.a, b=s.b,
                              orientation=s.theta, area=len(s.rr), partner=partner))
        if partner:
            self.rows[partner - 1]["partner"] = label
        return label


def _place_single(canvas: _Canvas, rng, radius, aspect) -> int:
    """Place one free-standing nucleus at a random free spot; 0 when none was found."""
    h, w = canvas.labels.shape
    for _ in range(_TRIES_PER_NUCLEUS):
        s = _sample_shape(rng, radius, aspect)
        lo_y, hi_y = -s.rr.min(), h - 1 - s.rr.max()
        lo_x, hi_x = -s.cc.min(), w - 1 - s.cc.max()
        if lo_y > hi_y or lo_x > hi_x:
            continue  # this size does not fit the image at all
        dy, dx = int(rng.integers(lo_y, hi_y + 1)), int(rng.integers(lo_x, hi_x + 1))
        if canvas.fits(s, dy, dx):
            return canvas.draw(s, dy, dx)
    return 0


def _place_partner(canvas: _Canvas, anchor: int, rng, radius, aspect) -> int:
    """Slide a new nucleus towards `anchor` along a random direction until it touches it.

    Steps of half a pixel move the shape by at most one pixel per axis, so it usually stops
    4-adjacent to the anchor; when it would overlap first, another direction is tried.
    """
    row = canvas.rows[anchor - 1]
    for _ in range(_TRIES_PER_NUCLEUS):
        s = _sample_shape(rng, radius, aspect)
        phi = rng.uniform(0, 2 * np.pi)
        for t in np.arange(row["a"] + s.a + 2, 0, -0.5):
            dy = int(round(row["y"] + t * np.sin(phi) - s.fy))
            dx = int(round(row["x"] + t * np.cos(phi) - s.fx))
            if canvas.overlaps(s, dy, dx):
                break
            if canvas.touches(s, dy, dx, anchor):
                if canvas.fits(s, dy, dx, partner=anchor):
                    return canvas.draw(s, dy, dx, partner=anchor)
                break
    return 0


def _place_nuclei(shape, n_nuclei, touching_pairs, radius, aspect, rng) -> _Canvas:
    """Pairs first (they need the most room), then singles; stop early when the image is full."""
    canvas = _Canvas(shape)
    for _ in range(touching_pairs):
        if len(canvas.rows) + 2 > n_nuclei:
            break
        anchor = _place_single(canvas, rng, radius, aspect)
        if not anchor:
            return canvas
        _place_partner(canvas, anchor, rng, radius, aspect)
    while len(canvas.rows) < n_nuclei:
        if not _place_single(canvas, rng, radius, aspect):
            break
    return canvas


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


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

    canvas = _place_nuclei(shape, n_nuclei, touching_pairs, radius, aspect, rng)
    labels, n = canvas.labels, len(canvas.rows)
    cells = _cell_masks(labels, radius) if (channels > 1 or modality == "stained") else labels
    level_range = (0.6, 1.0) if modality == "fluorescence" else (0.8, 1.0)
    nuclear = _nuclear_signal(labels, n, texture, rng, level_range)
    common = dict(blur_sigma=blur_sigma, noise=noise, shot_noise=shot_noise,
                  illumination=illumination, rng=rng)
    if modality == "stained":
        image = _render_stained(nuclear, cells, bit_depth, **common)
    else:
        signals = [nuclear] + _extra_signals(labels, cells, channels - 1, texture, rng)
        image = _render_gray(signals, modality, bit_depth, **common)

    nuclei = pd.DataFrame(canvas.rows, columns=list(TRUTH_COLUMNS))
    pairs = tuple((r["label"], r["partner"]) for r in canvas.rows if 0 < r["label"] < r["partner"])
    return SyntheticImage(image, labels, nuclei, pairs, modality, bit_depth)


def dataset_sample(index: int, *, height: int, width: int, bit_depth: int, seed: int,
                   modalities: Sequence[str] = MODALITIES) -> tuple[str, SyntheticImage]:
    """Image `index` of a synthetic dataset, and its id; what write_kaggle_dataset writes.

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


def _write_sample(folder: Path, image_id: str, sample: SyntheticImage) -> None:
    """One image folder in Kaggle's layout: images/<id>.png and one 0/255 PNG per nucleus."""
    import imageio.v3 as iio

    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    iio.imwrite(folder / "images" / f"{image_id}.png", sample.image)
    for label in sample.nuclei["label"]:
        mask = np.where(sample.labels == label, 255, 0).astype(np.uint8)
        iio.imwrite(folder / "masks" / f"{image_id}_mask_{label:04d}.png", mask)


def _check_dataset_args(n_images, height, width, bit_depth, modalities) -> None:
    """Settings come from the config (dataset.synthetic), so errors name the config keys."""
    where = "config dataset.synthetic"
    if int(n_images) < 1:
        raise ConfigError(f"{where}.n_images must be at least 1, got {n_images}")
    if int(height) < 1 or int(width) < 1:
        raise ConfigError(f"{where}.height and .width must be at least 1, got {height}x{width}")
    if bit_depth not in BIT_DEPTHS:
        raise ConfigError(f"{where}.bit_depth must be 8 or 16, got {bit_depth}")
    unknown = [m for m in modalities if m not in MODALITIES]
    if not modalities or unknown:
        raise ConfigError(
            f"{where}.modalities must be a non-empty list of {', '.join(MODALITIES)}; "
            f"got {list(modalities)}"
        )


def write_kaggle_dataset(
    out_dir: str | Path,
    n_images: int,
    height: int,
    width: int,
    bit_depth: int,
    seed: int,
    modalities: Sequence[str] = MODALITIES,
) -> Manifest:
    """Write a synthetic dataset in Kaggle's DSB2018 layout, then its manifest, last.

    out_dir/stage1_train/<id>/images/<id>.png and .../masks/<id>_mask_NNNN.png. Gray images are
    single-channel PNGs at `bit_depth`; stained images stay 8-bit RGB as in the real data. The
    folder appears complete or not at all (atomic_dir), and dataset.json is written after it, so
    its presence means the data is complete.
    """
    modalities = [modalities] if isinstance(modalities, str) else list(modalities)
    _check_dataset_args(n_images, height, width, bit_depth, modalities)
    out_dir = Path(out_dir).resolve()
    train = out_dir / "stage1_train"
    with atomic_dir(train) as tmp:
        for index in range(n_images):
            image_id, sample = dataset_sample(index, height=height, width=width,
                                              bit_depth=bit_depth, seed=seed,
                                              modalities=modalities)
            _write_sample(tmp / image_id, image_id, sample)
            log.info("%s: %d nuclei, %d touching pairs", image_id, sample.n_nuclei,
                     len(sample.pairs))
    manifest = Manifest(
        source="synthetic",
        origin=(f"nucleiseg.synthetic seed={seed} size={height}x{width} bit_depth={bit_depth} "
                f"modalities={','.join(modalities)}"),
        stage1_train=str(train),
        n_images=n_images,
    )
    manifest.write(out_dir / MANIFEST_NAME)
    log.info("wrote %d synthetic images to %s", n_images, train)
    return manifest


# The demo's batch (names in batches.SYNTHETIC_BATCH_FILES): one file of each kind a microscope
# hands over. A two-channel 16-bit OME-TIFF larger than one tile, with a pixel size; an 8-bit
# PNG; an RGB stained picture; a field with no nuclei at all.
SYNTHETIC_BATCH_PIXEL_SIZE_UM = 0.5


def write_synthetic_batch(out_dir: str | Path, seed: int = 0) -> list[Path]:
    """Write SYNTHETIC_BATCH_FILES into `out_dir` (each file atomically); return their paths."""
    import imageio.v3 as iio
    import tifffile

    from .batches import SYNTHETIC_BATCH_FILES
    from .io import atomic_path

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 7])
    two_channel = make_nuclei((640, 896), n_nuclei=140, radius=(7, 12), touching_pairs=20,
                              bit_depth=16, channels=2, seed=rng)
    fluorescence = make_nuclei((256, 256), n_nuclei=25, touching_pairs=4, seed=rng)
    stained = make_nuclei((256, 320), n_nuclei=25, modality="stained", seed=rng)
    blank = np.clip(rng.normal(20, 3, (200, 240)), 0, 255).astype(np.uint8)
    paths = [out_dir / name for name in SYNTHETIC_BATCH_FILES]
    with atomic_path(paths[0]) as tmp:
        size = SYNTHETIC_BATCH_PIXEL_SIZE_UM
        tifffile.imwrite(tmp, np.moveaxis(two_channel.image, -1, 0), ome=True,
                         photometric="minisblack",
                         metadata={"axes": "CYX", "PhysicalSizeX": size, "PhysicalSizeY": size,
                                   "PhysicalSizeXUnit": "µm", "PhysicalSizeYUnit": "µm",
                                   "Channel": {"Name": ["DNA", "Cytoplasm"]}})
    for path, image in zip(paths[1:3], (fluorescence.image, stained.image)):
        with atomic_path(path) as tmp:
            iio.imwrite(tmp, image, extension=".png")
    with atomic_path(paths[3]) as tmp:
        tifffile.imwrite(tmp, blank)
    log.info("wrote the synthetic batch (%d files) to %s", len(paths), out_dir)
    return paths
