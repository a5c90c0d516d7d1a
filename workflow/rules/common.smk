# Config validation and the input functions that the rules share. Nothing else lives here.
import sys
from pathlib import Path

import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

# The package's parse-time helpers (batches, chunks, config_keys, inference, modelconfig,
# modelfolder, modelsource, run_end) use the standard library only (package.smk puts the
# package on sys.path).
from nucleiseg import batches as batch_listing
from nucleiseg import chunks, config_keys, run_end
from nucleiseg.errors import NucleisegError
from nucleiseg.inference import BACKEND_KEYS, RESCALE_KEYS, TILING_KEYS
from nucleiseg.modelconfig import training_settings as model_settings
from nucleiseg import modelfolder
from nucleiseg.modelfolder import check_model_folder, model_files
from nucleiseg import modelsource

# Relative to this file, not workflow.basedir (the outer workflow's folder in a module);
# source_path gives a local copy when the workflow is read from a git host.
CONFIG_SCHEMA = Path(workflow.source_path(f"../../{config_keys.SCHEMA_FILE}"))


def check_config(cfg):
    """Each mistake as one line naming its dotted key, before `validate` fills the defaults
    (its own message prints the whole schema and config)."""
    schema = yaml.safe_load(CONFIG_SCHEMA.read_text())
    try:
        config_keys.check_renamed_keys(cfg)
        config_keys.type_command_line_values(
            cfg, workflow.config_settings.config, schema
        )
        config_keys.check_config(cfg, schema)
    except NucleisegError as exc:
        raise WorkflowError(str(exc)) from None
    validate(cfg, schema=str(CONFIG_SCHEMA))


check_config(config)


def check_config_consistency(cfg):
    """What the schema cannot say: rules that involve two keys."""
    dataset = cfg["dataset"]
    if dataset["source"] == "local" and not dataset["local"]["path"]:
        raise WorkflowError(
            "dataset.source is local but dataset.local.path is empty: set it to Kaggle's zip, "
            "stage1_train.zip or an extracted DSB2018 folder"
        )
    tiles = cfg["tiles"]
    if tiles["overlap"] >= tiles["size"]:
        raise WorkflowError(
            f"tiles.overlap ({tiles['overlap']}) must be smaller than tiles.size ({tiles['size']})"
        )
    total = sum(cfg["split"]["fractions"].values())
    if abs(total - 1) > 1e-6:
        raise WorkflowError(
            f"split.fractions must add up to 1, they add up to {total:g}"
        )


check_config_consistency(config)


def dataset_manifest():
    """dataset.json of the configured source: generated, or downloaded/located."""
    if config["dataset"]["source"] == "synthetic":
        return "resources/synthetic/dataset.json"
    return "resources/dsb2018/dataset.json"


def training_settings():
    """The config sections that decide the model: a change to anything else does not retrain."""
    return model_settings(config)


def list_batches():
    """name -> sorted files, for every batch: config's `batches` and resources/batches/<name>/."""
    try:
        declared = batch_listing.declared_batches(config["batches"])
        listed = {}
        for name, spec in declared.items():
            files = batch_listing.find_batch_files(spec)
            batch_listing.check_unique_ids(files)
            listed[name] = [str(f) for f in files]
        return listed
    except NucleisegError as exc:
        raise WorkflowError(str(exc)) from None


BATCHES = list_batches()
# batch -> chunk -> files, kept in results/batches/<batch>/chunks.csv from run to run, so that
# adding or removing images reruns only the chunks they are in.
CHUNKS = {
    batch: chunks.batch_chunks(
        f"results/batches/{batch}", files, config["segment"]["images_per_chunk"]
    )
    for batch, files in BATCHES.items()
}


def batch_chunks(batch):
    return list(CHUNKS[batch])


def chunk_images(wildcards):
    """The image files of one chunk (one segment_images and one measure_nuclei job)."""
    return CHUNKS[wildcards.batch][wildcards.chunk]


def checked_batch(wildcards):
    """The batch's check of every file, in fail mode (an input of the batch's report)."""
    if config["segment"]["on_bad_image"] != "fail":
        return []
    return rules.check_images.output.checked.format(batch=wildcards.batch)


MODEL_FOLDER = "results/model"


def check_segment_model(segment):
    """The folder segment_images reads, checked once at parse time, before any image is read
    and so that the input function segment_model never raises: this workflow's model; a
    segment.model folder (config.json readable, compatible format, model.keras and
    thresholds.json present); or, for an archive by address with its segment.model_sha256,
    resources/models/<sha256>, which the rule fetch_model fetches and checks."""
    try:
        archive = modelsource.model_archive(segment["model"], segment["model_sha256"])
    except NucleisegError as exc:
        raise WorkflowError(str(exc)) from None
    if archive:
        return archive.folder
    if not segment["model"]:
        return MODEL_FOLDER
    try:
        check_model_folder(segment["model"])
    except NucleisegError as exc:
        raise WorkflowError(f"segment.model: {exc}") from None
    return segment["model"]


SEGMENT_MODEL = check_segment_model(config["segment"])


def segment_model():
    """The model folder's files: this workflow's model, segment.model, or its fetched copy."""
    return model_files(SEGMENT_MODEL)


def batch_outputs(batch):
    """A batch's final targets: its tables and montage, and with segment.exports its chunks'
    exports for viewers."""
    outputs = [
        f"results/batches/{batch}/{name}"
        for name in ("nuclei.csv", "images.csv", "skipped.csv", "montage.png")
    ]
    if config["segment"]["exports"]:
        outputs += expand(
            "results/batches/{batch}/exports/{chunk}",
            batch=batch,
            chunk=batch_chunks(batch),
        )
    return outputs


# The segment keys that segment_images reads (segment.SegmentSettings): a change to another
# segment key (the report, the exports, the measurements) reruns no segmentation.
SEGMENT_SETTING_KEYS = (
    "nuclear_channel",
    "pages",
    "pixel_size_um",
    "on_bad_image",
    "save_probabilities",
    "block_size",
    "block_margin",
)


def segment_settings():
    return {k: config["segment"][k] for k in SEGMENT_SETTING_KEYS}


def inference_tiling():
    """How evaluation and segmentation cut images into tiles: the same way for both."""
    return {k: config["segment"][k] for k in TILING_KEYS}


def inference_rescale():
    """How evaluation and segmentation resize images for the network: the same way for both."""
    return {k: config["segment"][k] for k in RESCALE_KEYS}


def inference_backend():
    """Which engine runs the network, in what precision: the same for every stage."""
    return {k: config["segment"][k] for k in BACKEND_KEYS}


def all_targets():
    """The final targets (the all rule): training and evaluation, and every batch.

    With segment.model set, the workflow only segments: nothing is trained.
    """
    targets = []
    if not config["segment"]["model"]:
        targets += [
            "results/index.csv",
            expand("results/tiles/{split}/tiles.csv", split=["train", "val"]),
            model_files(MODEL_FOLDER)["config"],
            "results/evaluation/summary.csv",
            f"{MODEL_FOLDER}/{modelfolder.MODEL_CARD_FILE}",
        ]
    for batch in BATCHES:
        targets += batch_outputs(batch)
    return targets
