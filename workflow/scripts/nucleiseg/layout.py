"""Reading Kaggle's DSB2018 folder layout: `<root>/<id>/images/<id>.png`, `<root>/<id>/masks/*.png`.

Listing returns the usable samples and, separately, one BadInputError per problem found, so that
the caller decides between failing and skipping with one rule for every kind of bad input.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import BadInputError
from .io import is_hidden, is_image_file

_LAYOUT = "Kaggle's layout is <id>/images/<id>.png with one mask per nucleus in <id>/masks/"


@dataclass(frozen=True)
class Sample:
    id: str
    image: Path
    masks: tuple[Path, ...]


def _visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not is_hidden(p))


def _read_sample(folder: Path) -> Sample:
    sample_id = folder.name
    images_dir, masks_dir = folder / "images", folder / "masks"
    if not images_dir.is_dir():
        raise BadInputError(folder, "has no images/ folder", _LAYOUT)
    images = _visible(images_dir)
    strays = [p for p in images if not p.is_file() or not is_image_file(p)]
    if strays:
        raise BadInputError(strays[0], "is not an image file", "Move it out of the dataset folder")
    if len(images) != 1:
        problem = "holds no image" if not images else f"holds {len(images)} images, expected one"
        raise BadInputError(images_dir, problem, _LAYOUT)
    if images[0].stem != sample_id:
        raise BadInputError(images[0], f"is not named after its sample {sample_id!r}", _LAYOUT)
    masks = _visible(masks_dir) if masks_dir.is_dir() else []
    strays = [p for p in masks if not p.is_file() or not is_image_file(p)]
    if strays:
        raise BadInputError(strays[0], "is not an image file", "Move it out of the masks folder")
    if not masks:
        raise BadInputError(
            folder, "has no masks: training images need one mask file per nucleus in masks/",
            "Add its masks, remove the image, or set prepare.on_bad_image: skip",
        )
    return Sample(sample_id, images[0], tuple(masks))


def list_samples(root: str | Path) -> tuple[list[Sample], list[BadInputError]]:
    """All samples under `root` in id order, and the problems found (one per bad entry)."""
    root = Path(root)
    if not root.is_dir():
        raise BadInputError(root, "is not a folder", _LAYOUT)
    samples, problems = [], []
    for entry in _visible(root):
        if not entry.is_dir():
            problems.append(BadInputError(
                entry, "is a stray file in the dataset folder", f"{_LAYOUT}; move it elsewhere",
            ))
            continue
        try:
            samples.append(_read_sample(entry))
        except BadInputError as problem:
            problems.append(problem)
    return samples, problems
