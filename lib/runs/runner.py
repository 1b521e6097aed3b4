"""Resumable papermill sweeps: train every variant of a grid with 03_train, then evaluate with 05.

Layout: ``<runs_dir>/<grid>-<preset>/<variant>/`` holds the executed ``03_train.ipynb``,
``params.json`` (the papermill parameters), ``status.json`` (state, error, timings) and
everything 03 writes there (it gets the folder as its ``run_dir`` parameter).

- A variant with ``train_done.json`` is skipped; an unfinished one is run again with the same
  ``run_dir``, and 03 resumes from its checkpoint.
- A variant that raises is recorded as ``failed`` (error, traceback tail) and the sweep goes on.
- ``parallel=N`` trains N variants at once (one worker process each), each kernel limited to
  ``cpu_count // N`` threads (OMP_NUM_THREADS and friends, read by torch at start-up).
  :func:`schedule_order` decides which variant a free worker takes next.
- Two runners on one grid: a variant is trained only by the runner holding its lock file
  (``os.open(O_CREAT | O_EXCL)``, the owner's pid inside; a lock whose pid is dead is stale and
  is broken).  The other runner skips it and, with ``wait_for_others``, waits until it is free.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import json
import logging
import os
import re
import socket
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import pandas as pd
from tqdm.auto import tqdm

from lib import locks
from lib.config import ConfigError, check_choice, name_list
from lib.io import atomic_write_json, read_json, read_jsonl
from lib.paths import REPO_ROOT, TRAIN_DONE_FILE, notebooks_dir, runs_dir, safe_name
from lib.runs.grid import Variant, resolve_grid, select_variants

STATES = ("pending", "running", "done", "failed")
RUN_STEPS = ("train", "evaluate")
DONE_FILE = TRAIN_DONE_FILE
STATUS_FILE = "status.json"
PARAMS_FILE = "params.json"
LOCK_FILE = ".runner.lock"
KERNEL_NAME = "python3"
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def default_train_notebook() -> Path:
    return notebooks_dir() / "03_train.ipynb"


def default_eval_notebook() -> Path:
    return notebooks_dir() / "05_evaluate.ipynb"


def grid_dir(grid: str, preset: str, recipe: str = "thesis") -> Path:
    """``<runs_dir>/<grid>-<preset>[-<recipe>]``: the preset and a recipe other than ``thesis`` are part
    of the name, so that neither ever mixes in one folder (every variant of a grid trains with one recipe)."""
    return runs_dir() / safe_name(f"{grid}-{preset}" + ("" if recipe == "thesis" else f"-{recipe}"))


# ----------------------------------------------------------------------------- notebooks
def check_kernel(kernel_name: str = KERNEL_NAME) -> None:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(kernel_name)
    except NoSuchKernel:
        raise RuntimeError(f"papermill needs a Jupyter kernel named {kernel_name!r}; install it with "
                           f"`.venv/bin/python -m ipykernel install --sys-prefix --name {kernel_name}`") from None


def notebook_parameters(notebook: str | Path) -> dict[str, Any]:
    """Names and default values of the notebook's ``parameters`` cell.

    Parsed with ``ast``: papermill's own inspection drops every line whose comment holds an
    ``=`` (e.g. ``x = None  # None = default``).  Defaults that are not literals come back as
    their source text.
    """
    import ast

    import nbformat

    notebook = Path(notebook)
    if not notebook.is_file():
        raise FileNotFoundError(f"notebook not found: {notebook}")
    cells = [c for c in nbformat.read(str(notebook), as_version=4).cells
             if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])]
    if not cells:
        raise ConfigError(f"{notebook} has no cell tagged `parameters`, so papermill cannot set its parameters")
    declared: dict[str, Any] = {}
    for node in ast.parse(cells[0].source).body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        for target in targets:
            if isinstance(target, ast.Name) and node.value is not None:
                try:
                    declared[target.id] = ast.literal_eval(node.value)
                except ValueError:
                    declared[target.id] = ast.unparse(node.value)
    return declared


class _QuietPapermillParsing(logging.Filter):
    """Drop papermill's parameter-parsing warnings: they are false alarms (see
    :func:`notebook_parameters`) and our own check already failed on real unknowns."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not message.startswith(("Unable to parse line", "Passed unknown parameter"))


_QUIET = _QuietPapermillParsing()


def check_parameters(notebook: str | Path, parameters: Mapping[str, Any]) -> None:
    """Fail before any work when the notebook lacks a parameter we would inject."""
    declared = notebook_parameters(notebook)
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise ConfigError(f"{Path(notebook).name} has no parameters {unknown}; its parameters: {sorted(declared)}")


@contextlib.contextmanager
def limited_threads(threads: int | None):
    """Set the thread-count variables for kernels started inside the block, then restore them."""
    if not threads:
        yield
        return
    saved = {k: os.environ.get(k) for k in THREAD_ENV_VARS}
    os.environ.update({k: str(threads) for k in THREAD_ENV_VARS})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def execute_notebook(notebook: str | Path, out_dir: str | Path, parameters: Mapping[str, Any],
                     threads: int | None = None, log_output: bool = False) -> Path:
    """Run ``notebook`` with papermill into ``out_dir/<notebook name>``; returns that path.

    The kernel starts in the notebook's own folder, as it would in JupyterLab.
    """
    import papermill

    notebook, out_dir = Path(notebook), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    output = out_dir / notebook.name
    for name in ("papermill", "papermill.translators"):
        if _QUIET not in logging.getLogger(name).filters:
            logging.getLogger(name).addFilter(_QUIET)
    with limited_threads(threads):
        papermill.execute_notebook(str(notebook), str(output), parameters=dict(parameters),
                                   kernel_name=KERNEL_NAME, progress_bar=False, log_output=log_output,
                                   cwd=str(notebook.parent))
    return output


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def describe_error(error: BaseException, tail_lines: int = 25) -> tuple[str, str]:
    """(one-line message, traceback tail) for a failed notebook or any exception."""
    if type(error).__name__ == "PapermillExecutionError":
        message = f"{error.ename}: {error.evalue}"
        lines = "\n".join(error.traceback).splitlines()
    else:
        message = f"{type(error).__name__}: {error}"
        lines = traceback.format_exception(type(error), error, error.__traceback__)
        lines = "".join(lines).splitlines()
    tail = "\n".join(_ANSI.sub("", line) for line in lines[-tail_lines:])
    return message.strip(), tail


# ----------------------------------------------------------------------------- locks
def lock_owner(folder: Path) -> dict[str, Any] | None:
    """The live owner of the folder's runner lock (pid, host, since), or None if free or stale."""
    return locks.lock_owner(folder, LOCK_FILE)


def try_lock(folder: Path) -> bool:
    """Take the folder's runner lock for this process; False when a live process holds it."""
    return locks.try_lock(folder, LOCK_FILE)


def release_lock(folder: Path) -> None:
    locks.release_lock(folder, LOCK_FILE)


# ----------------------------------------------------------------------------- status
def read_status(folder: Path) -> dict[str, Any]:
    try:
        return read_json(Path(folder) / STATUS_FILE)
    except (FileNotFoundError, json.JSONDecodeError):
        return {"state": "pending"}


def write_status(folder: Path, **fields: Any) -> dict[str, Any]:
    status = {**read_status(folder), **fields, "updated_at": time.time()}
    check_choice("state", status["state"], STATES)
    atomic_write_json(Path(folder) / STATUS_FILE, status)
    return status


def is_done(folder: Path) -> bool:
    return (Path(folder) / DONE_FILE).is_file()


def trained_steps(folder: Path) -> int | None:
    """Training steps so far: train_done.json's count, else the last step in stats.jsonl."""
    folder = Path(folder)
    if is_done(folder):
        with contextlib.suppress(Exception):
            done = read_json(folder / DONE_FILE)
            for key in ("steps", "step"):
                if isinstance(done.get(key), int):
                    return done[key]
    steps = [r["step"] for r in read_jsonl(folder / "stats.jsonl") if isinstance(r.get("step"), int)]
    return max(steps) if steps else None


def variant_state(folder: Path) -> str:
    """pending/running/done/failed, plus ``interrupted``: says running but nobody holds the lock."""
    if is_done(folder):
        return "done"
    state = read_status(folder).get("state", "pending")
    if state == "running" and lock_owner(folder) is None:
        return "interrupted"
    if state != "running" and lock_owner(folder) is not None:
        return "running"
    return state


def status_table(folders: Mapping[str, Path]) -> pd.DataFrame:
    rows = []
    for name, folder in folders.items():
        status = read_status(folder)
        rows.append({
            "variant": name, "state": variant_state(folder), "steps": trained_steps(folder),
            "wall_s": round(status["total_wall_s"], 1) if status.get("total_wall_s") is not None else None,
            "attempts": status.get("attempts", 0), "error": status.get("error") or "",
            "run_dir": str(folder),
        })
    table = pd.DataFrame(rows, columns=["variant", "state", "steps", "wall_s", "attempts", "error", "run_dir"])
    return table.astype({"steps": "Int64"})  # stays integer when some variants have no steps yet


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
def train_variant(name: str, params: Mapping[str, Any], folder: str | Path, notebook: str | Path,
                  threads: int | None = None, retry_failed: bool = True) -> dict[str, Any]:
    """Train one variant unless done or locked (in this process; see :func:`_train_in_subprocess`).

    Returns ``{"variant", "outcome"}`` with outcome done | skipped | failed | locked.
    """
    folder = Path(folder)
    if is_done(folder):
        return {"variant": name, "outcome": "skipped"}
    if not retry_failed and read_status(folder).get("state") == "failed":
        return {"variant": name, "outcome": "failed"}
    if not try_lock(folder):
        return {"variant": name, "outcome": "locked", "owner": lock_owner(folder)}
    try:
        if is_done(folder):  # finished by another runner between our check and the lock
            return {"variant": name, "outcome": "skipped"}
        previous = read_status(folder)
        started = time.time()
        write_status(folder, state="running", variant=name, pid=os.getpid(), host=socket.gethostname(),
                     started_at=started, finished_at=None, error=None, traceback_tail=None,
                     attempts=previous.get("attempts", 0) + 1, threads=threads)
        error_fields: dict[str, Any] = {}
        try:
            extra = {"run_dir": str(folder)}
            if threads and "num_threads" in notebook_parameters(notebook):  # 03 may also take it directly
                extra["num_threads"] = threads
            execute_notebook(notebook, folder, {**params, **extra}, threads=threads)
            if not is_done(folder):
                raise RuntimeError(f"{Path(notebook).name} finished without writing {folder / DONE_FILE}")
        except KeyboardInterrupt:
            error_fields = {"error": "interrupted by the user", "traceback_tail": ""}
            raise
        except Exception as error:  # any failure is recorded; the sweep goes on
            message, tail = describe_error(error)
            error_fields = {"error": message, "traceback_tail": tail}
        finally:
            finished = time.time()
            write_status(folder, state="failed" if error_fields else "done", finished_at=finished,
                         wall_s=finished - started,
                         total_wall_s=previous.get("total_wall_s", 0.0) + finished - started, **error_fields)
        return {"variant": name, "outcome": "failed" if error_fields else "done", **error_fields}
    finally:
        release_lock(folder)


def _train_in_subprocess(name: str, params: Mapping[str, Any], folder: Path, notebook: Path,
                         threads: int | None, retry_failed: bool) -> dict[str, Any]:
    """:func:`train_variant` in a fresh interpreter.

    Subprocesses rather than a multiprocessing pool: they need no ``__main__`` guard in the
    caller's script and work the same from a notebook kernel.
    """
    spec = {"name": name, "params": dict(params), "folder": str(folder), "notebook": str(notebook),
            "threads": threads, "retry_failed": retry_failed}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-c", "import sys; from lib.runs.runner import _main; _main(sys.argv[1:])"]
    process = subprocess.run(command + ["train-variant", json.dumps(spec)],
                             capture_output=True, text=True, env=env)
    for line in reversed(process.stdout.splitlines()):
        if line.startswith(_RESULT_PREFIX):
            return json.loads(line[len(_RESULT_PREFIX):])
    # the worker itself died (killed, out of memory): record it like a failed notebook
    message = f"worker process exited with code {process.returncode}"
    tail = "\n".join(process.stderr.splitlines()[-25:])
    if not is_done(folder) and lock_owner(folder) is None:
        write_status(folder, state="failed", error=message, traceback_tail=tail, finished_at=time.time())
    return {"variant": name, "outcome": "failed", "error": message, "traceback_tail": tail}


_RESULT_PREFIX = "TRAIN_VARIANT_RESULT "


def _main(argv: Sequence[str]) -> None:
    if len(argv) != 2 or argv[0] != "train-variant":
        raise SystemExit("usage: _main(['train-variant', '<json spec>'])  (the worker entry of run_variants)")
    spec = json.loads(argv[1])
    outcome = train_variant(spec["name"], spec["params"], spec["folder"], spec["notebook"],
                            spec["threads"], spec["retry_failed"])
    print(_RESULT_PREFIX + json.dumps(outcome, default=str), flush=True)


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


# Seconds per iteration relative to an `ae` variant of the same preset (measured at `small`:
# 0.49 s for ae/none, 1.35 s for FaceNet, which also trains its identity embedder first).
ENCODER_COST = {"facenet": 3.0}


def estimated_cost(variant: Variant) -> float:
    """Relative training cost of a variant: its steps times its encoder's per-step cost."""
    from lib.train.gan_config import make_gan_config, preset_value

    params = {k: v for k, v in variant.params.items() if k != "run_dir"}
    if params.get("system") == "latent-walk":  # fitted in seconds, no training steps
        return 0.0
    try:
        steps = preset_value(make_gan_config(**params), "steps")
    except (ConfigError, KeyError, TypeError):
        steps = 1
    return float(steps) * ENCODER_COST.get(str(params.get("encoder")), 1.0)


def schedule_order(variants: list[Variant]) -> list[Variant]:
    """The order in which workers take variants: most expensive first (so the workers finish
    together), except that FaceNet variants after the first go last: the first one trains the
    shared identity embedder, and a second one started beside it would only wait for it."""
    ranked = sorted(variants, key=estimated_cost, reverse=True)
    facenet = [v for v in ranked if v.params.get("encoder") == "facenet"]
    return [v for v in ranked if v not in facenet[1:]] + facenet[1:]


def run_variants(variants: Sequence[Variant], root: str | Path, *, parallel: int = 1,
                 notebook: str | Path | None = None, retry_failed: bool = True,
                 wait_for_others: bool = True, poll_s: float = 5.0, wait_timeout_s: float | None = None,
                 on_update: Callable[[pd.DataFrame], None] | None = None, progress: bool = True) -> pd.DataFrame:
    """Train ``variants`` into ``root/<variant>/`` (see module doc); returns the status table."""
    notebook = Path(notebook or default_train_notebook())
    if not isinstance(parallel, int) or parallel < 1:
        raise ConfigError(f"parallel={parallel!r} must be an integer >= 1")
    for variant in variants:
        check_parameters(notebook, {**variant.params, "run_dir": None})
    check_kernel()
    folders = prepare_variant_folders(variants, Path(root))
    threads = max(1, (os.cpu_count() or 1) // parallel)
    pending = {v.name: v for v in variants}
    bar = tqdm(total=len(variants), desc=f"variants ({Path(root).name})", unit="variant", disable=not progress)
    wait_started = time.time()

    def report(outcome: dict[str, Any]) -> None:
        name = outcome["variant"]
        if outcome["outcome"] != "locked":
            pending.pop(name, None)
            bar.update(1)
            bar.set_postfix_str(f"{name}: {outcome['outcome']}")
        if on_update is not None:
            on_update(status_table(folders))

    if on_update is not None:
        on_update(status_table(folders))
    for variant in variants:  # finished ones need no worker process
        if is_done(folders[variant.name]):
            report({"variant": variant.name, "outcome": "skipped"})
    while pending:
        todo = schedule_order(list(pending.values()))
        args = [(v.name, v.params, folders[v.name], notebook, threads, retry_failed) for v in todo]
        if parallel == 1 or len(todo) == 1:
            for arg in args:
                report(train_variant(*arg))
        else:
            # threads only wait on worker processes; each worker trains one variant
            with concurrent.futures.ThreadPoolExecutor(min(parallel, len(todo))) as pool:
                futures = [pool.submit(_train_in_subprocess, *arg) for arg in args]
                for future in concurrent.futures.as_completed(futures):
                    report(future.result())
        if not pending or not wait_for_others:
            break
        if wait_timeout_s is not None and time.time() - wait_started > wait_timeout_s:
            break
        # the rest are held by other runners: wait for their locks, then look again
        while all(lock_owner(folders[n]) is not None for n in pending):
            if wait_timeout_s is not None and time.time() - wait_started > wait_timeout_s:
                break
            time.sleep(poll_s)
    bar.close()
    return status_table(folders)


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


def run_grid(grid: str = "demo", preset: str = "small", *, variants: Sequence[str] | None = None,
             recipe: str = "thesis", seeds: Any = None, parallel: int = 1, steps: Sequence[str] = RUN_STEPS,
             overrides: Mapping[str, Any] | None = None,
             train_notebook: str | Path | None = None, eval_notebook: str | Path | None = None,
             eval_parameters: Mapping[str, Any] | None = None, retry_failed: bool = True,
             wait_for_others: bool = True, on_update: Callable[[pd.DataFrame], None] | None = None,
             progress: bool = True) -> SweepResult:
    """Train (``"train"`` in steps) and evaluate (``"evaluate"``) the grid's variants.

    ``variants`` picks some variants by name (None = all); every variant trains with ``recipe``
    (:mod:`lib.train.recipes`), once per seed of ``seeds`` (None: once, with 03's seed).  Evaluation
    covers every finished variant of the selection and runs 05 as the grid folder's name (:func:`grid_dir`).
    """
    steps = name_list(steps)
    for step in steps:
        check_choice("step", step, RUN_STEPS)
    if "recipe" in (overrides or {}):
        raise ConfigError("pass the recipe as run_grid(recipe=...), which also names the grid folder")
    chosen = select_variants(resolve_grid(grid, preset, {**(overrides or {}), **_recipe_override(recipe)}, seeds),
                             variants)
    root = grid_dir(grid, preset, recipe)
    if "evaluate" in steps:  # fail before training when 05 is missing or lacks a parameter
        check_parameters(eval_notebook or default_eval_notebook(),
                         {"runs": None, "preset": None, "run_name": None, **(eval_parameters or {})})
    if "train" in steps:
        status = run_variants(chosen, root, parallel=parallel, notebook=train_notebook,
                              retry_failed=retry_failed, wait_for_others=wait_for_others,
                              on_update=on_update, progress=progress)
    else:
        status = status_table({v.name: root / safe_name(v.name) for v in chosen})
    result = SweepResult(status=status)
    if "evaluate" in steps:
        finished = [Path(p) for p, state in zip(status["run_dir"], status["state"]) if state == "done"]
        if not finished:
            raise RuntimeError(f"no finished variant to evaluate in {root}; train first (steps=['train'])")
        result.results, result.evaluation_dir = run_evaluation_notebook(
            finished, preset, run_name=root.name, notebook=eval_notebook, parameters=eval_parameters)
    return result
