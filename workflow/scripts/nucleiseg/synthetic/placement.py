"""Where the nuclei go: ellipses placed apart, or in touching pairs, on a label image.

Nuclei never overlap and, apart from the requested touching pairs, never touch (not even
diagonally). A touching pair shares a boundary: 4-adjacent pixels, no shared pixel, two labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import ndimage as ndi
from skimage.draw import ellipse

from ..labels import EIGHT, FOUR

# Attempts at one nucleus before the image counts as full: bounds the work on tiny or crowded
# images (a 1x50 image fits no nucleus, and must say so quickly rather than loop).
_TRIES_PER_NUCLEUS = 100


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
        return self._dilated(FOUR)

    @cached_property
    def halo8(self) -> tuple[np.ndarray, np.ndarray]:
        """The pixels and their 8-neighbours: must be free of nuclei other than a partner."""
        return self._dilated(EIGHT)


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


class Canvas:
    """The label image being filled, with the checks that keep nuclei apart.

    rows: one dict per nucleus drawn, keyed as nuclei.TRUTH_COLUMNS.
    """

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


def _place_single(canvas: Canvas, rng, radius, aspect) -> int:
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


def _place_partner(canvas: Canvas, anchor: int, rng, radius, aspect) -> int:
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


def place_nuclei(shape, n_nuclei, touching_pairs, radius, aspect, rng) -> Canvas:
    """Pairs first (they need the most room), then singles; stop early when the image is full."""
    canvas = Canvas(shape)
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
