"""One output column of the catalogue (columns.COLUMNS): name, unit, family, formula, source."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    """One output column.

    scale: "length" or "area" when it has a micrometre twin. source: the key the value is read
    from: a regionprops_table key (an extra property's outputs are `<function>-<i>`, see
    features) or edges' `edge_stats-<i>`; None when it is computed from other measurements.
    cellprofiler: True when the column is CellProfiler's (its name and its value), False when it
    is nucleiseg's own.
    """

    name: str
    unit: str
    family: str
    description: str
    dtype: str = "float64"
    scale: str | None = None
    source: str | None = None
    cellprofiler: bool = True
