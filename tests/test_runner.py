"""The sweep runner against small stand-in notebooks (the real 03 is slow): run, skip, failure,
resume after a kill, two runners at once, evaluation; plus one slow test with the real 03."""
from __future__ import annotations

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

from lib.config import ConfigError
from lib.paths import notebooks_dir
from lib.runs.grid import Variant
from lib.runs.runner import (LOCK_FILE, run_evaluation_notebook, lock_owner, read_status, run_grid, run_variants,
                             try_lock, release_lock, variant_state)

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
    table = run_variants(variants, runs_root, notebook=train_notebook, on_update=updates.append, progress=False)
    assert list(table["state"]) == ["done", "done"]
    assert list(table["steps"]) == [2, 3]
    for name in "ab":
        folder = runs_root / name
        assert (folder / "03_train.ipynb").is_file() and (folder / "train_done.json").is_file()
        assert json.loads((folder / "params.json").read_text())["preset"] == "tiny"
        status = read_status(folder)
        assert status["state"] == "done" and status["attempts"] == 1 and status["wall_s"] > 0
        assert not (folder / LOCK_FILE).exists()
        assert starts(folder)[0]["threads"] == str(os.cpu_count())  # serial: all threads to one kernel
    assert len(updates) == 3  # once at the start, once per variant
    again = run_variants(variants, runs_root, notebook=train_notebook, progress=False)
    assert list(again["state"]) == ["done", "done"]
    assert all(len(starts(runs_root / n)) == 1 for n in "ab")  # nothing ran a second time
    assert read_status(runs_root / "a")["attempts"] == 1


def test_failed_variant_is_recorded_and_others_finish(train_notebook, runs_root):
    variants = [Variant("bad", {"preset": "tiny", "fail": True}), Variant("good", {"preset": "tiny"})]
    table = run_variants(variants, runs_root, notebook=train_notebook, progress=False).set_index("variant")
    assert table.loc["bad", "state"] == "failed" and table.loc["good", "state"] == "done"
    assert "ValueError: stand-in failure requested" in table.loc["bad", "error"]
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


def test_stale_lock_of_dead_process_is_broken(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname()}))
    assert lock_owner(tmp_path) is None
    assert try_lock(tmp_path)
    assert lock_owner(tmp_path)["pid"] == os.getpid()
    assert not try_lock(tmp_path)  # held by a live process (us)
    release_lock(tmp_path)
    assert not (tmp_path / LOCK_FILE).exists()


RUNNER_SCRIPT = """
import json, sys
from lib.runs.grid import Variant
from lib.runs.runner import run_variants
root, notebook, steps, step_seconds, parallel = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
variants = [Variant(n, {"preset": "tiny", "steps": steps, "step_seconds": step_seconds}) for n in sys.argv[6:]]
table = run_variants(variants, root, notebook=notebook, parallel=parallel, poll_s=0.5, progress=False)
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
    assert read_status(folder)["state"] == "running"  # left behind by the killed runner
    assert variant_state(folder) == "interrupted"  # ...whose lock is now stale
    table = run_variants([Variant("v", {"preset": "tiny", "steps": 40, "step_seconds": 0.1})], runs_root,
                         notebook=train_notebook, progress=False)
    assert table.loc[0, "state"] == "done" and table.loc[0, "steps"] == 40
    runs = starts(folder)
    assert len(runs) == 2 and runs[0]["start"] == 0 and runs[1]["start"] >= reached >= 2
    assert read_status(folder)["attempts"] == 2


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


@pytest.mark.slow
def test_real_train_notebook_at_tiny(tmp_path, monkeypatch):
    """The MoCoGAN baseline (needs the cache, not the autoencoder) through the real 01 and 03."""
    missing = [n for n in ("01_preprocess", "03_train") if not (notebooks_dir() / f"{n}.ipynb").exists()]
    if missing:
        pytest.skip(f"notebooks {missing} do not exist yet (written in parallel by other engineers)")
    monkeypatch.setenv("VICE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("VICE_RUNS_DIR", str(tmp_path / "runs"))
    from lib.runs.runner import execute_notebook
    execute_notebook(notebooks_dir() / "01_preprocess.ipynb", tmp_path / "runs" / "01_preprocess", {"preset": "tiny"})
    result = run_grid("baseline", "tiny", steps=["train"], progress=False)
    assert list(result.status["state"]) == ["done"], result.status.to_dict("records")
    again = run_grid("baseline", "tiny", steps=["train"], progress=False)
    assert read_status(Path(again.status.loc[0, "run_dir"]))["attempts"] == 1


@pytest.mark.slow
def test_demo_runs_the_stages_then_skips_them(tmp_path, monkeypatch, capsys):
    """demo.main with stand-in 01/03/05 notebooks (02 missing): runs, skips 02, then resumes nothing."""
    from lib.runs import demo, runner

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
    for module in (demo, runner):
        monkeypatch.setattr(module, "notebooks_dir", lambda: books)
    monkeypatch.setattr(demo, "_cache_exists", lambda preset: None)
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
