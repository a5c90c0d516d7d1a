"""The engines that run the network on a step's tiles: TensorFlow, or OpenVINO on a CPU.

`segment.backend` picks one (auto: OpenVINO on a CPU, TensorFlow where TensorFlow sees a GPU)
and `segment.precision` its arithmetic (auto: bf16 where OpenVINO runs on a CPU that has it,
else float32). Each engine is one object with one verb, `predict_on_batch(tiles)`:
(n, h, w, 3) float32 in, (n, h, w, n_maps) float32 out, the call predict.predict_tiled makes.
NucleusModel.predict goes through it, and with it segmentation, test-time augmentation,
threshold choice and evaluation: what is evaluated is what users get, engine included.

OpenVINO runs a converted copy of model.keras (its IR, `network.xml` + `network.bin`), kept in
the model folder's `openvino/` beside the checksums of the model.keras it came from and of its
own files (`converted.json`). It is converted on first use (about 2 s) and checked on every
load: a retrained model.keras, or a damaged copy, is converted again. A model folder may be
shared or read-only (a core facility's, or resources/models/<sha256>/), and several jobs may
load it at once: each converts into a temporary folder of its own and renames it into place,
and the first rename wins; where the folder cannot be written, the copy stays in memory.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from .errors import ConfigError
from .inference import BackendChoice
from .io import file_sha256
from .modelfolder import MODEL_FILE, OPENVINO_FOLDER

log = logging.getLogger(__name__)

IR_FILES = ("network.xml", "network.bin")
CONVERTED_FILE = "converted.json"  # model_sha256, openvino version, each IR file's sha256
_TEMPORARY = ".openvino.*.converting"  # a conversion on its way into place (or killed there)
_STALE_SECONDS = 3600
# segment.precision -> OpenVINO's inference precision hint, and back.
_OPENVINO_PRECISIONS = {"float32": "f32", "bf16": "bf16"}


class TensorflowBackend:
    """The Keras network as it was trained, run by TensorFlow (CPU or GPU), in float32."""

    name = "tensorflow"
    precision = "float32"

    def __init__(self, network):
        self.network = network  # keras.Model

    def predict_on_batch(self, tiles: np.ndarray) -> np.ndarray:
        # predict_on_batch runs the compiled graph: ~3x faster than an eager call on CPU.
        return np.asarray(self.network.predict_on_batch(tiles), dtype=np.float32)

    def __str__(self) -> str:
        return f"{self.name} {self.precision}"


class OpenvinoBackend:
    """The network converted to OpenVINO, compiled for the CPU in float32 or bf16."""

    name = "openvino"

    def __init__(self, converted, precision: str, threads: int = 0):
        """converted: an openvino.Model; precision: float32 | bf16 (already checked)."""
        import openvino as ov

        # Unpinned threads: OpenVINO pins its threads to cores by default, and two jobs on one
        # node (Snakemake's local jobs share no affinity masks) would then pin to the same ones.
        config = {"INFERENCE_PRECISION_HINT": _OPENVINO_PRECISIONS[precision],
                  "ENABLE_CPU_PINNING": False}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        self.compiled = ov.Core().compile_model(converted, "CPU", config)
        self.precision = precision
        self.threads = threads
        self._request = self.compiled.create_infer_request()

    def predict_on_batch(self, tiles: np.ndarray) -> np.ndarray:
        # Inputs shared, not copied; outputs copied (the request reuses its output buffer).
        outputs = self._request.infer(np.ascontiguousarray(tiles, dtype=np.float32),
                                      share_inputs=True)
        return np.asarray(outputs[0], dtype=np.float32)

    def __str__(self) -> str:
        return f"{self.name} {self.precision} ({self.threads or 'all'} threads)"


def open_backend(choice: BackendChoice, network, folder: Path | None = None, threads: int = 0):
    """The engine `choice` asks for, running `network` (the Keras model of `folder`)."""
    from .devices import visible_gpus

    backend = choice.backend
    if backend == "auto":
        backend = "tensorflow" if visible_gpus() else "openvino"
        if backend == "openvino" and not openvino_installed():
            log.warning("segment.backend auto: the openvino package is not installed, so "
                        "TensorFlow runs the network (pip install -r requirements.txt)")
            backend = "tensorflow"
    if backend == "tensorflow":
        if choice.precision not in ("auto", "float32"):
            raise ConfigError(f"segment.precision {choice.precision} runs through OpenVINO only "
                              "(segment.backend openvino, or auto on a CPU): set "
                              "segment.precision to auto or float32 for TensorFlow")
        engine = TensorflowBackend(network)
    elif not openvino_installed():
        raise ConfigError("segment.backend is openvino but the openvino package is not "
                          "installed: pip install -r requirements.txt, or set segment.backend "
                          "to tensorflow")
    else:
        engine = OpenvinoBackend(converted_network(network, folder),
                                 cpu_precision(choice.precision), threads)
    log.info("the network runs on %s (segment.backend %s, segment.precision %s)", engine,
             choice.backend, choice.precision)
    return engine


def openvino_installed() -> bool:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def cpu_precision(asked: str) -> str:
    """float32 or bf16 for OpenVINO on this CPU: auto is bf16 where the CPU computes in it."""
    import openvino as ov

    has_bf16 = "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    if asked == "auto":
        return "bf16" if has_bf16 else "float32"
    if asked == "bf16" and not has_bf16:
        raise ConfigError("segment.precision is bf16 but this CPU has no bf16 arithmetic "
                          "(AVX512_BF16 or AMX): set segment.precision to auto or float32")
    return asked


def converted_network(network, folder: Path | None):
    """The OpenVINO model of `network`: the folder's checked copy, else converted (and kept)."""
    import openvino as ov

    if folder is None:
        return _convert(network)
    folder = Path(folder)
    model_sha256 = file_sha256(folder / MODEL_FILE)
    kept = folder / OPENVINO_FOLDER
    if _matches(kept, model_sha256):
        return ov.Core().read_model(kept / IR_FILES[0])
    start = time.perf_counter()
    converted = _convert(network)
    log.info("converted %s to OpenVINO in %.1f s", folder / MODEL_FILE,
             time.perf_counter() - start)
    try:
        _keep(converted, kept, model_sha256)
    except OSError as exc:
        log.warning("cannot keep the converted network in %s (%s): each run converts it again",
                    kept, exc.strerror or exc)
    return converted


def _convert(network):
    import openvino as ov

    with warnings.catch_warnings():  # Keras: the traced input's name differs ("image"); harmless
        warnings.filterwarnings("ignore", message="The structure of `inputs` doesn't match")
        return ov.convert_model(network)


def _matches(kept: Path, model_sha256: str) -> bool:
    """Whether `kept` holds a complete conversion of the model.keras with this checksum."""
    try:
        record = json.loads((kept / CONVERTED_FILE).read_text())
        return record["model_sha256"] == model_sha256 and all(
            file_sha256(kept / name) == record["files"][name] for name in IR_FILES)
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _keep(converted, kept: Path, model_sha256: str) -> None:
    """Write the conversion beside the model, renamed into place whole (first writer wins)."""
    import openvino as ov

    for stale in kept.parent.glob(_TEMPORARY):  # left by a killed job
        if time.time() - stale.stat().st_mtime > _STALE_SECONDS:
            shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=".openvino.", suffix=".converting", dir=kept.parent))
    try:
        ov.save_model(converted, tmp / IR_FILES[0], compress_to_fp16=False)
        record = {"model_sha256": model_sha256, "openvino_version": ov.__version__,
                  "files": {name: file_sha256(tmp / name) for name in IR_FILES}}
        (tmp / CONVERTED_FILE).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        os.chmod(tmp, 0o755)
        if kept.exists():  # a conversion of an older model.keras, or a damaged one
            old = Path(tempfile.mkdtemp(prefix=".openvino.", suffix=".converting",
                                        dir=kept.parent))
            os.rename(kept, old / "old")
            shutil.rmtree(old, ignore_errors=True)
        os.rename(tmp, kept)
    except OSError as exc:
        if kept.is_dir() and _matches(kept, model_sha256):
            return  # another job put the same conversion in place first
        raise exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
