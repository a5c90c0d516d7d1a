"""Rule prepare_dataset: normalized images, label images and the per-image table."""

from nucleiseg.manifest import Manifest
from nucleiseg.prepare import PrepareSettings, prepare_dataset
from nucleiseg.runlog import rule_log

with rule_log(snakemake.log[0]):  # noqa: F821
    sm = snakemake  # noqa: F821
    prepare_dataset(
        Manifest.read(sm.input.manifest).stage1_train,
        images_dir=sm.output.images,
        labels_dir=sm.output.labels,
        table_csv=sm.output.table,
        skipped_csv=sm.output.skipped,
        settings=PrepareSettings.from_config(sm.params.settings),
        threads=sm.threads,
    )
