"""Resumable papermill sweeps: every variant of a grid trained by 03_train as a submitit job, then 05.

Layout: ``<runs_dir>/<grid>-<preset>[-<recipe>]/<variant>/`` holds the executed ``03_train.ipynb``,
``params.json`` (the papermill parameters), ``status.json`` (state, job id, log, error, timings) and
everything 03 writes there (it gets the folder as its ``run_dir`` parameter); job logs are in
``<grid folder>/.submitit/``.

Jobs run through a backend by name (:mod:`lib.runs.backends`: ``local`` = submitit's local executor,
``slurm`` = sbatch jobs).  What this module adds to submitit is the bookkeeping no library does:
- a variant with ``train_done.json`` is skipped; an unfinished one is submitted again with the same
  ``run_dir`` and 03 resumes from its checkpoint (a job preempted or timed out on Slurm is requeued
  by submitit and resumes the same way);
- a variant that fails is recorded as ``failed`` (error, traceback tail, log path) and the rest go on;
- one writer per variant: the job holds the run folder's owner lock (:mod:`lib.locks`, the lock 02/03
  take) and 03 inside it inherits it; a second runner on the same grid submits nothing for a variant
  whose job is alive or whose folder is owned, and waits for it instead;
- 05 runs as its own job after the training jobs (on Slurm an ``afterany`` dependency, so the whole
  grid is one submission).
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import pandas as pd
from tqdm.auto import tqdm

from lib import locks
from lib.config import ConfigError, check_choice, name_list
from lib.io import atomic_write_json, read_json
from lib.paths import TRAIN_DONE_FILE, runs_dir, safe_name
from lib.runs.backends import (BACKENDS, BackendOptions, SUBMITIT_DIR, job_alive, make_backend_options, make_executor,
                               max_jobs_at_once, threads_per_job)
from lib.runs.grid import Variant, resolve_grid, select_variants
from lib.runs.notebooks import (check_kernel, check_parameters, default_eval_notebook, default_train_notebook,
                                describe_error, execute_notebook, notebook_parameters)
from lib.runs.status import (is_done, owner, read_status, status_table, trained_steps, variant_state,
                             write_status)

RUN_STEPS = ("train", "evaluate")
PARAMS_FILE = "params.json"
REQUEUE_LOCK_WAIT_S = 60.0  # how long a requeued job waits for its previous attempt to let go of the folder
__all__ = ["run_grid", "run_variants", "grid_status", "grid_dir", "run_evaluation_notebook", "execute_notebook",
           "read_status", "trained_steps", "variant_state", "SweepResult", "TrainJob", "RUN_STEPS"]


def grid_dir(grid: str, preset: str, recipe: str = "thesis") -> Path:
    """``<runs_dir>/<grid>-<preset>[-<recipe>]``: the preset and a recipe other than ``thesis`` are part
    of the name, so that neither ever mixes in one folder (every variant of a grid trains with one recipe)."""
    return runs_dir() / safe_name(f"{grid}-{preset}" + ("" if recipe == "thesis" else f"-{recipe}"))


def _recipe_override(recipe: str) -> dict[str, str]:
    """03's ``recipe`` parameter for every variant (none for thesis, 03's default, so that the params.json
    of grids trained before recipes existed still match)."""
    from lib.train.recipes import RECIPE_NAMES

    check_choice("recipe", recipe, RECIPE_NAMES)
    return {} if recipe == "thesis" else {"recipe": recipe}


def grid_status(grid: str, preset: str, variants: Sequence[str] | None = None, recipe: str = "thesis",
                seeds: Any = None) -> pd.DataFrame:
    """One row per variant (per seed) of the grid: variant, state, steps, wall time (s), attempts, error."""
    chosen = select_variants(resolve_grid(grid, preset, _recipe_override(recipe), seeds), variants)
    return status_table({v.name: grid_dir(grid, preset, recipe) / v.name for v in chosen})


# ----------------------------------------------------------------------------- training
def _current_job() -> tuple[str | None, str | None]:
    """(job id, stdout log) of the submitit job this process runs in, or (None, None)."""
    import submitit

    with contextlib.suppress(RuntimeError):
        environment = submitit.JobEnvironment()
        return str(environment.job_id), str(environment.paths.stdout)
    return None, None


def _wait_for_owner(folder: Path, timeout_s: float) -> bool:
    """True once nobody owns the folder (a requeued job's previous kernel may take a moment to exit)."""
    deadline = time.time() + timeout_s
    while owner(folder) is not None:
        if time.time() > deadline:
            return False
        time.sleep(0.5)
    return True


def train_variant(name: str, params: Mapping[str, Any], folder: str | Path, notebook: str | Path,
                  threads: int | None = None, retry_failed: bool = True) -> dict[str, Any]:
    """Train one variant (the body of a training job): 03 through papermill, into ``folder``.

    Returns ``{"variant", "outcome"}`` with outcome done | skipped | failed | locked (another process
    owns the folder).  Holds the folder's owner lock for the whole run; 03's kernel inherits it.
    ``threads``: the job's share of the CPUs, for the kernel's thread variables and 03's ``num_threads``; a
    variant's own ``num_threads`` wins (more threads than cores stall OpenMP: a 2-thread reenact job beside a
    1-thread run on this 2-core machine took 7.4 s an iteration; alone, 0.27 s).
    """
    folder = Path(folder)
    threads = params.get("num_threads") or threads
    if is_done(folder):
        return {"variant": name, "outcome": "skipped"}
    if not retry_failed and read_status(folder).get("state") == "failed":
        return {"variant": name, "outcome": "failed"}
    job_id, log = _current_job()
    if job_id is not None and read_status(folder).get("job_id") == job_id:  # requeued: the lock may be our own
        # previous attempt's, whose kernel may still be exiting; held from another node, it can never be
        # judged stale (lib.locks), so this attempt, its successor, takes it over
        if not _wait_for_owner(folder, REQUEUE_LOCK_WAIT_S):
            held, last = owner(folder) or {}, read_status(folder)
            if held.get("host") != socket.gethostname() and (held.get("pid"), held.get("host")) == (
                    last.get("pid"), last.get("host")):
                (folder / locks.OWNER_FILE).unlink(missing_ok=True)
    if not locks.try_lock(folder, locks.OWNER_FILE):
        return {"variant": name, "outcome": "locked", "owner": owner(folder)}
    os.environ[locks.INHERITED_OWNER_ENV] = str(os.getpid())  # 03's kernel writes here as this job
    try:
        if is_done(folder):  # finished by another job between our check and the lock
            return {"variant": name, "outcome": "skipped"}
        previous = read_status(folder)
        started = time.time()
        write_status(folder, state="running", variant=name, pid=os.getpid(), host=socket.gethostname(),
                     job_id=job_id or previous.get("job_id"), log=log or previous.get("log"), started_at=started,
                     finished_at=None, error=None, traceback_tail=None, attempts=previous.get("attempts", 0) + 1,
                     threads=threads)
        state, error_fields = "done", {}
        try:
            extra = {"run_dir": str(folder)}
            if threads and "num_threads" in notebook_parameters(notebook):  # 03 may also take it directly
                extra["num_threads"] = threads
            execute_notebook(notebook, folder, {**params, **extra}, threads=threads)
            if not is_done(folder):
                raise RuntimeError(f"{Path(notebook).name} finished without writing {folder / TRAIN_DONE_FILE}")
        except (KeyboardInterrupt, SystemExit):  # cancelled, or preempted / timed out (submitit requeues)
            state = "interrupted"
            error_fields = {"error": "stopped by a signal; resumes from its checkpoint when run again"}
            raise
        except Exception as error:  # any failure is recorded; the sweep goes on
            message, tail = describe_error(error)
            state, error_fields = "failed", {"error": message, "traceback_tail": tail}
        finally:
            finished = time.time()
            write_status(folder, state=state, finished_at=finished, wall_s=finished - started,
                         total_wall_s=previous.get("total_wall_s", 0.0) + finished - started, **error_fields)
        return {"variant": name, "outcome": state, **error_fields}
    finally:
        os.environ.pop(locks.INHERITED_OWNER_ENV, None)
        locks.release_lock(folder, locks.OWNER_FILE)


try:
    from submitit.helpers import Checkpointable
except ImportError:  # pragma: no cover - submitit is in requirements.txt
    Checkpointable = object


@dataclasses.dataclass
class TrainJob(Checkpointable):
    """A training job: picklable, and checkpointable in submitit's sense: on preemption or timeout
    submitit calls ``checkpoint`` and requeues the same job, and 03 resumes from its own checkpoint."""

    name: str
    params: dict[str, Any]
    folder: str
    notebook: str
    threads: int | None
    retry_failed: bool = True

    def __call__(self) -> dict[str, Any]:
        return train_variant(self.name, self.params, self.folder, self.notebook, self.threads, self.retry_failed)


@dataclasses.dataclass
class SweepResult:
    status: pd.DataFrame                  # grid_status-like table after the sweep
    results: pd.DataFrame | None = None   # 05's aggregate results table, when evaluated
    evaluation_dir: Path | None = None    # 05's run folder (results.csv, executed notebook)


def prepare_variant_folders(variants: Sequence[Variant], root: Path) -> dict[str, Path]:
    """Create each variant's folder and params.json; refuse a folder trained with other params."""
    folders = {}
    for variant in variants:
        folder = root / safe_name(variant.name)
        params_path = folder / PARAMS_FILE
        if params_path.exists():
            stored = read_json(params_path)
            changed = sorted(k for k in set(stored) | set(variant.params) if stored.get(k) != variant.params.get(k))
            if changed:
                raise ConfigError(f"{folder} was run with different parameters (changed: {changed}); "
                                  "delete that folder to start the variant afresh")
        else:
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write_json(params_path, variant.params)
        folders[variant.name] = folder
    return folders


def _job_log(job: Any) -> str:
    with contextlib.suppress(Exception):
        return str(job.paths.stdout)
    return ""


class _Sweep:
    """The training jobs of one runner: submit what needs training, watch the jobs, record the outcomes."""

    def __init__(self, variants: Sequence[Variant], root: Path, options: BackendOptions, notebook: Path,
                 retry_failed: bool, on_update: Callable[[pd.DataFrame], None] | None, progress: bool):
        self.variants, self.root, self.options, self.notebook = list(variants), root, options, notebook
        self.retry_failed, self.on_update = retry_failed, on_update
        self.threads = threads_per_job(options)
        self.executor = make_executor(root, options, self.threads)  # no Slurm here: fails before any folder
        self.folders = prepare_variant_folders(variants, root)
        self.jobs: dict[str, Any] = {}     # variant -> this runner's live job
        self.waiting = {v.name: v for v in variants if not is_done(self.folders[v.name])}
        self.bar = tqdm(total=len(variants), initial=len(variants) - len(self.waiting), unit="variant",
                        desc=f"variants ({root.name})", disable=not progress)
        self.update()

    def update(self) -> None:
        if self.on_update is not None:
            self.on_update(status_table(self.folders))

    def _finish(self, name: str, outcome: str) -> None:
        self.waiting.pop(name, None)
        self.bar.update(1)
        self.bar.set_postfix_str(f"{name}: {outcome}")

    def _busy_elsewhere(self, name: str) -> bool:
        """Another runner's job holds or will train this variant."""
        folder = self.folders[name]
        status = read_status(folder)
        return owner(folder) is not None or (status.get("state") in ("queued", "running") and job_alive(status))

    def submit_ready(self) -> list[Any]:
        """Submit a job for each waiting variant nobody is training (up to the backend's limit)."""
        limit, submitted = max_jobs_at_once(self.options), []
        ready = []
        for name in list(self.waiting):
            folder = self.folders[name]
            if name in self.jobs:  # ours: poll() records its outcome when the job has ended
                continue
            if is_done(folder):
                self._finish(name, "skipped")
            elif not self.retry_failed and read_status(folder).get("state") == "failed":
                self._finish(name, "failed")
            elif not self._busy_elsewhere(name):
                ready.append(name)
        if limit is not None:
            ready = ready[:max(0, limit - len(self.jobs))]
        jobs_dir = self.root / SUBMITIT_DIR
        for name in ready:
            write_status(self.folders[name], state="queued", backend=self.options.backend, job_id=None,
                         host=socket.gethostname(), submitit_folder=str(jobs_dir))
        specs = [TrainJob(name, dict(self.waiting[name].params), str(self.folders[name]), str(self.notebook),
                          self.threads, self.retry_failed) for name in ready]
        if specs:
            with self.executor.batch():  # one sbatch job array on Slurm
                for spec in specs:
                    submitted.append(self.executor.submit(spec))
        for name, job in zip(ready, submitted):
            self.jobs[name] = job
            if read_status(self.folders[name]).get("state") == "queued":  # the job did not start yet
                write_status(self.folders[name], job_id=str(job.job_id), log=_job_log(job))
        if ready:
            self.update()
        return submitted

    def poll(self) -> None:
        """Record the outcome of every job of ours that ended."""
        for name, job in list(self.jobs.items()):
            if not job.done():
                continue
            del self.jobs[name]
            folder = self.folders[name]
            try:
                outcome = job.result()["outcome"]
            except Exception as error:  # the job itself died: killed, out of memory, unpicklable
                message, tail = describe_error(error)
                outcome = "failed"
                if not is_done(folder) and owner(folder) is None:
                    write_status(folder, state="failed", error=message, traceback_tail=tail, log=_job_log(job),
                                 finished_at=time.time())
            if outcome == "locked":
                continue  # another runner's job trains it: keep waiting for that one
            self._finish(name, outcome)
            self.update()

    def run(self, poll_s: float) -> pd.DataFrame:
        """Submit, watch and record until every variant has an outcome (ours or another runner's).

        Interrupted (Ctrl-C, JupyterLab's stop button), a local runner cancels its jobs: they stop at once and
        resume from their checkpoints next time.  Slurm jobs go on: they belong to the cluster, not the notebook."""
        try:
            while True:
                self.submit_ready()
                self.poll()
                if not self.waiting:
                    break
                time.sleep(poll_s)
        except KeyboardInterrupt:
            if BACKENDS[self.options.backend].runner_owns_jobs:
                for job in self.jobs.values():
                    job.cancel(check=False)
            raise
        finally:
            self.bar.close()
        return status_table(self.folders)


def _check_train_notebook(variants: Sequence[Variant], notebook: Path) -> None:
    from lib.train.options import system_of, system_options

    for variant in variants:  # 03 takes the options of the variant's system besides its parameters cell
        check_parameters(notebook, {**variant.params, "run_dir": None}, more=system_options(system_of(variant.params)))
    check_kernel()


def run_variants(variants: Sequence[Variant], root: str | Path, *, backend: str = "local", parallel: int = 1,
                 backend_options: Mapping[str, Any] | None = None, notebook: str | Path | None = None,
                 retry_failed: bool = True, poll_s: float = 2.0,
                 on_update: Callable[[pd.DataFrame], None] | None = None, progress: bool = True) -> pd.DataFrame:
    """Train ``variants`` into ``root/<variant>/`` as jobs of ``backend`` (see module doc); waits for them
    (and for other runners' jobs on the same variants) and returns the status table."""
    options = make_backend_options(backend, parallel=parallel, **(backend_options or {}))
    notebook = Path(notebook or default_train_notebook())
    _check_train_notebook(variants, notebook)
    sweep = _Sweep(variants, Path(root), options, notebook, retry_failed, on_update, progress)
    return sweep.run(poll_s)


# ----------------------------------------------------------------------------- evaluation
def run_evaluation_notebook(run_dirs: Iterable[str | Path], preset: str, run_name: str,
                  notebook: str | Path | None = None, parameters: Mapping[str, Any] | None = None,
                  log_output: bool = False) -> tuple[pd.DataFrame | None, Path]:
    """Run 05_evaluate over ``run_dirs`` into ``<runs_dir>/05_evaluate/<run_name>/``.

    Returns (its aggregate results table or None if it wrote none, its run folder).
    """
    notebook = Path(notebook or default_eval_notebook())
    params = {"runs": [str(p) for p in run_dirs], "preset": preset, "run_name": run_name, **(parameters or {})}
    check_parameters(notebook, params)
    check_kernel()
    out_dir = runs_dir() / safe_name(notebook.stem) / safe_name(run_name)
    execute_notebook(notebook, out_dir, params, log_output=log_output)
    table = out_dir / "results.csv"
    return (pd.read_csv(table) if table.is_file() else None), out_dir


def evaluate_finished_runs(run_dirs: Sequence[str], preset: str, run_name: str, notebook: str | None = None,
                           parameters: Mapping[str, Any] | None = None) -> str:
    """The evaluation job: 05 over those of ``run_dirs`` that finished training (decided when the job
    starts, since on Slurm it is submitted before the training jobs end); returns 05's run folder."""
    finished = [p for p in run_dirs if is_done(Path(p))]
    if not finished:
        raise RuntimeError(f"none of the {len(run_dirs)} runs finished training (no {TRAIN_DONE_FILE}); nothing to evaluate")
    return str(run_evaluation_notebook(finished, preset, run_name, notebook, parameters)[1])


def _submit_evaluation(root: Path, options: BackendOptions, run_dirs: Sequence[Path], preset: str,
                       notebook: str | Path | None, parameters: Mapping[str, Any] | None,
                       after: Sequence[Any] = ()) -> Any:
    executor = make_executor(root, options, threads=None)
    if after:  # Slurm starts it when every training job has ended, whatever their outcome
        array_ids = sorted({str(job.job_id).split("_")[0] for job in after})
        extra = {**executor.parameters.get("additional_parameters", {}), "dependency": "afterany:" + ":".join(array_ids)}
        executor.update_parameters(additional_parameters=extra, job_name="vicegan-evaluate")
    return executor.submit(evaluate_finished_runs, [str(p) for p in run_dirs], preset, root.name,
                           None if notebook is None else str(notebook), dict(parameters or {}))


def _evaluation_result(job: Any) -> tuple[pd.DataFrame | None, Path]:
    try:
        out_dir = Path(job.result())
    except Exception as error:
        message, _ = describe_error(error)
        raise RuntimeError(f"the evaluation job {job.job_id} failed (log: {_job_log(job)}): {message}") from error
    table = out_dir / "results.csv"
    return (pd.read_csv(table) if table.is_file() else None), out_dir


def run_grid(grid: str = "demo", preset: str = "small", *, variants: Sequence[str] | None = None,
             recipe: str = "thesis", seeds: Any = None, backend: str = "local", parallel: int = 1,
             backend_options: Mapping[str, Any] | None = None, steps: Sequence[str] = RUN_STEPS,
             overrides: Mapping[str, Any] | None = None,
             train_notebook: str | Path | None = None, eval_notebook: str | Path | None = None,
             eval_parameters: Mapping[str, Any] | None = None, retry_failed: bool = True, poll_s: float = 2.0,
             on_update: Callable[[pd.DataFrame], None] | None = None, progress: bool = True) -> SweepResult:
    """Train (``"train"`` in steps) and evaluate (``"evaluate"``) the grid's variants as ``backend`` jobs.

    ``variants`` picks some variants by name (None = all); every variant trains with ``recipe``
    (:mod:`lib.train.recipes`), once per seed of ``seeds`` (None: once, with 03's seed).  Evaluation is
    one more job, over every finished variant of the selection, named after the grid folder
    (:func:`grid_dir`); on Slurm it is submitted with the training jobs and waits for them there.
    """
    steps = name_list(steps)
    for step in steps:
        check_choice("step", step, RUN_STEPS)
    options = make_backend_options(backend, parallel=parallel, **(backend_options or {}))
    if "recipe" in (overrides or {}):
        raise ConfigError("pass the recipe as run_grid(recipe=...), which also names the grid folder")
    chosen = select_variants(resolve_grid(grid, preset, {**(overrides or {}), **_recipe_override(recipe)}, seeds),
                             variants)
    root = grid_dir(grid, preset, recipe)
    evaluate = "evaluate" in steps
    if evaluate:  # fail before training when 05 is missing or lacks a parameter
        check_parameters(eval_notebook or default_eval_notebook(),
                         {"runs": None, "preset": None, "run_name": None, **(eval_parameters or {})})
    evaluation_job = None
    if "train" in steps:
        notebook = Path(train_notebook or default_train_notebook())
        _check_train_notebook(chosen, notebook)
        sweep = _Sweep(chosen, root, options, notebook, retry_failed, on_update, progress)
        if evaluate and BACKENDS[options.backend].evaluation_with_grid:  # the whole grid is one submission
            evaluation_job = _submit_evaluation(root, options, list(sweep.folders.values()), preset, eval_notebook,
                                                eval_parameters, after=sweep.submit_ready())
        status = sweep.run(poll_s)
    else:
        status = status_table({v.name: root / safe_name(v.name) for v in chosen})
    result = SweepResult(status=status)
    if evaluate:
        if evaluation_job is None:
            finished = [Path(p) for p, state in zip(status["run_dir"], status["state"]) if state == "done"]
            if not finished:
                raise RuntimeError(f"no finished variant to evaluate in {root}; train first (steps=['train'])")
            evaluation_job = _submit_evaluation(root, options, finished, preset, eval_notebook, eval_parameters)
        result.results, result.evaluation_dir = _evaluation_result(evaluation_job)
    return result
