"""Kaggle run-length encoding: the pixel order, round trips, and solution files."""

import numpy as np
import pandas as pd
import pytest

from conftest import SHARED_DSB, pick_ids
from nucleiseg.errors import BadInputError
from nucleiseg.io import read_image
from nucleiseg.labels import masks_to_labels
from nucleiseg.metrics import match
from nucleiseg.rle import rle_decode, rle_encode, solution_labels, write_solution_csv

# 3 rows x 4 columns. Column-major, 1-based: (r, c) is pixel c * 3 + r + 1, so the set pixels
# are (2, 0) = 3, (0, 1) = 4, (1, 1) = 5, (2, 1) = 6, (0, 2) = 7, (2, 3) = 12: runs 3-7 and 12.
MASK = np.array([
    [0, 1, 1, 0],
    [0, 1, 0, 0],
    [1, 1, 0, 1],
], bool)
ENCODED = "3 5 12 1"


def test_pixels_are_numbered_down_the_columns_from_one():
    single = np.zeros((3, 4), bool)
    single[0, 1] = True  # row 0, column 1: after the 3 pixels of column 0
    assert rle_encode(single) == "4 1"
    single[:] = False
    single[0, 0] = True
    assert rle_encode(single) == "1 1"
    single[:] = False
    single[2, 3] = True
    assert rle_encode(single) == "12 1"


def test_hand_made_mask_encodes_and_decodes():
    assert rle_encode(MASK) == ENCODED
    decoded = rle_decode(ENCODED, 3, 4)
    assert decoded.dtype == bool and decoded.shape == (3, 4)
    np.testing.assert_array_equal(decoded, MASK)


def test_empty_and_full_masks():
    assert rle_encode(np.zeros((3, 4), bool)) == ""
    assert not rle_decode("", 3, 4).any()
    assert rle_encode(np.ones((3, 4), np.uint8)) == "1 12"
    assert rle_decode("1 12", 3, 4).all()


@pytest.mark.parametrize("seed", range(5))
def test_round_trip_on_random_masks(seed):
    rng = np.random.default_rng(seed)
    height, width = rng.integers(1, 40, size=2)
    mask = rng.random((height, width)) < rng.uniform(0.05, 0.95)
    encoded = rle_encode(mask)
    np.testing.assert_array_equal(rle_decode(encoded, height, width), mask)
    numbers = [int(v) for v in encoded.split()]
    starts, lengths = numbers[0::2], numbers[1::2]
    assert starts == sorted(starts) and min(lengths, default=1) >= 1


@pytest.mark.parametrize("encoded, message", [
    ("3 5 12", "odd number"),
    ("3 x", "'x' is not a whole number"),
    ("3.5 2", "'3.5' is not a whole number"),
    ("0 2", "positive"),
    ("3 0", "positive"),
    ("5 2 1 2", "sorted"),
    ("3 5 6 1", "overlap"),
    ("11 3", "past the image"),
    ("13 1", "past the image"),
    ("1 99999999999999999999999", "past the image"),
])
def test_malformed_encodings_say_what_is_wrong(encoded, message):
    with pytest.raises(ValueError, match=message):
        rle_decode(encoded, 3, 4)


def test_rle_rejects_bad_shapes():
    with pytest.raises(ValueError, match="2D"):
        rle_encode(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="at least 1"):
        rle_decode("1 1", 0, 4)


# ---------------------------------------------------------------------------------------------
# Real DSB2018 masks and solution files
# ---------------------------------------------------------------------------------------------


def _real_masks(sample_id: str) -> list[np.ndarray]:
    paths = sorted((SHARED_DSB / "stage1_train" / sample_id / "masks").glob("*.png"))
    return [read_image(p) > 0 for p in paths]


def test_round_trip_on_real_masks(dsb_meta):
    for sample_id in pick_ids(dsb_meta, {"fluorescence_gray": 1, "color_stained": 1}):
        masks = _real_masks(sample_id)
        for mask in masks:
            encoded = rle_encode(mask)
            assert encoded
            np.testing.assert_array_equal(rle_decode(encoded, *mask.shape), mask)


def test_solution_file_round_trip_on_real_images(dsb_meta, tmp_path):
    ids = pick_ids(dsb_meta, {"fluorescence_gray": 2, "color_stained": 1})
    originals = {i: masks_to_labels(_real_masks(i))[0] for i in ids}
    path = tmp_path / "stage1_solution.csv"
    write_solution_csv(originals, path)

    table = pd.read_csv(path)
    assert list(table.columns) == ["ImageId", "EncodedPixels", "Height", "Width", "Usage"]
    assert set(table["Usage"]) == {"Public"}
    back = solution_labels(path)
    assert list(back) == ids
    for sample_id, original in originals.items():
        labels = back[sample_id]
        assert labels.dtype == np.uint16 and labels.shape == original.shape
        assert labels.max() == len(np.unique(original)) - 1
        np.testing.assert_array_equal(labels > 0, original > 0)
        m = match(original, labels, 0.99)  # the same objects, whatever their numbers
        assert m.tp == m.n_true == m.n_pred


def _write(path, rows) -> None:
    pd.DataFrame(rows, columns=["ImageId", "EncodedPixels", "Height", "Width", "Usage"]).to_csv(
        path, index=False)


def test_solution_labels_numbers_rows_and_keeps_the_earlier_on_overlap(tmp_path):
    path = tmp_path / "solution.csv"
    _write(path, [
        ("a", "1 3", 3, 4, "Public"),   # column 0
        ("b", "12 1", 3, 4, "Public"),
        ("a", "3 2", 3, 4, "Public"),   # (2, 0), already taken by the first, and (0, 1)
    ])
    labels = solution_labels(path)
    np.testing.assert_array_equal(labels["a"], [
        [1, 2, 0, 0],
        [1, 0, 0, 0],
        [1, 0, 0, 0],
    ])
    assert labels["b"][2, 3] == 1 and labels["b"].sum() == 1


@pytest.mark.parametrize("rows, message", [
    ([("a", "1 3", 3, 4, "P"), ("a", "4 1", 4, 4, "P")], r"row 2 \(line 3\), image 'a'.*4x4.*3x4"),
    ([("a", "1 3", 3, 4, "P"), ("a", "", 3, 4, "P")], r"row 2 \(line 3\), image 'a'.*empty"),
    ([("a", "1 x", 3, 4, "P")], r"row 1 \(line 2\), image 'a'.*'x' is not a whole number"),
    ([("a", "1 3", 3, 4, "P"), ("b", "11 5", 3, 4, "P")], r"row 2 \(line 3\), image 'b'.*past"),
    ([("a", "1 3", "three", 4, "P")], r"row 1 \(line 2\), image 'a'.*Height and Width"),
    ([("", "1 3", 3, 4, "P")], r"row 1 \(line 2\): ImageId is empty"),
])
def test_bad_solution_rows_name_file_row_and_image(tmp_path, rows, message):
    path = tmp_path / "solution.csv"
    _write(path, rows)
    with pytest.raises(BadInputError, match=message) as caught:
        solution_labels(path)
    assert caught.value.path == path
    assert str(path) in str(caught.value)


def test_bad_solution_files(tmp_path):
    with pytest.raises(BadInputError, match="no such file"):
        solution_labels(tmp_path / "missing.csv")
    path = tmp_path / "solution.csv"
    path.write_text("ImageId,Pixels\na,1 3\n")
    with pytest.raises(BadInputError, match="EncodedPixels, Height, Width"):
        solution_labels(path)
    path.write_text("ImageId,EncodedPixels,Height,Width,Usage\n")
    with pytest.raises(BadInputError, match="no rows"):
        solution_labels(path)


def test_write_solution_refuses_an_image_without_nuclei(tmp_path):
    with pytest.raises(ValueError, match="'?empty_one'?: no nucleus"):
        write_solution_csv({"empty_one": np.zeros((3, 4), np.uint16)}, tmp_path / "s.csv")
    assert not (tmp_path / "s.csv").exists()
