"""A throwaway one-node SLURM on localhost for tests: munged, slurmctld and slurmd started
directly (no systemd), as children of this process, and stopped again by their PIDs.

    reason = unavailable_reason()          # None, or why this machine can't run one
    with SlurmCluster(short_tmp_dir) as cluster:
        ...                                # sbatch/squeue/scontrol work; cluster.jobs()

Every file lives in the given folder, except /etc/slurm/slurm.conf and gres.conf (removed again
on exit). Why the configuration looks the way it does (docs/slurm-notes.md has the long version):
- slurm.conf sits at the default path: the job-side `snakemake --executor slurm-jobstep` drops
  every SLURM_* variable, SLURM_CONF included, before its `srun`.
- No slurmdbd, so `sacct` fails: Snakemake must poll with `squeue`, which sees only jobs younger
  than MinJobAge. MinJobAge is also what lets a test read `scontrol show job` afterwards.
- No cgroups in containers: proctrack/linuxproc, task/none.
- One stand-in GPU (a gres backed by /dev/null) so that `sbatch --gpus=1` is schedulable and
  the allocation can be checked; EnforcePartLimits=ALL makes sbatch refuse a request the node
  can never satisfy, instead of it pending forever.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

SLURM_ETC = Path("/etc/slurm")
MARKER = "# Written by nucleiseg tests/slurm_cluster.py; removed when its test ends."
DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "srun", "squeue", "scontrol", "sinfo", "scancel")


def unavailable_reason() -> str | None:
    """Why a local SLURM can't be started here, or None when it can."""
    missing = [tool for tool in (*DAEMONS, *CLIENTS) if _tool(tool) is None]
    if missing:
        return (f"SLURM is not installed ({', '.join(missing)} not found); install it with "
                "`.ci/install-slurm` as root (Debian: slurmctld slurmd slurm-client munge)")
    if os.geteuid() != 0:
        return ("a local SLURM needs root (slurmd, /etc/slurm/slurm.conf): "
                "run the slurm tests as root")
    for name in ("slurm.conf", "gres.conf"):
        path = SLURM_ETC / name
        if path.exists() and MARKER not in path.read_text(errors="replace"):
            return f"{path} exists and was not written by these tests: refusing to overwrite it"
    running = _slurm_processes()
    if running:
        return f"SLURM daemons already run on this machine ({', '.join(running)})"
    return None


def client_env() -> dict[str, str]:
    """The environment for SLURM commands: this one, less SLURM_*/SBATCH_*/SRUN_* variables
    (from an enclosing job, or a SLURM_CONF pointing at another cluster)."""
    return {key: value for key, value in os.environ.items()
            if not key.startswith(("SLURM_", "SBATCH_", "SRUN_"))}


def parse_scontrol_line(line: str) -> dict[str, str]:
    """One line of `scontrol --oneliner show job` -> {field: value}. A value may hold spaces
    (Comment, WorkDir...), so a field starts only where `Key=` follows whitespace."""
    fields = {}
    for item in re.split(r"\s+(?=[A-Za-z][\w:/]*=)", line.strip()):
        key, _, value = item.partition("=")
        fields[key] = value.strip()
    return fields


def _tool(name: str) -> str | None:
    """A SLURM or munge program: on PATH, or in /usr/sbin (not on a plain user's PATH)."""
    found = shutil.which(name)
    if found:
        return found
    sbin = Path("/usr/sbin", name)
    return str(sbin) if os.access(sbin, os.X_OK) else None


def _slurm_processes() -> list[str]:
    """'name pid' of every slurmctld, slurmd and slurmstepd process, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if comm in ("slurmctld", "slurmd", "slurmstepd"):
            found.append(f"{comm} {entry.name}")
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


class SlurmCluster:
    """One node (this machine, CPUs and memory as `slurmd -C` reports them, plus one stand-in
    GPU) in one partition, `debug`, the default. `root` should be a short path: the munge
    socket's path must fit in 108 bytes."""

    partition = "debug"

    def __init__(self, root: Path, *, min_job_age: int = 3600, gpus: int = 1):
        self.root = Path(root)
        self.min_job_age = min_job_age
        self.gpus = gpus
        self.node = socket.gethostname().split(".")[0]
        self.munge_socket = self.root / "munge" / "munge.socket"
        self.procs: dict[str, subprocess.Popen] = {}
        self._outputs: list = []
        self._wrote_conf = False
        self._previous_sigterm = None

    # -- lifecycle -----------------------------------------------------------------------------

    def __enter__(self) -> "SlurmCluster":
        # SIGTERM (a CI timeout, `kill`) would end Python without running __exit__ and leave
        # the daemons behind: make it a KeyboardInterrupt while the cluster is up.
        if threading.current_thread() is threading.main_thread():
            self._previous_sigterm = signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            self.start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.stop()
        finally:
            if self._previous_sigterm is not None:
                signal.signal(signal.SIGTERM, self._previous_sigterm)
                self._previous_sigterm = None

    def start(self, timeout: float = 60) -> None:
        """munged, then slurmctld, then slurmd; returns once the node is idle (about 1 s)."""
        for folder in ("state", "spool"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        self._start_munge()
        self._write_conf()
        self._spawn("slurmctld", [_tool("slurmctld"), "-D", "-i"])
        self._wait_for(lambda: "UP" in self._client("scontrol", "ping", check=False),
                       timeout, "slurmctld to answer")
        self._spawn("slurmd", [_tool("slurmd"), "-D", "-N", self.node])
        self._wait_for(self._node_idle, timeout, f"node {self.node} to be idle")

    def stop(self, timeout: float = 30) -> None:
        """Cancel every job, stop slurmd, slurmctld and munged (in that order) by PID: SIGTERM,
        SIGKILL after `timeout` s. Then remove the configuration files it wrote."""
        if self._alive("slurmctld"):
            self._client("scancel", "--full", "--quiet", f"--partition={self.partition}",
                         check=False)
            self._wait_for(lambda: not self._client("squeue", "--noheader", "--format=%i",
                                                    check=False).split(),
                           20, "jobs to end", fail=False)
        for name in ("slurmd", "slurmctld", "munged"):
            if not self._alive(name):
                continue
            proc = self.procs[name]
            proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        for handle in self._outputs:
            handle.close()
        self._outputs = []
        self._kill_orphan_steps()
        if self._wrote_conf:
            for name in ("slurm.conf", "gres.conf"):
                path = SLURM_ETC / name
                if path.exists() and MARKER in path.read_text(errors="replace"):
                    path.unlink()
            self._wrote_conf = False

    def _kill_orphan_steps(self) -> None:
        """slurmstepd detaches from slurmd; one still alive once slurmd is down is ours
        (unavailable_reason() refuses to start beside another SLURM)."""
        for _ in range(40):
            steps = [int(entry.split()[1]) for entry in _slurm_processes()
                     if entry.startswith("slurmstepd ")]
            if not steps:
                return
            for pid in steps:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.25)

    # -- setup ---------------------------------------------------------------------------------

    def _spawn(self, name: str, argv: list[str]) -> None:
        output = open(self.root / f"{name}.out", "ab")
        self._outputs.append(output)
        self.procs[name] = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env=client_env(),
                                            start_new_session=True)
        time.sleep(0.2)
        if not self._alive(name):
            raise RuntimeError(f"{name} exited at once ({self.procs[name].returncode}):\n"
                               + self.log_tail(name))

    def _alive(self, name: str) -> bool:
        return name in self.procs and self.procs[name].poll() is None

    def _start_munge(self) -> None:
        folder = self.munge_socket.parent
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o700)
        key = folder / "munge.key"
        if not key.exists():
            key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        # --force: munged refuses to run as root without it.
        self._spawn("munged", [
            _tool("munged"), "--foreground", "--force",
            f"--socket={self.munge_socket}", f"--key-file={key}",
            f"--log-file={folder / 'munged.log'}", f"--pid-file={folder / 'munged.pid'}",
            f"--seed-file={folder / 'munged.seed'}",
        ])
        self._wait_for(self.munge_socket.exists, 10, "the munge socket")

    def node_line(self) -> str:
        """This machine as slurmd sees it (`slurmd -C`), plus the stand-in GPU."""
        out = subprocess.run([_tool("slurmd"), "-C"], capture_output=True, text=True,
                             check=True, env=client_env()).stdout
        line = next(line for line in out.splitlines() if line.startswith("NodeName="))
        line = re.sub(r"^NodeName=\S+", f"NodeName={self.node}", line)
        return f"{line} NodeAddr=127.0.0.1 Gres=gpu:{self.gpus} State=UNKNOWN"

    def slurm_conf(self) -> str:
        root, sock = self.root, self.munge_socket
        return f"""{MARKER}
ClusterName=nucleiseg-test
SlurmctldHost={self.node}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={sock}
CredType=cred/munge
# No slurmdbd (sacct fails). The storage "password" names the munge socket for its clients.
AccountingStorageType=accounting_storage/none
AccountingStoragePass={sock}
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
# Containers: no cgroups.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
MailProg=/bin/true
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
# Without it a job with no --mem is given the whole node's memory.
DefMemPerCPU=1000
# sbatch refuses a request the node can never satisfy (else it pends forever).
EnforcePartLimits=ALL
# Finished jobs stay visible to squeue/scontrol this long: Snakemake's squeue status checks and
# the test's look at each job's allocation rely on it.
MinJobAge={self.min_job_age}
ReturnToService=2
KillWait=5
StateSaveLocation={root / 'state'}
SlurmdSpoolDir={root / 'spool'}
SlurmctldPidFile={root / 'slurmctld.pid'}
SlurmdPidFile={root / 'slurmd.pid'}
SlurmctldLogFile={root / 'slurmctld.log'}
SlurmdLogFile={root / 'slurmd.log'}
SlurmctldDebug=info
SlurmdDebug=info
{self.node_line()}
PartitionName={self.partition} Nodes={self.node} Default=YES MaxTime=INFINITE State=UP
"""

    def _write_conf(self) -> None:
        SLURM_ETC.mkdir(parents=True, exist_ok=True)
        self._wrote_conf = True
        (SLURM_ETC / "slurm.conf").write_text(self.slurm_conf())
        (SLURM_ETC / "gres.conf").write_text(
            f"{MARKER}\n# A stand-in GPU: a gres needs a File=, and /dev/null is always there.\n"
            f"NodeName={self.node} Name=gpu File=/dev/null\n")

    # -- queries -------------------------------------------------------------------------------

    def _client(self, *argv: str, check: bool = True, timeout: float = 30) -> str:
        """stdout of a SLURM client command ("" when it fails and check is False)."""
        try:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                                    env=client_env())
        except subprocess.TimeoutExpired:
            if check:
                raise
            return ""
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr}")
        return result.stdout if result.returncode == 0 else ""

    def _node_idle(self) -> bool:
        for name in ("slurmctld", "slurmd"):
            if not self._alive(name):
                raise RuntimeError(f"{name} exited ({self.procs[name].returncode}):\n"
                                   + self.log_tail(name))
        state = self._client("sinfo", "--noheader", "--Node", "--format=%T", check=False)
        return state.strip() == "idle"

    def jobs(self) -> list[dict[str, str]]:
        """Every job slurmctld still remembers (see MinJobAge): `scontrol --details show job`
        fields, JOB_GRES (the gres allocated) included."""
        out = self._client("scontrol", "--details", "--oneliner", "show", "job")
        return [parse_scontrol_line(line) for line in out.splitlines() if line.startswith("JobId=")]

    def batch_script(self, job_id: str) -> str:
        """The script sbatch queued for a job (for --wrap, the wrapped command)."""
        return self._client("scontrol", "write", "batch_script", job_id, "-")

    def log_tail(self, name: str, lines: int = 40) -> str:
        """The end of a daemon's stdout and log file."""
        texts = []
        for path in (self.root / f"{name}.out", self.root / f"{name}.log",
                     self.root / "munge" / f"{name}.log"):
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                texts.append(f"--- {path}\n" + "\n".join(tail))
        return "\n".join(texts)

    def _wait_for(self, condition, timeout: float, what: str, fail: bool = True) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.25)
        if fail:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}\n"
                               + "\n".join(self.log_tail(name) for name in DAEMONS))
        return False
