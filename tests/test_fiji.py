"""The label pyramids of large images, opened as Fiji and QuPath open them (marker `imagej`).

Fiji opens OME-TIFF with its Bio-Formats plugin, and QuPath reads it through Bio-Formats too
(its BioFormatsImageServer). Here Debian's ImageJ 1.53t (.ci/install-imagej) runs with
Bio-Formats 7.3.1 as its plugin (.ci/install-bioformats: `-Dplugins.dir=.bioformats`, the jar in
its plugins folder, as Fiji has it), under a virtual display as in test_imagej.py, and
tests/bioformats_levels.ijm asks Bio-Formats for the file's series, opens each one with the
Bio-Formats Importer and saves it as a plain TIFF: every resolution level must open at its
size, with the pixel size on the full-resolution one, and hold exactly the labels.

Cases: the labels of a 16-bit tiled TIFF segmented by the block-wise path (uint16 labels with
two levels), and a uint32 pyramid (more than 65,535 labels; ImageJ shows it as a 32-bit image).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import tifffile

from nucleiseg.large_io import LabelStore, write_label_pyramid
from nucleiseg.segment import SegmentSettings, segment_images
from nucleiseg.synthetic import make_nuclei
from test_imagej import IJ_JAR

PLUGINS = Path(__file__).resolve().parents[1] / ".bioformats"  # .ci/install-bioformats
MACRO = Path(__file__).with_name("bioformats_levels.ijm")
FIJI_TIMEOUT_S = 90  # about 4 s per file; longer means a dialog is waiting for a click
MISSING = [name for name, found in [(str(IJ_JAR), IJ_JAR.is_file()),
                                    ("java", shutil.which("java")),
                                    ("xvfb-run", shutil.which("xvfb-run")),
                                    (str(PLUGINS / "plugins" / "bioformats_package.jar"),
                                     (PLUGINS / "plugins" / "bioformats_package.jar").is_file())]
           if not found]

pytestmark = [
    pytest.mark.imagej,
    pytest.mark.skipif(bool(MISSING), reason=f"ImageJ or Bio-Formats is not installed "
                       f"({', '.join(MISSING)} absent): run `bash .ci/install-imagej` (needs "
                       "root for apt-get) and `bash .ci/install-bioformats`; CI does"),
]


def _open_in_fiji(path: Path, out: Path) -> dict:
    """What ImageJ with Bio-Formats found in `path`: levels, opened images and their pixels."""
    out.mkdir()
    command = ["xvfb-run", "--auto-servernum", "timeout", "--kill-after=5", str(FIJI_TIMEOUT_S),
               "java", f"-Dplugins.dir={PLUGINS}", "-jar", str(IJ_JAR), "-batch", str(MACRO),
               f"{path}\n{out}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=FIJI_TIMEOUT_S + 30)
    said = f"ImageJ's output:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    assert done.returncode != 124, f"ImageJ did not finish in {FIJI_TIMEOUT_S} s; {said}"
    rows = [line.split("\t") for line in done.stdout.splitlines()]
    assert done.returncode == 0 and ["done"] in rows, said  # ImageJ exits 0 when a macro fails
    levels = [(int(w), int(h), kind) for key, _, w, h, kind in
              (r for r in rows if r[0] == "level")]
    opened = [(int(w), int(h), int(bits), float(size), unit) for key, _, w, h, bits, size, unit
              in (r for r in rows if r[0] == "opened")]
    pixels = [tifffile.imread(out / f"series{k}.tif") for k in range(len(opened))]
    return {"series": int(next(r[1] for r in rows if r[0] == "series")), "levels": levels,
            "opened": opened, "pixels": pixels}


def _assert_opens_as_written(labels_file: Path, labels: np.ndarray, out: Path, bits: int,
                             kind: str, pixel_size: float | None) -> None:
    """Fiji finds every level of `labels_file`, level k holding every 2^k-th pixel of `labels`."""
    with tifffile.TiffFile(labels_file) as tif:
        n_levels = len(tif.series[0].levels)
    assert n_levels >= 2  # a pyramid: the test means nothing on one level
    expected = [labels[::2 ** k, ::2 ** k] for k in range(n_levels)]
    found = _open_in_fiji(labels_file, out)
    assert found["series"] == n_levels
    assert found["levels"] == [(a.shape[1], a.shape[0], kind) for a in expected]
    for level, (image, opened, pixels) in enumerate(zip(expected, found["opened"],
                                                        found["pixels"])):
        width, height, depth, size, unit = opened
        assert (width, height, depth) == (image.shape[1], image.shape[0], bits)
        if level == 0 and pixel_size:
            assert unit == "microns" and size == pytest.approx(pixel_size)
        np.testing.assert_array_equal(pixels, image, err_msg=f"level {level}")


def test_block_wise_labels_open_in_fiji_at_every_level(pointwise_model, tmp_path):
    sample = make_nuclei((900, 1300), n_nuclei=250, touching_pairs=20, bit_depth=16, seed=11)
    image = tmp_path / "slide.ome.tif"
    tifffile.imwrite(image, sample.image, tile=(256, 256), compression="zlib",
                     metadata={"axes": "YX", "PhysicalSizeX": 0.325, "PhysicalSizeY": 0.325})
    table = segment_images(pointwise_model, [image], SegmentSettings(block_size=512,
                                                                      block_margin=48),
                           tmp_path / "labels", tmp_path / "probabilities",
                           tmp_path / "segmented.csv", tmp_path / "confidence.csv")
    labels_file = Path(table.loc[0, "labels_file"])
    assert labels_file.name == "slide.ome.tif" and tifffile.imread(labels_file).max() > 100
    _assert_opens_as_written(labels_file, tifffile.imread(labels_file), tmp_path / "fiji", 16,
                             "uint16", 0.325)


def test_a_uint32_label_pyramid_opens_in_fiji_with_every_label(tmp_path):
    labels = (np.arange(1100 * 700, dtype=np.uint32).reshape(700, 1100) * 7) % 90001
    store = LabelStore(tmp_path, *labels.shape)
    store.write(slice(0, 700), slice(0, 1100), labels)
    path = tmp_path / "many.ome.tif"
    write_label_pyramid(path, store, int(labels.max()), None)
    store.close()
    assert tifffile.imread(path).dtype == np.uint32
    # ImageJ holds 32-bit integers as floats: exact below 2^24, which these labels are
    _assert_opens_as_written(path, labels, tmp_path / "fiji", 32, "uint32", None)
