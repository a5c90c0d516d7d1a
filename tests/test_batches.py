"""Segmenting a batch for real: a Snakemake run from a mixed folder to the tables and figures.

The batch holds real DSB2018 images (read in place, through symbolic links), a synthetic 16-bit
two-channel OME-TIFF larger than one tile with the nuclei in its second channel, and a corrupt
file; the model is trained by the same run on synthetic data (tiny, a minute on CPU).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tifffile

from conftest import SHARED_DSB, TINY_MODEL, pick_ids, run_snakemake
from nucleiseg.batches import find_batch_files
from nucleiseg.measure import nuclei_columns
from nucleiseg.morphometrics import touches_border
from nucleiseg.tables import IMAGES_COLUMNS, SKIPPED_COLUMNS, SUMMARY_COLUMNS
from nucleiseg.synthetic import make_nuclei

PIXEL_SIZE = 0.325
TIFF_SHAPE = (420, 540)  # larger than the 128-pixel tiles below: predicted in overlapping tiles

TRAINED_HERE = {
    "dataset": {"source": "synthetic",
                "synthetic": {"n_images": 8, "height": 128, "width": 128, "seed": 1,
                              "modalities": ["fluorescence"]}},
    "split": {"fractions": {"train": 0.5, "val": 0.25, "test": 0.25}},
    "tiles": {"size": 64, "overlap": 16},
    "model": TINY_MODEL["model"],
    "train": {**TINY_MODEL["train"], "epochs": 4, "steps_per_epoch": 8},
}


def _write_two_channel_tiff(path):
    """Cytoplasm first, nuclei second (segment.nuclear_channel: 1), 16-bit, OME pixel size."""
    sample = make_nuclei(TIFF_SHAPE, n_nuclei=60, radius=(6, 9), touching_pairs=6,
                         bit_depth=16, channels=2, seed=5)
    channels = np.stack([sample.image[..., 1], sample.image[..., 0]])
    tifffile.imwrite(path, channels, ome=True, photometric="minisblack",
                     metadata={"axes": "CYX", "PhysicalSizeX": PIXEL_SIZE,
                               "PhysicalSizeY": PIXEL_SIZE, "PhysicalSizeXUnit": "µm"})
    return sample


@pytest.fixture(scope="module")
def batch_folder(tmp_path_factory, dsb_meta):
    folder = tmp_path_factory.mktemp("plate")
    ids = pick_ids(dsb_meta, {"fluorescence_gray": 2, "color_stained": 1})
    for sample_id in ids:
        (folder / f"{sample_id}.png").symlink_to(
            SHARED_DSB / "stage1_train" / sample_id / "images" / f"{sample_id}.png")
    truth = _write_two_channel_tiff(folder / "two_channel.ome.tif")
    (folder / "broken.tif").write_bytes(b"II*\x00" + bytes(range(256)) * 4)
    return folder, ids, truth


def _config(folder, **segment):
    return {**TRAINED_HERE, "batches": {"plate": str(folder)},
            "segment": {"tile_size": 128, "overlap": 32, "tiles_per_step": 2, "images_per_chunk": 2,
                        "nuclear_channel": 1, "save_probabilities": True,
                        "backend": "openvino", "precision": "float32", **segment}}


@pytest.fixture(scope="module")
def batch_run(tmp_path_factory, batch_folder):
    folder, ids, truth = batch_folder
    work = tmp_path_factory.mktemp("batch_run")
    result = run_snakemake(work, _config(folder, on_bad_image="skip"))
    work.joinpath("run_output.txt").write_text(result.stdout + result.stderr)
    return work, work / "results" / "batches" / "plate", ids, truth


def test_every_output_of_the_batch_is_written(batch_run):
    work, out, ids, _ = batch_run
    for name in ("nuclei.csv", "images.csv", "skipped.csv", "montage.png", "distributions.png"):
        assert (out / name).stat().st_size > 0, name
    # 5 files in jobs of 2: three jobs, each with its labels, measurements and overlays
    assert sorted(p.name for p in (out / "labels").iterdir()) == ["chunk001", "chunk002", "chunk003"]
    images = pd.read_csv(out / "images.csv", dtype={"image_id": str})
    assert list(images.columns) == list(IMAGES_COLUMNS)
    assert list(pd.read_csv(out / "skipped.csv").columns) == list(SKIPPED_COLUMNS)
    assert sorted(images["image_id"]) == sorted(ids + ["two_channel"])
    for row in images.itertuples():
        labels = tifffile.imread(work / row.labels_file)  # paths relative to the working folder
        assert labels.dtype == np.uint16 and labels.shape == (row.height, row.width)
        assert labels.max() == row.n_nuclei
        overlays = list((out / "overlays").glob(f"*/{row.image_id}.png"))
        assert len(overlays) == 1 and overlays[0].stat().st_size > 0
        probabilities = list((out / "probabilities").glob(f"*/{row.image_id}.tif"))
        maps = tifffile.imread(probabilities[0])
        assert maps.shape == (2, row.height, row.width) and 0 <= maps.min() <= maps.max() <= 1


def test_corrupt_file_is_skipped_with_its_reason_and_the_run_says_so(batch_run):
    work, out, _, _ = batch_run
    skipped = pd.read_csv(out / "skipped.csv")
    assert skipped["image_id"].tolist() == ["broken"]
    assert skipped["file"].iloc[0].endswith("broken.tif")
    assert "corrupt or truncated" in skipped["reason"].iloc[0]
    said = (work / "run_output.txt").read_text()
    assert "batch plate: 1 of 5 files were skipped" in said
    assert "results/batches/plate/skipped.csv" in said


def test_nuclei_table_has_every_column_and_matches_the_label_images(batch_run):
    work, out, _, _ = batch_run
    nuclei = pd.read_csv(out / "nuclei.csv", dtype={"image_id": str})
    images = pd.read_csv(out / "images.csv", dtype={"image_id": str}).set_index("image_id")
    assert list(nuclei.columns) == nuclei_columns()
    assert len(nuclei) == images["n_nuclei"].sum() > 0
    for image_id, group in nuclei.groupby("image_id"):
        labels = tifffile.imread(work / images.loc[image_id, "labels_file"])
        assert sorted(group["label"]) == list(range(1, labels.max() + 1))
        areas = np.bincount(labels.ravel())[group["label"]]
        assert np.array_equal(group["AreaShape_Area"], areas)
        border = set(touches_border(labels).tolist())
        assert set(group.loc[group["touches_border"], "label"]) == border
    assert nuclei["confidence"].between(0, 1).all()


def test_two_channel_tiff_is_measured_on_its_raw_nuclear_channel_in_micrometres(batch_run):
    work, out, _, truth = batch_run
    nuclei = pd.read_csv(out / "nuclei.csv", dtype={"image_id": str})
    images = pd.read_csv(out / "images.csv", dtype={"image_id": str}).set_index("image_id")
    row = images.loc["two_channel"]
    assert row["pixel_size_um"] == pytest.approx(PIXEL_SIZE)
    assert row["pixel_size_source"] == "ome" and "channel 1 of channels 0-1" in row["description"]
    tiff = nuclei[nuclei["image_id"] == "two_channel"]
    assert len(tiff) > 0
    assert np.allclose(tiff["AreaShape_Area_um2"], tiff["AreaShape_Area"] * PIXEL_SIZE**2)
    assert np.allclose(tiff["AreaShape_MajorAxisLength_um"],
                       tiff["AreaShape_MajorAxisLength"] * PIXEL_SIZE)
    # raw 16-bit values of channel 2, not normalized ones and not channel 1's
    labels = tifffile.imread(work / row["labels_file"])
    nuclear = truth.image[..., 0].astype(float)
    for nucleus in tiff.head(5).itertuples():
        assert nucleus.Intensity_MeanIntensity == pytest.approx(nuclear[labels == nucleus.label].mean())
    png = nuclei[nuclei["image_id"] != "two_channel"]
    assert png["AreaShape_Area_um2"].isna().all()  # PNGs carry no pixel size


def test_images_table_summarizes_each_image(batch_run):
    _, out, _, _ = batch_run
    nuclei = pd.read_csv(out / "nuclei.csv", dtype={"image_id": str})
    images = pd.read_csv(out / "images.csv", dtype={"image_id": str}).set_index("image_id")
    for column in (*SUMMARY_COLUMNS, "seconds_predict", "seconds_measure"):
        assert column in images.columns
    for image_id, row in images.iterrows():
        own = nuclei[nuclei["image_id"] == image_id]
        assert row["n_touching_border"] == own["touches_border"].sum()
        assert row["coverage"] == pytest.approx(own["AreaShape_Area"].sum() / (row["height"] * row["width"]))
        if len(own):
            assert row["median_area"] == pytest.approx(own["AreaShape_Area"].median())
    assert (images["seconds_predict"] > 0).all()


def test_the_run_segments_with_the_backend_asked_as_tensorflow_would(batch_run, batch_folder):
    """segment.backend and segment.precision reach the rules (images.csv, the log), and
    OpenVINO in float32 gives TensorFlow's maps and labels on the real images, with the model
    this run trained."""
    from nucleiseg.batch_io import read_batch_image
    from nucleiseg.inference import BackendChoice, Tiling
    from nucleiseg.model import NucleusModel

    work, out, ids, _ = batch_run
    images = pd.read_csv(out / "images.csv", dtype={"image_id": str}).set_index("image_id")
    assert set(images["backend"]) == {"openvino"} and set(images["precision"]) == {"float32"}
    assert "backend openvino float32" in (work / "logs" / "segment_images" / "plate" /
                                          "chunk001.log").read_text()
    tensorflow = NucleusModel.load(work / "results" / "model", Tiling(128, 32, 2),
                                   backend=BackendChoice("tensorflow"))
    for image_id in ids:
        result = tensorflow.segment(tensorflow.normalize(
            read_batch_image(batch_folder[0] / f"{image_id}.png", 1).image))
        maps = tifffile.imread(next((out / "probabilities").glob(f"*/{image_id}.tif")))
        np.testing.assert_allclose(np.moveaxis(maps, 0, -1), result.maps, atol=1e-3)
        assert result.labels.max() > 0
        np.testing.assert_array_equal(
            tifffile.imread(work / images.loc[image_id, "labels_file"]), result.labels)


def test_rerun_has_nothing_to_do_and_report_builds(batch_run, batch_folder):
    work, _, _, _ = batch_run
    config = _config(batch_folder[0], on_bad_image="skip")
    dry = run_snakemake(work, config, "--dry-run")
    assert "Nothing to be done" in dry.stdout + dry.stderr
    run_snakemake(work, config, "--report", "report.html")
    html = (work / "report.html").read_text(errors="replace")
    assert "Batch plate" in html and "montage.png" in html


def test_bad_files_stop_the_batch_by_default_all_named_in_one_run(tmp_path, batch_run,
                                                                  batch_folder):
    """on_bad_image: fail, with the model trained elsewhere (segment.model): nothing trains,
    and both bad files of the batch are named in one run, though they are in different chunks."""
    work, _, _, _ = batch_run
    folder = tmp_path / "plate"
    folder.mkdir()
    for path in batch_folder[0].iterdir():
        (folder / path.name).symlink_to(path.resolve() if path.is_symlink() else path)
    (folder / "notes.png").write_text("not an image")
    config = _config(folder, model=str(work / "results" / "model"))
    result = run_snakemake(tmp_path / "work", config, check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "2 of 6 files cannot be used" in output
    assert "broken.tif" in output and "notes.png" in output
    assert "segment.on_bad_image: skip" in output
    assert "train_model" not in output
    assert not (tmp_path / "work" / "results" / "batches" / "plate" / "nuclei.csv").exists()


def test_adding_an_image_reruns_one_segmentation_job(tmp_path, batch_run):
    """Five images in chunks of one; an image that sorts first is added: only its own chunk
    is segmented and measured, the others' outputs stay as they were."""
    import imageio.v3 as iio

    work, _, _, _ = batch_run
    folder = tmp_path / "batch"
    folder.mkdir()
    for k in range(5):
        iio.imwrite(folder / f"f{k}.png", make_nuclei((96, 96), n_nuclei=5, seed=k).image)
    config = {"batches": {"b": str(folder)},
              "segment": {"model": str(work / "results" / "model"), "images_per_chunk": 1,
                          "tile_size": 128}}
    run_snakemake(tmp_path / "work", config)
    out = tmp_path / "work" / "results" / "batches" / "b"
    before = {p: p.stat().st_mtime_ns for p in (out / "segmented").glob("*.csv")}
    assert len(before) == 10  # five chunks: a table and confidences each

    iio.imwrite(folder / "a.png", make_nuclei((96, 96), n_nuclei=5, seed=9).image)
    plan = run_snakemake(tmp_path / "work", config, "--dry-run").stdout
    counts = {}  # the job stats table: "<rule> <count>"
    for line in plan.splitlines():
        words = line.split()
        if (len(words) == 2 and words[1].isdigit() and words[0] != "total"
                and not words[0].endswith(":")):  # not a job's "jobid: 3" or "threads: 2"
            counts[words[0]] = words[1]
    assert counts == {"check_images": "1", "segment_images": "1", "measure_nuclei": "1",
                      "report_batch": "1", "all": "1"}
    run_snakemake(tmp_path / "work", config)
    assert {p: p.stat().st_mtime_ns for p in before} == before
    assert len(pd.read_csv(out / "images.csv")) == 6


def test_a_failed_job_leaves_no_empty_benchmark_folder(tmp_path, batch_run):
    import shutil

    work, _, _, _ = batch_run
    model = tmp_path / "model"
    shutil.copytree(work / "results" / "model", model)
    (model / "model.keras").write_bytes(b"not a keras file")  # fails when segment_images loads it
    folder = tmp_path / "batch"
    folder.mkdir()
    _write_two_channel_tiff(folder / "a.ome.tif")
    config = {"batches": {"b": str(folder)}, "segment": {"model": str(model), "nuclear_channel": 1}}
    result = run_snakemake(tmp_path / "work", config, check=False)
    assert result.returncode != 0 and "segment_images" in result.stdout + result.stderr
    benchmarks = tmp_path / "work" / "results" / "benchmarks"
    assert not benchmarks.exists() or not [p for p in benchmarks.rglob("*") if p.is_dir()
                                           and not any(p.iterdir())]


def test_a_model_folder_from_elsewhere_segments_without_training(tmp_path, batch_run):
    work, _, _, _ = batch_run
    folder = tmp_path / "batch"
    folder.mkdir()
    _write_two_channel_tiff(folder / "a.ome.tif")
    config = {"batches": {"b": str(folder)},
              "segment": {"model": str(work / "results" / "model"), "nuclear_channel": 1,
                          "tile_size": 128}}
    result = run_snakemake(tmp_path / "work", config)
    assert "train_model" not in result.stdout + result.stderr
    assert len(pd.read_csv(tmp_path / "work" / "results" / "batches" / "b" / "images.csv")) == 1


@pytest.mark.parametrize("problem, named", [
    ("missing", "does not exist"),
    ("no_thresholds", "lacks thresholds.json"),
])
def test_a_bad_model_folder_is_refused_before_any_job(tmp_path, batch_run, problem, named):
    import shutil

    work, _, _, _ = batch_run
    model = tmp_path / "model"
    if problem == "no_thresholds":
        shutil.copytree(work / "results" / "model", model)
        (model / "thresholds.json").unlink()
    folder = tmp_path / "batch"
    folder.mkdir()
    _write_two_channel_tiff(folder / "a.ome.tif")
    config = {"batches": {"b": str(folder)}, "segment": {"model": str(model)}}
    result = run_snakemake(tmp_path / "work", config, "--dry-run", check=False)
    assert result.returncode != 0
    assert named in result.stdout + result.stderr and str(model) in result.stdout + result.stderr


def test_a_batch_folder_that_does_not_exist_is_named(tmp_path):
    config = {"batches": {"b": str(tmp_path / "nowhere")}}
    result = run_snakemake(tmp_path / "work", config, "--dry-run", check=False)
    assert result.returncode != 0 and "nowhere does not exist" in result.stdout + result.stderr


def test_folders_in_resources_batches_are_batches(tmp_path):
    drop = tmp_path / "resources" / "batches" / "plate7"
    drop.mkdir(parents=True)
    (drop / "x.png").write_bytes(b"")
    (drop / ".DS_Store").write_bytes(b"")
    from nucleiseg.batches import declared_batches

    assert declared_batches({}, tmp_path) == {"plate7": "resources/batches/plate7"}
    assert [p.name for p in find_batch_files("resources/batches/plate7", tmp_path)] == ["x.png"]


def test_a_name_declared_twice_for_two_places_is_refused(tmp_path):
    from nucleiseg.batches import declared_batches
    from nucleiseg.errors import ConfigError

    (tmp_path / "resources" / "batches" / "plate7").mkdir(parents=True)
    assert declared_batches({"plate7": "resources/batches/plate7"}, tmp_path) == {
        "plate7": "resources/batches/plate7"}
    with pytest.raises(ConfigError, match="plate7.*both"):
        declared_batches({"plate7": "/elsewhere"}, tmp_path)
