"""Experiment: how well labels made at the network's scale come back onto the image's grid.

Ellipses 5-9 px wide (12-20 px for shrinking factors) are drawn exactly at the image's scale
(the truth) and at the network's (a perfect answer there: a pixel is a nucleus's where its
centre is), the latter read back onto the image's grid by nearest neighbour (segment's way
until commit 6999890), by `scale.read_labels` on the labels alone (bilinear indicator) and by
`scale.read_labels` with a foreground probability (each network-scale pixel's share inside a
nucleus, SHARE_SAMPLES^2 points; threshold 0.5: what a perfect network's probability would say),
and scored with the DSB metric against the truth. No network: what is measured is the reading
alone.

    .venv/bin/python benchmarks/experiments/label_reading.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "workflow" / "scripts"))

from nucleiseg.labels import relabel  # noqa: E402
from nucleiseg.metrics import dsb_score  # noqa: E402
from nucleiseg.scale import Resize, read_labels  # noqa: E402


# Each side of a network-scale pixel is cut into this many for its share inside a nucleus.
SHARE_SAMPLES = 4


def drawn(shape, pixel: float, nuclei) -> np.ndarray:
    yy, xx = (np.mgrid[:shape[0], :shape[1]] + 0.5) * pixel
    labels = np.zeros(shape, np.int32)
    for k, (y, x, ry, rx) in enumerate(nuclei, 1):
        labels[((yy - y) / ry) ** 2 + ((xx - x) / rx) ** 2 <= 1] = k
    return labels


def share(shape, pixel: float, nuclei) -> np.ndarray:
    """Each pixel's share inside a nucleus: a perfect foreground probability."""
    fine = drawn(tuple(n * SHARE_SAMPLES for n in shape), pixel / SHARE_SAMPLES, nuclei) > 0
    return fine.reshape(shape[0], SHARE_SAMPLES, shape[1], SHARE_SAMPLES).mean((1, 3))


def nearest(labels: np.ndarray, shape) -> np.ndarray:
    """Each new pixel takes the old pixel whose area holds its centre."""
    rows, cols = (np.minimum(((np.arange(n) + 0.5) * s / n).astype(np.intp), s - 1)
                  for n, s in zip(shape, labels.shape))
    return labels[rows[:, None], cols[None, :]]


def field(rng, size: int, diameters: tuple[float, float], count: int):
    nuclei = []
    while len(nuclei) < count:
        d = rng.uniform(*diameters)
        y, x = rng.uniform(d, size - d, 2)
        if all((y - a) ** 2 + (x - b) ** 2 > (d / 2 + max(c, e) + 0.5) ** 2
               for a, b, c, e in nuclei):
            nuclei.append((y, x, d / 2, d / 2 * rng.uniform(0.75, 1)))
    return nuclei


def main() -> None:
    print("| factor (network / image) | nuclei (px) | nearest neighbour | bilinear indicator "
          "| by the probability |")
    print("|---:|---|---:|---:|---:|")
    rng = np.random.default_rng(0)
    for factor in (1.25, 1.33, 1.6, 2.0, 2.5, 3.0, 0.8, 0.7, 0.5):
        size, diameters = (96, (5, 9)) if factor > 1 else (192, (12, 20))
        scores = {"nearest": [], "bilinear": [], "probability": []}
        for _ in range(20):
            nuclei = field(rng, size, diameters, 60)
            truth = drawn((size, size), 1.0, nuclei)
            resize = Resize(truth.shape, factor)
            pixel = size / resize.scaled_shape[0]
            answer = drawn(resize.scaled_shape, pixel, nuclei)
            probability = share(resize.scaled_shape, pixel, nuclei)
            scores["nearest"].append(dsb_score(truth, nearest(answer, truth.shape)))
            scores["bilinear"].append(dsb_score(truth, read_labels(answer, truth.shape)))
            scores["probability"].append(dsb_score(
                truth, relabel(read_labels(answer, truth.shape, probability, 0.5))[0]))
        print(f"| {factor:g} | {diameters[0]}-{diameters[1]} | "
              + " | ".join(f"{np.mean(values):.3f}" for values in scores.values()) + " |")


if __name__ == "__main__":
    main()
