"""Benchmark: how the network holds up on images unlike its test split (issue 10).

    .venv/bin/python benchmarks/robustness.py --run <a finished run's folder> [--split test]
        [--factors 0.5 0.75 1 1.5 2] [--rescale off auto] [--tta off] [--out <folder>]

Reads a finished run's model (results/model), prepared images and split (results/prepared,
results/index.csv), and scores the network (as `NucleusModel.segment`, exactly what users get)
and the classical baseline on variants of one split:

- `x<factor>`: every image resized by the factor (anti-aliased when shrinking; true labels by
  nearest neighbour, on the image's own grid: `resized`): nuclei larger or smaller than any in
  training;
- `intensity`: the fluorescence images as 16-bit TIFFs with the nuclei compressed into the
  lowest fifth of the range and three saturated nuclei added (as mitotic cells or debris leave
  them), normalized by the model's own percentiles like any new file; the added nuclei are in
  the truth.

Each network row is scored once per `--rescale` mode, with the model's thresholds (chosen on
val by the run). A model folder from before `train_nucleus_diameters` were recorded gets them
from the run's own training tiles (data.tiles_nucleus_diameters), as training now records
them; the benchmark says so. Choose settings on `--split val`; report on test. Tables go to --out:
per_image.csv, summary.csv (mean DSB per variant, method, rescale and modality), and the
summary printed as a Markdown table.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from finished_run import (REPO, add_run_arguments, load_model, load_split, out_folder, ran,
                          start)

DSB = REPO.parent / "shared" / "data" / "dsb2018" / "stage1_train"


def resized(item, factor: float):
    """The image resized by `factor`, its labels by nearest neighbour, the two on one grid.

    A nucleus a few pixels wide loses IoU at the DSB score's upper thresholds when its image
    sits a fraction of a pixel off its truth, whatever the method; so the two are resized
    together. Each new pixel takes the label of the old pixel under its centre (`_under`).
    Shrinking, the image, blurred as anti-aliasing blurs it (a Gaussian of sigma
    (1/factor - 1)/2), is read at those very pixels: interpolating between them instead puts
    it a quarter of a pixel off its truth at x0.5, where every centre falls on the corner of
    four old pixels. Enlarging, the image is interpolated bilinearly, and a centre on the edge
    of two old pixels (every third one at x1.5) takes them in turn, the later and the earlier,
    so that the ties shift no nucleus on average."""
    from scipy.ndimage import gaussian_filter

    from nucleiseg.labels import relabel
    from nucleiseg.scale import Resize

    if factor == 1:
        return item.image, item.truth
    resize = Resize(item.truth.shape, factor)
    rows, cols = (_under(n, m, factor) for n, m in zip(resize.scaled_shape, item.truth.shape))
    truth = relabel(item.truth[rows[:, None], cols])[0]
    if factor > 1:
        return resize.to_network(item.image), truth
    sigma = [(1 / factor - 1) / 2] * 2 + [0] * (item.image.ndim - 2)
    blurred = gaussian_filter(item.image.astype(np.float32), sigma, mode="mirror")
    return blurred[rows[:, None], cols], truth


def _under(new: int, old: int, factor: float) -> np.ndarray:
    """For each of `new` pixels, the one of `old` under its centre; enlarging, a centre on the
    edge of two old pixels takes them in turn, the later and the earlier."""
    centres = (np.arange(new) + 0.5) / factor
    under = np.floor(centres)
    if factor > 1:
        ties = np.isclose(centres, np.round(centres))
        under[ties] = np.round(centres[ties]) - np.arange(ties.sum()) % 2
    return np.clip(under, 0, old - 1).astype(int)


def compressed_16bit(item, folder: Path, model, rng) -> tuple[np.ndarray, np.ndarray] | None:
    """A fluorescence image as a 16-bit TIFF: its own range in the lowest fifth, plus three
    saturated nuclei (copies of its own, placed on background); read back and normalized."""
    import tifffile

    from nucleiseg.io import read_image
    from nucleiseg.normalize import to_channels_last

    if item.modality != "fluorescence":
        return None
    raw = to_channels_last(read_image(DSB / item.id / "images" / f"{item.id}.png"))
    raw = raw[..., :3].mean(axis=-1)
    low, high = np.percentile(raw, (0, 100))
    image = (raw - low) / max(high - low, 1) * (65535 / 5)
    truth = item.truth.copy()
    sizes = np.bincount(truth.ravel())[1:]
    if not len(sizes):
        return None
    source = truth == 1 + int(np.argsort(sizes)[len(sizes) // 2])  # a median-sized nucleus
    ys, xs = np.nonzero(source)
    for _ in range(3):
        for _ in range(50):  # somewhere on background
            dy = rng.integers(-ys.min(), truth.shape[0] - ys.max())
            dx = rng.integers(-xs.min(), truth.shape[1] - xs.max())
            if not truth[ys + dy, xs + dx].any():
                truth[ys + dy, xs + dx] = truth.max() + 1
                image[ys + dy, xs + dx] = 65535
                break
    path = folder / f"{item.id}.tif"
    tifffile.imwrite(path, image.round().astype(np.uint16))
    return model.normalize(tifffile.imread(path)), truth


def variants(items, factors, folder: Path, model):
    """(variant, item, image, truth) for every image of every variant."""
    rng = np.random.default_rng(0)
    for factor in factors:
        for item in items:
            yield (f"x{factor:g}", item, *resized(item, factor))
    folder.mkdir(parents=True, exist_ok=True)
    for item in items:
        made = compressed_16bit(item, folder, model, rng)
        if made is not None:
            yield ("intensity", item, *made)


def score_variants(model, items, factors, modes, folder: Path) -> pd.DataFrame:
    from nucleiseg.classical import segment_classical
    from nucleiseg.inference import Rescaling
    from nucleiseg.metrics import score_image

    rows = []
    for variant, item, image, truth in variants(items, factors, folder, model):
        base = {"variant": variant, "id": item.id, "modality": item.modality,
                "height": truth.shape[0], "width": truth.shape[1]}
        start = time.perf_counter()
        labels = segment_classical(image)
        rows.append({**base, "method": "classical", "rescale": "-",
                     **score_image(truth, labels), "seconds": time.perf_counter() - start})
        for mode in modes:
            model.rescale = Rescaling(mode)
            start = time.perf_counter()
            result = model.segment(image)
            rows.append({**base, "method": "network", "rescale": mode,
                         **score_image(truth, result.labels), "seconds": time.perf_counter() - start,
                         "diameter": result.diameter, "factor": result.factor})
        print(variant, item.id[:10], item.modality,
              " ".join(f"{r['rescale']} {r['dsb_score']:.3f}" for r in rows[-1 - len(modes):]),
              flush=True)
    return pd.DataFrame(rows)


def summarize(rows: pd.DataFrame) -> pd.DataFrame:
    keys = ["variant", "method", "rescale"]
    overall = rows.groupby(keys, sort=False)["dsb_score"].agg(["mean", "count"]).reset_index()
    overall["modality"] = "overall"
    by_modality = rows.groupby([*keys, "modality"], sort=False)["dsb_score"].agg(
        ["mean", "count"]).reset_index()
    table = pd.concat([overall, by_modality], ignore_index=True)
    return table.rename(columns={"mean": "dsb_score", "count": "images"})


def markdown(summary: pd.DataFrame) -> str:
    """One row per variant and method/rescale, one column per modality (DSB, images)."""
    summary = summary.assign(setting=summary["method"] + " " + summary["rescale"].str.replace("-", ""))
    wide = summary.pivot_table(index=["variant", "setting"], columns="modality",
                               values="dsb_score", sort=False)
    counts = summary.pivot_table(index="variant", columns="modality", values="images",
                                 aggfunc="max", sort=False)
    columns = ["overall", *[c for c in wide.columns if c != "overall"]]
    lines = ["| variant | method | " + " | ".join(columns) + " |",
             "|---|---|" + "---:|" * len(columns)]
    for (variant, setting), row in wide.iterrows():
        cells = [f"{row[c]:.3f} ({int(counts.loc[variant, c])})" if pd.notna(row.get(c))
                 else "" for c in columns]
        lines.append(f"| {variant} | {setting.strip()} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(parser, split="test")
    parser.add_argument("--factors", type=float, nargs="+", default=[0.5, 0.75, 1, 1.5, 2])
    parser.add_argument("--rescale", nargs="+", default=["off", "auto"])
    parser.add_argument("--tta", default="off")
    parser.add_argument("--backend", default="auto", help="segment.backend")
    parser.add_argument("--precision", default="auto", help="segment.precision")
    args = parser.parse_args()
    start(args)
    results = args.run / "results"
    model = load_model(results, args.tta, args.backend, args.precision)
    items = load_split(results, args.split, args.limit)
    out = out_folder(args, prefix="nucleiseg-robustness-")
    began = time.perf_counter()
    rows = score_variants(model, items, args.factors, args.rescale, out / "intensity_tiffs")
    summary = summarize(rows)
    rows.to_csv(out / "per_image.csv", index=False)
    summary.to_csv(out / "summary.csv", index=False)
    print(f"\n{ran(args, time.perf_counter() - began)}, "
          f"thresholds {model.thresholds.to_dict()}, tta {args.tta}, {model.backend}, "
          f"training diameters {model.config.train_nucleus_diameters} px; tables in {out}\n")
    print(markdown(summary))


if __name__ == "__main__":
    main()
