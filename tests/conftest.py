"""Shared fixtures: where the real DSB2018 data is, small real subsets of it, a Snakemake runner,
and a check that a figure shows something."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED_DSB = REPO.parent / "shared" / "data" / "dsb2018"
SHARED_WEIGHTS = REPO.parent / "shared" / "data" / "weights"
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
# Workflow settings for a network small enough to train in seconds from random weights (no
# download): for tests that run the training, threshold and evaluation rules for real.
TINY_MODEL = {
    "model": {"alpha": 0.35, "encoder_weights": "none", "decoder_filters": [16, 16, 8, 8, 8]},
    "train": {"patch_size": 64, "patches_per_step": 4, "epochs_frozen": 1, "epochs": 2,
              "steps_per_epoch": 3, "max_val_tiles": 4, "threads": 2},
}


def _need_shared_dsb() -> Path:
    if not (SHARED_DSB / "stage1_train").is_dir():
        pytest.skip(f"real DSB2018 images not found at {SHARED_DSB} (see README: Test data)")
    return SHARED_DSB


@pytest.fixture(scope="session")
def dsb_meta() -> pd.DataFrame:
    return pd.read_csv(_need_shared_dsb() / "stage1_train_meta.csv", dtype={"id": str})


def pick_ids(meta: pd.DataFrame, per_modality: dict[str, int]) -> list[str]:
    """A deterministic choice of ids: for each modality, the smallest images first, varied sizes."""
    chosen = []
    for modality, count in per_modality.items():
        rows = meta[meta["modality"] == modality].sort_values(["height", "width", "id"])
        # One of each size first, then fill up with the rest in id order.
        firsts = rows.drop_duplicates(["height", "width"])
        rest = rows.drop(firsts.index)
        chosen += pd.concat([firsts, rest])["id"].head(count).tolist()
    return chosen


def link_subset(ids: list[str], folder: Path) -> Path:
    """A Kaggle-layout folder of symbolic links to shared images: real data, nothing copied."""
    folder.mkdir(parents=True, exist_ok=True)
    for sample_id in ids:
        (folder / sample_id).symlink_to(SHARED_DSB / "stage1_train" / sample_id)
    return folder


@pytest.fixture(scope="session")
def dsb_subset_ids(dsb_meta) -> list[str]:
    """About 20 real images covering every modality (the brightfield ones are 1024x1024)."""
    return pick_ids(dsb_meta, {"fluorescence_gray": 12, "color_stained": 5, "brightfield_gray": 3})


def copy_sample(sample_id: str, dest_root: Path) -> Path:
    """A writable copy of one real sample, for tests that damage it."""
    import shutil

    source = SHARED_DSB / "stage1_train" / sample_id
    target = dest_root / sample_id
    shutil.copytree(source, target)
    return target


def run_snakemake(workdir: Path, config: dict, *args: str, check: bool = True, timeout: int = 600):
    """A real `snakemake` run of this repository's workflow in `workdir` with `config`."""
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "test_config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    command = [
        str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
        "--configfile", str(config_path), "--cores", "2", *args,
    ]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def assert_figure(path: Path, min_size: tuple[int, int] = (300, 200), min_ink: float = 0.05,
                  min_colour: float = 0.0) -> None:
    """Check that the PNG at `path` is a plausible size and shows something, not a blank canvas.

    min_size: the least (width, height) in pixels. min_ink: the least share of pixels that are
    not white; empty axes with titles alone reach about 0.06. min_colour: the least share of
    coloured pixels (the data: matplotlib draws axes and text in black and grey, bars and lines
    in colour), for figures that must show data rather than empty axes.
    """
    import imageio.v3 as iio

    pixels = iio.imread(path)
    if pixels.ndim == 2:
        pixels = np.stack([pixels] * 3, axis=-1)
    if pixels.shape[-1] == 4:  # composite over white: a transparent pixel shows nothing
        alpha = pixels[..., 3:].astype(float) / 255
        pixels = (pixels[..., :3] * alpha + 255 * (1 - alpha)).round().astype(np.uint8)
    height, width = pixels.shape[:2]
    assert width >= min_size[0] and height >= min_size[1], f"{path}: only {width}x{height} pixels"
    n_colours = len(np.unique(pixels.reshape(-1, 3), axis=0))
    assert n_colours > 16, f"{path}: blank, {n_colours} distinct colours"
    ink = (pixels < 250).any(axis=-1).mean()
    assert ink >= min_ink, f"{path}: {ink:.1%} of the pixels are not white, expected {min_ink:.0%}"
    chroma = pixels.max(axis=-1).astype(int) - pixels.min(axis=-1)
    colour = (chroma > 30).mean()
    assert colour >= min_colour, (
        f"{path}: {colour:.2%} of the pixels in colour, expected {min_colour:.1%}")
