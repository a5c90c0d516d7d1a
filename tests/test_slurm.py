"""The cluster profile (profiles/slurm): a fast dry run and lint with it, then (marker `slurm`)
the demo end to end with `--executor slurm` on a real one-node SLURM started for the test
(tests/slurm_cluster.py; CI installs the packages with .ci/install-slurm).

Each run works in a copy of the workflow (tracked and untracked, non-ignored files) in a
temporary folder, with its own .snakemake: the working tree is shared with other work."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import TINY_MODEL
from slurm_cluster import SlurmCluster, client_env, unavailable_reason

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
PROFILE = ["--workflow-profile", "profiles/slurm", "--configfile", "config/demo.yaml"]
RUN_TIMEOUT_S = 600  # the whole SLURM run: about 3 minutes on 2 cores
# Test-cluster settings, not the profile's. No accounting here, so poll with squeue (the
# cluster's MinJobAge is an hour, well over the 3 x init seconds the plugin requires, else it
# silently goes back to sacct and never sees a job end). The plugin waits init seconds after a
# job ends, then 10 s longer each round: a short init saves ~10 s per stage of this 10-stage
# chain. Keep every job's log. Cap threads at this machine's cores (rules ask for 4; a 2-core
# node never has 4, and EnforcePartLimits=ALL makes sbatch refuse such a job).
SLURM_TEST_OPTIONS = [
    "--slurm-status-command", "squeue",
    "--slurm-init-seconds-before-status-checks", "1",
    "--seconds-between-status-checks", "2",
    "--slurm-keep-successful-logs",
    "--max-threads", str(os.cpu_count() or 1),
]
# Where `scontrol --details show job` shows a gres request (Tres*, CpusPerTres) or allocation.
GPU_FIELDS = ("TresPerJob", "TresPerNode", "TresPerTask", "TresPerSocket", "CpusPerTres",
              "JOB_GRES")


def export_workflow(dest: Path) -> Path:
    """Copy the workflow as it stands in the working tree: tracked files plus untracked ones
    git does not ignore (no results/, resources/, .snakemake/, .venv/)."""
    dest.mkdir(parents=True)
    listing = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True, text=True,
    )
    if listing.returncode == 0:
        for name in filter(None, listing.stdout.split("\0")):
            source = REPO / name
            if source.is_file():  # skips files deleted in the working tree
                (dest / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, dest / name)
    else:  # not a git checkout
        shutil.copytree(REPO, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns(
            ".git", ".venv", ".snakemake", "results", "resources", "logs", "__pycache__",
            ".*cache"))
    return dest


def snakemake_env() -> dict[str, str]:
    """This environment (which sbatch --export=ALL hands on to the jobs) with the venv first on
    PATH, and no SLURM_* variables from an enclosing job."""
    env = client_env()
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONWARNINGS"] = "ignore"
    return env


def run_snakemake(work: Path, args: list[str], timeout: int, log: Path | None = None):
    """`timeout -k` around snakemake (it sends TERM, then KILL, to the whole process group), and
    a Python-side kill of the group should even that hang. Returns (returncode, output)."""
    command = ["timeout", "-k", "20", str(timeout), str(SNAKEMAKE), *args]
    log = log or work / "snakemake.out"
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, cwd=work, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=snakemake_env(),
                                start_new_session=True)
        try:
            returncode = proc.wait(timeout=timeout + 40)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            returncode = proc.wait()
    return returncode, log.read_text(errors="replace")


@dataclass
class PlannedJob:
    rule: str
    local: bool
    outputs: list[str]
    resources: dict[str, str]


def local_rules() -> set[str]:
    """Rules that declare `localrule: True` in workflow/rules/*.smk."""
    found = set()
    for smk in (REPO / "workflow" / "rules").glob("*.smk"):
        for block in re.split(r"\n(?=rule \w+:)", smk.read_text()):
            head = re.match(r"rule (\w+):", block)
            if head and re.search(r"^    localrule: True$", block, re.M):
                found.add(head.group(1))
    return found


def plan(dry_run_output: str) -> list[PlannedJob]:
    """The jobs of a `snakemake -n` listing: rule, local or not, outputs, resources."""
    jobs = []
    # jobs of a group job (`group:`) are listed indented under "Group job <name>"
    for block in re.split(r"\n(?=\s*(?:local)?rule \w+:)", dry_run_output):
        head = re.match(r"\s*(local)?rule (\w+):", block)
        if not head:
            continue
        outputs = re.search(r"^\s+output: (.*)$", block, re.M)
        resources = re.search(r"^\s+resources: (.*)$", block, re.M)
        jobs.append(PlannedJob(
            rule=head.group(2),
            # a dry run prints `localrule` only for rules listed in `localrules:`, not for a
            # rule's own `localrule: True`, so read those from the rule files
            local=bool(head.group(1)) or head.group(2) in local_rules(),
            outputs=outputs.group(1).split(", ") if outputs else [],
            resources=dict(item.split("=", 1) for item in resources.group(1).split(", "))
            if resources else {},
        ))
    return jobs


def workflow_rules() -> set[str]:
    return {name for smk in (REPO / "workflow" / "rules").glob("*.smk")
            for name in re.findall(r"^rule (\w+):", smk.read_text(), re.M)}


def rule_of(slurm_job: dict[str, str]) -> str:
    """The rule a SLURM job ran: the plugin's comment is rule_<rule>[_wildcards_<values>], or
    for a group job (`group:` bundling jobs of one rule) rule_<group>_<rule>[...]."""
    match = re.fullmatch(r"rule_(\w+?)(?:_wildcards_.*)?", slurm_job.get("Comment", ""))
    assert match, f"SLURM job {slurm_job.get('JobId')} has no rule comment: {slurm_job}"
    name = match.group(1)
    rules = workflow_rules()
    if name not in rules:
        grouped = [rule for rule in rules if name.endswith(f"_{rule}")]
        assert len(grouped) == 1, f"SLURM job comment {name!r} names no single rule"
        return grouped[0]
    return name


def asks_gpu(slurm_job: dict[str, str]) -> bool:
    return any("gpu" in slurm_job.get(field, "") for field in GPU_FIELDS)


# -- fast: no cluster needed ------------------------------------------------------------------


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    work = export_workflow(tmp_path_factory.mktemp("slurm_dry") / "work")
    returncode, output = run_snakemake(work, ["--dry-run", *PROFILE], timeout=120)
    assert returncode == 0, output
    return output


def test_slurm_profile_dry_run_plans_every_job_with_its_resources(dry_run):
    assert "Using workflow specific profile profiles/slurm" in dry_run
    jobs = {job.rule: job for job in plan(dry_run)}
    assert {"prepare_dataset", "split_dataset", "tile_images", "train_model",
            "optimize_thresholds", "evaluate_model"} <= set(jobs)
    train = jobs["train_model"].resources
    assert train["gpu"] == "1" and train["runtime"] == "1440" and train["mem_mb"] == "12000"
    # The profile's defaults reach a rule that sets nothing itself.
    split = jobs["split_dataset"].resources
    assert split["runtime"] == "60" and split["mem_mb"] == "2000" and "gpu" not in split


def test_slurm_profile_lints_clean(tmp_path):
    work = export_workflow(tmp_path / "work")
    returncode, output = run_snakemake(work, ["--lint", *PROFILE], timeout=120)
    assert returncode == 0, output
    assert "Congratulations, your workflow is in a good condition!" in output, output


# -- slow: a real SLURM -----------------------------------------------------------------------


@dataclass
class SlurmRun:
    work: Path
    planned: list[PlannedJob]
    returncode: int
    seconds: float
    report: str                         # what to show when the run failed
    jobs: list[dict[str, str]]          # `scontrol --details show job` of each job, after the run
    batch_scripts: dict[str, str]       # job id -> the script sbatch queued

    def require_success(self):
        if self.returncode != 0:
            pytest.fail(f"the SLURM run failed ({self.returncode}); see "
                        "test_demo_finishes_on_slurm", pytrace=False)


@pytest.fixture(scope="module")
def slurm_run(tmp_path_factory) -> SlurmRun:
    """The demo on a fresh one-node SLURM, its daemons stopped again before the tests look.
    Config: config/demo.yaml with the tests' tiny network on top (conftest.TINY_MODEL), so that
    training takes seconds; every stage still runs."""
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("slurm")
    work = export_workflow(root / "work")
    (work / "tiny_model.yaml").write_text(yaml.safe_dump(TINY_MODEL))
    configs = [*PROFILE, "tiny_model.yaml"]
    returncode, planned_output = run_snakemake(work, ["--dry-run", *configs], timeout=120,
                                               log=root / "dry_run.out")
    assert returncode == 0, planned_output
    # A short path: the munge socket's must fit in 108 bytes.
    cluster_root = Path(tempfile.mkdtemp(prefix="nucleiseg-slurm-"))
    started = time.monotonic()
    with SlurmCluster(cluster_root) as cluster:
        returncode, output = run_snakemake(
            work, [*configs, "--verbose", *SLURM_TEST_OPTIONS], timeout=RUN_TIMEOUT_S,
            log=root / "snakemake_slurm.out")
        seconds = time.monotonic() - started
        jobs = cluster.jobs()
        scripts = {job["JobId"]: cluster.batch_script(job["JobId"]) for job in jobs}
        daemon_logs = "\n".join(cluster.log_tail(name) for name in ("slurmctld", "slurmd"))
    report = ""
    if returncode != 0:
        slurm_logs = "\n".join(
            f"--- {path.relative_to(work)}\n{path.read_text(errors='replace')[-3000:]}"
            for path in sorted((work / ".snakemake" / "slurm_logs").rglob("*.log")))
        report = (f"snakemake --executor slurm failed ({returncode}) after {seconds:.0f} s "
                  f"(work folder {work}, cluster {cluster_root})\n--- snakemake output (end)\n"
                  f"{output[-6000:]}\n{slurm_logs[-8000:]}\n{daemon_logs}\n"
                  + "\n".join(map(str, jobs)))
    else:
        shutil.rmtree(cluster_root, ignore_errors=True)
    print(f"SLURM run: {seconds:.0f} s, {len(jobs)} SLURM jobs")
    return SlurmRun(work, plan(planned_output), returncode, seconds, report, jobs, scripts)


@pytest.mark.slurm
@pytest.mark.slow
def test_demo_finishes_on_slurm(slurm_run):
    assert slurm_run.returncode == 0, slurm_run.report


@pytest.mark.slurm
@pytest.mark.slow
def test_every_output_is_written(slurm_run):
    slurm_run.require_success()
    work = slurm_run.work
    expected = [out for job in slurm_run.planned for out in job.outputs]
    assert expected
    missing = [out for out in expected if not (work / out).exists()]
    assert not missing, missing
    for name in ("model.keras", "config.json", "thresholds.json", "training_curves.png"):
        assert (work / "results" / "model" / name).stat().st_size > 0
    summary = pd.read_csv(work / "results" / "evaluation" / "summary.csv")
    assert set(summary["method"]) == {"network", "classical"}
    demo = yaml.safe_load((work / "config" / "demo.yaml").read_text())
    index = pd.read_csv(work / "results" / "index.csv", dtype={"id": str})
    assert len(index) == demo["dataset"]["synthetic"]["n_images"]
    # Nothing left to do: every output is there and up to date.
    returncode, output = run_snakemake(work, ["--dry-run", *PROFILE, "tiny_model.yaml"],
                                       timeout=120, log=work / "dry_run_after.out")
    assert returncode == 0 and "Nothing to be done" in output, output


@pytest.mark.slurm
@pytest.mark.slow
def test_each_remote_job_ran_as_one_completed_slurm_job(slurm_run):
    slurm_run.require_success()
    remote = sorted(job.rule for job in slurm_run.planned if not job.local and job.rule != "all")
    ran = sorted(rule_of(job) for job in slurm_run.jobs)
    assert ran == remote
    states = {job["JobId"]: (rule_of(job), job["JobState"], job["ExitCode"])
              for job in slurm_run.jobs}
    assert all(state == "COMPLETED" and code == "0:0"
               for _, state, code in states.values()), states


@pytest.mark.slurm
@pytest.mark.slow
def test_measurement_jobs_go_to_slurm_as_a_group(slurm_run):
    """profiles/slurm bundles the `measure` group (group-components); the others go alone."""
    comments = {rule_of(job): job["Comment"] for job in slurm_run.jobs}
    assert comments["measure_nuclei"].startswith("rule_measure_measure_nuclei"), comments
    assert comments["segment_images"].startswith("rule_segment_images"), comments


@pytest.mark.slurm
@pytest.mark.slow
def test_training_job_asked_for_one_gpu_and_cpu_jobs_for_none(slurm_run):
    by_rule = {}
    for job in slurm_run.jobs:
        by_rule.setdefault(rule_of(job), []).append(job)
    assert "train_model" in by_rule, f"no train_model job reached SLURM: {sorted(by_rule)}"
    (train,) = by_rule["train_model"]
    assert train.get("TresPerJob") == "gres:gpu:1", train  # requested: sbatch --gpus=1
    assert train.get("JOB_GRES") == "gpu:1", train         # allocated by slurmctld
    assert train["TimeLimit"] == "1-00:00:00" and train["MinMemoryNode"] == "12000M", train
    gpu_rules = {job.rule for job in slurm_run.planned if job.resources.get("gpu", "0") != "0"}
    assert "train_model" in gpu_rules and "split_dataset" not in gpu_rules
    for rule, jobs in by_rule.items():
        for job in jobs:
            assert asks_gpu(job) == (rule in gpu_rules), (rule, {f: job.get(f) for f in GPU_FIELDS})
    # The profile's defaults on a rule that sets no resources of its own.
    (split,) = by_rule["split_dataset"]
    assert split["TimeLimit"] == "01:00:00" and split["MinMemoryNode"] == "2000M", split


@pytest.mark.slurm
@pytest.mark.slow
def test_jobs_run_this_virtual_environment(slurm_run):
    assert slurm_run.jobs
    python = str(Path(sys.executable))
    for job in slurm_run.jobs:
        script = slurm_run.batch_scripts[job["JobId"]]
        assert f"{python} -m snakemake" in script, (rule_of(job), script)


# -- slow: a job that fails on the cluster ----------------------------------------------------

ACTIVE_STATES = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED",
                 "RESIZING", "STOPPED", "SIGNALING", "STAGE_OUT"}


@pytest.mark.slurm
@pytest.mark.slow
def test_a_job_that_fails_on_the_cluster_is_reported_with_its_logs(slurm_run, tmp_path):
    """A batch of two images, one job each: a corrupt file and a good one, segmented on SLURM
    with the model the demo run trained (segment.model: nothing trains) and the default
    segment.on_bad_image: fail. Snakemake must stop with an error naming the failing rule, its
    log and its SLURM log; nucleiseg's one-line message must reach the user; and no job may be
    left queued or running on the cluster."""
    import tifffile
    from nucleiseg.synthetic import make_nuclei

    slurm_run.require_success()
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    plate = tmp_path / "plate"
    plate.mkdir()
    (plate / "broken.tif").write_bytes(b"II*\x00" + bytes(range(256)) * 4)
    tifffile.imwrite(plate / "good.tif", make_nuclei((128, 128), n_nuclei=8, seed=2).image)
    work = export_workflow(tmp_path / "work")
    config = {"batches": {"plate": str(plate)},
              "segment": {"model": str(slurm_run.work / "results" / "model"),
                          "images_per_chunk": 1, "tile_size": 256}}
    (work / "broken_batch.yaml").write_text(yaml.safe_dump(config))
    cluster_root = Path(tempfile.mkdtemp(prefix="nucleiseg-slurm-"))
    with SlurmCluster(cluster_root) as cluster:
        returncode, output = run_snakemake(
            work, ["--workflow-profile", "profiles/slurm", "--configfile", "broken_batch.yaml",
                   *SLURM_TEST_OPTIONS], timeout=300, log=tmp_path / "snakemake_slurm.out")
        jobs = cluster.jobs()
        # squeue lists the jobs still pending or running (finished ones need --states=all).
        queued = subprocess.run(["squeue", "--noheader", "--format=%i %T %k"],
                                capture_output=True, text=True, env=client_env(), check=False)
    shutil.rmtree(cluster_root, ignore_errors=True)
    by_comment = {job.get("Comment"): job for job in jobs}
    report = f"{output[-6000:]}\n" + "\n".join(map(str, jobs))

    # Snakemake failed, on the broken image's job (chunk001: files are taken in name order).
    assert returncode not in (0, 124, 137), report
    assert "Error in rule segment_images" in output, report
    assert "logs/segment_images/plate/chunk001.log" in output, report
    assert "train_model" not in output  # segment.model: nothing trains
    # The SLURM job failed, and Snakemake's error names its log (the plugin's aux log).
    failed = by_comment.get("rule_segment_images_wildcards_plate_chunk001")
    assert failed and failed["JobState"] == "FAILED" and failed["ExitCode"] != "0:0", report
    slurm_log = (f".snakemake/slurm_logs/rule_segment_images/plate_chunk001/"
                 f"{failed['JobId']}.log")
    assert slurm_log in output, report
    # nucleiseg's one-line error (the file, what is wrong, what to do) reaches the user: the
    # profile's show-failed-logs prints the rule log and the SLURM log, which holds the job's
    # screen output.
    message = re.compile(r"^nucleiseg error: .*broken\.tif: .*segment\.on_bad_image: skip",
                         re.MULTILINE)
    assert message.search(output), report
    assert message.search((work / slurm_log).read_text(errors="replace")), slurm_log
    rule_log = (work / "logs" / "segment_images" / "plate" / "chunk001.log").read_text()
    assert re.search(r" ERROR nucleiseg: .*broken\.tif: ", rule_log), rule_log
    # The good image's job completed (and its measurement, submitted before the failure was
    # seen); nothing waited on the failed job, and nothing is left on the cluster.
    good = by_comment.get("rule_segment_images_wildcards_plate_chunk002")
    assert good and good["JobState"] == "COMPLETED", report
    ran = {job["Comment"] for job in jobs}
    assert not {c for c in ran if "chunk001" in c and "segment_images" not in c}, report
    assert "report_batch" not in {rule_of(job) for job in jobs}, report
    assert not [job for job in jobs if job["JobState"] in ACTIVE_STATES], report
    assert queued.returncode == 0 and queued.stdout.strip() == "", queued
    assert not (work / "results" / "batches" / "plate" / "nuclei.csv").exists()
