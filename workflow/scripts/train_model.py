"""Rule train_model: the MobileNetV2 U-Net from the training tiles; writes the model folder."""

from pathlib import Path

from nucleiseg.io import file_sha256
from nucleiseg.modelconfig import ModelConfig
from nucleiseg.runlog import rule_log
from nucleiseg.training import train_model

with rule_log(snakemake.log[0]):  # noqa: F821
    sm = snakemake  # noqa: F821
    settings = sm.params.settings
    config = ModelConfig.from_workflow_config(settings).replace(
        split_sha256=file_sha256(sm.input.split)
    )
    train_model(
        config,
        train_tiles=Path(sm.input.train[0]).parent,
        val_tiles=Path(sm.input.val[0]).parent,
        out_dir=Path(sm.output.network).parent,
        state_dir=sm.params.state,
        require_gpu=settings["train"]["require_gpu"],
        mixed_precision=settings["train"]["mixed_precision"],
        max_val_tiles=settings["train"]["max_val_tiles"],
        threads=sm.threads,
        gpus=int(sm.resources.gpu),
    )
