# Stage 4: train the MobileNetV2 U-Net on the training tiles (a GPU job on a cluster).


rule train_model:
    input:
        train=expand(
            "results/tiles/train/{name}",
            name=["images.npy", "labels.npy", "tiles.csv"],
        ),
        val=expand(
            "results/tiles/val/{name}", name=["images.npy", "labels.npy", "tiles.csv"]
        ),
        split=rules.split_dataset.output.split,
    output:
        model="results/model/model.keras",
        config="results/model/config.json",
        history="results/model/history.csv",
        curves=report(
            "results/model/training_curves.png",
            caption="../report/training_curves.rst",
            category="Training",
        ),
    log:
        "logs/train_model.log",
    benchmark:
        "results/benchmarks/train_model.tsv"
    conda:
        "../../envs/tensorflow.yaml"
    threads: config["train"]["threads"]
    resources:
        gpu=config["train"]["gpus"],
        mem_mb=12000,
        runtime=24 * 60,
    params:
        settings=training_settings(),
        state="results/model_state",
    script:
        "../scripts/train_model.py"
