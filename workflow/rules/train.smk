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
        network=model_files(MODEL_FOLDER)["network"],
        config=model_files(MODEL_FOLDER)["config"],
        history=f"{MODEL_FOLDER}/{modelfolder.HISTORY_FILE}",
        curves=report(
            f"{MODEL_FOLDER}/{modelfolder.CURVES_FILE}",
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
