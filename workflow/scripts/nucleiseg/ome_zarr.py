"""OME-Zarr images: a folder (name.ome.zarr) of NGFF metadata and chunked arrays, opened at its
full resolution.

NGFF 0.4 (zarr v2: `.zattrs` holding `multiscales`, `.zgroup`, arrays with `.zarray`) and NGFF
0.5 (zarr v3: `zarr.json` holding `attributes.ome.multiscales`) are read; so is the layout
bioformats2raw writes (its first image, `0/`, as a TIFF's first series). The metadata is small
JSON, read here; the level-0 array (`multiscales[0].datasets[0].path`) is opened with zarr,
which reads only the chunks a region touches. Axes become the letters tifffile uses for a
TIFF's (T, C, Z, Y, X), so that batch_io applies the TIFF rules to them (stacks and time
series refused, the nuclear channel picked); the pixel size is the level's Y/X scale (times
any multiscales-level scale) in its axis unit. A folder without usable metadata, or whose
array cannot be opened or read, is a BadInputError naming the folder.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .batches import ZARR_SUFFIX
from .errors import BadInputError
from .io import CORRUPT_HINT
from .pixel_size import scaled_pixel_size

log = logging.getLogger(__name__)

PIXEL_SIZE_SOURCE = "ome-zarr"  # images.csv's pixel_size_source for an OME-Zarr's scale
_AXES = {"t": "T", "c": "C", "z": "Z", "y": "Y", "x": "X"}  # NGFF axis names -> tifffile's
_OLD_AXES = "TCZYX"  # NGFF 0.1 and 0.2 name no axes: their arrays are always 5D, in this order
_HINT = ("An OME-Zarr image is a folder holding NGFF multiscales metadata (zarr.json, NGFF "
         "0.5, or .zattrs, NGFF 0.4) and its arrays; write it again (e.g. with bioformats2raw "
         "or ome-zarr-py) or remove it from the batch")


def is_ome_zarr(path: str | Path) -> bool:
    """Whether `path` names an OME-Zarr image (by its name: a file so named is refused)."""
    return Path(path).suffix.lower() == ZARR_SUFFIX


@dataclass
class OmeZarr:
    """An OME-Zarr image's full-resolution array and what its metadata says about it."""

    path: Path
    axes: str  # one tifffile letter (T, C, Z, Y, X) per dimension of the array, in its order
    array: object  # zarr.Array, level 0
    pixel_size: tuple[float | None, str]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(n) for n in self.array.shape)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.array.dtype)

    def read(self, index: tuple = ()) -> np.ndarray:
        """The array (or array[index]) as NumPy; BadInputError for a chunk that cannot be read."""
        try:
            return np.asarray(self.array[index or ...])
        except Exception as exc:  # codecs raise RuntimeError, ValueError, OSError...
            raise BadInputError(self.path, f"has a chunk that cannot be read "
                                f"({type(exc).__name__}: {exc})", CORRUPT_HINT) from exc

    def plane(self, ys: slice, xs: slice, channel: int) -> np.ndarray:
        """The (h, w) region [ys, xs] of one channel (of the first plane of any other axis,
        which the batch's rules let pass only with length 1)."""
        index = tuple(ys if a == "Y" else xs if a == "X" else channel if a == "C" else 0
                      for a in self.axes)
        region = self.read(index)
        return region.T if self.axes.index("X") < self.axes.index("Y") else region


def open_ome_zarr(path: str | Path) -> OmeZarr:
    """The folder's level-0 array, its axes and pixel size; BadInputError naming the folder
    when it is not an OME-Zarr image nucleiseg can read."""
    path = Path(path)
    if not path.is_dir():
        raise BadInputError(path, "is a file, not an OME-Zarr folder" if path.exists() else
                            "no such folder", _HINT)
    image, zarr_format, folder = _multiscales(path, path)
    try:
        dataset = image["datasets"][0]
        level = dataset["path"]
    except (KeyError, IndexError, TypeError) as exc:
        raise BadInputError(path, "its multiscales metadata names no dataset (datasets[0]"
                            ".path)", _HINT) from exc
    array = _open_array(path, folder / str(level), zarr_format)
    axes = _axes(path, image.get("axes"), array.ndim)
    return OmeZarr(path, axes, array, _pixel_size(path, image, dataset, axes))


def _multiscales(path: Path, folder: Path) -> tuple[dict, int, Path]:
    """The first multiscales entry of the group at `folder`, its zarr format and the folder
    (bioformats2raw: path/0) that its dataset paths start from."""
    attributes, zarr_format = _group_attributes(path, folder)
    if isinstance(attributes.get("ome"), dict):  # NGFF 0.5 keeps its keys under "ome"
        attributes = attributes["ome"]
    multiscales = attributes.get("multiscales")
    if not multiscales and "bioformats2raw.layout" in attributes and folder == path:
        log.info("%s: bioformats2raw layout; reading its first image, 0/", path)
        return _multiscales(path, folder / "0")
    if not multiscales or not isinstance(multiscales, list):
        kind = next((k for k in ("plate", "well") if k in attributes), None)
        problem = (f"is an OME-Zarr {kind} (HCS), not one image" if kind else
                   f"has no OME-Zarr multiscales metadata{_within(path, folder)}")
        raise BadInputError(path, problem, "Copy each field (e.g. plate.ome.zarr/A/1/0/) to a "
                            "folder of its own, such as A1_0.ome.zarr" if kind else _HINT)
    if len(multiscales) > 1:
        log.warning("%s holds %d multiscales images; reading the first", path, len(multiscales))
    return multiscales[0], zarr_format, folder


def _group_attributes(path: Path, folder: Path) -> tuple[dict, int]:
    """A zarr group's attributes: zarr.json's (zarr v3) or .zattrs (zarr v2)."""
    for name, zarr_format in (("zarr.json", 3), (".zattrs", 2)):
        file = folder / name
        if not file.is_file():
            continue
        try:
            data = json.loads(file.read_text())
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise BadInputError(path, f"its {file.relative_to(path)} is not readable JSON "
                                f"({exc})", CORRUPT_HINT) from exc
        if not isinstance(data, dict):
            break
        return ((data.get("attributes") or {}) if zarr_format == 3 else data), zarr_format
    raise BadInputError(path, f"has no zarr group metadata (zarr.json or .zattrs)"
                        f"{_within(path, folder)}", _HINT)


def _within(path: Path, folder: Path) -> str:
    return "" if folder == path else f" in {folder.relative_to(path)}/"


def _open_array(path: Path, level: Path, zarr_format: int):
    import zarr

    try:
        return zarr.open_array(str(level), mode="r", zarr_format=zarr_format)
    except Exception as exc:  # FileNotFoundError, zarr's ArrayNotFoundError, bad metadata...
        raise BadInputError(path, f"its full-resolution array {level.relative_to(path)}/ "
                            f"cannot be opened ({type(exc).__name__}: {exc})", _HINT) from exc


def _axes(path: Path, axes, ndim: int) -> str:
    """tifffile's letters for the axes (NGFF 0.4/0.5: objects with a name; 0.3: names)."""
    if axes is None and ndim == len(_OLD_AXES):
        return _OLD_AXES
    try:
        names = [str(a["name"] if isinstance(a, dict) else a).lower() for a in axes]
    except (KeyError, TypeError) as exc:
        raise BadInputError(path, f"has axes metadata nucleiseg cannot read ({axes!r})",
                            _HINT) from exc
    if len(names) != ndim:
        raise BadInputError(path, f"its metadata names {len(names)} axes ({', '.join(names)}) "
                            f"for an array of {ndim} dimensions", _HINT)
    unknown = [name for name in names if name not in _AXES]
    if unknown or "y" not in names or "x" not in names:
        raise BadInputError(path, f"has axes {', '.join(names)}: nucleiseg reads images with "
                            "axes y and x, and optionally t, c and z", _HINT)
    return "".join(_AXES[name] for name in names)


def _pixel_size(path: Path, image: dict, dataset: dict, axes: str) -> tuple[float | None, str]:
    """The level's Y/X scale (times any multiscales-level scale) in its axes' unit."""
    try:
        scale = np.ones(len(axes))
        for transforms in (dataset.get("coordinateTransformations"),
                           image.get("coordinateTransformations")):
            for transform in transforms or []:
                if transform.get("type") == "scale" and "scale" in transform:
                    scale = scale * np.asarray(transform["scale"], dtype=float)
        axis_meta = image.get("axes") or []
        units = [a.get("unit") if isinstance(a, dict) else None for a in axis_meta]
        units += [None] * (len(axes) - len(units))
        y, x = axes.index("Y"), axes.index("X")
        return scaled_pixel_size(path, (scale[x], units[x]), (scale[y], units[y]),
                                 PIXEL_SIZE_SOURCE)
    except (TypeError, ValueError, AttributeError) as exc:
        log.warning("%s: cannot read the OME-Zarr pixel size (%s)", path, exc)
        return None, ""
