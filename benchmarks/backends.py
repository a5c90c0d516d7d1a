"""Benchmark: the network's engines side by side (segment.backend, segment.precision).

    .venv/bin/python benchmarks/backends.py --run ~/nucleiseg-runs/dsb2018_cpu

On one trained model (a copy of the run's results/model, so that converting it on first use
writes nothing into the run), each engine predicts the same images through NucleusModel.predict
(the same tiles, cut and blended as segmentation cuts and blends them), the engines taking turns
image by image so that a busy moment of the machine falls on all of them alike:

- the 60-image DSB2018 batch of benchmarks/segment_batch.py (raw files, read and normalized as
  segment_images does): predict seconds per megapixel and the speed-up over TensorFlow, the
  largest and mean difference of the maps from TensorFlow's, and the share of pixels whose
  instance label (the model's thresholds) is identical to TensorFlow's up to numbering (in the
  same nucleus, or background, in both) and whose foreground is;
- the run's test split (its prepared images, as evaluate_model reads them): the network's mean
  DSB score per engine, as evaluation computes it (NucleusModel.segment, metrics.score_image).
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

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from segment_batch import dsb_sample  # noqa: E402

ENGINES = (("tensorflow", "float32"), ("openvino", "float32"), ("openvino", "bf16"))


def load_engines(folder: Path, threads: int) -> dict:
    from nucleiseg.inference import BackendChoice
    from nucleiseg.model import NucleusModel

    return {f"{backend} {precision}": NucleusModel.load(folder, backend=BackendChoice(
        backend, precision), threads=threads) for backend, precision in ENGINES}


def in_turns(models: dict, images, work) -> dict[str, list]:
    """work(model, image) for every image and engine, the engines' order rotating per image."""
    names = list(models)
    results = {name: [] for name in names}
    for k, image in enumerate(images):
        for name in names[k % len(names):] + names[:k % len(names)]:
            results[name].append(work(models[name], image))
    return results


def timed_predict(model, image) -> tuple[float, np.ndarray, np.ndarray]:
    start = time.perf_counter()
    maps = model.predict(image)
    seconds = time.perf_counter() - start
    return seconds, maps, model.instances(maps)


def same_nucleus_pixels(labels: np.ndarray, reference: np.ndarray) -> int:
    """Pixels labelled alike up to numbering: background in both, or in a nucleus and its
    reference nucleus that are each other's largest overlap (one nucleus more or fewer early
    in scan order renumbers all later ones)."""
    pairs, counts = np.unique(np.stack([labels.ravel(), reference.ravel()]).astype(np.int64),
                              axis=1, return_counts=True)
    table = pd.DataFrame({"a": pairs[0], "b": pairs[1], "n": counts})
    best_b = table.sort_values("n").drop_duplicates("a", keep="last").set_index("a")["b"]
    best_a = table.sort_values("n").drop_duplicates("b", keep="last").set_index("b")["a"]
    mutual = (table["a"].map(best_b) == table["b"]) & (table["b"].map(best_a) == table["a"])
    alike = mutual & ((table["a"] > 0) == (table["b"] > 0))
    return int(table.loc[alike, "n"].sum())


def batch_table(models: dict, count: int) -> pd.DataFrame:
    """Predict time, map and label agreement with TensorFlow on the 60-image batch."""
    from nucleiseg.batch_io import read_batch_image

    any_model = next(iter(models.values()))
    images = [any_model.normalize(read_batch_image(path).image) for path in dsb_sample(count)]
    megapixels = sum(image.shape[0] * image.shape[1] for image in images) / 1e6
    for model in models.values():  # warm-up: the first call compiles
        model.predict(images[0][:256, :256])
    results = in_turns(models, images, timed_predict)
    reference = results["tensorflow float32"]
    rows = []
    for name, runs in results.items():
        seconds = sum(r[0] for r in runs)
        same = sum(same_nucleus_pixels(r[2], t[2]) for r, t in zip(runs, reference))
        foreground = sum(int(((r[2] > 0) == (t[2] > 0)).sum()) for r, t in zip(runs, reference))
        pixels = sum(t[2].size for t in reference)
        rows.append({"engine": name, "predict s": seconds, "s/MP": seconds / megapixels,
                     "speed-up": sum(r[0] for r in reference) / seconds,
                     "max |maps - TF|": max(float(np.abs(r[1] - t[1]).max())
                                            for r, t in zip(runs, reference)),
                     "mean |maps - TF|": np.mean([float(np.abs(r[1] - t[1]).mean())
                                                 for r, t in zip(runs, reference)]),
                     "labels identical %": 100 * same / pixels,
                     "foreground identical %": 100 * foreground / pixels})
    print(f"\n60-image batch: {len(images)} images, {megapixels:.2f} megapixels")
    return pd.DataFrame(rows)


def test_split_table(models: dict, run: Path) -> pd.DataFrame:
    """The network's mean DSB score on the run's test split, per engine."""
    from nucleiseg.evaluate import split_images
    from nucleiseg.metrics import score_image

    index = pd.read_csv(run / "results" / "index.csv", dtype={"id": str})
    items = list(split_images(index, run / "results" / "prepared", "test"))

    def scored(model, item):
        start = time.perf_counter()
        labels = model.segment(item.image).labels
        return time.perf_counter() - start, score_image(item.truth, labels)["dsb_score"]

    results = in_turns(models, items, scored)
    reference = np.mean([r[1] for r in results["tensorflow float32"]])
    print(f"\ntest split: {len(items)} images")
    return pd.DataFrame([{"engine": name, "segment s": sum(r[0] for r in runs),
                          "DSB": np.mean([r[1] for r in runs]),
                          "DSB - TF": np.mean([r[1] for r in runs]) - reference}
                         for name, runs in results.items()])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True,
                        help="a finished run's work folder (results/model, prepared, index.csv)")
    parser.add_argument("--dsb", type=int, default=60, help="images in the batch")
    parser.add_argument("--threads", type=int, default=2, help="each engine's CPU threads")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from nucleiseg.backends import cpu_precision
    from nucleiseg.devices import configure_tensorflow

    configure_tensorflow(args.threads)
    scratch = Path(tempfile.mkdtemp(prefix="nucleiseg-backends-"))
    try:
        folder = scratch / "model"
        shutil.copytree(args.run / "results" / "model", folder)
        models = load_engines(folder, args.threads)
        import openvino

        print(f"date: {datetime.date.today()}, machine: {platform.node()} ({os.cpu_count()} "
              f"cores, {platform.processor() or platform.machine()}), {args.threads} threads "
              f"per engine, OpenVINO {openvino.__version__}, precision auto here: "
              f"{cpu_precision('auto')}, model: {args.run / 'results' / 'model'}")
        print(batch_table(models, args.dsb).to_markdown(index=False, floatfmt=".4g"))
        print(test_split_table(models, args.run).to_markdown(index=False, floatfmt=".4f"))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
