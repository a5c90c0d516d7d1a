"""Rule fetch_model: segment.model's archive -> resources/models/<sha256>/, checked, unpacked."""

from pathlib import Path

from nucleiseg.model_fetch import fetch_model
from nucleiseg.runlog import rule_log

with rule_log(snakemake.log[0]):  # noqa: F821
    sm = snakemake  # noqa: F821
    # The address is read from the config, not given as a param: the folder is named by the
    # archive's content, so the same archive at a new address is not fetched (nor segmented)
    # again.
    fetch_model(sm.config["segment"]["model"], sm.wildcards.sha256, Path(sm.output.config).parent)
