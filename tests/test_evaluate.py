"""Threshold choice and evaluation, from hand-made tables up to a real workflow run."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from conftest import SHARED_DSB, TINY_MODEL, link_subset, pick_ids, run_snakemake
from nucleiseg.evaluate import summarize_evaluation
from nucleiseg.io import read_image
from nucleiseg.labels import masks_to_labels


def test_summary_has_every_set_method_and_modality_with_overall_rows():
    rows = pd.DataFrame([
        {"set": "test", "id": "a", "modality": "stained", "method": "network", "dsb_score": 0.6, "dice": 0.9},
        {"set": "test", "id": "b", "modality": "fluorescence", "method": "network", "dsb_score": 0.8, "dice": 0.95},
        {"set": "test", "id": "a", "modality": "stained", "method": "classical", "dsb_score": 0.1, "dice": 0.7},
        {"set": "test", "id": "b", "modality": "fluorescence", "method": "classical", "dsb_score": 0.5, "dice": 0.8},
    ])
    summary = summarize_evaluation(rows).set_index(["set", "method", "modality"])
    assert summary.loc[("test", "network", "overall"), "dsb_score"] == pytest.approx(0.7)
    assert summary.loc[("test", "classical", "stained"), "dice"] == pytest.approx(0.7)
    assert summary.loc[("test", "network", "overall"), "n_images"] == 2


def test_network_is_scored_and_thresholds_chosen_on_tiled_predictions(tmp_path):
    """A tiny real network on an image larger than a tile: the Tiling given reaches the network."""
    import keras

    from nucleiseg.evaluate import evaluate_model
    from nucleiseg.inference import Tiling
    from nucleiseg.instances import Thresholds, labels_from_maps
    from nucleiseg.model import NucleusModel, TruthImage
    from nucleiseg.modelconfig import ModelConfig
    from nucleiseg.network import build_unet
    from nucleiseg.predict import predict_tiled
    from nucleiseg.synthetic import make_nuclei

    keras.utils.set_random_seed(0)
    config = ModelConfig(unet_alpha=0.35, unet_encoder_weights="none", unet_decoder_filters=(16, 16, 8, 8, 8))
    tiling, thresholds = Tiling(64, 32, 3), Thresholds(foreground=0.5, contour=0.5, min_size=0)
    model = NucleusModel(build_unet(config), config, thresholds, tiling)
    sample = make_nuclei((150, 230), n_nuclei=12, seed=0)
    image = (sample.image / sample.image.max()).astype(np.float32)
    item = TruthImage("a", "fluorescence", "test", image, sample.labels)

    maps = predict_tiled(model.network, image, tiling)
    expected = labels_from_maps(maps[..., 0], maps[..., 1], thresholds)
    np.testing.assert_array_equal(model.segment(image).labels, expected)
    rows = evaluate_model(model, [item]).set_index("method")
    assert rows.loc["network", "n_pred"] == expected.max()
    chosen, search = model.optimize_thresholds([item])
    assert isinstance(chosen, Thresholds) and len(search) > 1 and model.thresholds == chosen


def _labels_from_masks(sample_id: str) -> np.ndarray:
    masks = sorted((SHARED_DSB / "stage1_train" / sample_id / "masks").iterdir())
    return masks_to_labels([read_image(m) > 0 for m in masks])[0]


@pytest.fixture(scope="module")
def dataset_with_stage1_test(tmp_path_factory, dsb_meta):
    """Kaggle's layout with stage1_test and its RLE solution, made from real training images."""
    from nucleiseg.rle import write_solution_csv

    root = tmp_path_factory.mktemp("dsb_with_test")
    ids = pick_ids(dsb_meta, {"fluorescence_gray": 9, "color_stained": 3})
    train_ids, test_ids = ids[:10], ids[10:]
    link_subset(train_ids, root / "stage1_train")
    for sample_id in test_ids:  # images only, as Kaggle ships stage1_test
        target = root / "stage1_test" / sample_id / "images"
        target.mkdir(parents=True)
        shutil.copy(SHARED_DSB / "stage1_train" / sample_id / "images" / f"{sample_id}.png", target)
    write_solution_csv({i: _labels_from_masks(i) for i in test_ids}, root / "stage1_solution.csv")
    return root, test_ids



@pytest.mark.slow
def test_workflow_trains_chooses_thresholds_and_scores_stage1_test(tmp_path, dataset_with_stage1_test):
    root, test_ids = dataset_with_stage1_test
    config = {"dataset": {"source": "local", "local": {"path": str(root)}},
              "split": {"fractions": {"train": 0.6, "val": 0.2, "test": 0.2}},
              "tiles": {"size": 128, "overlap": 32}, **TINY_MODEL}
    run_snakemake(tmp_path, config)
    results = tmp_path / "results"
    thresholds = json.loads((results / "model" / "thresholds.json").read_text())
    assert set(thresholds) == {"foreground", "contour", "min_size"}
    search = pd.read_csv(results / "model" / "threshold_search.csv")
    assert search["dsb_score"].iloc[0] == search["dsb_score"].max()

    per_image = pd.read_csv(results / "evaluation" / "per_image.csv", dtype={"id": str})
    assert set(per_image["set"]) == {"test", "stage1_test"}
    assert set(per_image["method"]) == {"network", "classical"}
    official = per_image[per_image["set"] == "stage1_test"]
    assert sorted(official["id"].unique()) == sorted(test_ids)
    # The solution's masks were decoded: every official image has its true nucleus count.
    for sample_id in test_ids:
        n_masks = len(list((SHARED_DSB / "stage1_train" / sample_id / "masks").iterdir()))
        assert (official.loc[official["id"] == sample_id, "n_true"] == n_masks).all()
    # The classical pipeline finds nuclei in real images: its scores are not a placeholder.
    assert official.loc[official["method"] == "classical", "ap_50"].mean() > 0.3
    split = pd.read_csv(results / "split.csv", dtype={"id": str})
    test_split = set(split.loc[split["split"] == "test", "id"])
    assert set(per_image.loc[per_image["set"] == "test", "id"]) == test_split

    summary = json.loads((results / "evaluation" / "summary.json").read_text())
    overall = [r for r in summary if r["modality"] == "overall"]
    assert {(r["set"], r["method"]) for r in overall} == {
        ("test", "network"), ("test", "classical"), ("stage1_test", "network"), ("stage1_test", "classical")}
    assert (results / "evaluation" / "scores.png").stat().st_size > 10_000
    assert (results / "model" / "training_curves.png").stat().st_size > 10_000
