"""Rule write_model_card: MODEL_CARD.md in the model folder, from its files, the split and the scores."""

from pathlib import Path

from nucleiseg.modelcard import benchmark_seconds, write_model_card
from nucleiseg.runlog import rule_log

with rule_log(snakemake.log[0]) as log:  # noqa: F821
    sm = snakemake  # noqa: F821
    write_model_card(Path(sm.input.config).parent, sm.input.manifest, sm.input.index,
                     sm.input.summary, sm.output.card,
                     training_seconds=benchmark_seconds(sm.params.training_benchmark))
    log.info("wrote %s", sm.output.card)
