"""Nuclei exported for the viewers biologists use: GeoJSON detections for QuPath, ImageJ ROI sets
for Fiji's ROI Manager.

Both hold each nucleus's outline along its pixels' edges (`outlines`: x = column, y = row, a
pixel is the unit square), one object per row of the image's nuclei table, in its order, named
by its label. QuPath's GeoJSON (what File > Export objects writes, and Import objects reads):
a FeatureCollection whose Features have `properties.objectType` "detection", a `classification`
{name, color} and `measurements` {name: number}; QuPath's measurements are numbers, so text
columns (image_id) are left out, booleans are 0/1, and empty values (NaN) are left out, QuPath
showing them as NaN (JSON has no NaN). A nucleus of several pieces is a MultiPolygon; holes
are interior rings. In an ImageJ ROI set a nucleus is a polygon ROI, or, when it has holes or
several pieces, a composite (shape) ROI, whose rings ImageJ fills even-odd.

Both files are written nucleus by nucleus (`_image_exports`): the GeoJSON feature by feature,
the ROI set entry by entry, so that neither is held whole. An image segmented block by block
(its labels a tiled OME-TIFF, blocks.LABELS_SUFFIX) is read block by block, as measure_blocks
measures it: each block's window (over the same grid) gives the outlines of the nuclei the
block owns (blocks.owned), shifted to the image's coordinates, and they are written in the
table's order, a nucleus waiting (in memory) only while one before it in the table is in a
later block. The GeoJSON and the ROI set's entries are those of the whole image's labels,
byte for byte (a zip's entries carry the time they were written).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import pandas as pd

from .blocks import BLOCK_MARGIN, BLOCK_SIZE, LABELS_SUFFIX, Block, BlockGrid, owned
from .io import atomic_path
from .large_io import Regions, TiffRegions
from .measure_blocks import measurement_grid
from .outlines import Polygon, nucleus_polygons

log = logging.getLogger(__name__)

GEOJSON, IMAGEJ_ROIS = "geojson", "imagej_rois"
EXPORTS = (GEOJSON, IMAGEJ_ROIS)  # the values segment.exports takes, one file per image each
FILE_SUFFIXES = {GEOJSON: ".geojson", IMAGEJ_ROIS: "_rois.zip"}  # after the image id
CLASSIFICATION = {"name": "Nucleus", "color": [26, 230, 51]}  # the overlays' green
# ImageJ's composite ROI path: Java's PathIterator segment types.
_MOVETO, _LINETO, _CLOSE = 0, 1, 4


def export_file(folder: str | Path, image_id: str, kind: str) -> Path:
    """Where an image's export of `kind` (one of EXPORTS) goes in a chunk's exports folder."""
    return Path(folder) / f"{image_id}{FILE_SUFFIXES[kind]}"


def _outlines_in_table_order(labels: np.ndarray, nuclei: pd.DataFrame) -> list[list[Polygon]]:
    polygons = nucleus_polygons(labels)
    missing = sorted(set(nuclei["label"].astype(int)) - set(polygons))
    if missing:
        raise ValueError(f"labels {missing[:5]} of the nuclei table are not in the label image")
    return [polygons[int(label)] for label in nuclei["label"]]


def measurements(row: dict) -> dict[str, float | int]:
    """A nuclei-table row as QuPath measurements: numbers only (booleans as 0/1), no NaN."""
    found = {}
    for name, value in row.items():
        if isinstance(value, (bool, np.bool_)):
            found[name] = int(value)
        elif isinstance(value, Integral):
            found[name] = int(value)
        elif isinstance(value, Real) and math.isfinite(value):
            found[name] = float(value)
    return found


def _closed(ring: np.ndarray) -> list[list[int]]:
    points = ring.tolist()
    return points + points[:1]


def geojson_geometry(polygons: list[Polygon]) -> dict:
    """A nucleus's polygons as a GeoJSON Polygon, or a MultiPolygon when it has several pieces."""
    rings = [[_closed(ring) for ring in polygon] for polygon in polygons]
    if len(rings) == 1:
        return {"type": "Polygon", "coordinates": rings[0]}
    return {"type": "MultiPolygon", "coordinates": rings}


def geojson_feature(polygons: list[Polygon], row: dict) -> dict:
    """A nucleus as a QuPath detection: its outline and its table row (as measurements)."""
    return {
        "type": "Feature",
        "geometry": geojson_geometry(polygons),
        "properties": {
            "objectType": "detection",
            "name": str(int(row["label"])),
            "classification": CLASSIFICATION,
            "measurements": measurements(row),
        },
    }


def feature_collection(labels: np.ndarray, nuclei: pd.DataFrame) -> dict:
    """One image's nuclei as a GeoJSON FeatureCollection of QuPath detections, one Feature per
    row of `nuclei` (that image's rows of the nuclei table), in its order."""
    outlines = _outlines_in_table_order(labels, nuclei)
    features = [geojson_feature(polygons, row)
                for row, polygons in zip(nuclei.to_dict("records"), outlines)]
    return {"type": "FeatureCollection", "features": features}


def write_geojson(collection: dict, path: str | Path) -> None:
    """Write a FeatureCollection, atomically; strict JSON (a NaN is an error, never written)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(collection, allow_nan=False) + "\n")


def _bounds(points: np.ndarray) -> dict[str, int]:
    (left, top), (right, bottom) = points.min(axis=0), points.max(axis=0)
    return {"left": int(left), "top": int(top), "right": int(right), "bottom": int(bottom)}


def imagej_roi(polygons: list[Polygon], name: str):
    """A nucleus as an ImageJ ROI (roifile.ImagejRoi): a polygon ROI when it is one piece
    without holes, else a composite ROI of all its rings (ImageJ fills them even-odd)."""
    import roifile

    if len(polygons) == 1 and len(polygons[0]) == 1:
        ring = polygons[0][0].astype(np.int32)
        bounds = _bounds(ring)
        return roifile.ImagejRoi(
            roitype=roifile.ROI_TYPE.POLYGON, name=name, n_coordinates=len(ring),
            integer_coordinates=ring - [bounds["left"], bounds["top"]], **bounds)
    path = []
    for ring in (ring for polygon in polygons for ring in polygon):
        (x, y), rest = ring[0].tolist(), ring[1:].tolist()
        path += [_MOVETO, x, y, *(v for point in rest for v in (_LINETO, *point)), _CLOSE]
    exteriors = np.concatenate([polygon[0] for polygon in polygons])
    return roifile.ImagejRoi(
        roitype=roifile.ROI_TYPE.RECT, name=name, shape_roi_size=len(path),
        multi_coordinates=np.array(path, np.float32), **_bounds(exteriors))


def imagej_rois(labels: np.ndarray, nuclei: pd.DataFrame) -> list:
    """One image's nuclei as ImageJ ROIs, one per row of `nuclei`, in its order, named by label."""
    outlines = _outlines_in_table_order(labels, nuclei)
    return [imagej_roi(polygons, str(int(label)))
            for label, polygons in zip(nuclei["label"], outlines)]


def write_imagej_rois(rois: list, path: str | Path) -> None:
    """Write ROIs as an ImageJ ROI set (.zip, entries `<name>.roi`), atomically."""
    import roifile

    with atomic_path(path) as tmp:
        roifile.roiwrite(tmp, rois, mode="w")


# --- written nucleus by nucleus ------------------------------------------------------------------


@contextlib.contextmanager
def _geojson_stream(path: Path):
    """add(polygons, row) appends a feature to the FeatureCollection written to `path`: the text
    json.dumps gives the whole collection (write_geojson's), one feature at a time."""
    with open(path, "w") as out:
        out.write('{"type": "FeatureCollection", "features": [')
        separator = ""

        def add(polygons: list[Polygon], row: dict) -> None:
            nonlocal separator
            out.write(separator + json.dumps(geojson_feature(polygons, row), allow_nan=False))
            separator = ", "

        yield add
        out.write("]}\n")


def _write_roi(archive, roi) -> None:
    """One ROI into an open zip file as roifile.roiwrite writes it: `<name>.roi`, stored."""
    name = roi.name or roi.autoname
    name = name if name[-4:].lower() == ".roi" else name + ".roi"
    with archive.open(name, "w") as entry:
        entry.write(roi.tobytes())


@contextlib.contextmanager
def _roi_set_stream(path: Path):
    """add(polygons, row) appends the nucleus's ROI, named by its label, to the ROI set."""
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:

        def add(polygons: list[Polygon], row: dict) -> None:
            _write_roi(archive, imagej_roi(polygons, str(int(row["label"]))))

        yield add


@contextlib.contextmanager
def _image_exports(folder: str | Path, image_id: str, kinds: list[str]):
    """add(polygons, row): one nucleus appended to each of the image's exports of `kinds`,
    each file written atomically (none is left when the block fails)."""
    streams = ((GEOJSON, _geojson_stream), (IMAGEJ_ROIS, _roi_set_stream))
    with contextlib.ExitStack() as stack:
        adders = [stack.enter_context(stream(stack.enter_context(
            atomic_path(export_file(folder, image_id, kind))))) for kind, stream in streams
            if kind in kinds]

        def add(polygons: list[Polygon], row: dict) -> None:
            for adder in adders:
                adder(polygons, row)

        yield add


# --- a large image, block by block ---------------------------------------------------------------


def _measured_grid(height: int, width: int, blocks: dict) -> BlockGrid:
    """The blocks measure_blocks measured the image over: each block owns the nuclei it
    measured, so each row of the table has its nucleus in some block."""
    return measurement_grid(BlockGrid(height, width, blocks.get("block_size", BLOCK_SIZE),
                                      blocks.get("block_margin", BLOCK_MARGIN)))


def _reaches_window_edge(mask: np.ndarray, block: Block) -> bool:
    """Whether the mask (a window's) touches an edge of the window inside the image."""
    (ys, xs), (height, width) = block.window, block.image_shape
    return bool((ys.start > 0 and mask[0].any()) or (ys.stop < height and mask[-1].any())
                or (xs.start > 0 and mask[:, 0].any()) or (xs.stop < width and mask[:, -1].any()))


def _whole_outline(labels: Regions, grid: BlockGrid, block: Block, value: int) -> list[Polygon]:
    """The polygons of a nucleus cut by its block's window (wider than twice the margin: its
    segmentation warned), from windows twice as wide each time until it is whole."""
    margin = grid.margin
    while True:
        margin = max(2 * margin, 1)
        wider = BlockGrid(grid.height, grid.width, grid.block_size, margin).block(block.row,
                                                                                  block.column)
        mask = labels.read(*wider.window)[..., 0] == value
        if not _reaches_window_edge(mask, wider):
            return nucleus_polygons(mask.astype(np.uint8), [1], wider.origin)[1]


def _owned_outlines(labels: Regions, grid: BlockGrid, block: Block, table_labels: np.ndarray,
                    written: np.ndarray) -> dict[int, list[Polygon]]:
    """label -> polygons (image coordinates) of the nuclei the block owns that the table has
    (table_labels: sorted) and that are not written yet."""
    window = labels.read(*block.window)[..., 0]
    values, cut = owned(window, block)
    at = np.searchsorted(table_labels, values).clip(max=table_labels.size - 1)
    keep = (table_labels[at] == values) & ~written[at]
    found = nucleus_polygons(window, values[keep & ~cut], block.origin)
    for value in values[keep & cut].tolist():
        found[value] = _whole_outline(labels, grid, block, value)
    return found


def _export_blocks(add, labels_file: str | Path, table: pd.DataFrame, blocks: dict) -> None:
    """A block-wise image's nuclei, from its label OME-TIFF read block by block, added in the
    table's order. A nucleus waits in memory only while one before it in the table is owned by
    a later block: one whose bounding-box centre moved there when stitching gave some of its
    pixels to a nucleus stitched before it, so that ids need not grow block by block."""
    order = table["label"].to_numpy(np.int64)
    if order.size == 0:
        return
    table_labels = np.unique(order)
    written = np.zeros(table_labels.size, bool)
    ready: dict[int, list[Polygon]] = {}
    done = waited = 0
    with TiffRegions(labels_file) as labels:
        grid = _measured_grid(labels.height, labels.width, blocks)
        for block in grid:
            ready.update(_owned_outlines(labels, grid, block, table_labels, written))
            stop = done
            while stop < order.size and int(order[stop]) in ready:
                stop += 1
            turn = order[done:stop].tolist()
            for row, label in zip(table.iloc[done:stop].to_dict("records"), turn):
                add(ready[label], row)
            for label in turn:  # after the loop: a label the table repeats is written twice
                ready.pop(label, None)
            written[np.searchsorted(table_labels, turn)] = True
            done, waited = stop, max(waited, len(ready))
    if done < order.size:
        missing = [label for label in order[done:].tolist() if label not in ready]
        raise ValueError(f"labels {missing[:5]} of the nuclei table are not in the label image")
    if waited:
        log.info("%s: up to %d nuclei waited for their turn in the table", labels_file, waited)


def export_nuclei(images: pd.DataFrame, nuclei: pd.DataFrame, kinds: list[str],
                  folder: str | Path, blocks: dict | None = None) -> int:
    """Every segmented (status ok) image of a chunk's table, exported as each of `kinds` (from
    EXPORTS) into `folder`, from its label TIFF and its rows of the chunk's nuclei table.
    Images segmented block by block (labels_file an OME-TIFF, blocks.LABELS_SUFFIX) are read
    block by block, over the blocks measurement had: `blocks` holds segment.block_size and
    segment.block_margin. Returns the number of files written."""
    unknown = sorted(set(kinds) - set(EXPORTS))
    if unknown:
        raise ValueError(f"unknown exports {unknown}; known: {', '.join(EXPORTS)}")
    import tifffile

    Path(folder).mkdir(parents=True, exist_ok=True)
    by_image = {key: group for key, group in nuclei.groupby("image_id", sort=False)}
    written = 0
    for row in images[images["status"] == "ok"].itertuples():
        table = by_image.get(row.image_id, nuclei.iloc[:0])
        with _image_exports(folder, row.image_id, kinds) as add:
            if str(row.labels_file).endswith(LABELS_SUFFIX):
                _export_blocks(add, row.labels_file, table, blocks or {})
            else:
                outlines = _outlines_in_table_order(tifffile.imread(row.labels_file), table)
                for record, polygons in zip(table.to_dict("records"), outlines):
                    add(polygons, record)
        written += len(set(kinds))
        log.info("%s: %d nuclei exported as %s", row.image_id, len(table), ", ".join(kinds))
    return written
