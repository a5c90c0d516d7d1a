"""Rule evaluate_model: network and classical pipeline scored on the test split (+ stage1_test)."""

import itertools
from pathlib import Path

import pandas as pd
from nucleiseg.evaluate import evaluate_images, split_images, stage1_test_images, write_evaluation
from nucleiseg.manifest import Manifest
from nucleiseg.modelfolder import load_model_folder
from nucleiseg.predict import Tiling
from nucleiseg.runlog import rule_log
from nucleiseg.thresholds import load_thresholds
from nucleiseg.training import limit_threads

with rule_log(snakemake.log[0]) as log:  # noqa: F821
    sm = snakemake  # noqa: F821
    limit_threads(sm.threads)
    model = load_model_folder(Path(sm.input.model).parent)
    thresholds = load_thresholds(sm.input.thresholds)
    index = pd.read_csv(sm.input.index, dtype={"id": str})
    held_out = split_images(index, Path(sm.input.images).parent, "test")
    manifest = Manifest.read(sm.input.manifest)
    if manifest.stage1_test and manifest.stage1_solution:
        log.info("the dataset has Kaggle's stage1_test: scoring it as the official held-out set")
        held_out = itertools.chain(held_out, stage1_test_images(
            manifest.stage1_test, manifest.stage1_solution, **sm.params.normalize))
    rows = evaluate_images(model, thresholds, held_out, tiling=Tiling.from_config(sm.params.tiling))
    summary = write_evaluation(rows, sm.output.per_image, sm.output.summary, sm.output.json,
                               sm.output.figure)
    log.info("summary:\n%s", summary.to_string(index=False))
