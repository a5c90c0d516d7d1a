"""Models shared by address: `segment.model` as an http(s):// or file:// URL or a local .zip,
with `segment.model_sha256` (modelsource at parse time, model_fetch in the rule fetch_model).

Real zip archives of a real (tiny, untrained) model folder, served over file:// and by an HTTP
server on 127.0.0.1 that the tests start and stop; every refusal, each one line that names the
address and leaves nothing in resources/models/; and a real Snakemake run that fetches the
model and segments a batch, then reruns with the server stopped and fetches nothing.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import json
import socket
import threading
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from conftest import run_snakemake
from nucleiseg.errors import ConfigError, DownloadError
from nucleiseg.instances import Thresholds
from nucleiseg.model_fetch import fetch_model
from nucleiseg.modelconfig import ModelConfig
from nucleiseg.modelfolder import CONFIG_FILE, MODEL_FILE, THRESHOLDS_FILE, check_model_folder
from nucleiseg.modelsource import MODELS_FOLDER, model_archive
from nucleiseg.synthetic import make_nuclei
from nucleiseg.thresholds import save_thresholds

TINY = ModelConfig(unet_alpha=0.35, unet_encoder_weights="none",
                   unet_decoder_filters=(16, 16, 8, 8, 8))
FOLDER_FILES = (CONFIG_FILE, MODEL_FILE, THRESHOLDS_FILE)
URL = "https://example.org/models/nuclei.zip"
SHA = hashlib.sha256(b"another archive").hexdigest()


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory) -> Path:
    """A finished model folder, as train_model and optimize_thresholds leave it (untrained)."""
    import keras

    from nucleiseg.network import build_unet

    keras.utils.set_random_seed(0)
    folder = tmp_path_factory.mktemp("trained") / "model"
    folder.mkdir()
    build_unet(TINY).save(folder / MODEL_FILE)
    TINY.save(folder / CONFIG_FILE)
    save_thresholds(Thresholds(foreground=0.5, contour=0.5, min_size=0), folder / THRESHOLDS_FILE)
    (folder / "history.csv").write_text("epoch,loss\n0,1.0\n")
    return folder


def zip_model(folder: Path, archive: Path, top: str | None = "model", skip: tuple = (),
              extra: dict | None = None) -> Path:
    """What `zip -r model.zip model/` makes (top="model"), or a zip of the files at its root."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        if top:
            zf.writestr(f"{top}/", "")
        for path in sorted(folder.iterdir()):
            if path.name not in skip:
                zf.write(path, f"{top}/{path.name}" if top else path.name)
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return archive


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serving(root: Path):
    """An HTTP server for the files under `root` on 127.0.0.1 (a free port); its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    with serving(root) as base_url:
        yield root, base_url


def _models(tmp_path: Path) -> Path:
    return tmp_path / "work" / MODELS_FOLDER


# --- parse time: recognizing an address ------------------------------------------------------


@pytest.mark.parametrize("model", [URL, "http://10.0.0.1/m.zip", "file:///data/model.zip",
                                   "/data/shared/model.zip", "models/Model.ZIP"])
def test_an_archive_is_named_by_its_checksum(model):
    archive = model_archive(model, SHA.upper())
    assert archive.address == model and archive.sha256 == SHA
    assert archive.folder == f"{MODELS_FOLDER}/{SHA}"


@pytest.mark.parametrize("model", ["", "/data/models/nuclei", "results/model"])
def test_a_folder_is_no_archive(model):
    assert model_archive(model, "") is None


@pytest.mark.parametrize("model", [URL, "file:///data/model.zip", "model.zip"])
def test_an_archive_without_checksum_is_refused_saying_how_to_get_it(model):
    with pytest.raises(ConfigError) as caught:
        model_archive(model, "")
    message = str(caught.value)
    assert "\n" not in message and model in message
    assert "segment.model_sha256" in message and "sha256sum model.zip" in message


@pytest.mark.parametrize("model, sha256, named", [
    (URL, "abc123", "must be 64 hexadecimal digits"),
    (URL, f"{SHA}  model.zip", "must be 64 hexadecimal digits"),
    ("/data/models/nuclei", SHA, "segment.model_sha256 is set, but segment.model"),
    ("s3://bucket/model.zip", SHA, "cannot be fetched (s3://)"),
])
def test_a_checksum_or_address_that_cannot_work_is_refused(model, sha256, named):
    with pytest.raises(ConfigError, match=named.replace("(", r"\(").replace(")", r"\)")):
        model_archive(model, sha256)


# --- fetching --------------------------------------------------------------------------------


def _assert_unpacked(folder: Path, model_folder: Path):
    for name in FOLDER_FILES:
        assert (folder / name).read_bytes() == (model_folder / name).read_bytes(), name
    assert check_model_folder(folder) == TINY
    # the folder, and nothing else: no archive, no temporary
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]


@pytest.mark.parametrize("top", ["model", None], ids=["top_folder", "root"])
@pytest.mark.parametrize("how", ["http", "file", "path"])
def test_an_archive_is_fetched_checked_and_unpacked(tmp_path, served, model_folder, how, top):
    root, base_url = served
    archive = zip_model(model_folder, root / f"{how}_{top}" / "nuclei model.zip", top=top)
    address = {"http": f"{base_url}{how}_{top}/nuclei%20model.zip", "file": archive.as_uri(),
               "path": str(archive)}[how]
    sha256 = sha256_of(archive)
    folder = _models(tmp_path) / sha256
    assert fetch_model(address, sha256, folder) == folder
    _assert_unpacked(folder, model_folder)
    assert (folder / "history.csv").is_file()  # the rest of the folder comes along


def _bad_zip(tmp_path, model_folder, problem) -> tuple[Path, str]:
    """An archive with `problem`, and what its message must say."""
    path = tmp_path / "bad" / "model.zip"
    if problem == "no_thresholds":
        return zip_model(model_folder, path, skip=(THRESHOLDS_FILE,)), \
            "its folder model/ lacks thresholds.json"
    if problem == "no_model_folder":
        path.parent.mkdir(parents=True)
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("notes/readme.txt", "a model, promise")
        return path, "holds no model folder: no config.json, model.keras, thresholds.json"
    if problem == "two_models":
        zip_model(model_folder, path, extra={
            f"other/{name}": (model_folder / name).read_bytes() for name in FOLDER_FILES})
        return path, "holds 2 model folders (model, other), expected one"
    if problem == "zip_slip":
        return zip_model(model_folder, path, extra={"../evil.txt": "x"}), \
            "member '../evil.txt' would be written outside the target folder"
    if problem == "not_a_zip":
        path.parent.mkdir(parents=True)
        path.write_bytes(b"<html>Sign in to download</html>")
        return path, "not a readable zip archive"
    if problem == "newer_format":
        config = {**json.loads((model_folder / CONFIG_FILE).read_text()), "format_version": 99}
        zip_model(model_folder, path, skip=(CONFIG_FILE,),
                  extra={f"model/{CONFIG_FILE}": json.dumps(config)})
        return path, "(model/config.json): model format version 99"
    raise AssertionError(problem)


def _refused(address: str, sha256: str, folder: Path, *named: str) -> str:
    """fetch_model's refusal: one line naming the address; nothing left where it would unpack."""
    folder.mkdir(parents=True)  # as Snakemake creates its outputs' folder before the job
    with pytest.raises(DownloadError) as caught:
        fetch_model(address, sha256, folder)
    message = str(caught.value)
    assert "\n" not in message and address in message, message
    for words in named:
        assert words in message, message
    assert list(folder.parent.iterdir()) == [], "something was left in resources/models"
    return message


@pytest.mark.parametrize("problem", ["no_thresholds", "no_model_folder", "two_models",
                                     "zip_slip", "not_a_zip", "newer_format"])
def test_an_archive_that_is_not_one_model_folder_is_refused(tmp_path, model_folder, problem):
    archive, named = _bad_zip(tmp_path, model_folder, problem)
    sha256 = sha256_of(archive)
    # what to do: share a model folder's zip; for a newer model, a matching nucleiseg
    remedy = "matching nucleiseg release" if problem == "newer_format" else "zip -r model.zip"
    _refused(archive.as_uri(), sha256, _models(tmp_path) / sha256, named, remedy)
    assert not (tmp_path / "work" / "resources" / "evil.txt").exists()


def test_a_wrong_checksum_says_expected_and_got(tmp_path, served, model_folder):
    root, base_url = served
    archive = zip_model(model_folder, root / "checksum" / "model.zip")
    _refused(f"{base_url}checksum/model.zip", SHA, _models(tmp_path) / SHA,
             f"SHA-256 mismatch, expected {SHA}", f"got {sha256_of(archive)}")


def test_an_address_not_on_the_server_is_refused(tmp_path, served):
    _, base_url = served
    _refused(f"{base_url}nowhere/model.zip", SHA, _models(tmp_path) / SHA,
             "not found on the server (HTTP 404)", "Check the address in segment.model")


def test_an_unreachable_server_is_refused(tmp_path):
    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    _refused(f"http://127.0.0.1:{port}/model.zip", SHA, _models(tmp_path) / SHA,
             "Connection refused", "copy it here and set segment.model to its path")


@pytest.mark.parametrize("how", ["file", "path"])
def test_a_local_archive_that_does_not_exist_is_refused(tmp_path, how):
    missing = tmp_path / "nowhere" / "model.zip"
    address = missing.as_uri() if how == "file" else str(missing)
    _refused(address, SHA, _models(tmp_path) / SHA, "no such file", "Fix the path in segment.model")


# --- the workflow ----------------------------------------------------------------------------


def _one_image_batch(folder: Path) -> Path:
    import imageio.v3 as iio

    folder.mkdir(parents=True)
    iio.imwrite(folder / "nuclei.png", make_nuclei((96, 96), n_nuclei=5, seed=3).image)
    return folder


def test_the_workflow_fetches_a_model_by_url_once(tmp_path, model_folder):
    root = tmp_path / "served"
    archive = zip_model(model_folder, root / "nuclei.zip")
    sha256 = sha256_of(archive)
    work = tmp_path / "work"
    with serving(root) as base_url:
        config = {"batches": {"b": str(_one_image_batch(tmp_path / "batch"))},
                  "segment": {"model": f"{base_url}nuclei.zip", "model_sha256": sha256,
                              "tile_size": 128}}
        result = run_snakemake(work, config)
    output = result.stdout + result.stderr
    assert "fetch_model" in output and "train_model" not in output
    _assert_unpacked(work / MODELS_FOLDER / sha256, model_folder)
    images = pd.read_csv(work / "results" / "batches" / "b" / "images.csv")
    assert images["image_id"].tolist() == ["nuclei"]
    # The server is gone: the model is not fetched again, and nothing is to be done.
    for args in (("--dry-run",), ()):
        again = run_snakemake(work, config, *args)
        assert "Nothing to be done" in again.stdout + again.stderr


def test_the_workflow_refuses_an_address_without_checksum_before_any_job(tmp_path):
    config = {"batches": {"b": str(_one_image_batch(tmp_path / "batch"))},
              "segment": {"model": URL}}
    result = run_snakemake(tmp_path / "work", config, "--dry-run", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and len(output.splitlines()) < 15, output
    line = next(line for line in output.splitlines() if "segment.model_sha256" in line)
    assert URL in line and "sha256sum model.zip" in line
    assert not (tmp_path / "work" / "resources").exists()


def test_a_failed_fetch_leaves_nothing_in_the_models_folder(tmp_path, model_folder):
    archive = zip_model(model_folder, tmp_path / "nuclei.zip")
    config = {"batches": {"b": str(_one_image_batch(tmp_path / "batch"))},
              "segment": {"model": archive.as_uri(), "model_sha256": SHA}}
    result = run_snakemake(tmp_path / "work", config, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    line = next(line for line in output.splitlines() if line.startswith("nucleiseg error:"))
    assert archive.as_uri() in line and f"got {sha256_of(archive)}" in line
    assert list((tmp_path / "work" / MODELS_FOLDER).iterdir()) == []
