"""The catalogue's optional families (config `segment.measure_features`), CellProfiler's columns.

Each family's columns are named as CellProfiler 4.2.8.1 names them at the scale the profile fixes
(the constants in the module that measures it) and hold its values, checked nucleus by nucleus by
tests/test_cellprofiler.py. columns.COLUMNS puts them after the core columns.
"""

from __future__ import annotations

from . import radial, texture, zernike
from .column import Column
from .neighbours import FEATURES as NEIGHBOUR_FEATURES
from .neighbours import NEIGHBOUR_DISTANCE, NEIGHBOURS, SCALES

# The optional families, in the order their columns come; the names config lists
FEATURES = ("neighbours", "texture", "radial", "zernike")
# CellProfiler puts the intensity image's name into the texture and radial names: ours is the
# name CellProfiler's example pipelines give the nuclear stain
IMAGE = "DNA"

_SCALE_TEXT = {"Adjacent": "adjacent: another nucleus a 4-neighbour step away",
               str(NEIGHBOUR_DISTANCE): f"within {NEIGHBOUR_DISTANCE} px: another nucleus's "
                                        f"pixel within {NEIGHBOUR_DISTANCE} px (Euclidean) of "
                                        "one of the nucleus's"}
_NEIGHBOUR_TEXT = {
    "NumberOfNeighbors": ("1", "int64", None, "number of other nuclei at this scale ({scale})"),
    "PercentTouching": ("%", "float64", None,
                        "percentage of the nucleus's outline pixels (an 8-neighbour of another "
                        "value, or on the image border) within strel_disk(d + 0.5) of another "
                        "nucleus, d the scale's distance (1 for Adjacent)"),
    "FirstClosestObjectNumber": ("-", "int64", None,
                                 "Label of the nucleus with the closest centroid, at any "
                                 "distance (CellProfiler's object number where labels are "
                                 "1..n); ties to the lower label; 0 when alone"),
    "FirstClosestDistance": ("px", "float64", "length",
                             "distance between the centroids of the nucleus and its closest "
                             "nucleus; 0 when alone"),
    "SecondClosestObjectNumber": ("-", "int64", None,
                                  "Label of the second closest nucleus by centroid; 0 with "
                                  "fewer than three nuclei in the image"),
    "SecondClosestDistance": ("px", "float64", "length",
                              "centroid distance to the second closest nucleus; 0 with fewer "
                              "than three nuclei"),
    "AngleBetweenNeighbors": ("deg", "float64", None,
                              "angle at the nucleus's centroid between the centroids of the "
                              "closest and second closest nuclei, in [0, 180]; 0 with fewer "
                              "than three nuclei"),
}


def _neighbour_columns() -> tuple[Column, ...]:
    columns = []
    for scale in SCALES:
        for i, feature in enumerate(NEIGHBOUR_FEATURES):
            unit, dtype, length, text = _NEIGHBOUR_TEXT[feature]
            columns.append(Column(f"Neighbors_{feature}_{scale}", unit, "neighbours",
                                  text.format(scale=_SCALE_TEXT[scale]), dtype, length,
                                  source=f"{NEIGHBOURS}_{scale}-{i}"))
    return tuple(columns)


_TEXTURE_TEXT = {
    "AngularSecondMoment": "sum of p(i, j)^2 (uniformity)",
    "Contrast": "sum of (i - j)^2 p(i, j)",
    "Correlation": "(sum of i j p(i, j) - mu^2) / sigma^2, mu and sigma^2 the mean and variance "
                   "of the marginal distribution p_x; 1 where sigma = 0",
    "Variance": "sigma^2, the variance of the marginal p_x",
    "InverseDifferenceMoment": "sum of p(i, j) / (1 + (i - j)^2) (homogeneity)",
    "SumAverage": "mean of i + j",
    "SumVariance": "variance of i + j",
    "SumEntropy": "entropy (log2) of the distribution of i + j",
    "Entropy": "entropy (log2) of p(i, j)",
    "DifferenceVariance": "variance of the values of the distribution of |i - j| over the "
                          "levels 0 to the nucleus's largest (mahotas' definition)",
    "DifferenceEntropy": "entropy (log2) of the distribution of |i - j|",
    "InfoMeas1": "(Entropy - HXY1) / HX: HX the marginal's entropy, HXY1 = -sum of p(i, j) "
                 "log2(p_x(i) p_x(j))",
    "InfoMeas2": "sqrt(1 - exp(-2 (HXY2 - Entropy))), HXY2 the entropy of p_x(i) p_x(j)",
}
_DIRECTION_TEXT = ("horizontal", "diagonal down-right", "vertical", "diagonal down-left")


def _texture_columns() -> tuple[Column, ...]:
    columns = []
    for d, (step, way) in enumerate(zip(texture.DIRECTIONS, _DIRECTION_TEXT)):
        for f, feature in enumerate(texture.FEATURES):
            columns.append(Column(
                f"Texture_{feature}_{IMAGE}_{texture.TEXTURE_SCALE}_{d:02d}_"
                f"{texture.GREY_LEVELS}", "1", "texture",
                f"Haralick {_TEXTURE_TEXT[feature]}; p(i, j) the grey-level co-occurrence of "
                f"pixel pairs {texture.TEXTURE_SCALE} px apart {way} (row, column step "
                f"{step}) in the nucleus, {texture.GREY_LEVELS} levels of intensity / full "
                "scale, level 0 left out; 0 without such a pair",
                source=f"{texture.TEXTURE}-{d * len(texture.FEATURES) + f}"))
    return tuple(columns)


_RADIAL_TEXT = {
    "FracAtD": "share of the nucleus's intensity in ring {b} of {n}",
    "MeanFrac": "FracAtD over the ring's share of the nucleus's pixels: 1 where the intensity "
                "is even",
    "RadialCV": "coefficient of variation (std / mean) of the mean intensities of the ring's "
                "eight 45-degree wedges around the centre; 0 without pixels in the ring",
}


def _radial_columns() -> tuple[Column, ...]:
    columns = []
    for f, feature in enumerate(radial.FEATURES):
        for b in range(radial.BINS):
            text = _RADIAL_TEXT[feature].format(b=b + 1, n=radial.BINS)
            columns.append(Column(
                f"RadialDistribution_{feature}_{IMAGE}_{b + 1}of{radial.BINS}", "1", "radial",
                f"{text}; ring {b + 1} (1 innermost) holds the pixels with {b} <= "
                f"{radial.BINS} d_c / (d_c + d_e + 0.001) < {b + 1}, d_c the shortest path "
                "inside the nucleus (8-connected) from its centre, the pixel farthest from its "
                "edge (on ties CellProfiler's pick, by NumPy 1.23's argsort), d_e the distance "
                "to the edge",
                source=f"{radial.RADIAL}-{f * radial.BINS + b}"))
    return tuple(columns)


def _zernike_columns() -> tuple[Column, ...]:
    return tuple(Column(
        f"AreaShape_Zernike_{n}_{m}", "1", "zernike",
        f"magnitude of the Zernike moment n = {n}, m = {m} of the nucleus's pixels in "
        "centrosome's enclosing circle (its search, not always the smallest circle): |sum "
        "of R_n^m(r) e^(i m theta)| / (pi radius^2); NaN for a single pixel; may differ "
        "from CellProfiler's where its search meets tied angles (their sort turns on "
        "arccos's last bit, which differs by CPU)",
        source=f"{zernike.ZERNIKE}-{k}")
        for k, (n, m) in enumerate(zernike.INDEXES))


OPTIONAL_COLUMNS: tuple[Column, ...] = (_neighbour_columns() + _texture_columns()
                                        + _radial_columns() + _zernike_columns())
