"""What the workflow does when a run ends: say which files were skipped, tidy empty folders.

Snakemake's onsuccess and onerror handlers call these, in the Snakemake process itself, so this
module uses the standard library only.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path


def skipped_lines(batch_folders: dict[str, str | Path]) -> list[str]:
    """One line per batch that left files out: how many of how many, and where the list is.

    batch_folders: batch name -> its results folder (results/batches/<name>); batches whose
    tables this run did not make (no images.csv yet) are passed over.
    """
    lines = []
    for name, folder in batch_folders.items():
        folder = Path(folder)
        skipped, images = folder / "skipped.csv", folder / "images.csv"
        if not (skipped.is_file() and images.is_file()):
            continue
        n_skipped, n_images = _rows(skipped), _rows(images)
        if n_skipped:
            lines.append(f"batch {name}: {n_skipped} of {n_skipped + n_images} files were "
                         f"skipped (segment.on_bad_image: skip); the files and the reasons are "
                         f"in {skipped}")
    return lines


def _rows(path: Path) -> int:
    with open(path, newline="") as stream:
        return max(0, sum(1 for _ in csv.reader(stream)) - 1)


def remove_empty_folders(root: str | Path) -> None:
    """Remove the folders under `root` (and root) that hold nothing, deepest first.

    Snakemake makes a job's benchmark folder before the job runs and leaves it when the job
    fails; an empty folder there says nothing.
    """
    root = Path(root)
    if not root.is_dir():
        return
    for folder, _, _ in sorted(os.walk(root), key=lambda entry: -len(entry[0])):
        try:
            os.rmdir(folder)  # only succeeds when empty
        except OSError:
            pass
