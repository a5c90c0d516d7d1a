"""Benchmark: is reading training tiles fast enough not to limit a training step?

    .venv/bin/python benchmarks/tile_read.py --tiles /tmp/bench-prep/results/tiles/train

Times random batches read from the memory-mapped tile arrays (what training does: fancy-index
a batch out of images.npy/labels.npy and convert to float32), cold (first touch, from disk) and
warm (page cache). For scale it times one training step of a MobileNetV2 encoder with a 1x1
head on the same batch: a lower bound on the U-Net's step, which adds a decoder.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time
from pathlib import Path

import numpy as np


def read_batches(tiles: Path, batch: int, n_batches: int, seed: int) -> list[float]:
    images = np.load(tiles / "images.npy", mmap_mode="r")
    labels = np.load(tiles / "labels.npy", mmap_mode="r")
    rng = np.random.default_rng(seed)
    times = []
    for _ in range(n_batches):
        index = np.sort(rng.choice(len(images), size=batch, replace=False))
        start = time.perf_counter()
        x = images[index].astype(np.float32)
        y = labels[index].astype(np.int32)
        times.append(time.perf_counter() - start)
        assert x.shape[0] == y.shape[0] == batch
    return times


def encoder_step(batch: int, tile: int, steps: int) -> float:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    encoder = keras.applications.MobileNetV2(input_shape=(tile, tile, 3), include_top=False, weights=None)
    model = keras.Sequential([encoder, keras.layers.Conv2D(1, 1)])
    model.compile(optimizer="adam", loss="mse")
    x = np.random.rand(batch, tile, tile, 3).astype(np.float32)
    y = np.zeros((batch,) + model.output_shape[1:], np.float32)
    model.train_on_batch(x, y)  # build and trace
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", type=Path, required=True, help="a results/tiles/<split> folder")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()

    tile = np.load(args.tiles / "images.npy", mmap_mode="r").shape[1]
    cold = read_batches(args.tiles, args.batch, args.batches, seed=0)
    warm = read_batches(args.tiles, args.batch, args.batches, seed=0)
    step = encoder_step(args.batch, tile, args.steps)
    print(f"date: {datetime.date.today()}, machine: {platform.node()} ({os.cpu_count()} cores), "
          f"tiles: {args.tiles}, batch {args.batch} x {tile}x{tile}")
    print(f"| read a batch, first touch (median ms) | {1000 * np.median(cold):.1f} |")
    print(f"| read a batch, page cache (median ms) | {1000 * np.median(warm):.1f} |")
    print(f"| MobileNetV2 encoder train step, CPU (ms) | {1000 * step:.0f} |")
    print(f"| read / step | {np.median(cold) / step:.1%} |")


if __name__ == "__main__":
    main()
