# Config validation and the input functions that the rules share. Nothing else lives here.
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

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
    return {
        "model": config["model"],
        "train": config["train"],
        "prepare": {"normalize": config["prepare"]["normalize"]},
    }


def all_targets():
    """The final targets (the all rule): every stage that exists so far."""
    return [
        "results/index.csv",
        expand("results/tiles/{split}/tiles.csv", split=["train", "val"]),
        "results/model/config.json",
        "results/evaluation/summary.csv",
    ]
