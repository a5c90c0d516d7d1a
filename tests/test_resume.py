"""Interrupted runs resume: a real `snakemake` run of the demo is killed midway, then rerun the
way a user would (plain `snakemake`, the workflow's default profile applied by itself), and the
rerun must finish every target while recomputing nothing that had finished.

Two interruptions, chained in one test so that the workflow runs about once in all (two
parametrized cases would train twice; this machine has two cores):
- SIGTERM to the whole process group, while train_model is past its first phase. That is what a
  batch system's time limit, `timeout` or a service stop sends: Snakemake stops gracefully (it
  removes the killed job's outputs and its lock), and the training job dies with it. The rerun
  starts at once and the training resumes from its checkpoint (results/model_state/).
- SIGKILL to the whole process group, while segment_images runs: a machine failure or the OOM
  killer. Nothing cleans up, so Snakemake's lock stays: a plain rerun refuses to start and
  names `--unlock` (Snakemake cannot tell a stale lock from a live run); after `snakemake
  --unlock` the rerun redoes the killed job. One of that job's outputs is left half-written on
  purpose (the window between two of its files), so the rerun only works because the default
  profile (profiles/default/config.yaml) sets rerun-incomplete: no test passes
  --rerun-incomplete, each checks that the profile was read.

Each run's own output says which jobs finished ("Finished jobid: N (Rule: r)") and what they
wrote (the job's block: output, log, benchmark); those files are fingerprinted (mtime and
SHA-256) after the kill and must be the same at the end.
"""

from __future__ import annotations

import collections
import hashlib
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import REPO, SNAKEMAKE, TINY_MODEL

pytestmark = pytest.mark.slow

DEMO = REPO / "config" / "demo.yaml"
TRAINING_STATE = Path("results/model_state")  # train_model's checkpoints (README: Training)
STEP_TIMEOUT_S = 240  # one run, or waiting for a point in one: a minute or two on 2 cores


# -- running and killing snakemake -------------------------------------------------------------


def snakemake_command(work: Path, *args: str) -> list[str]:
    """The demo with the tests' tiny network; no --rerun-incomplete: the profile's is used."""
    return [str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "--directory", str(work),
            "--configfile", str(DEMO), str(work / "test_config.yaml"), "--cores", "2", *args]


class Run:
    """One `snakemake` in the background, in its own process group (session), output to a file."""

    def __init__(self, work: Path, name: str, *args: str):
        self.work, self.name = work, name
        self.log = work / f"{name}.out"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                snakemake_command(work, *args), cwd=work, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONWARNINGS": "ignore"},
                start_new_session=True)

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_until(self, condition, what: str, timeout: float = STEP_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self.proc.poll() is not None:
                pytest.fail(f"{self.name} ended ({self.proc.returncode}) before {what}:\n"
                            f"{self.output[-6000:]}", pytrace=False)
            if time.monotonic() > deadline:
                self.kill(signal.SIGKILL)
                pytest.fail(f"{self.name}: no {what} after {timeout:.0f} s:\n{self.output[-6000:]}",
                            pytrace=False)
            time.sleep(0.05)

    def kill(self, sig: int, timeout: float = 60) -> int:
        """Signal the whole process group; return once every process of it is gone."""
        os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            pytest.fail(f"{self.name} still ran {timeout:.0f} s after signal {sig}:\n"
                        f"{self.output[-6000:]}", pytrace=False)
        left = wait_for_no_process(self.proc.pid, self.work)
        assert not left, f"still running after {self.name} was killed: {left}"
        return self.proc.returncode

    def finish(self, timeout: float = STEP_TIMEOUT_S) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill(signal.SIGKILL)
            pytest.fail(f"{self.name} took over {timeout:.0f} s:\n{self.output[-6000:]}",
                        pytrace=False)


def live_processes(pgid: int, work: Path) -> list[str]:
    """Processes (zombies aside) in process group `pgid`, or whose command line names `work`
    (a job that left the group would still be writing into the folder)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # state, ppid, pgrp, ...
        if fields[0] != "Z" and (int(fields[2]) == pgid or str(work) in cmdline):
            found.append(f"{entry.name} {cmdline[:200]}")
    return found


def wait_for_no_process(pgid: int, work: Path, timeout: float = 30) -> list[str]:
    deadline = time.monotonic() + timeout
    while (left := live_processes(pgid, work)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def run_to_end(work: Path, name: str, *args: str) -> tuple[int, str]:
    run = Run(work, name, *args)
    return run.finish(), run.output


# -- reading snakemake's output ----------------------------------------------------------------


def job_stats(output: str) -> collections.Counter:
    """The "Job stats" table a run prints before it starts: rule -> jobs planned."""
    match = re.search(r"^Job stats:\njob\s+count\n[- ]+\n((?:\w+\s+\d+\n)+)", output, re.MULTILINE)
    assert match, f"no Job stats table in:\n{output[-4000:]}"
    rows = (line.split() for line in match.group(1).splitlines())
    return collections.Counter({rule: int(count) for rule, count in rows if rule != "total"})


def job_blocks(output: str) -> dict[int, dict[str, object]]:
    """jobid -> {rule, output, log, benchmark, input} of every job a run started."""
    jobs = {}
    for match in re.finditer(r"^(?:local)?rule (\w+):\n((?:    .*\n)+)", output, re.MULTILINE):
        fields = dict(re.findall(r"^    (\w+): (.*)$", match.group(2), re.MULTILINE))
        jobs[int(fields["jobid"])] = {
            "rule": match.group(1),
            **{key: fields[key].split(", ") if fields.get(key) else []
               for key in ("input", "output", "log", "benchmark")},
        }
    return jobs


def finished_ids(output: str) -> set[int]:
    pattern = r"^Finished jobid: (\d+) \(Rule: \w+\)"
    return {int(n) for n in re.findall(pattern, output, re.MULTILINE)}


def started_and_finished(output: str) -> tuple[collections.Counter, collections.Counter]:
    jobs, done = job_blocks(output), finished_ids(output)
    started = collections.Counter(job["rule"] for job in jobs.values())
    finished = collections.Counter(jobs[n]["rule"] for n in done)
    return started, finished


def files_of_finished_jobs(output: str) -> list[str]:
    """Outputs, logs and benchmarks of the jobs a run finished (paths relative to the work
    folder): a rerun of any of those jobs would rewrite them."""
    jobs = job_blocks(output)
    return sorted({path for n in finished_ids(output)
                   for key in ("output", "log", "benchmark") for path in jobs[n][key]})


def assert_profile_used(output: str) -> None:
    line = next((line for line in output.splitlines() if "workflow specific profile" in line), "")
    assert "profiles/default" in line, (
        "the workflow's default profile (rerun-incomplete) was not applied:\n" + output[:2000])


# -- fingerprints --------------------------------------------------------------------------------


def fingerprint(work: Path, paths: list[str]) -> dict[str, tuple[int, str]]:
    """path -> (mtime in ns, SHA-256) of each file, and of each file inside each folder."""
    prints = {}
    for name in paths:
        path = work / name
        assert path.exists(), f"{name}: written by a finished job, gone after the kill"
        for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if file.is_file():
                prints[str(file.relative_to(work))] = (
                    file.stat().st_mtime_ns, hashlib.sha256(file.read_bytes()).hexdigest())
        if path.is_dir():  # a file added or removed inside changes the folder's mtime
            prints[name + "/"] = (path.stat().st_mtime_ns, "")
    return prints


def changed(work: Path, before: dict[str, tuple[int, str]]) -> list[str]:
    differ = []
    for name, (mtime, digest) in before.items():
        path = work / name.rstrip("/")
        if not path.exists():
            differ.append(f"{name}: removed")
        elif path.stat().st_mtime_ns != mtime:
            differ.append(f"{name}: modified (mtime)")
        elif digest and hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            differ.append(f"{name}: modified (content)")
    return differ


def leftovers(folder: Path) -> list[str]:
    """Half-written files: the package's temporary names (.<name>.XXXX.part, Keras's
    .partial.model.keras) and training checkpoints."""
    found = [p for p in folder.rglob("*")
             if p.name.endswith(".part") or p.name.startswith(".partial.")]
    found += [folder / TRAINING_STATE.name] if (folder / TRAINING_STATE.name).exists() else []
    return sorted(str(p) for p in found)


# -- the test ----------------------------------------------------------------------------------


def test_a_killed_run_resumes_and_recomputes_nothing_that_finished(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    # A frozen phase, whose checkpoint is the point to stop at.
    config = {**TINY_MODEL, "train": {**TINY_MODEL["train"], "epochs_frozen": 1}}
    (work / "test_config.yaml").write_text(yaml.safe_dump(config))

    # 1. SIGTERM while train_model is midway: its first phase done and checkpointed.
    first = Run(work, "run1")
    first.wait_until((work / TRAINING_STATE / "frozen.done").exists,
                     "training checkpoint (train_model midway)")
    returncode = first.kill(signal.SIGTERM)
    output1 = first.output
    assert returncode != 0, output1[-3000:]
    assert_profile_used(output1)
    planned1 = job_stats(output1)
    started1, finished1 = started_and_finished(output1)
    assert started1["train_model"] == 1 and finished1["train_model"] == 0, output1[-3000:]
    assert {"make_synthetic_dataset", "prepare_dataset", "split_dataset"} <= set(finished1)
    assert finished1["tile_images"] == 2
    kept1 = fingerprint(work, files_of_finished_jobs(output1))
    assert "results/index.csv" in kept1 and "results/tiles/train/images.npy" in kept1
    assert not (work / "results" / "model" / "model.keras").exists()

    # 2. A plain rerun starts at once (a graceful stop leaves no lock) and does only what is
    # left; SIGKILL it once segment_images runs (after train_model and optimize_thresholds;
    # evaluate_model may come before or after it).
    second = Run(work, "run2")
    second.wait_until((work / "logs" / "segment_images" / "demo" / "chunk001.log").exists,
                      "segment_images job")
    returncode = second.kill(signal.SIGKILL)
    output2 = second.output
    assert returncode == -signal.SIGKILL
    assert_profile_used(output2)
    planned2 = job_stats(output2)
    assert planned2 == planned1 - finished1, output2[:3000]
    started2, finished2 = started_and_finished(output2)
    assert not set(started2) & {"make_synthetic_dataset", "prepare_dataset", "split_dataset",
                                "tile_images"}, output2
    assert {"train_model", "optimize_thresholds"} <= set(finished2)
    assert started2["segment_images"] == 1 and finished2["segment_images"] == 0, output2[-3000:]
    training_log = (work / "logs" / "train_model.log").read_text(errors="replace")
    assert ("found checkpoints of an interrupted run with the same settings: resuming"
            in training_log), training_log
    assert "resuming: the frozen-encoder phase finished before" in training_log
    assert "epoch 1/" not in training_log  # the first phase was not trained again
    assert changed(work, kept1) == []
    kept2 = fingerprint(work, files_of_finished_jobs(output2))
    assert "results/model/model.keras" in kept2 and "results/model/thresholds.json" in kept2
    # Leave one output of the killed job half-written, as a kill between two of its files
    # would. Snakemake marked every output incomplete when the job started: without the
    # profile's rerun-incomplete the next run stops with IncompleteFilesException.
    half_written = work / "results" / "batches" / "demo" / "segmented" / "chunk001.csv"
    if not half_written.exists():
        half_written.write_text("image_id,n_nu")

    # 3. After a kill nothing removed Snakemake's lock: a plain rerun refuses, naming --unlock.
    returncode, output3 = run_to_end(work, "run3")
    assert returncode != 0 and "--unlock" in output3 and "cannot be locked" in output3, output3
    returncode, output = run_to_end(work, "unlock", "--unlock")
    assert returncode == 0, output

    # 4. The rerun after --unlock finishes: only the killed job and those after it run.
    returncode, output4 = run_to_end(work, "run4")
    assert returncode == 0, output4[-6000:]
    assert_profile_used(output4)
    planned4, (started4, finished4) = job_stats(output4), started_and_finished(output4)
    assert planned4 == planned2 - finished2, output4[:3000]
    assert started4 == finished4 == planned4, output4
    left = {"segment_images", "measure_nuclei", "report_batch", "all"}
    # evaluate_model, and write_model_card after it, may or may not have run before the kill.
    assert left <= set(planned4) <= left | {"evaluate_model", "write_model_card"}, planned4

    # Everything finished before a kill is as it was; every target is there.
    assert changed(work, kept1) == [] and changed(work, kept2) == []
    (all_job,) = [job for job in job_blocks(output4).values() if job["rule"] == "all"]
    targets = [*all_job["input"], "results/batches/demo/distributions.png"]
    assert {"results/evaluation/summary.csv", "results/batches/demo/nuclei.csv"} <= set(targets)
    assert [t for t in targets if not (work / t).is_file() or not (work / t).stat().st_size] == []
    table = pd.read_csv(half_written)
    assert "image_id" in table.columns and len(table) == 4, table  # the demo batch's 4 images
    assert len(pd.read_csv(work / "results" / "batches" / "demo" / "images.csv")) == 4
    assert leftovers(work / "results") == [] and leftovers(work / "resources") == []
    returncode, output = run_to_end(work, "dry_run", "--dry-run")
    assert returncode == 0 and "Nothing to be done" in output, output


def test_a_kill_during_a_write_leaves_no_temporary_file_behind(tmp_path):
    """SIGKILL while prepare_dataset writes its folders (into temporary .images.XXXX.part and
    .labels.XXXX.part beside them), then --unlock and a rerun of that stage.

    Known fault, reported as an expected failure until fixed: nucleiseg.io's atomic_path and
    atomic_dir never remove the temporaries a killed job left beside an output, and Snakemake
    does not know them (they are not outputs), so they stay for good: hidden copies of the
    prepared dataset on disk, one more per kill. Every other check here must pass."""
    work = tmp_path / "work"
    work.mkdir()
    config = {**TINY_MODEL, "dataset": {"synthetic": {"n_images": 24}}}
    (work / "test_config.yaml").write_text(yaml.safe_dump(config))
    target = "results/prepared/prepared.csv"
    prepared = work / "results" / "prepared"
    run = Run(work, "run1", target)
    run.wait_until(lambda: any(prepared.glob(".images.*.part")), "prepare_dataset writing")
    assert run.kill(signal.SIGKILL) == -signal.SIGKILL
    _, finished = started_and_finished(run.output)
    assert finished["make_synthetic_dataset"] == 1 and finished["prepare_dataset"] == 0
    kept = fingerprint(work, files_of_finished_jobs(run.output))
    assert run_to_end(work, "unlock", target, "--unlock")[0] == 0
    returncode, output = run_to_end(work, "run2", target)
    assert returncode == 0, output[-4000:]
    assert job_stats(output) == collections.Counter({"prepare_dataset": 1}), output[:3000]
    assert changed(work, kept) == []
    assert len(list((prepared / "images").glob("*.tif"))) == 24
    assert leftovers(work / "results") == []  # io.atomic_* removed the killed attempt's temporary
