"""Listing Kaggle-layout folders: good samples, and each bad entry as a problem naming its path."""

from pathlib import Path

import numpy as np
import pytest
from imageio.v3 import imwrite

from conftest import SHARED_DSB, link_subset, pick_ids
from nucleiseg.errors import BadInputError
from nucleiseg.io import read_image
from nucleiseg.layout import Sample, list_samples


def _sample(root: Path, sample_id: str, n_masks: int = 2, image_name: str | None = None) -> Path:
    """A sample folder of real PNGs: a 16x16 image and `n_masks` one-nucleus masks."""
    folder = root / sample_id
    (folder / "images").mkdir(parents=True)
    image = np.zeros((16, 16), np.uint8)
    image[2:6, 2:6] = image[9:13, 9:13] = 200
    imwrite(folder / "images" / f"{image_name or sample_id}.png", image)
    if n_masks:
        (folder / "masks").mkdir()
    for k in range(n_masks):
        mask = np.zeros((16, 16), np.uint8)
        mask[2 + 7 * k:6 + 7 * k, 2 + 7 * k:6 + 7 * k] = 255
        imwrite(folder / "masks" / f"mask{k}.png", mask)
    return folder


def _only_problem(root: Path) -> BadInputError:
    samples, problems = list_samples(root)
    assert samples == [] and len(problems) == 1, (samples, problems)
    return problems[0]


def test_a_good_sample_is_listed_with_its_image_and_sorted_masks(tmp_path):
    folder = _sample(tmp_path, "b", n_masks=3)
    _sample(tmp_path, "a")
    samples, problems = list_samples(tmp_path)
    assert problems == []
    assert [s.id for s in samples] == ["a", "b"]  # id order, whatever the directory order
    assert samples[1] == Sample(
        "b", folder / "images" / "b.png",
        tuple(folder / "masks" / f"mask{k}.png" for k in range(3)),
    )
    assert read_image(samples[1].image).shape == read_image(samples[1].masks[0]).shape == (16, 16)


def test_hidden_files_are_ignored_everywhere(tmp_path):
    folder = _sample(tmp_path, "a")
    for parent in (tmp_path, folder, folder / "images", folder / "masks"):
        (parent / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (folder / "masks" / "._mask0.png").write_bytes(b"macOS resource fork")
    (tmp_path / ".ipynb_checkpoints").mkdir()
    samples, problems = list_samples(tmp_path)
    assert problems == []
    assert [s.id for s in samples] == ["a"] and len(samples[0].masks) == 2


def _no_images_folder(root):
    folder = _sample(root, "a")
    for path in (folder / "images").iterdir():
        path.unlink()
    (folder / "images").rmdir()
    return folder, "has no images/ folder"


def _empty_images_folder(root):
    folder = _sample(root, "a")
    (folder / "images" / "a.png").unlink()
    return folder / "images", "holds no image"


def _two_images(root):
    folder = _sample(root, "a")
    imwrite(folder / "images" / "a_copy.png", np.zeros((16, 16), np.uint8))
    return folder / "images", "holds 2 images, expected one"


def _no_masks_folder(root):
    return _sample(root, "a", n_masks=0), "has no masks"


def _empty_masks_folder(root):
    folder = _sample(root, "a", n_masks=0)
    (folder / "masks").mkdir()
    return folder, "has no masks"


def _text_file_among_images(root):
    folder = _sample(root, "a")
    (folder / "images" / "notes.txt").write_text("imaged on Tuesday")
    return folder / "images" / "notes.txt", "is not an image file"


def _text_file_among_masks(root):
    folder = _sample(root, "a")
    (folder / "masks" / "README").write_text("one mask per nucleus")
    return folder / "masks" / "README", "is not an image file"


def _folder_among_masks(root):
    folder = _sample(root, "a")
    (folder / "masks" / "old.png").mkdir()  # named like an image, but a folder
    return folder / "masks" / "old.png", "is not an image file"


def _stray_file_in_root(root):
    (root / "labels.csv").write_text("id,n\n")
    return root / "labels.csv", "stray file"


@pytest.mark.parametrize("damage", [
    _no_images_folder, _empty_images_folder, _two_images, _no_masks_folder, _empty_masks_folder,
    _text_file_among_images, _text_file_among_masks, _folder_among_masks, _stray_file_in_root,
])
def test_each_bad_entry_is_a_problem_naming_its_path(tmp_path, damage):
    path, problem = damage(tmp_path)
    error = _only_problem(tmp_path)
    assert error.path == path
    assert problem in error.problem
    assert str(error).startswith(f"{path}: ")  # the message the user reads names it too


def test_an_image_named_after_another_id_is_a_problem(tmp_path):
    folder = _sample(tmp_path, "a", image_name="b")
    error = _only_problem(tmp_path)
    assert error.path == folder / "images" / "b.png"


def test_bad_samples_do_not_hide_good_ones(tmp_path):
    _sample(tmp_path, "a")
    bad = _sample(tmp_path, "b", n_masks=0)
    _sample(tmp_path, "c")
    samples, problems = list_samples(tmp_path)
    assert [s.id for s in samples] == ["a", "c"]
    assert [p.path for p in problems] == [bad]


@pytest.mark.parametrize("make", [lambda p: None, lambda p: p.write_text("x")],
                         ids=["missing", "a file"])
def test_a_root_that_is_not_a_folder_is_an_error_naming_it(tmp_path, make):
    root = tmp_path / "stage1_train"
    make(root)
    with pytest.raises(BadInputError, match="is not a folder") as caught:
        list_samples(root)
    assert caught.value.path == root


def test_real_samples_are_listed_in_place(tmp_path, dsb_meta):
    ids = pick_ids(dsb_meta, {"fluorescence_gray": 2, "color_stained": 1, "brightfield_gray": 1})
    root = link_subset(ids, tmp_path / "stage1_train")
    samples, problems = list_samples(root)
    assert problems == []
    assert [s.id for s in samples] == sorted(ids)
    for sample in samples:
        shared = SHARED_DSB / "stage1_train" / sample.id
        assert sample.image.resolve() == (shared / "images" / f"{sample.id}.png").resolve()
        masks = sorted(p.name for p in (shared / "masks").iterdir())
        assert [m.name for m in sample.masks] == masks
        shape = read_image(sample.image).shape[:2]
        assert read_image(sample.masks[0]).shape == shape
