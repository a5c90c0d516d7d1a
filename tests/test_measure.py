"""A job's measurement: the nuclei table's id columns, real files read back, outline overlays."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pandas as pd
import pytest
import tifffile

from nucleiseg.measure import (
    BORDER,
    INTERIOR,
    OVERLAY_MAX_SIDE,
    markdown_table,
    measure_image,
    measure_nuclei,
    nuclei_columns,
    overlay,
)
from nucleiseg.morphometrics import COLUMNS, column_names, measure_labels

README = Path(__file__).resolve().parents[1] / "README.md"
MARKERS = ("<!-- measurements:start -->\n", "<!-- measurements:end -->")


def rgb(colour) -> tuple[int, ...]:
    """An outline colour as overlay writes it: uint8 RGB."""
    return tuple(int(v) for v in np.round(np.asarray(colour) * 255))


GREEN, ORANGE = rgb(INTERIOR), rgb(BORDER)


def three_nuclei():
    """Labels 3 and 5 inside the image, 7 against its right edge; intensity 0..1199."""
    labels = np.zeros((30, 40), np.uint16)
    labels[5:11, 5:13] = 3
    labels[18:22, 10:14] = 5
    labels[15:25, 30:40] = 7
    intensity = np.arange(30 * 40, dtype=np.uint16).reshape(30, 40)
    return labels, intensity


# ---------------------------------------------------------------------------------------------
# measure_image: one image's table
# ---------------------------------------------------------------------------------------------


def test_measure_image_adds_id_columns_before_the_morphometrics():
    labels, intensity = three_nuclei()
    table = measure_image(labels, intensity, 0.5, "img_01", pd.Series({3: 0.8, 7: 0.6}))
    assert list(table.columns) == nuclei_columns()
    assert list(table.columns[:4]) == ["image_id", "label", "touches_border", "confidence"]
    assert list(table.columns[4:]) == column_names(physical=True)[1:]  # all but Label
    assert table["image_id"].tolist() == ["img_01"] * 3
    assert table["label"].tolist() == [3, 5, 7]
    assert table["touches_border"].tolist() == [False, False, True]
    assert table["touches_border"].dtype == bool
    # Confidence by label value, not by row; a nucleus the model gave none has NaN.
    assert table["confidence"].tolist()[::2] == [0.8, 0.6]
    assert np.isnan(table["confidence"].iloc[1])
    expected = measure_labels(labels, intensity, 0.5).drop(columns="Label")
    pd.testing.assert_frame_equal(table.iloc[:, 4:], expected, check_exact=True)
    assert table["AreaShape_Area_um2"].tolist() == [48 * 0.25, 16 * 0.25, 100 * 0.25]


def test_measure_image_without_pixel_size_or_confidences_keeps_every_column():
    labels, intensity = three_nuclei()
    table = measure_image(labels, intensity, None, "img_02")
    assert list(table.columns) == nuclei_columns()
    assert table["confidence"].isna().all()
    micrometre = [name for name in table if name.endswith(("_um", "_um2"))]
    assert micrometre and table[micrometre].isna().all().all()
    assert table["AreaShape_Area"].tolist() == [48, 16, 100]


def test_measure_image_without_nuclei_gives_zero_rows():
    table = measure_image(np.zeros((16, 16), np.uint16), np.ones((16, 16)), 0.5, "empty")
    assert len(table) == 0
    assert list(table.columns) == nuclei_columns()


# ---------------------------------------------------------------------------------------------
# measure_nuclei: a job's table of files
# ---------------------------------------------------------------------------------------------


def _write_image(tmp_path, image_id, image, labels, suffix, pixel_size=None) -> dict:
    """The raw image and its label TIFF as segment_images leaves them, and the table's row."""
    raw = tmp_path / f"{image_id}{suffix}"
    if suffix == ".png":
        iio.imwrite(raw, image)
    else:
        tifffile.imwrite(raw, image)
    labels_file = tmp_path / "labels" / f"{image_id}.tif"
    labels_file.parent.mkdir(exist_ok=True)
    tifffile.imwrite(labels_file, labels)
    return {"image_id": image_id, "file": str(raw), "status": "ok", "reason": "",
            "pixel_size_um": pixel_size, "n_nuclei": int(labels.max()),
            "labels_file": str(labels_file)}


@pytest.fixture
def job(tmp_path):
    """A 40 x 60 8-bit PNG, a 1100 x 30 8-bit TIFF (downscaled overlay), a skipped file."""
    rng = np.random.default_rng(1)
    small = rng.integers(10, 60, (40, 60)).astype(np.uint8)
    small_labels = np.zeros((40, 60), np.uint16)
    small_labels[10:20, 10:25] = 1  # inside
    small_labels[0:8, 40:52] = 2  # against the top edge
    small[small_labels > 0] += 150
    tall = rng.integers(10, 60, (1100, 30)).astype(np.uint8)
    tall_labels = np.zeros((1100, 30), np.uint16)
    tall_labels[500:520, 6:16] = 1  # inside
    tall_labels[1090:1100, 10:20] = 2  # against the bottom edge
    tall[tall_labels > 0] += 150
    rows = [_write_image(tmp_path, "small", small, small_labels, ".png", pixel_size=0.5),
            _write_image(tmp_path, "tall", tall, tall_labels, ".tif"),
            {"image_id": "gone", "file": str(tmp_path / "gone.png"), "status": "skipped",
             "reason": "file not found"}]
    images = pd.DataFrame(rows)
    confidences = pd.DataFrame({"image_id": ["small", "small"], "label": [2, 1],
                                "confidence": [0.7, 0.9]})
    return images, confidences, {"small": (small, small_labels), "tall": (tall, tall_labels)}


def test_measure_nuclei_measures_the_ok_images_on_their_raw_pixels(tmp_path, job):
    images, confidences, raw = job
    nuclei, seconds = measure_nuclei(images, confidences, 0, tmp_path / "overlays")
    assert list(nuclei.columns) == nuclei_columns()
    assert nuclei["image_id"].tolist() == ["small", "small", "tall", "tall"]
    assert nuclei["label"].tolist() == [1, 2, 1, 2]
    assert nuclei["touches_border"].tolist() == [False, True, False, True]
    assert nuclei["confidence"].tolist()[:2] == [0.9, 0.7]
    assert nuclei["confidence"].iloc[2:].isna().all()
    for row in nuclei.itertuples():
        image, labels = raw[row.image_id]
        assert row.Intensity_MeanIntensity == image[labels == row.label].mean()
    assert nuclei["AreaShape_Area_um2"].tolist()[:2] == [150 * 0.25, 96 * 0.25]
    assert nuclei["AreaShape_Area_um2"].iloc[2:].isna().all()
    assert list(seconds.columns) == ["image_id", "seconds_measure", "seconds_overlay"]
    assert seconds["image_id"].tolist() == ["small", "tall"]
    assert (seconds[["seconds_measure", "seconds_overlay"]] >= 0).all().all()


def test_measure_nuclei_writes_one_overlay_per_image(tmp_path, job):
    images, confidences, _ = job
    measure_nuclei(images, confidences, 0, tmp_path / "overlays")
    assert sorted(p.name for p in (tmp_path / "overlays").iterdir()) == ["small.png", "tall.png"]

    small = iio.imread(tmp_path / "overlays" / "small.png")
    assert small.shape == (40, 60, 3) and small.dtype == np.uint8
    assert tuple(small[10, 10]) == GREEN  # corner of nucleus 1's outline
    assert tuple(small[7, 45]) == ORANGE  # bottom side of nucleus 2's outline
    assert tuple(small[15, 17]) not in (GREEN, ORANGE)  # inside nucleus 1: the image

    # 1100 rows > OVERLAY_MAX_SIDE: every second pixel is kept
    step = 2
    assert -(-1100 // OVERLAY_MAX_SIDE) == step
    tall = iio.imread(tmp_path / "overlays" / "tall.png")
    assert tall.shape == (550, 15, 3)
    assert tuple(tall[500 // step, 6 // step]) == GREEN
    assert tuple(tall[1098 // step, 10 // step]) == ORANGE
    assert tuple(tall[510 // step, 10 // step]) not in (GREEN, ORANGE)


def test_measure_nuclei_of_a_job_without_ok_images(tmp_path, job):
    images, confidences, _ = job
    skipped = images[images["status"] != "ok"]
    nuclei, seconds = measure_nuclei(skipped, confidences, 0, tmp_path / "overlays")
    assert len(nuclei) == 0 and list(nuclei.columns) == nuclei_columns()
    assert len(seconds) == 0
    assert list((tmp_path / "overlays").iterdir()) == []


# ---------------------------------------------------------------------------------------------
# overlay
# ---------------------------------------------------------------------------------------------


def test_outline_colours_are_green_inside_and_orange_at_the_border():
    assert GREEN[1] > max(GREEN[0], GREEN[2])
    assert ORANGE[0] > ORANGE[1] > ORANGE[2]


def test_overlay_finds_the_border_at_full_resolution_and_keeps_the_colours_elsewhere():
    rng = np.random.default_rng(2)
    image = np.empty((2051, 24, 3), np.uint8)  # blue-green background, a little noise
    for channel, level in enumerate((40, 120, 200)):
        image[..., channel] = level + rng.integers(0, 20, (2051, 24))
    labels = np.zeros((2051, 24), np.uint16)
    labels[303:330, 3:15] = 1
    labels[304, 0:3] = 1  # reaches the left edge only in a row the downscaling drops
    labels[900:930, 6:18] = 2
    picture = overlay(image, labels)
    step = 3  # ceil(2051 / OVERLAY_MAX_SIDE)
    assert picture.shape == (684, 8, 3) and picture.dtype == np.uint8
    assert labels[::step, ::step][:, 0].max() == 0  # nucleus 1 is off the edge once downscaled
    assert tuple(picture[303 // step, 3 // step]) == ORANGE
    assert tuple(picture[900 // step, 6 // step]) == GREEN
    red, green, blue = (int(v) for v in picture[915 // step, 12 // step])  # inside nucleus 2
    assert blue > green > red
    red, green, blue = (int(v) for v in picture[1500 // step, 4 // step])  # background
    assert blue > green > red


# ---------------------------------------------------------------------------------------------
# The README's table of columns
# ---------------------------------------------------------------------------------------------


def test_readme_table_mirrors_the_columns_of_nuclei_csv():
    text = README.read_text()
    start, end = text.index(MARKERS[0]) + len(MARKERS[0]), text.index(MARKERS[1])
    assert text[start:end] == markdown_table(), (
        "README.md's table of columns is out of date with nucleiseg.morphometrics.COLUMNS; "
        "paste in the output of: PYTHONPATH=workflow/scripts python -c "
        "'from nucleiseg.measure import markdown_table; print(markdown_table(), end=\"\")'")
    for name in nuclei_columns():
        assert f"| `{name}` |" in text[start:end]


def test_readme_table_says_which_columns_are_cellprofilers():
    """Its CellProfiler column: yes for the catalogue's CellProfiler columns, own for the rest."""
    text = README.read_text()
    block = text[text.index(MARKERS[0]):text.index(MARKERS[1])]
    header, _, *rows = [line for line in block.splitlines() if line.startswith("|")]
    assert header.split(" | ")[3] == "CellProfiler"
    said = {row.split(" | ")[0].strip("|` "): row.split(" | ")[3] for row in rows}
    expected = {c.name: "yes" if c.cellprofiler else "own" for c in COLUMNS if c.name != "Label"}
    expected.update(image_id="own", label="own", touches_border="own", confidence="own")
    assert said == expected
    assert said["AreaShape_MinFeretDiameter"] == "yes"
    assert said["AreaShape_MinFeretDiameterSquares"] == "own"
