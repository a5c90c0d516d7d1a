"""Where TensorFlow runs: CPU threads, determinism, the GPU check, mixed precision, several GPUs.

Every stage that runs the network sets TensorFlow up here (as Cellpose's core.assign_device),
and training picks its device and distribution strategy here.
"""

from __future__ import annotations

import logging

from .errors import ConfigError

log = logging.getLogger(__name__)


def configure_tensorflow(threads: int) -> None:
    """Keep TensorFlow to the job's cores (Snakemake's threads; 0 leaves its default, all), and
    make it deterministic on a CPU: the same settings and seed give the same model and the same
    labels, run after run (op determinism; tf.data keeps its order). On a GPU, cuDNN's fastest
    kernels are not deterministic and some ops have no deterministic GPU kernel: runs there are
    left as fast as they are, and may differ in the last bits.
    """
    import tensorflow as tf

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(threads, 2))
    if not visible_gpus():
        tf.config.experimental.enable_op_determinism()


def visible_gpus() -> list:
    """The GPUs TensorFlow sees (none with tensorflow-cpu, or on a node without one)."""
    import tensorflow as tf

    return tf.config.list_physical_devices("GPU")


def select_device(require_gpu: bool, mixed_precision: str) -> tuple[str, bool]:
    """Which device trains, and whether in mixed precision (auto: on a GPU only).

    Mixed precision computes in float16 on a GPU (with loss scaling) and in bfloat16 on a CPU:
    CPUs have no fast float16 arithmetic, while oneDNN runs bfloat16 natively where the CPU has
    it (AVX512-BF16, AMX) and keeps float32's range, so no loss scaling is needed. Variables and
    the network's outputs stay float32 either way.
    """
    gpus = visible_gpus()
    if require_gpu and not gpus:
        raise ConfigError(
            "train.require_gpu is true but TensorFlow sees no GPU (check `nvidia-smi`, that the "
            "job asked for one, and that tensorflow[and-cuda] is installed; see "
            "requirements-gpu.txt); set train.require_gpu: false to train on the CPU"
        )
    use_mixed = {"auto": bool(gpus), "true": True, "false": False}[str(mixed_precision).lower()]
    if use_mixed:
        import keras

        keras.mixed_precision.set_global_policy(mixed_policy(bool(gpus)))
    device = f"GPU x{len(gpus)} ({', '.join(g.name for g in gpus)})" if gpus else "CPU"
    return device, use_mixed


def mixed_policy(gpu: bool) -> str:
    """The Keras dtype policy of mixed precision on a GPU or on the CPU."""
    return "mixed_float16" if gpu else "mixed_bfloat16"


def training_devices(requested: int, visible: int) -> list[str]:
    """The GPUs that train: the first `requested` of the `visible` ones ([] for none: the CPU).

    Asking for more than are visible trains on those there are, with a warning (on SLURM,
    --gpus=N makes N visible).
    """
    if requested < 1:
        raise ConfigError(f"train.gpus must be at least 1, got {requested}")
    if requested > max(visible, 1):
        log.warning(
            "train.gpus is %d but TensorFlow sees %s: training on %s", requested,
            f"{visible} GPU{'s' if visible > 1 else ''}" if visible else "no GPU",
            f"{visible} GPU{'s' if visible > 1 else ''}" if visible else "the CPU",
        )
    return [f"/gpu:{i}" for i in range(min(requested, visible))]


def distribution_strategy(devices=()):
    """(strategy, description) for training on `devices` (TensorFlow device names).

    Several devices: tf.distribute.MirroredStrategy over them, data-parallel, one replica each.
    None or one: TensorFlow's default strategy (whatever device TensorFlow places ops on).
    """
    import tensorflow as tf

    devices = list(devices)
    if len(devices) <= 1:
        return tf.distribute.get_strategy(), "default strategy"
    strategy = tf.distribute.MirroredStrategy(devices)
    kinds = sorted({tf.DeviceSpec.from_string(d).device_type or "device" for d in devices})
    return strategy, (
        f"{len(devices)} {'/'.join(kinds)}s (MirroredStrategy, "
        f"{strategy.num_replicas_in_sync} replicas: {', '.join(devices)})"
    )


def patches_per_replica(patches_per_step: int, replicas: int) -> int:
    """Each replica's share of a step's patches (train.patches_per_step); every one needs one."""
    per_replica, rest = divmod(patches_per_step, replicas)
    if not per_replica:
        raise ConfigError(
            f"train.patches_per_step ({patches_per_step}) is split over {replicas} GPUs: it "
            f"must be at least {replicas} (better a multiple of it)"
        )
    if rest:
        log.warning("train.patches_per_step %d does not split evenly over %d replicas: %d or "
                    "%d patches each", patches_per_step, replicas, per_replica + 1, per_replica)
    else:
        log.info("train.patches_per_step %d: %d patches per replica", patches_per_step,
                 per_replica)
    return per_replica
