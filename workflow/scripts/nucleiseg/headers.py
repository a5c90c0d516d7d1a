"""Images whose metadata names their axes, opened: a TIFF's first series or an OME-Zarr's
full-resolution array, its header (axes, shape, dtype, pixel size) read before its pixels.

`open_stack` gives both formats one shape, so that batch_io applies one set of rules to them
(which axes pass, which channel is measured) and reads the pixels only once they have passed.
Axes are tifffile's letters (T, C, Z, Y, X, S for colour samples, I and Q for pages without
axis metadata), with those of length 1 dropped (`squeeze_axes`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import BadInputError
from .io import CORRUPT_HINT, TIFF_SUFFIXES, check_image_file
from .ome_zarr import is_ome_zarr, open_ome_zarr
from .pixel_size import tiff_pixel_size

log = logging.getLogger(__name__)


def has_axes(path: str | Path) -> bool:
    """TIFFs and OME-Zarr images: read as arrays with axes (PNG and JPEG: as they are)."""
    return Path(path).suffix.lower() in TIFF_SUFFIXES or is_ome_zarr(path)


@dataclass(frozen=True)
class ImageHeader:
    """What a TIFF's first series or an OME-Zarr's full-resolution array is, read from its
    metadata without its pixels."""

    axes: str  # squeezed; batch_io lets YX, YXS, CYX, IYX and QYX pass
    shape: tuple[int, ...]
    dtype: np.dtype
    pixel_size: tuple[float | None, str]  # micrometres per pixel and its source (pixel_size)

    @property
    def height(self) -> int:
        return self.shape[self.axes.index("Y")]

    @property
    def width(self) -> int:
        return self.shape[self.axes.index("X")]


def squeeze_axes(axes: str, shape: tuple[int, ...]) -> tuple[str, tuple[int, ...]]:
    """Drop axes of length 1 (a Z-stack of one plane is a 2D image), keeping Y and X."""
    kept = [(a, n) for a, n in zip(axes, shape) if n != 1 or a in "YX"]
    return "".join(a for a, _ in kept), tuple(n for _, n in kept)


@contextlib.contextmanager
def open_stack(path: str | Path) -> Iterator[tuple[ImageHeader, Callable[[], np.ndarray]]]:
    """(its header, unchecked; a function that reads all its pixels) of a TIFF or an OME-Zarr,
    open while the block runs; BadInputError naming it for one that cannot be decoded."""
    path = Path(path)
    if is_ome_zarr(path):
        image = open_ome_zarr(path)  # BadInputError naming the folder: metadata, array
        axes, shape = squeeze_axes(image.axes, image.shape)
        yield ImageHeader(axes, shape, image.dtype, image.pixel_size), image.read
        return
    import tifffile

    check_image_file(path)  # missing, empty, or not a TIFF by its first bytes
    try:
        with tifffile.TiffFile(path) as tif:
            if not tif.series:
                raise BadInputError(path, "holds no image data (no image series)", CORRUPT_HINT)
            series = tif.series[0]
            axes, shape = squeeze_axes(series.axes, series.shape)
            yield (ImageHeader(axes, shape, np.dtype(series.dtype), tiff_pixel_size(tif)),
                   lambda: _first_series(path, tif))
    except BadInputError:
        raise
    except Exception as exc:  # tifffile raises many types (TiffFileError, ValueError, OSError...)
        raise BadInputError(path, f"cannot be decoded as TIFF ({type(exc).__name__}: {exc})",
                            CORRUPT_HINT) from exc


def _first_series(path: Path, tif) -> np.ndarray:
    if len(tif.series) > 1:
        log.warning("%s holds %d image series; reading the first", path, len(tif.series))
    return np.asarray(tif.series[0].asarray())
