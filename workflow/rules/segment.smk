# Stage 6: new batches. Images are segmented in chunks of segment.images_per_chunk images (a
# GPU job each on a cluster), their nuclei measured on the raw pixels, and the batch's tables and
# figures gathered for the report.


wildcard_constraints:
    batch="[A-Za-z0-9][A-Za-z0-9_.-]*",
    chunk="chunk[0-9]+",


rule make_synthetic_batch:
    output:
        expand(
            "{folder}/{name}",
            folder=batch_listing.SYNTHETIC_FOLDER,
            name=batch_listing.SYNTHETIC_BATCH_FILES,
        ),
    log:
        "logs/make_synthetic_batch.log",
    localrule: True
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/make_synthetic_batch.py"


# With segment.on_bad_image: fail, every file of the batch is read once, so that one run names
# all the files that cannot be used, not the first. Segmentation jobs do not wait for it (a
# new image would otherwise rerun every chunk); each checks its own files before it segments.
rule check_images:
    input:
        images=lambda wildcards: BATCHES[wildcards.batch],
    output:
        checked="results/batches/{batch}/checked.csv",
    log:
        "logs/check_images/{batch}.log",
    # First, before the segment jobs take the cores: when a file is bad, this is the error
    # that names every bad file of the batch.
    priority: 100
    conda:
        "../../envs/data.yaml"
    params:
        nuclear_channel=config["segment"]["nuclear_channel"],
        pages=config["segment"]["pages"],
        block_size=config["segment"]["block_size"],
    script:
        "../scripts/check_images.py"


rule segment_images:
    input:
        unpack(lambda wildcards: segment_model()),
        images=chunk_images,
    output:
        labels=directory("results/batches/{batch}/labels/{chunk}"),
        probabilities=directory("results/batches/{batch}/probabilities/{chunk}"),
        table="results/batches/{batch}/segmented/{chunk}.csv",
        confidence="results/batches/{batch}/segmented/{chunk}_confidence.csv",
    log:
        "logs/segment_images/{batch}/{chunk}.log",
    benchmark:
        "results/benchmarks/segment_images/{batch}/{chunk}.tsv"
    conda:
        "../../envs/tensorflow.yaml"
    threads: config["segment"]["threads"]
    resources:
        gpu=1,
        mem_mb=8000,
    params:
        settings=segment_settings(),
        tiling=inference_tiling(),
        tta=config["segment"]["tta"],
        rescale=inference_rescale(),
        backend=inference_backend(),
    script:
        "../scripts/segment_images.py"


rule measure_nuclei:
    input:
        table="results/batches/{batch}/segmented/{chunk}.csv",
        confidence="results/batches/{batch}/segmented/{chunk}_confidence.csv",
        labels="results/batches/{batch}/labels/{chunk}",
    output:
        nuclei="results/batches/{batch}/measurements/{chunk}.csv",
        seconds="results/batches/{batch}/measurements/{chunk}_seconds.csv",
        overlays=report(
            directory("results/batches/{batch}/overlays/{chunk}"),
            patterns=["{name}.png"],
            caption="../report/overlay.rst",
            category="Batch {batch}",
            subcategory="Outlines",
        ),
    log:
        "logs/measure_nuclei/{batch}/{chunk}.log",
    benchmark:
        "results/benchmarks/measure_nuclei/{batch}/{chunk}.tsv"
    # Short CPU jobs: on a cluster the profile bundles several into one submission.
    group:
        "measure"
    conda:
        "../../envs/data.yaml"
    resources:
        mem_mb=4000,
    params:
        nuclear_channel=config["segment"]["nuclear_channel"],
        pages=config["segment"]["pages"],
        features=config["segment"]["measure_features"],
        blocks={k: config["segment"][k] for k in ("block_size", "block_margin")},
    script:
        "../scripts/measure_nuclei.py"


rule report_batch:
    input:
        checked=checked_batch,
        tables=lambda wildcards: expand(
            "results/batches/{{batch}}/segmented/{chunk}.csv",
            chunk=batch_chunks(wildcards.batch),
        ),
        nuclei=lambda wildcards: expand(
            "results/batches/{{batch}}/measurements/{chunk}.csv",
            chunk=batch_chunks(wildcards.batch),
        ),
        seconds=lambda wildcards: expand(
            "results/batches/{{batch}}/measurements/{chunk}_seconds.csv",
            chunk=batch_chunks(wildcards.batch),
        ),
        overlays=lambda wildcards: expand(
            "results/batches/{{batch}}/overlays/{chunk}",
            chunk=batch_chunks(wildcards.batch),
        ),
    output:
        nuclei="results/batches/{batch}/nuclei.csv",
        images="results/batches/{batch}/images.csv",
        skipped="results/batches/{batch}/skipped.csv",
        montage=report(
            "results/batches/{batch}/montage.png",
            caption="../report/montage.rst",
            category="Batch {batch}",
            subcategory="Overview",
        ),
        distributions=report(
            "results/batches/{batch}/distributions.png",
            caption="../report/distributions.rst",
            category="Batch {batch}",
            subcategory="Overview",
        ),
    log:
        "logs/report_batch/{batch}.log",
    conda:
        "../../envs/data.yaml"
    params:
        report_images=config["segment"]["report_images"],
    script:
        "../scripts/report_batch.py"
