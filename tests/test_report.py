"""A job's measurement and the batch tables, on hand-made label images: empty ones included."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pandas as pd
import pytest
import tifffile

from conftest import assert_figure
from nucleiseg.measure import measure_nuclei, nuclei_columns, overlay
from nucleiseg.report import plot_distributions, plot_montage, write_batch_tables
from nucleiseg.tables import SEGMENTED_COLUMNS, STAGES


def _segmented(tmp_path, name, labels, image, pixel_size=None):
    """What segment_images leaves for one image: the raw file, its labels, its table row."""
    raw = tmp_path / f"{name}.tif"
    tifffile.imwrite(raw, image)
    labels_file = tmp_path / f"{name}_labels.tif"
    tifffile.imwrite(labels_file, labels)
    return {"image_id": name, "file": str(raw), "status": "ok", "reason": "",
            "description": "16-bit grayscale", "height": image.shape[0], "width": image.shape[1],
            "pixel_size_um": pixel_size, "pixel_size_source": "config" if pixel_size else "",
            "n_nuclei": int(labels.max()), "labels_file": str(labels_file),
            **{f"seconds_{s}": 0.1 for s in STAGES}}


@pytest.fixture
def batch(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.integers(100, 200, (64, 80)).astype(np.uint16)
    labels = np.zeros((64, 80), np.uint16)
    labels[10:20, 10:22] = 1  # inside
    labels[0:8, 40:50] = 2  # touches the top border
    image[labels > 0] += 1000
    rows = [_segmented(tmp_path, "two", labels, image, pixel_size=0.5),
            _segmented(tmp_path, "empty", np.zeros((64, 80), np.uint16), image)]
    rows.append({"image_id": "bad", "file": str(tmp_path / "bad.tif"), "status": "skipped",
                 "reason": "cannot be decoded as TIFF"})
    segmented = pd.DataFrame(rows, columns=list(SEGMENTED_COLUMNS))
    confidences = pd.DataFrame({"image_id": ["two", "two"], "label": [1, 2],
                                "confidence": [0.9, 0.7]})
    return segmented, confidences, image, labels


def test_an_image_without_nuclei_gives_zero_rows_and_a_row_of_zeros(tmp_path, batch):
    segmented, confidences, image, labels = batch
    nuclei, seconds = measure_nuclei(segmented, confidences, 0, tmp_path / "overlays")
    assert list(nuclei.columns) == nuclei_columns()
    assert nuclei["image_id"].tolist() == ["two", "two"]
    assert nuclei["touches_border"].tolist() == [False, True]
    assert nuclei["confidence"].tolist() == [0.9, 0.7]
    assert nuclei["AreaShape_Area_um2"].tolist() == [120 * 0.25, 80 * 0.25]
    assert nuclei["Intensity_MeanIntensity"].iloc[0] == pytest.approx(image[labels == 1].mean())
    assert sorted(seconds["image_id"]) == ["empty", "two"]
    assert sorted(p.name for p in (tmp_path / "overlays").iterdir()) == ["empty.png", "two.png"]

    out = tmp_path / "out"
    images = write_batch_tables(segmented, nuclei, seconds, out / "nuclei.csv",
                                out / "images.csv", out / "skipped.csv")
    images = images.set_index("image_id")
    assert images.loc["empty", "n_nuclei"] == 0 and images.loc["empty", "coverage"] == 0
    assert np.isnan(images.loc["empty", "mean_area"])
    assert images.loc["two", "n_touching_border"] == 1
    assert images.loc["two", "coverage"] == pytest.approx(200 / (64 * 80))
    assert pd.read_csv(out / "skipped.csv")["image_id"].tolist() == ["bad"]
    written = pd.read_csv(out / "images.csv")  # whole numbers stay whole beside a skipped file
    assert {c: str(written[c].dtype) for c in ("height", "width", "n_nuclei")} == {
        "height": "int64", "width": "int64", "n_nuclei": "int64"}
    plot_montage(images.reset_index(), [tmp_path / "overlays"], out / "montage.png", 24)
    plot_distributions(nuclei, images.reset_index(), out / "distributions.png")
    assert_figure(out / "montage.png", min_ink=0.3)  # the images themselves, not empty panels
    assert_figure(out / "distributions.png", min_colour=0.05)  # histogram bars, not empty axes


def test_a_batch_without_any_nucleus_still_gets_its_tables_and_figures(tmp_path, batch):
    segmented, _, _, _ = batch
    segmented = segmented[segmented["image_id"] != "two"]
    empty_conf = pd.DataFrame(columns=["image_id", "label", "confidence"])
    nuclei, seconds = measure_nuclei(segmented, empty_conf, 0, tmp_path / "overlays")
    assert len(nuclei) == 0 and list(nuclei.columns) == nuclei_columns()
    out = tmp_path / "out"
    images = write_batch_tables(segmented, nuclei, seconds, out / "nuclei.csv",
                                out / "images.csv", out / "skipped.csv")
    assert images["n_nuclei"].tolist() == [0]
    assert list(pd.read_csv(out / "nuclei.csv").columns) == nuclei_columns()
    plot_distributions(nuclei, images, out / "distributions.png")
    assert_figure(out / "distributions.png")  # empty axes, titled n=0: drawn, not blank


def test_overlay_outlines_border_nuclei_in_their_own_colour():
    image = np.zeros((40, 40, 1), np.uint8)
    image[5:35, 5:35] = 100
    labels = np.zeros((40, 40), np.uint16)
    labels[10:20, 10:20] = 1
    labels[0:6, 25:35] = 2
    picture = overlay(image, labels)
    assert picture.shape == (40, 40, 3) and picture.dtype == np.uint8
    assert tuple(picture[10, 15]) == (26, 230, 51)  # the interior nucleus's outline: green
    assert tuple(picture[5, 30]) == (255, 140, 0)  # the border one's: orange
    assert tuple(picture[15, 15]) != (26, 230, 51)  # inside is the image, not outline


def test_large_images_are_drawn_downscaled():
    labels = np.zeros((3000, 1500), np.uint16)
    labels[100:200, 100:200] = 1
    picture = overlay(np.ones((3000, 1500, 1), np.uint16), labels)
    assert max(picture.shape[:2]) <= 1024
    iio.imwrite("/dev/null", picture, extension=".png")


def test_distributions_leave_out_infinite_values(tmp_path):
    """A nucleus of one or two pixels has FormFactor inf, as CellProfiler writes it: the
    histograms show the others instead of failing on an infinite range."""
    labels = np.zeros((40, 40), np.uint16)
    labels[5:15, 5:15] = 1
    labels[30, 30] = 2  # one pixel: perimeter 0
    image = np.full((40, 40), 100, np.uint16)
    image[labels > 0] = 900
    nuclei, _ = measure_nuclei(pd.DataFrame([_segmented(tmp_path, "a", labels, image)]),
                               pd.DataFrame({"image_id": ["a", "a"], "label": [1, 2],
                                             "confidence": [0.9, 0.8]}), 0, tmp_path / "o")
    assert np.isinf(nuclei["AreaShape_FormFactor"]).sum() == 1
    images = pd.DataFrame({"n_nuclei": [2]})
    plot_distributions(nuclei, images, tmp_path / "distributions.png")
    assert_figure(tmp_path / "distributions.png", min_colour=0.05)
