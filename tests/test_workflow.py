"""Real Snakemake runs of the whole workflow: real DSB2018 images, then the synthetic demo."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile

from conftest import SHARED_DSB, TINY_MODEL, assert_figure, link_subset, run_snakemake
from nucleiseg.manifest import Manifest
from nucleiseg.tiles import load_prepared, pad_to_tile, reassemble

pytestmark = pytest.mark.slow
TILE = 256
DATA_TARGETS = ("results/index.csv", "results/tiles/train/tiles.csv", "results/tiles/val/tiles.csv")


@pytest.fixture(scope="module")
def dsb_run(tmp_path_factory, dsb_subset_ids):
    """One workflow run on ~20 real images read in place (source: local)."""
    root = tmp_path_factory.mktemp("dsb_run")
    source = link_subset(dsb_subset_ids, root / "dsb2018" / "stage1_train")
    config = {"dataset": {"source": "local", "local": {"path": str(source.parent)}},
              "split": {"fractions": {"train": 0.6, "val": 0.2, "test": 0.2}}}
    run_snakemake(root / "work", config, *DATA_TARGETS)
    return root / "work", dsb_subset_ids


def test_manifest_points_at_the_data_in_place(dsb_run):
    work, ids = dsb_run
    manifest = Manifest.read(work / "resources" / "dsb2018" / "dataset.json")
    assert manifest.source == "local" and manifest.n_images == len(ids)
    assert Path(manifest.stage1_train).resolve() != (work / "resources").resolve()
    assert not (work / "resources" / "dsb2018" / "stage1_train").exists()  # nothing copied


def test_prepared_images_and_labels(dsb_run):
    work, ids = dsb_run
    index = pd.read_csv(work / "results" / "index.csv", dtype={"id": str}).set_index("id")
    assert sorted(index.index) == sorted(ids)
    assert set(index["modality"]) == {"fluorescence", "brightfield", "stained"}
    for sample_id, row in index.iterrows():
        image = tifffile.imread(work / "results" / "prepared" / "images" / f"{sample_id}.tif")
        labels = tifffile.imread(work / "results" / "prepared" / "labels" / f"{sample_id}.tif")
        assert image.dtype == np.float32 and labels.dtype == np.uint16
        assert image.shape[:2] == labels.shape == (row["height"], row["width"])
        assert np.isfinite(image).all()
        assert np.percentile(image, 1.0) == pytest.approx(0, abs=0.01)
        assert np.percentile(image, 99.8) == pytest.approx(1, abs=0.01)
        n_masks = len(list((SHARED_DSB / "stage1_train" / sample_id / "masks").iterdir()))
        assert len(np.unique(labels)) - 1 == n_masks == row["n_nuclei"], sample_id
    assert pd.read_csv(work / "results" / "prepared" / "skipped.csv").empty


def test_split_is_written_and_matches_the_index(dsb_run):
    work, ids = dsb_run
    split = pd.read_csv(work / "results" / "split.csv", dtype={"id": str})
    index = pd.read_csv(work / "results" / "index.csv", dtype={"id": str})
    assert sorted(split["id"]) == sorted(ids)
    assert set(split["split"]) == {"train", "val", "test"}
    merged = index.merge(split, on="id", suffixes=("", "_file"))
    assert (merged["split"] == merged["split_file"]).all()


@pytest.mark.parametrize("split", ["train", "val"])
def test_tiles_reassemble_to_the_padded_images(dsb_run, split):
    work, _ = dsb_run
    folder = work / "results" / "tiles" / split
    images = np.load(folder / "images.npy", mmap_mode="r")
    labels = np.load(folder / "labels.npy", mmap_mode="r")
    table = pd.read_csv(folder / "tiles.csv", dtype={"id": str})
    index = pd.read_csv(work / "results" / "index.csv", dtype={"id": str})
    assert sorted(table["id"].unique()) == sorted(index.loc[index["split"] == split, "id"])
    assert images.shape == (len(table), TILE, TILE, 3) and images.dtype == np.float16
    assert labels.shape == (len(table), TILE, TILE) and labels.dtype == np.uint16
    prepared = work / "results" / "prepared"
    for sample_id, group in table.groupby("id"):
        image, label = load_prepared(prepared / "images", prepared / "labels", sample_id)
        padded, padded_labels = pad_to_tile(image, label, TILE)
        positions = list(zip(group["y"], group["x"]))
        rebuilt = reassemble(images[group["tile"]], positions, padded.shape[:2])
        assert np.array_equal(rebuilt, padded.astype(np.float16)), sample_id
        rebuilt_fg = reassemble(labels[group["tile"]] > 0, positions, padded.shape[:2])
        assert np.array_equal(rebuilt_fg, padded_labels > 0), sample_id


def test_rerun_has_nothing_to_do(dsb_run):
    work, ids = dsb_run
    config_path = work / "test_config.yaml"
    import yaml

    result = run_snakemake(work, yaml.safe_load(config_path.read_text()), "--dry-run", *DATA_TARGETS)
    assert "Nothing to be done" in result.stdout + result.stderr


def test_synthetic_demo_through_every_stage(tmp_path):
    """The demo's path: generated data, exact ground truth carried into the prepared labels,
    then a (tiny) model trained, thresholds chosen and the test split scored."""
    from nucleiseg.synthetic import dataset_sample

    settings = {"n_images": 6, "height": 96, "width": 128, "bit_depth": 16, "seed": 3}
    config = {"dataset": {"source": "synthetic", "synthetic": settings},
              "split": {"fractions": {"train": 0.5, "val": 0.25, "test": 0.25}},
              "tiles": {"size": 64, "overlap": 16}, **TINY_MODEL}
    run_snakemake(tmp_path, config)
    index = pd.read_csv(tmp_path / "results" / "index.csv", dtype={"id": str})
    assert len(index) == 6 and set(index["modality"]) == {"fluorescence", "brightfield", "stained"}
    for k in range(6):
        sample_id, truth = dataset_sample(k, height=96, width=128, bit_depth=16, seed=3)
        row = index.set_index("id").loc[sample_id]
        labels = tifffile.imread(tmp_path / "results" / "prepared" / "labels" / f"{sample_id}.tif")
        assert row["n_nuclei"] == truth.n_nuclei
        assert np.array_equal(labels > 0, truth.labels > 0)
        expected_dtype = "uint8" if truth.modality == "stained" else "uint16"
        assert row["source_dtype"] == expected_dtype
    for split in ("train", "val"):
        assert (tmp_path / "results" / "tiles" / split / "images.npy").stat().st_size > 0
    for name in ("config.json", "model.keras", "thresholds.json"):
        assert (tmp_path / "results" / "model" / name).stat().st_size > 0
    # The figures show the loss curves and the score bars, not only empty axes.
    assert_figure(tmp_path / "results" / "model" / "training_curves.png", min_colour=0.003)
    assert_figure(tmp_path / "results" / "evaluation" / "scores.png", min_colour=0.01)
    summary = pd.read_csv(tmp_path / "results" / "evaluation" / "summary.csv")
    assert set(summary["method"]) == {"network", "classical"}
