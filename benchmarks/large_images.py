"""Benchmark: large images block by block; wall time and peak memory per size, and block-wise
against whole-image labels.

    .venv/bin/python benchmarks/large_images.py --model ~/nucleiseg-runs/dsb2018_cpu/results/model \
        --sizes 8192 16384 32768 --compare 8192

For each size, a synthetic 16-bit side x side image is written as a tiled TIFF (256 x 256 tiles,
zlib), a band of 256 rows at a time: 1000 x 1000 fields of synthetic nuclei (24 distinct ones,
flipped, placed at random), so it is never held whole. Then, each in a subprocess of its own as
the workflow's rules run: segment_images (the block-wise path: every size here is above
segment.block_size) and measure_nuclei; the peak resident memory (ru_maxrss) and the wall time
of each are the process's own (os.wait4). With --compare, one image of that size is also
segmented with the whole-image path (a block size above the side) and the two label images are
compared: nuclei matched (IoU >= 0.5, and how many at IoU >= 0.95), mean IoU, nuclei left out,
duplicates (a block-wise nucleus on a whole-image nucleus that another one matched) and nuclei
split along a block border (a whole-image nucleus crossing a core border whose pixels are
shared by two block-wise nuclei). Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))

FIELD = 1000  # side of one synthetic field; block borders (multiples of 2048) cut through fields
FIELDS = 24  # distinct fields rendered
# nuclei per field (per megapixel): a quarter of DSB2018's densest fields, so that measuring
# 32768^2 (about 5 ms a nucleus) takes about half an hour on 2 cores
NUCLEI = 250
BAND = 256  # rows written at a time (the TIFF tile side)


def synthetic_fields(seed: int) -> list[np.ndarray]:
    from nucleiseg.synthetic import make_nuclei

    return [make_nuclei((FIELD, FIELD), n_nuclei=NUCLEI, touching_pairs=NUCLEI // 10, bit_depth=16,
                        illumination=0.0, seed=seed + k).image for k in range(FIELDS)]


def _field(fields: list[np.ndarray], row: int, column: int) -> np.ndarray:
    key = (row * 7919 + column * 104729) % (FIELDS * 4)
    field = fields[key % FIELDS]
    return field[::-1] if key // FIELDS & 1 else field[:, ::-1] if key // FIELDS & 2 else field


def _band(fields: list[np.ndarray], side: int, y: int) -> np.ndarray:
    band = np.empty((min(BAND, side - y), side), np.uint16)
    for row in range(y // FIELD, (y + band.shape[0] - 1) // FIELD + 1):
        top, bottom = max(y, row * FIELD), min(y + band.shape[0], (row + 1) * FIELD)
        for column in range(-(-side // FIELD)):
            left, right = column * FIELD, min((column + 1) * FIELD, side)
            band[top - y:bottom - y, left:right] = _field(fields, row, column)[
                top - row * FIELD:bottom - row * FIELD, : right - left]
    return band


def write_synthetic(path: Path, side: int, seed: int = 0) -> None:
    """A side x side 16-bit tiled TIFF, written band by band."""
    import tifffile

    fields = synthetic_fields(seed)

    def tiles():
        for y in range(0, side, BAND):
            band = _band(fields, side, y)
            padded = np.zeros((BAND, -(-side // BAND) * BAND), np.uint16)
            padded[: band.shape[0], :side] = band
            for x in range(0, side, BAND):
                yield padded[:, x:x + BAND]

    tifffile.imwrite(path, tiles(), shape=(side, side), dtype=np.uint16, tile=(BAND, BAND),
                     compression="zlib", compressionargs={"level": 1}, bigtiff=True,
                     photometric="minisblack")


def run_stage(stage: str, image: Path, out: Path, args) -> dict:
    """One stage in a subprocess: its wall time and peak resident memory (its own)."""
    command = [sys.executable, __file__, "--stage", stage, "--image", str(image),
               "--out", str(out), "--model", str(args.model), "--block-size",
               str(args.block_size), "--block-margin", str(args.block_margin),
               "--threads", str(args.threads)]
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{stage} failed on {image}")
    return {"seconds": time.perf_counter() - start, "peak_mb": usage.ru_maxrss / 1024,
            **json.loads(output.strip().splitlines()[-1])}


def stage_main(args) -> None:
    """In the subprocess: segment_images or measure_nuclei, as the rules call them."""
    import pandas as pd

    out, image = Path(args.out), Path(args.image)
    if args.stage == "segment":
        from nucleiseg.devices import configure_tensorflow
        from nucleiseg.model import NucleusModel
        from nucleiseg.segment import SegmentSettings, segment_images

        configure_tensorflow(args.threads)
        model = NucleusModel.load(args.model, threads=args.threads)
        settings = SegmentSettings(block_size=args.block_size, block_margin=args.block_margin)
        table = segment_images(model, [image], settings, out / "labels", out / "probabilities",
                               out / "segmented.csv", out / "confidence.csv")
        row = table.iloc[0]
        print(json.dumps({"nuclei": int(row["n_nuclei"]), "backend": str(row.get("backend")),
                          "precision": str(row.get("precision")),
                          **{c: float(row[c]) for c in table.columns
                             if c.startswith("seconds_")}}))
        return
    from nucleiseg.io import write_csv
    from nucleiseg.measure import measure_nuclei

    table = pd.read_csv(out / "segmented.csv", dtype={"image_id": str})
    confidence = pd.read_csv(out / "confidence.csv", dtype={"image_id": str})
    nuclei, seconds = measure_nuclei(table, confidence, 0, out / "overlays",
                                     blocks={"block_size": args.block_size,
                                             "block_margin": args.block_margin})
    write_csv(nuclei, out / "nuclei.csv")
    print(json.dumps({"measured": len(nuclei), **seconds.iloc[0].drop("image_id").to_dict()}))


def compare_labels(whole: np.ndarray, blocks: np.ndarray, block_size: int) -> dict:
    """How block-wise labels match whole-image labels (see the module's docstring)."""
    keys, counts = np.unique(whole.astype(np.int64) * (int(blocks.max()) + 1) + blocks,
                             return_counts=True)
    a, b = keys // (int(blocks.max()) + 1), keys % (int(blocks.max()) + 1)
    size_a = np.bincount(whole.ravel(), minlength=int(whole.max()) + 1)
    size_b = np.bincount(blocks.ravel(), minlength=int(blocks.max()) + 1)
    inside = (a > 0) & (b > 0)
    a, b, counts = a[inside], b[inside], counts[inside]
    iou = counts / (size_a[a] + size_b[b] - counts)
    best = np.zeros(size_a.size)
    best_b = np.zeros(size_a.size, np.int64)
    order = np.argsort(iou)  # the last write per nucleus is its best match
    best[a[order]], best_b[a[order]] = iou[order], b[order]
    present = np.flatnonzero(size_a[1:]) + 1
    matched = present[best[present] >= 0.5]
    duplicate = ((best[a] >= 0.5) & (best_b[a] != b) & (counts >= 0.5 * size_b[b])
                 & ~np.isin(b, best_b[matched]))
    duplicates = np.unique(b[duplicate])
    crossing = _crossing_borders(whole, block_size)
    shared = np.bincount(a[counts >= 0.1 * size_a[a]], minlength=size_a.size)
    split = [k for k in crossing if shared[k] >= 2]
    return {"whole": int(present.size), "block-wise": int(np.count_nonzero(size_b[1:])),
            "matched (IoU >= 0.5)": int(matched.size),
            "IoU >= 0.95": int(np.count_nonzero(best[present] >= 0.95)),
            "mean IoU": float(best[matched].mean()) if matched.size else float("nan"),
            "left out": int(present.size - matched.size), "duplicates": int(duplicates.size),
            "crossing a block border": len(crossing), "split along a border": len(split)}


def _crossing_borders(labels: np.ndarray, block_size: int) -> list[int]:
    """The labels with pixels on both sides of a core border (rows or columns)."""
    found = set()
    for axis in (0, 1):
        for line in range(block_size, labels.shape[axis], block_size):
            before = np.take(labels, line - 1, axis=axis)
            after = np.take(labels, line, axis=axis)
            found.update(np.unique(before[(before == after) & (before > 0)]).tolist())
    return sorted(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("--sizes", type=int, nargs="*", default=[8192, 16384, 32768])
    parser.add_argument("--compare", type=int, default=0, help="side of the image compared")
    parser.add_argument("--block-size", type=int, default=2048)
    parser.add_argument("--block-margin", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", type=Path, default=None, help="folder for the images")
    parser.add_argument("--stage", choices=["segment", "measure"], help=argparse.SUPPRESS)
    parser.add_argument("--image", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        return stage_main(args)
    work = Path(args.work or tempfile.mkdtemp(prefix="nucleiseg-large-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"threads {args.threads}, block {args.block_size} + {args.block_margin}, in {work}\n")
    print("| side | Mpx | nuclei | segment s | measure s | segment peak MB | measure peak MB "
          "| bytes/px of the image |")
    print("|---|---|---|---|---|---|---|---|")
    for side in args.sizes:
        image = work / f"synthetic_{side}.tif"
        if not image.exists():
            write_synthetic(image, side)
        out = work / f"run_{side}"
        segment = run_stage("segment", image, out, args)
        measure = run_stage("measure", image, out, args)
        peak = max(segment["peak_mb"], measure["peak_mb"])
        print(f"| {side} | {side * side / 1e6:.0f} | {segment['nuclei']} | "
              f"{segment['seconds']:.0f} | {measure['seconds']:.0f} | {segment['peak_mb']:.0f} | "
              f"{measure['peak_mb']:.0f} | {peak * 2**20 / side**2:.2f} |", flush=True)
        print(f"<!-- {side}: {json.dumps({'segment': segment, 'measure': measure})} -->",
              flush=True)
    if args.compare:
        compare(work, args)


def compare(work: Path, args) -> None:
    import tifffile

    image = work / f"synthetic_{args.compare}.tif"
    if not image.exists():
        write_synthetic(image, args.compare)
    blocks_out = work / f"run_{args.compare}"
    if not (blocks_out / "segmented.csv").exists():
        run_stage("segment", image, blocks_out, args)
    whole_args = argparse.Namespace(**{**vars(args), "block_size": args.compare})
    whole_out = work / f"whole_{args.compare}"
    whole = run_stage("segment", image, whole_out, whole_args)
    found = compare_labels(tifffile.imread(next((whole_out / "labels").glob("*.tif"))),
                           tifffile.imread(next((blocks_out / "labels").glob("*.ome.tif"))),
                           args.block_size)
    print(f"\nwhole-image path on {args.compare}^2: {whole['seconds']:.0f} s, peak "
          f"{whole['peak_mb']:.0f} MB\n")
    print("| " + " | ".join(found) + " |")
    print("|" + "---|" * len(found))
    print("| " + " | ".join(f"{v:.4f}" if isinstance(v, float) else str(v)
                            for v in found.values()) + " |")


if __name__ == "__main__":
    main()
