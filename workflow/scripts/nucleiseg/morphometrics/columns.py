"""The one catalogue of measurement columns: name, unit, family, formula and where each comes from.

Named as CellProfiler names things (`<Category>_<Feature>`). Coordinates: the origin is the
top-left pixel's centre, X is the column, Y the row (down), in pixels. The README's table of
nuclei.csv columns is generated from COLUMNS (measure.markdown_table).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd


@dataclass(frozen=True)
class Column:
    """One output column.

    scale: "length" or "area" when it has a micrometre twin. source: the regionprops_table key
    the value is read from (an extra property's outputs are `<function>-<i>`, see features);
    None when it is computed from other measurements.
    """

    name: str
    unit: str
    family: str
    description: str
    dtype: str = "float64"
    scale: str | None = None
    source: str | None = None


_ELLIPSE = "of the ellipse with the same second central moments as the pixel centres"

_IDENTITY = (
    Column("Label", "-", "identity", "the nucleus's value in the label image", "int64",
           source="label"),
)

_SHAPE = (
    Column("AreaShape_Area", "px^2", "shape", "number of pixels", "int64", "area",
           source="area"),
    Column("AreaShape_Perimeter", "px", "shape",
           "length of the path through the boundary pixels' centres (scikit-image `perimeter`, "
           "as CellProfiler); short for thin objects: 0 for one or two pixels, n - 2 for a "
           "line of n", scale="length", source="perimeter"),
    Column("AreaShape_ConvexArea", "px^2", "shape",
           "pixels of the convex hull image (scikit-image `area_convex`)", "int64", "area",
           source="area_convex"),
    Column("AreaShape_Solidity", "1", "shape", "Area / ConvexArea; 1 for a convex object",
           source="solidity"),
    Column("AreaShape_Extent", "1", "shape", "Area / BoundingBoxArea", source="extent"),
    Column("AreaShape_BoundingBoxArea", "px^2", "shape",
           "(BoundingBoxMaximum_X - BoundingBoxMinimum_X) * (BoundingBoxMaximum_Y - "
           "BoundingBoxMinimum_Y)", "int64", "area", source="area_bbox"),
    Column("AreaShape_Eccentricity", "1", "shape",
           f"sqrt(1 - (MinorAxisLength / MajorAxisLength)^2) {_ELLIPSE}; 0 = circle",
           source="eccentricity"),
    Column("AreaShape_MajorAxisLength", "px", "shape",
           f"major axis length 4 * sqrt(largest eigenvalue of the covariance) {_ELLIPSE}",
           scale="length", source="axis_major_length"),
    Column("AreaShape_MinorAxisLength", "px", "shape",
           f"minor axis length 4 * sqrt(smallest eigenvalue of the covariance) {_ELLIPSE}",
           scale="length", source="axis_minor_length"),
    Column("AreaShape_Orientation", "deg", "shape",
           "angle in (-90, 90] from the X axis to the major axis, as CellProfiler documents it: "
           "Y points down, so an object whose topmost point is on its right is negative; "
           "= 90 - scikit-image's `orientation` (angle from the row axis, which CellProfiler "
           "4's code writes out instead), folded into (-90, 90]; NaN when both axes are equal"),
    Column("AreaShape_EquivalentDiameter", "px", "shape",
           "diameter of the circle with the same area: sqrt(4 * Area / pi)", scale="length",
           source="equivalent_diameter_area"),
    Column("AreaShape_FormFactor", "1", "shape",
           "4 * pi * Area / Perimeter^2; about 1 for a disk, lower for elongated or ragged "
           "objects; NaN when the perimeter is 0"),
    Column("AreaShape_Compactness", "1", "shape",
           "Perimeter^2 / max(4 * pi * Area, 1), as CellProfiler 4 computes it: the inverse "
           "of FormFactor, 1 for a disk, higher for irregular objects"),
    Column("AreaShape_MinFeretDiameter", "px", "shape",
           "smallest caliper width over all angles, of the convex hull of the pixels as unit "
           "squares (a single pixel: 1)", scale="length", source="feret-0"),
    Column("AreaShape_MaxFeretDiameter", "px", "shape",
           "largest caliper width over all angles (longest distance between hull corners), "
           "pixels as unit squares (a single pixel: sqrt(2))", scale="length", source="feret-1"),
    Column("AreaShape_MaximumRadius", "px", "shape",
           "largest distance from a pixel of the object to the nearest pixel outside it "
           "(Euclidean distance transform; pixels beyond the image count as outside)",
           scale="length", source="radii-0"),
    Column("AreaShape_MeanRadius", "px", "shape",
           "mean over the object's pixels of that distance", scale="length", source="radii-1"),
    Column("AreaShape_MedianRadius", "px", "shape",
           "median over the object's pixels of that distance", scale="length",
           source="radii-2"),
    Column("AreaShape_EulerNumber", "1", "shape",
           "number of connected pieces (8-connected) minus number of holes (4-connected): "
           "1 for a filled nucleus, 0 for a ring", "int64", source="euler_number"),
    Column("AreaShape_BoundingBoxMinimum_X", "px", "shape",
           "first column of the bounding box", "int64", source="bbox-1"),
    Column("AreaShape_BoundingBoxMaximum_X", "px", "shape",
           "one past the last column of the bounding box (exclusive, as scikit-image and "
           "CellProfiler)", "int64", source="bbox-3"),
    Column("AreaShape_BoundingBoxMinimum_Y", "px", "shape",
           "first row of the bounding box", "int64", source="bbox-0"),
    Column("AreaShape_BoundingBoxMaximum_Y", "px", "shape",
           "one past the last row of the bounding box (exclusive)", "int64", source="bbox-2"),
    Column("AreaShape_Center_X", "px", "shape", "centroid: mean column of the pixels",
           source="centroid-1"),
    Column("AreaShape_Center_Y", "px", "shape", "centroid: mean row of the pixels",
           source="centroid-0"),
)

# Intensity over the whole nucleus, raw values as float64
_INTENSITY = (
    Column("Intensity_IntegratedIntensity", "raw*px^2", "intensity",
           "sum of the intensities of the object's pixels", source="intensity_stats-0"),
    Column("Intensity_MeanIntensity", "raw", "intensity", "mean intensity",
           source="intensity_stats-1"),
    Column("Intensity_StdIntensity", "raw", "intensity",
           "standard deviation of the intensities, population (divides by the pixel count)",
           source="intensity_stats-2"),
    Column("Intensity_MinIntensity", "raw", "intensity", "smallest intensity",
           source="intensity_stats-3"),
    Column("Intensity_MaxIntensity", "raw", "intensity", "largest intensity",
           source="intensity_stats-4"),
    Column("Intensity_MedianIntensity", "raw", "intensity",
           "median intensity (the mean of the two middle values for an even count)",
           source="intensity_stats-5"),
    Column("Intensity_LowerQuartileIntensity", "raw", "intensity",
           "25th percentile, linear interpolation between sorted values at position "
           "0.25 * (n - 1) (NumPy's default; CellProfiler interpolates at 0.25 * n)",
           source="intensity_stats-6"),
    Column("Intensity_UpperQuartileIntensity", "raw", "intensity",
           "75th percentile, interpolated as the lower quartile", source="intensity_stats-7"),
    Column("Intensity_MADIntensity", "raw", "intensity",
           "median absolute deviation from the median intensity, unscaled",
           source="intensity_stats-8"),
    Column("Intensity_MassDisplacement", "px", "intensity",
           "distance from the centroid (Center_X, Center_Y) to the intensity-weighted centre "
           "of mass; NaN when the integrated intensity is 0", scale="length"),
)

# Intensity over the nucleus's edge
_INTENSITY_EDGE = (
    Column("Intensity_IntegratedIntensityEdge", "raw*px^2", "intensity edge",
           "sum of the intensities of the edge pixels: the object's pixels with an "
           "8-neighbour outside it (background, another nucleus or beyond the image border)",
           source="edge_stats-0"),
    Column("Intensity_MeanIntensityEdge", "raw", "intensity edge",
           "mean intensity of the edge pixels", source="edge_stats-1"),
    Column("Intensity_StdIntensityEdge", "raw", "intensity edge",
           "population standard deviation of the edge pixels' intensities",
           source="edge_stats-2"),
    Column("Intensity_MinIntensityEdge", "raw", "intensity edge",
           "smallest intensity of the edge pixels", source="edge_stats-3"),
    Column("Intensity_MaxIntensityEdge", "raw", "intensity edge",
           "largest intensity of the edge pixels", source="edge_stats-4"),
)

# Where the intensity lies (computed from features.intensity_location, in bounding-box
# coordinates, shifted into the image's)
_LOCATION = (
    Column("Location_CenterMassIntensity_X", "px", "location",
           "intensity-weighted mean column; NaN when the integrated intensity is 0"),
    Column("Location_CenterMassIntensity_Y", "px", "location",
           "intensity-weighted mean row; NaN when the integrated intensity is 0"),
    Column("Location_MaxIntensity_X", "px", "location",
           "column of the brightest pixel (the first in row-major order on ties)", "int64"),
    Column("Location_MaxIntensity_Y", "px", "location", "row of the brightest pixel", "int64"),
)

PIXEL_COLUMNS: tuple[Column, ...] = _IDENTITY + _SHAPE + _INTENSITY + _INTENSITY_EDGE + _LOCATION


def _physical_twin(column: Column) -> Column:
    """The same measurement in micrometres: lengths times the pixel size, areas its square."""
    if column.scale == "length":
        return Column(f"{column.name}_um", "um", column.family,
                      f"{column.name} * pixel size (um per px)")
    return Column(f"{column.name}_um2", "um^2", column.family,
                  f"{column.name} * (pixel size)^2")


# Present only when a pixel size is given (absent, not NaN, without one); the pixel column each
# one scales, in the same order.
SCALED_COLUMNS: tuple[Column, ...] = tuple(c for c in PIXEL_COLUMNS if c.scale is not None)
PHYSICAL_COLUMNS: tuple[Column, ...] = tuple(_physical_twin(c) for c in SCALED_COLUMNS)

COLUMNS: tuple[Column, ...] = PIXEL_COLUMNS + PHYSICAL_COLUMNS


def column_names(physical: bool = False) -> list[str]:
    """The columns `measure_labels` returns, in order; physical: with a pixel size."""
    return [c.name for c in (COLUMNS if physical else PIXEL_COLUMNS)]


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
