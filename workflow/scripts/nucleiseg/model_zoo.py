"""The model folder as a BioImage Model Zoo package (bioimage.io model spec 0.5, `bioimageio.spec`).

The package gives the network's probability maps to any bioimage.io consumer (bioimageio.core,
deepImageJ, ilastik, napari plugins): the input is described with its normalization (bioimage.io
`scale_range` with the model's percentiles, over y, x and channel together, per image), the
output as the foreground (and contour) maps. Nuclei need this workflow's thresholds and
watershed (instances.py); the package carries them (thresholds.json, and `config.nucleiseg`).

What is in the zip:
- `model.keras`: the network (Keras 3, weights format `keras_v3`), saved without the training's
  loss, so that it loads without nucleiseg;
- `tf_saved_model.zip`: the same network as a TensorFlow SavedModel (`tensorflow_saved_model_
  bundle`, converted from the Keras weights), one endpoint `serve` returning {"maps": ...};
- test tensors (.npy) and sample images (.tif): a crop of a held-out image, raw, and the maps the
  network computes from it after the normalization the package describes;
- a cover (the crop and the nuclei found in it), MODEL_CARD.md as documentation, config.json
  and thresholds.json. With model.keras, config.json and thresholds.json at its root, the zip is
  also a model folder archive that `segment.model` accepts.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from .io import atomic_path, read_image, read_json
from .manifest import Manifest
from .measure import overlay
from .model import NucleusModel
from .modelcard import BBBC038_CITATION, BBBC038_DOI
from .modelconfig import DIVISOR, HEAD_MAPS, ModelConfig
from .modelfolder import CONFIG_FILE, MODEL_FILE, THRESHOLDS_FILE
from .normalize import to_channels_last

LICENSE = "CC-BY-4.0"  # of the package (weights and files); the training data, BBBC038, is CC0
AUTHORS = ("nucleiseg contributors",)
NAME = "nucleiseg MobileNetV2 U-Net nuclei"
INPUT, OUTPUT = "image", "maps"  # the tensors' ids
INPUT_CHANNELS = ("red", "green", "blue")  # grayscale images are repeated to all three
MIN_SIDE = 2 * DIVISOR  # as the smallest tile (inference.Tiling); sizes grow in steps of DIVISOR
TEST_SIDE = 256  # the test tensors' largest side: a few seconds per check on a CPU
SAVED_MODEL_FILE = "tf_saved_model.zip"
CITATIONS = (
    (BBBC038_CITATION, BBBC038_DOI),
    ("Ronneberger O, Fischer P, Brox T. U-Net: convolutional networks for biomedical image "
     "segmentation. MICCAI 2015", "10.1007/978-3-319-24574-4_28"),
    ("Sandler M, Howard A, Zhu M, Zhmoginov A, Chen LC. MobileNetV2: inverted residuals and "
     "linear bottlenecks. CVPR 2018", "10.1109/CVPR.2018.00474"),
)


def export_model(folder: str | Path, card: str | Path, manifest_json: str | Path,
                 index_csv: str | Path, out: str | Path) -> Path:
    """Write the model in `folder` as a bioimage.io package zip at `out`, checked by
    bioimageio.spec as it is written (an invalid package raises ValueError, and `out` is not
    written)."""
    from bioimageio.spec import save_bioimageio_package

    model = NucleusModel.load(folder)
    index = pd.read_csv(index_csv, dtype={"id": str})
    image_id, raw = sample_image(Manifest.read(manifest_json), index)
    out = Path(out)
    # The files are gathered beside the output, on its disk, in a folder that is removed
    # whatever happens (and, named as atomic_path's temporaries, by the next attempt after a
    # kill: atomic_path clears those as it starts, before this folder exists).
    with atomic_path(out) as target, tempfile.TemporaryDirectory(
            prefix=f".{out.name}.", suffix=".part", dir=out.parent) as tmp:
        work = Path(tmp)
        files = write_package_files(model, raw, Path(folder), Path(card), work)
        description = describe_model(model.config, files, image_id)
        packed = save_bioimageio_package(description, output_path=work / "package.zip")
        shutil.copyfile(packed, target)
    return out


def sample_image(manifest: Manifest, index: pd.DataFrame) -> tuple[str, np.ndarray]:
    """A held-out image (test split, else val, else train) of the modality with the most
    training images, raw, as (H, W, 3) float32, cropped to the package's sizes."""
    train_counts = index.loc[index["split"] == "train", "modality"].value_counts()
    for split in ("test", "val", "train"):
        rows = index[index["split"] == split]
        if len(rows):
            break
    rows = rows.assign(rank=-rows["modality"].map(train_counts).fillna(0))
    image_id = str(rows.sort_values(["rank", "id"]).iloc[0]["id"])
    raw = to_channels_last(read_image(Path(manifest.stage1_train) / image_id / "images"
                                      / f"{image_id}.png"))
    raw = np.repeat(raw, 3, axis=-1) if raw.shape[-1] == 1 else raw
    return image_id, crop_to_sizes(raw.astype(np.float32))


def crop_to_sizes(image: np.ndarray) -> np.ndarray:
    """The image's centre, each side a multiple of DIVISOR from MIN_SIDE to TEST_SIDE
    (mirrored at the bottom and right first where it is smaller than MIN_SIDE)."""
    pads = [(0, max(0, MIN_SIDE - n)) for n in image.shape[:2]] + [(0, 0)] * (image.ndim - 2)
    image = np.pad(image, pads, mode="symmetric")
    sides = [min(TEST_SIDE, n // DIVISOR * DIVISOR) for n in image.shape[:2]]
    top, left = ((n - side) // 2 for n, side in zip(image.shape[:2], sides))
    return image[top:top + sides[0], left:left + sides[1]]


def write_package_files(model: NucleusModel, raw: np.ndarray, folder: Path, card: Path,
                        work: Path) -> dict[str, Path]:
    """The package's files in `work`, by role."""
    import tifffile

    files = {"keras": work / MODEL_FILE, "tensorflow": work / SAVED_MODEL_FILE,
             "test_input": work / "test_input.npy", "test_output": work / "test_output.npy",
             "sample_input": work / "sample_input.tif",
             "sample_output": work / "sample_output.tif", "cover": work / "cover.png",
             "documentation": work / card.name, "config": work / CONFIG_FILE,
             "thresholds": work / THRESHOLDS_FILE}
    model.network.save(files["keras"])  # loaded with compile=False: no training loss inside
    save_tensorflow(model.network, files["tensorflow"])
    maps = np.asarray(model.network(model.normalize(raw)[None], training=False), np.float32)
    np.save(files["test_input"], raw[None])
    np.save(files["test_output"], maps)
    tifffile.imwrite(files["sample_input"], raw[None], photometric="rgb")
    tifffile.imwrite(files["sample_output"], maps)
    write_cover(raw, model.instances(maps[0]), files["cover"])
    for role, name in (("documentation", card), ("config", folder / CONFIG_FILE),
                       ("thresholds", folder / THRESHOLDS_FILE)):
        shutil.copyfile(name, files[role])
    return files


def save_tensorflow(network, path: Path) -> None:
    """The network as a zipped TensorFlow SavedModel whose endpoint `serve` returns
    {OUTPUT: maps}: bioimageio.core runs TensorFlow 2 SavedModels through Keras' TFSMLayer,
    which calls `serve` and reads the outputs from a dict."""
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    archive.track(network)
    archive.add_endpoint(
        "serve", lambda image: {OUTPUT: network(image, training=False)},
        input_signature=[tf.TensorSpec((None, None, None, len(INPUT_CHANNELS)), tf.float32,
                                       name=INPUT)])
    folder = path.with_suffix("")
    archive.write_out(str(folder), verbose=False)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in sorted(p for p in folder.rglob("*") if p.is_file()):
            zf.write(file, file.relative_to(folder))
    shutil.rmtree(folder)


def write_cover(raw: np.ndarray, labels: np.ndarray, path: Path) -> None:
    """The image (left) and the nuclei the model finds in it, outlined (right)."""
    import imageio.v3 as iio

    picture = np.concatenate([overlay(raw, np.zeros_like(labels)), overlay(raw, labels)], axis=1)
    iio.imwrite(path, picture, extension=".png")


def describe_model(config: ModelConfig, files: dict[str, Path], image_id: str):
    """The bioimage.io model description (spec 0.5) of the package's files."""
    from bioimageio.spec.model import v0_5 as spec

    return spec.ModelDescr(
        name=NAME,
        description=(
            f"Probabilities of cell-nucleus {' and '.join(HEAD_MAPS[config.heads])} in 2D "
            "light-microscopy images (fluorescence, brightfield, stained tissue), from a "
            "MobileNetV2 U-Net trained with nucleiseg. Nuclei: thresholds.json and a watershed "
            "(see the documentation)."),
        authors=[spec.Author(name=name) for name in AUTHORS],
        cite=[spec.CiteEntry(text=text, doi=spec.Doi(doi)) for text, doi in CITATIONS],
        license=spec.LicenseId(LICENSE),
        documentation=spec.FileDescr(source=files["documentation"]),
        covers=[spec.FileDescr(source=files["cover"])],
        attachments=[spec.FileDescr(source=files["config"]),
                     spec.FileDescr(source=files["thresholds"])],
        tags=["nuclei", "segmentation", "instance-segmentation", "2d", "u-net", "mobilenetv2",
              "fluorescence-light-microscopy", "brightfield", "histology", "tensorflow", "keras"],
        inputs=[_input(config, files, image_id)],
        outputs=[_output(config, files)],
        weights=_weights(files),
        config={"nucleiseg": {"thresholds": read_json(files["thresholds"]), "model_config": config.to_dict(),
                              "test_image": image_id}},
    )


def _input(config: ModelConfig, files: dict[str, Path], image_id: str):
    from bioimageio.spec.model import v0_5 as spec

    axes = [spec.AxisId(a) for a in ("y", "x", "channel")]
    return spec.InputTensorDescr(
        id=spec.TensorId(INPUT),
        description=f"raw intensities, grayscale repeated to 3 channels (test: {image_id[:40]})",
        axes=[spec.BatchAxis(),
              *(spec.SpaceInputAxis(id=axis, size=spec.ParameterizedSize(min=MIN_SIDE,
                                                                         step=DIVISOR))
                for axis in axes[:2]),
              spec.ChannelAxis(channel_names=list(INPUT_CHANNELS))],
        test_tensor=spec.FileDescr(source=files["test_input"]),
        sample_tensor=spec.FileDescr(source=files["sample_input"]),
        data=spec.IntervalOrRatioDataDescr(type="float32"),
        preprocessing=[spec.ScaleRangeDescr(kwargs=spec.ScaleRangeKwargs(
            axes=axes, min_percentile=config.norm_p_low, max_percentile=config.norm_p_high))],
    )


def _output(config: ModelConfig, files: dict[str, Path]):
    from bioimageio.spec.model import v0_5 as spec

    return spec.OutputTensorDescr(
        id=spec.TensorId(OUTPUT),
        description="per-pixel probabilities: " + ", ".join(HEAD_MAPS[config.heads]),
        axes=[spec.BatchAxis(),
              *(spec.SpaceOutputAxis(id=spec.AxisId(axis), size=spec.SizeReference(
                  tensor_id=spec.TensorId(INPUT), axis_id=spec.AxisId(axis)))
                for axis in ("y", "x")),
              spec.ChannelAxis(channel_names=list(HEAD_MAPS[config.heads]))],
        test_tensor=spec.FileDescr(source=files["test_output"]),
        sample_tensor=spec.FileDescr(source=files["sample_output"]),
        data=spec.IntervalOrRatioDataDescr(type="float32", range=(0.0, 1.0)),
    )


def _weights(files: dict[str, Path]):
    import keras
    import tensorflow as tf
    from bioimageio.spec.model import v0_5 as spec

    return spec.WeightsDescr(
        keras_v3=spec.KerasV3WeightsDescr(
            source=files["keras"], keras_version=spec.Version(keras.__version__),
            backend=("tensorflow", spec.Version(tf.__version__))),
        tensorflow_saved_model_bundle=spec.TensorflowSavedModelBundleWeightsDescr(
            source=files["tensorflow"], tensorflow_version=spec.Version(tf.__version__),
            parent="keras_v3", comment="keras.export.ExportArchive; endpoint serve -> {maps}"),
    )
