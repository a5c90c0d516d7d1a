"""Training tiles: fixed-size, overlapping crops of the prepared images and their labels.

An image is padded at its bottom and right edges (reflect) to at least one tile, then covered by
tiles whose starts step by `tile - overlap`, the last tile flush with the edge. Tiles of one
split are stored as two .npy arrays that training memory-maps: `images.npy` (N, T, T, 3) float16,
grayscale repeated to three channels, and `labels.npy` (N, T, T) uint16 with labels numbered
1..n within each tile; `tiles.csv` says where each tile came from.

With `nucleus_diameter` (tiles.nucleus_diameter), each image and its labels are first resized so
that its nuclei's median equivalent diameter is that many pixels (Cellpose trains at one nucleus
size the same way); `segment.rescale: auto` then brings new images to it. `tiles.csv` records
each tile's image's `factor`, the positions at that scale, and the tile's `weight` in training
draws: its image's tile count at its own scale over that at the resized one, so that an image
enlarged into four times as many tiles weighs what it weighed before.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import tifffile
from numpy.lib.format import open_memmap

from .errors import ConfigError
from .io import atomic_path, write_csv
from .labels import relabel
from .modelconfig import DIVISOR
from .normalize import as_three_channels
from .padding import reflect_index
from .scale import Resize, factor_to_diameter

log = logging.getLogger(__name__)

_FLOAT16_MAX = float(np.finfo(np.float16).max)


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets covering [0, max(length, tile)) with tiles overlapping by at least `overlap`."""
    if not 0 <= overlap < tile:
        raise ConfigError(f"tiles.overlap must be in [0, tiles.size), got {overlap} for size {tile}")
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, tile - overlap))
    return starts + [length - tile]


def tile_positions(height: int, width: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    return [(y, x) for y in tile_starts(height, tile, overlap) for x in tile_starts(width, tile, overlap)]


def _reflect_axis(n: int, total: int) -> tuple[np.ndarray, np.ndarray]:
    """For an axis reflect-padded at its end from n to total: source index and mirror count."""
    if n == 1:
        return np.zeros(total, dtype=np.intp), np.r_[0, np.ones(total - 1, dtype=np.intp)]
    source = reflect_index(np.arange(total), n)
    step = np.diff(source, prepend=source[0] - 1)  # +1 reading forward, -1 reading mirrored
    fold = np.r_[0, np.cumsum(step[1:] != step[:-1])]
    return source, fold


def pad_to_tile(image: np.ndarray, labels: np.ndarray | None, tile: int):
    """Reflect-pad image (and labels) at the bottom/right to at least tile x tile.

    A mirrored copy of a nucleus gets its own label, distinct from the original it touches at the
    mirror line: otherwise the two halves would merge into one object with no contour between.
    """
    height, width = image.shape[:2]
    src_y, fold_y = _reflect_axis(height, max(height, tile))
    src_x, fold_x = _reflect_axis(width, max(width, tile))
    padded = image[src_y][:, src_x]
    if labels is None:
        return padded, None
    copy = fold_y[:, None] * (fold_x.max() + 1) + fold_x[None, :]
    source = labels[src_y][:, src_x].astype(np.int64)
    padded_labels = np.where(source > 0, source + copy * (int(labels.max()) + 1), 0)
    return padded, padded_labels


def extract_tiles(padded: np.ndarray, positions, tile: int) -> np.ndarray:
    return np.stack([padded[y : y + tile, x : x + tile] for y, x in positions])


def reassemble(tiles: np.ndarray, positions, shape) -> np.ndarray:
    """Put tiles back at their positions (inverse of extract_tiles on the padded image)."""
    out = np.zeros(tuple(shape) + tiles.shape[3:], dtype=tiles.dtype)
    tile = tiles.shape[1]
    for t, (y, x) in zip(tiles, positions):
        out[y : y + tile, x : x + tile] = t
    return out


def _positions(shape: tuple[int, int], tile: int, overlap: int) -> list[tuple[int, int]]:
    """The tiles' positions in an image of `shape` (padded to at least one tile)."""
    return tile_positions(max(shape[0], tile), max(shape[1], tile), tile, overlap)


def _factor(labels_dir, sample_id: str, nucleus_diameter: float) -> float:
    """The factor that brings one prepared image's nuclei to nucleus_diameter (1 for 0)."""
    if not nucleus_diameter:
        return 1.0
    return factor_to_diameter(tifffile.imread(Path(labels_dir) / f"{sample_id}.tif"),
                              nucleus_diameter)


def load_prepared(images_dir: Path, labels_dir: Path, sample_id: str) -> tuple[np.ndarray, np.ndarray]:
    """A prepared image as (H, W, 3) float32 (grayscale repeated) and its label image."""
    image = as_three_channels(tifffile.imread(Path(images_dir) / f"{sample_id}.tif"))
    labels = tifffile.imread(Path(labels_dir) / f"{sample_id}.tif")
    return image, labels


def write_tiles(
    index: pd.DataFrame,
    images_dir: str | Path,
    labels_dir: str | Path,
    out_images: str | Path,
    out_labels: str | Path,
    out_table: str | Path,
    tile: int,
    overlap: int,
    nucleus_diameter: float = 0.0,
) -> pd.DataFrame:
    """Tile the images listed in `index` (id, height, width, modality) into two .npy arrays,
    each image first resized to `nucleus_diameter` (0: as it is)."""
    if tile % DIVISOR:
        raise ConfigError(f"tiles.size must be a multiple of {DIVISOR} (the network's stride), "
                          f"got {tile}")
    samples = list(index.sort_values("id").itertuples())
    resizes = {s.id: Resize((s.height, s.width), _factor(labels_dir, s.id, nucleus_diameter))
               for s in samples}
    positions = {key: _positions(resize.scaled_shape, tile, overlap)
                 for key, resize in resizes.items()}
    # A resized image's tiles weigh what its tiles at its own scale weighed together
    weights = {key: len(_positions(resize.shape, tile, overlap)) / len(positions[key])
               for key, resize in resizes.items()}
    n_tiles = sum(len(p) for p in positions.values())
    if not n_tiles:
        raise ConfigError("no image to tile: this split is empty; check split.fractions")
    rows = []
    with atomic_path(out_images) as tmp_images, atomic_path(out_labels) as tmp_labels:
        images = open_memmap(tmp_images, mode="w+", dtype=np.float16, shape=(n_tiles, tile, tile, 3))
        labels = open_memmap(tmp_labels, mode="w+", dtype=np.uint16, shape=(n_tiles, tile, tile))
        for sample in samples:
            image, label = load_prepared(images_dir, labels_dir, sample.id)
            resize = resizes[sample.id]
            image, label = resize.to_network(image), resize.labels_to_network(label)
            padded, padded_labels = pad_to_tile(image, label, tile)
            where = positions[sample.id]
            first = len(rows)
            images[first : first + len(where)] = np.clip(
                extract_tiles(padded, where, tile), -_FLOAT16_MAX, _FLOAT16_MAX
            )
            for k, ((y, x), tile_labels) in enumerate(zip(where, extract_tiles(padded_labels, where, tile))):
                labels[first + k] = relabel(tile_labels)[0]
                rows.append({
                    "tile": first + k, "id": sample.id, "modality": sample.modality, "y": y, "x": x,
                    "factor": resize.factor, "weight": weights[sample.id],
                    "valid_height": min(tile, resize.scaled_shape[0] - y),
                    "valid_width": min(tile, resize.scaled_shape[1] - x),
                    "n_objects": int(labels[first + k].max()),
                })
        images.flush()
        labels.flush()
        del images, labels  # close the memory maps before the files are renamed into place
    table = pd.DataFrame(rows)
    write_csv(table, out_table)
    _log_tiles(table, tile, nucleus_diameter)
    return table


def _log_tiles(table: pd.DataFrame, tile: int, nucleus_diameter: float) -> None:
    if nucleus_diameter:
        factors = table.groupby("id")["factor"].first()
        log.info("images resized to nuclei of %g px: factors %.2f to %.2f (median %.2f)",
                 nucleus_diameter, factors.min(), factors.max(), factors.median())
    log.info("wrote %d tiles of %dx%d from %d images", len(table), tile, tile,
             table["id"].nunique())
