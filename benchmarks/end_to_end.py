"""Benchmark: segmenting a batch end to end against the bare network's throughput.

    .venv/bin/python benchmarks/end_to_end.py --model <dsb2018_cpu run>/results/model --dsb 60

On the 60-image DSB2018 batch of benchmarks/segment_batch.py, with one engine (segment.backend
and segment.precision, auto by default) on a copy of the model folder:

- bare network: the engine's predict_on_batch alone on exactly the tiles predict_tiled feeds
  it (predict.network_inputs), the images read and normalized beforehand, untimed;
- end to end: segment.segment_images, the rule's function, on the raw files: read, normalize,
  predict, instances, labels and confidences written; wall time after the model is loaded (the
  job's start-up, imports and loading, is reported on its own line).

The two alternate for --rounds rounds, so a busy moment of a shared machine falls on both; the
ratio of their seconds per megapixel is the share of the bare network's throughput that
segmentation keeps. The per-stage sums of segmented.csv are printed too: the stages overlap
(pipeline.py), so their sum exceeds the wall time.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from segment_batch import dsb_sample  # noqa: E402


def bare_network(model, images) -> float:
    from nucleiseg.predict import network_inputs

    total = 0.0
    for image in images:
        for inputs in network_inputs(image, model.tiling):
            start = time.perf_counter()
            model.backend.predict_on_batch(inputs)
            total += time.perf_counter() - start
    return total


def end_to_end(model, files, out: Path):
    from nucleiseg.segment import SegmentSettings, segment_images

    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    table = segment_images(model, files, SegmentSettings(), out / "labels",
                           out / "probabilities", out / "segmented.csv", out / "confidence.csv")
    return time.perf_counter() - start, table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="a trained model folder")
    parser.add_argument("--dsb", type=int, default=60, help="images in the batch")
    parser.add_argument("--backend", default="auto", help="segment.backend")
    parser.add_argument("--precision", default="auto", help="segment.precision")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    start = time.perf_counter()
    from nucleiseg.batch_io import read_batch_image
    from nucleiseg.devices import configure_tensorflow
    from nucleiseg.inference import BackendChoice
    from nucleiseg.model import NucleusModel
    from nucleiseg.tables import STAGES

    scratch = Path(tempfile.mkdtemp(prefix="nucleiseg-end-to-end-"))
    try:
        shutil.copytree(args.model, scratch / "model")
        configure_tensorflow(args.threads)
        model = NucleusModel.load(scratch / "model", backend=BackendChoice(
            args.backend, args.precision), threads=args.threads)
        startup = time.perf_counter() - start
        files = dsb_sample(args.dsb)
        images = [model.normalize(read_batch_image(path).image) for path in files]
        megapixels = sum(image.shape[0] * image.shape[1] for image in images) / 1e6
        model.segment(images[0])  # warm-up: the first call compiles
        print(f"date: {datetime.date.today()}, machine: {platform.node()} ({os.cpu_count()} "
              f"cores), {args.threads} threads, engine: {model.backend}, {len(files)} images, "
              f"{megapixels:.2f} megapixels; start-up (imports, model load"
              f"{', conversion' if model.backend.name == 'openvino' else ''}): {startup:.1f} s")
        print("\n| round | bare network s/MP | end to end s/MP | share of the network's "
              "throughput |\n|---|---|---|---|")
        bare_total = wall_total = 0.0
        for round_ in range(1, args.rounds + 1):
            bare = bare_network(model, images)
            wall, table = end_to_end(model, files, scratch / "out")
            bare_total, wall_total = bare_total + bare, wall_total + wall
            print(f"| {round_} | {bare / megapixels:.3f} | {wall / megapixels:.3f} | "
                  f"{100 * bare / wall:.0f}% |")
        print(f"| all | {bare_total / args.rounds / megapixels:.3f} | "
              f"{wall_total / args.rounds / megapixels:.3f} | "
              f"{100 * bare_total / wall_total:.0f}% |")
        print("\nlast round, stage sums (overlapping):\n\n| stage | s/MP |\n|---|---|")
        for stage in STAGES:
            print(f"| {stage} | {table[f'seconds_{stage}'].sum() / megapixels:.3f} |")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
