"""OME-Zarr images in a batch: NGFF 0.4 (zarr v2) and 0.5 (zarr v3) stores read as the same
data written as an OME-TIFF is read, whole or block by block, refused by the same rules, and
listed as one image each."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import tifffile

from conftest import segment_and_measure, write_ome_zarr
from nucleiseg.batch_io import check_images, is_large_image, read_batch_image
from nucleiseg.batches import check_unique_ids, find_batch_files, image_id
from nucleiseg.errors import BadInputError, ConfigError
from nucleiseg.large_io import TiffRegions, ZarrRegions, open_regions
from nucleiseg.segment import SegmentSettings
from nucleiseg.synthetic import make_nuclei

PIXEL_SIZE = 0.325
BLOCK, MARGIN = 64, 24  # as tests/test_blocks.py: blocks far smaller than the image


def _two_channels(shape=(100, 120), seed=3) -> np.ndarray:
    """(c, y, x) uint16: cytoplasm first, nuclei second (segment.nuclear_channel: 1)."""
    sample = make_nuclei(shape, n_nuclei=25, radius=(5, 8), touching_pairs=3, bit_depth=16,
                         channels=2, seed=seed)
    return np.stack([sample.image[..., 1], sample.image[..., 0]])


def _ome_tiff(path, data, axes="CYX", **kwargs):
    tifffile.imwrite(path, data, ome=True, photometric="minisblack",
                     metadata={"axes": axes, "PhysicalSizeX": PIXEL_SIZE,
                               "PhysicalSizeY": PIXEL_SIZE, "PhysicalSizeXUnit": "µm"},
                     **kwargs)
    return path


@pytest.mark.parametrize("zarr_format", [2, 3], ids=["ngff0.4", "ngff0.5"])
def test_an_ome_zarr_reads_as_the_same_ome_tiff(tmp_path, zarr_format):
    data = _two_channels()
    tiff = read_batch_image(_ome_tiff(tmp_path / "a.ome.tif", data), nuclear_channel=1)
    path = write_ome_zarr(tmp_path / "a.ome.zarr", data, zarr_format=zarr_format,
                          pixel_size=PIXEL_SIZE, chunks=(1, 32, 32))
    got = read_batch_image(path, nuclear_channel=1)
    assert got.id == tiff.id == "a"
    np.testing.assert_array_equal(got.image, tiff.image)
    np.testing.assert_array_equal(got.intensity, data[1])
    assert got.description == tiff.description == "channel 1 of channels 0-1 (16-bit)"
    assert (got.pixel_size_um, got.pixel_size_source) == (pytest.approx(PIXEL_SIZE), "ome-zarr")
    assert tiff.pixel_size_source == "ome"
    assert not is_large_image(path, 2048) and is_large_image(path, BLOCK)
    with open_regions(path, nuclear_channel=1) as regions:
        assert isinstance(regions, ZarrRegions)
        with TiffRegions(_ome_tiff(tmp_path / "t.ome.tif", data, tile=(32, 32)), 1) as tiled:
            for name in ("height", "width", "channels", "dtype", "description"):
                assert getattr(regions, name) == getattr(tiled, name), name
            assert regions.pixel_size == (pytest.approx(PIXEL_SIZE), "ome-zarr")
            for ys, xs in ((slice(0, 100), slice(0, 120)), (slice(13, 77), slice(30, 31))):
                np.testing.assert_array_equal(regions.read(ys, xs), tiled.read(ys, xs))


@pytest.mark.parametrize("scale, unit, expected", [
    (650.0, "nanometer", 0.325),  # times the multiscales-level 0.5 below
    (0.00065, "millimeter", 0.325),
    (0.65, "parsec", None),  # not a unit of length nucleiseg knows: no pixel size
])
def test_pixel_size_is_the_scales_product_in_micrometres(tmp_path, scale, unit, expected):
    data = _two_channels()[1]
    path = write_ome_zarr(tmp_path / "a.ome.zarr", data, axes="yx", pixel_size=scale, unit=unit)
    meta = json.loads((path / "zarr.json").read_text())
    meta["attributes"]["ome"]["multiscales"][0]["coordinateTransformations"] = [
        {"type": "scale", "scale": [0.5, 0.5]}]
    (path / "zarr.json").write_text(json.dumps(meta))
    got = read_batch_image(path)
    assert got.pixel_size_um == (None if expected is None else pytest.approx(expected))
    assert got.pixel_size_source == ("" if expected is None else "ome-zarr")


def test_axes_given_as_names_ngff_0_3_are_read_without_a_pixel_size(tmp_path):
    data = _two_channels()
    path = write_ome_zarr(tmp_path / "old.ome.zarr", data, zarr_format=2)
    attributes = json.loads((path / ".zattrs").read_text())
    attributes["multiscales"][0].update(version="0.3", axes=["c", "y", "x"])
    del attributes["multiscales"][0]["datasets"][0]["coordinateTransformations"]
    (path / ".zattrs").write_text(json.dumps(attributes))
    got = read_batch_image(path, nuclear_channel=1)
    np.testing.assert_array_equal(got.intensity, data[1])
    assert (got.pixel_size_um, got.pixel_size_source) == (None, "")


def test_a_bioformats2raw_folder_reads_its_first_image(tmp_path):
    data = _two_channels()
    folder = tmp_path / "scan.ome.zarr"
    write_ome_zarr(folder / "0", data, zarr_format=2, pixel_size=PIXEL_SIZE)
    (folder / ".zgroup").write_text('{"zarr_format": 2}')
    (folder / ".zattrs").write_text('{"bioformats2raw.layout": 3}')
    got = read_batch_image(folder, nuclear_channel=1)
    assert got.id == "scan"
    np.testing.assert_array_equal(got.intensity, data[1])


def test_block_wise_gives_the_tiled_tiffs_labels_and_nuclei(pointwise_model, tmp_path):
    """Forced through the block-wise path, an OME-Zarr gives what the same pixels give as a
    tiled OME-TIFF: labels, nuclei table, images.csv row (its file and source aside)."""
    data = _two_channels((170, 200), seed=5)
    settings = SegmentSettings(nuclear_channel=1, block_size=BLOCK, block_margin=MARGIN)
    (tmp_path / "tif").mkdir()
    tiff = _ome_tiff(tmp_path / "tif" / "field.ome.tif", data, tile=(64, 64))
    zarr = write_ome_zarr(tmp_path / "zarr" / "field.ome.zarr", data, pixel_size=PIXEL_SIZE,
                          chunks=(1, 48, 48))
    expected = segment_and_measure(pointwise_model, tiff, settings, tmp_path / "out_tif", 1)
    got = segment_and_measure(pointwise_model, zarr, settings, tmp_path / "out_zarr", 1)
    for table in (expected[0], got[0]):
        assert table.loc[0, "labels_file"].endswith("field.ome.tif")  # block by block
    np.testing.assert_array_equal(tifffile.imread(got[0].loc[0, "labels_file"]),
                                  tifffile.imread(expected[0].loc[0, "labels_file"]))
    assert len(got[1]) > 10
    pd.testing.assert_frame_equal(got[1], expected[1])
    assert (got[2].loc[0, "pixel_size_source"], expected[2].loc[0, "pixel_size_source"]) == (
        "ome-zarr", "ome")
    same = [c for c in expected[2] if c not in ("file", "labels_file", "pixel_size_source")
            and not c.startswith("seconds_")]
    pd.testing.assert_frame_equal(got[2][same], expected[2][same])


@pytest.mark.parametrize("axes, problem", [("zyx", "is a 3D stack (Z=5 planes)"),
                                           ("tyx", "is a time series (T=5 frames)")])
def test_stacks_are_refused_as_a_tiff_stack_is(tmp_path, axes, problem):
    data = np.stack([_two_channels()[1] + k for k in range(5)])
    tiff = _ome_tiff(tmp_path / "stack.ome.tif", data, axes=axes.upper())
    zarr = write_ome_zarr(tmp_path / "stack.ome.zarr", data, axes=axes, zarr_format=2)
    errors = []
    for path in (tiff, zarr):
        with pytest.raises(BadInputError) as caught:
            read_batch_image(path)
        errors.append(caught.value)
    assert errors[0].problem == errors[1].problem == problem
    assert errors[0].hint == errors[1].hint and errors[1].path == zarr
    with pytest.raises(BadInputError, match=re.escape(problem)):  # the large-image route too
        check_images([zarr], block_size=BLOCK)


def test_folders_without_usable_metadata_are_named(tmp_path):
    bad = tmp_path / "bad.zarr"
    bad.mkdir()
    with pytest.raises(BadInputError) as caught:
        check_images([bad])
    assert caught.value.path == bad and str(bad) in str(caught.value)
    assert "no zarr group metadata (zarr.json or .zattrs)" in caught.value.problem
    assert "NGFF multiscales metadata" in caught.value.hint
    no_array = write_ome_zarr(tmp_path / "gone.ome.zarr", _two_channels()[1], axes="yx")
    for child in (no_array / "0").rglob("*"):
        if child.is_file():
            child.unlink()
    with pytest.raises(BadInputError, match="full-resolution array 0/ cannot be opened"):
        read_batch_image(no_array)
    (tmp_path / "file.zarr").write_text("not a folder")
    with pytest.raises(BadInputError, match="is a file, not an OME-Zarr folder"):
        read_batch_image(tmp_path / "file.zarr")


def test_zarr_folders_are_listed_as_images_named_by_their_stem(tmp_path):
    assert image_id(tmp_path / "x.ome.zarr") == "x" and image_id(tmp_path / "y.zarr") == "y"
    with pytest.raises(ConfigError, match="same image id"):
        check_unique_ids([tmp_path / "a.ome.tif", tmp_path / "a.ome.zarr"])
    write_ome_zarr(tmp_path / "b.ome.zarr", _two_channels()[1], axes="yx")
    (tmp_path / "a.tif").write_bytes(b"x")
    (tmp_path / "other").mkdir()
    listed = [tmp_path / "a.tif", tmp_path / "b.ome.zarr"]
    assert find_batch_files(tmp_path) == listed
    assert find_batch_files(f"{tmp_path}/**") == listed  # nothing inside the .zarr folder
    assert find_batch_files(f"{tmp_path}/*.zarr") == [tmp_path / "b.ome.zarr"]
    assert find_batch_files(tmp_path / "b.ome.zarr") == [tmp_path / "b.ome.zarr"]  # one image
