"""Reading the images of a user's batch: what segmentation needs, or a clear refusal.

Users bring whatever their microscope or image program wrote: 8-bit PNGs, 16-bit TIFFs, colour
JPEGs, OME-TIFFs and ImageJ hyperstacks with several channels. Each file becomes a `BatchImage`
(the image the network sees, the nuclear-channel intensities that are measured, and the pixel size
from the file's metadata), or a BadInputError that names the file, says what is wrong and what to
do, so that the caller can skip it (listing `exc.problem`) or stop.
"""

from __future__ import annotations

import logging
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .batches import image_id
from .errors import BadInputError, ConfigError
from .io import CORRUPT_HINT, TIFF_SUFFIXES, is_image_file, read_image
from .normalize import to_channels_last

log = logging.getLogger(__name__)

MIN_SIDE = 8  # smaller images cannot hold a nucleus

# Micrometres per unit, for OME-XML units and ImageJ's 'unit' (µ as micro sign or Greek mu).
_UM_PER_UNIT = {
    "um": 1.0, "µm": 1.0, "μm": 1.0, "micron": 1.0, "microns": 1.0, "micrometer": 1.0,
    "micrometre": 1.0, "\\u00b5m": 1.0,  # ImageJ escapes µ in its description
    "nm": 1e-3, "nanometer": 1e-3, "å": 1e-4, "angstrom": 1e-4,
    "mm": 1e3, "millimeter": 1e3, "cm": 1e4, "centimeter": 1e4, "m": 1e6, "meter": 1e6,
}
# TIFF ResolutionUnit values with a physical length: CENTIMETER, and tifffile's MILLIMETER and
# MICROMETER. INCH (2) and NONE (1) are left out: the 72/96 dpi that every image program writes
# by default is not a pixel size.
_UM_PER_TIFF_UNIT = {3: 1e4, 4: 1e3, 5: 1.0}
_CHANNEL_AXES = "CIQ"  # I/Q: pages without axis metadata, taken as channels
_STACK_HINT = ("nucleiseg segments 2D images: save one plane or a maximum projection "
               "(Fiji: Image > Stacks > Z Project)")


@dataclass
class BatchImage:
    """One image of a batch, ready for normalization and measurement."""

    id: str
    path: Path
    image: np.ndarray  # (H, W, 1) grayscale or (H, W, 3) colour, dtype as stored
    intensity: np.ndarray  # (H, W) nuclear channel as stored; luminance (float32) for colour
    pixel_size_um: float | None  # from the file's metadata; None when it has none
    pixel_size_source: str  # "ome", "imagej", "tiff" or "" (none)
    description: str  # e.g. "16-bit grayscale", "8-bit RGB", "channel 1 of 2 (16-bit)"

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])


# --- Reading -------------------------------------------------------------------------------------


def read_batch_image(path: str | Path, nuclear_channel: int = 0) -> BatchImage:
    """Read one file of a batch; BadInputError naming the file for anything unusable.

    `nuclear_channel` (0-based, config key segment.nuclear_channel) picks the channel of a
    multi-channel TIFF; single-channel and colour images ignore it.
    """
    path = Path(path)
    _check_channel_setting(nuclear_channel)
    if not path.is_file() or path.stat().st_size == 0 or not is_image_file(path):
        read_image(path)  # raises io's BadInputError (missing, empty, unsupported) before decoding
    pixel_size: tuple[float | None, str] = (None, "")
    channel_note = None
    if path.suffix.lower() in TIFF_SUFFIXES:
        data, axes, pixel_size = _read_tiff(path)
        data, channel_note = _to_yx_or_yxs(path, data, axes, int(nuclear_channel))
    else:
        data = read_image(path)  # PNG/JPEG: (H, W) or (H, W, C)
    data, depth = _check_dtype(path, data)
    stored = _layout_name(data)
    try:
        image = to_channels_last(data)
    except ValueError as exc:
        raise BadInputError(
            path, f"has an unsupported channel layout (shape {data.shape})",
            "Save it as grayscale or RGB",
        ) from exc
    _check_size(path, image)
    _check_finite(path, image)
    _check_not_constant(path, image)
    return BatchImage(
        id=image_id(path), path=path, image=image, intensity=_intensity(image),
        pixel_size_um=pixel_size[0], pixel_size_source=pixel_size[1],
        description=_describe(image, depth, stored, channel_note),
    )


def _check_channel_setting(nuclear_channel) -> None:
    """A negative or non-integer channel is a settings mistake for every file, not a bad image."""
    valid = isinstance(nuclear_channel, (int, np.integer)) and not isinstance(nuclear_channel, bool)
    if not valid or nuclear_channel < 0:
        raise ConfigError(
            f"segment.nuclear_channel must be a channel number from 0, got {nuclear_channel!r}"
        )


def _read_tiff(path: Path) -> tuple[np.ndarray, str, tuple[float | None, str]]:
    """The first series' pixels, its squeezed axes, and the pixel size from the metadata.

    Axes are checked before the pixels are read, so a large Z-stack is refused without loading it.
    """
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            if not tif.series:
                raise BadInputError(path, "holds no image data (no image series)", CORRUPT_HINT)
            if len(tif.series) > 1:
                log.warning("%s holds %d image series; reading the first", path, len(tif.series))
            series = tif.series[0]
            axes, shape = _squeeze_axes(series.axes, series.shape)
            _refuse_stacks(path, axes, shape)
            data = np.asarray(series.asarray())
            pixel_size = _tiff_pixel_size(tif)
    except BadInputError:
        raise
    except Exception as exc:  # tifffile raises many types (TiffFileError, ValueError, OSError...)
        raise BadInputError(
            path, f"cannot be decoded as TIFF ({type(exc).__name__}: {exc})", CORRUPT_HINT,
        ) from exc
    if data.size == 0:
        raise BadInputError(path, f"holds no image data (decoded shape {data.shape})",
                            CORRUPT_HINT)
    return data.reshape(shape), axes, pixel_size


def _squeeze_axes(axes: str, shape: tuple[int, ...]) -> tuple[str, tuple[int, ...]]:
    """Drop axes of length 1 (a Z-stack of one plane is a 2D image), keeping Y and X."""
    kept = [(a, n) for a, n in zip(axes, shape) if n != 1 or a in "YX"]
    return "".join(a for a, _ in kept), tuple(n for _, n in kept)


def _refuse_stacks(path: Path, axes: str, shape: tuple[int, ...]) -> None:
    sizes = dict(zip(axes, shape))
    if "Z" in sizes:
        raise BadInputError(path, f"is a 3D stack (Z={sizes['Z']} planes)", _STACK_HINT)
    if "T" in sizes:
        raise BadInputError(path, f"is a time series (T={sizes['T']} frames)", _STACK_HINT)


def _to_yx_or_yxs(path: Path, data: np.ndarray, axes: str,
                  nuclear_channel: int) -> tuple[np.ndarray, str | None]:
    """(Y, X) for one picked channel, or (Y, X, S) for colour; a note naming a picked channel."""
    others = axes.replace("Y", "").replace("X", "")
    if len(axes) != len(others) + 2 or len(others) > 1:
        raise BadInputError(
            path, f"has an unsupported layout (axes {axes}, shape {data.shape})",
            "Save it as a 2D grayscale, RGB or multi-channel image (axes YX, YXS or CYX)",
        )
    data = np.moveaxis(data, [axes.index("Y"), axes.index("X")], [0, 1])
    if not others or others == "S":
        return np.ascontiguousarray(data), None
    if others not in _CHANNEL_AXES:
        raise BadInputError(
            path, f"has an unsupported layout (axes {axes}, shape {data.shape})",
            "Save it as a 2D grayscale, RGB or multi-channel image (axes YX, YXS or CYX)",
        )
    n_channels = data.shape[2]
    if nuclear_channel >= n_channels:
        raise BadInputError(
            path, f"has {n_channels} channels but segment.nuclear_channel is {nuclear_channel} "
            f"(counted from 0, so 0 to {n_channels - 1})",
            "Set segment.nuclear_channel to the channel that shows the nuclei (0 for the first)",
        )
    picked = np.ascontiguousarray(data[:, :, nuclear_channel])
    return picked, f"channel {nuclear_channel + 1} of {n_channels}"


def _check_dtype(path: Path, data: np.ndarray) -> tuple[np.ndarray, str]:
    """Accept integers and real floats; bool becomes uint8 0/1. Returns the data and its depth."""
    if data.dtype == bool:
        return data.astype(np.uint8), "1-bit"
    kind = data.dtype.kind
    bits = data.dtype.itemsize * 8
    if kind == "u":
        return data, f"{bits}-bit"
    if kind == "i":
        return data, f"{bits}-bit signed"
    if kind == "f":
        if data.dtype == np.float16:  # too coarse for arithmetic downstream; float32 holds it all
            return data.astype(np.float32), "16-bit float"
        return data, f"{bits}-bit float"
    raise BadInputError(
        path, f"has pixels of type {data.dtype}, which are not intensities",
        "Save it with integer or real (float) pixels",
    )


def _layout_name(data: np.ndarray) -> str:
    channels = data.shape[2] if data.ndim == 3 else 1
    return {1: "grayscale", 2: "gray+alpha", 3: "RGB", 4: "RGBA"}.get(channels, "")


def _check_size(path: Path, image: np.ndarray) -> None:
    height, width = image.shape[:2]
    if height < MIN_SIDE or width < MIN_SIDE:
        raise BadInputError(
            path, f"is {width} x {height} pixels: too small to hold a nucleus "
            f"(at least {MIN_SIDE} x {MIN_SIDE})",
            "Remove it from the batch",
        )


def _check_finite(path: Path, image: np.ndarray) -> None:
    if image.dtype.kind != "f":
        return
    bad = int(np.count_nonzero(~np.isfinite(image).all(axis=-1)))
    if bad:
        raise BadInputError(
            path, f"has {bad} NaN/infinite pixels",
            "Replace them with real values (e.g. 0) or remove the image",
        )


def _check_not_constant(path: Path, image: np.ndarray) -> None:
    """A blank or saturated frame has nothing to segment (varying pixels, no nuclei: fine)."""
    first = image[0, 0]
    if np.all(image == first):
        value = _format_value(first)
        raise BadInputError(
            path, f"every pixel is {value}: there is nothing to segment",
            "Check the acquisition (a blank or saturated frame)",
        )


def _format_value(pixel: np.ndarray) -> str:
    values = [f"{v:g}" if isinstance(v, float) else str(v) for v in pixel.tolist()]
    return values[0] if len(values) == 1 else "(" + ", ".join(values) + ")"


def _intensity(image: np.ndarray) -> np.ndarray:
    """What is measured: the grayscale channel as stored, or the luminance of colour."""
    if image.shape[-1] == 1:
        return image[..., 0]
    rgb = image.astype(np.float32, copy=False)
    return (0.2125 * rgb[..., 0] + 0.7154 * rgb[..., 1] + 0.0721 * rgb[..., 2]).astype(np.float32)


def _describe(image: np.ndarray, depth: str, stored: str, channel_note: str | None) -> str:
    if channel_note:
        return f"{channel_note} ({depth})"
    kind = "grayscale" if image.shape[-1] == 1 else "RGB"
    text = f"{depth} {kind}"
    if stored and stored != kind:
        text += f" (stored as {stored})"
    return text


# --- Pixel size ----------------------------------------------------------------------------------


def _tiff_pixel_size(tif) -> tuple[float | None, str]:
    """Micrometres per pixel and where it came from: OME-XML, then ImageJ, then TIFF tags."""
    for source, reader in (("ome", _ome_pixel_size), ("imagej", _imagej_pixel_size),
                           ("tiff", _tag_pixel_size)):
        try:
            sizes = reader(tif)
        except Exception as exc:  # odd metadata must not cost the image, only its pixel size
            log.warning("%s: cannot read the %s pixel size (%s)", tif.filehandle.path, source, exc)
            continue
        size = _pick_x(tif, sizes)
        if size is not None:
            return size, source
    return None, ""


def _pick_x(tif, sizes: tuple[float | None, float | None] | None) -> float | None:
    """X size if sensible; warn when Y differs by more than 1% (non-square pixels)."""
    if sizes is None:
        return None
    x, y = sizes
    if x is None or not math.isfinite(x) or x <= 0:
        return None
    if y is not None and math.isfinite(y) and y > 0 and abs(y - x) > 0.01 * x:
        log.warning("%s: pixels are not square (X %.4g um, Y %.4g um); using X",
                    tif.filehandle.path, x, y)
    return x


def _ome_pixel_size(tif) -> tuple[float | None, float | None] | None:
    if not tif.is_ome or not tif.ome_metadata:
        return None
    root = ET.fromstring(tif.ome_metadata)
    pixels = next((e for e in root.iter() if _local(e.tag) == "Pixels"), None)
    if pixels is None:
        return None
    return tuple(_in_um(pixels.get(f"PhysicalSize{a}"), pixels.get(f"PhysicalSize{a}Unit", "µm"))
                 for a in "XY")


def _imagej_pixel_size(tif) -> tuple[float | None, float | None] | None:
    metadata = tif.imagej_metadata
    if not metadata or "unit" not in metadata:
        return None
    tags = tif.pages[0].tags
    return tuple(_in_um(_per_pixel(tags, name), metadata["unit"])
                 for name in ("XResolution", "YResolution"))


def _tag_pixel_size(tif) -> tuple[float | None, float | None] | None:
    tags = tif.pages[0].tags
    unit = tags.get("ResolutionUnit")
    um_per_unit = _UM_PER_TIFF_UNIT.get(int(unit.value)) if unit is not None else None
    if um_per_unit is None:
        return None
    sizes = (_per_pixel(tags, "XResolution"), _per_pixel(tags, "YResolution"))
    return tuple(None if s is None else s * um_per_unit for s in sizes)


def _per_pixel(tags, name: str) -> float | None:
    """Units per pixel from a resolution tag (pixels per unit, a rational)."""
    tag = tags.get(name)
    if tag is None:
        return None
    value = tag.value
    numerator, denominator = value if isinstance(value, tuple) else (value, 1)
    return float(denominator) / float(numerator) if numerator else None


def _in_um(value, unit) -> float | None:
    if value is None:
        return None
    factor = _UM_PER_UNIT.get(str(unit).strip().lower())
    if factor is None:  # 'pixel', 'inch' or unknown: not a physical size we can trust
        return None
    return float(value) * factor


def _local(tag: str) -> str:
    """An XML tag without its namespace, so any OME schema version matches."""
    return tag.rsplit("}", 1)[-1]
