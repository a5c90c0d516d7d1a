"""Benchmark: a finished run's model with its weights averaged over chosen epochs (issue 10).

    .venv/bin/python benchmarks/average_epochs.py --run <finished run> --epochs-from <folder> \
        --epochs 15 16 17 18 19 --out <new run folder> [--rescale off] [--contours 0.4 0.5 0.6]

What `train.average_epochs` would have saved, for a run trained before it existed: the run
must have kept each epoch's weights (`git apply benchmarks/experiments/keep_every_epoch.patch`
before training, or `train.average_epochs`, which keeps the last N; the files
`epochNN.weights.h5` or `epochNNNN.weights.h5` are removed with the state folder when training
ends, so copy them out while it runs). The new run folder links the run's prepared images,
tiles and split, holds the averaged model (training.average_weights, as the training averages),
and thresholds chosen on val as the workflow chooses them (`--rescale`: segment.rescale), so
`robustness.py --run <new run folder>` scores it like any run.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from finished_run import start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a finished run's work folder")
    parser.add_argument("--epochs-from", type=Path, required=True,
                        help="the folder holding its epochNN.weights.h5 files")
    parser.add_argument("--epochs", type=int, nargs="+", required=True)
    parser.add_argument("--out", type=Path, required=True, help="the new run folder")
    parser.add_argument("--rescale", default="off", help="segment.rescale for the thresholds")
    parser.add_argument("--contours", type=float, nargs="+", default=None,
                        help="contour thresholds to search instead of the default grid's")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    start(args)
    import keras
    import pandas as pd

    from nucleiseg.evaluate import split_images
    from nucleiseg.inference import Rescaling
    from nucleiseg.model import NucleusModel
    from nucleiseg.modelfolder import MODEL_FILE
    from nucleiseg.training import average_weights, epoch_of, epoch_weights

    kept = {epoch_of(f): f for f in epoch_weights(args.epochs_from)}
    missing = [str(epoch) for epoch in args.epochs if epoch not in kept]
    if missing:
        raise SystemExit(f"{args.epochs_from} holds no weights of epoch {', '.join(missing)}")
    files = [kept[epoch] for epoch in args.epochs]
    results, model_folder = args.out / "results", args.out / "results" / "model"
    model_folder.mkdir(parents=True, exist_ok=True)
    for name in ("prepared", "tiles", "index.csv", "split.csv"):
        if not (results / name).exists():
            (results / name).symlink_to((args.run / "results" / name).resolve())
    for name in ("config.json", "history.csv"):
        shutil.copy(args.run / "results" / "model" / name, model_folder / name)
    network = keras.models.load_model(args.run / "results" / "model" / MODEL_FILE, compile=False)
    average_weights(network, files)
    network.save(model_folder / MODEL_FILE)
    model = NucleusModel.load(model_folder, thresholds=False, rescale=Rescaling(args.rescale),
                              threads=args.threads)
    index = pd.read_csv(results / "index.csv", dtype={"id": str})
    grid = {"contour": tuple(args.contours)} if args.contours else None
    best, search = model.optimize_thresholds(split_images(index, results / "prepared", "val"),
                                             grid=grid)
    model.save_thresholds(model_folder / "thresholds.json")
    search.to_csv(model_folder / "threshold_search.csv", index=False)
    print(f"epochs {args.epochs} of {args.run}: thresholds {best.to_dict()} (rescale "
          f"{args.rescale}), mean val DSB {search['dsb_score'].iloc[0]:.4f}; run in {args.out}")


if __name__ == "__main__":
    main()
