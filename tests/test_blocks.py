"""Large images block by block: block geometry, stitching, region reading, percentiles, the
pyramidal label OME-TIFF, and the batch tables equal to the whole-image path's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tifffile
from scipy import ndimage as ndi

from conftest import segment_and_measure
from nucleiseg.blocks import BlockGrid, owned, takes_blocks
from nucleiseg.errors import ConfigError
from nucleiseg.inference import Tiling
from nucleiseg.instances import Thresholds
from nucleiseg.large_io import (LabelStore, TiffRegions, image_percentiles,
                                write_label_pyramid)
from nucleiseg.measure import measure_image
from nucleiseg.measure_blocks import measure_large_image
from nucleiseg.model import NucleusModel
from nucleiseg.modelconfig import ModelConfig
from nucleiseg.normalize import percentile_normalize, percentiles_from_histogram
from nucleiseg.segment import SegmentSettings, segment_images
from nucleiseg.segment_blocks import stitch
from nucleiseg.synthetic import make_nuclei

# Blocks far smaller than the image, margins just over half the largest synthetic nucleus
# (radius up to 11 px at aspect up to 1.8: under 30 px across).
BLOCK, MARGIN = 64, 24


def test_grid_cores_tile_the_image_and_windows_add_the_margin_inside_it():
    grid = BlockGrid(150, 200, 64, 24)
    assert grid.shape == (3, 4) and len(grid) == 12
    covered = np.zeros((150, 200), int)
    for block in grid:
        covered[block.core] += 1
        (ys, xs) = block.window
        assert ys.start == max(block.core[0].start - 24, 0) and ys.stop == min(
            block.core[0].stop + 24, 150)
        assert xs.start == max(block.core[1].start - 24, 0) and xs.stop == min(
            block.core[1].stop + 24, 200)
    assert (covered == 1).all()
    assert takes_blocks(65, 10, 64) and not takes_blocks(64, 64, 64)


@pytest.mark.parametrize("size, margin, key", [(63, 0, "segment.block_size"),
                                               (64, -1, "segment.block_margin"),
                                               (True, 8, "segment.block_size")])
def test_bad_block_settings_name_their_key(size, margin, key):
    with pytest.raises(ConfigError, match=key):
        BlockGrid(100, 100, size, margin)


def test_stitched_labels_equal_the_whole_image_labels(tmp_path):
    """Each window labelled on its own (connected components), the owned nuclei stitched:
    every nucleus once and whole, as labelling the whole image gives (up to numbering)."""
    truth = make_nuclei((300, 260), n_nuclei=120, seed=4).labels > 0
    whole, n = ndi.label(truth)
    grid = BlockGrid(*truth.shape, BLOCK, MARGIN)
    store = LabelStore(tmp_path, *truth.shape)
    total = 0
    for block in grid:
        labels, _ = ndi.label(truth[block.window])
        total += stitch(store, block, labels, total + 1).size
    stitched = store.read(slice(0, 300), slice(0, 260))
    assert total == n == stitched.max()
    pairs = np.unique(np.column_stack([whole.ravel(), stitched.ravel()]), axis=0)
    assert len(pairs) == n + 1  # a bijection between the nuclei, background to background
    assert (pairs[:, 0] > 0).sum() == n and len(np.unique(pairs[:, 1])) == n + 1


def test_a_nucleus_is_owned_by_the_block_holding_its_bounding_box_centre():
    labels = np.zeros((100, 100), np.int32)
    labels[50:70, 60:70] = 3  # box centre (59, 64)
    grid = BlockGrid(100, 100, 64, 32)
    owners = [block for block in grid if 3 in owned(labels[block.window], block)[0]]
    assert [(b.row, b.column) for b in owners] == [(0, 1)]


def test_percentiles_from_a_histogram_are_numpys():
    rng = np.random.default_rng(1)
    for n in (1, 2, 7, 1000, 4097):
        values = rng.gamma(2.0, 300.0, n).clip(0, 65535).astype(np.uint16)
        counts = np.bincount(values)
        for low, high in ((1.0, 99.8), (0.0, 100.0), (3.0, 97.0)):
            expected = [float(v) for v in np.percentile(values.astype(np.float32), [low, high])]
            stats = percentiles_from_histogram(counts[values.min():], int(values.min()), low, high)
            assert [stats.low, stats.high] == expected


def _tiff(tmp_path, name, data, **kwargs):
    path = tmp_path / name
    tifffile.imwrite(path, data, **kwargs)
    return path


def test_regions_read_what_the_file_holds(tmp_path):
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 4000, (300, 280), dtype=np.uint16)
    rgb = rng.integers(0, 255, (200, 230, 3), dtype=np.uint8)
    channels = rng.integers(0, 4000, (2, 150, 170), dtype=np.uint16)
    cases = [
        (_tiff(tmp_path, "tiled.tif", gray, tile=(64, 64), compression="zlib"), gray[..., None]),
        (_tiff(tmp_path, "strips.tif", gray, rowsperstrip=50), gray[..., None]),
        (_tiff(tmp_path, "rgb.tif", rgb, tile=(64, 64), photometric="rgb"), rgb),
        (_tiff(tmp_path, "two.ome.tif", channels, tile=(64, 64), metadata={"axes": "CYX"}),
         channels[1][..., None]),
    ]
    for path, expected in cases:
        with TiffRegions(path, nuclear_channel=1) as regions:
            assert (regions.height, regions.width) == expected.shape[:2]
            for ys, xs in ((slice(0, expected.shape[0]), slice(0, expected.shape[1])),
                           (slice(13, 140), slice(70, 129)), (slice(99, 100), slice(5, 6))):
                np.testing.assert_array_equal(regions.read(ys, xs), expected[ys, xs])
            stats = image_percentiles(regions, 1.0, 99.8, BlockGrid(*expected.shape[:2], 64, 0))
            assert stats == percentile_normalize(expected, 1.0, 99.8)[1]


def test_labels_are_a_tiled_pyramidal_ome_tiff(tmp_path):
    labels = np.arange(700 * 1100, dtype=np.uint32).reshape(700, 1100) % 70000
    store = LabelStore(tmp_path, *labels.shape)
    store.write(slice(0, 700), slice(0, 1100), labels)
    path = tmp_path / "big.ome.tif"
    write_label_pyramid(path, store, 69999, 0.25)
    with tifffile.TiffFile(path) as tif:
        assert tif.is_ome and tif.pages.first.is_tiled
        series = tif.series[0]
        assert series.dtype == np.uint32 and len(series.levels) == 2
        np.testing.assert_array_equal(series.asarray(), labels)
        np.testing.assert_array_equal(series.levels[1].asarray(), labels[::2, ::2])
        assert 'PhysicalSizeX="0.25"' in tif.ome_metadata
    small = LabelStore(tmp_path, 10, 10)
    write_label_pyramid(path, small, 3, None)
    assert tifffile.imread(path).dtype == np.uint16


def _rows_by_whole_label(table: pd.DataFrame, mapping: dict) -> pd.DataFrame:
    table = table.copy()
    for column in ["label"] + [c for c in table if "ObjectNumber" in c]:
        table[column] = table[column].map(lambda v: mapping.get(v, v))
    return table.sort_values("label", ignore_index=True)


# Two families follow CellProfiler into values that depend on more than the nucleus: Zernike
# features on where it lies (centrosome's arithmetic puts the pixels on its enclosing circle in
# or out by the rounding of their image coordinates: up to about 1.5%), and the radial
# distribution on the whole image (a tie for the centre goes to whichever pixel NumPy's unstable
# sort of the whole image's distances puts last). Measured in a window, as CellProfiler would
# measure a cropped image, they differ. Every other column is compared.
POSITION_DEPENDENT = ("AreaShape_Zernike_", "RadialDistribution_")


def _assert_tables_equal(whole: pd.DataFrame, blocks: pd.DataFrame) -> None:
    assert list(whole.columns) == list(blocks.columns) and len(whole) == len(blocks)
    for column in whole.columns:
        if column.startswith(POSITION_DEPENDENT):
            continue
        a, b = whole[column].to_numpy(), blocks[column].to_numpy()
        if a.dtype.kind in "fiub" and b.dtype.kind in "fiub":
            np.testing.assert_allclose(b.astype(float), a.astype(float), rtol=1e-9,
                                       atol=1e-9, equal_nan=True, err_msg=column)
        else:
            assert (a == b).all(), column


def _mapping(whole: np.ndarray, blocks: np.ndarray) -> dict:
    """Block-wise label -> whole-image label, checking that the nuclei are the same pixels."""
    np.testing.assert_array_equal(whole > 0, blocks > 0)
    pairs = np.unique(np.column_stack([blocks.ravel(), whole.ravel()]), axis=0)
    assert len(np.unique(pairs[:, 0])) == len(np.unique(pairs[:, 1])) == len(pairs)
    return {int(b): int(a) for b, a in pairs if b}


def test_block_wise_measurements_equal_the_whole_image_measurements(tmp_path):
    sample = make_nuclei((200, 230), n_nuclei=60, touching_pairs=6, bit_depth=16, seed=2)
    raw = _tiff(tmp_path, "raw.tif", sample.image, tile=(64, 64))
    store = LabelStore(tmp_path, *sample.labels.shape)
    store.write(slice(0, 200), slice(0, 230), sample.labels)
    write_label_pyramid(tmp_path / "raw.ome.tif", store, int(sample.labels.max()), 0.5)
    whole = measure_image(sample.labels, sample.image, 0.5, "raw")
    with TiffRegions(tmp_path / "raw.ome.tif") as labels, TiffRegions(raw) as image:
        blocks, small = measure_large_image(
            labels, image, BlockGrid(200, 230, BLOCK, MARGIN),
            lambda window, intensity: measure_image(window, intensity, 0.5, "raw"),
            ("neighbours",), 0.5, 4)
    _assert_tables_equal(whole, blocks)
    np.testing.assert_array_equal(small.labels, sample.labels[::4, ::4])
    np.testing.assert_array_equal(small.image[..., 0], sample.image[::4, ::4])


def test_batch_tables_are_the_same_whichever_path_an_image_took(pointwise_model, tmp_path):
    sample = make_nuclei((170, 200), n_nuclei=40, touching_pairs=4, bit_depth=16, seed=5)
    image = _tiff(tmp_path, "field.tif", sample.image, tile=(64, 64), compression="zlib")
    whole = segment_and_measure(pointwise_model, image, SegmentSettings(), tmp_path / "whole")
    blocks = segment_and_measure(pointwise_model, image,
                                  SegmentSettings(block_size=BLOCK, block_margin=MARGIN),
                                  tmp_path / "blocks")
    whole_labels = tifffile.imread(whole[0].loc[0, "labels_file"])
    assert blocks[0].loc[0, "labels_file"].endswith("field.ome.tif")
    block_labels = tifffile.imread(blocks[0].loc[0, "labels_file"])
    mapping = _mapping(whole_labels, block_labels)
    assert len(mapping) == whole_labels.max() > 10
    _assert_tables_equal(whole[1], _rows_by_whole_label(blocks[1], mapping))
    kept = [c for c in whole[2] if c != "labels_file" and not c.startswith("seconds_")]
    _assert_tables_equal(whole[2][kept], blocks[2][kept])
    assert (tmp_path / "blocks" / "overlays" / "field.png").is_file()


def test_checking_a_large_image_reads_its_header_not_its_pixels(tmp_path):
    """check_images (fail mode) reads every small file whole, but a large one's header only:
    a tile that cannot be decoded is found when the image is segmented, not before."""
    from nucleiseg.batch_io import check_images
    from nucleiseg.errors import BadInputError

    path = _tiff(tmp_path, "big.tif", np.arange(200 * 200, dtype=np.uint16).reshape(200, 200),
                 tile=(64, 64), compression="zlib")
    with tifffile.TiffFile(path) as tif:
        offset = tif.pages.first.dataoffsets[5]
    with open(path, "r+b") as stream:
        stream.seek(offset)
        stream.write(b"\xff" * 64)
    check_images([path], block_size=64)
    with pytest.raises(BadInputError, match="big.tif"):
        check_images([path])
    with TiffRegions(path) as regions, pytest.raises(BadInputError, match="tile"):
        regions.read(slice(0, 200), slice(0, 200))


def test_block_wise_labels_are_the_whole_images_with_a_real_unet(tmp_path):
    """A U-Net's maps depend on each pixel's surroundings: each block is predicted with the
    whole image's tiles (model.predict_window), so its nuclei are the whole image's, exactly."""
    import keras

    from nucleiseg.network import build_unet

    keras.utils.set_random_seed(0)
    config = ModelConfig(unet_alpha=0.35, unet_encoder_weights="none",
                         unet_decoder_filters=(16, 16, 8, 8, 8))
    model = NucleusModel(build_unet(config), config, None, Tiling(128, 32, 2))
    sample = make_nuclei((170, 200), n_nuclei=40, touching_pairs=4, bit_depth=16, seed=6)
    image = _tiff(tmp_path, "field.tif", sample.image, tile=(64, 64), compression="zlib")
    maps = model.predict(model.normalize(sample.image))
    model.thresholds = Thresholds(float(np.quantile(maps[..., 0], 0.7)), 1.0, 0)
    labels = []
    for name, settings in (("whole", SegmentSettings()),
                           ("blocks", SegmentSettings(block_size=BLOCK, block_margin=MARGIN))):
        table = segment_images(model, [image], settings, tmp_path / name / "labels",
                               tmp_path / name / "probabilities", tmp_path / name / "seg.csv",
                               tmp_path / name / "confidence.csv")
        labels.append(tifffile.imread(table.loc[0, "labels_file"]))
    whole, blocks = labels
    mapping = _mapping(whole, blocks)
    assert len(mapping) == whole.max() == blocks.max() > 5
    np.testing.assert_array_equal(whole > 0, blocks > 0)
