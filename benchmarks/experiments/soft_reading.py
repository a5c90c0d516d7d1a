"""Experiment: read labels back onto the image's grid by the foreground probability (issue 10).

    .venv/bin/python benchmarks/experiments/soft_reading.py --run <a finished run> \
        [--split val] [--variants 0.5 1 2] [--tta flips] [--out <folder>]

`segment` makes labels at the network's scale and reads them back onto the image's grid
(`scale.read_labels`): each pixel takes the label whose 0/1 indicator, interpolated at its
centre, is largest. The network's foreground probability says more than its 0/1 labels where a
boundary crosses a network pixel. This reads each pixel's extent from the probability instead:
a pixel is foreground where the probability interpolated bilinearly at its centre passes the
model's foreground threshold and one of the four network pixels around it holds a nucleus; it
takes the nucleus with the largest interpolated indicator. Scores both readings with the
model's own thresholds (rescale auto, as users get it) on every image of the split resized by
each variant (as benchmarks/robustness.py resizes them). Images that `auto` leaves at their own
size score the same either way. Choose on val, never on test.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from finished_run import add_run_arguments, open_run, ran  # noqa: E402
from robustness import resized  # noqa: E402


def main() -> None:
    from nucleiseg.inference import Rescaling
    from nucleiseg.metrics import score_image
    from nucleiseg.tta import check_tta

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(parser, split="val")
    parser.add_argument("--variants", type=float, nargs="+", default=[0.5, 1, 2])
    parser.add_argument("--tta", default="flips")
    args = parser.parse_args()
    model, items, out = open_run(args, prefix="nucleiseg-soft-reading-")
    model.tta = check_tta(args.tta)
    model.rescale = Rescaling("auto")
    began = time.perf_counter()
    rows = []
    for variant in args.variants:
        for item in items:
            image, truth = resized(item, variant)
            maps, resize, _ = model.predict_scaled(image)
            labels = model.instances(maps)
            hard = resize.labels_back(labels)
            soft = model.instances_back(maps, resize)
            row = {"variant": variant, "id": item.id, "modality": item.modality,
                   "factor": resize.factor,
                   "hard": score_image(truth, hard)["dsb_score"],
                   "soft": score_image(truth, soft)["dsb_score"]}
            rows.append(row)
            print(f"x{variant:g} {item.id[:10]} {item.modality} factor {resize.factor:.2f} "
                  f"hard {row['hard']:.3f} soft {row['soft']:.3f}", flush=True)
    table = pd.DataFrame(rows)
    table.to_csv(out / "soft_reading.csv", index=False)
    print(f"\n{ran(args, time.perf_counter() - began)}, tta {args.tta}, thresholds "
          f"{model.thresholds.to_dict()}; tables in {out}\n")
    summary = pd.concat([table.assign(modality="overall"), table]).groupby(
        ["variant", "modality"])[["hard", "soft"]].mean().round(3)
    print(summary.to_markdown())


if __name__ == "__main__":
    main()
