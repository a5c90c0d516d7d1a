"""Time the full nuclear profile: nucleiseg's measure_labels against CellProfiler's modules.

Both measure the same features (MeasureObjectSizeShape with its advanced measurements and
Zernike features, MeasureObjectIntensity, MeasureObjectNeighbors Adjacent and within 5 px,
MeasureTexture at 3 px and 256 levels, MeasureObjectIntensityDistribution with 4 rings: every
optional family of segment.measure_features) on the same label and intensity arrays of real
DSB2018 images,
in-process (CellProfiler 4.2.8.1 in .venv-cellprofiler, through tests/cellprofiler_oracle.py's
`measure`, modules run on an in-memory workspace; nucleiseg in this Python). Each side measures
every image `--repeats` times and keeps its best total; the ratio is CellProfiler's seconds over
nucleiseg's (above 1: nucleiseg is faster).

    .venv/bin/python benchmarks/measure_speed.py [--images 24] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))

from nucleiseg.io import read_image  # noqa: E402
from nucleiseg.labels import masks_to_labels, relabel  # noqa: E402
from nucleiseg.morphometrics import FEATURES, measure_labels  # noqa: E402
from nucleiseg.normalize import to_channels_last  # noqa: E402

DSB = REPO.parent / "shared" / "data" / "dsb2018" / "stage1_train"
ORACLE_PYTHON = REPO / ".venv-cellprofiler" / "bin" / "python"
CELLPROFILER_TIMER = """
import json, sys, time
import numpy as np
sys.path.insert(0, {tests!r})
from cellprofiler_oracle import measure
cases = [np.load(p) for p in {files!r}]
cases = [(c["labels"], c["intensity"], float(c["full_scale"])) for c in cases]
measure(*cases[0])  # warm-up: imports and first calls
best = min(sum(_time(measure, c) for c in cases) for _ in range({repeats}))
print(json.dumps(best))
"""
TIMER_HELPER = """
def _time(f, case):
    start = time.perf_counter(); f(*case); return time.perf_counter() - start
"""


def load_cases(count: int) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """The first `count` gray 8-bit DSB2018 training images (sorted ids): labels 1..n,
    intensity, full scale (255)."""
    cases = []
    for folder in sorted(DSB.iterdir()):
        image = to_channels_last(read_image(folder / "images" / f"{folder.name}.png"))
        if image.shape[-1] != 1 or image.dtype != np.uint8:
            continue
        masks = [read_image(p) > 0 for p in sorted((folder / "masks").glob("*.png"))]
        labels, _ = relabel(masks_to_labels(masks)[0])
        cases.append((labels.astype(np.int32), image[..., 0].astype(np.float64), 255.0))
        if len(cases) == count:
            break
    return cases


def time_nucleiseg(cases, repeats: int) -> float:
    labels, intensity, full_scale = cases[0]
    measure_labels(labels, intensity, features=FEATURES, full_scale=full_scale)  # warm-up
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        for labels, intensity, full_scale in cases:
            measure_labels(labels, intensity, features=FEATURES, full_scale=full_scale)
        best = min(best, time.perf_counter() - start)
    return best


def time_cellprofiler(cases, repeats: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        files = []
        for i, (labels, intensity, full_scale) in enumerate(cases):
            files.append(str(Path(folder) / f"case{i}.npz"))
            np.savez(files[-1], labels=labels, intensity=intensity, full_scale=full_scale)
        code = TIMER_HELPER + CELLPROFILER_TIMER.format(tests=str(REPO / "tests"), files=files,
                                                       repeats=repeats)
        result = subprocess.run([str(ORACLE_PYTHON), "-c", code], capture_output=True,
                                text=True, check=True)
    return float(json.loads(result.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cases = load_cases(args.images)
    nuclei = sum(int(labels.max()) for labels, _, _ in cases)
    ours = time_nucleiseg(cases, args.repeats)
    theirs = time_cellprofiler(cases, args.repeats)
    print(f"{len(cases)} images, {nuclei} nuclei, features: core + {', '.join(FEATURES)}; "
          f"best of {args.repeats}; {platform.processor() or platform.machine()}, "
          f"{time.strftime('%Y-%m-%d')}")
    print(f"nucleiseg     {ours:8.3f} s")
    print(f"CellProfiler  {theirs:8.3f} s")
    print(f"ratio CellProfiler / nucleiseg: {theirs / ours:.2f} "
          f"({'nucleiseg no slower' if ours <= theirs else 'nucleiseg SLOWER'})")


if __name__ == "__main__":
    main()
