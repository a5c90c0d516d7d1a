# Models shared by address: segment.model as an http(s):// or file:// URL, or a local .zip of a
# model folder, with segment.model_sha256. Fetched once, checked and unpacked to
# resources/models/<sha256>/, the folder segment_images then reads. A localrule: cluster login
# nodes have internet, compute nodes often don't.


rule fetch_model:
    output:
        **model_files(f"{modelsource.MODELS_FOLDER}/{{sha256}}"),
    log:
        "logs/fetch_model/{sha256}.log",
    wildcard_constraints:
        sha256="[0-9a-f]{64}",
    localrule: True
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/fetch_model.py"
