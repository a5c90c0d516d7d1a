import os
import re
import stat

import numpy as np
import pytest

from nucleiseg.errors import BadInputError
from nucleiseg.io import atomic_dir, atomic_path, read_image, write_tiff


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_outputs_get_the_usual_permissions_not_private_ones(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    with atomic_path(tmp_path / "table.csv") as tmp:
        tmp.write_text("a\n")
    assert _mode(tmp_path / "table.csv") == 0o666 & ~umask
    with atomic_dir(tmp_path / "images") as tmp:
        (tmp / "x").write_text("")
    assert _mode(tmp_path / "images") == 0o777 & ~umask


def test_failed_block_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "out.tif") as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash midway")
    with pytest.raises(RuntimeError):
        with atomic_dir(tmp_path / "folder") as tmp:
            (tmp / "a").write_text("half")
            raise RuntimeError("crash midway")
    assert list(tmp_path.iterdir()) == []


def test_read_image_names_the_file(tmp_path):
    write_tiff(tmp_path / "ok.tif", np.arange(12, dtype=np.uint16).reshape(3, 4))
    assert read_image(tmp_path / "ok.tif").dtype == np.uint16
    for name, content, problem in [("empty.png", b"", "empty (0 bytes)"),
                                   ("bad.tif", b"II*\0garbage", "holds no image data"),
                                   ("bad.png", b"\x89PNG\r\n", "cannot be decoded"),
                                   ("notes.txt", b"hello", "not a supported image type")]:
        (tmp_path / name).write_bytes(content)
        with pytest.raises(BadInputError, match=re.escape(problem)) as caught:
            read_image(tmp_path / name)
        assert str(tmp_path / name) in str(caught.value)


def test_a_killed_attempts_temporaries_are_removed_by_the_next_write(tmp_path):
    from nucleiseg.io import atomic_dir, atomic_path

    target = tmp_path / "index.csv"
    stale_file = tmp_path / ".index.csv.abc123.part"
    stale_file.write_text("half")
    other = tmp_path / ".other.csv.abc123.part"  # another output's: not ours to remove
    other.write_text("x")
    with atomic_path(target) as tmp:
        tmp.write_text("done")
    assert target.read_text() == "done" and not stale_file.exists() and other.exists()

    folder = tmp_path / "images"
    stale_dir = tmp_path / ".images.xyz.part"
    (stale_dir / "sub").mkdir(parents=True)
    with atomic_dir(folder) as tmp:
        (tmp / "a.tif").write_text("a")
    assert (folder / "a.tif").exists() and not stale_dir.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.csv.abc123.part", "images",
                                                          "index.csv"]
