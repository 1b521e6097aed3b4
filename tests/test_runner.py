"""The sweep runner against small stand-in notebooks (the real 03 is slow), through submitit's local
executor (the slurm backend's code path except the scheduler): run, skip, failure, resume after a kill
and after a requeue, two runners at once, evaluation as a job, Slurm job parameters and bad options;
plus one slow test with the real 03."""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nbformat
import pytest

from lib import locks
from lib.config import ConfigError
from lib.paths import notebooks_dir
from lib.runs.backends import SUBMITIT_DIR
from lib.runs.grid import Variant
from lib.runs.runner import run_evaluation_notebook, read_status, run_grid, run_variants, variant_state

# A stand-in for 03_train: checkpoint per step, resume from it, train_done.json at the end.
STAND_IN_TRAIN = """
import json, os, pathlib, time
run = pathlib.Path(run_dir)
checkpoint = run / "checkpoint.json"
start = json.loads(checkpoint.read_text())["step"] if checkpoint.exists() else 0
with open(run / "starts.log", "a") as log:
    log.write(json.dumps({"pid": os.getpid(), "start": start, "threads": os.environ.get("OMP_NUM_THREADS")}) + "\\n")
if fail:
    raise ValueError("stand-in failure requested")
for step in range(start + 1, steps + 1):
    time.sleep(step_seconds)
    (run / "checkpoint.tmp").write_text(json.dumps({"step": step}))
    os.replace(run / "checkpoint.tmp", checkpoint)
    with open(run / "stats.jsonl", "a") as stats:
        stats.write(json.dumps({"step": step}) + "\\n")
(run / "train_done.json").write_text(json.dumps({"steps": steps}))
"""

# A stand-in for 05_evaluate: one results row per run, into its own run folder.
STAND_IN_EVAL = """
import json, pathlib, pandas as pd
from lib.paths import run_dir as make_run_dir
rows = [{"run": pathlib.Path(r).name, "steps": json.loads((pathlib.Path(r) / "train_done.json").read_text())["steps"]}
        for r in runs]
pd.DataFrame(rows).to_csv(make_run_dir("05_evaluate", run_name) / "results.csv", index=False)
"""


def write_notebook(path: Path, parameters: str, body: str) -> Path:
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(textwrap.dedent(parameters).strip())
    cell.metadata.tags = ["parameters"]
    notebook.cells = [cell, nbformat.v4.new_code_cell(body.strip())]
    notebook.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, str(path))
    return path


@pytest.fixture
def train_notebook(tmp_path):
    return write_notebook(tmp_path / "03_train.ipynb",
                          "run_dir = None\npreset = 'tiny'\nsteps = 3\nfail = False\nstep_seconds = 0.0",
                          STAND_IN_TRAIN)


@pytest.fixture
def runs_root(tmp_path, monkeypatch):
    monkeypatch.setenv("VICE_RUNS_DIR", str(tmp_path / "runs"))
    return tmp_path / "runs" / "stand-in-tiny"


def starts(folder: Path) -> list[dict]:
    path = folder / "starts.log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_two_variants_run_then_skip(train_notebook, runs_root):
    variants = [Variant("a", {"preset": "tiny", "steps": 2}), Variant("b", {"preset": "tiny", "steps": 3})]
    updates = []
    table = run_variants(variants, runs_root, notebook=train_notebook, on_update=updates.append, progress=False,
                         poll_s=0.2)
    assert list(table["state"]) == ["done", "done"]
    assert list(table["steps"]) == [2, 3]
    for name in "ab":
        folder = runs_root / name
        assert (folder / "03_train.ipynb").is_file() and (folder / "train_done.json").is_file()
        assert json.loads((folder / "params.json").read_text())["preset"] == "tiny"
        status = read_status(folder)
        assert status["state"] == "done" and status["attempts"] == 1 and status["wall_s"] > 0
        assert status["backend"] == "local" and status["job_id"]  # a submitit job, its id recorded
        assert not (folder / locks.OWNER_FILE).exists()  # the job released the folder
        assert starts(folder)[0]["threads"] == str(os.cpu_count())  # serial: all threads to one kernel
    assert (runs_root / SUBMITIT_DIR).is_dir()  # the jobs' logs
    # the live table: pending at the start, queued when submitted (one job at a time), done at the end
    seen = [dict(zip(u["variant"], u["state"])) for u in updates]
    assert seen[0] == {"a": "pending", "b": "pending"} and seen[-1] == {"a": "done", "b": "done"}
    assert {"a": "queued", "b": "pending"} in seen or {"a": "running", "b": "pending"} in seen
    again = run_variants(variants, runs_root, notebook=train_notebook, progress=False)
    assert list(again["state"]) == ["done", "done"]
    assert all(len(starts(runs_root / n)) == 1 for n in "ab")  # nothing ran a second time
    assert read_status(runs_root / "a")["attempts"] == 1


def test_failed_variant_is_recorded_and_others_finish(train_notebook, runs_root):
    variants = [Variant("bad", {"preset": "tiny", "fail": True}), Variant("good", {"preset": "tiny"})]
    table = run_variants(variants, runs_root, notebook=train_notebook, parallel=2, progress=False,
                         poll_s=0.2).set_index("variant")
    assert table.loc["bad", "state"] == "failed" and table.loc["good", "state"] == "done"
    assert "ValueError: stand-in failure requested" in table.loc["bad", "error"]
    assert Path(table.loc["bad", "log"]).is_file()  # the job's log, to read
    status = read_status(runs_root / "bad")
    assert "stand-in failure requested" in status["traceback_tail"] and status["finished_at"] >= status["started_at"]
    assert (runs_root / "bad" / "03_train.ipynb").is_file()  # the failed notebook is kept to read


def test_changed_params_and_unknown_parameter_fail_before_work(train_notebook, runs_root):
    run_variants([Variant("a", {"preset": "tiny", "steps": 1})], runs_root, notebook=train_notebook, progress=False)
    with pytest.raises(ConfigError, match="different parameters"):
        run_variants([Variant("a", {"preset": "tiny", "steps": 2})], runs_root, notebook=train_notebook)
    with pytest.raises(ConfigError, match="has no parameters \\['encoderr'\\]"):
        run_variants([Variant("c", {"encoderr": "ae"})], runs_root, notebook=train_notebook)
    assert not (runs_root / "c").exists()


def test_owner_lock_of_dead_process_is_broken_and_a_job_lock_is_inherited(tmp_path, monkeypatch):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / locks.OWNER_FILE).write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname()}))
    assert variant_state(tmp_path) == "pending"
    assert locks.try_lock(tmp_path, locks.OWNER_FILE)  # the stale lock is broken
    assert variant_state(tmp_path) == "running"  # a live owner: someone trains it
    with pytest.raises(locks.RunFolderBusy, match="in use by pid"):
        with locks.own_run_folder(tmp_path):
            pass
    monkeypatch.setenv(locks.INHERITED_OWNER_ENV, str(os.getpid()))  # as 03's kernel inside our job
    with locks.own_run_folder(tmp_path):
        pass
    assert (tmp_path / locks.OWNER_FILE).exists()  # the job's lock stays: the job releases it
    locks.release_lock(tmp_path, locks.OWNER_FILE)
    assert not (tmp_path / locks.OWNER_FILE).exists()


def test_a_kernel_writing_for_its_job_stops_when_the_job_dies(tmp_path, monkeypatch):
    """No writer without the lock: a job killed before its kernel leaves the kernel interrupted, not training."""
    job = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1.5)"])
    (tmp_path / locks.OWNER_FILE).write_text(json.dumps({"pid": job.pid, "host": socket.gethostname()}))
    monkeypatch.setenv(locks.INHERITED_OWNER_ENV, str(job.pid))
    started = time.time()
    with pytest.raises(KeyboardInterrupt):
        with locks.own_run_folder(tmp_path):
            while time.time() - started < 20:  # "training"
                time.sleep(0.05)
                job.poll()  # reap it, so its pid is gone
    assert time.time() - started < 5


RUNNER_SCRIPT = """
import json, signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)  # as from a terminal, even when pytest runs in the background
from lib.runs.grid import Variant
from lib.runs.runner import run_variants
root, notebook, steps, step_seconds, parallel = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
variants = [Variant(n, {"preset": "tiny", "steps": steps, "step_seconds": step_seconds}) for n in sys.argv[6:]]
table = run_variants(variants, root, notebook=notebook, parallel=parallel, poll_s=0.3, progress=False)
print("STATES", json.dumps(dict(zip(table["variant"], table["state"]))))
"""


def start_runner(tmp_path, root, notebook, steps, step_seconds, names, parallel=1):
    script = tmp_path / "runner_script.py"
    script.write_text(RUNNER_SCRIPT)
    command = [sys.executable, str(script), str(root), str(notebook), str(steps), str(step_seconds), str(parallel), *names]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env=dict(os.environ))


def wait_for(predicate, timeout=60.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_killed_variant_resumes_from_its_checkpoint(tmp_path, train_notebook, runs_root):
    folder = runs_root / "v"
    runner = start_runner(tmp_path, runs_root, train_notebook, steps=40, step_seconds=0.1, names=["v"])
    checkpoint = folder / "checkpoint.json"
    try:
        assert wait_for(lambda: checkpoint.exists() and json.loads(checkpoint.read_text())["step"] >= 2)
    finally:
        os.killpg(runner.pid, signal.SIGKILL)  # the runner and its kernel, as a crash would
        runner.wait()
    reached = json.loads(checkpoint.read_text())["step"]
    assert not (folder / "train_done.json").exists()
    assert wait_for(lambda: locks.lock_owner(folder, locks.OWNER_FILE) is None)  # the job died with its runner
    assert read_status(folder)["state"] == "running"  # left behind by the killed job
    assert variant_state(folder) == "interrupted"  # ...whose process is gone
    table = run_variants([Variant("v", {"preset": "tiny", "steps": 40, "step_seconds": 0.1})], runs_root,
                         notebook=train_notebook, progress=False)
    assert table.loc[0, "state"] == "done" and table.loc[0, "steps"] == 40
    runs = starts(folder)
    assert len(runs) == 2 and runs[0]["start"] == 0 and runs[1]["start"] >= reached >= 2
    assert read_status(folder)["attempts"] == 2


def test_interrupted_local_runner_stops_its_jobs_and_they_resume(tmp_path, train_notebook, runs_root):
    folder = runs_root / "v"
    runner = start_runner(tmp_path, runs_root, train_notebook, steps=60, step_seconds=0.1, names=["v"])
    checkpoint = folder / "checkpoint.json"
    assert wait_for(lambda: checkpoint.exists() and json.loads(checkpoint.read_text())["step"] >= 2)
    job_pid = read_status(folder)["pid"]
    os.kill(runner.pid, signal.SIGINT)  # Ctrl-C / the notebook's stop button
    runner.communicate(timeout=60)
    assert wait_for(lambda: locks.lock_owner(folder, locks.OWNER_FILE) is None)
    assert wait_for(lambda: not locks.pid_alive(job_pid) or open(f"/proc/{job_pid}/stat").read().split()[2] == "Z")
    stopped = json.loads(checkpoint.read_text())["step"]
    time.sleep(1.0)
    assert json.loads(checkpoint.read_text())["step"] == stopped < 60  # nothing trains on
    assert read_status(folder)["state"] == "interrupted"
    table = run_variants([Variant("v", {"preset": "tiny", "steps": 60, "step_seconds": 0.1})], runs_root,
                         notebook=train_notebook, progress=False, poll_s=0.2)
    assert table.loc[0, "state"] == "done" and starts(folder)[-1]["start"] >= stopped


def test_a_variants_own_thread_count_wins_over_its_share(tmp_path, runs_root):
    """More threads than cores stall OpenMP, so ``num_threads=1`` in a variant is what its kernel gets."""
    from lib.runs.runner import train_variant

    notebook = write_notebook(tmp_path / "03_train.ipynb", "run_dir = None\npreset = 'tiny'\nsteps = 1\nfail = False\n"
                              "step_seconds = 0.0\nnum_threads = None",
                              STAND_IN_TRAIN + "\n(run / 'num_threads.txt').write_text(str(num_threads))")
    for name, params, expected in (("own", {"num_threads": 1}, "1"), ("share", {}, "4")):
        outcome = train_variant(name, {"preset": "tiny", **params}, runs_root / name, notebook, threads=4)
        assert outcome["outcome"] == "done"
        assert starts(runs_root / name)[0]["threads"] == expected
        assert (runs_root / name / "num_threads.txt").read_text() == expected
        assert read_status(runs_root / name)["threads"] == int(expected)


def test_two_runners_at_once_train_each_variant_once(tmp_path, train_notebook, runs_root):
    names = ["x", "y"]
    first = start_runner(tmp_path, runs_root, train_notebook, 6, 0.3, names, parallel=2)
    assert wait_for(lambda: any((runs_root / n / "starts.log").exists() for n in names))
    second = start_runner(tmp_path, runs_root, train_notebook, 6, 0.3, names, parallel=1)
    outputs = [process.communicate(timeout=120) for process in (first, second)]
    for process, (out, err) in zip((first, second), outputs):
        assert process.returncode == 0, err[-3000:]
        assert 'STATES {"x": "done", "y": "done"}' in out
    for name in names:
        assert len(starts(runs_root / name)) == 1, f"{name} was trained by both runners"
        assert starts(runs_root / name)[0]["threads"] == str(max(1, os.cpu_count() // 2))


def test_run_grid_evaluates_finished_variants(tmp_path, train_notebook, runs_root):
    eval_notebook = write_notebook(tmp_path / "05_evaluate.ipynb", "runs = None\npreset = 'tiny'\nrun_name = None",
                                   STAND_IN_EVAL)
    # the real baseline grid's parameters go to the stand-in, so it must declare them
    write_notebook(train_notebook, "run_dir = None\npreset = 'tiny'\nsteps = 2\nfail = False\nstep_seconds = 0.0\n"
                   "encoder = 'ae'\ncontent_mode = 'all'\nfinetune = False\ncomposition = 'seen'", STAND_IN_TRAIN)
    result = run_grid("baseline", "tiny", train_notebook=train_notebook, eval_notebook=eval_notebook, progress=False)
    assert list(result.status["state"]) == ["done"]
    assert result.evaluation_dir.name == "baseline-tiny" and (result.evaluation_dir / "05_evaluate.ipynb").is_file()
    assert result.results.to_dict("records") == [{"run": "baseline-mocogan", "steps": 2}]
    table, _ = run_evaluation_notebook([runs_root.parent / "baseline-tiny" / "baseline-mocogan"], "tiny", "again",
                             notebook=eval_notebook)
    assert len(table) == 1
    with pytest.raises(ConfigError, match="valid choices"):
        run_grid("baseline", "tiny", steps=["trian"], train_notebook=train_notebook, eval_notebook=eval_notebook)
    # another recipe: its own grid folder and evaluation name, the recipe passed to every variant
    write_notebook(train_notebook, "run_dir = None\npreset = 'tiny'\nsteps = 2\nfail = False\nstep_seconds = 0.0\n"
                   "encoder = 'ae'\ncontent_mode = 'all'\nfinetune = False\ncomposition = 'seen'\nrecipe = 'thesis'",
                   STAND_IN_TRAIN)
    fast = run_grid("baseline", "tiny", recipe="fast", train_notebook=train_notebook, eval_notebook=eval_notebook,
                    progress=False)
    assert fast.evaluation_dir.name == "baseline-tiny-fast"
    assert json.loads((runs_root.parent / "baseline-tiny-fast" / "baseline-mocogan" / "params.json").read_text())[
        "recipe"] == "fast"
    with pytest.raises(ConfigError, match="thesis"):
        run_grid("baseline", "tiny", recipe="quick", train_notebook=train_notebook, eval_notebook=eval_notebook)


def test_requeued_job_resumes_from_its_checkpoint(tmp_path, train_notebook, runs_root):
    """A job preempted or timed out (submitit's signal, here sent by hand) checkpoints, is requeued by
    submitit and resumes 03 from its checkpoint: the path a Slurm preemption takes."""
    from lib.runs.backends import make_backend_options
    from lib.runs.runner import _Sweep

    variant = Variant("v", {"preset": "tiny", "steps": 30, "step_seconds": 0.1})
    sweep = _Sweep([variant], runs_root, make_backend_options("local"), train_notebook, True, None, False)
    (job,) = sweep.submit_ready()
    checkpoint = runs_root / "v" / "checkpoint.json"
    assert wait_for(lambda: checkpoint.exists() and json.loads(checkpoint.read_text())["step"] >= 3)
    os.kill(read_status(runs_root / "v")["pid"], signal.SIGUSR2)  # what Slurm and submitit send before a limit
    assert wait_for(lambda: len(starts(runs_root / "v")) == 2, timeout=90)
    table = sweep.run(poll_s=0.2)
    assert table.loc[0, "state"] == "done" and table.loc[0, "steps"] == 30
    first, second = starts(runs_root / "v")
    assert first["start"] == 0 and second["start"] >= 3  # resumed, not restarted
    status = read_status(runs_root / "v")
    assert status["attempts"] == 2 and status["job_id"] == str(job.job_id)  # the same job, requeued


def test_requeued_job_on_another_node_takes_over_its_previous_attempts_lock(train_notebook, runs_root,
                                                                             monkeypatch):
    """On Slurm a requeued job may start on another node; the lock its previous attempt left there cannot
    be judged stale from here (lib.locks assumes a foreign host's lock alive), so the job takes it over."""
    from lib.io import atomic_write_json
    from lib.runs import runner

    folder = runs_root / "v"
    folder.mkdir(parents=True)
    previous = {"pid": 4242, "host": "node-that-died"}
    (folder / locks.OWNER_FILE).write_text(json.dumps({**previous, "since": 0}))
    atomic_write_json(folder / "status.json", {"state": "interrupted", "job_id": "77_0", **previous})
    monkeypatch.setattr(runner, "_current_job", lambda: ("77_0", None))
    monkeypatch.setattr(runner, "REQUEUE_LOCK_WAIT_S", 0.5)
    outcome = runner.train_variant("v", {"preset": "tiny", "steps": 2}, folder, train_notebook)
    assert outcome["outcome"] == "done" and read_status(folder)["attempts"] == 1
    # another job's lock from another node is left alone
    other = runs_root / "w"
    other.mkdir()
    (other / locks.OWNER_FILE).write_text(json.dumps({**previous, "since": 0}))
    atomic_write_json(other / "status.json", {"state": "running", "job_id": "78_0", **previous})
    assert runner.train_variant("w", {"preset": "tiny", "steps": 2}, other, train_notebook)["outcome"] == "locked"


class _RecordingExecutor:
    """Stands in for an executor: records the jobs instead of running them."""

    def __init__(self, folder, options, threads):
        self.folder, self.options, self.threads, self.jobs, self.parameters = folder, options, threads, [], {}

    @contextlib.contextmanager
    def batch(self):  # every job of the array is recorded, then the sweep stops here: nothing runs
        yield
        raise SystemExit("recorded")

    def update_parameters(self, **parameters):
        self.parameters.update(parameters)

    def submit(self, function, *args):
        self.jobs.append((function, args, dict(self.parameters)))


def test_every_grid_variant_becomes_a_slurm_job_with_its_parameters(tmp_path, monkeypatch):
    from submitit.slurm.slurm import _make_sbatch_string

    from lib.runs import backends, runner
    from lib.runs.grid import resolve_grid

    monkeypatch.setenv("VICE_RUNS_DIR", str(tmp_path / "runs"))
    executors = []

    def recording(folder, options, threads):
        executors.append(_RecordingExecutor(folder, options, threads))
        return executors[-1]

    monkeypatch.setitem(backends.BACKENDS, "slurm", dataclasses.replace(backends.BACKENDS["slurm"], executor=recording))
    monkeypatch.setattr(runner, "check_kernel", lambda: None)
    options = {"slurm_partition": "gpu", "slurm_gpus": 1, "slurm_cpus": 6, "slurm_mem_gb": 24,
               "slurm_time_min": 240, "slurm_options": {"account": "lab", "qos": "high"}}
    with pytest.raises(SystemExit, match="recorded"):
        run_grid("all", "paper", recipe="fast", seeds=[0, 1], backend="slurm", backend_options=options,
                 steps=["train"], progress=False)
    (executor,) = executors
    expected = resolve_grid("all", "paper", {"recipe": "fast"}, [0, 1])
    assert len(executor.jobs) == len(expected) == 2 * len({v.name.rsplit("-seed", 1)[0] for v in expected})
    for (job, args, _), variant in zip(executor.jobs, expected):  # one job per variant x seed
        assert args == () and job.name == variant.name and job.params == variant.params and job.threads == 6
        assert Path(job.folder) == tmp_path / "runs" / "all-paper-fast" / variant.name
        status = read_status(Path(job.folder))
        assert status["state"] == "queued" and status["backend"] == "slurm"
    # the sbatch header submitit writes for these options
    parameters = backends.slurm_parameters(backends.make_backend_options("slurm", parallel=4, **options), 6)
    sbatch = _make_sbatch_string(command="python -m submitit.core._submit x", folder=str(tmp_path),
                                 **{k: v for k, v in parameters.items() if k != "array_parallelism"})
    for line in ("--partition=gpu", "--gpus-per-node=1", "--cpus-per-task=6", "--mem=24576MB", "--time=240",
                 "--account=lab", "--qos=high"):
        assert f"#SBATCH {line}" in sbatch, line
    assert parameters["array_parallelism"] == 4


def test_bad_backend_or_options_fail_before_anything_is_submitted(tmp_path, monkeypatch, train_notebook, runs_root):
    variants = [Variant("a", {"preset": "tiny"})]
    with pytest.raises(ConfigError, match="'local', 'slurm'"):
        run_variants(variants, runs_root, backend="slrum", notebook=train_notebook)
    with pytest.raises(ConfigError, match="slurm backend"):
        run_variants(variants, runs_root, backend_options={"slurm_partition": "gpu"}, notebook=train_notebook)
    with pytest.raises(ConfigError, match="unknown runner options \\['partition'\\]"):
        run_variants(variants, runs_root, backend="slurm", backend_options={"partition": "gpu"},
                     notebook=train_notebook)
    with pytest.raises(ConfigError, match="sbatch option names"):
        run_variants(variants, runs_root, backend="slurm", backend_options={"slurm_options": {"--qos": "x"}},
                     notebook=train_notebook)
    with pytest.raises(ConfigError, match="parallel=0"):
        run_variants(variants, runs_root, parallel=0, notebook=train_notebook)
    with monkeypatch.context() as patch:  # a machine without Slurm: no srun on PATH
        patch.setenv("PATH", str(tmp_path))
        with pytest.raises(RuntimeError, match="Slurm login node"):
            run_variants(variants, runs_root, backend="slurm", notebook=train_notebook, progress=False)
    assert not runs_root.parent.exists()  # nothing was created, let alone submitted


def test_grid_through_the_slurm_code_path_matches_the_local_one(tmp_path, monkeypatch, train_notebook, runs_root):
    """Both backends' code paths on a 2-variant grid: the slurm path (evaluation submitted at once with a
    dependency on the training jobs) run by submitit's local executor, where the dependency is a wait
    on the training jobs' processes.  Same run folders, same results table."""
    import submitit

    from lib.runs import backends

    class LocalAsSlurm:
        def __init__(self, folder, options, threads):
            self.inner = submitit.LocalExecutor(folder=str(folder))
            self.inner.update_parameters(timeout_min=30)
            self.parameters = {}

        def update_parameters(self, **parameters):
            self.parameters.update(parameters)
            dependency = parameters.get("additional_parameters", {}).get("dependency")
            if dependency:  # afterany:<ids>: wait until those processes have ended
                pids = " ".join(dependency.split(":")[1:])
                self.inner.update_parameters(setup=[f"for p in {pids}; do while kill -0 $p 2>/dev/null; "
                                                    "do sleep 0.2; done; done"])

        def batch(self):
            return self.inner.batch()

        def submit(self, function, *args):
            return self.inner.submit(function, *args)

    eval_notebook = write_notebook(tmp_path / "05_evaluate.ipynb", "runs = None\npreset = 'tiny'\nrun_name = None",
                                   STAND_IN_EVAL)
    write_notebook(train_notebook, "run_dir = None\npreset = 'tiny'\nsteps = 2\nfail = False\nstep_seconds = 0.3\n"
                   "encoder = 'ae'\ncontent_mode = 'all'\nfinetune = False\ncomposition = 'seen'\nrecipe = 'thesis'\n"
                   "system = 'vicegan'", STAND_IN_TRAIN)
    picked = ["thesis-m4-seen", "baseline-mocogan"]
    results = {}
    for backend in ("local", "slurm"):
        monkeypatch.setenv("VICE_RUNS_DIR", str(tmp_path / backend))
        if backend == "slurm":
            monkeypatch.setitem(backends.BACKENDS, "slurm",
                                dataclasses.replace(backends.BACKENDS["slurm"], executor=LocalAsSlurm))
        result = run_grid("demo", "tiny", variants=picked, backend=backend, parallel=2, train_notebook=train_notebook,
                          eval_notebook=eval_notebook, progress=False, poll_s=0.2)
        assert list(result.status["state"]) == ["done", "done"]
        grid = tmp_path / backend / "demo-tiny"
        results[backend] = (sorted(p.name for p in grid.iterdir() if not p.name.startswith(".")),
                            result.results.sort_values("run").to_dict("records"), result.evaluation_dir.name)
    assert results["local"] == results["slurm"]
    assert results["local"][0] == sorted(picked) and results["local"][2] == "demo-tiny"


def _slurm_partition() -> str | None:
    """The default partition of a reachable Slurm cluster with an idle node, else None."""
    import shutil

    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return None
    listed = subprocess.run(["sinfo", "-h", "-o", "%P %T"], capture_output=True, text=True)
    for line in listed.stdout.splitlines():
        name, state = line.split()
        if name.endswith("*") and state in ("idle", "mixed"):
            return name.rstrip("*")
    return None


@pytest.mark.slow
def test_slurm_backend_on_a_localhost_cluster(tmp_path, monkeypatch, train_notebook):
    """The slurm backend for real: sbatch job array, 05 as a dependent job (tools/slurm_localhost.sh)."""
    partition = _slurm_partition()
    if partition is None:
        pytest.skip("no Slurm cluster reachable (sinfo/sbatch missing or no idle node); start a one-node "
                    "cluster on this machine with `sudo bash tools/slurm_localhost.sh`")
    monkeypatch.setenv("VICE_RUNS_DIR", str(tmp_path / "runs"))
    eval_notebook = write_notebook(tmp_path / "05_evaluate.ipynb", "runs = None\npreset = 'tiny'\nrun_name = None",
                                   STAND_IN_EVAL)
    write_notebook(train_notebook, "run_dir = None\npreset = 'tiny'\nsteps = 2\nfail = False\nstep_seconds = 0.2\n"
                   "encoder = 'ae'\ncontent_mode = 'all'\nfinetune = False\ncomposition = 'seen'\nrecipe = 'thesis'\n"
                   "system = 'vicegan'", STAND_IN_TRAIN)
    options = {"slurm_partition": partition, "slurm_gpus": 0, "slurm_cpus": 1, "slurm_mem_gb": 1, "slurm_time_min": 10}
    result = run_grid("demo", "tiny", variants=["thesis-m4-seen", "baseline-mocogan"], backend="slurm", parallel=2,
                      backend_options=options, train_notebook=train_notebook, eval_notebook=eval_notebook,
                      progress=False, poll_s=0.5)
    assert list(result.status["state"]) == ["done", "done"]
    assert sorted(result.results["run"]) == ["baseline-mocogan", "thesis-m4-seen"]
    for row in result.status.itertuples():
        status = read_status(Path(row.run_dir))
        assert status["backend"] == "slurm" and "_" in status["job_id"]  # an element of one job array
        assert Path(status["log"]).is_file()


@pytest.mark.slow
def test_real_train_notebook_at_tiny(tmp_path, monkeypatch):
    """The MoCoGAN baseline (needs the cache, not the autoencoder) through the real 01 and 03."""
    missing = [n for n in ("01_preprocess", "03_train") if not (notebooks_dir() / f"{n}.ipynb").exists()]
    if missing:
        pytest.skip(f"notebooks {missing} do not exist yet (written in parallel by other engineers)")
    monkeypatch.setenv("VICE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("VICE_RUNS_DIR", str(tmp_path / "runs"))
    from lib.runs.notebooks import execute_notebook
    execute_notebook(notebooks_dir() / "01_preprocess.ipynb", tmp_path / "runs" / "01_preprocess", {"preset": "tiny"})
    result = run_grid("baseline", "tiny", steps=["train"], progress=False)
    assert list(result.status["state"]) == ["done"], result.status.to_dict("records")
    again = run_grid("baseline", "tiny", steps=["train"], progress=False)
    assert read_status(Path(again.status.loc[0, "run_dir"]))["attempts"] == 1


@pytest.mark.slow
def test_every_seed_system_trains_through_the_runner_and_05_scores_it(tmp_path, monkeypatch):
    """The seeds' systems of the baselines grid through the real 01, 02, 03 and 05 at tiny: each run folder names
    its system and 05's table has one row for each."""
    monkeypatch.setenv("VICE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("VICE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("VICE_FIGURES_DIR", str(tmp_path / "figures"))
    from lib.runs.notebooks import execute_notebook
    for stage in ("01_preprocess", "02_autoencoders"):
        execute_notebook(notebooks_dir() / f"{stage}.ipynb", tmp_path / "runs" / stage, {"preset": "tiny"})
    systems = {"baseline-latent-walk": "latent-walk", "baseline-fevgan": "fevgan", "baseline-reenact": "reenact"}
    result = run_grid("baselines", "tiny", variants=list(systems), overrides={"steps": 2}, parallel=2, progress=False)
    assert list(result.status["state"]) == ["done"] * 3, result.status.to_dict("records")
    for row in result.status.itertuples():
        assert json.loads((Path(row.run_dir) / "config.json").read_text())["system"] == systems[row.variant]
    scored = result.results[result.results["run"] != "real"]  # 05 adds the real videos' reference row
    assert sorted(scored["run"]) == sorted(systems) and scored["ssim"].between(-1, 1).all()


@pytest.mark.slow
def test_demo_runs_the_stages_then_skips_them(tmp_path, monkeypatch, capsys):
    """demo.main with stand-in 01/03/05 notebooks (02 missing): runs, skips 02, then resumes nothing."""
    from lib.runs import demo, notebooks

    books = tmp_path / "notebooks"
    books.mkdir()
    write_notebook(books / "01_preprocess.ipynb", "preset = 'small'",
                   "import os, pathlib; pathlib.Path(os.environ['VICE_DATA_DIR']).mkdir(parents=True, exist_ok=True)\n"
                   "open(pathlib.Path(os.environ['VICE_DATA_DIR']) / 'calls.log', 'a').write('01\\n')")
    write_notebook(books / "03_train.ipynb",
                   "run_dir = None\npreset = 'tiny'\nsteps = 1\nfail = False\nstep_seconds = 0.0\nencoder = 'ae'\n"
                   "content_mode = 'all'\nfinetune = False\ncomposition = 'seen'\nconsistency_loss = 'mse'\n"
                   "consistency_scale = None\nnum_threads = None", STAND_IN_TRAIN)
    write_notebook(books / "05_evaluate.ipynb", "runs = None\npreset = 'tiny'\nrun_name = None",
                   STAND_IN_EVAL + "\n(make_run_dir('05_evaluate', run_name) / 'results.md').write_text('| run |')")
    for module in (demo, notebooks):
        monkeypatch.setattr(module, "notebooks_dir", lambda: books)
    monkeypatch.setattr(demo, "_cache_exists", lambda preset: None)
    monkeypatch.setattr(demo, "prepare_instruments", lambda preset: None)  # the stand-in 01 writes no cache
    # one variant, the thesis recipe (the stand-in 03 has no recipe parameter)
    monkeypatch.setitem(demo.PLANS, "demo", demo.Plan("demo", "baseline", "thesis", None, {}, "test"))
    drawn = []
    monkeypatch.setattr(demo, "draw_figures", lambda preset, plan="demo": drawn.append(preset))
    monkeypatch.setenv("VICE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("VICE_RUNS_DIR", str(tmp_path / "runs"))
    assert demo.main("tiny", parallel=2) == 0
    out = capsys.readouterr().out
    assert "SKIPPED 02_autoencoders.ipynb" in out and "05_evaluate: done" in out
    assert (tmp_path / "runs" / "01_preprocess" / "demo-tiny" / "01_preprocess.ipynb").is_file()
    results = tmp_path / "runs" / "05_evaluate" / "demo-tiny" / "results.csv"
    # 05 draws the figures itself when it runs; the demo redraws them only when 05 was skipped
    assert results.read_text().splitlines()[1:] == ["baseline-mocogan,1"] and drawn == []
    assert demo.main("tiny", parallel=2) == 0  # second call: everything skipped
    out = capsys.readouterr().out
    assert "01_preprocess: already done" in out and "already evaluated" in out and drawn == ["tiny"]
    assert (tmp_path / "data" / "calls.log").read_text() == "01\n"
    assert len(starts(tmp_path / "runs" / "baseline-tiny" / "baseline-mocogan")) == 1


# A stand-in for 03 whose "losses" come from a random stream kept in its checkpoint, as 03 keeps its RNG states:
# a resumed run must write the same losses as an uninterrupted one.
STAND_IN_TRAIN_SEEDED = """
import json, os, pathlib, random, time
run = pathlib.Path(run_dir)
checkpoint = run / "checkpoint.json"
stream = random.Random(seed)
start = 0
if checkpoint.exists():
    saved = json.loads(checkpoint.read_text())
    start = saved["step"]
    version, state, gauss = saved["rng"]
    stream.setstate((version, tuple(state), gauss))
with open(run / "starts.log", "a") as log:
    log.write(json.dumps({"pid": os.getpid(), "start": start, "job": os.environ.get("SLURM_JOB_ID")}) + "\\n")
lines = (run / "stats.jsonl").read_text().splitlines() if (run / "stats.jsonl").exists() else []
(run / "stats.jsonl").write_text("".join(line + "\\n" for line in lines[:start]))  # steps past the checkpoint go
for step in range(start + 1, steps + 1):
    time.sleep(step_seconds)
    loss = stream.random()
    with open(run / "stats.jsonl", "a") as stats:
        stats.write(json.dumps({"step": step, "loss": loss}) + "\\n")
    (run / "checkpoint.tmp").write_text(json.dumps({"step": step, "rng": stream.getstate()}))
    os.replace(run / "checkpoint.tmp", checkpoint)
(run / "train_done.json").write_text(json.dumps({"steps": steps}))
"""


def _seeded_losses(seed: int, steps: int) -> list[float]:
    import random

    stream = random.Random(seed)
    return [stream.random() for _ in range(steps)]


@pytest.mark.slow
def test_slurm_time_limit_signal_requeues_and_resumes_with_identical_losses(tmp_path, monkeypatch):
    """Slurm's time-limit warning (USR2, which submitit asks sbatch to send before the limit) sent with scancel
    to a running job on the localhost cluster: submitit checkpoints and requeues the same job, which resumes
    from 03's checkpoint and writes the losses an uninterrupted run writes."""
    partition = _slurm_partition()
    if partition is None:
        pytest.skip("no Slurm cluster reachable (sinfo/sbatch missing or no idle node); start a one-node "
                    "cluster on this machine with `sudo bash tools/slurm_localhost.sh`")
    from lib.runs.backends import make_backend_options
    from lib.runs.runner import _Sweep

    notebook = write_notebook(tmp_path / "03_train.ipynb", "run_dir = None\npreset = 'tiny'\nsteps = 3\n"
                              "step_seconds = 0.0\nseed = 0", STAND_IN_TRAIN_SEEDED)
    runs_root = tmp_path / "runs" / "stand-in-tiny"
    steps, seed = 40, 7
    options = make_backend_options("slurm", slurm_partition=partition, slurm_gpus=0, slurm_cpus=1, slurm_mem_gb=1,
                                   slurm_time_min=10)
    sweep = _Sweep([Variant("v", {"preset": "tiny", "steps": steps, "step_seconds": 0.25, "seed": seed})],
                   runs_root, options, notebook, True, None, False)
    (job,) = sweep.submit_ready()
    folder = runs_root / "v"
    checkpoint = folder / "checkpoint.json"
    assert wait_for(lambda: checkpoint.exists() and json.loads(checkpoint.read_text())["step"] >= 5, timeout=120)
    job_id = read_status(folder)["job_id"]
    subprocess.run(["scancel", "--signal=USR2", job_id], check=True)
    assert wait_for(lambda: len(starts(folder)) == 2, timeout=180), (folder / "starts.log").read_text()
    table = sweep.run(poll_s=0.5)
    assert table.loc[0, "state"] == "done" and table.loc[0, "steps"] == steps
    first, second = starts(folder)
    assert first["start"] == 0 and 5 <= second["start"] < steps  # resumed from its checkpoint, not restarted
    assert first["job"] is not None and second["job"] == first["job"]  # both attempts ran as that Slurm job
    status = read_status(folder)
    assert status["attempts"] == 2 and status["job_id"] == job_id  # the same job, requeued by Slurm
    losses = [json.loads(line)["loss"] for line in (folder / "stats.jsonl").read_text().splitlines()]
    assert losses == _seeded_losses(seed, steps)
