"""Benchmark: leave one acquisition out. Train without an image group, score the network on it.

    .venv/bin/python benchmarks/leave_out.py --group brightfield_gray:1024x1024 \
        --configfile config/dsb2018_cpu.yaml [overlay.yaml ...] [--minutes 20] [--epochs 8] \
        --workdir <dir>

The test split flatters a model, since its images come from the acquisitions it was trained on.
Here one group of DSB2018 images (a modality and size from stage1_train_meta.csv, e.g. the 16
grayscale brightfield 1024x1024 images or the 90 fluorescence 360x360 ones) is the whole test
split, and none of its images is trained or validated on: the rest are split into train and
val as the workflow splits (stratified, `split.seed`). The real workflow then runs on that
split (`split.file`) with the given config, its training cut to --minutes (shorter than the
config's, say so when quoting; or to --epochs, which trains the same steps however busy the
cores are), and evaluate_model's summary is the group's score, for the
network and the classical baseline (benchmarks/run_workflow.py prints it with the run's time
and memory).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))
DATA = REPO.parent / "shared" / "data" / "dsb2018"


def leave_out_split(meta: pd.DataFrame, group: str, seed: int) -> pd.DataFrame:
    """id, split: the group's images are test, the others train or val (85/15, stratified)."""
    from nucleiseg.split import stratified_split

    modality, size = group.split(":")
    height, width = (int(v) for v in size.split("x"))
    held = (meta["modality"] == modality) & (meta["height"] == height) & (meta["width"] == width)
    if not held.any():
        raise SystemExit(f"no image of group {group} in the metadata: use modality:HxW as in "
                         f"stage1_train_meta.csv, e.g. brightfield_gray:1024x1024")
    rest = stratified_split(meta[~held], {"train": 0.85, "val": 0.15, "test": 0.0}, seed)
    return pd.concat([rest[["id", "split"]],
                      pd.DataFrame({"id": meta.loc[held, "id"], "split": "test"})],
                     ignore_index=True).sort_values("id", ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--group", required=True, help="modality:HxW, e.g. brightfield_gray:1024x1024")
    parser.add_argument("--configfile", type=Path, nargs="+", required=True,
                        help="config files, merged in order as Snakemake merges them")
    parser.add_argument("--minutes", type=float, default=0, help="train.max_minutes (0: the config's)")
    parser.add_argument("--epochs", type=int, default=0, help="train.epochs (0: the config's)")
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()

    meta = pd.read_csv(args.data / "stage1_train_meta.csv", dtype={"id": str})
    args.workdir.mkdir(parents=True, exist_ok=True)
    split_file = args.workdir / "leave_out_split.csv"
    split = leave_out_split(meta, args.group, seed=0)
    split.to_csv(split_file, index=False)
    print(f"group {args.group}: {int((split['split'] == 'test').sum())} test images; "
          f"{int((split['split'] == 'train').sum())} train, {int((split['split'] == 'val').sum())} val")
    overlay = {"split": {"file": str(split_file.resolve())}}
    train = {"max_minutes": args.minutes, "epochs": args.epochs}
    if any(train.values()):
        overlay["train"] = {key: value for key, value in train.items() if value}
    overlay_file = args.workdir / "leave_out.yaml"
    overlay_file.write_text(yaml.safe_dump(overlay))
    subprocess.run([sys.executable, str(REPO / "benchmarks" / "run_workflow.py"),
                    *[item for path in args.configfile for item in ("--configfile", str(path))],
                    "--configfile", str(overlay_file),
                    "--target", "all", "--workdir", str(args.workdir), "--data", str(args.data)],
                   check=True)


if __name__ == "__main__":
    main()
