"""Per-nucleus measurements: size, shape, location and intensity, one row per nucleus.

Like CellProfiler's MeasureObjectSizeShape (2D) and MeasureObjectIntensity, and named as they
name things (`<Category>_<Feature>`). Shapes are measured on an instance label image (0 =
background), intensities on the RAW image of the nuclear channel, converted to float64: never
on a normalized one, whose values mean nothing across images.

COLUMNS defines, once, every column `measure_nuclei` returns, in its order, with unit, family
and formula; the README's table of nuclei.csv columns is generated from it
(measure.markdown_table). Coordinates: the origin is
the top-left pixel's centre, X is the column, Y the row (down), in pixels.

Nuclei touching the image border are measured as they are (cut off); `touches_border` says which
they are, so that callers can flag or drop them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import ndimage as ndi
from scipy.spatial import ConvexHull
from skimage.measure import regionprops_table


@dataclass(frozen=True)
class Column:
    """One output column. scale: "length" or "area" when it has a micrometre twin."""

    name: str
    unit: str
    family: str
    description: str
    dtype: str = "float64"
    scale: str | None = None


_ELLIPSE = "of the ellipse with the same second central moments as the pixel centres"

_PIXEL_COLUMNS: tuple[Column, ...] = (
    Column("Label", "-", "identity", "the nucleus's value in the label image", "int64"),
    # Size and shape
    Column("AreaShape_Area", "px^2", "shape", "number of pixels", "int64", "area"),
    Column("AreaShape_Perimeter", "px", "shape",
           "length of the path through the boundary pixels' centres (scikit-image `perimeter`, "
           "as CellProfiler); short for thin objects: 0 for one or two pixels, n - 2 for a "
           "line of n", scale="length"),
    Column("AreaShape_ConvexArea", "px^2", "shape",
           "pixels of the convex hull image (scikit-image `area_convex`)", "int64", "area"),
    Column("AreaShape_Solidity", "1", "shape", "Area / ConvexArea; 1 for a convex object"),
    Column("AreaShape_Extent", "1", "shape", "Area / BoundingBoxArea"),
    Column("AreaShape_BoundingBoxArea", "px^2", "shape",
           "(BoundingBoxMaximum_X - BoundingBoxMinimum_X) * (BoundingBoxMaximum_Y - "
           "BoundingBoxMinimum_Y)", "int64", "area"),
    Column("AreaShape_Eccentricity", "1", "shape",
           f"sqrt(1 - (MinorAxisLength / MajorAxisLength)^2) {_ELLIPSE}; 0 = circle"),
    Column("AreaShape_MajorAxisLength", "px", "shape",
           f"major axis length 4 * sqrt(largest eigenvalue of the covariance) {_ELLIPSE}",
           scale="length"),
    Column("AreaShape_MinorAxisLength", "px", "shape",
           f"minor axis length 4 * sqrt(smallest eigenvalue of the covariance) {_ELLIPSE}",
           scale="length"),
    Column("AreaShape_Orientation", "deg", "shape",
           "angle in (-90, 90] from the X axis to the major axis, as CellProfiler documents it: "
           "Y points down, so an object whose topmost point is on its right is negative; "
           "= 90 - scikit-image's `orientation` (angle from the row axis, which CellProfiler "
           "4's code writes out instead), folded into (-90, 90]; NaN when both axes are equal"),
    Column("AreaShape_EquivalentDiameter", "px", "shape",
           "diameter of the circle with the same area: sqrt(4 * Area / pi)", scale="length"),
    Column("AreaShape_FormFactor", "1", "shape",
           "4 * pi * Area / Perimeter^2; about 1 for a disk, lower for elongated or ragged "
           "objects; NaN when the perimeter is 0"),
    Column("AreaShape_Compactness", "1", "shape",
           "Perimeter^2 / max(4 * pi * Area, 1), as CellProfiler 4 computes it: the inverse "
           "of FormFactor, 1 for a disk, higher for irregular objects"),
    Column("AreaShape_MinFeretDiameter", "px", "shape",
           "smallest caliper width over all angles, of the convex hull of the pixels as unit "
           "squares (a single pixel: 1)", scale="length"),
    Column("AreaShape_MaxFeretDiameter", "px", "shape",
           "largest caliper width over all angles (longest distance between hull corners), "
           "pixels as unit squares (a single pixel: sqrt(2))", scale="length"),
    Column("AreaShape_MaximumRadius", "px", "shape",
           "largest distance from a pixel of the object to the nearest pixel outside it "
           "(Euclidean distance transform; pixels beyond the image count as outside)",
           scale="length"),
    Column("AreaShape_MeanRadius", "px", "shape",
           "mean over the object's pixels of that distance", scale="length"),
    Column("AreaShape_MedianRadius", "px", "shape",
           "median over the object's pixels of that distance", scale="length"),
    Column("AreaShape_EulerNumber", "1", "shape",
           "number of connected pieces (8-connected) minus number of holes (4-connected): "
           "1 for a filled nucleus, 0 for a ring", "int64"),
    Column("AreaShape_BoundingBoxMinimum_X", "px", "shape",
           "first column of the bounding box", "int64"),
    Column("AreaShape_BoundingBoxMaximum_X", "px", "shape",
           "one past the last column of the bounding box (exclusive, as scikit-image and "
           "CellProfiler)", "int64"),
    Column("AreaShape_BoundingBoxMinimum_Y", "px", "shape",
           "first row of the bounding box", "int64"),
    Column("AreaShape_BoundingBoxMaximum_Y", "px", "shape",
           "one past the last row of the bounding box (exclusive)", "int64"),
    Column("AreaShape_Center_X", "px", "shape", "centroid: mean column of the pixels"),
    Column("AreaShape_Center_Y", "px", "shape", "centroid: mean row of the pixels"),
    # Intensity over the whole nucleus, raw values as float64
    Column("Intensity_IntegratedIntensity", "raw*px^2", "intensity",
           "sum of the intensities of the object's pixels"),
    Column("Intensity_MeanIntensity", "raw", "intensity", "mean intensity"),
    Column("Intensity_StdIntensity", "raw", "intensity",
           "standard deviation of the intensities, population (divides by the pixel count)"),
    Column("Intensity_MinIntensity", "raw", "intensity", "smallest intensity"),
    Column("Intensity_MaxIntensity", "raw", "intensity", "largest intensity"),
    Column("Intensity_MedianIntensity", "raw", "intensity",
           "median intensity (the mean of the two middle values for an even count)"),
    Column("Intensity_LowerQuartileIntensity", "raw", "intensity",
           "25th percentile, linear interpolation between sorted values at position "
           "0.25 * (n - 1) (NumPy's default; CellProfiler interpolates at 0.25 * n)"),
    Column("Intensity_UpperQuartileIntensity", "raw", "intensity",
           "75th percentile, interpolated as the lower quartile"),
    Column("Intensity_MADIntensity", "raw", "intensity",
           "median absolute deviation from the median intensity, unscaled"),
    Column("Intensity_MassDisplacement", "px", "intensity",
           "distance from the centroid (Center_X, Center_Y) to the intensity-weighted centre "
           "of mass; NaN when the integrated intensity is 0", scale="length"),
    # Intensity over the nucleus's edge
    Column("Intensity_IntegratedIntensityEdge", "raw*px^2", "intensity edge",
           "sum of the intensities of the edge pixels: the object's pixels with an "
           "8-neighbour outside it (background, another nucleus or beyond the image border)"),
    Column("Intensity_MeanIntensityEdge", "raw", "intensity edge",
           "mean intensity of the edge pixels"),
    Column("Intensity_StdIntensityEdge", "raw", "intensity edge",
           "population standard deviation of the edge pixels' intensities"),
    Column("Intensity_MinIntensityEdge", "raw", "intensity edge",
           "smallest intensity of the edge pixels"),
    Column("Intensity_MaxIntensityEdge", "raw", "intensity edge",
           "largest intensity of the edge pixels"),
    # Where the intensity lies
    Column("Location_CenterMassIntensity_X", "px", "location",
           "intensity-weighted mean column; NaN when the integrated intensity is 0"),
    Column("Location_CenterMassIntensity_Y", "px", "location",
           "intensity-weighted mean row; NaN when the integrated intensity is 0"),
    Column("Location_MaxIntensity_X", "px", "location",
           "column of the brightest pixel (the first in row-major order on ties)", "int64"),
    Column("Location_MaxIntensity_Y", "px", "location", "row of the brightest pixel", "int64"),
)


def _physical_twin(column: Column) -> Column:
    """The same measurement in micrometres: lengths times the pixel size, areas its square."""
    if column.scale == "length":
        return Column(f"{column.name}_um", "um", column.family,
                      f"{column.name} * pixel size (um per px)")
    return Column(f"{column.name}_um2", "um^2", column.family,
                  f"{column.name} * (pixel size)^2")


# Present only when a pixel size is given (absent, not NaN, without one).
_PHYSICAL_COLUMNS: tuple[Column, ...] = tuple(
    _physical_twin(c) for c in _PIXEL_COLUMNS if c.scale is not None)

COLUMNS: tuple[Column, ...] = _PIXEL_COLUMNS + _PHYSICAL_COLUMNS


def column_names(physical: bool = False) -> list[str]:
    """The columns `measure_nuclei` returns, in order; physical: with a pixel size."""
    return [c.name for c in (COLUMNS if physical else _PIXEL_COLUMNS)]


def column_table() -> pd.DataFrame:
    """Every column: name, unit, family, description (the micrometre ones last)."""
    rows = [asdict(c) for c in COLUMNS]
    return pd.DataFrame(rows, columns=["name", "unit", "family", "description"])


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown_rows(skip: tuple[str, ...] = ()) -> list[str]:
    """One Markdown table row per column (name, unit, family, description), in order."""
    return [f"| `{c.name}` | {_cell(c.unit)} | {c.family} | {_cell(c.description)} |"
            for c in COLUMNS if c.name not in skip]


# ---------------------------------------------------------------------------------------------
# Measurements scikit-image lacks: extra_properties, f(regionmask[, intensity]) on the
# object's bounding box.
# ---------------------------------------------------------------------------------------------

_EIGHT = np.ones((3, 3), bool)


def _hull_corners(regionmask: np.ndarray) -> np.ndarray:
    """Convex hull vertices (row, col) of the object drawn as unit squares.

    Only the first and last pixel of each row can be hull corners, so the hull sees at most
    four points per row, not every pixel.
    """
    rows = np.flatnonzero(regionmask.any(axis=1))
    sub = regionmask[rows]
    first = sub.argmax(axis=1)
    last = sub.shape[1] - 1 - sub[:, ::-1].argmax(axis=1)
    r = np.concatenate([rows - 0.5, rows + 0.5, rows - 0.5, rows + 0.5])
    c = np.concatenate([first - 0.5, first - 0.5, last + 0.5, last + 0.5])
    points = np.column_stack([r, c])
    return points[ConvexHull(points).vertices]  # counter-clockwise


def _feret(regionmask: np.ndarray) -> tuple[float, float]:
    """(min, max) caliper width. The minimum has one jaw flush with a hull edge (rotating
    calipers); the maximum is the longest distance between two hull vertices."""
    v = _hull_corners(regionmask)
    edges = np.roll(v, -1, axis=0) - v
    normals = np.column_stack([-edges[:, 1], edges[:, 0]]) / np.hypot(*edges.T)[:, None]
    # widths[i]: farthest vertex from the line through edge i
    widths = np.abs(((v[None, :, :] - v[:, None, :]) * normals[:, None, :]).sum(-1)).max(1)
    diff = v[:, None, :] - v[None, :, :]
    return float(widths.min()), float(np.sqrt((diff**2).sum(-1).max()))


def _radii(regionmask: np.ndarray) -> tuple[float, float, float]:
    """(max, mean, median) distance to the nearest outside pixel; padded so that the bounding
    box's edge counts as outside, as CellProfiler does."""
    distances = ndi.distance_transform_edt(np.pad(regionmask, 1))[1:-1, 1:-1][regionmask]
    return float(distances.max()), float(distances.mean()), float(np.median(distances))


def _edge(regionmask: np.ndarray) -> np.ndarray:
    """The object's pixels with an 8-neighbour outside it."""
    inner = ndi.binary_erosion(np.pad(regionmask, 1), _EIGHT)[1:-1, 1:-1]
    return regionmask & ~inner


def _stats(values: np.ndarray) -> list[float]:
    """integrated, mean, std, min, max of the values."""
    return [values.sum(), values.mean(), values.std(), values.min(), values.max()]


def _intensity(regionmask: np.ndarray, intensity: np.ndarray) -> list[float]:
    """_stats, then median, lower quartile, upper quartile, MAD."""
    values = intensity[regionmask]
    q1, median, q3 = np.quantile(values, [0.25, 0.5, 0.75])
    mad = np.median(np.abs(values - median))
    return _stats(values) + [median, q1, q3, mad]


def _intensity_edge(regionmask: np.ndarray, intensity: np.ndarray) -> list[float]:
    return _stats(intensity[_edge(regionmask)])


def _intensity_location(regionmask: np.ndarray, intensity: np.ndarray) -> list[float]:
    """Centre of mass (row, col) and brightest pixel (row, col), in bounding-box coordinates."""
    rows, cols = np.nonzero(regionmask)
    weights = intensity[rows, cols]
    total = weights.sum()
    if total == 0:
        com = [np.nan, np.nan]
    else:
        com = [(rows * weights).sum() / total, (cols * weights).sum() / total]
    brightest = np.argmax(weights)
    return com + [rows[brightest], cols[brightest]]


_EXTRAS = (_feret, _radii, _intensity, _intensity_edge, _intensity_location)

_SKIMAGE_PROPERTIES = ("label", "area", "perimeter", "area_convex", "solidity", "extent",
                       "area_bbox", "eccentricity", "axis_major_length", "axis_minor_length",
                       "orientation", "equivalent_diameter_area", "euler_number", "bbox",
                       "centroid")

# regionprops_table keys (extras split as name-0, name-1, ...) -> our names
_RENAME = {
    "label": "Label",
    "area": "AreaShape_Area",
    "perimeter": "AreaShape_Perimeter",
    "area_convex": "AreaShape_ConvexArea",
    "solidity": "AreaShape_Solidity",
    "extent": "AreaShape_Extent",
    "area_bbox": "AreaShape_BoundingBoxArea",
    "eccentricity": "AreaShape_Eccentricity",
    "axis_major_length": "AreaShape_MajorAxisLength",
    "axis_minor_length": "AreaShape_MinorAxisLength",
    "equivalent_diameter_area": "AreaShape_EquivalentDiameter",
    "euler_number": "AreaShape_EulerNumber",
    "bbox-0": "AreaShape_BoundingBoxMinimum_Y",
    "bbox-1": "AreaShape_BoundingBoxMinimum_X",
    "bbox-2": "AreaShape_BoundingBoxMaximum_Y",
    "bbox-3": "AreaShape_BoundingBoxMaximum_X",
    "centroid-0": "AreaShape_Center_Y",
    "centroid-1": "AreaShape_Center_X",
    "_feret-0": "AreaShape_MinFeretDiameter",
    "_feret-1": "AreaShape_MaxFeretDiameter",
    "_radii-0": "AreaShape_MaximumRadius",
    "_radii-1": "AreaShape_MeanRadius",
    "_radii-2": "AreaShape_MedianRadius",
    "_intensity-0": "Intensity_IntegratedIntensity",
    "_intensity-1": "Intensity_MeanIntensity",
    "_intensity-2": "Intensity_StdIntensity",
    "_intensity-3": "Intensity_MinIntensity",
    "_intensity-4": "Intensity_MaxIntensity",
    "_intensity-5": "Intensity_MedianIntensity",
    "_intensity-6": "Intensity_LowerQuartileIntensity",
    "_intensity-7": "Intensity_UpperQuartileIntensity",
    "_intensity-8": "Intensity_MADIntensity",
    "_intensity_edge-0": "Intensity_IntegratedIntensityEdge",
    "_intensity_edge-1": "Intensity_MeanIntensityEdge",
    "_intensity_edge-2": "Intensity_StdIntensityEdge",
    "_intensity_edge-3": "Intensity_MinIntensityEdge",
    "_intensity_edge-4": "Intensity_MaxIntensityEdge",
}


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


def _check_labels(labels) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be a 2D label image (height, width), got shape "
                         f"{labels.shape}")
    if labels.dtype.kind not in "iu":
        raise ValueError(f"labels must be integer (0 = background, 1.. = nuclei), got dtype "
                         f"{labels.dtype}")
    if labels.size and labels.min() < 0:
        raise ValueError(f"labels must be >= 0, got a minimum of {labels.min()}")
    return labels


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
    labels = _check_labels(labels)
    if labels.size == 0:
        return np.empty(0, labels.dtype)
    edge = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    found = np.unique(edge)
    return found[found != 0]


def _orientation_degrees(skimage_orientation: np.ndarray, major, minor) -> np.ndarray:
    """scikit-image's angle from the row axis -> CellProfiler's documented angle from X."""
    degrees = 90.0 - np.mod(np.degrees(skimage_orientation), 180.0)  # 90 - angle, in (-90, 90]
    return np.where(major == minor, np.nan, degrees)


def _derived(table: dict) -> dict:
    """The columns computed from regionprops' own, all in image coordinates."""
    area = table["AreaShape_Area"]
    perimeter = table["AreaShape_Perimeter"]
    with np.errstate(divide="ignore", invalid="ignore"):
        form_factor = np.where(perimeter > 0, 4 * np.pi * area / perimeter**2, np.nan)
    # _intensity_location works in the bounding box; shift by its corner
    row0, col0 = table["AreaShape_BoundingBoxMinimum_Y"], table["AreaShape_BoundingBoxMinimum_X"]
    com_y = table["_intensity_location-0"] + row0
    com_x = table["_intensity_location-1"] + col0
    return {
        "AreaShape_Orientation": _orientation_degrees(
            table["orientation"], table["AreaShape_MajorAxisLength"],
            table["AreaShape_MinorAxisLength"]),
        "AreaShape_FormFactor": form_factor,
        "AreaShape_Compactness": perimeter**2 / np.maximum(4 * np.pi * area, 1.0),
        "Intensity_MassDisplacement": np.hypot(com_x - table["AreaShape_Center_X"],
                                               com_y - table["AreaShape_Center_Y"]),
        "Location_CenterMassIntensity_X": com_x,
        "Location_CenterMassIntensity_Y": com_y,
        "Location_MaxIntensity_X": table["_intensity_location-3"] + col0,
        "Location_MaxIntensity_Y": table["_intensity_location-2"] + row0,
    }


def _measure(labels: np.ndarray, intensity: np.ndarray) -> dict:
    """Every pixel column, by name (plus regionprops' leftovers)."""
    table = regionprops_table(labels, intensity, properties=_SKIMAGE_PROPERTIES,
                              extra_properties=_EXTRAS)
    table = {_RENAME.get(k, k): v for k, v in table.items()}
    table.update(_derived(table))
    return table


def measure_nuclei(labels, intensity, pixel_size_um: float | None = None) -> pd.DataFrame:
    """One row per nucleus (label > 0), the columns of `column_names(pixel_size_um given)`.

    labels: 2D integer instance labels, 0 = background. intensity: the raw nuclear channel,
    2D, same shape, any real dtype (measured as float64). pixel_size_um: micrometres per pixel;
    when given, the `_um`/`_um2` columns are added. No nuclei gives zero rows with every
    column. Raises ValueError on a 3D intensity (pass one channel), mismatched shapes, or
    non-integer labels.
    """
    labels = _check_labels(labels)
    intensity = _check_intensity(intensity, labels.shape)
    size = _check_pixel_size(pixel_size_um)
    columns = _PIXEL_COLUMNS + (_PHYSICAL_COLUMNS if size is not None else ())

    if not labels.any():
        return pd.DataFrame({c.name: np.empty(0, c.dtype) for c in columns})
    table = _measure(labels, intensity)
    frame = pd.DataFrame({c.name: np.asarray(table[c.name]).astype(c.dtype)
                          for c in _PIXEL_COLUMNS})
    if size is not None:
        for pixel, physical in zip([c for c in _PIXEL_COLUMNS if c.scale], _PHYSICAL_COLUMNS):
            factor = size if pixel.scale == "length" else size**2
            frame[physical.name] = frame[pixel.name].astype(np.float64) * factor
    return frame
