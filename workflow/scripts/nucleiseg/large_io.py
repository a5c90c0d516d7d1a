"""Large images region by region: reading TIFF and OME-Zarr regions, a large image's
percentiles, the labels kept on disk while they are stitched, and the tiled, pyramidal OME-TIFF
they are written as.

Nothing here holds a whole image: `TiffRegions` decodes only the TIFF tiles (or strips) that a
region touches, `ZarrRegions` only the OME-Zarr chunks (`open_regions` picks the one for a
batch image); `image_percentiles` counts a histogram block by block; `LabelStore` keeps the
stitched labels in an anonymous temporary file beside the output (gone when closed, even after
a crash); `write_label_pyramid` writes them as 256 x 256 tiles, row of tiles by row of tiles,
with half-size levels (nearest neighbour) as sub-IFDs, which Fiji (Bio-Formats) and QuPath open.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import numpy as np

from .batch_io import (BatchImage, _check_dtype, _describe, _intensity, channel_note,
                       read_header)
from .blocks import BlockGrid
from .errors import BadInputError
from .io import CORRUPT_HINT, atomic_path
from .labels import label_dtype
from .normalize import NormStats, percentiles_from_histogram
from .ome_zarr import is_ome_zarr, open_ome_zarr

PYRAMID_TILE = 256  # the labels' TIFF tile side
PYRAMID_MIN_SIDE = 1024  # levels halve the image until its longer side is at most this
# Float (and 32-bit) images have no histogram of every value: their percentiles come from a
# regular subsample of about this many pixels (every k-th row and column).
PERCENTILE_SAMPLES = 1 << 22


class Regions:
    """A large image read a region at a time, as BatchImage holds it: (h, w, 1) grayscale (the
    nuclear channel of a multi-channel image) or (h, w, 3) colour, dtype as stored (batch_io's
    rules: alpha dropped, bool as uint8, float16 as float32). A context manager; `height`,
    `width`, `pixel_size`, `channels`, `dtype` and `description` as read_batch_image's."""

    path: Path
    height: int
    width: int
    pixel_size: tuple[float | None, str]
    channels: int
    dtype: np.dtype
    description: str
    _samples: int = 1  # values per pixel as stored

    def read(self, ys: slice, xs: slice) -> np.ndarray:
        """The region [ys, xs] (slices with starts and stops inside the image) as (h, w, C)."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):  # the reader itself (TiffRegions or ZarrRegions)
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _as_batch_pixels(self, region: np.ndarray) -> np.ndarray:
        """Alpha dropped, bool as uint8 and float16 as float32 (batch_io's rules)."""
        if self._samples in (2, 4):
            region = region[..., : self._samples - 1]
        region, _ = _check_dtype(self.path, region)
        return region

    def batch_image(self, ys: slice, xs: slice) -> BatchImage:
        """A region as a BatchImage (its pixels and the intensities measured)."""
        pixels = self.read(ys, xs)
        return BatchImage(id="", path=self.path, image=pixels, intensity=_intensity(pixels),
                          pixel_size_um=self.pixel_size[0],
                          pixel_size_source=self.pixel_size[1], description=self.description)


def open_regions(path: str | Path, nuclear_channel: int = 0, pages: str = "refuse") -> Regions:
    """The region reader of a batch image: ZarrRegions for an OME-Zarr, TiffRegions for a TIFF.
    BadInputError naming it, as read_batch_image's, for one that cannot be used."""
    reader = ZarrRegions if is_ome_zarr(path) else TiffRegions
    return reader(path, nuclear_channel, pages)


class ZarrRegions(Regions):
    """The pixels of an OME-Zarr's full-resolution array, read a region at a time (only the
    chunks it touches): (h, w, 1), the nuclear channel of a multi-channel image."""

    def __init__(self, path: str | Path, nuclear_channel: int = 0, pages: str = "refuse"):
        self.path = Path(path)
        header = read_header(self.path, nuclear_channel, pages)  # the rules read_batch_image's
        self._image = open_ome_zarr(self.path)
        self.height, self.width = header.height, header.width
        self.pixel_size = header.pixel_size
        channels = "C" in header.axes  # more than one: one picked
        self._channel = nuclear_channel if channels else 0
        count = header.shape[header.axes.index("C")] if channels else 1
        note = channel_note(nuclear_channel, count) if channels else None
        self.channels = 1
        sample = self.read(slice(0, 1), slice(0, 1))
        _, depth = _check_dtype(self.path, np.empty(0, header.dtype))
        self.description = _describe(sample, depth, "grayscale", note)
        self.dtype = sample.dtype

    def read(self, ys: slice, xs: slice) -> np.ndarray:
        """The region [ys, xs] (slices with starts and stops inside the image) as (h, w, 1)."""
        plane = self._image.plane(ys, xs, self._channel)
        return self._as_batch_pixels(plane[..., None])


class TiffRegions(Regions):
    """The pixels of a large TIFF's first series, read a region at a time (only the tiles or
    strips it touches)."""

    def __init__(self, path: str | Path, nuclear_channel: int = 0, pages: str = "refuse"):
        import tifffile

        self.path = Path(path)
        header = read_header(self.path, nuclear_channel, pages)
        self.height, self.width = header.height, header.width
        self.pixel_size = header.pixel_size
        self._tif = tifffile.TiffFile(self.path)
        series = self._tif.series[0]
        note = None
        if header.axes == "YX" or header.axes == "YXS":
            self._page = series.pages[0]
        else:  # channels first: one page per channel
            if len(series.pages) != header.shape[0]:
                self.close()
                raise BadInputError(self.path, f"stores its {header.shape[0]} channels within "
                                    "its pages, which cannot be read a region at a time",
                                    "Save it with one page per channel (OME-TIFF)")
            self._page = series.pages[nuclear_channel].aspage()  # a TiffFrame has no tags
            note = channel_note(nuclear_channel, header.shape[0])
        self._samples = self._page.samplesperpixel
        if self._samples > 1 and self._page.planarconfig != 1:
            self.close()
            raise BadInputError(self.path, "stores its colour channels as separate planes, "
                                "which cannot be read a region at a time",
                                "Save it with interleaved (contiguous) RGB")
        self.channels = 1 if self._samples == 1 else 3
        sample = self.read(slice(0, 1), slice(0, 1))
        _, depth = _check_dtype(self.path, np.empty(0, header.dtype))
        stored = {1: "grayscale", 2: "gray+alpha", 3: "RGB", 4: "RGBA"}.get(self._samples, "")
        self.description = _describe(sample, depth, stored, note)
        self.dtype = sample.dtype

    def close(self) -> None:
        self._tif.close()

    def read(self, ys: slice, xs: slice) -> np.ndarray:
        """The region [ys, xs] (slices with starts and stops inside the image) as (h, w, C)."""
        page = self._page
        tile_h, tile_w = page.chunks[-3:-1] if page.samplesperpixel > 1 else page.chunks[-2:]
        across = page.chunked[-1] if page.samplesperpixel == 1 else page.chunked[-2]
        out = np.zeros((ys.stop - ys.start, xs.stop - xs.start, self._samples), page.dtype)
        handle = self._tif.filehandle
        for row in range(ys.start // tile_h, -(-ys.stop // tile_h)):
            for column in range(xs.start // tile_w, -(-xs.stop // tile_w)):
                index = row * across + column
                handle.seek(page.dataoffsets[index])
                data = handle.read(page.databytecounts[index])
                if not data:
                    continue  # an empty tile holds zeros
                try:
                    tile, _, _ = page.decode(data, index, jpegtables=page.jpegtables)
                except Exception as exc:
                    raise BadInputError(self.path, f"has a tile that cannot be decoded "
                                        f"({type(exc).__name__}: {exc})", CORRUPT_HINT) from exc
                tile = tile.reshape(tile.shape[-3:])  # (h, w, samples); a last strip is shorter
                y0, x0 = row * tile_h, column * tile_w
                top, left = max(ys.start, y0), max(xs.start, x0)
                bottom = min(ys.stop, y0 + tile_h, self.height)
                right = min(xs.stop, x0 + tile_w, self.width)
                out[top - ys.start:bottom - ys.start, left - xs.start:right - xs.start] = \
                    tile[top - y0:bottom - y0, left - x0:right - x0]
        return self._as_batch_pixels(out)


def image_percentiles(regions: Regions, p_low: float, p_high: float,
                      grid: BlockGrid) -> NormStats:
    """The p_low and p_high percentiles of the whole image (jointly over channels), block by
    block: exact (equal to np.percentile's) for 8- and 16-bit integers, from a histogram of
    every pixel; from a regular subsample of about PERCENTILE_SAMPLES pixels otherwise. Also
    refuses, as read_batch_image does, an image whose pixels are all equal or not finite."""
    exact = regions.dtype.kind in "ui" and regions.dtype.itemsize <= 2
    first = int(np.iinfo(regions.dtype).min) if exact else 0
    counts = np.zeros(1 << (8 * regions.dtype.itemsize), np.int64) if exact else None
    step = max(1, math.isqrt(regions.height * regions.width // PERCENTILE_SAMPLES))
    samples = []
    for block in grid:
        pixels = regions.read(*block.core)
        if exact:
            counts += np.bincount((pixels.ravel().astype(np.int64) - first), minlength=counts.size)
            continue
        if not np.isfinite(pixels).all():
            raise BadInputError(regions.path, "has NaN/infinite pixels",
                                "Replace them with real values (e.g. 0) or remove the image")
        (ys, xs) = block.core  # the image's every step-th row and column
        samples.append(pixels[(-ys.start) % step::step, (-xs.start) % step::step].ravel())
    if exact:
        values = np.flatnonzero(counts)
        if values.size == 1:
            raise BadInputError(regions.path, f"every pixel is {values[0] + first}: there is "
                                "nothing to segment", "Check the acquisition (a blank or "
                                "saturated frame)")
        return percentiles_from_histogram(counts[values[0]:values[-1] + 1], values[0] + first,
                                          p_low, p_high)
    sample = np.concatenate(samples).astype(np.float32)
    return NormStats(*(float(v) for v in np.percentile(sample, [p_low, p_high])))


class LabelStore:
    """An image's labels (uint32) in an anonymous temporary file: written and read by region."""

    ITEM = np.dtype(np.uint32)

    def __init__(self, folder: Path, height: int, width: int):
        self.height, self.width = height, width
        self._file = tempfile.TemporaryFile(dir=folder)
        self._fd = self._file.fileno()
        os.ftruncate(self._fd, height * width * self.ITEM.itemsize)  # sparse: zeros

    def close(self) -> None:
        self._file.close()

    def _offset(self, y: int, x: int) -> int:
        return (y * self.width + x) * self.ITEM.itemsize

    def read(self, ys: slice, xs: slice) -> np.ndarray:
        out = np.empty((ys.stop - ys.start, xs.stop - xs.start), self.ITEM)
        for i, y in enumerate(range(ys.start, ys.stop)):
            data = os.pread(self._fd, out.shape[1] * self.ITEM.itemsize, self._offset(y, xs.start))
            out[i] = np.frombuffer(data, self.ITEM)
        return out

    def write(self, ys: slice, xs: slice, labels: np.ndarray) -> None:
        labels = np.ascontiguousarray(labels, self.ITEM)
        for i, y in enumerate(range(ys.start, ys.stop)):
            os.pwrite(self._fd, labels[i].tobytes(), self._offset(y, xs.start))

    def rows(self, y0: int, y1: int, step: int = 1) -> np.ndarray:
        """Every step-th row and column from row y0 (to y1): a band of a pyramid level."""
        rows = range(y0, min(y1, self.height), step)
        out = np.empty((len(rows), -(-self.width // step)), self.ITEM)
        for i, y in enumerate(rows):
            row = np.frombuffer(os.pread(self._fd, self.width * self.ITEM.itemsize,
                                         self._offset(y, 0)), self.ITEM)
            out[i] = row[::step]
        return out


def pyramid_steps(height: int, width: int) -> list[int]:
    """The subsampling step of each level: 1, 2, 4, ... until the longer side fits
    PYRAMID_MIN_SIDE."""
    steps = [1]
    while -(-max(height, width) // steps[-1]) > PYRAMID_MIN_SIDE:
        steps.append(steps[-1] * 2)
    return steps


def _level_tiles(store: LabelStore, step: int, dtype: np.dtype):
    """A level's tiles, row-major, each PYRAMID_TILE square (zeros past the image)."""
    tile = PYRAMID_TILE
    for y in range(0, store.height, tile * step):
        band = store.rows(y, y + tile * step, step).astype(dtype)
        padded = np.zeros((tile, -(-band.shape[1] // tile) * tile), dtype)
        padded[: band.shape[0], : band.shape[1]] = band
        for x in range(0, padded.shape[1], tile):
            yield padded[:, x:x + tile]


def write_label_pyramid(path: Path, store: LabelStore, n_labels: int,
                        pixel_size_um: float | None) -> None:
    """The labels as a tiled, pyramidal OME-TIFF (uint16, uint32 past 65,535 nuclei), zlib,
    with the pixel size in its metadata when known; atomically."""
    import tifffile

    dtype = label_dtype(n_labels)
    steps = pyramid_steps(store.height, store.width)
    metadata = {"axes": "YX", "Name": path.name.split(".")[0]}
    if pixel_size_um:
        metadata.update(PhysicalSizeX=pixel_size_um, PhysicalSizeXUnit="µm",
                        PhysicalSizeY=pixel_size_um, PhysicalSizeYUnit="µm")
    options = {"tile": (PYRAMID_TILE, PYRAMID_TILE), "compression": "zlib",
               "photometric": "minisblack", "dtype": dtype}
    with atomic_path(path) as tmp, tifffile.TiffWriter(tmp, bigtiff=True, ome=True) as tif:
        tif.write(_level_tiles(store, 1, dtype), shape=(store.height, store.width),
                  subifds=len(steps) - 1, metadata=metadata, **options)
        for step in steps[1:]:
            shape = (-(-store.height // step), -(-store.width // step))
            tif.write(_level_tiles(store, step, dtype), shape=shape, subfiletype=1, **options)
