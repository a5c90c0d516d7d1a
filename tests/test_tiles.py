import numpy as np
import pandas as pd
import pytest

from nucleiseg.errors import ConfigError
from nucleiseg.io import write_tiff
from nucleiseg.tiles import (
    extract_tiles, pad_to_tile, reassemble, tile_positions, tile_starts, write_tiles,
)


@pytest.mark.parametrize("length", [1, 31, 256, 257, 500, 1388])
def test_starts_cover_the_axis_with_the_overlap(length):
    tile, overlap = 256, 64
    starts = tile_starts(length, tile, overlap)
    covered = np.zeros(max(length, tile), bool)
    for s in starts:
        covered[s : s + tile] = True
    assert covered.all()
    assert starts[-1] + tile == max(length, tile)  # the last tile is flush, no extra padding
    assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:]))


def test_overlap_must_be_smaller_than_tile():
    with pytest.raises(ConfigError, match="overlap"):
        tile_starts(300, 256, 256)


@pytest.mark.parametrize("shape", [(100, 70), (256, 256), (300, 520), (1, 40)])
def test_tiles_reassemble_to_the_padded_image(shape):
    rng = np.random.default_rng(0)
    image = rng.random(shape + (3,), dtype=np.float32)
    padded, _ = pad_to_tile(image, None, 64)
    assert padded.shape[:2] == (max(shape[0], 64), max(shape[1], 64))
    assert np.array_equal(padded[: shape[0], : shape[1]], image)
    positions = tile_positions(*padded.shape[:2], 64, 16)
    tiles = extract_tiles(padded, positions, 64)
    assert np.array_equal(reassemble(tiles, positions, padded.shape[:2]), padded)


def test_padding_reflects_the_image():
    image = np.arange(5, dtype=float)[None, :].repeat(2, 0)
    padded, _ = pad_to_tile(image, None, 8)
    assert padded[0].tolist() == [0, 1, 2, 3, 4, 3, 2, 1]


def test_mirrored_nucleus_gets_its_own_label():
    labels = np.zeros((10, 10), np.uint16)
    labels[3:6, 7:10] = 1  # touches the right edge: its mirror copy will touch it
    image = labels.astype(np.float32)
    _, padded = pad_to_tile(image, labels, 16)
    original = padded[3:6, 7:10]
    mirror = padded[3:6, 10:12]
    assert (original == 1).all()
    assert (mirror > 0).all() and not np.isin(mirror, [1]).any()
    # The corner copy (mirrored in both axes) is distinct from both.
    assert padded.max() >= 2


def test_write_tiles_on_prepared_files(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for name, (h, w), c in [("a", (100, 90), 1), ("b", (300, 200), 3)]:
        image = rng.random((h, w, c), dtype=np.float32)
        labels = np.zeros((h, w), np.uint16)
        labels[10:20, 10:20] = 1
        labels[40:50, 40:60] = 2
        write_tiff(tmp_path / "images" / f"{name}.tif", image[..., 0] if c == 1 else image)
        write_tiff(tmp_path / "labels" / f"{name}.tif", labels)
        rows.append({"id": name, "height": h, "width": w, "modality": "fluorescence"})
    out = tmp_path / "tiles"
    table = write_tiles(pd.DataFrame(rows), tmp_path / "images", tmp_path / "labels",
                        out / "images.npy", out / "labels.npy", out / "tiles.csv", tile=128, overlap=32)
    images = np.load(out / "images.npy", mmap_mode="r")
    labels = np.load(out / "labels.npy", mmap_mode="r")
    assert images.shape == (len(table), 128, 128, 3) and images.dtype == np.float16
    assert labels.shape == (len(table), 128, 128) and labels.dtype == np.uint16
    # Image a is smaller than a tile: one tile, valid region recorded; b needs 3 x 2 tiles.
    assert table.groupby("id").size().to_dict() == {"a": 1, "b": 6}
    first = table[table["id"] == "a"].iloc[0]
    assert (first["valid_height"], first["valid_width"]) == (100, 90)
    # Grayscale was repeated to three equal channels.
    assert np.array_equal(images[0][..., 0], images[0][..., 2])
    # Labels are renumbered 1..n inside each tile.
    for k in range(len(table)):
        values = np.unique(labels[k])
        assert values.tolist() == list(range(len(values)))


def test_tile_size_must_suit_the_network(tmp_path):
    with pytest.raises(ConfigError, match="multiple of 32"):
        write_tiles(pd.DataFrame([{"id": "a", "height": 10, "width": 10, "modality": "x"}]),
                    tmp_path, tmp_path, tmp_path / "i.npy", tmp_path / "l.npy", tmp_path / "t.csv",
                    tile=100, overlap=0)


def test_images_are_resized_to_one_nucleus_diameter(tmp_path):
    """tiles.nucleus_diameter: two images whose nuclei are 10 and 40 px wide become tiles whose
    nuclei are all about 20 px wide; the enlarged image gives more tiles, each drawn less often."""
    from nucleiseg.data import load_tiles, tiles_nucleus_diameters
    from nucleiseg.modelconfig import ModelConfig
    from nucleiseg.synthetic import make_nuclei

    rows = []
    for name, radius, size in [("small", 5, 160), ("large", 20, 320)]:
        sample = make_nuclei((size, size), n_nuclei=12, radius=(radius, radius), seed=1)
        write_tiff(tmp_path / "images" / f"{name}.tif", sample.image.astype(np.float32))
        write_tiff(tmp_path / "labels" / f"{name}.tif", sample.labels.astype(np.uint16))
        rows.append({"id": name, "height": size, "width": size, "modality": "fluorescence"})
    out = tmp_path / "tiles"
    table = write_tiles(pd.DataFrame(rows), tmp_path / "images", tmp_path / "labels",
                        out / "images.npy", out / "labels.npy", out / "tiles.csv", tile=128,
                        overlap=32, nucleus_diameter=20)
    factors = table.groupby("id")["factor"].first()
    assert factors["small"] == pytest.approx(2, rel=0.15)
    assert factors["large"] == pytest.approx(0.5, rel=0.15)
    assert table.groupby("id").size().to_dict() == {"small": 9, "large": 4}  # 320 and 160 px
    low, median, high = tiles_nucleus_diameters(out)
    assert 17 < low <= median <= high < 23
    chances = load_tiles(out, ModelConfig(unet_alpha=0.35, unet_encoder_weights="none")).chances
    per_image = pd.Series(chances).groupby(table["id"]).sum()
    # each image weighs what its tiles weighed at its own scale: 4 (160 px) against 9 (320 px)
    assert per_image["small"] / per_image["large"] == pytest.approx(4 / 9)
    # at their own scale (0, the default) no factor is applied and tiles are drawn alike
    plain = write_tiles(pd.DataFrame(rows), tmp_path / "images", tmp_path / "labels",
                        out / "images.npy", out / "labels.npy", out / "tiles.csv", tile=128,
                        overlap=32)
    assert (plain["factor"] == 1).all() and (plain["weight"] == 1).all()
    assert load_tiles(out, ModelConfig(unet_alpha=0.35, unet_encoder_weights="none")).chances is None
