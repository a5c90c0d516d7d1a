"""Diagnosis: can a coarser pass tell fragments of large nuclei from small nuclei? (issue 10)

    .venv/bin/python benchmarks/experiments/estimate_passes.py --run <a finished run> \
        [--split val] [--variants 0.5 1 2] [--out <folder>]

`rescale: auto` estimates an image's nucleus diameter from a first pass at its own scale. Large
textured nuclei (stained tissue at twice its size) come out of that pass in fragments of about
the training's size, so the estimate says "small" and the image is enlarged, where the
fragments, enlarged too, confirm it (the ninth session: 6 px against 36 px at x1).
Fragments do not halve when the image does; nuclei do. For every image of the split resized by
each variant (as benchmarks/robustness.py resizes them), this records the median equivalent
diameter of the true nuclei off the border (as `scale.median_diameter`, without its minimum
count), and for passes at 1, 0.5 and 0.25 of the image the same of the nuclei found at
ESTIMATE_THRESHOLDS, brought back to the image's grid (px), the nuclei it counts, and the
pass's confidence (`scale.pass_confidence`). Writes passes.csv; prints, per modality and variant, the
median ratio of each estimate to the truth. Choose on val, never on test.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from finished_run import add_run_arguments, open_run, ran  # noqa: E402
from robustness import resized  # noqa: E402

PROBES = (1.0, 0.5, 0.25)


def main() -> None:
    from nucleiseg.instances import head_maps, labels_from_maps
    from nucleiseg.scale import ESTIMATE_THRESHOLDS, Resize, equivalent_diameters, pass_confidence

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(parser, split="val")
    parser.add_argument("--variants", type=float, nargs="+", default=[0.5, 1, 2])
    args = parser.parse_args()
    model, items, out = open_run(args, prefix="nucleiseg-estimate-passes-")
    began = time.perf_counter()
    rows = []
    for variant in args.variants:
        for item in items:
            image, truth = resized(item, variant)
            true = equivalent_diameters(truth)
            row = {"variant": variant, "id": item.id, "modality": item.modality,
                   "truth_px": float(np.median(true)) if len(true) else np.nan}
            for probe in PROBES:
                resize = Resize(image.shape[:2], probe)
                maps = model.predict(resize.to_network(image))
                foreground, contour = head_maps(maps, model.config.heads)
                found = equivalent_diameters(labels_from_maps(foreground, contour,
                                                              ESTIMATE_THRESHOLDS))
                row[f"d{probe:g}"] = float(np.median(found)) / probe if len(found) else np.nan
                row[f"n{probe:g}"] = len(found)
                row[f"c{probe:g}"] = pass_confidence(foreground)
            rows.append(row)
            print(" ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                           for k, v in row.items() if k != "id"), flush=True)
    table = pd.DataFrame(rows)
    table.to_csv(out / "passes.csv", index=False)
    ratios = table.assign(**{f"d{p:g}/truth": table[f"d{p:g}"] / table["truth_px"]
                             for p in PROBES})
    print(f"\n{ran(args, time.perf_counter() - began)}; tables in {out}\n")
    print(ratios.groupby(["modality", "variant"])[[f"d{p:g}/truth" for p in PROBES]]
          .median().round(2).to_markdown())


if __name__ == "__main__":
    main()
