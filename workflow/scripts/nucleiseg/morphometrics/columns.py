"""The one catalogue of measurement columns: name, unit, family, formula and where each comes from.

Named as CellProfiler names things (`<Category>_<Feature>`). A column with CellProfiler's name
holds CellProfiler 4.2.8.1's value (MeasureObjectSizeShape, MeasureObjectIntensity, the Identify
modules' Location_Center), checked nucleus by nucleus by tests/test_cellprofiler.py; where our
own definition is worth keeping beside it, it has a name CellProfiler does not use (the
CellProfiler name and a suffix saying what differs: `Squares`, `NumPy`) and cellprofiler=False.
Coordinates: the origin is the top-left pixel's centre, X is the column, Y the row (down), in
pixels. The README's table of nuclei.csv columns is generated from COLUMNS
(measure.markdown_table).
"""

from __future__ import annotations

from dataclasses import asdict

import pandas as pd

from .column import Column
from .profile_columns import FEATURES, OPTIONAL_COLUMNS

_ELLIPSE = "of the ellipse with the same second central moments as the pixel centres"

_IDENTITY = (
    Column("Label", "-", "identity",
           "the nucleus's value in the label image (CellProfiler numbers its objects 1..n "
           "instead, as ObjectNumber)", "int64", source="label", cellprofiler=False),
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
           "angle in [-90, 90] from the Y (row) axis to the major axis, as CellProfiler 4 writes "
           "it (scikit-image's `orientation` in degrees, though its manual says from the X "
           "axis): 0 = vertical, +-90 = horizontal, -45 = rising to the right as displayed; "
           "0.5 * atan2(-2 * InertiaTensor_0_1, InertiaTensor_1_1 - InertiaTensor_0_0); where "
           "InertiaTensor_0_0 = InertiaTensor_1_1, -45 if InertiaTensor_0_1 < 0, else +45 "
           "(scikit-image 0.18.3's rule); the angle from the X axis is 90 - Orientation, "
           "folded into (-90, 90]"),
    Column("AreaShape_EquivalentDiameter", "px", "shape",
           "diameter of the circle with the same area: sqrt(4 * Area / pi)", scale="length",
           source="equivalent_diameter_area"),
    Column("AreaShape_FormFactor", "1", "shape",
           "4 * pi * Area / Perimeter^2; about 1 for a disk, lower for elongated or ragged "
           "objects; inf when the perimeter is 0 (one or two pixels), as CellProfiler"),
    Column("AreaShape_Compactness", "1", "shape",
           "Perimeter^2 / max(4 * pi * Area, 1), as CellProfiler 4 computes it: the inverse "
           "of FormFactor, 1 for a disk, higher for irregular objects"),
    Column("AreaShape_MinFeretDiameter", "px", "shape",
           "smallest caliper width over all angles of the convex hull of the pixel centres, as "
           "CellProfiler: over the hull's edges, the smallest distance from the edge's line to "
           "the farthest vertex (a single pixel or a line: 0)", scale="length",
           source="feret-0"),
    Column("AreaShape_MaxFeretDiameter", "px", "shape",
           "largest caliper width: the longest distance between two pixel centres (a single "
           "pixel: 0, a line of n pixels: n - 1)", scale="length", source="feret-1"),
    Column("AreaShape_MinFeretDiameterSquares", "px", "shape",
           "MinFeretDiameter of the pixels drawn as unit squares, the width a ruler would give "
           "(a single pixel: 1, a line: 1)", scale="length", source="feret_squares-0",
           cellprofiler=False),
    Column("AreaShape_MaxFeretDiameterSquares", "px", "shape",
           "MaxFeretDiameter of the pixels as unit squares: the longest distance between two "
           "pixel corners (a single pixel: sqrt(2))", scale="length",
           source="feret_squares-1", cellprofiler=False),
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
    # CellProfiler's advanced measurements; no micrometre twins (the axis lengths have them)
    Column("AreaShape_InertiaTensor_0_0", "px^2", "shape",
           "variance of the pixels' columns (X): mu02 / Area (scikit-image `inertia_tensor`)",
           source="inertia_tensor-0-0"),
    Column("AreaShape_InertiaTensor_0_1", "px^2", "shape",
           "minus the covariance of the pixels' rows and columns: -mu11 / Area",
           source="inertia_tensor-0-1"),
    Column("AreaShape_InertiaTensor_1_0", "px^2", "shape", "= InertiaTensor_0_1 (symmetric)",
           source="inertia_tensor-1-0"),
    Column("AreaShape_InertiaTensor_1_1", "px^2", "shape",
           "variance of the pixels' rows (Y): mu20 / Area", source="inertia_tensor-1-1"),
    Column("AreaShape_InertiaTensorEigenvalues_0", "px^2", "shape",
           "larger eigenvalue of the inertia tensor: (MajorAxisLength / 4)^2",
           source="inertia_tensor_eigvals-0"),
    Column("AreaShape_InertiaTensorEigenvalues_1", "px^2", "shape",
           "smaller eigenvalue of the inertia tensor: (MinorAxisLength / 4)^2",
           source="inertia_tensor_eigvals-1"),
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
           "CellProfiler's median: the n sorted values interpolated at 0-based position n / 2, "
           "i.e. the upper middle value for an even n and the mean of the middle value and "
           "the next for an odd n (of 1, 2, 3, 4: 3); see MedianIntensityNumPy",
           source="intensity_stats-5"),
    Column("Intensity_LowerQuartileIntensity", "raw", "intensity",
           "CellProfiler's: the sorted values at position p = n / 4, v[i] * (1 - f) + "
           "v[i + 1] * f with i = floor(p), f = p - i (v[i] when i is the last; of 1, 2, 3, 4: "
           "2)", source="intensity_stats-6"),
    Column("Intensity_UpperQuartileIntensity", "raw", "intensity",
           "CellProfiler's: as the lower quartile at position 3n / 4 (of 1, 2, 3, 4: 4)",
           source="intensity_stats-7"),
    Column("Intensity_MADIntensity", "raw", "intensity",
           "CellProfiler's median absolute deviation: |intensity - MedianIntensity| sorted, at "
           "position n / 2 as MedianIntensity; unscaled", source="intensity_stats-8"),
    Column("Intensity_MedianIntensityNumPy", "raw", "intensity",
           "the median (NumPy's): the middle value, or the mean of the two middle values for "
           "an even n (of 1, 2, 3, 4: 2.5)", source="intensity_stats-9", cellprofiler=False),
    Column("Intensity_LowerQuartileIntensityNumPy", "raw", "intensity",
           "NumPy's (and R's) default 25th percentile: sorted values interpolated at position "
           "(n - 1) / 4 (of 1, 2, 3, 4: 1.75)", source="intensity_stats-10",
           cellprofiler=False),
    Column("Intensity_UpperQuartileIntensityNumPy", "raw", "intensity",
           "NumPy's 75th percentile, at position 3(n - 1) / 4 (of 1, 2, 3, 4: 3.25)",
           source="intensity_stats-11", cellprofiler=False),
    Column("Intensity_MADIntensityNumPy", "raw", "intensity",
           "median absolute deviation from MedianIntensityNumPy, NumPy's median, unscaled",
           source="intensity_stats-12", cellprofiler=False),
    Column("Intensity_MassDisplacement", "px", "intensity",
           "distance from the centroid (Center_X, Center_Y) to the intensity-weighted centre "
           "of mass; NaN when the integrated intensity is 0", scale="length"),
)

# Intensity over the nucleus's edge
_INTENSITY_EDGE = (
    Column("Intensity_IntegratedIntensityEdge", "raw*px^2", "intensity edge",
           "sum of the intensities of the edge pixels: the object's pixels with a 4-neighbour "
           "of another value (background or another nucleus), as CellProfiler "
           "(`find_boundaries(labels, mode=\"inner\")`); the image border does not count as "
           "outside; 0 when there is none (a nucleus filling the image; the other Edge columns "
           "too)",
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

# Where the nucleus and its intensity lie (the centre of mass from features.intensity_location,
# in bounding-box coordinates, shifted into the image's; the brightest pixel from brightest.py)
_LOCATION = (
    Column("Location_Center_X", "px", "location",
           "= AreaShape_Center_X, the mean column of the pixels, as CellProfiler's Identify "
           "modules write it (the centre CellProfiler Analyst and pycytominer read)",
           source="centroid-1"),
    Column("Location_Center_Y", "px", "location", "= AreaShape_Center_Y, the mean row",
           source="centroid-0"),
    Column("Location_CenterMassIntensity_X", "px", "location",
           "intensity-weighted mean column; NaN when the integrated intensity is 0"),
    Column("Location_CenterMassIntensity_Y", "px", "location",
           "intensity-weighted mean row; NaN when the integrated intensity is 0"),
    Column("Location_MaxIntensity_X", "px", "location",
           "column of the brightest pixel; on ties CellProfiler's pick, the last of them in "
           "NumPy 1.23's (unstable) argsort of the nuclei's intensities in row-major order "
           "(scipy's `maximum_position`), which nucleiseg replays", "int64",
           source="brightest-1"),
    Column("Location_MaxIntensity_Y", "px", "location",
           "row of the brightest pixel (ties as Location_MaxIntensity_X)", "int64",
           source="brightest-0"),
)

# Always measured; then the optional families (config measure.features), in FEATURES' order
CORE_COLUMNS: tuple[Column, ...] = _IDENTITY + _SHAPE + _INTENSITY + _INTENSITY_EDGE + _LOCATION
PIXEL_COLUMNS: tuple[Column, ...] = CORE_COLUMNS + OPTIONAL_COLUMNS


def _physical_twin(column: Column) -> Column:
    """The same measurement in micrometres: lengths times the pixel size, areas its square."""
    if column.scale == "length":
        return Column(f"{column.name}_um", "um", column.family,
                      f"{column.name} * pixel size (um per px)", cellprofiler=False)
    return Column(f"{column.name}_um2", "um^2", column.family,
                  f"{column.name} * (pixel size)^2", cellprofiler=False)


# Present only when a pixel size is given (absent, not NaN, without one); the pixel column each
# one scales, in the same order.
SCALED_COLUMNS: tuple[Column, ...] = tuple(c for c in PIXEL_COLUMNS if c.scale is not None)
PHYSICAL_COLUMNS: tuple[Column, ...] = tuple(_physical_twin(c) for c in SCALED_COLUMNS)

COLUMNS: tuple[Column, ...] = PIXEL_COLUMNS + PHYSICAL_COLUMNS


def check_features(features) -> tuple[str, ...]:
    """The optional families asked for, in FEATURES' order; ValueError on an unknown name."""
    unknown = sorted(set(features) - set(FEATURES))
    if unknown:
        raise ValueError(f"unknown measurement families {unknown}: choose among {list(FEATURES)}")
    return tuple(f for f in FEATURES if f in features)


def selected(columns: tuple[Column, ...], features=FEATURES) -> tuple[Column, ...]:
    """The core columns of `columns` and those of the optional families in features."""
    chosen = check_features(features)
    return tuple(c for c in columns if c.family not in FEATURES or c.family in chosen)


def column_names(physical: bool = False, features=FEATURES) -> list[str]:
    """The columns `measure_labels` returns, in order; physical: with a pixel size; features:
    the optional families measured (all by default)."""
    return [c.name for c in selected(COLUMNS if physical else PIXEL_COLUMNS, features)]


def column_table() -> pd.DataFrame:
    """Every column: name, unit, family, cellprofiler, description (the micrometre ones last)."""
    rows = [asdict(c) for c in COLUMNS]
    return pd.DataFrame(rows, columns=["name", "unit", "family", "cellprofiler", "description"])


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def cellprofiler_cell(cellprofiler: bool) -> str:
    """The README table's CellProfiler column: `yes` (CellProfiler's name and value) or `own`."""
    return "yes" if cellprofiler else "own"


def markdown_rows(skip: tuple[str, ...] = ()) -> list[str]:
    """One Markdown table row per column (name, unit, family, CellProfiler, description)."""
    return [f"| `{c.name}` | {_cell(c.unit)} | {c.family} | {cellprofiler_cell(c.cellprofiler)} "
            f"| {_cell(c.description)} |" for c in COLUMNS if c.name not in skip]
