"""Benchmark: choose the thresholds and score the test split again, on a model already trained.

    .venv/bin/python benchmarks/rescore.py --run <a finished run's folder> [--out <folder>] \
        [--rescale off] [--tta off]

Reads the run's trained network and settings (results/model/config.json, model.keras), its
prepared images and its split (results/prepared, results/index.csv), and does what rules
optimize_thresholds and evaluate_model do, through the same package calls, with this checkout's
code: thresholds chosen on the val split, then the network and the classical pipeline scored on
the test split. Then it compares with what the run itself wrote (thresholds.json, summary.csv):
the same figures mean that this code segments as the code that made the run did. --rescale and
--tta are the run's segment settings (its config's; the model folder does not hold them).
Nothing in the run's folder is changed; the new tables and thresholds.json go to --out.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import time
from pathlib import Path

import pandas as pd
from finished_run import load_split, out_folder, start

SCORES = ["dice", "ap_50", "ap_75", "dsb_score"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a finished run's work folder")
    parser.add_argument("--out", type=Path, default=None, help="where the new tables go")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--backend", default="tensorflow",
                        help="segment.backend: the runs made before it existed ran TensorFlow")
    parser.add_argument("--precision", default="auto", help="segment.precision")
    parser.add_argument("--rescale", default="off", help="segment.rescale, as the run's config")
    parser.add_argument("--tta", default="off", help="segment.tta, as the run's config")
    args = parser.parse_args()
    start(args)

    from nucleiseg.evaluate import evaluate_model, summarize_evaluation
    from nucleiseg.inference import BackendChoice, Rescaling, Tiling
    from nucleiseg.model import NucleusModel
    from nucleiseg.thresholds import save_thresholds

    results = args.run / "results"
    model = NucleusModel.load(results / "model", Tiling(), thresholds=False, tta=args.tta,
                              rescale=Rescaling(args.rescale),
                              backend=BackendChoice(args.backend, args.precision),
                              threads=args.threads)
    out = out_folder(args, prefix="nucleiseg-rescore-")
    began = time.perf_counter()
    chosen, search = model.optimize_thresholds(load_split(results, "val"))
    searched = time.perf_counter() - began
    rows = evaluate_model(model, load_split(results, "test"))
    summary = summarize_evaluation(rows)
    save_thresholds(chosen, out / "thresholds.json")
    search.to_csv(out / "threshold_search.csv", index=False)
    rows.to_csv(out / "per_image.csv", index=False)
    summary.to_csv(out / "summary.csv", index=False)

    print(f"date: {datetime.date.today()}, machine: {platform.node()} ({os.cpu_count()} cores), "
          f"run: {args.run}, tiling: {model.tiling}, backend: {model.backend}")
    before = json.loads((results / "model" / "thresholds.json").read_text())
    print(f"thresholds chosen on val: {chosen.to_dict()} (val DSB {search['dsb_score'].iloc[0]:.4f},"
          f" {searched:.0f} s); the run chose {before}: "
          f"{'same' if chosen.to_dict() == before else 'DIFFERENT'}")
    if not (results / "evaluation" / "summary.csv").exists():
        print(summary[summary["set"] == "test"].to_markdown(index=False, floatfmt=".3f"))
        print(f"the run has no evaluation to compare with (new tables in {out})")
        return
    old = pd.read_csv(results / "evaluation" / "summary.csv")
    old = old[old["set"] == "test"]
    keys = ["method", "modality"]
    both = summary[summary["set"] == "test"][keys + ["n_images"] + SCORES].merge(
        old[keys + SCORES], on=keys, suffixes=("", "_run"))
    both["max |difference|"] = pd.concat(
        [(both[s] - both[f"{s}_run"]).abs() for s in SCORES], axis=1).max(axis=1)
    print(both[keys + ["n_images"] + SCORES + ["max |difference|"]].to_markdown(
        index=False, floatfmt=".3f"))
    same = (both[SCORES].round(3).to_numpy() == both[[f"{s}_run" for s in SCORES]].round(3)
            .to_numpy()).all()
    print(f"test-split figures to 3 decimals: {'the same' if same else 'DIFFERENT'} "
          f"(new tables in {out})")


if __name__ == "__main__":
    main()
