"""Large images cut into blocks: where each block lies, and which nuclei each block owns.

An image whose height or width exceeds `segment.block_size` is processed block by block
(`takes_blocks`): the blocks' cores tile the image without overlap, and each block is
predicted, labelled and measured over its window, the core grown by `segment.block_margin`
pixels on every side (clipped at the image border), so that a nucleus near the core's edge is
seen whole, with context around it.

Each nucleus is labelled once: a block owns the nuclei whose anchor, the centre of their
bounding box (`anchors`), lies in its core. A nucleus whose anchor lies in a core reaches at
most its own half extent past it, so with a margin wider than half the largest nucleus every
owned nucleus is whole in its window; a block's nuclei around its window's edge are left to
the neighbour that owns them. Measurement uses the same rule on the stitched labels, so each
block measures the nuclei it owns and every nucleus is measured once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from .errors import ConfigError

MIN_BLOCK_SIZE = 64  # smaller cores would spend most of the time on their margins
LABELS_SUFFIX = ".ome.tif"  # a block-wise image's labels: a tiled, pyramidal OME-TIFF
# The defaults of segment.block_size and segment.block_margin. A block of 2048 (a window of
# 2304^2, 5.3 Mpx, at about 53 bytes per pixel: BENCHMARKS.md) keeps a segmentation job near
# 1.3 GB, the network's engine included; a margin of 128 holds nuclei up to 256 px across, with
# context around them.
BLOCK_SIZE = 2048
BLOCK_MARGIN = 128


@dataclass(frozen=True)
class Block:
    """One block: its core (the pixels it owns) and its window (core + margin), as slices of
    the image, and its position in the grid."""

    row: int
    column: int
    core: tuple[slice, slice]
    window: tuple[slice, slice]
    image_shape: tuple[int, int]

    @property
    def origin(self) -> tuple[int, int]:
        """The window's top-left pixel in the image."""
        return self.window[0].start, self.window[1].start

    def core_in_window(self) -> tuple[slice, slice]:
        """The core as slices of the window."""
        y0, x0 = self.origin
        return tuple(slice(c.start - o, c.stop - o) for c, o in zip(self.core, (y0, x0)))


@dataclass(frozen=True)
class BlockGrid:
    """The blocks of a height x width image: cores of block_size pixels (the last ones shorter),
    windows grown by margin pixels on each side."""

    height: int
    width: int
    block_size: int
    margin: int

    def __post_init__(self):
        check_block_settings(self.block_size, self.margin)

    @property
    def shape(self) -> tuple[int, int]:
        return -(-self.height // self.block_size), -(-self.width // self.block_size)

    def __len__(self) -> int:
        rows, columns = self.shape
        return rows * columns

    def __iter__(self) -> Iterator[Block]:
        """The blocks in row-major order."""
        rows, columns = self.shape
        for row in range(rows):
            for column in range(columns):
                yield self.block(row, column)

    def block(self, row: int, column: int) -> Block:
        size, margin = self.block_size, self.margin
        y0, x0 = row * size, column * size
        y1, x1 = min(y0 + size, self.height), min(x0 + size, self.width)
        window = (slice(max(y0 - margin, 0), min(y1 + margin, self.height)),
                  slice(max(x0 - margin, 0), min(x1 + margin, self.width)))
        return Block(row, column, (slice(y0, y1), slice(x0, x1)), window,
                     (self.height, self.width))


def check_block_settings(block_size: int, margin: int) -> None:
    """ConfigError naming the key unless block_size >= MIN_BLOCK_SIZE and 0 <= margin."""
    if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) \
            or block_size < MIN_BLOCK_SIZE:
        raise ConfigError(f"segment.block_size must be a whole number of pixels >= "
                          f"{MIN_BLOCK_SIZE}, got {block_size!r}")
    if isinstance(margin, bool) or not isinstance(margin, (int, np.integer)) or margin < 0:
        raise ConfigError(f"segment.block_margin must be a whole number of pixels >= 0, "
                          f"got {margin!r}")


def takes_blocks(height: int, width: int, block_size: int) -> bool:
    """Whether an image of this size is processed block by block (a side above block_size)."""
    return max(int(height), int(width)) > block_size


def anchors(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(label values, their anchors (k, 2) in the labels' coordinates): each present label's
    bounding-box centre, rounded down (integer arithmetic, the same in any window that holds
    the nucleus whole)."""
    boxes = ndi.find_objects(labels)
    values = np.array([k + 1 for k, box in enumerate(boxes) if box is not None], np.int64)
    points = np.array([[(box[0].start + box[0].stop - 1) // 2,
                        (box[1].start + box[1].stop - 1) // 2]
                       for box in boxes if box is not None], np.int64).reshape(-1, 2)
    return values, points


def owned(labels: np.ndarray, block: Block) -> tuple[np.ndarray, np.ndarray]:
    """The labels of a block's window (as the window's labels) that the block owns: their
    anchor in the core; and whether each of them is cut by the window's edge inside the image
    (the margin was narrower than half the nucleus)."""
    values, points = anchors(labels)
    (ys, xs) = block.core_in_window()
    inside = ((points[:, 0] >= ys.start) & (points[:, 0] < ys.stop) &
              (points[:, 1] >= xs.start) & (points[:, 1] < xs.stop))
    values = values[inside]
    return values, np.isin(values, _cut_labels(labels, block))


def _cut_labels(labels: np.ndarray, block: Block) -> np.ndarray:
    """The labels on an edge of the window that is not the image's border."""
    (ys, xs), (height, width) = block.window, block.image_shape
    edges = [edge for edge, inside in ((labels[0], ys.start > 0), (labels[-1], ys.stop < height),
                                       (labels[:, 0], xs.start > 0),
                                       (labels[:, -1], xs.stop < width)) if inside]
    found = np.unique(np.concatenate(edges)) if edges else np.empty(0, labels.dtype)
    return found[found != 0]
