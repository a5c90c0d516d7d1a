"""The catalogue's optional families (config `measure.features`), CellProfiler's columns each.

Each family's columns are named as CellProfiler 4.2.8.1 names them at the scale the profile fixes
(the constants in the module that measures it) and hold its values, checked nucleus by nucleus by
tests/test_cellprofiler.py. columns.COLUMNS puts them after the core columns.
"""

from __future__ import annotations

from .column import Column
from .neighbours import FEATURES as NEIGHBOUR_FEATURES
from .neighbours import NEIGHBOUR_DISTANCE, NEIGHBOURS, SCALES

# The optional families, in the order their columns come; the names config lists
FEATURES = ("neighbours",)

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


OPTIONAL_COLUMNS: tuple[Column, ...] = _neighbour_columns()
