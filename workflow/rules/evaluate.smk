# Stage 5: thresholds chosen on the validation split, then scores on held-out images for the
# network and the classical pipeline (and on Kaggle's stage1_test when the dataset has it).


rule optimize_thresholds:
    input:
        network=rules.train_model.output.network,
        config=rules.train_model.output.config,
        index=rules.split_dataset.output.index,
        images=rules.prepare_dataset.output.images,
        labels=rules.prepare_dataset.output.labels,
    output:
        thresholds=model_files(MODEL_FOLDER)["thresholds"],
        search=f"{MODEL_FOLDER}/{modelfolder.THRESHOLD_SEARCH_FILE}",
    log:
        "logs/optimize_thresholds.log",
    benchmark:
        "results/benchmarks/optimize_thresholds.tsv"
    conda:
        "../../envs/tensorflow.yaml"
    threads: config["train"]["threads"]
    resources:
        gpu=1,
        mem_mb=8000,
    params:
        tiling=inference_tiling(),
        tta=config["segment"]["tta"],
        rescale=inference_rescale(),
        backend=inference_backend(),
    script:
        "../scripts/optimize_thresholds.py"


rule evaluate_model:
    input:
        network=rules.train_model.output.network,
        config=rules.train_model.output.config,
        thresholds=rules.optimize_thresholds.output.thresholds,
        index=rules.split_dataset.output.index,
        images=rules.prepare_dataset.output.images,
        labels=rules.prepare_dataset.output.labels,
        manifest=dataset_manifest(),
    output:
        per_image="results/evaluation/per_image.csv",
        summary="results/evaluation/summary.csv",
        json="results/evaluation/summary.json",
        figure=report(
            "results/evaluation/scores.png",
            caption="../report/evaluation.rst",
            category="Evaluation",
        ),
    log:
        "logs/evaluate_model.log",
    benchmark:
        "results/benchmarks/evaluate_model.tsv"
    conda:
        "../../envs/tensorflow.yaml"
    threads: config["train"]["threads"]
    resources:
        gpu=1,
        mem_mb=8000,
    params:
        tiling=inference_tiling(),
        tta=config["segment"]["tta"],
        rescale=inference_rescale(),
        backend=inference_backend(),
    script:
        "../scripts/evaluate_model.py"
