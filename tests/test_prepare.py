"""Preparation on real DSB2018 samples, and every kind of bad input it must name and survive."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
from imageio.v3 import imread, imwrite

from conftest import copy_sample, pick_ids
from nucleiseg.errors import BadInputError
from nucleiseg.prepare import PrepareSettings, prepare_dataset


@pytest.fixture
def dataset(tmp_path, dsb_meta):
    """Three writable real samples (two fluorescence, one stained) in a Kaggle-layout folder."""
    root = tmp_path / "stage1_train"
    root.mkdir()
    for sample_id in pick_ids(dsb_meta, {"fluorescence_gray": 2, "color_stained": 1}):
        copy_sample(sample_id, root)
    return root


def _run(root: Path, on_bad_image="fail"):
    out = root.parent / "out"
    table = prepare_dataset(
        root, out / "images", out / "labels", out / "prepared.csv", out / "skipped.csv",
        PrepareSettings(on_bad_image=on_bad_image), threads=1,
    )
    return table, out


def _first(root: Path) -> Path:
    return sorted(p for p in root.iterdir() if p.is_dir())[0]


def _nothing_written(out: Path):
    """No output and no leftover temporary (dot-named .part) file or folder either."""
    return not out.exists() or not any(out.rglob("*"))


def test_good_samples_are_prepared(dataset):
    table, out = _run(dataset)
    assert len(table) == 3
    for row in table.itertuples():
        image = tifffile.imread(out / "images" / f"{row.id}.tif")
        labels = tifffile.imread(out / "labels" / f"{row.id}.tif")
        assert image.dtype == np.float32 and labels.dtype == np.uint16
        assert image.shape[:2] == labels.shape == (row.height, row.width)
        assert (image.ndim == 3) == (row.modality == "stained")
        n_masks = len(list((dataset / row.id / "masks").iterdir()))
        assert len(np.unique(labels)) - 1 == n_masks == row.n_nuclei
        assert np.percentile(image, 1.0) == pytest.approx(0, abs=0.02)
        assert np.percentile(image, 99.8) == pytest.approx(1, abs=0.02)
    assert pd.read_csv(out / "skipped.csv").empty


def _corrupt_png(root):
    sample = _first(root)
    image = next((sample / "images").iterdir())
    image.write_bytes(image.read_bytes()[:200])
    return image, "cannot be decoded"


def _zero_byte_mask(root):
    mask = sorted((_first(root) / "masks").iterdir())[0]
    mask.write_bytes(b"")
    return mask, "empty (0 bytes)"


def _mask_of_other_size(root):
    mask = sorted((_first(root) / "masks").iterdir())[0]
    imwrite(mask, np.pad(imread(mask), ((0, 3), (0, 0))))
    return mask, "does not match its image"


def _image_without_masks(root):
    sample = _first(root)
    for mask in (sample / "masks").iterdir():
        mask.unlink()
    return sample, "has no masks"


def _stray_file_in_root(root):
    stray = root / "notes.txt"
    stray.write_text("not an image")
    return stray, "stray file"


def _stray_file_in_masks(root):
    stray = _first(root) / "masks" / "labels.csv"
    stray.write_text("x,y\n")
    return stray, "not an image file"


BAD_INPUTS = [_corrupt_png, _zero_byte_mask, _mask_of_other_size, _image_without_masks,
              _stray_file_in_root, _stray_file_in_masks]


@pytest.mark.parametrize("damage", BAD_INPUTS, ids=lambda f: f.__name__.strip("_"))
def test_bad_input_fails_naming_the_file_and_writes_nothing(dataset, damage):
    path, problem = damage(dataset)
    with pytest.raises(BadInputError) as caught:
        _run(dataset)
    message = str(caught.value)
    assert str(path) in message and problem in message
    assert "on_bad_image: skip" in message  # says how to go on without it
    assert _nothing_written(dataset.parent / "out")


@pytest.mark.parametrize("damage", BAD_INPUTS, ids=lambda f: f.__name__.strip("_"))
def test_bad_input_is_skipped_and_listed_when_configured(dataset, damage):
    path, problem = damage(dataset)
    table, out = _run(dataset, on_bad_image="skip")
    skipped = pd.read_csv(out / "skipped.csv")
    assert len(skipped) == 1
    assert skipped.loc[0, "path"] == str(path) and problem in skipped.loc[0, "reason"]
    expected = 3 if damage is _stray_file_in_root else 2
    assert len(table) == expected
    assert len(list((out / "images").iterdir())) == expected


def test_hidden_files_are_ignored(dataset):
    (dataset / ".DS_Store").write_bytes(b"\0\0")
    (_first(dataset) / "masks" / "._x.png").write_bytes(b"\0")
    table, _ = _run(dataset)
    assert len(table) == 3


def test_all_bad_is_an_error_even_when_skipping(dataset):
    for sample in [p for p in dataset.iterdir()]:
        for mask in (sample / "masks").iterdir():
            mask.unlink()
    with pytest.raises(BadInputError, match="no usable image"):
        _run(dataset, on_bad_image="skip")


def test_overlapping_masks_resolved_and_counted(dataset):
    sample = _first(dataset)
    masks = sorted((sample / "masks").iterdir())
    first = imread(masks[0])
    ys, xs = np.nonzero(first)
    grown = imread(masks[1])
    grown[ys[0], xs[0]] = 255  # the second mask now also claims one pixel of the first
    imwrite(masks[1], grown)
    table, out = _run(dataset)
    row = table.set_index("id").loc[sample.name]
    assert row["overlap_pixels"] == 1
    labels = tifffile.imread(out / "labels" / f"{sample.name}.tif")
    assert labels[ys[0], xs[0]] == 1 and row["n_nuclei"] == len(masks)


def test_16bit_and_grayscale_png_inputs(tmp_path):
    root = tmp_path / "stage1_train"
    sample = root / "s16" / "images"
    sample.mkdir(parents=True)
    image = np.full((40, 50), 1000, np.uint16)
    image[10:20, 10:20] = 3000
    imwrite(sample / "s16.png", image)
    (root / "s16" / "masks").mkdir()
    imwrite(root / "s16" / "masks" / "m1.png", ((image > 2000) * 255).astype(np.uint8))
    table, out = _run(root)
    row = table.iloc[0]
    assert row["source_dtype"] == "uint16" and row["modality"] == "fluorescence"
    assert (row["norm_low"], row["norm_high"]) == (1000, 3000)
    prepared = tifffile.imread(out / "images" / "s16.tif")
    assert prepared.max() == pytest.approx(1.0) and prepared.min() == pytest.approx(0.0)
