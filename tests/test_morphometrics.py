"""Per-nucleus measurements against exact geometry and hand computations (small arrays only)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from nucleiseg.morphometrics import (
    COLUMNS,
    column_names,
    column_table,
    measure_labels,
    touches_border,
)
from nucleiseg.synthetic import make_nuclei


def ellipse(a: float, b: float, phi_deg: float, offset=(0.3, 0.6)) -> np.ndarray:
    """A filled ellipse, semi-axes a >= b, major axis at phi_deg from the X axis towards +Y
    (down), so CellProfiler's Orientation (from the Y axis) is 90 - phi_deg. Pixel centres
    strictly inside are on."""
    n = int(2 * a + 8)
    y, x = np.mgrid[:n, :n].astype(float)
    dx, dy = x - (n / 2 + offset[1]), y - (n / 2 + offset[0])
    phi = np.radians(phi_deg)
    u = dx * np.cos(phi) + dy * np.sin(phi)
    v = -dx * np.sin(phi) + dy * np.cos(phi)
    return ((u / a) ** 2 + (v / b) ** 2 < 1).astype(np.uint16)


def disk(n: int, r: float, cy: float, cx: float) -> np.ndarray:
    y, x = np.mgrid[:n, :n]
    return (y - cy) ** 2 + (x - cx) ** 2 <= r**2


def one(labels, intensity=None, **kwargs) -> pd.Series:
    """The single row measured for an image with one nucleus."""
    labels = np.asarray(labels)
    intensity = np.ones(labels.shape) if intensity is None else intensity
    frame = measure_labels(labels, intensity, **kwargs)
    assert len(frame) == 1
    return frame.iloc[0]


def angle_difference(a: float, b: float) -> float:
    """Between two axis orientations, in degrees (180 apart is the same axis)."""
    return abs((a - b + 90) % 180 - 90)


# ---------------------------------------------------------------------------------------------
# Shape against exact geometry
# ---------------------------------------------------------------------------------------------

# Semi-axes 10-40 px, round to 4:1, at several orientations and sub-pixel centres.
ELLIPSES = [(20, 10, 0), (20, 10, 90), (25, 15, 30), (30, 12, -45), (40, 25, 60),
            (40, 10, -75), (14, 10, 17), (40, 40, 0)]


@pytest.mark.parametrize("a, b, phi", ELLIPSES)
def test_ellipse_size_and_axes(a, b, phi):
    r = one(ellipse(a, b, phi))
    if (a, b) != (14, 10):  # digitization alone moves the smallest one's area by ~1%
        assert r.AreaShape_Area == pytest.approx(np.pi * a * b, rel=0.01)
    assert r.AreaShape_MajorAxisLength == pytest.approx(2 * a, rel=0.02)
    assert r.AreaShape_MinorAxisLength == pytest.approx(2 * b, rel=0.02)
    assert r.AreaShape_EquivalentDiameter == pytest.approx(np.sqrt(4 * r.AreaShape_Area / np.pi))
    # A digital outline is off by up to about a pixel at each end, whatever the convention:
    # 3% for the larger ones, 1.5 px for the small.
    for suffix in ("", "Squares"):
        assert abs(r[f"AreaShape_MaxFeretDiameter{suffix}"] - 2 * a) <= max(0.03 * 2 * a, 1.5)
        assert abs(r[f"AreaShape_MinFeretDiameter{suffix}"] - 2 * b) <= max(0.03 * 2 * b, 1.5)
    assert r.AreaShape_MinFeretDiameter <= r.AreaShape_MaxFeretDiameter
    # The squares' hull holds the centres' hull, half a pixel bigger all round.
    assert r.AreaShape_MinFeretDiameter < r.AreaShape_MinFeretDiameterSquares
    assert r.AreaShape_MaxFeretDiameter < r.AreaShape_MaxFeretDiameterSquares


@pytest.mark.parametrize("a, b, phi", [e for e in ELLIPSES if e[0] != e[1]])
def test_ellipse_eccentricity_and_orientation(a, b, phi):
    r = one(ellipse(a, b, phi))
    assert r.AreaShape_Eccentricity == pytest.approx(np.sqrt(1 - (b / a) ** 2), abs=0.02)
    assert angle_difference(r.AreaShape_Orientation, 90 - phi) < 3
    assert -90 <= r.AreaShape_Orientation <= 90


def test_orientation_is_cellprofilers_angle_from_the_y_axis():
    """CellProfiler 4 writes the angle from the Y (row) axis: vertical 0, horizontal +-90; Y
    points down, so a line rising to the right is -45."""
    rising = np.zeros((12, 12), np.uint8)  # bottom-left to top-right, 2 px wide
    for i in range(10):
        rising[10 - i, 1 + i] = rising[10 - i, 2 + i] = 1
    assert one(rising).AreaShape_Orientation == pytest.approx(-45, abs=3)
    assert one(rising[::-1]).AreaShape_Orientation == pytest.approx(45, abs=3)
    assert abs(one(ellipse(20, 8, 0)).AreaShape_Orientation) == pytest.approx(90, abs=0.5)
    assert one(ellipse(20, 8, 90)).AreaShape_Orientation == pytest.approx(0, abs=0.5)


def test_orientation_ties_follow_scikit_image_0_18():
    """Where the row and column variances are equal, scikit-image 0.18.3 (CellProfiler 4's)
    gives -45 when InertiaTensor_0_1 < 0, else +45: the opposite of what the formula gives
    next to the tie, and of what scikit-image 0.19 and later give."""
    falling = np.eye(5, dtype=np.uint8)  # top-left to bottom-right: InertiaTensor_0_1 < 0
    tie = one(falling)
    assert tie.AreaShape_InertiaTensor_0_0 == tie.AreaShape_InertiaTensor_1_1
    assert tie.AreaShape_InertiaTensor_0_1 < 0
    assert tie.AreaShape_Orientation == -45
    steeper = np.zeros((6, 5), np.uint8)
    steeper[np.arange(6), [0, 1, 2, 2, 3, 4]] = 1  # the same line, one row longer: no tie
    assert 30 < one(steeper).AreaShape_Orientation < 45  # positive, as for a falling line
    assert one(falling[:, ::-1]).AreaShape_Orientation == 45  # rising, InertiaTensor_0_1 > 0
    assert one(np.ones((2, 2), np.uint8)).AreaShape_Orientation == 45  # InertiaTensor_0_1 = 0


def test_inertia_tensor_of_a_rectangle():
    labels = np.zeros((8, 10), np.uint8)
    labels[1:4, 2:9] = 1  # 3 rows x 7 columns: variances (n^2 - 1) / 12 = 2/3 and 4
    r = one(labels)
    assert r.AreaShape_InertiaTensor_0_0 == pytest.approx(4)  # the columns', X
    assert r.AreaShape_InertiaTensor_1_1 == pytest.approx(2 / 3)  # the rows', Y
    assert r.AreaShape_InertiaTensor_0_1 == r.AreaShape_InertiaTensor_1_0 == 0
    assert r.AreaShape_InertiaTensorEigenvalues_0 == pytest.approx(4)
    assert r.AreaShape_InertiaTensorEigenvalues_1 == pytest.approx(2 / 3)
    assert r.AreaShape_MajorAxisLength == pytest.approx(4 * np.sqrt(4))
    assert (r.Location_Center_X, r.Location_Center_Y) == (r.AreaShape_Center_X, 2.0)


def test_synthetic_nuclei_match_their_truth():
    sample = make_nuclei(shape=(256, 256), n_nuclei=6, radius=(14, 28), aspect=(1.3, 2.0),
                         blur_sigma=0, noise=0, shot_noise=False, texture=0, seed=3)
    truth = sample.nuclei.set_index("label")
    measured = measure_labels(sample.labels, sample.image).set_index("Label")
    assert list(measured.index) == list(truth.index)
    assert (measured["AreaShape_Area"] == truth["area"]).all()
    assert np.allclose(measured["AreaShape_MajorAxisLength"], 2 * truth["a"], rtol=0.02)
    assert np.allclose(measured["AreaShape_MinorAxisLength"], 2 * truth["b"], rtol=0.02)
    assert np.allclose(measured["AreaShape_Eccentricity"],
                       np.sqrt(1 - (truth["b"] / truth["a"]) ** 2), atol=0.02)
    # The truth is scikit-image's angle from the row axis, as CellProfiler's.
    expected = np.degrees(truth["orientation"])
    for got, want in zip(measured["AreaShape_Orientation"], expected):
        assert angle_difference(got, want) < 3
    assert np.allclose(measured["AreaShape_Center_Y"], truth["y"], atol=0.5)
    assert np.allclose(measured["AreaShape_Center_X"], truth["x"], atol=0.5)


def test_euler_number_counts_holes():
    filled = disk(40, 15, 20, 20)
    ring = filled & ~disk(40, 8, 20, 20)
    two_holes = filled & ~disk(40, 4, 20, 12) & ~disk(40, 4, 20, 28)
    assert one(filled.astype(np.uint8)).AreaShape_EulerNumber == 1
    assert one(ring.astype(np.uint8)).AreaShape_EulerNumber == 0
    assert one(two_holes.astype(np.uint8)).AreaShape_EulerNumber == -1


def test_form_factor_near_one_for_a_disk_lower_when_elongated():
    round_ = one(disk(50, 20, 25, 25).astype(np.uint8))
    long_ = one(ellipse(40, 10, 30))
    assert 0.85 < round_.AreaShape_FormFactor <= 1.05
    assert long_.AreaShape_FormFactor < 0.6
    # Compactness is CellProfiler 4's Perimeter^2 / (4 pi Area): the inverse of FormFactor.
    assert round_.AreaShape_Compactness == pytest.approx(1 / round_.AreaShape_FormFactor)
    assert long_.AreaShape_Compactness > round_.AreaShape_Compactness


def test_rectangle_solidity_extent_feret_and_radii():
    labels = np.zeros((12, 20), np.uint8)
    labels[2:8, 3:17] = 1  # 6 x 14
    r = one(labels)
    assert r.AreaShape_Area == 84
    assert r.AreaShape_Solidity == 1
    assert r.AreaShape_Extent == 1
    assert r.AreaShape_ConvexArea == 84
    # Pixel centres span 5 x 13, the pixels as squares 6 x 14
    assert r.AreaShape_MinFeretDiameter == pytest.approx(5)
    assert r.AreaShape_MaxFeretDiameter == pytest.approx(np.hypot(5, 13))
    assert r.AreaShape_MinFeretDiameterSquares == pytest.approx(6)
    assert r.AreaShape_MaxFeretDiameterSquares == pytest.approx(np.hypot(6, 14))
    # Distance to the nearest outside pixel: 1 on the rim, 3 along the middle two rows.
    assert r.AreaShape_MaximumRadius == 3
    assert r.AreaShape_MedianRadius == 2
    distances = [1] * 36 + [2] * 28 + [3] * 20  # rims of 14x6, 12x4, then the 10x2 core
    assert r.AreaShape_MeanRadius == pytest.approx(np.mean(distances))
    assert (r.AreaShape_BoundingBoxMinimum_Y, r.AreaShape_BoundingBoxMaximum_Y) == (2, 8)
    assert (r.AreaShape_BoundingBoxMinimum_X, r.AreaShape_BoundingBoxMaximum_X) == (3, 17)
    assert r.AreaShape_BoundingBoxArea == 84
    assert (r.AreaShape_Center_X, r.AreaShape_Center_Y) == (9.5, 4.5)


def test_l_shape_is_less_solid():
    labels = np.zeros((24, 24), np.uint8)
    labels[2:22, 2:22] = 1
    labels[2:12, 12:22] = 0  # the top-right quarter removed
    r = one(labels)
    assert r.AreaShape_Area == 300
    assert r.AreaShape_Solidity < 0.9
    assert r.AreaShape_Extent == pytest.approx(0.75)


def test_one_pixel_nucleus():
    labels = np.zeros((5, 5), np.int32)
    labels[2, 3] = 9
    intensity = np.zeros((5, 5))
    intensity[2, 3] = 7
    r = one(labels, intensity)
    assert r.Label == 9
    assert r.AreaShape_Area == 1
    assert r.AreaShape_Perimeter == 0
    assert r.AreaShape_FormFactor == np.inf  # CellProfiler divides by the perimeter, unguarded
    assert r.AreaShape_Compactness == 0
    assert r.AreaShape_Orientation == 45  # no major axis: a tie, InertiaTensor_0_1 = 0
    assert (r.AreaShape_MinFeretDiameter, r.AreaShape_MaxFeretDiameter) == (0, 0)
    assert r.AreaShape_MinFeretDiameterSquares == pytest.approx(1)
    assert r.AreaShape_MaxFeretDiameterSquares == pytest.approx(np.sqrt(2))
    assert r.AreaShape_MaximumRadius == r.AreaShape_MedianRadius == 1
    assert r.AreaShape_EulerNumber == 1
    assert r.Intensity_IntegratedIntensity == r.Intensity_IntegratedIntensityEdge == 7
    assert r.Intensity_StdIntensity == 0
    assert r.Intensity_MassDisplacement == 0
    assert (r.Location_MaxIntensity_X, r.Location_MaxIntensity_Y) == (3, 2)


@pytest.mark.parametrize("rows, cols", [([3] * 5, range(2, 7)), (range(1, 6), [4] * 5),
                                        (range(1, 6), range(2, 7))])
def test_feret_of_a_line_of_five_pixels(rows, cols):
    labels = np.zeros((8, 9), np.uint8)
    labels[list(rows), list(cols)] = 1
    r = one(labels)
    diagonal = np.sqrt(2) if len(set(rows)) == len(set(cols)) else 1  # step between centres
    assert r.AreaShape_MinFeretDiameter == 0  # the centres' hull is a segment
    assert r.AreaShape_MaxFeretDiameter == pytest.approx(4 * diagonal)
    assert r.AreaShape_MinFeretDiameterSquares >= 1
    assert r.AreaShape_MaxFeretDiameterSquares > r.AreaShape_MaxFeretDiameter


# ---------------------------------------------------------------------------------------------
# Intensity against hand computations
# ---------------------------------------------------------------------------------------------


def sixteen():
    """A 4x4 nucleus at rows 1-4, columns 1-4, intensities 1..16 row by row."""
    labels = np.zeros((6, 6), np.uint8)
    labels[1:5, 1:5] = 1
    intensity = np.zeros((6, 6), np.uint16)
    intensity[1:5, 1:5] = np.arange(1, 17).reshape(4, 4)
    return labels, intensity


def test_intensity_statistics_by_hand():
    r = one(*sixteen())
    assert r.Intensity_IntegratedIntensity == 136
    assert r.Intensity_MeanIntensity == 8.5
    assert r.Intensity_StdIntensity == pytest.approx(np.sqrt((16**2 - 1) / 12))  # population
    assert (r.Intensity_MinIntensity, r.Intensity_MaxIntensity) == (1, 16)
    # CellProfiler's: sorted values at 0-based position 16 * fraction, here whole numbers
    assert r.Intensity_MedianIntensity == 9  # position 8
    assert r.Intensity_LowerQuartileIntensity == 5  # position 4
    assert r.Intensity_UpperQuartileIntensity == 13  # position 12
    # |v - 9| sorted: 0, 1, 1, 2, 2, ..., 7, 7, 8; position 8
    assert r.Intensity_MADIntensity == 4
    # NumPy's: position 15 * fraction
    assert r.Intensity_MedianIntensityNumPy == 8.5
    assert r.Intensity_LowerQuartileIntensityNumPy == 4.75  # position 3.75: 4 + 0.75
    assert r.Intensity_UpperQuartileIntensityNumPy == 12.25
    # |v - 8.5| is 0.5, 1.5, ..., 7.5, each twice: median (3.5 + 4.5) / 2
    assert r.Intensity_MADIntensityNumPy == 4


def four_pixels(values) -> pd.Series:
    labels = np.zeros((3, 6), np.uint8)
    labels[1, 1:1 + len(values)] = 1
    intensity = np.zeros((3, 6))
    intensity[1, 1:1 + len(values)] = values
    return one(labels, intensity)


def test_quartiles_of_one_to_four_by_cellprofilers_rule():
    r = four_pixels([4, 2, 1, 3])  # sorted 1, 2, 3, 4: positions n / 4 = 1, 2, 3
    assert r.Intensity_LowerQuartileIntensity == 2
    assert r.Intensity_MedianIntensity == 3
    assert r.Intensity_UpperQuartileIntensity == 4  # the last value: no next to interpolate to
    assert r.Intensity_MADIntensity == 1  # |v - 3| sorted 0, 1, 1, 2: position 2
    assert (r.Intensity_LowerQuartileIntensityNumPy, r.Intensity_MedianIntensityNumPy,
            r.Intensity_UpperQuartileIntensityNumPy) == (1.75, 2.5, 3.25)
    assert r.Intensity_MADIntensityNumPy == 1  # |v - 2.5|: 0.5, 0.5, 1.5, 1.5
    odd = four_pixels([1, 2, 3])  # position 1.5: halfway from the middle value to the next
    assert (odd.Intensity_MedianIntensity, odd.Intensity_MedianIntensityNumPy) == (2.5, 2)
    assert odd.Intensity_LowerQuartileIntensity == 1.75  # position 0.75
    assert odd.Intensity_UpperQuartileIntensity == 3  # position 2.25: the last value


def test_edge_statistics_by_hand():
    r = one(*sixteen())
    edge = np.array([1, 2, 3, 4, 5, 8, 9, 12, 13, 14, 15, 16])  # all but the middle 6, 7, 10, 11
    assert r.Intensity_IntegratedIntensityEdge == 102
    assert r.Intensity_MeanIntensityEdge == 8.5
    assert r.Intensity_StdIntensityEdge == pytest.approx(np.sqrt(np.mean((edge - 8.5) ** 2)))
    assert (r.Intensity_MinIntensityEdge, r.Intensity_MaxIntensityEdge) == (1, 16)


def test_centre_of_mass_by_hand():
    r = one(*sixteen())
    # Row sums 10, 26, 42, 58 at rows 1..4; column sums 28, 32, 36, 40 at columns 1..4.
    com_y, com_x = (10 + 2 * 26 + 3 * 42 + 4 * 58) / 136, (28 + 2 * 32 + 3 * 36 + 4 * 40) / 136
    assert r.Location_CenterMassIntensity_Y == pytest.approx(com_y)
    assert r.Location_CenterMassIntensity_X == pytest.approx(com_x)
    assert r.Intensity_MassDisplacement == pytest.approx(np.hypot(com_y - 2.5, com_x - 2.5))
    assert (r.Location_MaxIntensity_X, r.Location_MaxIntensity_Y) == (4, 4)


def test_brighter_right_half_shifts_the_centre_of_mass_right():
    labels = np.zeros((8, 10), np.uint8)
    labels[2:6, 2:8] = 1  # 4 rows x 6 columns, centroid column 4.5
    intensity = np.zeros((8, 10))
    intensity[2:6, 2:5] = 1
    intensity[2:6, 5:8] = 3  # left half mean column 3, right half 6: (1*3 + 3*6) / 4
    r = one(labels, intensity)
    assert r.AreaShape_Center_X == 4.5
    assert r.Location_CenterMassIntensity_X == pytest.approx(5.25)
    assert r.Location_CenterMassIntensity_Y == pytest.approx(r.AreaShape_Center_Y)
    assert r.Intensity_MassDisplacement == pytest.approx(0.75)


def edge_pixel_counts(labels) -> pd.Series:
    """Per label, how many edge pixels it has (the integrated edge intensity of an image of
    ones)."""
    frame = measure_labels(labels, np.ones(labels.shape)).set_index("Label")
    return frame["Intensity_IntegratedIntensityEdge"].astype(int)


def test_edge_of_a_nucleus_on_the_image_border_excludes_the_border_row():
    labels = np.zeros((6, 8), np.uint8)
    labels[0:4, 2:6] = 1  # 4 x 4, its first row on the image's top row
    intensity = np.zeros((6, 8))
    intensity[0, 3:5] = 100  # the top row's middle pixels: no 4-neighbour of another value
    r = one(labels, intensity)
    assert r.Intensity_IntegratedIntensity == 200
    assert r.Intensity_IntegratedIntensityEdge == 0
    assert r.Intensity_MaxIntensityEdge == 0
    assert edge_pixel_counts(labels).tolist() == [10]  # 12 of a free square, less those two


def test_edges_of_two_touching_squares_include_the_shared_side():
    labels = np.zeros((6, 10), np.uint8)
    labels[1:5, 1:9] = 1  # one 4 x 8 block: 20 edge pixels (its outline)
    assert edge_pixel_counts(labels).tolist() == [20]
    labels[1:5, 5:9] = 2  # split into two 4 x 4 squares: the seam's 4 middle pixels join
    assert edge_pixel_counts(labels).tolist() == [12, 12]
    # 4-neighbours only: (1, 1) touches nucleus 2 diagonally and is no edge pixel
    corner = np.ones((3, 3), np.uint8)
    corner[0, 0] = 2
    assert edge_pixel_counts(corner).tolist() == [2, 1]  # (0, 1) and (1, 0); (0, 0)


def test_a_nucleus_filling_its_image_has_no_edge():
    r = one(np.ones((3, 3), np.uint8), np.arange(1, 10).reshape(3, 3))
    edge = [r.Intensity_IntegratedIntensityEdge, r.Intensity_MeanIntensityEdge,
            r.Intensity_StdIntensityEdge, r.Intensity_MinIntensityEdge,
            r.Intensity_MaxIntensityEdge]
    assert edge == [0, 0, 0, 0, 0]  # as CellProfiler writes them


def test_intensity_is_measured_as_float64_raw_values():
    labels = np.ones((20, 20), np.uint8)
    intensity = np.full((20, 20), 255, np.uint8)
    r = one(labels, intensity)
    assert r.Intensity_IntegratedIntensity == 255 * 400  # no uint8 wrap-around


def test_dark_nucleus_has_no_centre_of_mass():
    labels = np.zeros((6, 6), np.uint8)
    labels[1:4, 1:4] = 1
    r = one(labels, np.zeros((6, 6)))
    assert np.isnan(r.Location_CenterMassIntensity_X)
    assert np.isnan(r.Intensity_MassDisplacement)
    assert r.Intensity_IntegratedIntensity == 0


def test_several_nuclei_rows_by_label_values_kept_apart():
    labels = np.zeros((10, 20), np.int64)
    labels[1:4, 1:4] = 300
    labels[5:9, 10:14] = 7
    intensity = np.where(labels == 300, 2.0, 0.0) + np.where(labels == 7, 5.0, 0.0)
    frame = measure_labels(labels, intensity)
    assert frame["Label"].tolist() == [7, 300]
    assert frame["AreaShape_Area"].tolist() == [16, 9]
    assert frame["Intensity_MeanIntensity"].tolist() == [5.0, 2.0]


# ---------------------------------------------------------------------------------------------
# Columns, physical units, empty images, validation
# ---------------------------------------------------------------------------------------------


def test_columns_are_exactly_the_defined_ones_in_order_with_their_dtypes():
    labels, intensity = sixteen()
    frame = measure_labels(labels, intensity)
    assert list(frame.columns) == column_names()
    dtypes = {c.name: c.dtype for c in COLUMNS}
    assert {name: str(t) for name, t in frame.dtypes.items()} == {n: dtypes[n] for n in frame}


def test_column_definitions_are_complete():
    names = [c.name for c in COLUMNS]
    assert len(names) == len(set(names))
    for c in COLUMNS:
        assert c.unit and c.family and len(c.description) > 10, c
        assert c.name == "Label" or re.fullmatch(
            r"(AreaShape|Intensity|Location|Neighbors|RadialDistribution|Texture)_\w+", c.name)
        # Our own columns: a CellProfiler name and a suffix saying what differs
        assert c.cellprofiler or c.name == "Label" or c.name.endswith(
            ("Squares", "NumPy", "_um", "_um2")), c
    table = column_table()
    assert list(table.columns) == ["name", "unit", "family", "cellprofiler", "description"]
    assert table["name"].tolist() == names
    own = table.loc[~table["cellprofiler"], "name"]
    assert {"Label", "AreaShape_MaxFeretDiameterSquares", "Intensity_MedianIntensityNumPy",
            "AreaShape_Area_um2"} <= set(own)


def test_pixel_size_adds_micrometre_columns():
    labels, intensity = sixteen()
    plain = measure_labels(labels, intensity)
    assert not any(name.endswith(("_um", "_um2")) for name in plain.columns)
    frame = measure_labels(labels, intensity, pixel_size_um=0.25)
    assert list(frame.columns) == column_names(physical=True)
    physical = [c for c in COLUMNS if c.unit in ("um", "um^2")]
    assert {c.name for c in physical} >= {"AreaShape_Area_um2", "AreaShape_Perimeter_um",
                                          "AreaShape_MajorAxisLength_um"}
    for c in physical:
        pixel, power = (c.name[:-4], 2) if c.unit == "um^2" else (c.name[:-3], 1)
        assert frame[c.name].tolist() == pytest.approx((plain[pixel] * 0.25**power).tolist())


@pytest.mark.parametrize("pixel_size, physical", [(None, False), (0.5, True)])
def test_no_nuclei_gives_zero_rows_and_every_column(pixel_size, physical):
    frame = measure_labels(np.zeros((16, 16), np.uint16), np.ones((16, 16)), pixel_size)
    assert len(frame) == 0
    assert list(frame.columns) == column_names(physical=physical)
    dtypes = {c.name: c.dtype for c in COLUMNS}
    assert all(str(frame[name].dtype) == dtypes[name] for name in frame)


def test_multichannel_intensity_is_refused():
    labels, intensity = sixteen()
    with pytest.raises(ValueError, match=r"\(6, 6, 3\).*nuclear channel"):
        measure_labels(labels, np.stack([intensity] * 3, axis=-1))


@pytest.mark.parametrize("labels, intensity, message", [
    (np.zeros((6, 6), np.uint8), np.zeros((6, 7)), r"\(6, 7\) differs from labels shape"),
    (np.zeros((6, 6), float), np.zeros((6, 6)), "integer"),
    (np.zeros((6, 6), bool), np.zeros((6, 6)), "integer"),
    (np.zeros((2, 6, 6), np.uint8), np.zeros((2, 6, 6)), r"2D.*\(2, 6, 6\)"),
    (np.full((6, 6), -1), np.zeros((6, 6)), ">= 0"),
    (np.zeros((6, 6), np.uint8), np.zeros((6, 6), complex), "real"),
])
def test_bad_inputs_are_refused(labels, intensity, message):
    with pytest.raises(ValueError, match=message):
        measure_labels(labels, intensity)


@pytest.mark.parametrize("pixel_size", [0, -1.0, float("nan")])
def test_bad_pixel_size_is_refused(pixel_size):
    labels, intensity = sixteen()
    with pytest.raises(ValueError, match="pixel_size_um"):
        measure_labels(labels, intensity, pixel_size)


def test_touches_border():
    labels = np.zeros((10, 10), np.uint8)
    labels[0, 4:6] = 3  # top row
    labels[4:6, 9] = 5  # right column
    labels[4:6, 4:6] = 8  # inside
    labels[9, 0] = 2  # bottom-left corner
    assert touches_border(labels).tolist() == [2, 3, 5]
    assert touches_border(np.zeros((4, 4), np.uint8)).tolist() == []
    # Cut-off nuclei are still measured, as they are
    assert measure_labels(labels, np.ones((10, 10)))["Label"].tolist() == [2, 3, 5, 8]

