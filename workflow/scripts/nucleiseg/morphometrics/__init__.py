"""Per-nucleus measurements: size, shape, location and intensity, one row per nucleus.

CellProfiler's MeasureObjectSizeShape (2D, with its advanced inertia tensor) and
MeasureObjectIntensity: a column with CellProfiler's name holds CellProfiler 4.2.8.1's value
(tests/test_cellprofiler.py compares them nucleus by nucleus), and the few definitions of our
own have names of their own. Shapes are measured on an instance label image (0 = background),
intensities on the RAW image of the nuclear channel, converted to float64: never on a
normalized one, whose values mean nothing across images. columns.COLUMNS defines every column
`measure_labels` returns, in its order, with unit, family, formula and source; features holds
the per-object measurements scikit-image lacks, edges the edge pixels, which need the whole
image.

Nuclei touching the image border are measured as they are (cut off); `touches_border` says which
they are, so that callers can flag or drop them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from skimage.measure import regionprops_table

from ..labels import check_labels
from .columns import (
    COLUMNS,
    CORE_COLUMNS,
    FEATURES,
    PHYSICAL_COLUMNS,
    PIXEL_COLUMNS,
    SCALED_COLUMNS,
    Column,
    cellprofiler_cell,
    check_features,
    column_names,
    column_table,
    markdown_rows,
    selected,
)
from .brightest import BRIGHTEST, brightest
from .edges import EDGE_STATS, edge_stats
from .features import EXTRA_PROPERTIES
from .neighbours import neighbour_stats
from .radial import radial_stats
from .texture import texture_stats
from .zernike import zernike_stats

__all__ = ["COLUMNS", "FEATURES", "Column", "cellprofiler_cell", "column_names", "column_table",
           "full_scale_of", "markdown_rows", "measure_labels", "touches_border"]

_NOT_REGIONPROPS = {f.__name__ for f in EXTRA_PROPERTIES} | {EDGE_STATS, BRIGHTEST}
# The scikit-image properties the core columns are read from
_PROPERTIES = tuple(dict.fromkeys(c.source.split("-")[0] for c in CORE_COLUMNS
                                  if c.source and c.source.split("-")[0] not in _NOT_REGIONPROPS))
# Each optional family's measurement on the whole image:
# f(labels, intensity, index, full_scale) -> {key: values}
_FAMILIES = {
    "neighbours": lambda labels, intensity, index, full_scale: neighbour_stats(labels, index),
    "texture": texture_stats,
    "radial": lambda labels, intensity, index, full_scale: radial_stats(labels, intensity,
                                                                        index),
    "zernike": lambda labels, intensity, index, full_scale: zernike_stats(labels, index),
}


def _check_intensity(intensity, shape: tuple[int, int]) -> np.ndarray:
    intensity = np.asarray(intensity)
    if intensity.ndim == 3:
        raise ValueError(f"intensity has shape {intensity.shape}: measure one channel at a time "
                         f"and pass the nuclear channel as a 2D array")
    if intensity.shape != shape:
        raise ValueError(f"intensity shape {intensity.shape} differs from labels shape {shape}")
    if intensity.dtype.kind not in "biuf":
        raise ValueError(f"intensity must be real numbers, got dtype {intensity.dtype}")
    return intensity.astype(np.float64)


def full_scale_of(dtype) -> float:
    """The intensity of white in an image of this type, what CellProfiler's loader divides by:
    the integer type's maximum (255, 65535), 1 for floats and booleans."""
    dtype = np.dtype(dtype)
    return float(np.iinfo(dtype).max) if dtype.kind in "iu" else 1.0


def _full_scale(full_scale, intensity) -> float:
    if full_scale is None:
        return full_scale_of(np.asarray(intensity).dtype)
    scale = float(full_scale)
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"full_scale must be a positive number (the intensity of white), "
                         f"got {full_scale!r}")
    return scale


def _check_pixel_size(pixel_size_um) -> float | None:
    if pixel_size_um is None:
        return None
    size = float(pixel_size_um)
    if not (np.isfinite(size) and size > 0):
        raise ValueError(f"pixel_size_um must be a positive number (micrometres per pixel), "
                         f"got {pixel_size_um!r}")
    return size


def touches_border(labels) -> np.ndarray:
    """The labels (sorted, no 0) with a pixel in the first or last row or column."""
    labels = check_labels(labels)
    if labels.size == 0:
        return np.empty(0, labels.dtype)
    edge = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    found = np.unique(edge)
    return found[found != 0]


def _orientation_degrees(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """CellProfiler 4's AreaShape_Orientation from the inertia tensor [[a, b], [b, c]]:
    scikit-image 0.18.3's `orientation` (_regionprops.py:446-454) in degrees, its tie rule
    included (later scikit-image, 0.26 here, gives the opposite sign where a == c)."""
    degrees = np.degrees(0.5 * np.arctan2(-2 * b, c - a))
    return np.where(a - c == 0, np.where(b < 0, -45.0, 45.0), degrees)


def _derived(props: dict, table: dict) -> dict:
    """The columns without a source, from regionprops' output (props) and the read columns."""
    area = table["AreaShape_Area"]
    perimeter = table["AreaShape_Perimeter"]
    with np.errstate(divide="ignore"):  # no guard, as CellProfiler: inf for a perimeter of 0
        form_factor = 4 * np.pi * area / perimeter**2
    # intensity_location works in the bounding box; shift by its corner
    row0, col0 = table["AreaShape_BoundingBoxMinimum_Y"], table["AreaShape_BoundingBoxMinimum_X"]
    com_y = props["intensity_location-0"] + row0
    com_x = props["intensity_location-1"] + col0
    return {
        "AreaShape_Orientation": _orientation_degrees(
            table["AreaShape_InertiaTensor_0_0"], table["AreaShape_InertiaTensor_0_1"],
            table["AreaShape_InertiaTensor_1_1"]),
        "AreaShape_FormFactor": form_factor,
        "AreaShape_Compactness": perimeter**2 / np.maximum(4 * np.pi * area, 1.0),
        "Intensity_MassDisplacement": np.hypot(com_x - table["AreaShape_Center_X"],
                                               com_y - table["AreaShape_Center_Y"]),
        "Location_CenterMassIntensity_X": com_x,
        "Location_CenterMassIntensity_Y": com_y,
    }


def _measure(labels: np.ndarray, intensity: np.ndarray, features: tuple[str, ...],
             full_scale: float) -> dict:
    """Every pixel column of the core and of the families in features, by name."""
    props = regionprops_table(labels, intensity, properties=_PROPERTIES,
                              extra_properties=EXTRA_PROPERTIES)
    props.update(edge_stats(labels, intensity, props["label"]))
    props.update(brightest(labels, intensity, props["label"]))
    for family in features:
        props.update(_FAMILIES[family](labels, intensity, props["label"], full_scale))
    table = {c.name: props[c.source] for c in selected(PIXEL_COLUMNS, features) if c.source}
    table.update(_derived(props, table))
    return table


def measure_labels(labels, intensity, pixel_size_um: float | None = None,
                   features=FEATURES, full_scale: float | None = None) -> pd.DataFrame:
    """One row per nucleus (label > 0), the columns of `column_names(pixel_size_um given,
    features)`.

    labels: 2D integer instance labels, 0 = background. intensity: the raw nuclear channel,
    2D, same shape, any real dtype (measured as float64). pixel_size_um: micrometres per pixel;
    when given, the `_um`/`_um2` columns are added. features: the optional families to measure
    besides the core (FEATURES, all by default; ValueError on an unknown one). full_scale: the
    raw intensity of white, which texture scales to 1 before its 256 grey levels (CellProfiler's
    loader: 255 for 8-bit, 65535 for 16-bit images); default the intensity's integer type's
    maximum, 1 for floats. No nuclei gives
    zero rows with every column. Raises ValueError on a 3D intensity (pass one channel), mismatched shapes, or
    non-integer labels.
    """
    labels = check_labels(labels)
    scale = _full_scale(full_scale, intensity)
    intensity = _check_intensity(intensity, labels.shape)
    size = _check_pixel_size(pixel_size_um)
    features = check_features(features)
    pixel = selected(PIXEL_COLUMNS, features)
    columns = pixel + (selected(PHYSICAL_COLUMNS, features) if size is not None else ())

    if not labels.any():
        return pd.DataFrame({c.name: np.empty(0, c.dtype) for c in columns})
    table = _measure(labels, intensity, features, scale)
    frame = pd.DataFrame({c.name: np.asarray(table[c.name]).astype(c.dtype) for c in pixel})
    if size is not None:
        for scaled, physical in zip(SCALED_COLUMNS, PHYSICAL_COLUMNS):
            if scaled.name in frame:
                factor = size if scaled.scale == "length" else size**2
                frame[physical.name] = frame[scaled.name].astype(np.float64) * factor
    return frame
