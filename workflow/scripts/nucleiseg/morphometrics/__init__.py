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
    PHYSICAL_COLUMNS,
    PIXEL_COLUMNS,
    SCALED_COLUMNS,
    Column,
    cellprofiler_cell,
    column_names,
    column_table,
    markdown_rows,
)
from .edges import EDGE_STATS, edge_stats
from .features import EXTRA_PROPERTIES

__all__ = ["COLUMNS", "Column", "cellprofiler_cell", "column_names", "column_table",
           "markdown_rows", "measure_labels", "touches_border"]

_NOT_REGIONPROPS = {f.__name__ for f in EXTRA_PROPERTIES} | {EDGE_STATS}
# The scikit-image properties the columns are read from
_PROPERTIES = tuple(dict.fromkeys(c.source.split("-")[0] for c in PIXEL_COLUMNS
                                  if c.source and c.source.split("-")[0] not in _NOT_REGIONPROPS))


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
        "Location_MaxIntensity_X": props["intensity_location-3"] + col0,
        "Location_MaxIntensity_Y": props["intensity_location-2"] + row0,
    }


def _measure(labels: np.ndarray, intensity: np.ndarray) -> dict:
    """Every pixel column, by name."""
    props = regionprops_table(labels, intensity, properties=_PROPERTIES,
                              extra_properties=EXTRA_PROPERTIES)
    props.update(edge_stats(labels, intensity, props["label"]))
    table = {c.name: props[c.source] for c in PIXEL_COLUMNS if c.source}
    table.update(_derived(props, table))
    return table


def measure_labels(labels, intensity, pixel_size_um: float | None = None) -> pd.DataFrame:
    """One row per nucleus (label > 0), the columns of `column_names(pixel_size_um given)`.

    labels: 2D integer instance labels, 0 = background. intensity: the raw nuclear channel,
    2D, same shape, any real dtype (measured as float64). pixel_size_um: micrometres per pixel;
    when given, the `_um`/`_um2` columns are added. No nuclei gives zero rows with every
    column. Raises ValueError on a 3D intensity (pass one channel), mismatched shapes, or
    non-integer labels.
    """
    labels = check_labels(labels)
    intensity = _check_intensity(intensity, labels.shape)
    size = _check_pixel_size(pixel_size_um)
    columns = PIXEL_COLUMNS + (PHYSICAL_COLUMNS if size is not None else ())

    if not labels.any():
        return pd.DataFrame({c.name: np.empty(0, c.dtype) for c in columns})
    table = _measure(labels, intensity)
    frame = pd.DataFrame({c.name: np.asarray(table[c.name]).astype(c.dtype)
                          for c in PIXEL_COLUMNS})
    if size is not None:
        for pixel, physical in zip(SCALED_COLUMNS, PHYSICAL_COLUMNS):
            factor = size if pixel.scale == "length" else size**2
            frame[physical.name] = frame[pixel.name].astype(np.float64) * factor
    return frame
