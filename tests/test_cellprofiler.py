"""nucleiseg's measurements against CellProfiler itself (marker `cellprofiler`).

CellProfiler 4.2.8.1 runs in its own virtualenv, .venv-cellprofiler/ (Python 3.9; installed by
`.ci/install-cellprofiler`); tests/cellprofiler_oracle.py runs its measurement modules (size
and shape with Zernike features, intensity, neighbours, texture, radial distribution; and the
Identify modules' object centres) on the same label and intensity arrays as `measure_labels`
(texture on intensity / full scale), and every column the catalogue marks as CellProfiler's
(Column.cellprofiler) is compared nucleus by nucleus (relative tolerance 1e-6); the columns of
our own must not be among CellProfiler's names. The cases: 12 real DSB2018 images (labels from
their masks, intensity their gray channel, read in place) and synthetic edge cases (touching
ellipses at random angles, lines 1-3 px wide, single pixels, rings, objects cut by every edge
and corner, one filling its image).

Where a CellProfiler column cannot hold CellProfiler's value, KNOWN_DIFFERENCES says so, once,
with the nuclei it may differ on: the test passes there and fails if any other column or
nucleus drifts (test_a_drifted_definition_is_caught moves one value of each family to show
it), or if a listed column comes to agree (remove it from the table then; an entry that
differs by CPU, as the Zernike near ties do, must instead still name nuclei of the cases). The
per-column report (`pytest -m cellprofiler -rP tests/test_cellprofiler.py` shows it) says how
far apart they are. Skipped, with the reason, where .venv-cellprofiler/ is absent.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage as ndi
from skimage.draw import disk, ellipse

from conftest import REPO, SHARED_DSB, pick_ids
from nucleiseg.io import read_image
from nucleiseg.labels import masks_to_labels, relabel
from nucleiseg.morphometrics import PIXEL_COLUMNS, measure_labels
from nucleiseg.morphometrics.radial import radial_stats
from nucleiseg.morphometrics.zernike import INDEXES, zernike_stats
from nucleiseg.normalize import to_channels_last

ORACLE_PYTHON = REPO / ".venv-cellprofiler" / "bin" / "python"
ORACLE = Path(__file__).with_name("cellprofiler_oracle.py")
ORACLE_TIMEOUT_S = 600  # about 10 s for the cases below on 2 busy cores
RTOL = 1e-6
# Values that are 0 by definition come out as ~1e-15 on either side (a centre of mass minus a
# centroid): absolute differences below this are rounding, not definitions.
ATOL = 1e-9
IMAGE_SUFFIX = "_DNA"  # the oracle's name for the intensity image, which CellProfiler appends

pytestmark = [
    pytest.mark.cellprofiler,
    pytest.mark.skipif(
        not ORACLE_PYTHON.exists(),
        reason=f"CellProfiler is not installed ({ORACLE_PYTHON.parent.parent.name}/ absent): "
               "run `bash .ci/install-cellprofiler` (needs Python 3.8/3.9 and a JDK; CI does)",
    ),
]


def _tie(frame: pd.DataFrame) -> pd.Series:
    return frame["brightest_pixels"] > 1


@dataclass(frozen=True)
class Known:
    """A column whose definition differs from CellProfiler 4.2.8.1's, and why. `where`: the
    nuclei it may differ on (a test of the compared rows); None: any nucleus. `by_machine`: the
    difference shows on some CPUs and not on others (both sides run the same arithmetic there)."""

    why: str
    where: Callable[[pd.DataFrame], pd.Series] | None = None
    by_machine: bool = False


# The one table of expected differences. Lines in centrosome 1.2.3.
_NEAR_TIES = Known(
    "near ties in centrosome's enclosing-circle search (cpmorphology.py:1592-1621): two hull "
    "vertices at smallest angles within enclosing_circle.NEAR_TIE; whether they tie, and so "
    "which is taken, turns on arccos's last bit, NumPy's SIMD code or the C library's by CPU; "
    "the nuclei whose features change when the other is taken",
    lambda frame: frame["pick_matters"], by_machine=True)
KNOWN_DIFFERENCES = {c.name: _NEAR_TIES for c in PIXEL_COLUMNS if c.family == "zernike"}


# --- the cases ---------------------------------------------------------------------------------

@dataclass
class Case:
    name: str
    labels: np.ndarray
    intensity: np.ndarray
    full_scale: float  # the intensity of white (texture's scale)


def _paint(labels: np.ndarray, rows, cols) -> None:
    """The next label on the given pixels that are still background (touching, not overlapping)."""
    rows, cols = np.asarray(rows), np.asarray(cols)
    free = labels[rows, cols] == 0
    labels[rows[free], cols[free]] = labels.max() + 1


def _ellipses(rng) -> np.ndarray:
    """Ellipses at random angles, packed so that many touch."""
    labels = np.zeros((160, 160), np.int32)
    for r in range(12, 160, 22):
        for c in range(12, 160, 22):
            major = rng.uniform(3, 15)
            minor = rng.uniform(1.5, major)
            _paint(labels, *ellipse(r + rng.uniform(-4, 4), c + rng.uniform(-4, 4), major, minor,
                                    labels.shape, rotation=rng.uniform(-np.pi, np.pi)))
    return labels


def _lines() -> np.ndarray:
    """Horizontal, vertical and diagonal lines 1-3 px wide and 2-20 px long, an L and a cross."""
    labels = np.zeros((120, 120), np.int32)
    for i, (width, length) in enumerate([(w, n) for w in (1, 2, 3) for n in (2, 3, 7, 20)]):
        r, c = 3 + 9 * i, 3
        _paint(labels, *np.mgrid[r:r + width, c:c + length].reshape(2, -1))  # horizontal
        _paint(labels, *np.mgrid[3:3 + length, 30 + 7 * i:30 + 7 * i + width].reshape(2, -1))
    for i, length in enumerate((2, 5, 12, 25)):  # diagonals, 1 px (8-connected) and 2 px thick
        steps = np.arange(length)
        _paint(labels, 30 + 20 * i + steps, 30 + steps)
        _paint(labels, np.r_[30 + 20 * i + steps, 31 + 20 * i + steps],
               np.r_[60 + steps, 60 + steps])
        _paint(labels, 30 + 20 * i + steps, 110 - steps)  # anti-diagonal
    _paint(labels, np.r_[np.arange(90, 110), np.full(10, 109)],  # an L
           np.r_[np.full(20, 5), np.arange(6, 16)])
    _paint(labels, np.r_[np.arange(90, 105), np.full(15, 97)],  # a cross
           np.r_[np.full(15, 30), np.arange(23, 38)])
    return labels


def _pixels() -> np.ndarray:
    """Single pixels alone, touching each other (4- and 8-), against a larger object; pairs."""
    labels = np.zeros((40, 40), np.int32)
    for r, c in [(2, 2), (2, 10), (2, 11), (6, 20), (7, 21), (20, 5), (20, 7)]:
        _paint(labels, [r], [c])
    _paint(labels, *disk((25, 25), 5))
    _paint(labels, [25], [31])  # a pixel touching the disk
    for rows, cols in [([35, 35], [2, 3]), ([35, 36], [8, 8]), ([35, 36], [14, 15]),
                       ([35, 36], [21, 20])]:
        _paint(labels, rows, cols)
    return labels


def _rings() -> np.ndarray:
    """Rings 1-3 px thick, a disk with two holes, an object inside another's hole."""
    labels = np.zeros((100, 100), np.int32)
    rr, cc = np.mgrid[:100, :100]
    for (r, c), outer, thick in [((15, 15), 10, 1), ((15, 45), 10, 2), ((15, 78), 12, 3),
                                 ((50, 20), 5, 1), ((80, 80), 14, 2)]:
        d = np.hypot(rr - r, cc - c)
        ring = (d <= outer) & (d > outer - thick)
        _paint(labels, *np.nonzero(ring))
    holed = (np.hypot(rr - 50, cc - 55) <= 12) & (np.hypot(rr - 47, cc - 50) > 3) \
        & (np.hypot(rr - 53, cc - 61) > 2.5)
    _paint(labels, *np.nonzero(holed))
    _paint(labels, *disk((80, 80), 6))  # inside the last ring's hole, not touching it
    return labels


def _borders() -> np.ndarray:
    """Disks cut by each edge and each corner; a line along an edge; a bar across the image."""
    labels = np.zeros((90, 110), np.int32)
    h, w = labels.shape
    for r, c in [(0, 55), (h - 1, 30), (45, 0), (45, w - 1), (0, 0), (0, w - 1), (h - 1, 0),
                 (h - 1, w - 1), (2, 80), (h - 3, 80)]:
        _paint(labels, *disk((r, c), 7, shape=labels.shape))
    _paint(labels, np.zeros(20, int), np.arange(20, 40))  # one row thick, on the top edge
    _paint(labels, *np.mgrid[40:43, 0:w].reshape(2, -1))  # edge to edge
    _paint(labels, [h - 1], [55])  # a single pixel on the bottom edge
    return labels


def _synthetic_intensity(labels: np.ndarray, rng, continuous: bool) -> np.ndarray:
    """8-bit-like values (many ties) or continuous ones; the first object all zeros, the second
    constant (every pixel ties for the brightest)."""
    if continuous:
        intensity = rng.uniform(0, 1000, labels.shape)
    else:
        intensity = rng.integers(0, 256, labels.shape).astype(np.float64)
    intensity[labels == 1] = 0
    intensity[labels == 2] = 100
    return intensity


def _whole_image_case(rng) -> Case:
    """One nucleus filling its image: no pixel has a neighbour of another value, so no edge."""
    return Case("synthetic_whole", np.ones((6, 7), np.int32), rng.uniform(0, 1000, (6, 7)),
                1000.0)


def _synthetic_cases() -> list[Case]:
    rng = np.random.default_rng(2018)
    cases = [_whole_image_case(rng)]
    for name, labels in [("ellipses", _ellipses(rng)), ("lines", _lines()),
                         ("pixels", _pixels()), ("rings", _rings()), ("borders", _borders())]:
        labels, _ = relabel(labels)
        for continuous in (False, True):
            cases.append(Case(f"synthetic_{name}_{'float' if continuous else 'uint8'}",
                              labels.astype(np.int32),
                              _synthetic_intensity(labels, rng, continuous),
                              1000.0 if continuous else 255.0))
    return cases


def _dsb_case(sample_id: str) -> Case:
    folder = SHARED_DSB / "stage1_train" / sample_id
    image = to_channels_last(read_image(folder / "images" / f"{sample_id}.png"))
    assert image.shape[-1] == 1, f"{sample_id}: not a gray image"
    masks = [read_image(path) > 0 for path in sorted((folder / "masks").glob("*.png"))]
    labels, _ = masks_to_labels(masks)
    labels, _ = relabel(labels)  # a mask hidden under earlier ones leaves no gap
    assert image.dtype == np.uint8, f"{sample_id}: not an 8-bit image"
    return Case(f"dsb_{sample_id[:12]}", labels.astype(np.int32),
                image[..., 0].astype(np.float64), 255.0)


@pytest.fixture(scope="module")
def cases(dsb_meta) -> list[Case]:
    ids = pick_ids(dsb_meta, {"fluorescence_gray": 9, "brightfield_gray": 3})
    return [_dsb_case(sample_id) for sample_id in ids] + _synthetic_cases()


# --- both sides --------------------------------------------------------------------------------

def _brightest_pixels(case: Case) -> np.ndarray:
    """Per nucleus, how many of its pixels hold its largest intensity."""
    index = np.arange(1, case.labels.max() + 1)
    top = np.asarray(ndi.maximum(case.intensity, case.labels, index))
    at_top = (case.labels > 0) & (case.intensity == np.r_[np.nan, top][case.labels])
    return np.bincount(case.labels[at_top], minlength=index.size + 1)[1:]


def _oracle(cases: list[Case], folder: Path) -> dict[str, pd.DataFrame]:
    folder.mkdir()
    files = []
    for case in cases:
        files.append(folder / f"{case.name}.npz")
        np.savez(files[-1], labels=case.labels, intensity=case.intensity,
                 full_scale=case.full_scale)
    command = [str(ORACLE_PYTHON), str(ORACLE), str(folder / "out"), *map(str, files)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=ORACLE_TIMEOUT_S)
    assert result.returncode == 0, f"the CellProfiler oracle failed:\n{result.stderr[-4000:]}"
    tables = {}
    for case in cases:
        table = pd.read_csv(folder / "out" / f"{case.name}.csv").copy()  # one block a dtype
        tables[case.name] = table.rename(
            columns=lambda name: name.removesuffix(IMAGE_SUFFIX)).rename(
            columns={"ObjectNumber": "Label"})
    return tables


@pytest.fixture(scope="module")
def measured(cases, tmp_path_factory) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(nucleiseg's table, CellProfiler's table) of every nucleus of every case, row for row."""
    theirs = _oracle(cases, tmp_path_factory.mktemp("cellprofiler") / "cases")
    ours_parts, theirs_parts = [], []
    for case in cases:
        ours = measure_labels(case.labels, case.intensity, full_scale=case.full_scale)
        ours.insert(0, "case", case.name)
        ours["brightest_pixels"] = _brightest_pixels(case)
        index = np.arange(1, case.labels.max() + 1)
        ours["radial_tied"] = radial_stats(case.labels, case.intensity, index)["radial-tied"]
        other = zernike_stats(case.labels, index, other_pick=True)
        ours["pick_matters"] = ~np.all([np.isclose(ours[f"AreaShape_Zernike_{n}_{m}"],
                                                   other[f"zernike-{k}"], rtol=RTOL, atol=ATOL,
                                                   equal_nan=True)
                                        for k, (n, m) in enumerate(INDEXES)], axis=0)
        ours_parts.append(ours)
        theirs_parts.append(theirs[case.name].assign(case=case.name))
    return (pd.concat(ours_parts, ignore_index=True),
            pd.concat(theirs_parts, ignore_index=True))


CELLPROFILER_COLUMNS = [c.name for c in PIXEL_COLUMNS if c.cellprofiler]
OWN_COLUMNS = [c.name for c in PIXEL_COLUMNS if not c.cellprofiler]


def _shared_columns(ours: pd.DataFrame, theirs: pd.DataFrame) -> list[str]:
    return [name for name in CELLPROFILER_COLUMNS if name in theirs.columns]


@dataclass
class Comparison:
    column: str
    differs: np.ndarray  # per nucleus
    ours: np.ndarray
    theirs: np.ndarray

    @property
    def count(self) -> int:
        return int(self.differs.sum())


def _compare(ours: pd.DataFrame, theirs: pd.DataFrame) -> list[Comparison]:
    comparisons = []
    for column in _shared_columns(ours, theirs):
        a = ours[column].to_numpy(np.float64)
        b = theirs[column].to_numpy(np.float64)
        same = np.isclose(a, b, rtol=RTOL, atol=ATOL, equal_nan=True)
        comparisons.append(Comparison(column, ~same, a, b))
    return comparisons


def _report(comparisons: list[Comparison], ours: pd.DataFrame) -> str:
    """One line per column: agrees, or how many nuclei differ and by how much, with the worst."""
    n = len(ours)
    lines = [f"nucleiseg against CellProfiler 4.2.8.1: {n} nuclei in {ours['case'].nunique()} "
             f"images, rtol {RTOL:g}, atol {ATOL:g}",
             f"{'column':36} {'status':10} {'nuclei':>11} {'max abs':>10} {'max rel':>10}  "
             f"worst (case label: nucleiseg / CellProfiler)"]
    for comp in comparisons:
        known = KNOWN_DIFFERENCES.get(comp.column)
        if not comp.count:
            status = "KNOWN-OK" if known else "agree"
            lines.append(f"{comp.column:36} {status:10} {0:>5} / {n:<5}")
            continue
        a, b = comp.ours[comp.differs], comp.theirs[comp.differs]
        with np.errstate(invalid="ignore", divide="ignore"):
            abs_diff = np.abs(a - b)
            rel = abs_diff / np.maximum(np.abs(a), np.abs(b))
        finite = np.isfinite(abs_diff)
        worst = int(np.flatnonzero(comp.differs)[np.nanargmax(np.where(finite, abs_diff, -1))
                                                  if finite.any() else 0])
        status = "known" if known else "DIFFERS"
        if known and known.where is not None:
            outside = comp.differs & ~known.where(ours).to_numpy()
            status = f"known({int(outside.sum())} out)" if outside.any() else "known"
        nonfinite = f", {int((~finite).sum())} NaN/inf" if (~finite).any() else ""
        lines.append(
            f"{comp.column:36} {status:10} {comp.count:>5} / {n:<5} "
            f"{np.nanmax(abs_diff[finite]) if finite.any() else np.nan:>10.4g} "
            f"{np.nanmax(rel[finite]) if finite.any() else np.nan:>10.4g}  "
            f"{ours['case'].iat[worst]} {ours['Label'].iat[worst]}: "
            f"{comp.ours[worst]:.6g} / {comp.theirs[worst]:.6g}{nonfinite}")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def comparisons(measured) -> list[Comparison]:
    ours, theirs = measured
    found = _compare(ours, theirs)
    print("\n" + _report(found, ours))
    return found


# --- the tests ---------------------------------------------------------------------------------

def test_oracle_measures_the_same_nuclei(measured):
    ours, theirs = measured
    assert len(ours) > 500, "too few nuclei to compare"
    pd.testing.assert_frame_equal(ours[["case", "Label"]], theirs[["case", "Label"]],
                                  check_dtype=False)


def test_every_cellprofiler_column_is_compared(measured):
    """Each column the catalogue calls CellProfiler's is one CellProfiler writes; each of our own
    has a name CellProfiler does not use."""
    ours, theirs = measured
    assert _shared_columns(ours, theirs) == CELLPROFILER_COLUMNS, (
        f"not written by CellProfiler: {sorted(set(CELLPROFILER_COLUMNS) - set(theirs.columns))}")
    # Label: the rows are joined on it (CellProfiler's ObjectNumber, renamed)
    own = set(OWN_COLUMNS) - {"Label"}
    assert sorted(own & set(theirs.columns)) == [], "own columns named as CellProfiler's"
    assert set(KNOWN_DIFFERENCES) <= set(CELLPROFILER_COLUMNS)


def test_cases_hold_the_corner_cases_the_definitions_turn_on(measured):
    """Each rule that decides a value only in a corner case is compared there too."""
    ours, _ = measured
    tie = ours["AreaShape_InertiaTensor_0_0"] == ours["AreaShape_InertiaTensor_1_1"]
    b = ours["AreaShape_InertiaTensor_0_1"]
    edge = ours.filter(like="IntensityEdge")
    found = {
        "orientation tie, InertiaTensor_0_1 < 0": (tie & (b < 0)).sum(),
        "orientation tie, InertiaTensor_0_1 > 0": (tie & (b > 0)).sum(),
        "orientation tie, InertiaTensor_0_1 = 0": (tie & (b == 0)).sum(),
        "perimeter 0 (FormFactor inf)": (ours["AreaShape_Perimeter"] == 0).sum(),
        "Feret of a line (min 0, max > 0)": ((ours["AreaShape_MinFeretDiameter"] == 0)
                                             & (ours["AreaShape_MaxFeretDiameter"] > 0)).sum(),
        "odd pixel count (median between two values)": (ours["AreaShape_Area"] % 2 == 1).sum(),
        "no edge pixel": (edge == 0).all(axis=1).sum(),
        "tie for the brightest pixel": _tie(ours).sum(),
        "tie for the radial centre": ours["radial_tied"].sum(),
        "nucleus without texture pairs (all 0)": (ours.filter(like="Texture_") == 0).all(
            axis=1).sum(),
        "single pixel (Zernike NaN)": ours["AreaShape_Zernike_0_0"].isna().sum(),
        "ring without pixels (RadialCV 0)": (ours.filter(like="RadialCV") == 0).any(
            axis=1).sum(),
    }
    assert all(found.values()), found


def _unexpected(comparisons: list[Comparison], ours: pd.DataFrame) -> dict[str, int]:
    """Per column, how many nuclei differ from CellProfiler but for the known differences."""
    unexpected = {}
    for comp in comparisons:
        known = KNOWN_DIFFERENCES.get(comp.column)
        differs = comp.differs
        if known is not None:
            if known.where is None:
                continue
            differs = differs & ~known.where(ours).to_numpy()
        if differs.any():
            unexpected[comp.column] = int(differs.sum())
    return unexpected


def test_columns_agree_with_cellprofiler(comparisons, measured):
    """Every shared column equals CellProfiler's on every nucleus, but the known differences
    (on the nuclei their entry names)."""
    ours, _ = measured
    unexpected = _unexpected(comparisons, ours)
    assert not unexpected, (f"columns that differ from CellProfiler's (nuclei): {unexpected}\n"
                            + _report(comparisons, ours))


def test_known_differences_still_differ(comparisons, measured):
    """A listed column that now agrees everywhere must leave KNOWN_DIFFERENCES (strict xfail).
    One that differs by machine may agree on this CPU: the nuclei it names must still be among
    the cases, or the entry covers nothing and must go."""
    ours, _ = measured
    agreeing = [comp.column for comp in comparisons
                if comp.column in KNOWN_DIFFERENCES and not comp.count
                and not KNOWN_DIFFERENCES[comp.column].by_machine]
    assert not agreeing, (f"now equal to CellProfiler's: remove {agreeing} from "
                          f"KNOWN_DIFFERENCES\n" + _report(comparisons, ours))
    uncovered = [column for column, known in KNOWN_DIFFERENCES.items()
                 if known.by_machine and known.where is not None
                 and not known.where(ours).any()]
    assert not uncovered, (f"no nucleus of the cases is one {uncovered} may differ on: remove "
                           f"them from KNOWN_DIFFERENCES")


@pytest.mark.parametrize("family", sorted({c.family for c in PIXEL_COLUMNS if c.cellprofiler}))
def test_a_drifted_definition_is_caught(measured, family):
    """A value of each family moved by 10 x (RTOL, ATOL) on one nucleus (one not exempt) fails
    the comparison, and only there: the test sees a definition drift."""
    ours, theirs = measured
    column = next(c.name for c in PIXEL_COLUMNS if c.family == family and c.cellprofiler)
    known = KNOWN_DIFFERENCES.get(column)
    exempt = known.where(ours).to_numpy() if known and known.where else np.zeros(len(ours), bool)
    values = ours[column].to_numpy(np.float64)
    row = int(np.flatnonzero(~exempt & np.isfinite(values))[0])
    drifted = ours.copy()
    drifted[column] = drifted[column].astype(np.float64)
    drifted.loc[row, column] = values[row] * (1 + 10 * RTOL) + 10 * ATOL
    assert _unexpected(_compare(drifted, theirs), drifted) == {column: 1}
