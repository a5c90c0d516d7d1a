# Stage 2: normalized images and label images from the Kaggle layout, then the data split.


rule prepare_dataset:
    input:
        manifest=dataset_manifest(),
    output:
        images=directory("results/prepared/images"),
        labels=directory("results/prepared/labels"),
        table="results/prepared/prepared.csv",
        skipped="results/prepared/skipped.csv",
    log:
        "logs/prepare_dataset.log",
    benchmark:
        "results/benchmarks/prepare_dataset.tsv"
    conda:
        "../../envs/data.yaml"
    threads: config["prepare"]["threads"]
    resources:
        mem_mb=4000,
    params:
        settings=config["prepare"],
    script:
        "../scripts/prepare_dataset.py"


rule split_dataset:
    input:
        table=rules.prepare_dataset.output.table,
    output:
        split="results/split.csv",
        index="results/index.csv",
    log:
        "logs/split_dataset.log",
    conda:
        "../../envs/data.yaml"
    params:
        settings=config["split"],
    script:
        "../scripts/split_dataset.py"
