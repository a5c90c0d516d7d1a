"""Benchmark: seconds per training step of config/dsb2018_cpu.yaml's U-Net on this CPU, float32
against mixed precision (`train.mixed_precision: true`: bfloat16 on a CPU).

    .venv/bin/python benchmarks/training_precision.py [--rounds 4] [--steps 20] [--threads 2]

Keras sets its dtype policy for the whole process, so each policy is timed in a fresh process;
the policies take turns, round after round, in an order that rotates, so that their ratio holds
on a busy machine. Each process builds the network as training does (ImageNet-sized MobileNetV2
encoder, alpha 1.0, the contour head), compiles it with the training's loss and optimizer,
unfreezes the encoder (the fine-tuning phase, most of the epochs), and trains on random patches
of the config's step (8 x 192 px); its first 3 steps are not timed. Prints the median seconds
per step of each policy and the ratio to float32.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "scripts"))

POLICIES = ("float32", "mixed_bfloat16")


def time_steps(policy: str, steps: int, threads: int) -> float:
    """Seconds per training step under `policy`, in this process."""
    import numpy as np

    from nucleiseg.devices import configure_tensorflow

    configure_tensorflow(threads)
    import keras

    from nucleiseg import training
    from nucleiseg.modelconfig import ModelConfig
    from nucleiseg.network import build_unet, set_encoder_trainable

    keras.mixed_precision.set_global_policy(policy)
    config = ModelConfig(unet_alpha=1.0, unet_encoder_weights="none", heads="contour")
    model = build_unet(config)
    set_encoder_trainable(model, True)
    training._compile(model, config.train_finetune_learning_rate)
    rng = np.random.default_rng(0)
    images = rng.random((8, 192, 192, 3), dtype=np.float32)
    targets = (rng.random((8, 192, 192, config.n_outputs)) > 0.5).astype("float32")
    for _ in range(3):
        model.train_on_batch(images, targets)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(images, targets)
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", choices=POLICIES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(f"SECONDS {time_steps(args.child, args.steps, args.threads)}")
        return
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    seconds = {policy: [] for policy in POLICIES}
    began = time.perf_counter()
    for round_ in range(args.rounds):
        order = POLICIES[round_ % 2:] + POLICIES[:round_ % 2]
        for policy in order:
            run = subprocess.run([sys.executable, __file__, "--child", policy, "--steps",
                                  str(args.steps), "--threads", str(args.threads)],
                                 capture_output=True, text=True, env=env, check=True)
            seconds[policy].append(float(run.stdout.split("SECONDS")[1]))
            print(f"round {round_ + 1} {policy}: {seconds[policy][-1]:.3f} s per step", flush=True)
    print(f"\n{datetime.date.today()} on {platform.node()} ({os.cpu_count()} CPUs), "
          f"{time.perf_counter() - began:.0f} s, {args.threads} threads, {args.rounds} rounds "
          f"of {args.steps} steps\n")
    base = statistics.median(seconds["float32"])
    print("| policy | s per step (median) | rounds | x float32 |\n|---|---:|---|---:|")
    for policy in POLICIES:
        median = statistics.median(seconds[policy])
        runs = " ".join(f"{s:.3f}" for s in seconds[policy])
        print(f"| {policy} | {median:.3f} | {runs} | {base / median:.2f} |")


if __name__ == "__main__":
    main()
