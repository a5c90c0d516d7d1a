"""The model card: written from a model folder's files, the split and the scores, on hand-made
tables (a DSB2018-like split with a rare and an absent modality, and the synthetic set)."""

from __future__ import annotations

import pandas as pd
import pytest

from nucleiseg.instances import Thresholds
from nucleiseg.manifest import Manifest
from nucleiseg.modelcard import (
    BBBC038_DOI,
    benchmark_seconds,
    scores_table,
    split_counts,
    write_model_card,
)
from nucleiseg.modelconfig import ModelConfig
from nucleiseg.modelfolder import CONFIG_FILE, HISTORY_FILE, THRESHOLDS_FILE
from nucleiseg.thresholds import save_thresholds

CONFIG = ModelConfig(unet_alpha=0.35, train_epochs=10, train_epochs_frozen=2,
                     train_device="NVIDIA H200", train_mixed_precision=True,
                     split_sha256="ab" * 32)
# 40 fluorescence and 3 brightfield training images, no stained one; the test split has both.
SPLITS = {("fluorescence", "train"): 40, ("fluorescence", "val"): 5, ("fluorescence", "test"): 6,
          ("brightfield", "train"): 3, ("brightfield", "test"): 1}


def _index() -> pd.DataFrame:
    rows = []
    for (modality, split), count in SPLITS.items():
        for k in range(count):
            rows.append({"id": f"{modality}_{split}_{k}", "modality": modality, "split": split,
                         "height": 256 if modality == "fluorescence" else 1024,
                         "width": 320 if k % 2 else 256, "n_nuclei": 5 + k})
    return pd.DataFrame(rows)


def _summary(sets=("test", "stage1_test")) -> pd.DataFrame:
    rows = []
    for set_name in sets:
        for method, score in (("network", 0.6), ("classical", 0.4)):
            for modality, n in (("brightfield", 1), ("fluorescence", 6), ("overall", 7)):
                rows.append({"set": set_name, "method": method, "modality": modality,
                             "n_images": n, "dice": 0.9, "iou": 0.8, "ap_50": score + 0.2,
                             "ap_75": score - 0.1, "dsb_score": score})
    return pd.DataFrame(rows)


def _inputs(tmp_path, source="kaggle", sets=("test", "stage1_test")):
    folder = tmp_path / "model"
    folder.mkdir()
    CONFIG.save(folder / CONFIG_FILE)
    save_thresholds(Thresholds(foreground=0.5, contour=0.3, min_size=16), folder / THRESHOLDS_FILE)
    pd.DataFrame({"epoch": range(7), "val_loss": [5, 4, 3, 2.5, 2.7, 2.9, 3.0]}).to_csv(
        folder / HISTORY_FILE, index=False)
    stage1_test = str(tmp_path / "stage1_test") if "stage1_test" in sets else None
    Manifest(source, "data-science-bowl-2018", str(tmp_path / "stage1_train"), 50,
             stage1_test=stage1_test).write(tmp_path / "dataset.json")
    _index().to_csv(tmp_path / "index.csv", index=False)
    _summary(sets).to_csv(tmp_path / "summary.csv", index=False)
    return folder, tmp_path / "dataset.json", tmp_path / "index.csv", tmp_path / "summary.csv"


def test_split_counts_per_modality_and_split():
    table = split_counts(_index())
    assert list(table.columns) == ["train", "val", "test", "all"]
    assert list(table.index) == ["fluorescence", "brightfield", "all"]
    assert table.loc["brightfield"].tolist() == [3, 0, 1, 4]
    assert table.loc["all"].tolist() == [43, 5, 7, 55]


def test_scores_table_has_the_networks_scores_and_the_classical_baseline():
    table = scores_table(_summary(), "test")
    assert list(table.index) == ["brightfield", "fluorescence", "overall"]
    assert table.loc["overall", "images"] == 7
    assert table.loc["overall", "DSB score"] == pytest.approx(0.6)
    assert table.loc["overall", "classical DSB score"] == pytest.approx(0.4)


def test_the_card_of_a_dsb2018_model(tmp_path):
    out = tmp_path / "model" / "MODEL_CARD.md"
    text = write_model_card(*_inputs(tmp_path), out, training_seconds=1800)
    assert out.read_text() == text
    for expected in (
        "BBBC038", "CC0", BBBC038_DOI,  # the data, its licence and citation
        "| fluorescence | 40 | 5 | 6 | 51 |", "| brightfield | 3 | 0 | 1 | 4 |",
        "55 images of 256-1024 x 256-320 px",
        "percentile 1 maps to 0 and its percentile 99.8 to 1",  # the normalization
        "foreground > 0.5 and contour < 0.3", "under 16 px",  # the thresholds
        "7 run (2 with the encoder frozen, up to 10 in all), the weights of epoch 4 kept",
        "NVIDIA H200, mixed precision", "30.0 min", "ab" * 32,
        "8 patches of 256 x 256 px per step, one pass over the training tiles per epoch",
        "## Validation", "On the test split", "On Kaggle's stage1_test",
        "| overall | 7 | 0.600 | 0.800 | 0.500 | 0.900 | 0.400 |",
        "## Intended use", "Not for diagnosis",
        "**Modalities not in its training images:** stained.",
        "**Rare in its training images:** brightfield (3 of 43 training images)",
        "2D only", "holding 5-44 nuclei each", "stage1_test above is a fairer measure",
    ):
        assert expected in text, expected


def test_the_card_of_a_synthetic_model_without_recorded_time(tmp_path):
    text = write_model_card(*_inputs(tmp_path, "synthetic", sets=("test",)),
                            tmp_path / "MODEL_CARD.md")
    assert "Synthetic nuclei" in text and "do not use it on real images" in text
    assert "CC0" not in text and "stage1_test" not in text
    assert "**Training time:** not recorded" in text


def test_benchmark_seconds(tmp_path):
    path = tmp_path / "train_model.tsv"
    assert benchmark_seconds(path) is None
    path.write_text("s\th:m:s\tmax_rss\n203.80\t0:03:23\t1366.83\n")
    assert benchmark_seconds(path) == pytest.approx(203.8)


def test_a_training_without_a_frozen_phase_says_so(tmp_path):
    """The demo trains every layer from the start (epochs_frozen 0): no frozen phase, and the
    one learning rate that was used."""
    folder, *rest = _inputs(tmp_path)
    CONFIG.replace(train_epochs_frozen=0, train_finetune_learning_rate=0.006).save(
        folder / CONFIG_FILE)
    text = write_model_card(folder, *rest, folder / "MODEL_CARD.md")
    assert "7 run (up to 10 in all)" in text
    assert "**Learning rate:** 0.006 for every layer from the start;" in text
    assert "frozen" not in text
    assert "halved after 3 epochs without improvement, stopped after" in text


@pytest.mark.parametrize("changes, said, unsaid", [
    ({"train_average_epochs": 5},
     "up to 10 in all), the mean of the last 5 epochs' weights kept (stochastic", "weights of epoch"),
    ({"train_decay_epochs": 17},
     "falling along a cosine to 1% of it over 17 epochs, stopped after", "halved"),
    ({"train_touch_weight": 4},
     "BCE + Dice loss per map, the contour's cross-entropy 5 times as heavy where two nuclei "
     "touch.", None),
    ({}, "BCE + Dice loss per map.", "touch"),
])
def test_training_settings_are_described(tmp_path, changes, said, unsaid):
    folder, *rest = _inputs(tmp_path)
    CONFIG.replace(**changes).save(folder / CONFIG_FILE)
    text = write_model_card(folder, *rest, folder / "MODEL_CARD.md")
    assert said in text
    assert unsaid is None or unsaid not in text
