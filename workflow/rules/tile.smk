# Stage 3: fixed-size training tiles of the train and val images, as memory-mappable arrays.


rule tile_images:
    input:
        index=rules.split_dataset.output.index,
        images=rules.prepare_dataset.output.images,
        labels=rules.prepare_dataset.output.labels,
    output:
        images="results/tiles/{split}/images.npy",
        labels="results/tiles/{split}/labels.npy",
        table="results/tiles/{split}/tiles.csv",
    log:
        "logs/tile_images_{split}.log",
    benchmark:
        "results/benchmarks/tile_images_{split}.tsv"
    wildcard_constraints:
        split="train|val",
    conda:
        "../../envs/data.yaml"
    resources:
        mem_mb=2000,
    params:
        settings=config["tiles"],
    script:
        "../scripts/tile_images.py"
