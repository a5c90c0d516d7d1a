"""Exports for viewers: GeoJSON detections (QuPath) and ImageJ ROI sets (Fiji), whose outlines,
filled again, give back each nucleus of the label image."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import roifile
import tifffile
from skimage.draw import disk
from skimage.draw import polygon as fill_polygon

from conftest import run_snakemake, segment_and_measure, write_ome_zarr
from nucleiseg.exports import (
    CLASSIFICATION, EXPORTS, GEOJSON, IMAGEJ_ROIS, export_file, export_nuclei,
    feature_collection, imagej_rois, write_geojson, write_imagej_rois,
)
from nucleiseg.io import write_csv
from nucleiseg.large_io import LabelStore, write_label_pyramid
from nucleiseg.measure import measure_image
from nucleiseg.outlines import nucleus_polygons, signed_area

SHAPE = (40, 50)


def _hand_made_labels() -> np.ndarray:
    """Touching nuclei, nuclei at the border and in a corner, a ring, a single pixel, a nucleus
    of two pieces that touch only at a corner, and labels that skip numbers."""
    labels = np.zeros(SHAPE, np.uint16)
    labels[disk((12, 12), 6, shape=SHAPE)] = 1
    labels[disk((12, 23), 6, shape=SHAPE)] = 2          # touches 1 along a column
    labels[0:5, 30:38] = 3                              # on the top border
    labels[15:40, 44:50] = 4                            # on the right and bottom borders
    labels[0:3, 0:3] = 5                                # in the top-left corner
    ring = np.zeros(SHAPE, bool)
    ring[disk((29, 20), 8, shape=SHAPE)] = True
    ring[disk((29, 20), 4, shape=SHAPE)] = False
    labels[ring] = 7                                    # a ring: a nucleus with a hole
    labels[22, 5] = 9                                   # one pixel
    labels[30, 35] = labels[31, 36] = labels[32, 35] = 12  # pieces meeting at corners
    return labels


def _fill(rings: list[np.ndarray], shape) -> np.ndarray:
    """Pixels whose centre is inside the rings (even-odd), for (x, y) pixel-corner vertices:
    the centre of pixel (r, c) is (c + 0.5, r + 0.5)."""
    mask = np.zeros(shape, bool)
    for ring in rings:
        ring = np.asarray(ring, float)
        inside = np.zeros(shape, bool)
        inside[fill_polygon(ring[:, 1] - 0.5, ring[:, 0] - 0.5, shape)] = True
        mask ^= inside
    return mask


def _geometry_mask(geometry: dict, shape) -> np.ndarray:
    polygons = (geometry["coordinates"] if geometry["type"] == "MultiPolygon"
                else [geometry["coordinates"]])
    return np.logical_or.reduce([_fill(polygon, shape) for polygon in polygons])


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return (a & b).sum() / (a | b).sum()


def _nuclei_csv(labels: np.ndarray, tmp_path: Path, image_id: str = "img") -> pd.DataFrame:
    """The image's rows as nuclei.csv holds them (written and read back, as the rule reads them)."""
    intensity = np.random.default_rng(0).uniform(10, 200, labels.shape)
    path = tmp_path / f"{image_id}_nuclei.csv"
    write_csv(measure_image(labels, intensity, None, image_id), path)
    return pd.read_csv(path, dtype={"image_id": str})


# --- outlines ------------------------------------------------------------------------------------


def test_outlines_fill_back_to_every_nucleus_exactly():
    labels = _hand_made_labels()
    polygons = nucleus_polygons(labels)
    assert sorted(polygons) == [1, 2, 3, 4, 5, 7, 9, 12]
    for label, pieces in polygons.items():
        filled = np.logical_or.reduce([_fill(polygon, SHAPE) for polygon in pieces])
        # Pixel edges are exact: IoU 1, above the 0.95 asked of any tracing.
        assert _iou(filled, labels == label) == 1.0, label
        area = sum(signed_area(ring) for polygon in pieces for ring in polygon)
        assert area == (labels == label).sum(), label


def test_outline_conventions_pixel_corners_holes_and_pieces():
    polygons = nucleus_polygons(_hand_made_labels())
    assert [ring.tolist() for ring in polygons[9][0]] == [[[5, 22], [6, 22], [6, 23], [5, 23]]]
    assert polygons[5][0][0].tolist() == [[0, 0], [3, 0], [3, 3], [0, 3]]  # the image's corner
    assert polygons[4][0][0].max(axis=0).tolist() == [50, 40]  # the image's right/bottom edge
    ring = polygons[7]
    assert len(ring) == 1 and len(ring[0]) == 2  # one piece: its exterior and its hole
    assert signed_area(ring[0][0]) > 0 > signed_area(ring[0][1])
    assert len(polygons[12]) == 3  # 4-connected pieces: corner contacts do not join pixels


def test_random_shapes_fill_back_exactly():
    """Ragged shapes with holes, corner contacts and islands: every nucleus comes back."""
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 6, (60, 70)).astype(np.uint16) * (rng.random((60, 70)) < 0.6)
    polygons = nucleus_polygons(labels)
    for label, pieces in polygons.items():
        filled = np.logical_or.reduce([_fill(polygon, labels.shape) for polygon in pieces])
        assert _iou(filled, labels == label) == 1.0, label


# --- GeoJSON -------------------------------------------------------------------------------------


def test_geojson_has_one_detection_per_nucleus_with_its_measurements(tmp_path):
    labels = _hand_made_labels()
    nuclei = _nuclei_csv(labels, tmp_path)
    path = tmp_path / "img.geojson"
    write_geojson(feature_collection(labels, nuclei), path)
    collection = json.loads(path.read_text())  # strict JSON: no NaN
    assert collection["type"] == "FeatureCollection"
    features = collection["features"]
    assert len(features) == len(nuclei) == 8
    for feature, row in zip(features, nuclei.to_dict("records")):
        properties = feature["properties"]
        assert feature["type"] == "Feature" and properties["objectType"] == "detection"
        assert properties["classification"] == CLASSIFICATION
        assert properties["name"] == str(row["label"])
        label_mask = labels == row["label"]
        assert _iou(_geometry_mask(feature["geometry"], SHAPE), label_mask) >= 0.95
        measured = properties["measurements"]
        assert all(isinstance(v, (int, float)) for v in measured.values())
        # Strict JSON has no NaN or infinity (FormFactor of a 1-pixel nucleus is inf, as in
        # CellProfiler): such values are left out, as empty ones are.
        expected = {k: v for k, v in row.items()
                    if k != "image_id" and not pd.isna(v) and np.isfinite(float(v))}
        assert set(measured) == set(expected)
        for name, value in expected.items():
            assert measured[name] == pytest.approx(float(value), rel=1e-12), name
    geometry = {f["properties"]["name"]: f["geometry"] for f in features}
    assert geometry["7"]["type"] == "Polygon" and len(geometry["7"]["coordinates"]) == 2
    assert geometry["12"]["type"] == "MultiPolygon"
    assert all(ring[0] == ring[-1] for ring in geometry["1"]["coordinates"])  # GeoJSON closes


def test_geojson_leaves_out_empty_measurements_and_keeps_the_table_order(tmp_path):
    labels = _hand_made_labels()
    nuclei = _nuclei_csv(labels, tmp_path).iloc[::-1]
    features = feature_collection(labels, nuclei)["features"]
    assert [f["properties"]["name"] for f in features] == [str(n) for n in nuclei["label"]]
    measured = features[0]["properties"]["measurements"]
    assert "confidence" not in measured and "AreaShape_Area_um2" not in measured  # empty (NaN)
    assert measured["touches_border"] in (0, 1) and "image_id" not in measured


def test_an_image_without_nuclei_gives_an_empty_collection(tmp_path):
    labels = np.zeros(SHAPE, np.uint16)
    nuclei = _nuclei_csv(labels, tmp_path)
    assert feature_collection(labels, nuclei) == {"type": "FeatureCollection", "features": []}


def test_a_table_label_missing_from_the_label_image_is_an_error(tmp_path):
    labels = _hand_made_labels()
    nuclei = _nuclei_csv(labels, tmp_path)
    labels[labels == 9] = 0
    with pytest.raises(ValueError, match=r"labels \[9\]"):
        feature_collection(labels, nuclei)


# --- ImageJ ROIs ---------------------------------------------------------------------------------


def test_imagej_roi_set_reads_back_one_roi_per_nucleus_in_table_order(tmp_path):
    labels = _hand_made_labels()
    nuclei = _nuclei_csv(labels, tmp_path)
    path = tmp_path / "img_rois.zip"
    write_imagej_rois(imagej_rois(labels, nuclei), path)
    rois = roifile.roiread(path)
    assert [roi.name for roi in rois] == [str(label) for label in nuclei["label"]]
    for roi, label in zip(rois, nuclei["label"]):
        filled = _fill(roi.coordinates(multi=True), SHAPE)
        assert _iou(filled, labels == label) >= 0.95, label
        assert _iou(filled, labels == label) == 1.0, label  # pixel edges: exact
    kinds = {roi.name: roi.roitype for roi in rois}
    assert kinds["1"] == roifile.ROI_TYPE.POLYGON and kinds["9"] == roifile.ROI_TYPE.POLYGON
    # The ring and the nucleus in pieces are composite (shape) ROIs, filled even-odd by ImageJ.
    assert kinds["7"] == kinds["12"] == roifile.ROI_TYPE.RECT
    assert rois[nuclei["label"].tolist().index(7)].composite


def test_polygon_roi_bounds_are_the_nucleus_bounding_box(tmp_path):
    labels = _hand_made_labels()
    rois = imagej_rois(labels, _nuclei_csv(labels, tmp_path))
    roi = rois[0]  # label 1
    rows, cols = np.nonzero(labels == 1)
    assert (roi.left, roi.top) == (cols.min(), rows.min())
    assert (roi.right, roi.bottom) == (cols.max() + 1, rows.max() + 1)


# --- a chunk -------------------------------------------------------------------------------------


def test_export_nuclei_writes_each_segmented_image_of_a_chunk(tmp_path):
    labels = _hand_made_labels()
    tifffile.imwrite(tmp_path / "a.tif", labels)
    tifffile.imwrite(tmp_path / "b.tif", np.zeros(SHAPE, np.uint16))
    images = pd.DataFrame({"image_id": ["a", "b", "c"], "status": ["ok", "ok", "skipped"],
                           "labels_file": [str(tmp_path / "a.tif"), str(tmp_path / "b.tif"), ""]})
    nuclei = _nuclei_csv(labels, tmp_path, "a")
    folder = tmp_path / "exports"
    assert export_nuclei(images, nuclei, list(EXPORTS), folder) == 4
    assert sorted(p.name for p in folder.iterdir()) == [
        "a.geojson", "a_rois.zip", "b.geojson", "b_rois.zip"]
    assert len(json.loads(export_file(folder, "a", GEOJSON).read_text())["features"]) == 8
    assert len(roifile.roiread(export_file(folder, "a", IMAGEJ_ROIS))) == 8
    assert json.loads(export_file(folder, "b", GEOJSON).read_text())["features"] == []
    with pytest.raises(ValueError, match="unknown exports"):
        export_nuclei(images, nuclei, ["svg"], folder)


# --- a large image, block by block ---------------------------------------------------------------

BLOCK, MARGIN = 64, 24  # tests/test_blocks.py's: blocks far smaller than the image


def _whole_exports(labels: np.ndarray, nuclei: pd.DataFrame, folder: Path) -> Path:
    """The whole-image export of these labels (the reference), as img.geojson, img_rois.zip."""
    write_geojson(feature_collection(labels, nuclei), export_file(folder, "img", GEOJSON))
    write_imagej_rois(imagej_rois(labels, nuclei), export_file(folder, "img", IMAGEJ_ROIS))
    return folder


def _block_exports(labels_file: Path, nuclei: pd.DataFrame, folder: Path) -> Path:
    images = pd.DataFrame({"image_id": ["img"], "status": ["ok"],
                           "labels_file": [str(labels_file)]})
    assert export_nuclei(images, nuclei, list(EXPORTS), folder,
                         {"block_size": BLOCK, "block_margin": MARGIN}) == 2
    return folder


def _assert_same_exports(whole: Path, blocks: Path) -> None:
    """The same GeoJSON (text and parsed) and the same ROI set entries (names, order, bytes)."""
    text = export_file(blocks, "img", GEOJSON).read_text()
    assert json.loads(text) == json.loads(export_file(whole, "img", GEOJSON).read_text())
    assert text == export_file(whole, "img", GEOJSON).read_text()
    with zipfile.ZipFile(export_file(whole, "img", IMAGEJ_ROIS)) as a, \
            zipfile.ZipFile(export_file(blocks, "img", IMAGEJ_ROIS)) as b:
        assert a.namelist() == b.namelist()
        assert [a.read(n) for n in a.namelist()] == [b.read(n) for n in b.namelist()]
        assert [i.compress_type for i in a.infolist()] == [i.compress_type for i in b.infolist()]


def _label_ome_tiff(labels: np.ndarray, path: Path) -> Path:
    """Labels as segment_blocks writes them: a tiled, pyramidal OME-TIFF."""
    store = LabelStore(path.parent, *labels.shape)
    try:
        store.write(slice(0, labels.shape[0]), slice(0, labels.shape[1]), labels)
        write_label_pyramid(path, store, int(labels.max()), None)
    finally:
        store.close()
    return path


def test_a_large_images_exports_block_by_block_are_the_whole_images(pointwise_model, tmp_path,
                                                                    caplog):
    """Segmented and measured block by block (nuclei.csv as the rule reads it), then exported
    block by block: the files of the whole-image export of the same labels, byte for byte; ids
    grow block by block, so no nucleus waits for another block's."""
    from nucleiseg.segment import SegmentSettings
    from nucleiseg.synthetic import make_nuclei

    sample = make_nuclei((170, 200), n_nuclei=40, touching_pairs=4, bit_depth=16, seed=5)
    image = tmp_path / "img.tif"
    tifffile.imwrite(image, sample.image, tile=(64, 64))
    table, nuclei, _ = segment_and_measure(
        pointwise_model, image, SegmentSettings(block_size=BLOCK, block_margin=MARGIN),
        tmp_path / "run")
    write_csv(nuclei, tmp_path / "nuclei.csv")
    nuclei = pd.read_csv(tmp_path / "nuclei.csv", dtype={"image_id": str})
    labels_file = Path(table.loc[0, "labels_file"])
    assert labels_file.name == "img.ome.tif" and len(nuclei) > 20
    labels = tifffile.imread(labels_file)
    crossing = [label for label in nuclei["label"]
                if len(np.unique(np.nonzero(labels == label)[1] // BLOCK)) > 1]
    assert crossing  # nuclei across a block border
    caplog.set_level("INFO", logger="nucleiseg.exports")
    _assert_same_exports(_whole_exports(labels, nuclei, tmp_path / "whole"),
                         _block_exports(labels_file, nuclei, tmp_path / "blocks"))
    assert "waited" not in caplog.text


def test_block_wise_exports_hold_each_nucleus_once_and_whole_in_any_label_order(tmp_path):
    """Labels numbered at random (not block by block) and a nucleus wider than a window (cut
    there, owned by several blocks): every nucleus once, whole, in the table's order."""
    from nucleiseg.synthetic import make_nuclei

    labels = make_nuclei((200, 230), n_nuclei=60, touching_pairs=6, seed=2).labels
    labels[100:104, 10:170] = labels.max() + 1  # a bar across three blocks' cores and windows
    numbers = np.random.default_rng(1).permutation(int(labels.max())) + 1
    labels = np.concatenate([[0], numbers])[labels].astype(np.uint16)
    bar = int(labels[101, 100])
    labels_file = _label_ome_tiff(labels, tmp_path / "img.ome.tif")
    nuclei = _nuclei_csv(labels, tmp_path)
    blocks = _block_exports(labels_file, nuclei, tmp_path / "blocks")
    _assert_same_exports(_whole_exports(labels, nuclei, tmp_path / "whole"), blocks)
    features = json.loads(export_file(blocks, "img", GEOJSON).read_text())["features"]
    assert [f["properties"]["name"] for f in features] == [str(n) for n in nuclei["label"]]
    for feature in features:
        label = int(feature["properties"]["name"])
        geometry = feature["geometry"]
        polygons = (geometry["coordinates"] if geometry["type"] == "MultiPolygon"
                    else [geometry["coordinates"]])
        area = sum(signed_area(np.array(ring[:-1])) for polygon in polygons for ring in polygon)
        assert area == (labels == label).sum(), label
    assert [f["properties"]["name"] for f in features].count(str(bar)) == 1
    missing = pd.concat([nuclei, nuclei.iloc[[0]].assign(label=9999)], ignore_index=True)
    with pytest.raises(ValueError, match=r"labels \[9999\]"):
        _block_exports(labels_file, missing, tmp_path / "broken")
    assert not list((tmp_path / "broken").iterdir())  # nothing half-written is left


# --- the workflow --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    """A tiny untrained network with thresholds at its maps' medians: it finds many ragged
    objects, which is all an export needs."""
    import keras

    from nucleiseg.inference import Tiling
    from nucleiseg.instances import Thresholds
    from nucleiseg.modelconfig import ModelConfig
    from nucleiseg.modelfolder import CONFIG_FILE, MODEL_FILE, THRESHOLDS_FILE
    from nucleiseg.network import build_unet
    from nucleiseg.predict import predict_tiled
    from nucleiseg.synthetic import make_nuclei
    from nucleiseg.thresholds import save_thresholds

    config = ModelConfig(unet_alpha=0.35, unet_encoder_weights="none",
                         unet_decoder_filters=(16, 16, 8, 8, 8))
    keras.utils.set_random_seed(0)
    network = build_unet(config)
    image = make_nuclei((96, 128), n_nuclei=8, seed=0).image.astype(np.float32) / 255
    maps = predict_tiled(network, image, Tiling(tile_size=128, overlap=32, tiles_per_step=2))
    folder = tmp_path_factory.mktemp("model")
    network.save(folder / MODEL_FILE)
    config.save(folder / CONFIG_FILE)
    save_thresholds(Thresholds(foreground=float(np.median(maps[..., 0])),
                               contour=float(np.median(maps[..., 1])), min_size=0),
                    folder / THRESHOLDS_FILE)
    return folder


@pytest.mark.slow
def test_a_batch_run_with_exports_writes_them_for_every_image(tmp_path, model_folder):
    """Also the real run of an OME-Zarr image (a folder) in a batch: listed, segmented,
    measured and exported as the files beside it."""
    import imageio.v3 as iio

    from nucleiseg.synthetic import make_nuclei

    batch = tmp_path / "plate"
    batch.mkdir()
    for seed in (1, 2, 3):
        iio.imwrite(batch / f"well{seed}.png", make_nuclei((96, 128), n_nuclei=8, seed=seed).image)
    write_ome_zarr(batch / "well4.ome.zarr", make_nuclei((96, 128), n_nuclei=8, seed=4).image,
                   axes="yx", pixel_size=0.5)
    config = {"batches": {"plate": str(batch)},
              "segment": {"model": str(model_folder), "tile_size": 128, "overlap": 32,
                          "images_per_chunk": 2, "exports": ["geojson", "imagej_rois"]}}
    run_snakemake(tmp_path / "work", config)
    out = tmp_path / "work" / "results" / "batches" / "plate"
    images = pd.read_csv(out / "images.csv", dtype={"image_id": str})
    nuclei = pd.read_csv(out / "nuclei.csv", dtype={"image_id": str})
    assert len(images) == 4 and len(nuclei) > 0
    zarr_row = images.set_index("image_id").loc["well4"]
    assert zarr_row["file"].endswith("well4.ome.zarr") and zarr_row["n_nuclei"] > 0
    assert (zarr_row["pixel_size_um"], zarr_row["pixel_size_source"]) == (0.5, "ome-zarr")
    assert (nuclei["image_id"] == "well4").sum() == zarr_row["n_nuclei"]
    for row in images.itertuples():
        labels_file = tmp_path / "work" / row.labels_file  # relative to the working folder
        folder = out / "exports" / labels_file.parent.name  # exports/<chunk>/ as labels/<chunk>/
        labels = tifffile.imread(labels_file)
        table = nuclei[nuclei["image_id"] == row.image_id]
        features = json.loads(export_file(folder, row.image_id, GEOJSON).read_text())["features"]
        rois = roifile.roiread(export_file(folder, row.image_id, IMAGEJ_ROIS))
        rois = rois if isinstance(rois, list) else [rois]
        assert len(features) == len(rois) == len(table) == row.n_nuclei
        assert [r.name for r in rois] == [str(label) for label in table["label"]]
        for feature, label in zip(features, table["label"]):
            assert _iou(_geometry_mask(feature["geometry"], labels.shape), labels == label) == 1.0
