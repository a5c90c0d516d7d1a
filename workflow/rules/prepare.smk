# Stage 2: normalized images and label images from the Kaggle layout, then the data split.


rule prepare_dataset:
    input:
        manifest=dataset_manifest(),
    output:
        images=directory("results/prepared/images"),
        labels=directory("results/prepared/labels"),
        table="results/prepared/prepared.csv",
        skipped="results/prepared/skipped.csv",
    params:
        settings=config["prepare"],
    threads: config["prepare"]["threads"]
    resources:
        mem_mb=4000,
    log:
        "logs/prepare_dataset.log",
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/prepare_dataset.py"


rule split_dataset:
    input:
        table=rules.prepare_dataset.output.table,
    output:
        split="results/split.csv",
        index="results/index.csv",
    params:
        settings=config["split"],
    log:
        "logs/split_dataset.log",
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/split_dataset.py"
