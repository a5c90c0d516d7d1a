# Stage 6: sharing the trained model. The model card (MODEL_CARD.md in the model folder: data,
# settings, scores, intended use, limits) is a final target whenever the workflow trains; the
# BioImage Model Zoo package is made on request: `snakemake --cores all export_model`.


rule write_model_card:
    input:
        config=rules.train_model.output.config,
        history=rules.train_model.output.history,
        thresholds=rules.optimize_thresholds.output.thresholds,
        manifest=dataset_manifest(),
        index=rules.split_dataset.output.index,
        summary=rules.evaluate_model.output.summary,
    output:
        card=f"{MODEL_FOLDER}/{modelfolder.MODEL_CARD_FILE}",
    log:
        "logs/write_model_card.log",
    conda:
        "../../envs/data.yaml"
    params:
        # Read when present, not an input: a missing benchmark must not retrain the model.
        training_benchmark=rules.train_model.benchmark,
    script:
        "../scripts/write_model_card.py"


rule export_model:
    input:
        network=rules.train_model.output.network,
        config=rules.train_model.output.config,
        thresholds=rules.optimize_thresholds.output.thresholds,
        card=rules.write_model_card.output.card,
        manifest=dataset_manifest(),
        index=rules.split_dataset.output.index,
    output:
        package="results/model_export/nucleiseg.bioimageio.zip",
    log:
        "logs/export_model.log",
    benchmark:
        "results/benchmarks/export_model.tsv"
    conda:
        "../../envs/tensorflow.yaml"
    threads: config["train"]["threads"]
    resources:
        mem_mb=8000,
    script:
        "../scripts/export_model.py"
