"""Benchmark: run the real workflow on DSB2018 and record wall time and memory of every job.

    # preparation, split and tiling of all 664 images:
    .venv/bin/python benchmarks/run_workflow.py --data ../shared/data/dsb2018 --target tiles
    # everything, with a benchmark config (training, thresholds, evaluation):
    .venv/bin/python benchmarks/run_workflow.py --configfile config/dsb2018_cpu.yaml --target all

Runs `snakemake` in a work folder (source: local, read in place), samples the resident memory
of the whole process tree (Snakemake plus every job and worker process) every 0.1 s, and prints
a Markdown table: total wall time and peak memory, then Snakemake's own per-job benchmark
records (results/benchmarks/*.tsv: seconds and max RSS of each job), then the evaluation
summary when the run made one.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import psutil
import yaml

REPO = Path(__file__).resolve().parents[1]
TARGETS = {
    "tiles": ["results/index.csv", "results/tiles/train/tiles.csv", "results/tiles/val/tiles.csv"],
    "all": ["all"],
}


def _merge(base: dict, overlay: dict) -> dict:
    """Nested dict update, as Snakemake merges several --configfile files."""
    merged = dict(base)
    for key, value in overlay.items():
        merged[key] = _merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return merged


def _absolute_paths(config: dict) -> dict:
    """Make the config's file settings absolute (relative ones are relative to the repository)."""
    local = config.get("dataset", {}).get("local", {})
    if local.get("path"):
        local["path"] = str((REPO / local["path"]).resolve())
    model = config.get("model", {})
    if model.get("encoder_weights") not in (None, "imagenet", "none"):
        model["encoder_weights"] = str((REPO / model["encoder_weights"]).resolve())
    return config


def tree_rss(process: psutil.Process) -> int:
    total = 0
    for proc in [process, *process.children(recursive=True)]:
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            pass
    return total


def run_sampled(workdir: Path, config: dict, cores: int, targets: list[str]) -> tuple[float, int]:
    """Run snakemake (--forceall) on `targets`; wall seconds and the process tree's peak RSS."""
    (workdir / "bench_config.yaml").write_text(yaml.safe_dump(config))
    snakemake = Path(sys.executable).with_name("snakemake")
    command = [str(snakemake), "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--cores",
               str(cores), "--configfile", str(workdir / "bench_config.yaml"), "--forceall",
               "--quiet", "all", "--", *targets]
    start = time.perf_counter()
    proc = subprocess.Popen(command)
    watched, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        peak = max(peak, tree_rss(watched))
        time.sleep(0.1)
    if proc.returncode:
        sys.exit(f"snakemake failed with status {proc.returncode}")
    return time.perf_counter() - start, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "dsb2018")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=None, help="kept if given; else a temp dir")
    parser.add_argument("--configfile", type=Path, action="append", default=[],
                        help="a config to run instead of the default; repeat it to overlay "
                             "several, later ones winning (paths relative to the repository)")
    parser.add_argument("--target", choices=sorted(TARGETS), default="tiles")
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="nucleiseg-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    config = {}
    for path in args.configfile:
        config = _merge(config, yaml.safe_load(path.read_text()) or {})
    config = _absolute_paths(config)
    config.setdefault("dataset", {"source": "local", "local": {"path": str(args.data.resolve())}})
    config.setdefault("prepare", {})["threads"] = args.cores
    wall, peak = run_sampled(workdir, config, args.cores, TARGETS[args.target])

    index = pd.read_csv(workdir / "results" / "index.csv")
    tiles = {s: len(pd.read_csv(workdir / "results" / "tiles" / s / "tiles.csv")) for s in ("train", "val")}
    print(f"date: {datetime.date.today()}, machine: {platform.node()} "
          f"({psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB), "
          f"--cores {args.cores}")
    print(f"images: {len(index)} ({index['modality'].value_counts().to_dict()}), "
          f"megapixels: {(index['height'] * index['width']).sum() / 1e6:.1f}, tiles: {tiles}")
    print("\n| what | wall s | peak memory MiB |\n|---|---|---|")
    print(f"| whole run (process tree, sampled) | {wall:.1f} | {peak / 2**20:.0f} |")
    for tsv in sorted((workdir / "results" / "benchmarks").glob("*.tsv")):
        row = pd.read_csv(tsv, sep="\t").iloc[0]
        print(f"| job {tsv.stem} (Snakemake benchmark: s, max_rss) | {row['s']:.1f} | {row['max_rss']:.0f} |")
    summary = workdir / "results" / "evaluation" / "summary.csv"
    if summary.is_file():
        columns = ["set", "method", "modality", "n_images", "dice", "ap_50", "ap_75", "dsb_score"]
        print("\n" + pd.read_csv(summary)[columns].to_markdown(index=False, floatfmt=".3f"))


if __name__ == "__main__":
    main()
