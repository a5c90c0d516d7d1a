"""Rule split_dataset: the train/val/test split and the dataset index (prepared table + split)."""

import pandas as pd
from nucleiseg.io import write_csv
from nucleiseg.runlog import rule_log
from nucleiseg.split import split_dataset

with rule_log(snakemake.log[0]) as log:  # noqa: F821
    sm = snakemake  # noqa: F821
    table = pd.read_csv(sm.input.table, dtype={"id": str})
    split = split_dataset(table, sm.params.settings)
    write_csv(split, sm.output.split)
    write_csv(table.merge(split[["id", "stratum", "split"]], on="id"), sm.output.index)
    log.info("split: %s", split["split"].value_counts().to_dict())
