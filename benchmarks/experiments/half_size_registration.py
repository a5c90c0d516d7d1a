"""The experiment that found robustness.py's x0.5 truth a quarter pixel off its image.

    .venv/bin/python benchmarks/experiments/half_size_registration.py --run <finished run> \
        [--split val] [--rescale auto]

Until commit b457173, `robustness.resized` made the x0.5 copy of an image by bilinear
interpolation with anti-aliasing (each new pixel centred on the corner of four old ones) and its
truth by reading the old pixel (2i+1, 2j+1): the truth sat a quarter of a new pixel off the
image. This script makes the copies that way and scores each image's network labels twice:
brought back to the half-size grid at each pixel's centre, as `NucleusModel.segment` does, and
at the point the truth was read at. If the second scores higher, the truth was off; the fix
(resize the image at the truth's pixels) is tested in tests/test_robustness.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from finished_run import add_run_arguments, load_model, load_split, start  # noqa: E402


def old_half_size(item):
    """The x0.5 copy as robustness.py made it before b457173."""
    from nucleiseg.labels import relabel
    from nucleiseg.scale import Resize

    resize = Resize(item.truth.shape, 0.5)
    rows, cols = (np.minimum(((np.arange(n) + 0.5) / 0.5).astype(int), m - 1)
                  for n, m in zip(resize.scaled_shape, item.truth.shape))
    return resize.to_network(item.image), relabel(item.truth[rows[:, None], cols])[0]


def read_at(offset: float):
    """Resize.labels_back reading each pixel at `offset` (0.5: its centre) instead."""
    from nucleiseg.labels import relabel

    def labels_back(self, labels):
        if self.identity:
            return labels
        rows, cols = (np.minimum(((np.arange(n) + offset) * s / n).astype(np.intp), s - 1)
                      for n, s in zip(self.shape, self.scaled_shape))
        return relabel(labels[rows[:, None], cols[None, :]])[0]
    return labels_back


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(parser, split="val")
    parser.add_argument("--rescale", default="auto")
    args = parser.parse_args()
    start(args)
    from nucleiseg.inference import Rescaling
    from nucleiseg.metrics import score_image
    from nucleiseg.scale import Resize

    model = load_model(args.run / "results")
    model.rescale = Rescaling(args.rescale)
    rows = []
    for item in load_split(args.run / "results", args.split, args.limit):
        image, truth = old_half_size(item)
        scores = {}
        for name, offset in (("pixel centre", 0.5), ("truth's point", 0.75)):
            Resize.labels_back = read_at(offset)
            scores[name] = score_image(truth, model.segment(image).labels)["dsb_score"]
        rows.append({"modality": item.modality, **scores})
    table = pd.DataFrame(rows)
    means = pd.concat([table.drop(columns="modality").mean().rename("overall"),
                       table.groupby("modality").mean().T], axis=1)
    print(f"x0.5 copies as made before b457173, rescale {args.rescale}, {len(table)} "
          f"{args.split} images: mean DSB with labels read at\n{means.round(3).to_string()}")


if __name__ == "__main__":
    main()
