"""Rule download_dataset: fetch or locate DSB2018 as dataset.source says; write its manifest."""

from pathlib import Path

from nucleiseg.download import fetch_dataset
from nucleiseg.runlog import rule_log

with rule_log(snakemake.log[0]):  # noqa: F821
    sm = snakemake  # noqa: F821
    fetch_dataset(sm.params.settings, Path(sm.output.manifest).parent)
