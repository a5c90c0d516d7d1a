"""Benchmark: which tile size and overlap should tiled prediction use by default?

    .venv/bin/python benchmarks/tiling.py --model /tmp/bench-full/results/model \
        --prepared /tmp/bench-full/results/prepared --index /tmp/bench-full/results/index.csv \
        --split val --largest 20 --out /tmp/tiling.csv

On the prepared images of one split (val: never the test images), for each (tile, overlap,
batch) setting: how far the tiled foreground map is from the untiled one (max and mean absolute
difference, also leaving out a 32-pixel band along the image's edges where tiling adds reflected
context on purpose, and the share of pixels whose foreground decision flips), the mean DSB score
of the labels (thresholds.json beside the model) tiled and untiled, and seconds per megapixel of
image (wall clock, and CPU time of this process: steadier when other jobs share the machine).

For scale, one reference row predicts the horizontally mirrored image untiled and mirrors the
output back: the network's own variability under a change that should not matter. A tiling whose
differences are below that row's is within noise.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import tifffile

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))


def load_images(prepared: Path, index: Path, split: str,
                largest: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(id, image, truth) for the `largest` images of the split by area (0: all of them)."""
    rows = pd.read_csv(index, dtype={"id": str})
    rows = rows[rows["split"] == split].assign(area=lambda d: d["height"] * d["width"])
    rows = rows.sort_values(["area", "id"], ascending=[False, True])
    if largest:
        rows = rows.head(largest)
    return [(i, tifffile.imread(prepared / "images" / f"{i}.tif"),
             tifffile.imread(prepared / "labels" / f"{i}.tif")) for i in rows["id"]]


BORDER = 32  # pixels along the image's edge, where tiled prediction adds reflected context


def timed(predict, image: np.ndarray) -> tuple[np.ndarray, float, float]:
    """The maps, wall seconds and this process's CPU seconds (all TensorFlow threads).

    CPU seconds are the steadier measure on a machine shared with other jobs.
    """
    wall, cpu = time.perf_counter(), time.process_time()
    maps = predict(image)
    return maps, time.perf_counter() - wall, time.process_time() - cpu


def dsb(model, maps: np.ndarray, truth: np.ndarray) -> float:
    from nucleiseg.metrics import score_image

    return score_image(truth, model.instances(maps))["dsb_score"]


def compare(name: str, predict, images, untiled: dict, model) -> dict:
    """One table row: differences to the untiled maps and scores, over all images."""
    max_diff, max_inner, mean_diff, flips, scores, wall, cpu, pixels = 0.0, 0.0, [], [], [], 0.0, 0.0, 0
    for sample_id, image, truth in images:
        maps, took, cpu_took = timed(predict, image)
        reference = untiled[sample_id]["maps"]
        diff = np.abs(maps[..., 0] - reference[..., 0])
        max_diff = max(max_diff, float(diff.max()))
        max_inner = max(max_inner, float(diff[BORDER:-BORDER, BORDER:-BORDER].max()))
        mean_diff.append(float(diff.mean()))
        cut = model.thresholds.foreground
        flips.append(float(np.mean((maps[..., 0] > cut) != (reference[..., 0] > cut))))
        scores.append(dsb(model, maps, truth))
        wall += took
        cpu += cpu_took
        pixels += image.shape[0] * image.shape[1]
    untiled_scores = [untiled[i]["dsb"] for i, _, _ in images]
    return {"setting": name, "max_abs_diff": max_diff, f"max_abs_diff_{BORDER}px_in": max_inner,
            "mean_abs_diff": float(np.mean(mean_diff)),
            "flipped_pct": 100 * float(np.mean(flips)), "dsb": float(np.mean(scores)),
            "dsb_untiled": float(np.mean(untiled_scores)),
            "max_abs_dsb_change": float(np.max(np.abs(np.subtract(scores, untiled_scores)))),
            "s_per_mp": wall / (pixels / 1e6), "cpu_s_per_mp": cpu / (pixels / 1e6)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="a model folder (model.keras, thresholds.json)")
    parser.add_argument("--prepared", type=Path, required=True, help="results/prepared (images/, labels/)")
    parser.add_argument("--index", type=Path, required=True, help="results/index.csv (column split)")
    parser.add_argument("--split", default="val")
    parser.add_argument("--largest", type=int, default=20, help="only the largest N images (0: all)")
    parser.add_argument("--tiles", type=int, nargs="+", default=[256, 512, 768, 1024])
    parser.add_argument("--overlaps", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--tiles-per-step", type=int, nargs="+", default=[2])
    parser.add_argument("--out", type=Path, required=True, help="CSV of the table")
    args = parser.parse_args()
    if args.split == "test":
        sys.exit("choose settings on val, never on the test images")

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from nucleiseg.inference import Tiling
    from nucleiseg.model import NucleusModel
    from nucleiseg.predict import predict_tiled, predict_untiled

    model = NucleusModel.load(args.model)
    network = model.network
    images = load_images(args.prepared, args.index, args.split, args.largest)
    sizes = pd.Series([f"{im.shape[0]}x{im.shape[1]}" for _, im, _ in images]).value_counts()
    print(f"date: {datetime.date.today()}, machine: {platform.node()} ({os.cpu_count()} cores), "
          f"{len(images)} {args.split} images: {', '.join(f'{n} x {s}' for s, n in sizes.items())}")

    # Warm up: the first call traces the network.
    predict_untiled(network, images[0][1][:256, :256])
    untiled = {}
    for sample_id, image, truth in images:
        maps = predict_untiled(network, image)
        untiled[sample_id] = {"maps": maps, "dsb": dsb(model, maps, truth)}
    rows = [compare("untiled", lambda im: predict_untiled(network, im), images, untiled, model),
            compare("untiled, mirrored", lambda im: predict_untiled(network, im[:, ::-1])[:, ::-1],
                    images, untiled, model)]
    for tile in args.tiles:
        for overlap in args.overlaps:
            if overlap > tile // 2:
                continue
            for per_step in args.tiles_per_step:
                tiling = Tiling(tile, overlap, per_step)
                rows.append(compare(f"tile {tile}, overlap {overlap}, {per_step} per step",
                                    lambda im, tiling=tiling: predict_tiled(network, im, tiling),
                                    images, untiled, model))
                print(pd.DataFrame(rows[-1:]).to_string(index=False, header=False), flush=True)
    table = pd.DataFrame(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    with pd.option_context("display.width", 200, "display.float_format", "{:.4f}".format):
        print(table.to_string(index=False))


if __name__ == "__main__":
    main()
