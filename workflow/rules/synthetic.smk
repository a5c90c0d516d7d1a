# Stage 1 (demo and tests): generate nuclei images with exact ground truth in Kaggle's layout.


rule make_synthetic_dataset:
    output:
        manifest="resources/synthetic/dataset.json",
    log:
        "logs/make_synthetic_dataset.log",
    localrule: True
    conda:
        "../../envs/data.yaml"
    params:
        settings=config["dataset"]["synthetic"],
    script:
        "../scripts/make_synthetic_dataset.py"
