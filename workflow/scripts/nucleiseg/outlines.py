"""Each nucleus of a label image as polygons along its pixels' edges, for viewers to import.

Coordinates are (x, y) = (column, row) with a pixel as the unit square: pixel (row r, column c)
covers [c, c + 1] x [r, r + 1], the convention of QuPath and ImageJ. A nucleus's outline runs
along the edges of its pixels, so it is exact: the polygon's area is the pixel count, and filling
it (pixel centres inside) gives back the nucleus, holes included.

Each 4-connected piece of a nucleus is one polygon: an exterior ring and a ring per hole. Two
pixels that touch only at a corner belong to different pieces (the rings meet at that corner),
so every ring is simple. Rings are closed implicitly (the first vertex is not repeated); the
exterior runs clockwise on screen (y down), which is anticlockwise in the numbers, as GeoJSON's
right-hand rule asks; holes run the other way.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

# The four sides of a pixel at (row, column), walked clockwise on screen: the neighbour that
# must be outside for the side to be an edge, the side's start (x, y) and its direction.
_SIDES = (
    ((-1, 0), (0, 0), (1, 0)),   # top: left to right
    ((0, 1), (1, 0), (0, 1)),    # right: downwards
    ((1, 0), (1, 1), (-1, 0)),   # bottom: right to left
    ((0, -1), (0, 1), (0, -1)),  # left: upwards
)

Ring = np.ndarray  # (n, 2) integer (x, y) vertices, not closed
Polygon = list  # [exterior Ring, hole Ring, ...]


def _boundary_edges(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every pixel side between the mask and the outside: (start (x, y), direction), (n, 2) each."""
    padded = np.pad(mask, 1)
    height, width = mask.shape
    starts, directions = [], []
    for (dr, dc), (sx, sy), direction in _SIDES:
        neighbour = padded[1 + dr:1 + dr + height, 1 + dc:1 + dc + width]
        rows, cols = np.nonzero(mask & ~neighbour)
        starts.append(np.stack([cols + sx, rows + sy], axis=1))
        directions.append(np.tile(direction, (len(rows), 1)))
    return np.concatenate(starts), np.concatenate(directions)


def _link_rings(starts: np.ndarray, directions: np.ndarray) -> list[Ring]:
    """Chain the edges into closed rings. Where two edges leave one vertex (pixels touching at a
    corner only), take the right turn: it keeps to the pixel the ring came along, so the two
    pixels stay apart and each ring is simple."""
    leaving: dict[tuple[int, int], list[int]] = {}
    for index, (x, y) in enumerate(starts.tolist()):
        leaving.setdefault((x, y), []).append(index)
    ends = (starts + directions).tolist()
    dirs = directions.tolist()
    used = np.zeros(len(starts), bool)
    rings = []
    for first in range(len(starts)):
        if used[first]:
            continue
        ring, edge = [], first
        while not used[edge]:
            used[edge] = True
            ring.append(starts[edge])
            options = leaving[tuple(ends[edge])]
            if len(options) == 1:
                edge = options[0]
            else:
                dx, dy = dirs[edge]
                edge = next(o for o in options if dirs[o] == [-dy, dx])
        rings.append(_corners(np.array(ring)))
    return rings


def _corners(ring: Ring) -> Ring:
    """The ring without the vertices where it goes straight on."""
    before = ring - np.roll(ring, 1, axis=0)
    after = np.roll(ring, -1, axis=0) - ring
    turns = (before != after).any(axis=1)
    return ring[turns]


def signed_area(ring: Ring) -> float:
    """Shoelace area of a ring of (x, y) vertices: positive for an exterior ring."""
    x, y = ring[:, 0].astype(float), ring[:, 1].astype(float)
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def mask_polygons(mask: np.ndarray) -> list[Polygon]:
    """A boolean mask's 4-connected pieces as polygons (exterior first, then holes), largest
    piece first, in the mask's own pixel coordinates."""
    pieces, count = ndimage.label(mask)  # the default structure is 4-connectivity
    polygons = []
    for piece, box in enumerate(ndimage.find_objects(pieces), start=1):
        if box is None:
            continue
        rings = _link_rings(*_boundary_edges(pieces[box] == piece))
        rings.sort(key=signed_area, reverse=True)  # the one exterior ring, then the holes
        offset = np.array([box[1].start, box[0].start])
        polygons.append([ring + offset for ring in rings])
    polygons.sort(key=lambda polygon: -signed_area(polygon[0]))
    return polygons


def nucleus_polygons(labels: np.ndarray, values=None,
                     origin: tuple[int, int] = (0, 0)) -> dict[int, list[Polygon]]:
    """label -> the nucleus's polygons (see mask_polygons), in image coordinates, for every
    nucleus of a label image, or only those of `values`; origin: the (row, column) in the image
    of labels[0, 0] (a window's: its polygons then have the image's coordinates)."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"a label image is 2D, got shape {labels.shape}")
    boxes = ndimage.find_objects(labels)
    wanted = range(1, len(boxes) + 1) if values is None else (int(v) for v in values)
    found = {}
    for index in wanted:
        box = boxes[index - 1] if 0 < index <= len(boxes) else None
        if box is None:
            continue
        offset = np.array([box[1].start + origin[1], box[0].start + origin[0]])
        found[index] = [[ring + offset for ring in polygon]
                        for polygon in mask_polygons(labels[box] == index)]
    return found
