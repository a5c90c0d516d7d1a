"""Benchmark: segment a batch with the real workflow; seconds per megapixel by stage, and memory.

    # real DSB2018 images (read in place), with a trained model folder:
    .venv/bin/python benchmarks/segment_batch.py --model results/model --dsb 60
    # one synthetic 8192 x 8192 16-bit image: peak memory of a very large image
    .venv/bin/python benchmarks/segment_batch.py --model results/model --big 8192 --no-forward

Runs `snakemake` on a batch (segment.model set, so nothing trains), samples the resident memory
of the whole process tree every 0.1 s, and prints Markdown tables: wall time and peak memory of
the run and of each job (Snakemake's benchmark records), and seconds per megapixel of each
stage summed over the images (images.csv: read, normalize, predict, instances, write; measure,
overlay). Then, in this process, the bare network's forward time on exactly the tiles that
predict_tiled feeds it (predict.network_inputs, one warm-up call first), so that the
prediction's own overhead (cutting and blending tiles) can be read off. The network runs on
segment.backend's default engine (auto: OpenVINO on a CPU), which keeps its conversion in the
model folder's openvino/ on first use: pass a copy of a folder that must stay as it is.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_workflow import run_sampled  # noqa: E402

SHARED = REPO.parent / "shared" / "data" / "dsb2018"
STAGES = ("read", "normalize", "predict", "instances", "write", "measure", "overlay")


def dsb_sample(count: int) -> list[Path]:
    """`count` real images spread over every modality and size (every k-th by id)."""
    meta = pd.read_csv(SHARED / "stage1_train_meta.csv", dtype={"id": str}).sort_values("id")
    step = max(1, len(meta) // count)
    return [SHARED / "stage1_train" / sample_id / "images" / f"{sample_id}.png"
            for sample_id in meta["id"].iloc[::step].head(count)]


def dsb_batch(folder: Path, count: int) -> None:
    """dsb_sample's images, linked into `folder`."""
    for path in dsb_sample(count):
        (folder / path.name).symlink_to(path)


def big_batch(folder: Path, side: int) -> None:
    """One 16-bit side x side image: a 1024 x 1024 synthetic field repeated (nuclei whole)."""
    import tifffile

    from nucleiseg.synthetic import make_nuclei

    field = make_nuclei((1024, 1024), n_nuclei=700, radius=(7, 12), touching_pairs=80,
                        bit_depth=16, seed=0).image
    repeats = -(-side // 1024)
    image = np.tile(field, (repeats, repeats))[:side, :side]
    tifffile.imwrite(folder / f"synthetic_{side}.tif", image, photometric="minisblack")


def forward_seconds(model_folder: Path, images: pd.DataFrame, workdir: Path, tiling,
                    threads: int) -> float:
    """The network's predict_on_batch time alone, on the tiles predict_tiled makes, through
    the engine segment.backend auto picks (the run's own)."""
    from nucleiseg.batch_io import read_batch_image
    from nucleiseg.devices import configure_tensorflow
    from nucleiseg.model import NucleusModel
    from nucleiseg.predict import network_inputs

    configure_tensorflow(threads)
    model = NucleusModel.load(model_folder, tiling, threads=threads)
    total, warm = 0.0, False
    for row in images.itertuples():
        image = read_batch_image(workdir / row.file if not Path(row.file).is_absolute() else row.file)
        for inputs in network_inputs(model.normalize(image.image), tiling):
            if not warm:
                model.backend.predict_on_batch(inputs)
                warm = True
            start = time.perf_counter()
            model.backend.predict_on_batch(inputs)
            total += time.perf_counter() - start
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="a trained model folder")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--dsb", type=int, help="this many real DSB2018 images")
    what.add_argument("--big", type=int, help="one synthetic 16-bit image of this side")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--tile-size", type=int, default=None, help="segment.tile_size")
    parser.add_argument("--no-forward", action="store_true", help="skip the bare forward timing")
    parser.add_argument("--workdir", type=Path, default=None, help="kept if given; else a temp dir")
    args = parser.parse_args()

    from nucleiseg.inference import Tiling

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="nucleiseg-segment-bench-"))
    batch = workdir / "batch"
    batch.mkdir(parents=True, exist_ok=True)
    dsb_batch(batch, args.dsb) if args.dsb else big_batch(batch, args.big)
    segment = {"model": str(args.model.resolve()), "images_per_chunk": 100000,
               "threads": args.cores}
    if args.tile_size:
        segment["tile_size"] = args.tile_size
    wall, peak = run_sampled(workdir, {"batches": {"bench": str(batch)}, "segment": segment},
                             args.cores, ["results/batches/bench/nuclei.csv"])

    out = workdir / "results" / "batches" / "bench"
    images = pd.read_csv(out / "images.csv", dtype={"image_id": str})
    megapixels = (images["height"] * images["width"]).sum() / 1e6
    n_nuclei = int(images["n_nuclei"].sum())
    print(f"date: {datetime.date.today()}, machine: {platform.node()} "
          f"({psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB), "
          f"--cores {args.cores}, model: {args.model}")
    print(f"images: {len(images)}, megapixels: {megapixels:.2f}, nuclei: {n_nuclei}")
    print("\n| what | wall s | peak memory MiB |\n|---|---|---|")
    print(f"| whole run (process tree, sampled) | {wall:.1f} | {peak / 2**20:.0f} |")
    for tsv in sorted((workdir / "results" / "benchmarks").rglob("*.tsv")):
        row = pd.read_csv(tsv, sep="\t").iloc[0]
        name = tsv.relative_to(workdir / "results" / "benchmarks").with_suffix("")
        print(f"| job {name} | {row['s']:.1f} | {row['max_rss']:.0f} |")

    print("\n| stage | seconds | seconds per megapixel |\n|---|---|---|")
    total = 0.0
    for stage in STAGES:
        seconds = images[f"seconds_{stage}"].sum()
        total += seconds
        print(f"| {stage} | {seconds:.2f} | {seconds / megapixels:.3f} |")
    print(f"| all stages | {total:.2f} | {total / megapixels:.3f} |")
    if not args.no_forward:
        tiling = Tiling.from_config({k: v for k, v in segment.items() if k == "tile_size"})
        forward = forward_seconds(args.model, images, workdir, tiling, args.cores)
        print(f"| bare network forward (predict_on_batch on the same tiles) | {forward:.2f} | "
              f"{forward / megapixels:.3f} |")


if __name__ == "__main__":
    main()
