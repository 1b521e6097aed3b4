"""Where the runner's jobs run, by name: submitit executors configured from one set of options.

- ``local``: submitit's LocalExecutor (one process per job on this machine, the same pickled job,
  requeue-on-signal and log files as on a cluster); at most ``parallel`` jobs at once, each kernel
  limited to ``cpu_count // parallel`` threads.
- ``slurm``: submitit's SlurmExecutor, one sbatch job per variant x seed (submitted together as a
  job array, at most ``parallel`` running at once when given), with partition, GPUs, CPUs, memory,
  time limit and extra sbatch options; a timed-out or preempted job is requeued and resumes from its
  checkpoint (``max_requeues`` times).

Job logs go to ``<grid folder>/.submitit/<job id>_0_log.{out,err}``.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path
from typing import Any, Callable, Mapping

from lib.config import ConfigError, check_choice

SUBMITIT_DIR = ".submitit"
LOCAL_TIME_LIMIT_MIN = 7 * 24 * 60  # submitit's local default is 2 minutes: far too short for training


@dataclasses.dataclass(frozen=True)
class BackendOptions:
    """The runner's job options (04's parameters of the same names)."""

    backend: str = "local"
    parallel: int = 1                          # local: jobs at once; slurm: array parallelism (0 = no limit)
    slurm_partition: str | None = None
    slurm_gpus: int = 1                        # GPUs per job
    slurm_cpus: int = 8                        # CPUs per job (also the kernel's thread count)
    slurm_mem_gb: float = 32.0
    slurm_time_min: int = 12 * 60              # per attempt; a timed-out job is requeued and resumes
    slurm_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # extra sbatch options
    max_requeues: int = 3                      # timeouts / preemptions survived per job


SLURM_FIELDS = tuple(f.name for f in dataclasses.fields(BackendOptions) if f.name.startswith("slurm_"))
_SBATCH_OPTION = re.compile(r"^[a-z][a-z0-9_-]*$")


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name}={value!r} must be an integer >= {minimum}")


def make_backend_options(backend: str = "local", **options: Any) -> BackendOptions:
    """Validated options: an unknown backend or option name, a wrong value, or a Slurm option given
    to the local backend fails here, before anything is submitted."""
    check_choice("backend", backend, BACKEND_NAMES)
    known = {f.name for f in dataclasses.fields(BackendOptions)} - {"backend"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(f"unknown runner options {unknown}; valid: {sorted(known)}")
    if backend != "slurm":
        defaults = BackendOptions()
        given = sorted(k for k in options if k in SLURM_FIELDS and options[k] != getattr(defaults, k))
        if given:
            raise ConfigError(f"{given} are options of the slurm backend; with backend={backend!r} leave them out")
    if isinstance(options.get("slurm_options"), str):  # papermill -p passes a dict as its JSON text
        try:
            options["slurm_options"] = json.loads(options["slurm_options"])
        except json.JSONDecodeError as error:
            raise ConfigError(f"slurm_options={options['slurm_options']!r} is not a JSON object: {error}") from None
    result = BackendOptions(backend=backend, **options)
    _check_int("parallel", result.parallel, BACKENDS[backend].min_parallel)
    _check_int("slurm_gpus", result.slurm_gpus, 0)
    _check_int("slurm_cpus", result.slurm_cpus, 1)
    _check_int("slurm_time_min", result.slurm_time_min, 1)
    _check_int("max_requeues", result.max_requeues, 0)
    if not isinstance(result.slurm_mem_gb, (int, float)) or result.slurm_mem_gb <= 0:
        raise ConfigError(f"slurm_mem_gb={result.slurm_mem_gb!r} must be a number > 0")
    if result.slurm_partition is not None and not isinstance(result.slurm_partition, str):
        raise ConfigError(f"slurm_partition={result.slurm_partition!r} must be a partition name or None")
    if not isinstance(result.slurm_options, Mapping):
        raise ConfigError(f"slurm_options={result.slurm_options!r} must be a dict of sbatch options, "
                          "e.g. {'account': 'my-lab', 'qos': 'high'}")
    bad = sorted(str(k) for k in result.slurm_options if not _SBATCH_OPTION.match(str(k)))
    if bad:
        raise ConfigError(f"slurm_options keys {bad} are not sbatch option names (e.g. 'account', 'qos', 'constraint')")
    return result


def threads_per_job(options: BackendOptions) -> int:
    """Threads each job's kernel may use: its share of this machine, or the CPUs Slurm gives it."""
    return BACKENDS[options.backend].threads(options)


def max_jobs_at_once(options: BackendOptions) -> int | None:
    """How many jobs the runner keeps submitted at once (None: all; Slurm queues them itself)."""
    return BACKENDS[options.backend].jobs_at_once(options)


def _local_executor(folder: Path, options: BackendOptions, threads: int | None) -> Any:
    import submitit
    import torch

    executor = submitit.LocalExecutor(folder=str(folder), max_num_timeout=options.max_requeues)
    # submitit hides every GPU from a local job that asks for none (CUDA_VISIBLE_DEVICES="")
    executor.update_parameters(timeout_min=LOCAL_TIME_LIMIT_MIN, gpus_per_node=torch.cuda.device_count())
    return executor


def slurm_parameters(options: BackendOptions, threads: int | None = None) -> dict[str, Any]:
    """SlurmExecutor.update_parameters() arguments for these options (checked against submitit's names)."""
    from submitit.slurm.slurm import SlurmExecutor

    parameters = {"cpus_per_task": threads or options.slurm_cpus, "gpus_per_node": options.slurm_gpus,
                  "mem": f"{int(options.slurm_mem_gb * 1024)}MB", "time": options.slurm_time_min,
                  "ntasks_per_node": 1, "nodes": 1, "job_name": "vicegan",
                  "additional_parameters": {k.replace("_", "-"): v for k, v in options.slurm_options.items()}}
    if options.slurm_partition:
        parameters["partition"] = options.slurm_partition
    if options.parallel:
        parameters["array_parallelism"] = options.parallel
    unknown = set(parameters) - SlurmExecutor._valid_parameters()
    assert not unknown, f"submitit renamed Slurm parameters {unknown}"
    return parameters


def _slurm_executor(folder: Path, options: BackendOptions, threads: int | None) -> Any:
    from submitit.slurm.slurm import SlurmExecutor

    try:
        executor = SlurmExecutor(folder=str(folder), max_num_timeout=options.max_requeues)
    except RuntimeError as error:  # no srun/sbatch on this machine
        raise RuntimeError(f"backend='slurm' needs a Slurm login node (sbatch and srun on PATH): {error}; "
                           "use backend='local' on this machine") from None
    executor.update_parameters(**slurm_parameters(options, threads))
    return executor


def _local_job_alive(status: Mapping[str, Any]) -> bool:
    import socket

    from lib.locks import pid_alive

    return status.get("host") == socket.gethostname() and pid_alive(int(str(status["job_id"]).split("_")[0]))


def _slurm_job_alive(status: Mapping[str, Any]) -> bool:
    import shutil
    import subprocess

    if shutil.which("squeue") is None:
        return True  # not on a login node: cannot ask, assume the job lives
    # squeue lists queued and running jobs (sacct needs accounting, often off)
    listed = subprocess.run(["squeue", "-h", "-o", "%T", "-j", str(status["job_id"])], capture_output=True, text=True)
    return listed.returncode == 0 and bool(listed.stdout.strip())


@dataclasses.dataclass(frozen=True)
class Backend:
    """What the runner needs to know about one way of running jobs."""

    executor: Callable[[Path, BackendOptions, int | None], Any]  # factory(folder, options, threads or None)
    job_alive: Callable[[Mapping[str, Any]], bool]  # is the job a status.json names still queued or running?
    threads: Callable[[BackendOptions], int]  # threads each job's kernel may use
    jobs_at_once: Callable[[BackendOptions], int | None]  # jobs kept submitted at once (None: all)
    min_parallel: int  # smallest valid ``parallel`` (0 = unlimited where the scheduler queues)
    runner_owns_jobs: bool  # stopping the runner cancels its jobs (they resume later); else they go on
    evaluation_with_grid: bool  # 05 is submitted with the training jobs, waiting on them (a dependency)


BACKENDS: dict[str, Backend] = {
    # this machine: at most `parallel` jobs, each with its share of the CPUs; they die with the runner
    "local": Backend(_local_executor, _local_job_alive, lambda o: max(1, (os.cpu_count() or 1) // o.parallel),
                     lambda o: o.parallel, 1, runner_owns_jobs=True, evaluation_with_grid=False),
    # a Slurm cluster: one job array, the CPUs Slurm gives each job; the jobs belong to the cluster
    "slurm": Backend(_slurm_executor, _slurm_job_alive, lambda o: o.slurm_cpus, lambda o: None, 0,
                     runner_owns_jobs=False, evaluation_with_grid=True),
}
BACKEND_NAMES = tuple(BACKENDS)


def make_executor(folder: Path, options: BackendOptions, threads: int | None = None) -> Any:
    return BACKENDS[options.backend].executor(Path(folder) / SUBMITIT_DIR, options, threads)


def job_alive(status: Mapping[str, Any]) -> bool:
    """Whether the job a status.json names (any runner's) is still queued or running."""
    backend = BACKENDS.get(status.get("backend"))
    return bool(status.get("job_id")) and backend is not None and backend.job_alive(status)
