"""Seconds per training step of config/dsb2018_cpu.yaml's U-Net on the CPU, in one precision.

    for p in mixed_bfloat16 float32 mixed_bfloat16 float32; do
        .venv/bin/python benchmarks/experiments/bf16_step.py $p 20; done

One policy per process (Keras sets it globally); run them in turns so that their ratio holds on
a busy machine. Random patches (8 x 192 px, the config's step), the training's own loss and
optimizer; the first 3 steps are not timed. A probe, not yet a benchmark of whole trainings.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "workflow" / "scripts"))


def main() -> None:
    from nucleiseg.devices import configure_tensorflow

    configure_tensorflow(2)
    import keras

    from nucleiseg import training
    from nucleiseg.modelconfig import ModelConfig
    from nucleiseg.network import build_unet

    policy, steps = sys.argv[1], int(sys.argv[2])
    if policy != "float32":
        keras.mixed_precision.set_global_policy(policy)
    config = ModelConfig(unet_alpha=1.0, unet_encoder_weights="none", heads="contour")
    model = build_unet(config)
    training._compile(model, config.train_finetune_learning_rate)
    images = np.random.rand(8, 192, 192, 3).astype("float32")
    targets = (np.random.rand(8, 192, 192, config.n_outputs) > 0.5).astype("float32")
    for _ in range(3):
        model.train_on_batch(images, targets)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(images, targets)
    print(f"{policy}: {(time.perf_counter() - start) / steps:.3f} s per step")


if __name__ == "__main__":
    main()
