# Config validation and the input functions that the rules share. Nothing else lives here.
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

# The package's parse-time helpers (batches, config_keys, inference, modelconfig, modelfolder)
# use the standard library only.
sys.path.insert(0, str(Path(workflow.basedir) / "workflow" / "scripts"))
from nucleiseg import batches as batch_listing
from nucleiseg.config_keys import check_renamed_keys
from nucleiseg.errors import NucleisegError
from nucleiseg.inference import TILING_KEYS
from nucleiseg.modelconfig import training_settings as model_settings
from nucleiseg import modelfolder
from nucleiseg.modelfolder import check_model_folder, model_files

try:
    check_renamed_keys(config)
except NucleisegError as exc:
    raise WorkflowError(str(exc)) from None
validate(config, schema="../schemas/config.schema.yaml")


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


def batch_chunks(batch):
    return batch_listing.chunk_names(
        len(BATCHES[batch]), config["segment"]["images_per_chunk"]
    )


def chunk_images(wildcards):
    """The image files of one chunk (one segment_images and one measure_nuclei job)."""
    return batch_listing.chunk_files(
        BATCHES[wildcards.batch],
        config["segment"]["images_per_chunk"],
        wildcards.chunk,
    )


MODEL_FOLDER = "results/model"


def segment_model():
    """The model folder's files: this workflow's model, or segment.model checked now.

    A model trained elsewhere is checked at parse time (config.json readable, compatible
    format, model.keras and thresholds.json present), before any image is read.
    """
    folder = config["segment"]["model"]
    if not folder:
        return model_files(MODEL_FOLDER)
    try:
        check_model_folder(folder)
    except NucleisegError as exc:
        raise WorkflowError(f"segment.model: {exc}") from None
    return model_files(folder)


def batch_outputs(batch):
    return [
        f"results/batches/{batch}/{name}"
        for name in ("nuclei.csv", "images.csv", "skipped.csv", "montage.png")
    ]


def inference_tiling():
    """How evaluation and segmentation cut images into tiles: the same way for both."""
    return {k: config["segment"][k] for k in TILING_KEYS}


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
        ]
    for batch in BATCHES:
        targets += batch_outputs(batch)
    return targets
