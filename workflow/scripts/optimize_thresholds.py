"""Rule optimize_thresholds: instance thresholds that maximize the DSB score on the val split."""

from pathlib import Path

import pandas as pd
from nucleiseg.evaluate import choose_thresholds, split_images
from nucleiseg.io import write_csv
from nucleiseg.modelfolder import load_model_folder
from nucleiseg.predict import Tiling
from nucleiseg.runlog import rule_log
from nucleiseg.thresholds import save_thresholds
from nucleiseg.training import limit_threads

with rule_log(snakemake.log[0]) as log:  # noqa: F821
    sm = snakemake  # noqa: F821
    limit_threads(sm.threads)
    model = load_model_folder(Path(sm.input.model).parent)
    index = pd.read_csv(sm.input.index, dtype={"id": str})
    prepared = Path(sm.input.images).parent
    best, search = choose_thresholds(model, split_images(index, prepared, "val"),
                                     tiling=Tiling.from_config(sm.params.tiling))
    write_csv(search, sm.output.search)
    save_thresholds(best, sm.output.thresholds)
    log.info("best thresholds %s: mean val DSB score %.4f", best.to_dict(), search["dsb_score"].iloc[0])
