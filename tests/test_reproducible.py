"""The same config and seed give the same results, run after run, on a CPU: two real runs of the
demo (shortened), each in its own processes, compared byte for byte."""

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
           "train": {"epochs": 2, "steps_per_epoch": 4, "threads": 2},
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
