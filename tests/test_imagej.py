"""The ImageJ ROI sets, opened by ImageJ itself (marker `imagej`), as the README's Fiji steps say.

Debian's ImageJ 1.53t (/usr/share/java/ij.jar; `.ci/install-imagej`) runs tests/imagej_rois.ijm
in batch mode: it opens an image's `<image_id>_rois.zip`, as `export_nuclei` writes it, in the ROI
Manager and prints the count and, per ROI, its name, type and area on a blank image of the label
image's size, and writes the ROIs filled as ImageJ fills them. The ROI Manager is a window even
in batch mode (with java.awt.headless=true, roiManager() throws HeadlessException), so ImageJ
runs on a virtual display (xvfb-run). A macro error or an ImageJ error message is a modal dialog
there, which nobody clicks: a run that does not finish in IMAGEJ_TIMEOUT_S fails, with its output.

Cases: a hand-made label image (touching nuclei, nuclei at the borders and in a corner, a ring,
a single pixel, a nucleus of pieces meeting at corners, labels that skip numbers) and real
DSB2018 images (labels from their masks). Skipped, with the reason, where ImageJ, java or
xvfb-run is absent.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage as ndi
from skimage.draw import disk

from conftest import SHARED_DSB, pick_ids
from nucleiseg.exports import IMAGEJ_ROIS, export_file, export_nuclei
from nucleiseg.io import read_image, write_csv, write_tiff
from nucleiseg.labels import masks_to_labels, relabel
from nucleiseg.measure import measure_image
from nucleiseg.normalize import to_channels_last

IJ_JAR = Path("/usr/share/java/ij.jar")  # Debian's libij-java
MACRO = Path(__file__).with_name("imagej_rois.ijm")
IMAGEJ_TIMEOUT_S = 60  # about 1 s per run; longer means a dialog is waiting for a click
MISSING = [name for name, found in [(str(IJ_JAR), IJ_JAR.is_file()),
                                    ("java", shutil.which("java")),
                                    ("xvfb-run", shutil.which("xvfb-run"))] if not found]

pytestmark = [
    pytest.mark.imagej,
    pytest.mark.skipif(bool(MISSING), reason=f"ImageJ is not installed ({', '.join(MISSING)} "
                       "absent): run `bash .ci/install-imagej` (needs root for apt-get; CI does)"),
]


@dataclass
class Opened:
    """One image's ROI set as ImageJ's ROI Manager opened it."""

    case: str
    labels: np.ndarray
    nuclei: pd.DataFrame  # the image's rows of nuclei.csv, as the export read them
    version: str
    count: int
    rois: pd.DataFrame  # name, type, area: one row per ROI, in the ROI Manager's order
    filled: np.ndarray  # every ROI filled by ImageJ with the number of its name


def _hand_made_labels() -> np.ndarray:
    shape = (40, 50)  # not square: a swapped width and height shows
    labels = np.zeros(shape, np.uint16)
    labels[disk((12, 12), 6, shape=shape)] = 1
    labels[disk((12, 23), 6, shape=shape)] = 2           # touches 1 along a column
    labels[disk((19, 17), 4, shape=shape)] = 3           # touches 1 and 2
    labels[0:5, 30:38] = 4                               # on the top border
    labels[15:40, 44:50] = 5                             # on the right and bottom borders
    labels[0:3, 0:3] = 6                                 # in the top-left corner
    ring = np.zeros(shape, bool)
    ring[disk((29, 20), 8, shape=shape)] = True
    ring[disk((29, 20), 4, shape=shape)] = False
    labels[ring] = 8                                     # a ring: a nucleus with a hole
    labels[22, 5] = 11                                   # one pixel
    labels[30, 35] = labels[31, 36] = labels[32, 35] = 14  # pieces meeting at corners
    return labels


def _dsb_labels_and_intensity(sample_id: str) -> tuple[np.ndarray, np.ndarray]:
    folder = SHARED_DSB / "stage1_train" / sample_id
    image = to_channels_last(read_image(folder / "images" / f"{sample_id}.png"))
    masks = [read_image(path) > 0 for path in sorted((folder / "masks").glob("*.png"))]
    labels, _ = relabel(masks_to_labels(masks)[0])  # a mask hidden under earlier ones: no gap
    return labels, image[..., 0].astype(np.float64)


def _run_imagej(rois: Path, shape: tuple[int, int], filled: Path) -> str:
    # `timeout` inside xvfb-run ends java, and xvfb-run then its X server: nothing is left over.
    args = "\n".join([str(rois), str(shape[1]), str(shape[0]), str(filled)])
    command = ["xvfb-run", "--auto-servernum", "timeout", "--kill-after=5", str(IMAGEJ_TIMEOUT_S),
               "java", "-jar", str(IJ_JAR), "-batch", str(MACRO), args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=IMAGEJ_TIMEOUT_S + 30)
    said = f"ImageJ's output:\n{done.stdout}\n{done.stderr}"
    if done.returncode == 124:
        pytest.fail(f"ImageJ did not finish in {IMAGEJ_TIMEOUT_S} s (an error dialog waits for "
                    f"a click?); {said}")
    # ImageJ exits 0 even when the macro fails: the macro's last line says it got there.
    assert done.returncode == 0 and done.stdout.splitlines()[-1:] == ["done"], said
    return done.stdout


def _parse(stdout: str) -> tuple[str, int, pd.DataFrame]:
    fields = [line.split("\t") for line in stdout.splitlines()]
    heads = {row[0]: row[1] for row in fields if row[0] in ("version", "count")}
    rois = pd.DataFrame([row[2:] for row in fields if row[0] == "roi"],
                        columns=["name", "type", "area"])
    return heads["version"], int(heads["count"]), rois.astype({"area": float})


def _open_in_imagej(case: str, labels: np.ndarray, intensity: np.ndarray,
                    folder: Path) -> Opened:
    """Export the image's ROI set as the workflow does (its label TIFF and nuclei.csv rows through
    export_nuclei) and open it in ImageJ."""
    folder.mkdir(parents=True)
    write_tiff(folder / "img_labels.tif", labels)
    write_csv(measure_image(labels, intensity, None, "img"), folder / "nuclei.csv")
    nuclei = pd.read_csv(folder / "nuclei.csv", dtype={"image_id": str})
    images = pd.DataFrame({"image_id": ["img"], "status": ["ok"],
                           "labels_file": [str(folder / "img_labels.tif")]})
    export_nuclei(images, nuclei, [IMAGEJ_ROIS], folder / "exports")
    rois = export_file(folder / "exports", "img", IMAGEJ_ROIS)
    filled = folder / "filled_by_imagej.tif"
    version, count, table = _parse(_run_imagej(rois, labels.shape, filled))
    return Opened(case, labels, nuclei, version, count, table, read_image(filled))


@pytest.fixture(scope="module", params=["hand_made", "dsb2018"])
def opened(request, tmp_path_factory) -> list[Opened]:
    folder = tmp_path_factory.mktemp("imagej")
    if request.param == "hand_made":
        labels = _hand_made_labels()
        intensity = np.random.default_rng(0).uniform(10, 200, labels.shape)
        return [_open_in_imagej("hand_made", labels, intensity, folder / "hand_made")]
    # The smallest fluorescence and brightfield images (skipped without the shared DSB2018).
    meta = request.getfixturevalue("dsb_meta")
    ids = pick_ids(meta, {"fluorescence_gray": 1, "brightfield_gray": 1})
    return [_open_in_imagej(f"dsb_{sample_id[:12]}", *_dsb_labels_and_intensity(sample_id),
                            folder / sample_id[:12]) for sample_id in ids]


def test_the_roi_manager_holds_one_roi_per_nucleus_named_by_label_in_table_order(opened):
    for one in opened:
        labels = [str(label) for label in one.nuclei["label"]]
        assert one.version.startswith("1."), one.version
        assert one.count == len(one.nuclei) == len(one.rois) > 0, one.case
        assert one.rois["name"].tolist() == labels, one.case


def test_imagej_measures_each_roi_as_its_nucleus_pixel_count(opened):
    for one in opened:
        pixels = ndi.sum_labels(np.ones(one.labels.shape), one.labels, one.nuclei["label"])
        np.testing.assert_array_equal(one.rois["area"], pixels, err_msg=one.case)
        np.testing.assert_array_equal(one.rois["area"], one.nuclei["AreaShape_Area"],
                                      err_msg=one.case)


def test_imagej_fills_the_rois_back_to_the_label_image_exactly(opened):
    for one in opened:
        assert one.filled.shape == one.labels.shape, one.case
        np.testing.assert_array_equal(one.filled, one.labels, err_msg=one.case)


def _pieces_and_holes(labels: np.ndarray) -> dict[int, tuple[int, int]]:
    """label -> its 4-connected pieces, as the outlines count them, and its holes: pixels touching
    only at a corner are apart, so the background between them is one, and holes are the
    8-connected background regions but the outside."""
    found = {}
    for index, box in enumerate(ndi.find_objects(labels), start=1):
        if box is not None:
            mask = np.pad(labels[box] == index, 1)
            found[index] = (ndi.label(mask)[1],
                            ndi.label(~mask, structure=np.ones((3, 3)))[1] - 1)
    return found


def test_a_nucleus_with_a_hole_or_in_pieces_is_a_composite_roi_else_a_polygon(opened):
    for one in opened:
        shapes = _pieces_and_holes(one.labels)
        expected = ["polygon" if shapes[label] == (1, 0) else "composite"
                    for label in one.nuclei["label"]]
        assert one.rois["type"].tolist() == expected, one.case
        if one.case == "hand_made":  # the ring and the nucleus in pieces; the single pixel
            types = dict(zip(one.rois["name"], one.rois["type"]))
            assert (types["8"], types["14"], types["11"]) == ("composite", "composite", "polygon")
