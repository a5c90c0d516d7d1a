# Stage 7: exports for viewers (segment.exports): each chunk's nuclei as GeoJSON detections for
# QuPath and ImageJ ROI sets for Fiji, traced from the label images, with nuclei.csv's values.


rule export_nuclei:
    input:
        table="results/batches/{batch}/segmented/{chunk}.csv",
        nuclei="results/batches/{batch}/measurements/{chunk}.csv",
        labels="results/batches/{batch}/labels/{chunk}",
    output:
        exports=directory("results/batches/{batch}/exports/{chunk}"),
    log:
        "logs/export_nuclei/{batch}/{chunk}.log",
    # Short CPU jobs: on a cluster the profile bundles several into one submission.
    group:
        "export"
    conda:
        "../../envs/data.yaml"
    resources:
        mem_mb=4000,
    params:
        exports=config["segment"]["exports"],
        # the blocks measure_nuclei read a large image's labels over
        blocks={k: config["segment"][k] for k in ("block_size", "block_margin")},
    script:
        "../scripts/export_nuclei.py"
