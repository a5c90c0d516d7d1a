"""Shared fixtures: where the real DSB2018 data is, small real subsets of it, a Snakemake runner,
a check that a figure shows something, and a network that looks at each pixel alone (for the
block-wise path: tests/test_blocks.py, tests/test_ome_zarr.py)."""

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
# download): for tests that run the training, threshold and evaluation rules for real. No
# frozen phase (a random encoder has nothing to protect, as in config/demo.yaml): its second
# graph build cost each of these runs about a fifth of its time. The tests of the phases ask
# for one (test_resume, test_reproducible, test_training).
TINY_MODEL = {
    "model": {"alpha": 0.35, "encoder_weights": "none", "decoder_filters": [16, 16, 8, 8, 8]},
    "train": {"patch_size": 64, "patches_per_step": 4, "epochs_frozen": 0, "epochs": 2,
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


@pytest.fixture(scope="session")
def pointwise_model():
    """A real network that looks at each pixel alone (a 1 x 1 convolution): its maps do not
    depend on the window around a pixel, so the block-wise path must give exactly the whole
    image's nuclei. Foreground: normalized intensity above 0.2; no contours."""
    import keras

    from nucleiseg.inference import Tiling
    from nucleiseg.instances import Thresholds
    from nucleiseg.model import NucleusModel
    from nucleiseg.modelconfig import ModelConfig

    network = keras.Sequential([keras.Input((None, None, 3)),
                                keras.layers.Conv2D(2, 1, activation="sigmoid")])
    kernel = np.zeros((1, 1, 3, 2), np.float32)
    kernel[..., 0] = 20 / 3
    network.layers[0].set_weights([kernel, np.array([-4.0, -10.0], np.float32)])
    return NucleusModel(network, ModelConfig(), Thresholds(0.5, 0.5, 5),
                        Tiling(tile_size=256, overlap=32, tiles_per_step=2))


def segment_and_measure(model, image: Path, settings, out: Path, nuclear_channel: int = 0):
    """One image segmented (segment_images) and measured (measure_nuclei) into `out`: its
    segmented table, nuclei table and images.csv rows."""
    from nucleiseg.measure import measure_nuclei
    from nucleiseg.report import images_table
    from nucleiseg.segment import segment_images

    table = segment_images(model, [image], settings, out / "labels", out / "probabilities",
                           out / "segmented.csv", out / "confidence.csv")
    confidence = pd.read_csv(out / "confidence.csv", dtype={"image_id": str})
    nuclei, seconds = measure_nuclei(table, confidence, nuclear_channel, out / "overlays",
                                     blocks={"block_size": settings.block_size,
                                             "block_margin": settings.block_margin})
    return table, nuclei, images_table(table, nuclei, seconds)


def write_ome_zarr(path: Path, data: np.ndarray, axes: str = "cyx", zarr_format: int = 3,
                   pixel_size: float | None = None, unit: str = "micrometer",
                   chunks: tuple[int, ...] | None = None) -> Path:
    """`data` as a one-level OME-Zarr image, as NGFF writers lay it out: NGFF 0.5 (zarr v3,
    zarr.json's attributes.ome) or NGFF 0.4 (zarr v2, .zattrs); `pixel_size` in `unit` on y
    and x (none: no unit, scale 1)."""
    import zarr

    group = zarr.open_group(str(path), mode="w", zarr_format=zarr_format)
    group.create_array("0", data=data, chunks=chunks or tuple(min(n, 64) for n in data.shape))
    kinds = {"t": "time", "c": "channel"}
    described = [{"name": a, "type": kinds.get(a, "space"),
                  **({"unit": unit} if pixel_size and a in "yx" else {})} for a in axes]
    scale = [float(pixel_size) if pixel_size and a in "yx" else 1.0 for a in axes]
    image = {"name": path.name, "axes": described,
             "datasets": [{"path": "0", "coordinateTransformations": [
                 {"type": "scale", "scale": scale}]}]}
    if zarr_format == 3:
        group.attrs["ome"] = {"version": "0.5", "multiscales": [image]}
    else:
        group.attrs["multiscales"] = [{"version": "0.4", **image}]
    return path
