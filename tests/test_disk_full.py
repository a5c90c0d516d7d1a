"""A full disk: a clear one-line error, nothing half-written, and the rerun completes.

The file system is a real tmpfs mounted by the test (root only), too small for the outputs.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile

from conftest import run_snakemake
from nucleiseg.errors import DiskFullError
from nucleiseg.io import atomic_dir, write_json, write_tiff

SYNTHETIC = {"dataset": {"source": "synthetic",
                         "synthetic": {"n_images": 6, "height": 128, "width": 128}}}
TARGET = "results/index.csv"
STAMP = ".snakemake_timestamp"  # Snakemake's own marker in a finished directory() output


@contextlib.contextmanager
def tmpfs(folder: Path, size: str):
    """A tmpfs of `size` mounted on `folder` for the block; skipped where mounting is refused."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs (a file system that fills up) needs root")
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs on {folder}: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        if subprocess.run(["umount", str(folder)]).returncode != 0:
            subprocess.run(["umount", "-l", str(folder)], check=True)


def _files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if not p.is_dir())


def _assert_every_file_is_complete(folder: Path) -> None:
    """No temporary is left, and every output present reads back whole."""
    leftovers = [p for p in folder.rglob("*")
                 if p.name.endswith(".part") or p.name.startswith(".") and p.name != STAMP]
    assert leftovers == []
    for path in _files_under(folder):
        if path.name == STAMP:
            assert path.stat().st_size == 0, path
        elif path.suffix == ".tif":
            assert tifffile.imread(path).size > 0, path
        elif path.suffix in (".csv", ".tsv"):
            pd.read_csv(path, sep="," if path.suffix == ".csv" else "\t")
        elif path.suffix == ".json":
            json.loads(path.read_text())
        else:
            raise AssertionError(f"unexpected output {path}")


@pytest.mark.parametrize("writer", ["tiff", "json", "folder", "file in folder"])
def test_a_write_that_fills_the_disk_names_the_file_and_leaves_no_temporary(tmp_path, writer):
    # NumPy's tofile (TIFF, .npy) reports the short write without an errno; json has ENOSPC.
    big = np.ones((256, 256), np.float32)  # 256 KiB, on a 16 KiB file system
    with tmpfs(tmp_path / "small", "16k") as small:
        target = small / "out"
        with pytest.raises(DiskFullError) as caught:
            if writer == "tiff":
                write_tiff(target, big)
            elif writer == "json":
                write_json(big.tolist(), target)
            else:
                with atomic_dir(target) as tmp:
                    if writer == "folder":
                        np.save(tmp / "big.npy", big)
                    else:
                        write_tiff(tmp / "big.tif", big)
        assert list(small.iterdir()) == []
        named = target / "big.tif" if writer == "file in folder" else target
        message = str(caught.value)
        assert f"cannot write {named}: the file system is full" in message, message
        assert "rerun the same command" in message and "\n" not in message
        write_json({"ok": True}, target)  # the space is free again: the same write succeeds
        assert json.loads(target.read_text()) == {"ok": True}


@pytest.mark.slow
def test_a_run_on_a_full_disk_fails_in_one_line_and_the_rerun_completes(tmp_path):
    work = tmp_path / "work"
    with tmpfs(work / "results", "128k") as results:
        failed = run_snakemake(work, SYNTHETIC, TARGET, check=False)
        screen = failed.stdout + failed.stderr
        assert failed.returncode != 0, screen
        assert "Traceback" not in screen, screen
        errors = [line for line in screen.splitlines() if line.startswith("nucleiseg error:")]
        assert len(errors) == 1, screen
        assert "file system is full" in errors[0], errors[0]
        assert re.search(r"cannot write results/prepared/\w+/synth_\w+\.tif:", errors[0]), errors[0]
        assert "Free space" in errors[0] and "rerun the same command" in errors[0], errors[0]
        _assert_every_file_is_complete(results)
        assert not (results / "index.csv").exists()

        subprocess.run(["mount", "-o", "remount,size=64m", str(results)], check=True)
        run_snakemake(work, SYNTHETIC, TARGET)
        _assert_every_file_is_complete(results)
        index = pd.read_csv(results / "index.csv", dtype={"id": str})
        assert len(index) == 6
        assert len(list((results / "prepared" / "images").glob("*.tif"))) == 6
