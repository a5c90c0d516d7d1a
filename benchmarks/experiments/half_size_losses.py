"""Where half-size fluorescence lost its score, image by image (the sixth session's diagnosis).

    git checkout eb11583 -- benchmarks/robustness.py   # the copies as they were then
    .venv/bin/python benchmarks/experiments/half_size_losses.py <finished run> <out.csv>
    git checkout HEAD -- benchmarks/robustness.py

For each val fluorescence image, with rescale auto: x1 and x0.5 as segmented; `x1_down`, the
x1 answer read onto the half-size grid as the truth is; `blur_x1`, the half-size image
enlarged back by 2 and segmented at x1's own factor, scored on the x1 truth; `blur_down`, that
answer read onto the half-size grid; `x05_2f1`, the half-size image segmented at twice x1's
factor. Prints the means (BENCHMARKS.md, "The half-size truth was a quarter pixel off").
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from finished_run import load_model, load_split  # noqa: E402
from robustness import resized  # noqa: E402


def main() -> None:
    from nucleiseg.devices import configure_tensorflow
    from nucleiseg.inference import Rescaling
    from nucleiseg.labels import relabel
    from nucleiseg.metrics import score_image
    from nucleiseg.scale import Resize

    configure_tensorflow(2)
    run = Path(sys.argv[1]) / "results"
    model = load_model(run)
    rows = []
    for item in (i for i in load_split(run, "val") if i.modality == "fluorescence"):
        truth1 = item.truth
        image5, truth5 = resized(item, 0.5)
        model.rescale = Rescaling("auto")
        at1, at5 = model.segment(item.image), model.segment(image5)
        half = Resize(truth1.shape, 0.5)
        rows_, cols_ = (np.minimum(((np.arange(n) + 0.5) / 0.5).astype(int), m - 1)
                        for n, m in zip(half.scaled_shape, truth1.shape))
        down = relabel(at1.labels[rows_[:, None], cols_])[0]
        enlarged = Resize(image5.shape[:2], 2.0).to_network(image5)[:truth1.shape[0], :truth1.shape[1]]
        model.rescale = Rescaling("factor", at1.factor) if at1.factor != 1 else Rescaling("off")
        blurred = model.segment(enlarged) if enlarged.shape[:2] == truth1.shape else None
        model.rescale = Rescaling("factor", min(4.0, 2 * at1.factor))
        doubled = model.segment(image5)
        score = lambda truth, labels: score_image(truth, labels)["dsb_score"]  # noqa: E731
        rows.append(dict(
            id=item.id, x1=score(truth1, at1.labels), x05=score(truth5, at5.labels),
            x05_2f1=score(truth5, doubled.labels), x1_down=score(truth5, down),
            blur_x1=np.nan if blurred is None else score(truth1, blurred.labels),
            blur_down=np.nan if blurred is None else score(
                truth5, relabel(blurred.labels[rows_[:, None], cols_])[0])))
    table = pd.DataFrame(rows)
    table.to_csv(sys.argv[2], index=False)
    print(table.drop(columns="id").mean().round(3).to_string())


if __name__ == "__main__":
    main()
