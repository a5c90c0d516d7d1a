"""Benchmark: at which scale should the network see an image of unknown magnification? (issue 10)

    .venv/bin/python benchmarks/scale_search.py --run <a finished run's folder> [--split val]
        [--variants 0.5 1 2] [--out <folder>]

For every image of the split resized by each of --variants (as benchmarks/robustness.py resizes
them: anti-aliased, true labels by nearest neighbour), the network predicts at each factor of
FACTORS (of the resized image), and each pass is scored (DSB, the model's thresholds, labels
made at the network's scale and brought back) with its confidence (`scale.pass_confidence`: the mean
foreground probability over the pixels called foreground). From these passes, the tables:

- `own scale`: the pass that undoes the resize (factor 1 / variant): the image as the training
  images were; an upper bound no rule can know to use, since a new image's own scale is unknown;
- `best pass`: the best of the passes, image by image (what a perfect chooser would get);
- `x1 labels resampled`: the x1 image's labels resized like the truth; what the coarser grid
  alone costs;
- one row per rule that keeps the surest pass among a set of factors, with the image's own
  size given a margin ahead; `cost` is the pixels predicted, in passes of the image's size.

Choose on val, never on test. Per-pass rows go to --out/passes.csv.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
import pandas as pd
from finished_run import add_run_arguments, open_run, ran

FACTORS = (0.5, 0.71, 1.0, 1.41, 2.0, 2.83)
# (name, factors kept, margin of the image's own size)
RULES = [
    (f"surest of {', '.join(f'{f:g}' for f in factors)}, own size +{margin:g}", factors, margin)
    for factors in [FACTORS, (0.5, 0.71, 1.0, 1.41, 2.0), (0.71, 1.0, 1.41), (0.5, 1.0, 2.0)]
    for margin in (0.0, 0.005, 0.01, 0.02)
]


def passes(model, items, variants) -> pd.DataFrame:
    from robustness import resized

    from nucleiseg.instances import head_maps
    from nucleiseg.metrics import score_image
    from nucleiseg.scale import Resize, pass_confidence

    rows = []
    for variant in variants:
        for item in items:
            image, truth = resized(item, variant)
            for factor in FACTORS:
                resize = Resize(image.shape[:2], factor)
                maps = model.predict(resize.to_network(image))
                foreground, _ = head_maps(maps, model.config.heads)
                labels = model.instances_back(maps, resize)
                rows.append({"variant": variant, "id": item.id, "modality": item.modality,
                             "factor": factor, "dsb_score": score_image(truth, labels)["dsb_score"],
                             "confidence": pass_confidence(foreground),
                             "pixels": resize.scaled_shape[0] * resize.scaled_shape[1]
                             / (image.shape[0] * image.shape[1])})
            print(f"x{variant:g}", item.id[:10], flush=True)
    return pd.DataFrame(rows)


def resampled_x1(model, items, variants) -> pd.DataFrame:
    """The x1 image's labels, resized to each variant as the truth is."""
    from robustness import resized

    from nucleiseg.metrics import score_image

    rows = []
    for item in items:
        predicted = dataclasses.replace(item, truth=model.segment(item.image).labels)
        for variant in variants:
            _, truth = resized(item, variant)
            _, moved = resized(predicted, variant)
            rows.append({"variant": variant, "modality": item.modality,
                         "dsb_score": score_image(truth, moved)["dsb_score"]})
    return pd.DataFrame(rows)


def keep_surest(rows: pd.DataFrame, factors, margin: float) -> pd.DataFrame:
    """Per image and variant, the pass with the highest confidence among `factors` (the
    image's own size, factor 1, given `margin` ahead)."""
    kept = rows[np.isin(rows["factor"], factors)]
    score = kept["confidence"] + margin * (kept["factor"] == 1.0)
    return kept.loc[score.groupby([kept["variant"], kept["id"]]).idxmax()]


def table(name: str, chosen: pd.DataFrame, cost: float | None = None) -> dict:
    row = {"rule": name}
    for variant, group in chosen.groupby("variant"):
        row[f"x{variant:g}"] = group["dsb_score"].mean()
        for modality, part in group.groupby("modality"):
            row[f"x{variant:g} {modality}"] = part["dsb_score"].mean()
    row["cost"] = cost
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(parser, split="val")
    parser.add_argument("--variants", type=float, nargs="+", default=[0.5, 1, 2])
    args = parser.parse_args()
    model, items, out = open_run(args, prefix="nucleiseg-scale-search-")
    began = time.perf_counter()
    rows = passes(model, items, args.variants)
    rows.to_csv(out / "passes.csv", index=False)
    own = rows[np.isclose(rows["factor"] * rows["variant"], 1, atol=0.02)]
    best = rows.loc[rows.groupby(["variant", "id"])["dsb_score"].idxmax()]
    lines = [table("own scale (factor 1 / variant)", own), table("best pass", best),
             table("x1 labels resampled", resampled_x1(model, items, args.variants))]
    for name, factors, margin in RULES:
        kept = rows[np.isin(rows["factor"], factors)]
        cost = kept.groupby(["variant", "id"])["pixels"].sum().mean()
        lines.append(table(name, keep_surest(rows, factors, margin), cost))
    summary = pd.DataFrame(lines)
    summary.to_csv(out / "summary.csv", index=False)
    print(f"\n{ran(args, time.perf_counter() - began)}, "
          f"thresholds {model.thresholds.to_dict()}, {model.backend}; tables in {out}\n")
    print(summary.round(3).to_markdown(index=False))


if __name__ == "__main__":
    main()
