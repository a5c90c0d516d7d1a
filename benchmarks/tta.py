"""Benchmark: test-time augmentation (`segment.tta`), its gain in DSB and its cost in s/MP.

    .venv/bin/python benchmarks/tta.py --run <a finished run's folder> [--split val]
        [--modes off flips d4] [--out <folder>]

Reads a finished run's model and split as benchmarks/robustness.py does, and segments every
image of the split with each mode, as `segment_images` would (the model's thresholds, chosen by
the run without test-time augmentation). Modes take turns on each image, in an order that
rotates from image to image, so that their predict times are measured side by side and their
ratio holds on a busy machine; the seconds are the network's (NucleusModel.predict: every
flipped or rotated copy and the mapping back), not the instance labelling. Prints per mode and
modality the mean DSB and the predict s/MP, and the ratio to `off`. Choose on val; report on test.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
from finished_run import add_run_arguments, load_model, load_split, out_folder, ran, start


def score_modes(model, items, modes: list[str]) -> pd.DataFrame:
    from nucleiseg.metrics import score_image
    from nucleiseg.tta import check_tta

    rows = []
    for k, item in enumerate(items):
        for mode in modes[k % len(modes):] + modes[:k % len(modes)]:
            model.tta = check_tta(mode)
            start = time.perf_counter()
            maps = model.predict(item.image)
            seconds = time.perf_counter() - start
            labels = model.instances(maps)
            rows.append({"id": item.id, "modality": item.modality, "tta": mode,
                         "megapixels": item.truth.size / 1e6, "predict_s": seconds,
                         **score_image(item.truth, labels)})
        done = rows[-len(modes):]
        print(k, item.id[:10], item.modality,
              " ".join(f"{r['tta']} {r['dsb_score']:.3f}" for r in done), flush=True)
    return pd.DataFrame(rows)


def summarize(rows: pd.DataFrame, modes: list[str]) -> str:
    lines = ["| tta | " + " | ".join(["overall", *sorted(rows["modality"].unique())])
             + " | predict s/MP | x off |", "|---|" + "---:|" * (rows["modality"].nunique() + 3)]
    base = rows[rows["tta"] == modes[0]]
    base_rate = base["predict_s"].sum() / base["megapixels"].sum()
    for mode in modes:
        part = rows[rows["tta"] == mode]
        cells = [f"{part['dsb_score'].mean():.3f} ({len(part)})"]
        for modality, group in sorted(part.groupby("modality")):
            cells.append(f"{group['dsb_score'].mean():.3f} ({len(group)})")
        rate = part["predict_s"].sum() / part["megapixels"].sum()
        lines.append(f"| {mode} | " + " | ".join(cells) + f" | {rate:.3f} | {rate / base_rate:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(parser, split="val")
    parser.add_argument("--modes", nargs="+", default=["off", "flips", "d4"])
    parser.add_argument("--backend", default="auto", help="segment.backend")
    parser.add_argument("--precision", default="auto", help="segment.precision")
    args = parser.parse_args()
    start(args)
    results = args.run / "results"
    model = load_model(results, args.modes[0], args.backend, args.precision)
    items = load_split(results, args.split, args.limit)
    out = out_folder(args)
    model.predict(items[0].image)  # the engine compiled before anything is timed
    began = time.perf_counter()
    rows = score_modes(model, items, args.modes)
    if out is not None:
        rows.to_csv(out / "per_image.csv", index=False)
    print(f"\n{ran(args, time.perf_counter() - began)}, "
          f"thresholds {model.thresholds.to_dict()}, {model.backend}\n")
    print(summarize(rows, args.modes))


if __name__ == "__main__":
    main()
