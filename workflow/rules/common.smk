# Config validation and the input functions that the rules share. Nothing else lives here.
from snakemake.utils import validate


validate(config, schema="../schemas/config.schema.yaml")


def dataset_manifest():
    """dataset.json of the configured source: generated, or downloaded/located."""
    if config["dataset"]["source"] == "synthetic":
        return "resources/synthetic/dataset.json"
    return "resources/dsb2018/dataset.json"


def all_targets():
    """What `rule all` builds: every stage that exists so far."""
    return [
        "results/index.csv",
        expand("results/tiles/{split}/tiles.csv", split=["train", "val"]),
    ]
