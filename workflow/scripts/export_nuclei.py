"""Rule export_nuclei: one chunk's nuclei as GeoJSON (QuPath) and ImageJ ROI sets (Fiji)."""

from pathlib import Path

import pandas as pd
from nucleiseg.exports import export_nuclei
from nucleiseg.io import atomic_dir
from nucleiseg.runlog import rule_log

with rule_log(snakemake.log[0]) as log:  # noqa: F821
    sm = snakemake  # noqa: F821
    images = pd.read_csv(sm.input.table, dtype={"image_id": str})
    nuclei = pd.read_csv(sm.input.nuclei, dtype={"image_id": str})
    with atomic_dir(Path(sm.output.exports)) as folder:
        written = export_nuclei(images, nuclei, list(sm.params.exports), folder,
                                sm.params.blocks)
    log.info("%d export files for %d nuclei", written, len(nuclei))
