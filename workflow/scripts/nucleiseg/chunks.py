"""Which chunk each image of a batch belongs to, kept from run to run.

A chunk is the set of a batch's images that one segment_images job (and one measure_nuclei job)
works on: at most `segment.images_per_chunk` of them. The assignment is written to
`results/batches/<batch>/chunks.csv` and kept: an image stays in its chunk while it is in the
batch, new images fill the last chunk's free places and then new chunks, and a removed image
leaves a place free in its own. So adding or removing images reruns only the chunks they are
in, never the others. Only a change of `segment.images_per_chunk` that a kept chunk no longer
fits starts the assignment over.

The Snakefile calls this at parse time, so it uses the standard library only.
"""

from __future__ import annotations

import csv
import os
import tempfile
from pathlib import Path

from .errors import ConfigError

CHUNKS_FILE = "chunks.csv"
_COLUMNS = ("chunk", "file")


def chunk_name(number: int) -> str:
    return f"chunk{number:03d}"


def _number(name: str) -> int:
    return int(name.removeprefix("chunk"))


def assign_chunks(files: list[str], per_chunk: int,
                  previous: dict[str, str] | None = None) -> dict[str, list[str]]:
    """chunk name -> its files (in sorted order), keeping `previous` (file -> chunk) where it can.

    Files new to the batch go, in sorted order, to the last chunk while it has room, then to new
    chunks. A batch without files still has one (empty) chunk, so that its report exists.
    """
    if isinstance(per_chunk, bool) or not isinstance(per_chunk, int) or per_chunk < 1:
        raise ConfigError(f"segment.images_per_chunk must be a whole number >= 1, got {per_chunk!r}")
    present = set(files)
    chunks: dict[str, list[str]] = {}
    for file, chunk in sorted((previous or {}).items()):
        if file in present:
            chunks.setdefault(chunk, []).append(file)
    if any(len(members) > per_chunk for members in chunks.values()):
        chunks = {}  # images_per_chunk was lowered: the old chunks do not fit, start over
    placed = {file for members in chunks.values() for file in members}
    last = max((_number(name) for name in chunks), default=0)
    for file in sorted(present - placed):
        name = chunk_name(last) if last else None
        if name is None or len(chunks.get(name, [])) >= per_chunk:
            last += 1
            name = chunk_name(last)
        chunks.setdefault(name, []).append(file)
    if not chunks:
        chunks[chunk_name(1)] = []
    return {name: sorted(chunks[name]) for name in sorted(chunks, key=_number)}


def read_assignment(path: str | Path) -> dict[str, str]:
    """file -> chunk from a chunks.csv; {} when there is none yet or it cannot be read."""
    try:
        with open(path, newline="") as stream:
            rows = list(csv.DictReader(stream))
    except OSError:
        return {}
    if not rows or set(rows[0]) != set(_COLUMNS):
        return {}
    return {row["file"]: row["chunk"] for row in rows}


def write_assignment(path: str | Path, chunks: dict[str, list[str]]) -> None:
    """chunks.csv (atomically), one row per file: its chunk and its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="") as stream:
            writer = csv.writer(stream)
            writer.writerow(_COLUMNS)
            writer.writerows((name, file) for name, members in chunks.items() for file in members)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def batch_chunks(folder: str | Path, files: list[str], per_chunk: int) -> dict[str, list[str]]:
    """The batch's chunks, from and into `folder`/chunks.csv (rewritten only when they change)."""
    path = Path(folder) / CHUNKS_FILE
    previous = read_assignment(path)
    chunks = assign_chunks(files, per_chunk, previous)
    if {file: name for name, members in chunks.items() for file in members} != previous:
        write_assignment(path, chunks)
    return chunks
