"""Segmenting one large image block by block, in memory that depends on the block, not the image.

A TIFF or OME-Zarr image whose height or width exceeds segment.block_size (blocks.takes_blocks)
is never read whole (large_io.open_regions reads it a region at a time): its percentiles come
from a histogram counted block by block (large_io.image_percentiles; exact for 8- and 16-bit
images, so the normalization is the whole image's), then each block's
window (core + segment.block_margin) is read, normalized, segmented by the model's own
`segment`, and the nuclei the block owns (blocks.owned: bounding-box centre in the core) are
stitched into a label file kept on disk, under global ids 1..N in block order. A nucleus that
an earlier block already stitched (more than half of its pixels taken: the same nucleus, seen
from two windows) is not stitched again; no pixel is ever labelled twice. The labels are then
written as a tiled, pyramidal OME-TIFF (`<image_id>.ome.tif`).

The row of the per-image table and the nuclei's confidences are those of the whole-image path
(segment.py), so that the batch tables are the same whichever path an image took. Probability
maps are not saved for these images (segment.save_probabilities): they would be as large as
the image, in float32.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .batches import image_id
from .blocks import LABELS_SUFFIX, Block, BlockGrid, owned
from .large_io import LabelStore, Regions, image_percentiles, open_regions, write_label_pyramid
from .model import NucleusModel, Segmentation
from .normalize import normalize_with
from .tables import STAGES

log = logging.getLogger(__name__)


def segment_large_image(model: NucleusModel, path: Path, settings, labels_dir: Path,
                        confidences: list[pd.DataFrame]) -> dict:
    """Segment the large TIFF or OME-Zarr `path` block by block into labels_dir/<id>.ome.tif;
    append its nuclei's confidences to `confidences` and return its row of the per-image table.

    settings: segment.SegmentSettings (the channel, pages, pixel size and block keys).
    Raises BadInputError naming the file for anything unusable, as read_batch_image does.
    """
    start = time.perf_counter()
    seconds = dict.fromkeys(STAGES, 0.0)
    with open_regions(path, settings.nuclear_channel, settings.pages) as regions:
        grid = BlockGrid(regions.height, regions.width, settings.block_size,
                         settings.block_margin)
        header = regions.batch_image(slice(0, 1), slice(0, 1))
        seconds["read"] = time.perf_counter() - start
        start = time.perf_counter()
        stats = image_percentiles(regions, model.config.norm_p_low, model.config.norm_p_high,
                                  grid)
        seconds["normalize"] = time.perf_counter() - start
        if settings.save_probabilities:
            log.warning("%s: probability maps are not saved for images segmented block by "
                        "block", path)
        store = LabelStore(labels_dir, regions.height, regions.width)
        try:
            n, confidence, last = _segment_blocks(model, regions, grid, stats, store, seconds)
            pixel_size, source = settings.pixel_size(header)
            start = time.perf_counter()
            labels_file = labels_dir / f"{image_id(path)}{LABELS_SUFFIX}"
            write_label_pyramid(labels_file, store, n, pixel_size)
            seconds["write"] += time.perf_counter() - start
        finally:
            store.close()
    identifier = image_id(path)
    confidences.append(pd.DataFrame({"image_id": identifier, "label": np.arange(1, n + 1),
                                     "confidence": confidence}))
    log.info("%s (%s, %dx%d, %d blocks): %d nuclei in %.2f s (predict %.2f s)", identifier,
             regions.description, regions.height, regions.width, len(grid), n,
             sum(seconds.values()), seconds["predict"])
    return {"image_id": identifier, "file": str(path), "status": "ok", "reason": "",
            "description": regions.description, "height": regions.height,
            "width": regions.width, "pixel_size_um": pixel_size, "pixel_size_source": source,
            "n_nuclei": n, "nucleus_diameter_px": getattr(last, "diameter", math.nan),
            "rescale_factor": getattr(last, "factor", 1.0), "labels_file": str(labels_file),
            **{f"seconds_{k}": v for k, v in seconds.items()}}


def _segment_blocks(model: NucleusModel, regions: Regions, grid: BlockGrid, stats,
                    store: LabelStore, seconds: dict) -> tuple[int, np.ndarray, Segmentation]:
    """Every block segmented and stitched into `store`: (nuclei, their confidences, the last
    block's result); `seconds` accumulates each stage's time."""
    n, confidences, result = 0, [], None
    for block in grid:
        result = _segment_window(model, regions, stats, block, seconds)
        for stage in ("predict", "instances"):
            seconds[stage] += result.seconds[stage]
        start = time.perf_counter()
        kept = stitch(store, block, result.labels, n + 1)
        confidences.append(result.confidence[kept - 1])
        n += kept.size
        seconds["write"] += time.perf_counter() - start
        log.debug("block %d,%d: %d nuclei", block.row, block.column, kept.size)
    return n, np.concatenate(confidences), result


def _segment_window(model: NucleusModel, regions: Regions, stats, block: Block,
                    seconds: dict) -> Segmentation:
    """One block's window segmented: with the whole image's tiles (model.predict_window), so
    its maps are one pass's, or, with test-time augmentation or rescaling, as an image of its
    own. Reading and normalizing go to `seconds`, not to predict's time."""
    spent = {"read": 0.0, "normalize": 0.0}

    def read(ys: slice, xs: slice) -> np.ndarray:
        start = time.perf_counter()
        raw = regions.read(ys, xs)
        read_at = time.perf_counter()
        normalized = normalize_with(raw, stats)
        spent["read"] += read_at - start
        spent["normalize"] += time.perf_counter() - read_at
        return normalized

    start = time.perf_counter()
    maps = model.predict_window(read, block.image_shape, block.window)
    if maps is None:
        result = model.segment(read(*block.window))
    else:
        predicted = time.perf_counter()
        labels = model.instances(maps)
        result = Segmentation(labels, maps, {
            "predict": predicted - start - sum(spent.values()),
            "instances": time.perf_counter() - predicted})
    for stage, value in spent.items():
        seconds[stage] += value
    return result


def stitch(store: LabelStore, block: Block, labels: np.ndarray, first_id: int) -> np.ndarray:
    """Write the nuclei the block owns (labels: its window's) into the store as first_id,
    first_id + 1, ...; returns their labels in the window, in the order of their new ids.

    Pixels already labelled by an earlier block keep their label; a nucleus more than half of
    whose pixels are taken is that earlier nucleus seen again, and is left out.
    """
    values, cut = owned(labels, block)
    if cut.any():
        log.warning("%d nuclei reach the edge of their block's window: wider than twice "
                    "segment.block_margin, they are cut there", int(cut.sum()))
    taken = store.read(*block.window)
    sizes = np.bincount(labels.ravel())
    shared = np.bincount(labels[taken > 0], minlength=sizes.size)
    keep = values[2 * shared[values] <= sizes[values]]
    if keep.size < values.size:
        log.info("block %d,%d: %d nuclei already stitched from a neighbouring block",
                 block.row, block.column, values.size - keep.size)
    lookup = np.zeros(sizes.size, LabelStore.ITEM)
    lookup[keep] = np.arange(first_id, first_id + keep.size, dtype=LabelStore.ITEM)
    new = lookup[labels]
    np.copyto(taken, new, where=taken == 0)
    store.write(*block.window, taken)
    return keep
