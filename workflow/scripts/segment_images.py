"""Rule segment_images: one job's images -> label TIFFs, per-image table, nucleus confidences."""

from pathlib import Path

from nucleiseg.modelfolder import load_model_folder
from nucleiseg.runlog import rule_log
from nucleiseg.segment import SegmentSettings, segment_files
from nucleiseg.thresholds import load_thresholds
from nucleiseg.training import limit_threads

with rule_log(snakemake.log[0]) as log:  # noqa: F821
    sm = snakemake  # noqa: F821
    settings = SegmentSettings.from_config(sm.params.settings)  # checked before TensorFlow loads
    limit_threads(sm.threads)
    model = load_model_folder(Path(sm.input.config).parent)
    thresholds = load_thresholds(sm.input.thresholds)
    log.info("model %s (%s heads), thresholds %s, %s", model.folder, model.config.heads,
             thresholds.to_dict(), settings.tiling)
    table = segment_files(model, thresholds, [Path(p) for p in sm.input.images], settings,
                          Path(sm.output.labels), Path(sm.output.probabilities),
                          Path(sm.output.table), Path(sm.output.confidence))
    log.info("%d images segmented, %d skipped", (table["status"] == "ok").sum(),
             (table["status"] == "skipped").sum())
