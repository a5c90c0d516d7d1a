"""The same config and seed give the same results, run after run, on a CPU: two real runs of the
demo (shortened), each in its own processes, compared byte for byte; and a third that trains one
epoch longer trains its first epochs as they did, so that runs of a fixed number of epochs
(benchmarks/leave_out.py --epochs, train.epochs) compare epoch by epoch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import REPO, run_snakemake

# The demo's settings (config/demo.yaml), trained for fewer steps: reproducibility does not
# depend on how long the network trains.
SHORTER = {"dataset": {"synthetic": {"n_images": 6, "height": 128, "width": 128}},
           "train": {"epochs": 2, "epochs_frozen": 1, "steps_per_epoch": 4, "threads": 2},
           "split": {"fractions": {"train": 0.5, "val": 0.25, "test": 0.25}}}


def _demo_config() -> dict:
    config = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    for section, values in SHORTER.items():
        for key, value in values.items():
            if isinstance(value, dict):
                config.setdefault(section, {}).setdefault(key, {}).update(value)
            else:
                config.setdefault(section, {})[key] = value
    return config


def _outputs(workdir: Path) -> dict[str, bytes]:
    results = workdir / "results"
    files = [results / "model" / "thresholds.json", results / "model" / "history.csv",
             *sorted((results / "batches" / "demo" / "labels").rglob("*.tif"))]
    outputs = {str(path.relative_to(workdir)): path.read_bytes() for path in files}
    # The scores, without the seconds each image took (a time, not a result).
    scores = pd.read_csv(results / "evaluation" / "per_image.csv").drop(columns="seconds")
    outputs["per_image.csv without seconds"] = scores.to_csv(index=False).encode()
    return outputs


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    runs = []
    for name in ("first", "second"):
        workdir = tmp_path_factory.mktemp(name)
        run_snakemake(workdir, _demo_config(), timeout=900)
        runs.append(workdir)
    return runs


def test_two_runs_train_the_same_model_and_write_the_same_labels(two_runs):
    first, second = (_outputs(workdir) for workdir in two_runs)
    assert sorted(first) == sorted(second)
    assert len([name for name in first if name.endswith(".tif")]) == 4  # the demo batch's images
    different = sorted(name for name in first if first[name] != second[name])
    assert different == []


def test_the_trained_weights_are_equal(two_runs):
    import keras

    weights = [keras.models.load_model(workdir / "results" / "model" / "model.keras",
                                       compile=False).get_weights() for workdir in two_runs]
    assert len(weights[0]) == len(weights[1])
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)


def test_a_longer_training_starts_as_the_shorter_one(two_runs, tmp_path):
    """train.epochs only says where training stops: epoch by epoch, losses and scores up to
    there (the frozen phase and the first fine-tuning epoch) are those of the shorter run."""
    config = _demo_config()
    config["train"]["epochs"] += 1
    run_snakemake(tmp_path, config, "results/model/model.keras", timeout=900)
    shorter = pd.read_csv(two_runs[0] / "results" / "model" / "history.csv")
    longer = pd.read_csv(tmp_path / "results" / "model" / "history.csv")
    assert len(longer) == len(shorter) + 1 == 3
    pd.testing.assert_frame_equal(longer.iloc[:len(shorter)], shorter, check_exact=True)
