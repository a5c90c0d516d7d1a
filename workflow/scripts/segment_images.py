"""Rule segment_images: one chunk's images -> label TIFFs, per-image table, nucleus confidences."""

from pathlib import Path

from nucleiseg.devices import configure_tensorflow
from nucleiseg.inference import BackendChoice, Rescaling, Tiling
from nucleiseg.model import NucleusModel
from nucleiseg.runlog import rule_log
from nucleiseg.segment import SegmentSettings, segment_images

with rule_log(snakemake.log[0]) as log:  # noqa: F821
    sm = snakemake  # noqa: F821
    settings = SegmentSettings.from_config(sm.params.settings)  # checked before TensorFlow loads
    tiling = Tiling.from_config(sm.params.tiling)
    configure_tensorflow(sm.threads)
    model = NucleusModel.load(Path(sm.input.config).parent, tiling, tta=sm.params.tta,
                              rescale=Rescaling.from_config(sm.params.rescale),
                              backend=BackendChoice.from_config(sm.params.backend),
                              threads=sm.threads)
    log.info("%r", model)
    table = segment_images(model, [Path(p) for p in sm.input.images], settings,
                           Path(sm.output.labels), Path(sm.output.probabilities),
                           Path(sm.output.table), Path(sm.output.confidence))
    log.info("%d images segmented, %d skipped", (table["status"] == "ok").sum(),
             (table["status"] == "skipped").sum())
