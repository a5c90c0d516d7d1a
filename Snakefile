# nucleiseg: microscopy images -> nucleus masks and per-nucleus measurements.
# This file is the table of contents; each stage lives in workflow/rules/, its logic in
# workflow/scripts/nucleiseg/. docs/architecture.md maps the files between stages.
from snakemake.utils import min_version

min_version("9.0")


# Read from the working folder. A workflow that imports this one as a module passes `config:`
# instead, and Snakemake skips this line (README: Use it from another workflow).
configfile: "config.yaml"


include: "workflow/rules/package.smk"
include: "workflow/rules/common.smk"
include: "workflow/rules/download.smk"
include: "workflow/rules/synthetic.smk"
include: "workflow/rules/prepare.smk"
include: "workflow/rules/tile.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/share.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/segment.smk"
include: "workflow/rules/export.smk"


rule all:
    default_target: True
    input:
        all_targets(),


# Snakemake runs these only for the main Snakefile, not for a module: a workflow that imports
# this one calls them from its own handlers (nucleiseg.onsuccess(), nucleiseg.onerror()).
onsuccess:
    for line in run_end.skipped_lines({b: f"results/batches/{b}" for b in BATCHES}):
        print(line, file=sys.stderr)


onerror:
    run_end.remove_empty_folders("results/benchmarks")
