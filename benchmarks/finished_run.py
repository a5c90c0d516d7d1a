"""What the benchmarks that score a finished run share: their arguments, the run's model and
split, the output folder and the line that says when, where and on what they ran.

A finished run is the work folder of `benchmarks/run_workflow.py` (or any workflow run): its
results/model, results/prepared and results/index.csv.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))


def add_run_arguments(parser: argparse.ArgumentParser, split: str) -> None:
    """--run, --split (default `split`), --limit, --threads and --out."""
    parser.add_argument("--run", type=Path, required=True, help="a finished run's work folder")
    parser.add_argument("--split", default=split, choices=["val", "test"])
    parser.add_argument("--limit", type=int, default=0, help="only the first N images (a try)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="where the tables go")


def start(args: argparse.Namespace) -> None:
    """Quiet TensorFlow on args.threads."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from nucleiseg.devices import configure_tensorflow

    configure_tensorflow(args.threads)


def out_folder(args: argparse.Namespace, prefix: str | None = None) -> Path | None:
    """--out, made; a new temporary folder when it is not given and `prefix` is. Called once the
    run is read, so that a wrong --run leaves no empty folder."""
    out = args.out or (Path(tempfile.mkdtemp(prefix=prefix)) if prefix else None)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    return out


def load_model(results: Path, tta: str = "off", backend: str = "auto", precision: str = "auto"):
    """The run's NucleusModel with its thresholds. A model folder from before
    train_nucleus_diameters were recorded gets them from the run's own training tiles, as
    training now records them, and says so."""
    from nucleiseg.data import tiles_nucleus_diameters
    from nucleiseg.inference import BackendChoice, Tiling
    from nucleiseg.model import NucleusModel

    model = NucleusModel.load(results / "model", Tiling(), tta=tta,
                              backend=BackendChoice(backend, precision))
    if not min(model.config.train_nucleus_diameters):
        diameters = tiles_nucleus_diameters(results / "tiles" / "train")
        print(f"{results / 'model'} records no train_nucleus_diameters: {diameters} px from the "
              "run's training tiles")
        model.config = model.config.replace(train_nucleus_diameters=diameters)
    return model


def load_split(results: Path, split: str, limit: int = 0) -> list:
    """The split's prepared images with their truth (evaluate.split_images), the first `limit`
    only when it is not 0."""
    import pandas as pd

    from nucleiseg.evaluate import split_images

    index = pd.read_csv(results / "index.csv", dtype={"id": str})
    return list(split_images(index, results / "prepared", split))[:limit or None]


def open_run(args: argparse.Namespace, prefix: str) -> tuple:
    """start(args), then the run's model (load_model, thresholds its own), the split's items
    (load_split) and the out folder (out_folder with `prefix`): what a benchmark that scores
    one finished run's model on --split needs."""
    start(args)
    results = args.run / "results"
    model = load_model(results)
    items = load_split(results, args.split, args.limit)
    return model, items, out_folder(args, prefix=prefix)


def ran(args: argparse.Namespace, seconds: float) -> str:
    """When, where and on what a benchmark ran: the line printed above its tables."""
    return (f"{datetime.date.today()} on {platform.node()} ({os.cpu_count()} CPUs), "
            f"{seconds:.0f} s; run {args.run}, split {args.split}")
