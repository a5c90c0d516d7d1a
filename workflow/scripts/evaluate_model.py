"""Rule evaluate_model: network and classical pipeline scored on the test split (+ stage1_test)."""

import itertools
from pathlib import Path

import pandas as pd
from nucleiseg.devices import configure_tensorflow
from nucleiseg.evaluate import evaluate_model, split_images, stage1_test_images, write_evaluation
from nucleiseg.inference import BackendChoice, Rescaling, Tiling
from nucleiseg.manifest import Manifest
from nucleiseg.model import NucleusModel
from nucleiseg.runlog import rule_log

with rule_log(snakemake.log[0]) as log:  # noqa: F821
    sm = snakemake  # noqa: F821
    configure_tensorflow(sm.threads)
    model = NucleusModel.load(Path(sm.input.network).parent, Tiling.from_config(sm.params.tiling),
                              tta=sm.params.tta,
                              rescale=Rescaling.from_config(sm.params.rescale),
                              backend=BackendChoice.from_config(sm.params.backend),
                              threads=sm.threads)
    index = pd.read_csv(sm.input.index, dtype={"id": str})
    held_out = split_images(index, Path(sm.input.images).parent, "test")
    manifest = Manifest.read(sm.input.manifest)
    if manifest.stage1_test and manifest.stage1_solution:
        log.info("the dataset has Kaggle's stage1_test: scoring it as the official held-out set")
        held_out = itertools.chain(held_out, stage1_test_images(
            model, manifest.stage1_test, manifest.stage1_solution))
    rows = evaluate_model(model, held_out)
    summary = write_evaluation(rows, sm.output.per_image, sm.output.summary, sm.output.json,
                               sm.output.figure)
    log.info("summary:\n%s", summary.to_string(index=False))
