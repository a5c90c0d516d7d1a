"""Rule make_synthetic_batch: the demo's batch of new images (one file of each kind)."""

from pathlib import Path

from nucleiseg.runlog import rule_log
from nucleiseg.synthetic import make_synthetic_batch

with rule_log(snakemake.log[0]):  # noqa: F821
    make_synthetic_batch(Path(snakemake.output[0]).parent)  # noqa: F821
