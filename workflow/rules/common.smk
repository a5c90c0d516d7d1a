# Config validation and the input functions that the rules share. Nothing else lives here.
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

validate(config, schema="../schemas/config.schema.yaml")

# The package's parse-time helpers (batches, modelfolder) use the standard library only.
sys.path.insert(0, str(Path(workflow.basedir) / "workflow" / "scripts"))
from nucleiseg import batches as batch_listing
from nucleiseg.errors import NucleisegError
from nucleiseg.modelfolder import THRESHOLDS_FILE, check_model_folder


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
    return {
        "model": config["model"],
        # train.gpus only says where to train (the rule's gpu resource), not what
        "train": {k: v for k, v in config["train"].items() if k != "gpus"},
        "prepare": {"normalize": config["prepare"]["normalize"]},
    }


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
        len(BATCHES[batch]), config["segment"]["images_per_job"]
    )


def chunk_images(wildcards):
    """The image files one segment_images/measure_nuclei job works on."""
    return batch_listing.chunk_files(
        BATCHES[wildcards.batch],
        config["segment"]["images_per_job"],
        wildcards.chunk,
    )


def segment_model():
    """The model folder's files: this workflow's model, or segment.model checked now.

    A model trained elsewhere is checked at parse time (config.json readable, compatible
    format, model.keras and thresholds.json present), before any image is read.
    """
    folder = config["segment"]["model"]
    if not folder:
        return {
            "model": "results/model/model.keras",
            "config": "results/model/config.json",
            "thresholds": "results/model/thresholds.json",
        }
    try:
        check_model_folder(folder)
    except NucleisegError as exc:
        raise WorkflowError(f"segment.model: {exc}") from None
    thresholds = Path(folder) / THRESHOLDS_FILE
    if not thresholds.is_file():
        raise WorkflowError(
            f"segment.model: {thresholds} is missing; run rule optimize_thresholds for "
            "that model (or copy the thresholds.json that came with it)"
        )
    return {
        "model": str(Path(folder) / "model.keras"),
        "config": str(Path(folder) / "config.json"),
        "thresholds": str(thresholds),
    }


def batch_outputs(batch):
    return [
        f"results/batches/{batch}/{name}"
        for name in ("nuclei.csv", "images.csv", "skipped.csv", "montage.png")
    ]


def inference_tiling():
    """How evaluation and segmentation cut images into tiles: the same way for both."""
    return {k: config["segment"][k] for k in ("tile_size", "overlap", "batch_size")}


def all_targets():
    """The final targets (the all rule): training and evaluation, and every batch.

    With segment.model set, the workflow only segments: nothing is trained.
    """
    targets = []
    if not config["segment"]["model"]:
        targets += [
            "results/index.csv",
            expand("results/tiles/{split}/tiles.csv", split=["train", "val"]),
            "results/model/config.json",
            "results/evaluation/summary.csv",
        ]
    for batch in BATCHES:
        targets += batch_outputs(batch)
    return targets
