"""The synthetic data on disk: a dataset in Kaggle's DSB2018 layout, and the demo's batch."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import ConfigError
from ..io import atomic_dir
from ..manifest import MANIFEST_NAME, Manifest
from ..normalize import MODALITIES
from .nuclei import BIT_DEPTHS, SyntheticImage, dataset_sample, make_nuclei

log = logging.getLogger(__name__)

# The demo's batch (names in batches.SYNTHETIC_BATCH_FILES): one file of each kind a microscope
# hands over. A two-channel 16-bit OME-TIFF larger than one tile, with a pixel size; an 8-bit
# PNG; an RGB stained picture; a field with no nuclei at all.
SYNTHETIC_BATCH_PIXEL_SIZE_UM = 0.5


def make_synthetic_dataset(
    out_dir: str | Path,
    n_images: int,
    height: int,
    width: int,
    bit_depth: int,
    seed: int,
    modalities: Sequence[str] = MODALITIES,
) -> Manifest:
    """Write a synthetic dataset in Kaggle's DSB2018 layout, then its manifest, last.

    out_dir/stage1_train/<id>/images/<id>.png and .../masks/<id>_mask_NNNN.png. Gray images are
    single-channel PNGs at `bit_depth`; stained images stay 8-bit RGB as in the real data. The
    folder appears complete or not at all (atomic_dir), and dataset.json is written after it, so
    its presence means the data is complete.
    """
    modalities = [modalities] if isinstance(modalities, str) else list(modalities)
    _check_dataset_args(n_images, height, width, bit_depth, modalities)
    out_dir = Path(out_dir).resolve()
    train = out_dir / "stage1_train"
    with atomic_dir(train) as tmp:
        for index in range(n_images):
            image_id, sample = dataset_sample(index, height=height, width=width,
                                              bit_depth=bit_depth, seed=seed,
                                              modalities=modalities)
            _write_sample(tmp / image_id, image_id, sample)
            log.info("%s: %d nuclei, %d touching pairs", image_id, sample.n_nuclei,
                     len(sample.pairs))
    manifest = Manifest(
        source="synthetic",
        origin=(f"nucleiseg.synthetic seed={seed} size={height}x{width} bit_depth={bit_depth} "
                f"modalities={','.join(modalities)}"),
        stage1_train=str(train),
        n_images=n_images,
    )
    manifest.write(out_dir / MANIFEST_NAME)
    log.info("wrote %d synthetic images to %s", n_images, train)
    return manifest


def _check_dataset_args(n_images, height, width, bit_depth, modalities) -> None:
    """Settings come from the config (dataset.synthetic), so errors name the config keys."""
    where = "config dataset.synthetic"
    if int(n_images) < 1:
        raise ConfigError(f"{where}.n_images must be at least 1, got {n_images}")
    if int(height) < 1 or int(width) < 1:
        raise ConfigError(f"{where}.height and .width must be at least 1, got {height}x{width}")
    if bit_depth not in BIT_DEPTHS:
        raise ConfigError(f"{where}.bit_depth must be 8 or 16, got {bit_depth}")
    unknown = [m for m in modalities if m not in MODALITIES]
    if not modalities or unknown:
        raise ConfigError(
            f"{where}.modalities must be a non-empty list of {', '.join(MODALITIES)}; "
            f"got {list(modalities)}"
        )


def _write_sample(folder: Path, image_id: str, sample: SyntheticImage) -> None:
    """One image folder in Kaggle's layout: images/<id>.png and one 0/255 PNG per nucleus."""
    import imageio.v3 as iio

    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    iio.imwrite(folder / "images" / f"{image_id}.png", sample.image)
    for label in sample.nuclei["label"]:
        mask = np.where(sample.labels == label, 255, 0).astype(np.uint8)
        iio.imwrite(folder / "masks" / f"{image_id}_mask_{label:04d}.png", mask)


def make_synthetic_batch(out_dir: str | Path, seed: int = 0) -> list[Path]:
    """Write SYNTHETIC_BATCH_FILES into `out_dir` (each file atomically); return their paths."""
    import imageio.v3 as iio
    import tifffile

    from ..batches import SYNTHETIC_BATCH_FILES
    from ..io import atomic_path

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 7])
    two_channel = make_nuclei((640, 896), n_nuclei=140, radius=(7, 12), touching_pairs=20,
                              bit_depth=16, channels=2, seed=rng)
    fluorescence = make_nuclei((256, 256), n_nuclei=25, touching_pairs=4, seed=rng)
    stained = make_nuclei((256, 320), n_nuclei=25, modality="stained", seed=rng)
    blank = np.clip(rng.normal(20, 3, (200, 240)), 0, 255).astype(np.uint8)
    paths = [out_dir / name for name in SYNTHETIC_BATCH_FILES]
    with atomic_path(paths[0]) as tmp:
        size = SYNTHETIC_BATCH_PIXEL_SIZE_UM
        tifffile.imwrite(tmp, np.moveaxis(two_channel.image, -1, 0), ome=True,
                         photometric="minisblack",
                         metadata={"axes": "CYX", "PhysicalSizeX": size, "PhysicalSizeY": size,
                                   "PhysicalSizeXUnit": "µm", "PhysicalSizeYUnit": "µm",
                                   "Channel": {"Name": ["DNA", "Cytoplasm"]}})
    for path, image in zip(paths[1:3], (fluorescence.image, stained.image)):
        with atomic_path(path) as tmp:
            iio.imwrite(tmp, image, extension=".png")
    with atomic_path(paths[3]) as tmp:
        tifffile.imwrite(tmp, blank)
    log.info("wrote the synthetic batch (%d files) to %s", len(paths), out_dir)
    return paths
