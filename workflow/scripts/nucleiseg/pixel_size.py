"""An image's pixel size in micrometres, from its metadata: a TIFF's OME-XML, ImageJ's
calibration or resolution tags, or an OME-Zarr's scale and axis unit (`scaled_pixel_size`).

The 72 or 96 dpi that every image program writes by default is not a pixel size and is ignored;
odd metadata costs the image its pixel size, never the image.
"""

from __future__ import annotations

import logging
import math
import xml.etree.ElementTree as ET

log = logging.getLogger(__name__)

# Micrometres per unit, for OME-XML units, ImageJ's 'unit' (µ as micro sign or Greek mu) and
# OME-Zarr's axis units (UDUNITS-2 names: micrometer, nanometer, ...).
_UM_PER_UNIT = {
    "um": 1.0, "µm": 1.0, "μm": 1.0, "micron": 1.0, "microns": 1.0, "micrometer": 1.0,
    "micrometre": 1.0, "\\u00b5m": 1.0,  # ImageJ escapes µ in its description
    "nm": 1e-3, "nanometer": 1e-3, "å": 1e-4, "angstrom": 1e-4, "picometer": 1e-6,
    "mm": 1e3, "millimeter": 1e3, "cm": 1e4, "centimeter": 1e4, "m": 1e6, "meter": 1e6,
}
# TIFF ResolutionUnit values with a physical length: CENTIMETER, and tifffile's MILLIMETER and
# MICROMETER. INCH (2) and NONE (1) are left out: the 72/96 dpi that every image program writes
# by default is not a pixel size.
_UM_PER_TIFF_UNIT = {3: 1e4, 4: 1e3, 5: 1.0}


def tiff_pixel_size(tif) -> tuple[float | None, str]:
    """Micrometres per pixel and where it came from: OME-XML, then ImageJ, then TIFF tags."""
    for source, reader in (("ome", _ome_pixel_size), ("imagej", _imagej_pixel_size),
                           ("tiff", _tag_pixel_size)):
        try:
            sizes = reader(tif)
        except Exception as exc:  # odd metadata must not cost the image, only its pixel size
            log.warning("%s: cannot read the %s pixel size (%s)", tif.filehandle.path, source, exc)
            continue
        size = _pick_x(tif.filehandle.path, sizes)
        if size is not None:
            return size, source
    return None, ""


def scaled_pixel_size(name, x: tuple[float, str | None], y: tuple[float, str | None],
                      source: str) -> tuple[float | None, str]:
    """Micrometres per pixel from X's and Y's (size, unit), and `source`; (None, "") when the
    unit is missing or not a length (the size is then in unknown units)."""
    size = _pick_x(name, (_in_um(*x), _in_um(*y)))
    return (size, source) if size is not None else (None, "")


def _pick_x(name, sizes: tuple[float | None, float | None] | None) -> float | None:
    """X size if sensible; warn when Y differs by more than 1% (non-square pixels)."""
    if sizes is None:
        return None
    x, y = sizes
    if x is None or not math.isfinite(x) or x <= 0:
        return None
    if y is not None and math.isfinite(y) and y > 0 and abs(y - x) > 0.01 * x:
        log.warning("%s: pixels are not square (X %.4g um, Y %.4g um); using X", name, x, y)
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
