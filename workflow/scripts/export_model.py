"""Rule export_model: the model folder as a BioImage Model Zoo (bioimage.io) package zip."""

from pathlib import Path

from nucleiseg.devices import configure_tensorflow
from nucleiseg.model_zoo import export_model
from nucleiseg.runlog import rule_log

with rule_log(snakemake.log[0]) as log:  # noqa: F821
    sm = snakemake  # noqa: F821
    configure_tensorflow(sm.threads)
    export_model(Path(sm.input.network).parent, sm.input.card, sm.input.manifest, sm.input.index,
                 sm.output.package)
    log.info("wrote %s (bioimage.io model spec 0.5)", sm.output.package)
