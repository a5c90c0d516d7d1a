"""Rule report_batch: a batch's nuclei.csv, images.csv, skipped.csv, montage and histograms."""

from pathlib import Path

from nucleiseg.measure import nuclei_columns
from nucleiseg.report import plot_distributions, plot_montage, read_tables, write_batch_tables
from nucleiseg.runlog import rule_log
from nucleiseg.tables import MEASURE_SECONDS_COLUMNS

with rule_log(snakemake.log[0]) as log:  # noqa: F821
    sm = snakemake  # noqa: F821
    segmented = read_tables(sm.input.tables)
    nuclei = read_tables(sm.input.nuclei, nuclei_columns())
    timings = read_tables(sm.input.seconds, list(MEASURE_SECONDS_COLUMNS))
    images = write_batch_tables(segmented, nuclei, timings, Path(sm.output.nuclei),
                                Path(sm.output.images), Path(sm.output.skipped))
    plot_montage(images, [Path(p) for p in sm.input.overlays], Path(sm.output.montage),
                 sm.params.report_images)
    plot_distributions(nuclei, images, Path(sm.output.distributions))
    log.info("%d nuclei in %d images (%d skipped)", len(nuclei), len(images),
             len(segmented) - len(images))
