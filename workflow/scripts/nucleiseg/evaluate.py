"""Scoring held-out images: the network (through the model's `segment`) against the classical
pipeline.

Held-out sets: `test` (this workflow's split of stage1_train) and, when the dataset has it,
`stage1_test` (Kaggle's official stage 1 test images, masks decoded from stage1_solution.csv).
Every image is scored for the network and, in the same run, for the classical pipeline (Otsu +
distance-transform watershed, what CellProfiler's IdentifyPrimaryObjects does), so users see
what the network adds. Thresholds are chosen on `val` only (model.NucleusModel.
optimize_thresholds): the test images never tune anything.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import pandas as pd
import tifffile

from .classical import segment_classical
from .io import read_image, write_csv, write_json
from .metrics import score_image, summarize
from .model import NucleusModel, TruthImage
from .normalize import classify_modality, to_channels_last

log = logging.getLogger(__name__)

METHODS = ("network", "classical")


def split_images(index: pd.DataFrame, prepared: str | Path, split: str) -> Iterator[TruthImage]:
    """The prepared images and labels of one split of the index."""
    prepared = Path(prepared)
    for row in index[index["split"] == split].sort_values("id").itertuples():
        yield TruthImage(
            row.id, row.modality, split,
            tifffile.imread(prepared / "images" / f"{row.id}.tif"),
            tifffile.imread(prepared / "labels" / f"{row.id}.tif"),
        )


def stage1_test_images(model: NucleusModel, stage1_test: str | Path,
                       solution_csv: str | Path) -> Iterator[TruthImage]:
    """Kaggle's stage 1 test images, normalized as the model's training images, with masks."""
    from .rle import solution_labels

    truths = solution_labels(solution_csv)
    for sample_id in sorted(truths):
        path = Path(stage1_test) / sample_id / "images" / f"{sample_id}.png"
        raw = to_channels_last(read_image(path))
        image = model.normalize(raw)
        yield TruthImage(sample_id, classify_modality(raw), "stage1_test",
                         image[..., 0] if image.shape[-1] == 1 else image, truths[sample_id])


def evaluate_model(model: NucleusModel, images: Iterable[TruthImage]) -> pd.DataFrame:
    """One row per image and method: every score of metrics.score_image, and the seconds taken.

    The network's labels are the model's `segment`, exactly as new batches get them.
    """
    rows = []
    for item in images:
        for method in METHODS:
            start = time.perf_counter()
            if method == "network":
                labels = model.segment(item.image).labels
            else:
                labels = segment_classical(item.image)
            seconds = time.perf_counter() - start
            rows.append({"set": item.set, "id": item.id, "modality": item.modality, "method": method,
                         **score_image(item.truth, labels), "seconds": seconds})
        log.info("%s %s (%s): network DSB %.3f, classical DSB %.3f", item.set, item.id[:12],
                 item.modality, rows[-2]["dsb_score"], rows[-1]["dsb_score"])
    return pd.DataFrame(rows)


def summarize_evaluation(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean scores per set, method and modality, with an `overall` row per set and method."""
    parts = []
    for (set_name, method), group in rows.groupby(["set", "method"], sort=True):
        table = summarize(group.drop(columns=["set", "method", "id"]), by="modality")
        table.insert(0, "method", method)
        table.insert(0, "set", set_name)
        parts.append(table)
    return pd.concat(parts, ignore_index=True)


def write_evaluation(rows: pd.DataFrame, per_image: Path, summary_csv: Path, summary_json: Path,
                     figure: Path) -> pd.DataFrame:
    summary = summarize_evaluation(rows)
    write_csv(rows, per_image)
    write_csv(summary, summary_csv)
    write_json(summary.to_dict(orient="records"), summary_json)
    plot_evaluation(summary, figure)
    return summary


def plot_evaluation(summary: pd.DataFrame, path: Path) -> None:
    """Per set: DSB score by modality for both methods, and AP against the IoU threshold."""
    from .io import new_figure, save_figure
    from .metrics import DSB_THRESHOLDS

    sets = list(dict.fromkeys(summary["set"]))
    fig, axes = new_figure(len(sets), 2, (11, 4 * len(sets)))
    ap_columns = [f"ap_{round(t * 100):02d}" for t in DSB_THRESHOLDS]
    for (bars, curve), set_name in zip(axes, sets):
        part = summary[summary["set"] == set_name]
        groups = list(dict.fromkeys(part["modality"]))
        width = 0.8 / len(METHODS)
        for k, method in enumerate(METHODS):
            scores = part[part["method"] == method].set_index("modality").reindex(groups)["dsb_score"]
            bars.bar(np.arange(len(groups)) + k * width, scores, width, label=method)
            overall = part[(part["method"] == method) & (part["modality"] == "overall")]
            if not overall.empty:
                curve.plot(DSB_THRESHOLDS, overall[ap_columns].to_numpy()[0], "o-", label=method)
        bars.set_xticks(np.arange(len(groups)) + width / 2, groups)
        bars.set(ylim=(0, 1), ylabel="DSB score (mean AP, IoU 0.5-0.95)", title=f"{set_name}: by modality")
        curve.set(ylim=(0, 1), xlabel="IoU threshold", ylabel="TP / (TP + FP + FN)",
                  title=f"{set_name}: average precision, all images")
        for ax in (bars, curve):
            ax.legend()
            ax.grid(alpha=0.3)
    save_figure(fig, path)
