"""Reading the images of a user's batch: what segmentation needs, or a clear refusal.

Users bring whatever their microscope or image program wrote: 8-bit PNGs, 16-bit TIFFs, colour
JPEGs, OME-TIFFs and ImageJ hyperstacks with several channels, OME-Zarr folders. TIFFs and
OME-Zarr images pass the same rules on their axes (headers.py opens both): stacks and time
series are refused, one channel is picked. TIFF pages whose axes the file does
not record (channels? Z planes? time points?) are refused unless `segment.pages` says they are
channels: nothing is guessed. Each file becomes a `BatchImage`
(the image the network sees, the nuclear-channel intensities that are measured, and the pixel size
from the file's metadata), or a BadInputError that names the file, says what is wrong and what to
do, so that the caller can skip it (listing `exc.problem`) or stop.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .batches import image_id
from .blocks import takes_blocks
from .errors import BadInputError, BadInputsError, ConfigError
from .headers import ImageHeader, has_axes, open_stack
from .io import CORRUPT_HINT, read_image
from .normalize import to_channels_last

log = logging.getLogger(__name__)

MIN_SIDE = 8  # smaller images cannot hold a nucleus
SKIP_HINT = "Or set segment.on_bad_image: skip to leave such files out"

# segment.pages: what TIFF pages without OME or ImageJ axes are (tifffile's axes I and Q).
PAGES = ("refuse", "channels")
_PAGE_AXES = ("I", "Q")
_PROJECT = "save one plane or a maximum projection (Fiji: Image > Stacks > Z Project)"
_STACK_HINT = f"nucleiseg segments 2D images: {_PROJECT}"
_PAGES_HINT = ("If they are channels, set segment.pages: channels (segment.nuclear_channel picks "
               f"one, from 0); if they are Z planes or time points, {_PROJECT}")
_LAYOUT_HINT = "Save it as a 2D grayscale, RGB or multi-channel image (axes YX, YXS or CYX)"


@dataclass
class BatchImage:
    """One image of a batch, ready for normalization and measurement."""

    id: str
    path: Path
    image: np.ndarray  # (H, W, 1) grayscale or (H, W, 3) colour, dtype as stored
    intensity: np.ndarray  # (H, W) nuclear channel as stored; luminance (float32) for colour
    pixel_size_um: float | None  # from the file's metadata; None when it has none
    pixel_size_source: str  # "ome", "imagej", "tiff" or "" (none)
    description: str  # e.g. "16-bit grayscale", "8-bit RGB", "channel 1 of channels 0-1 (16-bit)"

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])


# --- Reading -------------------------------------------------------------------------------------


def read_batch_image(path: str | Path, nuclear_channel: int = 0,
                     pages: str = "refuse") -> BatchImage:
    """Read one image of a batch (a file, or an OME-Zarr folder); BadInputError naming it for
    anything unusable.

    `nuclear_channel` (0-based, config key segment.nuclear_channel) picks the channel of a
    multi-channel TIFF or OME-Zarr; single-channel and colour images ignore it. `pages`
    (segment.pages, one of PAGES) says what TIFF pages without axis metadata are: refused, or
    channels.
    """
    path = Path(path)
    _check_channel_setting(nuclear_channel)
    check_pages(pages)
    pixel_size: tuple[float | None, str] = (None, "")
    channel_note = None
    if has_axes(path):
        data, axes, pixel_size = _read_stack(path, pages)
        data, channel_note = _to_yx_or_yxs(path, data, axes, int(nuclear_channel))
    else:  # missing, empty, unsupported, or not the type its suffix says: read_image refuses
        data = read_image(path)  # PNG/JPEG: (H, W) or (H, W, C)
    data, depth = _check_dtype(path, data)
    stored = _layout_name(data)
    try:
        image = to_channels_last(data)
    except ValueError as exc:
        raise BadInputError(path, f"has an unsupported channel layout (shape {data.shape})",
                            "Save it as grayscale or RGB") from exc
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
        raise ConfigError(f"segment.nuclear_channel must be a channel number from 0, "
                          f"got {nuclear_channel!r}")


def check_pages(pages: str) -> str:
    """`pages` if it is one of PAGES, else a ConfigError naming segment.pages."""
    if pages not in PAGES:
        raise ConfigError(f"segment.pages must be one of {', '.join(PAGES)}, got {pages!r}")
    return pages


def _read_stack(path: Path, pages: str) -> tuple[np.ndarray, str, tuple[float | None, str]]:
    """A TIFF's first series or an OME-Zarr's full-resolution array: its pixels, squeezed axes
    and pixel size. Axes are checked before the pixels are read, so a large Z-stack is refused
    without loading it."""
    with open_stack(path) as (header, read):
        _check_axes(path, header.axes, header.shape, pages)
        data = read()
    if data.size == 0:
        raise BadInputError(path, f"holds no image data (decoded shape {data.shape})",
                            CORRUPT_HINT)
    return data.reshape(header.shape), header.axes, header.pixel_size


def read_header(path: str | Path, nuclear_channel: int = 0,
                pages: str = "refuse") -> ImageHeader:
    """A TIFF's or OME-Zarr's layout, checked as read_batch_image checks it, without reading
    its pixels (large images, read block by block: large_io)."""
    path = Path(path)
    _check_channel_setting(nuclear_channel)
    with open_stack(path) as (header, _):
        pass
    axes, shape = header.axes, header.shape
    _check_axes(path, axes, shape, pages)
    if len(axes) == 3 and axes[0] != "Y":  # channels first: the nuclear channel must exist
        _to_yx_or_yxs(path, np.empty((0, 0, shape[0]), header.dtype), "YX" + axes[0],
                      nuclear_channel)
    _check_dtype(path, np.empty(0, header.dtype))
    _check_size(path, np.empty((header.height, header.width, 0)))
    return header


def _check_axes(path: Path, axes: str, shape: tuple[int, ...], pages: str) -> None:
    """Refuse stacks, time series, other layouts, and pages that may be any of these."""
    sizes = dict(zip(axes, shape))
    if "Z" in sizes:
        raise BadInputError(path, f"is a 3D stack (Z={sizes['Z']} planes)", _STACK_HINT)
    if "T" in sizes:
        raise BadInputError(path, f"is a time series (T={sizes['T']} frames)", _STACK_HINT)
    others = axes.replace("Y", "").replace("X", "")
    if len(axes) != len(others) + 2 or others not in ("", "S", "C", *_PAGE_AXES):
        raise BadInputError(path, f"has an unsupported layout (axes {axes}, shape {shape})",
                            _LAYOUT_HINT)
    if others in _PAGE_AXES and pages == "refuse":
        raise BadInputError(path, f"has {sizes[others]} pages and no axis metadata: they may be "
                            "channels, Z planes or time points", _PAGES_HINT)


def _to_yx_or_yxs(path: Path, data: np.ndarray, axes: str,
                  nuclear_channel: int) -> tuple[np.ndarray, str | None]:
    """(Y, X) for one picked channel, or (Y, X, S) for colour (axes as _check_axes lets pass)."""
    others = axes.replace("Y", "").replace("X", "")
    data = np.moveaxis(data, [axes.index("Y"), axes.index("X")], [0, 1])
    if others in ("", "S"):
        return np.ascontiguousarray(data), None
    n_channels = data.shape[2]
    if nuclear_channel >= n_channels:
        raise BadInputError(
            path, f"has {n_channels} channels but segment.nuclear_channel is {nuclear_channel} "
            f"(counted from 0, so 0 to {n_channels - 1})",
            "Set segment.nuclear_channel to the channel that shows the nuclei (0 for the first)",
        )
    picked = np.ascontiguousarray(data[:, :, nuclear_channel])
    return picked, channel_note(nuclear_channel, n_channels)


def channel_note(channel: int, n_channels: int) -> str:
    """How a description names the channel picked from a multi-channel image."""
    return f"channel {channel} of channels 0-{n_channels - 1}"


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
    raise BadInputError(path, f"has pixels of type {data.dtype}, which are not intensities",
                        "Save it with integer or real (float) pixels")


def _layout_name(data: np.ndarray) -> str:
    channels = data.shape[2] if data.ndim == 3 else 1
    return {1: "grayscale", 2: "gray+alpha", 3: "RGB", 4: "RGBA"}.get(channels, "")


def _check_size(path: Path, image: np.ndarray) -> None:
    height, width = image.shape[:2]
    if height < MIN_SIDE or width < MIN_SIDE:
        raise BadInputError(path, f"is {width} x {height} pixels: too small to hold a nucleus "
                            f"(at least {MIN_SIDE} x {MIN_SIDE})", "Remove it from the batch")


def _check_finite(path: Path, image: np.ndarray) -> None:
    if image.dtype.kind != "f":
        return
    bad = int(np.count_nonzero(~np.isfinite(image).all(axis=-1)))
    if bad:
        raise BadInputError(path, f"has {bad} NaN/infinite pixels",
                            "Replace them with real values (e.g. 0) or remove the image")


def _check_not_constant(path: Path, image: np.ndarray) -> None:
    """A blank or saturated frame has nothing to segment (varying pixels, no nuclei: fine)."""
    first = image[0, 0]
    if np.all(image == first):
        raise BadInputError(path, f"every pixel is {_format_value(first)}: there is nothing to "
                            "segment", "Check the acquisition (a blank or saturated frame)")


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


def is_large_image(path: str | Path, block_size: int) -> bool:
    """Whether `path` is a TIFF or an OME-Zarr to process block by block (blocks.takes_blocks;
    its header read, its pixels not). One that cannot be read is not: read_batch_image names
    it. PNG and JPEG files are always read whole."""
    if not has_axes(path):
        return False
    try:
        header = read_header(path, pages="channels")
    except BadInputError:
        return False
    return takes_blocks(header.height, header.width, block_size)


def check_images(files: list[Path], nuclear_channel: int = 0, pages: str = "refuse",
                 block_size: int = 0) -> None:
    """Read every file as segmentation will; one error naming each file that cannot be used.

    Files above block_size (segment.block_size; 0: none) have their header checked, not
    their pixels, which would not fit in memory.

    With segment.on_bad_image: fail, the workflow checks a whole batch this way before
    segmenting any of it, so that one run lists every bad file, not the first of them.
    """
    problems = []
    for path in files:
        try:
            if block_size and is_large_image(path, block_size):
                read_header(path, nuclear_channel, pages)  # pixels: when segmented
            else:
                read_batch_image(path, nuclear_channel, pages)
        except BadInputError as exc:
            problems.append(exc)
    if len(problems) == 1:  # one file: its own one-line message
        raise with_skip_hint(problems[0])
    if problems:
        raise BadInputsError(problems, len(files), f"Replace or remove them. {SKIP_HINT}")
    log.info("all %d files can be read", len(files))


def with_skip_hint(exc: BadInputError) -> BadInputError:
    """The same refusal, saying that segment.on_bad_image: skip would leave the file out."""
    return BadInputError(exc.path, exc.problem, (exc.hint + ". " if exc.hint else "") + SKIP_HINT)
