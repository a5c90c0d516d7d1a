"""Rule check_images: every file of a batch read once; all unusable files named in one error."""

from pathlib import Path

import pandas as pd
from nucleiseg.batch_io import check_images
from nucleiseg.io import write_csv
from nucleiseg.runlog import rule_log

with rule_log(snakemake.log[0]):  # noqa: F821
    sm = snakemake  # noqa: F821
    files = [Path(p) for p in sm.input.images]
    check_images(files, sm.params.nuclear_channel, sm.params.pages, sm.params.block_size)
    write_csv(pd.DataFrame({"file": [str(p) for p in files]}), sm.output.checked)
