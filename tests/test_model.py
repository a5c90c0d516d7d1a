"""The model object: loading a folder, its verbs, and one path from maps to nuclei for all stages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile

from conftest import SHARED_DSB, pick_ids
from nucleiseg.errors import ConfigError
from nucleiseg.inference import BackendChoice, Tiling
from nucleiseg.instances import Thresholds, labels_from_maps
from nucleiseg.model import NucleusModel, TruthImage
from nucleiseg.modelconfig import ModelConfig
from nucleiseg.modelfolder import CONFIG_FILE, MODEL_FILE, THRESHOLDS_FILE
from nucleiseg.predict import predict_tiled
from nucleiseg.synthetic import make_nuclei
from nucleiseg.thresholds import save_thresholds

TINY = ModelConfig(unet_alpha=0.35, unet_encoder_weights="none",
                   unet_decoder_filters=(16, 16, 8, 8, 8))
SMALL_TILES = Tiling(tile_size=128, overlap=32, tiles_per_step=2)


@pytest.fixture(scope="module")
def network():
    import keras

    from nucleiseg.network import build_unet

    keras.utils.set_random_seed(0)
    return build_unet(TINY)


def _median_thresholds(network, image: np.ndarray) -> Thresholds:
    """Thresholds at the maps' medians: a random network then still splits the image into many
    objects, so that label comparisons compare something."""
    maps = predict_tiled(network, image, SMALL_TILES)
    return Thresholds(foreground=float(np.median(maps[..., 0])),
                      contour=float(np.median(maps[..., 1])), min_size=0)


@pytest.fixture(scope="module")
def model(network):
    image = make_nuclei((150, 230), n_nuclei=12, seed=0).image.astype(np.float32) / 255
    return NucleusModel(network, TINY, _median_thresholds(network, image), SMALL_TILES)


def test_segment_is_tiled_prediction_then_the_watershed(model):
    image = make_nuclei((150, 230), n_nuclei=12, seed=1).image.astype(np.float32) / 255
    result = model.segment(image)
    maps = predict_tiled(model.network, image, SMALL_TILES)
    np.testing.assert_array_equal(result.maps, maps)
    expected = labels_from_maps(maps[..., 0], maps[..., 1], model.thresholds)
    assert expected.max() > 3  # the comparison is about real objects
    np.testing.assert_array_equal(result.labels, expected)
    assert set(result.seconds) == {"predict", "instances"}
    assert result.confidence.shape == (expected.max(),)


def test_instances_take_the_heads_into_account(network):
    maps = np.random.default_rng(0).random((40, 50, 2)).astype(np.float32)
    thresholds = Thresholds(foreground=0.5, contour=0.5, min_size=0)
    contour_model = NucleusModel(network, TINY, thresholds)
    mask_model = NucleusModel(network, TINY.replace(heads="mask"), thresholds)
    np.testing.assert_array_equal(contour_model.instances(maps),
                                  labels_from_maps(maps[..., 0], maps[..., 1], thresholds))
    np.testing.assert_array_equal(mask_model.instances(maps[..., :1]),
                                  labels_from_maps(maps[..., 0], None, thresholds))
    with pytest.raises(ValueError, match="thresholds"):
        NucleusModel(network, TINY).instances(maps)
    with pytest.raises(ValueError, match=r"\(H, W, 2\)"):
        contour_model.instances(maps[..., :1])


def test_normalize_uses_the_models_percentiles(network):
    raw = np.arange(10_000, dtype=np.uint16).reshape(100, 100)
    model = NucleusModel(network, TINY.replace(norm_p_low=10.0, norm_p_high=90.0))
    normalized = model.normalize(raw)
    low, high = np.percentile(raw.astype(np.float32), [10, 90])
    np.testing.assert_allclose(normalized, (raw - low) / (high - low), rtol=1e-5, atol=1e-6)


def test_optimize_thresholds_sets_and_saves_them(network, tmp_path):
    model = NucleusModel(network, TINY, tiling=SMALL_TILES, folder=tmp_path)
    images = [TruthImage(f"s{seed}", "fluorescence", "val",
                         (sample.image / 255).astype(np.float32), sample.labels)
              for seed, sample in ((s, make_nuclei((96, 128), n_nuclei=6, seed=s)) for s in (3, 4))]
    chosen, table = model.optimize_thresholds(images)
    assert model.thresholds == chosen and len(table) > 1
    assert table.iloc[0]["dsb_score"] == table["dsb_score"].max()
    model.save_thresholds()
    assert (tmp_path / THRESHOLDS_FILE).is_file()
    with pytest.raises(ValueError, match="no validation image"):
        model.optimize_thresholds([])


def _model_folder(network, folder: Path, thresholds: Thresholds | None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    network.save(folder / MODEL_FILE)
    TINY.save(folder / CONFIG_FILE)
    if thresholds is not None:
        save_thresholds(thresholds, folder / THRESHOLDS_FILE)
    return folder


def test_load_gives_back_the_same_model(model, tmp_path):
    folder = _model_folder(model.network, tmp_path / "model", model.thresholds)
    # TensorFlow, as the model in memory: OpenVINO's maps are test_backends.py's.
    loaded = NucleusModel.load(folder, SMALL_TILES, backend=BackendChoice("tensorflow"))
    assert loaded.config == TINY and loaded.thresholds == model.thresholds
    assert loaded.tiling == SMALL_TILES and loaded.folder == folder
    image = make_nuclei((100, 140), n_nuclei=8, seed=2).image.astype(np.float32) / 255
    np.testing.assert_allclose(loaded.predict(image), model.predict(image), atol=1e-6)
    np.testing.assert_array_equal(loaded.segment(image).labels, model.segment(image).labels)
    assert "heads contour" in repr(loaded)


def test_load_before_the_thresholds_exist(model, tmp_path):
    folder = _model_folder(model.network, tmp_path / "model", None)
    with pytest.raises(ConfigError, match="thresholds.json: run rule optimize_thresholds"):
        NucleusModel.load(folder)
    assert NucleusModel.load(folder, thresholds=False).thresholds is None


def test_evaluation_and_segmentation_give_identical_labels(model, dsb_meta, tmp_path):
    """One real DSB2018 image through both stages' code: evaluate_model's path (prepared image,
    as prepare_dataset writes it) and segment_images' path (the raw file), same labels."""
    from nucleiseg.evaluate import evaluate_model, split_images
    from nucleiseg.layout import list_samples
    from nucleiseg.prepare import PrepareSettings, prepare_sample
    from nucleiseg.segment import SegmentSettings, segment_images

    (sample_id,) = pick_ids(dsb_meta[dsb_meta["height"] > 256], {"fluorescence_gray": 1})
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / sample_id).symlink_to(SHARED_DSB / "stage1_train" / sample_id)
    samples, problems = list_samples(tmp_path / "data")
    assert not problems
    prepared = tmp_path / "prepared"
    row = prepare_sample(samples[0], PrepareSettings(TINY.norm_p_low, TINY.norm_p_high),
                         prepared / "images", prepared / "labels")
    index = pd.DataFrame([{**row, "split": "test"}])
    (item,) = split_images(index, prepared, "test")
    evaluated = model.segment(item.image).labels
    assert evaluated.max() > 3

    raw_file = samples[0].image
    table = segment_images(model, [raw_file], SegmentSettings(), tmp_path / "labels",
                           tmp_path / "probabilities", tmp_path / "table.csv",
                           tmp_path / "confidence.csv")
    segmented = tifffile.imread(table.loc[0, "labels_file"])
    np.testing.assert_array_equal(segmented, evaluated)
    scores = evaluate_model(model, [item]).set_index("method")
    assert scores.loc["network", "n_pred"] == segmented.max()
