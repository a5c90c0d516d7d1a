"""The bioimage.io export: a tiny model folder written as a package, validated by bioimageio.spec,
its test tensors reproduced by bioimageio.core with both weight formats, and read back as a
nucleiseg model folder. No network, no GPU."""

from __future__ import annotations

import zipfile

import numpy as np
import pandas as pd
import pytest

from nucleiseg.inference import BackendChoice
from nucleiseg.instances import Thresholds
from nucleiseg.io import read_image
from nucleiseg.manifest import Manifest
from nucleiseg.model import NucleusModel
from nucleiseg.model_fetch import unpack_model
from nucleiseg.model_zoo import (
    DIVISOR,
    LICENSE,
    MIN_SIDE,
    TEST_SIDE,
    crop_to_sizes,
    export_model,
    sample_image,
)
from nucleiseg.modelcard import BBBC038_DOI
from nucleiseg.modelconfig import ModelConfig
from nucleiseg.modelfolder import CONFIG_FILE, MODEL_FILE, THRESHOLDS_FILE
from nucleiseg.synthetic import make_nuclei
from nucleiseg.thresholds import save_thresholds

TINY = ModelConfig(unet_alpha=0.35, unet_encoder_weights="none",
                   unet_decoder_filters=(16, 16, 8, 8, 8), norm_p_low=2.0, norm_p_high=99.5)
THRESHOLDS = Thresholds(foreground=0.5, contour=0.5, min_size=0)
# id -> (modality, split, (height, width)): the test split's stained image is 300 px wide, so
# it is cropped; the fluorescence one is the one chosen (the most common training modality).
IMAGES = {"a_fluo": ("fluorescence", "train", (96, 128)),
          "b_fluo": ("fluorescence", "train", (96, 96)),
          "c_stained": ("stained", "test", (200, 300)),
          "d_fluo": ("fluorescence", "test", (150, 230))}


def _dataset(root) -> tuple:
    """A Kaggle-layout folder of synthetic images, its manifest and an index.csv."""
    import imageio.v3 as iio

    rows = []
    for seed, (image_id, (modality, split, shape)) in enumerate(IMAGES.items()):
        sample = make_nuclei(shape, n_nuclei=8, seed=seed, modality=modality)
        folder = root / "stage1_train" / image_id / "images"
        folder.mkdir(parents=True)
        iio.imwrite(folder / f"{image_id}.png", sample.image)
        rows.append({"id": image_id, "modality": modality, "split": split, "height": shape[0],
                     "width": shape[1], "n_nuclei": int(sample.labels.max())})
    Manifest("synthetic", "test", str(root / "stage1_train"), len(rows)).write(
        root / "dataset.json")
    pd.DataFrame(rows).to_csv(root / "index.csv", index=False)
    return root / "dataset.json", root / "index.csv"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    import keras

    from nucleiseg.network import build_unet

    root = tmp_path_factory.mktemp("zoo")
    keras.utils.set_random_seed(0)
    folder = root / "model"
    folder.mkdir()
    build_unet(TINY).save(folder / MODEL_FILE)
    TINY.save(folder / CONFIG_FILE)
    save_thresholds(THRESHOLDS, folder / THRESHOLDS_FILE)
    card = folder / "MODEL_CARD.md"
    card.write_text("# A tiny model\n\n## Validation\n\nNone: it is untrained.\n")
    manifest, index = _dataset(root)
    out = export_model(folder, card, manifest, index, root / "export" / "nucleiseg.bioimageio.zip")
    return out, folder, root


def test_the_export_is_one_zip_with_every_file(exported):
    out, _, root = exported
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name]  # no temporaries left
    names = set(zipfile.ZipFile(out).namelist())
    assert {"rdf.yaml", MODEL_FILE, "tf_saved_model.zip", "test_input.npy", "test_output.npy",
            "sample_input.tif", "sample_output.tif", "cover.png", "MODEL_CARD.md", CONFIG_FILE,
            THRESHOLDS_FILE} == names


def test_a_failed_export_writes_nothing_and_clears_a_killed_ones_files(exported):
    _, folder, root = exported
    out = root / "failed" / "nucleiseg.bioimageio.zip"
    stale = out.parent / f".{out.name}.killed.part"  # what a killed export leaves
    (stale / "sub").mkdir(parents=True)
    with pytest.raises(FileNotFoundError):
        export_model(folder, root / "no_card.md", root / "dataset.json", root / "index.csv", out)
    assert list(out.parent.iterdir()) == []


def test_bioimageio_spec_validates_the_package(exported):
    from bioimageio.spec import load_description, load_description_and_validate_format_only
    from bioimageio.spec.model.v0_5 import ModelDescr

    out, _, _ = exported
    summary = load_description_and_validate_format_only(out)
    # "valid-format": every check of the spec passed (only a test run can say "passed")
    assert summary.status == "valid-format", summary.format()
    assert [d.name for d in summary.details if d.status == "failed"] == []
    description = load_description(out)
    assert isinstance(description, ModelDescr) and description.format_version.startswith("0.5.")


def test_the_package_describes_normalization_sizes_and_maps(exported):
    from bioimageio.spec import load_description

    out, _, _ = exported
    description = load_description(out)
    (image,), (maps,) = description.inputs, description.outputs
    assert [str(a.id) for a in image.axes] == ["batch", "y", "x", "channel"]
    assert [(a.size.min, a.size.step) for a in image.axes[1:3]] == [(MIN_SIDE, DIVISOR)] * 2
    assert len(image.axes[3].channel_names) == 3
    (scale_range,) = [p for p in image.preprocessing if p.id == "scale_range"]
    assert (scale_range.kwargs.min_percentile, scale_range.kwargs.max_percentile) == (2.0, 99.5)
    assert [str(a) for a in scale_range.kwargs.axes] == ["y", "x", "channel"]  # per image, joint
    assert [str(n) for n in maps.axes[3].channel_names] == ["foreground", "contour"]
    assert maps.data.range == (0.0, 1.0)
    assert description.license == LICENSE
    assert BBBC038_DOI in [str(c.doi) for c in description.cite]
    assert [a.name for a in description.authors] == ["nucleiseg contributors"]
    assert {"keras_v3", "tensorflow_saved_model_bundle"} == {
        name for name, entry in description.weights if entry is not None}
    assert description.config.model_extra["nucleiseg"]["thresholds"] == THRESHOLDS.to_dict()


def test_the_test_tensors_are_a_held_out_crop_and_the_networks_maps(exported, tmp_path):
    out, folder, root = exported
    with zipfile.ZipFile(out) as zf:
        zf.extractall(tmp_path)
    test_input = np.load(tmp_path / "test_input.npy")
    test_output = np.load(tmp_path / "test_output.npy")
    raw = read_image(root / "stage1_train" / "d_fluo" / "images" / "d_fluo.png")
    # 150 x 230 -> the centre 128 x 224, grayscale repeated to three channels
    assert test_input.shape == (1, 128, 224, 3) and test_input.dtype == np.float32
    np.testing.assert_array_equal(test_input[0, ..., 1], raw[11:139, 3:227])
    model = NucleusModel.load(folder)
    expected = model.network(model.normalize(test_input[0])[None], training=False)
    np.testing.assert_allclose(test_output, np.asarray(expected), atol=1e-6)
    assert test_output.shape == (1, 128, 224, 2)


def test_the_package_is_also_a_model_folder_archive(exported, tmp_path):
    out, folder, _ = exported
    unpack_model(out, tmp_path / "unpacked", str(out))
    tensorflow = BackendChoice("tensorflow")  # the same network in both: no conversion needed
    loaded, original = (NucleusModel.load(tmp_path / "unpacked", backend=tensorflow),
                        NucleusModel.load(folder, backend=tensorflow))
    assert loaded.config == original.config and loaded.thresholds == original.thresholds
    image = make_nuclei((96, 96), n_nuclei=4, seed=9).image.astype(np.float32) / 255
    np.testing.assert_allclose(loaded.predict(image), original.predict(image), atol=1e-6)


@pytest.mark.slow
def test_bioimageio_core_reproduces_the_test_outputs_with_both_weight_formats(
        exported, tmp_path, monkeypatch):
    # bioimageio.core sets KERAS_BACKEND for the process (its default is torch); here it must be
    # TensorFlow, and monkeypatch puts the variable back for later tests' subprocesses.
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    monkeypatch.chdir(tmp_path)  # it unzips SavedModels into the working folder
    from bioimageio.core import test_model

    out, _, _ = exported
    summary = test_model(out)
    assert summary.status == "passed", summary.format()
    reproduced = {d.name for d in summary.details
                  if d.name.startswith("Reproduce test outputs") and d.status == "passed"}
    assert reproduced == {"Reproduce test outputs from test inputs (keras_v3)",
                          "Reproduce test outputs from test inputs "
                          "(tensorflow_saved_model_bundle)"}


def test_crop_to_sizes_gives_multiples_of_the_divisor():
    big = np.arange(300 * 500, dtype=np.float32).reshape(300, 500, 1)
    assert crop_to_sizes(big).shape == (TEST_SIDE, TEST_SIDE, 1)
    np.testing.assert_array_equal(crop_to_sizes(big)[0, 0], big[22, 122])  # the centre
    assert crop_to_sizes(np.ones((100, 150, 3), np.float32)).shape == (96, 128, 3)
    small = np.arange(40 * 70, dtype=np.float32).reshape(40, 70, 1)
    cropped = crop_to_sizes(small)  # mirrored up to MIN_SIDE first
    assert cropped.shape == (MIN_SIDE, MIN_SIDE, 1)
    np.testing.assert_array_equal(cropped[:40, 0], small[:, 3])
    np.testing.assert_array_equal(cropped[40, 0], small[39, 3])


def test_sample_image_prefers_the_test_split_and_the_main_training_modality(tmp_path):
    manifest, index = _dataset(tmp_path)
    table = pd.read_csv(index)
    assert sample_image(Manifest.read(manifest), table)[0] == "d_fluo"
    only_stained = table[table["id"] != "d_fluo"]
    image_id, raw = sample_image(Manifest.read(manifest), only_stained)
    assert image_id == "c_stained" and raw.shape == (192, 256, 3)
    no_test = table[table["split"] == "train"]
    assert sample_image(Manifest.read(manifest), no_test)[0] == "a_fluo"
