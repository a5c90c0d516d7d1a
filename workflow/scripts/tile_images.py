"""Rule tile_images: training tiles of one split as memory-mappable arrays."""

import pandas as pd
from nucleiseg.runlog import rule_log
from nucleiseg.tiles import write_tiles

with rule_log(snakemake.log[0]):  # noqa: F821
    sm = snakemake  # noqa: F821
    index = pd.read_csv(sm.input.index, dtype={"id": str})
    write_tiles(
        index[index["split"] == sm.wildcards.split],
        sm.input.images,
        sm.input.labels,
        sm.output.images,
        sm.output.labels,
        sm.output.table,
        tile=sm.params.settings["size"],
        overlap=sm.params.settings["overlap"],
        nucleus_diameter=sm.params.settings["nucleus_diameter"],
    )
