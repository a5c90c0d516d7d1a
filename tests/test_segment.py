"""Segmenting one chunk of files: the per-image table, label TIFFs, skip and fail modes."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pandas as pd
import pytest
import tifffile

from nucleiseg.errors import BadInputsError, ConfigError
from nucleiseg.inference import Tiling
from nucleiseg.instances import Thresholds
from nucleiseg.model import NucleusModel
from nucleiseg.modelconfig import ModelConfig
from nucleiseg.segment import SegmentSettings, segment_images, write_labels
from nucleiseg.synthetic import make_nuclei
from nucleiseg.tables import CONFIDENCE_COLUMNS, SEGMENTED_COLUMNS, STAGES

TINY = ModelConfig(unet_alpha=0.35, unet_encoder_weights="none",
                   unet_decoder_filters=(16, 16, 8, 8, 8))


@pytest.fixture(scope="module")
def model():
    import keras

    from nucleiseg.network import build_unet

    keras.utils.set_random_seed(0)
    # A random network's maps sit near 0.5: thresholds there give objects to count.
    return NucleusModel(build_unet(TINY), TINY, Thresholds(0.5, 0.5, 0),
                        Tiling(tile_size=128, overlap=32, tiles_per_step=2))


@pytest.fixture
def files(tmp_path):
    good = tmp_path / "in" / "good.png"
    good.parent.mkdir()
    iio.imwrite(good, make_nuclei((90, 120), n_nuclei=6, seed=0).image)
    corrupt = tmp_path / "in" / "broken.tif"
    corrupt.write_bytes(b"II*\x00 not really a tiff")
    return good, corrupt


def _run(model, files, settings, tmp_path):
    out = tmp_path / "out"
    return out, segment_images(model, list(files), settings, out / "labels", out / "probabilities",
                               out / "table.csv", out / "confidence.csv")


def test_skip_mode_writes_a_row_per_file_and_labels_for_the_good_ones(model, files, tmp_path):
    settings = SegmentSettings(on_bad_image="skip", save_probabilities=True)
    out, table = _run(model, files, settings, tmp_path)
    assert list(table.columns) == list(SEGMENTED_COLUMNS)
    assert table["status"].tolist() == ["ok", "skipped"]
    assert "broken.tif" in table.loc[1, "file"] and table.loc[1, "reason"]
    ok = table.loc[0]
    labels = tifffile.imread(ok["labels_file"])
    assert labels.shape == (90, 120) and labels.dtype == np.uint16
    assert ok["n_nuclei"] == labels.max() and (ok["height"], ok["width"]) == (90, 120)
    assert all(ok[f"seconds_{s}"] >= 0 for s in STAGES)
    confidence = pd.read_csv(out / "confidence.csv")
    assert list(confidence.columns) == list(CONFIDENCE_COLUMNS)
    assert len(confidence) == labels.max() and confidence["confidence"].between(0, 1).all()
    maps = tifffile.imread(out / "probabilities" / "good.tif")
    assert maps.shape == (2, 90, 120)
    assert pd.read_csv(out / "table.csv")["status"].tolist() == ["ok", "skipped"]


def test_fail_mode_names_every_bad_file_and_the_setting_and_writes_nothing(model, files,
                                                                          tmp_path):
    """Every file of the chunk is checked before any is segmented: both bad ones are named."""
    notes = files[0].parent / "notes.png"
    notes.write_text("not an image")
    with pytest.raises(BadInputsError) as caught:
        _run(model, [*files, notes], SegmentSettings(), tmp_path)
    message = str(caught.value)
    assert message.startswith("2 of 3 files cannot be used:")
    assert "broken.tif" in message and "notes.png" in message
    assert message.endswith("Or set segment.on_bad_image: skip to leave such files out")
    assert [problem.path.name for problem in caught.value.problems] == ["broken.tif", "notes.png"]
    assert not (tmp_path / "out").exists()  # not even a label folder


def test_settings_are_checked_with_the_config_key():
    with pytest.raises(ConfigError, match="segment.on_bad_image"):
        SegmentSettings(on_bad_image="ignore")
    with pytest.raises(ConfigError, match="segment.pixel_size_um"):
        SegmentSettings(pixel_size_um=-1)
    settings = SegmentSettings.from_config({"nuclear_channel": 1, "pixel_size_um": 0.5})
    assert settings.nuclear_channel == 1 and settings.pixel_size_um == 0.5


def test_pages_setting_is_checked_with_its_key_and_reaches_the_reader(model, tmp_path):
    with pytest.raises(ConfigError, match="segment.pages must be one of refuse, channels, "
                                          "got 'bogus'"):
        SegmentSettings(pages="bogus")
    assert SegmentSettings().pages == "refuse"
    pages = tmp_path / "in" / "pages.tif"
    pages.parent.mkdir()
    tifffile.imwrite(pages, np.stack([make_nuclei((64, 64), n_nuclei=3, seed=s).image
                                      for s in (0, 1)]))  # no axes: channels or planes?
    _, refused = _run(model, [pages], SegmentSettings(on_bad_image="skip"), tmp_path)
    assert refused.loc[0, "status"] == "skipped" and "segment.pages" in refused.loc[0, "reason"]
    settings = SegmentSettings.from_config({"nuclear_channel": 1, "pages": "channels"})
    _, table = _run(model, [pages], settings, tmp_path)
    assert table.loc[0, "description"] == "channel 1 of channels 0-1 (8-bit)"


def test_label_tiffs_carry_the_pixel_size_for_fiji(tmp_path):
    labels = np.arange(12, dtype=np.uint16).reshape(3, 4)
    write_labels(tmp_path / "a.tif", labels, 0.25)
    with tifffile.TiffFile(tmp_path / "a.tif") as tif:
        assert tif.imagej_metadata["unit"] == "micron"
        x_resolution = tif.pages[0].tags["XResolution"].value
        assert x_resolution[0] / x_resolution[1] == pytest.approx(4.0)
        np.testing.assert_array_equal(tif.asarray(), labels)
    many = np.arange(70_000, dtype=np.uint32).reshape(700, 100)
    write_labels(tmp_path / "b.tif", many, 0.25)  # ImageJ has no uint32: a plain TIFF
    with tifffile.TiffFile(tmp_path / "b.tif") as tif:
        assert tif.imagej_metadata is None
        np.testing.assert_array_equal(tif.asarray(), many)


def test_the_rules_pass_segmentation_exactly_its_settings():
    """common.smk lists the segment keys segment_images reads (so that another key reruns no
    segmentation): they must be SegmentSettings' fields."""
    import dataclasses
    import re

    from conftest import REPO

    common = (REPO / "workflow" / "rules" / "common.smk").read_text()
    listed = re.search(r"SEGMENT_SETTING_KEYS = \(([^)]*)\)", common).group(1)
    assert re.findall(r'"(\w+)"', listed) == [f.name for f in dataclasses.fields(SegmentSettings)]
