"""Rule measure_nuclei: every nucleus of one chunk's images measured on the raw pixels; overlays."""

from pathlib import Path

import pandas as pd
from nucleiseg.io import write_csv
from nucleiseg.measure import measure_nuclei
from nucleiseg.runlog import rule_log

with rule_log(snakemake.log[0]) as log:  # noqa: F821
    sm = snakemake  # noqa: F821
    images = pd.read_csv(sm.input.table, dtype={"image_id": str})
    confidences = pd.read_csv(sm.input.confidence, dtype={"image_id": str})
    nuclei, seconds = measure_nuclei(images, confidences, sm.params.nuclear_channel,
                                     Path(sm.output.overlays), sm.params.pages,
                                     sm.params.features, sm.params.blocks)
    write_csv(seconds, sm.output.seconds)
    write_csv(nuclei, sm.output.nuclei)
    log.info("%d nuclei measured in %d images", len(nuclei), len(seconds))
