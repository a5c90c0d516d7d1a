"""The network's engines (segment.backend, segment.precision), the converted network kept in the
model folder, and the read-ahead / write-behind pipeline of segmentation.

That OpenVINO's labels equal TensorFlow's on real images, with a trained model, is checked in
test_batches.py on the model its Snakemake run trains (the run itself segments with OpenVINO).
"""

from __future__ import annotations

import json
import sys
import threading

import numpy as np
import pytest
import yaml

from conftest import REPO, SHARED_DSB, pick_ids
from nucleiseg import backends
from nucleiseg.batch_io import read_batch_image
from nucleiseg.errors import ConfigError
from nucleiseg.inference import BACKENDS, PRECISIONS, BackendChoice, Tiling
from nucleiseg.instances import Thresholds
from nucleiseg.io import file_sha256
from nucleiseg.model import NucleusModel
from nucleiseg.modelconfig import ModelConfig
from nucleiseg.modelfolder import CONFIG_FILE, MODEL_FILE, OPENVINO_FOLDER, THRESHOLDS_FILE
from nucleiseg.pipeline import WriteBehind, read_ahead
from nucleiseg.thresholds import save_thresholds

TINY = ModelConfig(unet_alpha=0.35, unet_encoder_weights="none",
                   unet_decoder_filters=(16, 16, 8, 8, 8))
TILING = Tiling(tile_size=256, overlap=64, tiles_per_step=2)
OPENVINO_FLOAT32 = BackendChoice("openvino", "float32")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    import keras

    from nucleiseg.network import build_unet

    keras.utils.set_random_seed(0)
    folder = tmp_path_factory.mktemp("model")
    build_unet(TINY).save(folder / MODEL_FILE)
    TINY.save(folder / CONFIG_FILE)
    save_thresholds(Thresholds(0.5, 0.5, 0), folder / THRESHOLDS_FILE)
    return folder


@pytest.fixture(scope="module")
def dsb_images(dsb_meta):
    """A grayscale fluorescence image and a colour-stained one, normalized as segment does."""
    ids = pick_ids(dsb_meta, {"fluorescence_gray": 1, "color_stained": 1})
    model = NucleusModel(None, TINY)
    return [model.normalize(read_batch_image(
        SHARED_DSB / "stage1_train" / i / "images" / f"{i}.png").image) for i in ids]


def test_openvino_in_float32_predicts_tensorflows_maps_on_real_images(folder, dsb_images):
    tensorflow = NucleusModel.load(folder, TILING, backend=BackendChoice("tensorflow"))
    openvino = NucleusModel.load(folder, TILING, backend=OPENVINO_FLOAT32, threads=2)
    assert str(tensorflow.backend) == "tensorflow float32"
    assert (openvino.backend.name, openvino.backend.precision) == ("openvino", "float32")
    assert "backend openvino float32 (2 threads)" in repr(openvino)
    for image in dsb_images:
        np.testing.assert_allclose(openvino.predict(image), tensorflow.predict(image), atol=1e-3)


def test_the_conversion_is_kept_in_the_model_folder_and_checked(folder, dsb_images, caplog):
    with caplog.at_level("INFO", logger="nucleiseg.backends"):
        maps = NucleusModel.load(folder, TILING, backend=OPENVINO_FLOAT32).predict(dsb_images[0])
    assert "converted" not in caplog.text  # the first test's conversion, reused
    kept = folder / OPENVINO_FOLDER
    model_sha256 = file_sha256(folder / MODEL_FILE)
    record = json.loads((kept / backends.CONVERTED_FILE).read_text())
    assert record["model_sha256"] == model_sha256
    assert record["files"] == {name: file_sha256(kept / name) for name in backends.IR_FILES}
    converted = backends.converted_network(None, folder)  # read back: no network to convert
    # A conversion of another model.keras (the model was retrained) no longer matches; the new
    # one replaces it whole, and a job that converted at the same time leaves it in place.
    (kept / backends.CONVERTED_FILE).write_text(json.dumps({**record, "model_sha256": "0" * 64}))
    assert not backends._matches(kept, model_sha256)
    backends._keep(converted, kept, model_sha256)
    assert backends._matches(kept, model_sha256)
    backends._keep(converted, kept, model_sha256)
    assert backends._matches(kept, model_sha256)
    assert not list(folder.glob(".openvino.*"))  # no temporary left beside it
    (kept / backends.IR_FILES[1]).write_bytes(b"damaged")
    assert not backends._matches(kept, model_sha256)
    backends._keep(converted, kept, model_sha256)
    reused = NucleusModel.load(folder, TILING, backend=OPENVINO_FLOAT32)
    np.testing.assert_array_equal(reused.predict(dsb_images[0]), maps)


def test_a_loaded_model_runs_auto_openvino_on_a_cpu(folder):
    from nucleiseg.devices import visible_gpus

    if visible_gpus():
        pytest.skip("TensorFlow sees a GPU: auto runs TensorFlow there")
    backend = NucleusModel.load(folder).backend  # the conversion kept above: none here
    assert (backend.name, backend.precision) == ("openvino", backends.cpu_precision("auto"))


def test_bad_choices_name_the_setting_that_decides(monkeypatch):
    with pytest.raises(ConfigError, match="segment.backend must be one of auto, tensorflow, "
                                          "openvino, got 'onnx'"):
        BackendChoice("onnx")
    with pytest.raises(ConfigError, match="segment.precision must be one of"):
        BackendChoice("openvino", "int8")
    with pytest.raises(ConfigError, match="segment.precision bf16 runs through OpenVINO only"):
        NucleusModel(None, TINY, backend=BackendChoice("tensorflow", "bf16")).backend
    monkeypatch.setitem(sys.modules, "openvino", None)  # as if it were not installed
    with pytest.raises(ConfigError, match="segment.backend is openvino but the openvino "
                                          "package is not installed"):
        NucleusModel(None, TINY, backend=BackendChoice("openvino")).backend


def test_the_schema_offers_the_choices_the_code_knows():
    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    segment = schema["properties"]["segment"]["properties"]
    assert tuple(segment["backend"]["enum"]) == BACKENDS
    assert tuple(segment["precision"]["enum"]) == PRECISIONS
    assert (segment["backend"]["default"], segment["precision"]["default"]) == ("auto", "auto")


def test_read_ahead_reads_the_next_item_while_the_current_one_is_used():
    started = {k: threading.Event() for k in range(3)}

    def read(k):
        started[k].set()
        if k == 2:
            raise ValueError("unreadable 2")
        return k * 10

    seen = []
    with pytest.raises(ValueError, match="unreadable 2"):
        for k, value in read_ahead(read, range(3)):
            assert started[k + 1].wait(5)  # item k + 1 is being read while k is in use
            seen.append((k, value))
    assert seen == [(0, 0), (1, 10)]  # the error comes at its item's turn, not before


def test_write_behind_keeps_the_order_and_raises_a_failed_write():
    written = []
    with WriteBehind(depth=2) as writer:
        for k in range(5):
            writer.submit(written.append, k)
    assert written == [0, 1, 2, 3, 4]

    def fail(k):
        raise OSError(f"disk full at {k}")

    with pytest.raises(OSError, match="disk full at 0"):
        with WriteBehind() as writer:
            writer.submit(fail, 0)
