"""Rule make_synthetic_dataset: nuclei images with exact ground truth, in Kaggle's layout."""

from pathlib import Path

from nucleiseg.runlog import rule_log
from nucleiseg.synthetic import make_synthetic_dataset

with rule_log(snakemake.log[0]):  # noqa: F821
    sm = snakemake  # noqa: F821
    make_synthetic_dataset(Path(sm.output.manifest).parent, **sm.params.settings)
