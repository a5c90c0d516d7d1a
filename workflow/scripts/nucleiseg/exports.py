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
"""

from __future__ import annotations

import json
import logging
import math
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import pandas as pd

from .io import atomic_path
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


def feature_collection(labels: np.ndarray, nuclei: pd.DataFrame) -> dict:
    """One image's nuclei as a GeoJSON FeatureCollection of QuPath detections, one Feature per
    row of `nuclei` (that image's rows of the nuclei table), in its order."""
    outlines = _outlines_in_table_order(labels, nuclei)
    features = []
    for row, polygons in zip(nuclei.to_dict("records"), outlines):
        features.append({
            "type": "Feature",
            "geometry": geojson_geometry(polygons),
            "properties": {
                "objectType": "detection",
                "name": str(int(row["label"])),
                "classification": CLASSIFICATION,
                "measurements": measurements(row),
            },
        })
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


def export_nuclei(images: pd.DataFrame, nuclei: pd.DataFrame, kinds: list[str],
                  folder: str | Path) -> int:
    """Every segmented (status ok) image of a chunk's table, exported as each of `kinds` (from
    EXPORTS) into `folder`, from its label TIFF and its rows of the chunk's nuclei table.
    Returns the number of files written."""
    unknown = sorted(set(kinds) - set(EXPORTS))
    if unknown:
        raise ValueError(f"unknown exports {unknown}; known: {', '.join(EXPORTS)}")
    import tifffile

    Path(folder).mkdir(parents=True, exist_ok=True)
    by_image = {key: group for key, group in nuclei.groupby("image_id", sort=False)}
    written = 0
    for row in images[images["status"] == "ok"].itertuples():
        labels = tifffile.imread(row.labels_file)
        table = by_image.get(row.image_id, nuclei.iloc[:0])
        if GEOJSON in kinds:
            write_geojson(feature_collection(labels, table),
                          export_file(folder, row.image_id, GEOJSON))
        if IMAGEJ_ROIS in kinds:
            write_imagej_rois(imagej_rois(labels, table),
                              export_file(folder, row.image_id, IMAGEJ_ROIS))
        written += len(set(kinds))
        log.info("%s: %d nuclei exported as %s", row.image_id, len(table), ", ".join(kinds))
    return written
