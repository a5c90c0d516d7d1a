"""Diagnosis: what kind of error the network's misses and extras at IoU 0.5 are (issue 10).

    .venv/bin/python benchmarks/experiments/error_kinds.py --run <a finished run> [--split val]

Segments each image of the split at its own scale with the run's model and thresholds (rescale
off) and sorts every unmatched nucleus at IoU > 0.5:
- a true nucleus missed is `merged` when 30% or more of it lies in one predicted nucleus that
  also covers 30% of another true one or is matched to another, `missed` when no predicted
  nucleus covers 30% of it, `partial` otherwise;
- a predicted nucleus unmatched is a `split` when 30% or more of it lies in a true nucleus that
  another prediction matched, `spurious` when no true nucleus covers 30% of it, `partial`
  otherwise.
Prints the counts, and the sizes of the true nuclei missed outright against the model's
min_size. Choose on val, never on test.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from finished_run import add_run_arguments, load_model, load_split, start  # noqa: E402

SHARE = 0.3


def overlaps(truth: np.ndarray, pred: np.ndarray) -> dict[tuple[int, int], int]:
    """Pixels shared by each (true, predicted) pair that overlaps."""
    both = (truth > 0) & (pred > 0)
    keys, counts = np.unique(truth[both].astype(np.int64) * (int(pred.max()) + 1) + pred[both],
                             return_counts=True)
    return {divmod(int(k), int(pred.max()) + 1): int(c) for k, c in zip(keys, counts)}


def error_kinds(truth: np.ndarray, pred: np.ndarray, missed: Counter, extra: Counter,
                missed_sizes: list[int]) -> None:
    true_sizes, pred_sizes = np.bincount(truth.ravel()), np.bincount(pred.ravel())
    shared = overlaps(truth, pred)
    matched_true, matched_pred = set(), set()
    for (t, p), c in shared.items():
        if c / (true_sizes[t] + pred_sizes[p] - c) > 0.5:
            matched_true.add(t)
            matched_pred.add(p)
    for t in set(np.unique(truth)) - matched_true - {0}:
        c, p = max(((c, p) for (a, p), c in shared.items() if a == t), default=(0, 0))
        if c < SHARE * true_sizes[t]:
            missed["missed"] += 1
            missed_sizes.append(int(true_sizes[t]))
        elif p in matched_pred or any(a != t and n >= SHARE * true_sizes[a]
                                      for (a, q), n in shared.items() if q == p):
            missed["merged"] += 1
        else:
            missed["partial"] += 1
    for p in set(np.unique(pred)) - matched_pred - {0}:
        c, t = max(((c, a) for (a, q), c in shared.items() if q == p), default=(0, 0))
        kind = ("spurious" if c < SHARE * pred_sizes[p] else
                "split" if t in matched_true else "partial")
        extra[kind] += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(parser, split="val")
    args = parser.parse_args()
    start(args)
    model = load_model(args.run / "results")
    missed, extra, missed_sizes = Counter(), Counter(), []
    for item in load_split(args.run / "results", args.split, args.limit):
        pred = model.instances(model.predict(item.image))
        error_kinds(item.truth, pred, missed, extra, missed_sizes)
    print(f"run {args.run}, split {args.split}, thresholds {model.thresholds.to_dict()}")
    print(f"true nuclei unmatched: {sum(missed.values())} {dict(missed)}")
    print(f"predicted nuclei unmatched: {sum(extra.values())} {dict(extra)}")
    sizes = np.array(missed_sizes)
    print(f"missed outright: median {np.median(sizes):.0f} px, "
          f"{np.mean(sizes < model.thresholds.min_size):.0%} under min_size")


if __name__ == "__main__":
    main()
