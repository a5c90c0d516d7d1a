"""nucleiseg used from another workflow: real `snakemake` runs of an outer Snakefile that imports
this one as a Snakemake `module` with a config of its own, by local path (the demo, shortened,
then its report) and by github(...) (from a clone placed in Snakemake's git cache: no network)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import REPO, SNAKEMAKE, TINY_MODEL
from test_reproducible import _demo_config

pytestmark = pytest.mark.slow

# The outer workflow, as the README shows it: its own config file (nucleiseg's settings under
# `nucleiseg:`), every rule of the module renamed nucleiseg_*, a rule of its own on the module's
# tables, and the module's end-of-run message called from its own handler.
OUTER_SNAKEFILE = '''\
configfile: "config/config.yaml"


module nucleiseg:
    snakefile:
        {snakefile}
    config:
        config["nucleiseg"]


use rule * from nucleiseg as nucleiseg_*


rule count_nuclei:
    input:
        nuclei=rules.nucleiseg_report_batch.output.nuclei,
        images=rules.nucleiseg_report_batch.output.images,
    output:
        "counts/{{batch}}.csv",
    run:
        import pandas as pd

        nuclei, images = pd.read_csv(input.nuclei), pd.read_csv(input.images)
        pd.DataFrame({{"images": [len(images)], "nuclei": [len(nuclei)]}}).to_csv(
            output[0], index=False
        )


rule all:
    default_target: True
    input:
        rules.nucleiseg_all.input,
        "counts/demo.csv",


onsuccess:
    nucleiseg.onsuccess()
    print("outer workflow done", file=sys.stderr)


onerror:
    nucleiseg.onerror()
    print("outer workflow failed", file=sys.stderr)
'''
GIT_TAG = "v0.1.0"
GIT_REPO = "someone/nucleiseg"  # never contacted: the clone is already in the cache


def _module_config(odd_batch: Path) -> dict:
    """The demo (config/demo.yaml), shortened: a tiny network trained for a few steps. Plus a
    batch of one unreadable file, skipped, which the module's end-of-run message names."""
    config = _demo_config()
    for section, values in TINY_MODEL.items():
        config.setdefault(section, {}).update(values)
    config["batches"]["odd"] = str(odd_batch)
    config.setdefault("segment", {})["on_bad_image"] = "skip"
    return config


def _outer_workflow(workdir: Path, snakefile: str) -> Path:
    odd = workdir / "odd"
    odd.mkdir(parents=True)
    (odd / "notes.png").write_text("not an image")
    (workdir / "config").mkdir()
    (workdir / "config" / "config.yaml").write_text(
        yaml.safe_dump({"nucleiseg": _module_config(odd)}))
    (workdir / "Snakefile").write_text(OUTER_SNAKEFILE.format(snakefile=snakefile))
    return workdir


def _run(workdir: Path, *args: str, env: dict | None = None,
         check: bool = True) -> subprocess.CompletedProcess:
    """A real `snakemake` run of the outer workflow (its Snakefile and config found in
    `workdir`, as a user would run it)."""
    command = [str(SNAKEMAKE), "--cores", "2", *args]
    env = {**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})}
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True,
                            timeout=900, env=env)
    if check:
        assert result.returncode == 0, f"snakemake failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def outer_run(tmp_path_factory):
    workdir = _outer_workflow(tmp_path_factory.mktemp("outer"), f'"{REPO / "Snakefile"}"')
    start = time.monotonic()
    result = _run(workdir)
    return workdir, result, time.monotonic() - start


def test_the_demo_runs_through_the_module_into_the_outer_working_folder(outer_run):
    workdir, _, seconds = outer_run
    print(f"outer workflow with the module: {seconds:.0f} s")
    batch = workdir / "results" / "batches" / "demo"
    images = pd.read_csv(batch / "images.csv")
    assert sorted(images["image_id"]) == [
        "fluorescence_8bit", "no_nuclei", "stained_rgb", "two_channel_16bit"]
    nuclei = pd.read_csv(batch / "nuclei.csv")
    assert {"image_id", "label", "AreaShape_Area"} <= set(nuclei.columns)
    summary = pd.read_csv(workdir / "results" / "evaluation" / "summary.csv")
    assert {"network", "classical"} <= set(summary["method"])
    # The outer workflow's own rule read the module's tables.
    counts = pd.read_csv(workdir / "counts" / "demo.csv")
    assert counts.to_dict("records") == [{"images": 4, "nuclei": len(nuclei)}]
    # What the module keeps from run to run lives in the outer working folder too.
    assert (batch / "chunks.csv").is_file()


def test_the_modules_end_of_run_message_reaches_the_outer_run(outer_run):
    workdir, result, _ = outer_run
    assert "batch odd: 1 of 1 files were skipped" in result.stderr
    assert "outer workflow done" in result.stderr
    assert pd.read_csv(workdir / "results" / "batches" / "odd" / "skipped.csv")["file"].str.endswith(
        "notes.png").all()


def test_rerun_has_nothing_to_do_and_the_report_finds_the_captions(outer_run):
    workdir, _, _ = outer_run
    dry = _run(workdir, "--dry-run")
    assert "Nothing to be done" in dry.stdout + dry.stderr
    _run(workdir, "--report", "report.html")
    html = (workdir / "report.html").read_text(errors="replace")
    assert "Batch demo" in html and "montage.png" in html


def test_the_modules_error_handler_runs_when_the_outer_workflow_fails(tmp_path):
    """nucleiseg.onerror() from the outer handler: it removes the empty benchmark folders that
    failed jobs leave."""
    workdir = _outer_workflow(tmp_path, f'"{REPO / "Snakefile"}"')
    with open(workdir / "Snakefile", "a") as snakefile:
        snakefile.write('\n\nrule fail_on_purpose:\n    output:\n        "failed.txt",\n'
                        '    shell:\n        "exit 1"\n')
    empty = workdir / "results" / "benchmarks" / "segment_images" / "demo"
    empty.mkdir(parents=True)
    result = _run(workdir, "failed.txt", check=False)
    assert result.returncode != 0
    assert "outer workflow failed" in result.stderr
    assert not (workdir / "results" / "benchmarks").exists()


def _seed_git_cache(cache_home: Path) -> None:
    """This checkout's workflow files, committed and tagged in a bare clone where Snakemake
    keeps its clone of GIT_REPO: github(...) then reads it without fetching."""
    source = cache_home / "source"
    source.mkdir(parents=True)
    shutil.copy(REPO / "Snakefile", source / "Snakefile")
    for folder in ("workflow", "envs"):
        shutil.copytree(REPO / folder, source / folder,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.org"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "snapshot"], ["tag", GIT_TAG]):
        subprocess.run([*git, *args], cwd=source, check=True)
    clone = (cache_home / "snakemake" / "snakemake" / "source-cache" / "snakemake-git-cache"
             / "github.com" / GIT_REPO)
    subprocess.run(["git", "clone", "-q", "--bare", str(source), str(clone)], check=True)


def test_github_module_imports_the_package_at_parse_time_and_in_the_scripts(tmp_path):
    """The README's github(...) form, offline: the module is read from Snakemake's clone, the
    package copied into its source cache, and the scripts of real jobs import it from there."""
    _seed_git_cache(tmp_path / "cache")
    snakefile = f'github("{GIT_REPO}", path="Snakefile", tag="{GIT_TAG}")'
    workdir = _outer_workflow(tmp_path / "outer", snakefile)
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    dry = _run(workdir, "--dry-run", env=env)
    assert "nucleiseg_train_model" in dry.stdout and "count_nuclei" in dry.stdout
    _run(workdir, "results/index.csv", "resources/synthetic_batch/no_nuclei.tif", env=env)
    index = pd.read_csv(workdir / "results" / "index.csv")
    assert len(index) == 6 and set(index["split"]) == {"train", "val", "test"}
    assert (workdir / "resources" / "synthetic_batch" / "no_nuclei.tif").is_file()
