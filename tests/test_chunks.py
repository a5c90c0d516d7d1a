"""Chunks: a batch's images cut into segmentation jobs, kept as the batch changes."""

from __future__ import annotations

import pytest

from nucleiseg.chunks import CHUNKS_FILE, assign_chunks, batch_chunks, read_assignment
from nucleiseg.errors import ConfigError

FILES = [f"f{k}.tif" for k in range(5)]


def test_a_new_batch_is_cut_in_sorted_order():
    assert assign_chunks(FILES, 2) == {"chunk001": FILES[0:2], "chunk002": FILES[2:4],
                                       "chunk003": FILES[4:]}
    assert assign_chunks(list(reversed(FILES)), 64) == {"chunk001": FILES}
    assert assign_chunks([], 4) == {"chunk001": []}


def test_a_new_image_that_sorts_first_leaves_the_other_chunks_as_they_were():
    first = assign_chunks(FILES, 1)
    second = assign_chunks(["a.png", *FILES], 1, _inverse(first))
    changed = {name for name in second if second[name] != first.get(name)}
    assert changed == {"chunk006"} and second["chunk006"] == ["a.png"]


def test_new_images_fill_the_last_chunk_first():
    first = assign_chunks(FILES, 2)  # the last chunk holds one of two
    second = assign_chunks([*FILES, "g.tif", "h.tif"], 2, _inverse(first))
    assert second == {**first, "chunk003": ["f4.tif", "g.tif"], "chunk004": ["h.tif"]}


def test_a_removed_image_changes_only_its_own_chunk():
    first = assign_chunks(FILES, 2)
    second = assign_chunks([f for f in FILES if f != "f2.tif"], 2, _inverse(first))
    assert second == {**first, "chunk002": ["f3.tif"]}
    emptied = assign_chunks(FILES[:4], 2, _inverse(first))
    assert emptied == {"chunk001": FILES[0:2], "chunk002": FILES[2:4]}


def test_a_lower_images_per_chunk_starts_over():
    first = assign_chunks(FILES, 4)
    assert assign_chunks(FILES, 2, _inverse(first)) == assign_chunks(FILES, 2)
    assert assign_chunks(FILES, 8, _inverse(first)) == first  # a higher one keeps them


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_images_per_chunk_is_checked(bad):
    with pytest.raises(ConfigError, match="segment.images_per_chunk"):
        assign_chunks(FILES, bad)


def test_the_assignment_is_kept_in_a_file(tmp_path):
    chunks = batch_chunks(tmp_path, FILES, 2)
    written = (tmp_path / CHUNKS_FILE).read_text().splitlines()
    assert written[0] == "chunk,file" and written[1] == "chunk001,f0.tif" and len(written) == 6
    assert read_assignment(tmp_path / CHUNKS_FILE) == _inverse(chunks)
    mtime = (tmp_path / CHUNKS_FILE).stat().st_mtime_ns
    assert batch_chunks(tmp_path, FILES, 2) == chunks
    assert (tmp_path / CHUNKS_FILE).stat().st_mtime_ns == mtime  # unchanged: not rewritten
    grown = batch_chunks(tmp_path, ["a.png", *FILES], 2)
    assert grown["chunk003"] == ["a.png", "f4.tif"] and read_assignment(
        tmp_path / CHUNKS_FILE) == _inverse(grown)


def test_an_unreadable_assignment_is_made_anew(tmp_path):
    (tmp_path / CHUNKS_FILE).write_text("not,a\nchunks,file\n")
    assert read_assignment(tmp_path / CHUNKS_FILE) == {}
    assert batch_chunks(tmp_path, FILES, 2) == assign_chunks(FILES, 2)


def _inverse(chunks: dict[str, list[str]]) -> dict[str, str]:
    return {file: name for name, members in chunks.items() for file in members}
