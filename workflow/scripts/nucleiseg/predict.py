"""Tiled prediction: probability maps for prepared images of any size, in bounded memory.

Untiled prediction (predict_untiled) holds the network's activations for the whole image
at once, which grows without bound with the image. Here the image is cut into overlapping
square tiles, fed to the network a few at a time (one step), and the tile outputs are blended back:

- Each tile's output is weighted by a separable window w(y, x) = a(y) b(x): a raised-cosine
  ramp across each side that overlaps a neighbour, flat elsewhere, never exactly 0. Two
  neighbours' ramps over their shared `overlap` pixels add up to 1, so the blend has no seams;
  the weighted sums are still divided by the summed weights, which on a regular grid is the
  outer product of two 1-D sums (no (H, W) weight array).
- Along an axis longer than a tile, the image is reflect-padded by a margin so that border
  pixels get context, as interior ones do. Tile starts, margins and strides are multiples of 32
  (modelconfig.DIVISOR), so every tile sees the image at the phase of the network's five stride-2
  steps that untiled prediction sees: tiled and untiled agree closely away from the borders.
- Along an axis no longer than a tile, the tile shrinks to that side padded to a multiple of 32,
  so an image that fits one tile is predicted in one call, padded only at its end.
  Along a longer axis, the tiles shrink to the smallest multiple of 32 with which as many tiles
  still cover it: `tile_size` is the largest tile, and little is computed past the image.

Tiles are cut lazily by index arithmetic (the padded image is never built) and expanded to three
channels one step at a time; the only whole-image arrays are the input and one float32
(H, W, n_outputs) accumulator.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice

import numpy as np

from .inference import Tiling
from .modelconfig import DIVISOR
from .normalize import as_three_channels
from .padding import reflect_index, round_up


@dataclass(frozen=True)
class AxisTiles:
    """Where the tiles lie along one image axis of `length` pixels, and their 1-D windows.

    Coordinates are the image's: a negative start or an end past `length` lies in the
    reflected margin.
    """

    length: int
    tile: int  # tile side along this axis
    overlap: int  # pixels shared by neighbours (0 with a single tile)
    starts: tuple[int, ...]

    @classmethod
    def layout(cls, length: int, tiling: Tiling) -> AxisTiles:
        tile, overlap = tiling.tile_size, tiling.overlap
        if length <= tile:  # one tile, padded at the end only
            return cls(length, length + (-length % DIVISOR), 0, (0,))
        margin = round_up(overlap // 2, DIVISOR)  # context for border pixels, on the phase
        span = length + 2 * margin
        count = _ceil_div(span - overlap, tile - overlap)
        # Shrink the tiles to the smallest multiple of 32 that still covers the span with that
        # many tiles: a 1024-pixel side then takes 3 x 416, not 3 x 512, pixels.
        tile = round_up(_ceil_div(span + (count - 1) * overlap, count), DIVISOR)
        stride = tile - overlap
        return cls(length, tile, overlap, tuple(-margin + k * stride for k in range(count)))

    def window(self, k: int) -> np.ndarray:
        """Tile k's 1-D blending weights: ramps on the sides shared with a neighbour."""
        weights = np.ones(self.tile, np.float32)
        ramp = raised_cosine(self.overlap)
        if k > 0:
            weights[: self.overlap] = ramp
        if k < len(self.starts) - 1:
            weights[self.tile - self.overlap:] = ramp[::-1]
        return weights

    def crop(self, k: int) -> tuple[slice, slice]:
        """The part of tile k inside the image: (slice in the image, slice in the tile)."""
        start = self.starts[k]
        first, last = max(start, 0), min(start + self.tile, self.length)
        return slice(first, last), slice(first - start, last - start)

    def weight_sum(self) -> np.ndarray:
        """The summed windows over the image's pixels (length,): what blending divides by."""
        total = np.zeros(self.length, np.float32)
        for k in range(len(self.starts)):
            inside, in_tile = self.crop(k)
            total[inside] += self.window(k)[in_tile]
        return total

    def touching(self, first: int, stop: int) -> list[int]:
        """The tiles that cover any pixel of [first, stop)."""
        return [k for k, start in enumerate(self.starts)
                if start < stop and start + self.tile > first and self.crop(k)[0].stop > first]

    def source_index(self, k: int) -> np.ndarray:
        """For each pixel of tile k, the image pixel it shows (reflecting at the borders)."""
        return reflect_index(np.arange(self.starts[k], self.starts[k] + self.tile), self.length)


def raised_cosine(n: int) -> np.ndarray:
    """n weights rising from near 0 to near 1; w[i] + w[n - 1 - i] == 1, none exactly 0 or 1."""
    return (0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / n)).astype(np.float32)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _channels_last(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[-1] not in (1, 3) or min(image.shape[:2]) < 1:
        raise ValueError(
            f"expected a prepared image (H, W), (H, W, 1) or (H, W, 3), got shape {image.shape}"
        )
    return image


def _tiles(image: np.ndarray, rows: AxisTiles,
           cols: AxisTiles) -> Iterator[tuple[int, int, np.ndarray]]:
    """(row k, column k, tile) in row-major order, each cut when it is needed."""
    for ky in range(len(rows.starts)):
        ys = rows.source_index(ky)
        for kx in range(len(cols.starts)):
            yield ky, kx, image[np.ix_(ys, cols.source_index(kx))]


def _groups(items: Iterable, size: int) -> Iterator[list]:
    items = iter(items)
    while group := list(islice(items, size)):
        yield group


def _steps(image: np.ndarray, rows: AxisTiles, cols: AxisTiles,
           tiles_per_step: int) -> Iterator[tuple[list[tuple[int, int]], np.ndarray]]:
    """(tile positions, network input (n, T, T, 3) float32) for each network call."""
    for group in _groups(_tiles(image, rows, cols), tiles_per_step):
        # Three channels per step, not per image: a grayscale image stays one channel.
        yield [(ky, kx) for ky, kx, _ in group], as_three_channels(
            np.stack([tile for _, _, tile in group]))


def network_inputs(image: np.ndarray, tiling: Tiling = Tiling()) -> Iterator[np.ndarray]:
    """The arrays predict_tiled feeds the network for `image`, step by step (benchmarks)."""
    image = _channels_last(image)
    rows, cols = AxisTiles.layout(image.shape[0], tiling), AxisTiles.layout(image.shape[1], tiling)
    for _, inputs in _steps(image, rows, cols, tiling.tiles_per_step):
        yield inputs


def predict_tiled(network, image: np.ndarray, tiling: Tiling = Tiling()) -> np.ndarray:
    """Probability maps (H, W, n_outputs) float32 for one prepared (normalized) image of any size.

    `network` is anything with `predict_on_batch`: the Keras model, or an engine of
    backends.py (any size multiple of 32 in, (batch, h, w, n_outputs) out).
    """
    image = _channels_last(image)
    height, width = image.shape[:2]
    rows, cols = AxisTiles.layout(height, tiling), AxisTiles.layout(width, tiling)
    maps = None
    for positions, inputs in _steps(image, rows, cols, tiling.tiles_per_step):
        outputs = np.asarray(network.predict_on_batch(inputs), dtype=np.float32)
        if maps is None:
            maps = np.zeros((height, width, outputs.shape[-1]), np.float32)
        for (ky, kx), output in zip(positions, outputs):
            (y_image, y_tile), (x_image, x_tile) = rows.crop(ky), cols.crop(kx)
            if len(rows.starts) == len(cols.starts) == 1:  # one tile: every weight is 1
                maps[y_image, x_image] = output[y_tile, x_tile]
                continue
            weights = rows.window(ky)[y_tile, None, None] * cols.window(kx)[None, x_tile, None]
            maps[y_image, x_image] += output[y_tile, x_tile] * weights
    # Normalize by the summed weights, one axis at a time (in place, no (H, W) temporary).
    if len(rows.starts) > 1:
        maps /= rows.weight_sum()[:, None, None]
    if len(cols.starts) > 1:
        maps /= cols.weight_sum()[None, :, None]
    return maps


def predict_window(network, read, shape: tuple[int, int], window: tuple[slice, slice],
                   tiling: Tiling = Tiling()) -> np.ndarray:
    """The maps predict_tiled gives a whole image of `shape`, on `window` alone.

    Only the pixels the window's tiles need are read: `read(ys, xs)` returns that region of the
    prepared image. The tiles are the whole image's (its layout, reflections and blending
    weights, added in the same order), so the window's maps are the whole image's there: a
    large image processed block by block gets the maps, hence the nuclei, of one pass.
    """
    height, width = shape
    rows, cols = AxisTiles.layout(height, tiling), AxisTiles.layout(width, tiling)
    (y0, y1), (x0, x1) = ((s.start, s.stop) for s in window)
    touched = [(ky, kx) for ky in rows.touching(y0, y1) for kx in cols.touching(x0, x1)]
    ys = np.concatenate([rows.source_index(k) for k, _ in touched])
    xs = np.concatenate([cols.source_index(k) for _, k in touched])
    top, left = int(ys.min()), int(xs.min())
    region = _channels_last(read(slice(top, int(ys.max()) + 1), slice(left, int(xs.max()) + 1)))
    maps = None
    for group in _groups(touched, tiling.tiles_per_step):
        inputs = as_three_channels(np.stack([
            region[np.ix_(rows.source_index(ky) - top, cols.source_index(kx) - left)]
            for ky, kx in group]))
        outputs = np.asarray(network.predict_on_batch(inputs), dtype=np.float32)
        if maps is None:
            maps = np.zeros((y1 - y0, x1 - x0, outputs.shape[-1]), np.float32)
        for (ky, kx), output in zip(group, outputs):
            (y_in, y_tile), (x_in, x_tile) = (_clip(axis.crop(k), first, stop) for axis, k, first, stop
                                              in ((rows, ky, y0, y1), (cols, kx, x0, x1)))
            weights = rows.window(ky)[y_tile, None, None] * cols.window(kx)[None, x_tile, None]
            if len(rows.starts) == len(cols.starts) == 1:
                maps[y_in, x_in] = output[y_tile, x_tile]
            else:
                maps[y_in, x_in] += output[y_tile, x_tile] * weights
    if len(rows.starts) > 1:
        maps /= rows.weight_sum()[y0:y1, None, None]
    if len(cols.starts) > 1:
        maps /= cols.weight_sum()[None, x0:x1, None]
    return maps


def _clip(crop: tuple[slice, slice], first: int, stop: int) -> tuple[slice, slice]:
    """A tile's (image slice, tile slice) cut to [first, stop), the image slice made relative
    to `first`."""
    inside, in_tile = crop
    low, high = max(inside.start, first), min(inside.stop, stop)
    shift = in_tile.start - inside.start
    return slice(low - first, high - first), slice(low + shift, high + shift)


def predict_untiled(network, image: np.ndarray) -> np.ndarray:
    """Probability maps of the whole image in one network call (padded to multiples of 32).

    For comparisons (tests, benchmarks/tiling.py): its memory grows with the image.
    """
    image = _channels_last(image)
    return predict_tiled(network, image, Tiling.single(*image.shape[:2]))
