"""Rule optimize_thresholds: instance thresholds that maximize the DSB score on the val split."""

from pathlib import Path

import pandas as pd
from nucleiseg.devices import configure_tensorflow
from nucleiseg.evaluate import split_images
from nucleiseg.inference import BackendChoice, Rescaling, Tiling
from nucleiseg.io import write_csv
from nucleiseg.model import NucleusModel
from nucleiseg.runlog import rule_log

with rule_log(snakemake.log[0]) as log:  # noqa: F821
    sm = snakemake  # noqa: F821
    configure_tensorflow(sm.threads)
    model = NucleusModel.load(Path(sm.input.network).parent,
                              Tiling.from_config(sm.params.tiling), thresholds=False,
                              tta=sm.params.tta,
                              rescale=Rescaling.from_config(sm.params.rescale),
                              backend=BackendChoice.from_config(sm.params.backend),
                              threads=sm.threads)
    index = pd.read_csv(sm.input.index, dtype={"id": str})
    best, search = model.optimize_thresholds(
        split_images(index, Path(sm.input.images).parent, "val"))
    write_csv(search, sm.output.search)
    model.save_thresholds(sm.output.thresholds)
    log.info("best thresholds %s: mean val DSB score %.4f", best.to_dict(), search["dsb_score"].iloc[0])
