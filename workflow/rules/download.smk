# Stage 1 (real data): fetch DSB2018 from Kaggle or the Broad, or locate it on disk.
# A localrule: cluster login nodes have internet, compute nodes often don't.


rule download_dataset:
    output:
        manifest="resources/dsb2018/dataset.json",
    log:
        "logs/download_dataset.log",
    localrule: True
    conda:
        "../../envs/data.yaml"
    params:
        settings=config["dataset"],
    script:
        "../scripts/download_dataset.py"
