"""Fault injection: a sweep whose workers are killed at random points loses nothing (``make test-faults``).

A `tiny` grid of four VICE-GAN variants (the fast recipe) is trained twice through the real 03 and the sweep
runner, two workers at a time: once without interruption, once while a seeded killer sends SIGKILL to a
worker's job (as a crash or the OOM killer would) or SIGTERM to its kernel (as Slurm's time limit, ``scancel``
or a JupyterLab kernel shutdown do), at least ten times; the faulted sweep is started again until every variant
is done. Every run's losses, its final checkpoint's weights and 05's results table must equal the uninterrupted
ones, and no temp or lock file may remain in the run folders.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.faults

VARIANTS = ["thesis-m1-seen", "thesis-m2-seen", "thesis-m3-seen", "thesis-m4-seen"]
OVERRIDES = {"steps": 30, "checkpoint_every": 2, "log_every": 1}
KILLS = 10
SWEEP = """
import json, sys
from lib.runs.runner import run_grid
result = run_grid("thesis", "tiny", recipe="fast", variants=json.loads(sys.argv[1]), overrides=json.loads(sys.argv[2]),
                  parallel=2, steps=["train"], progress=False, poll_s=0.2)
"""


def _environment(root: Path) -> dict:
    return {**os.environ, "VICE_DATA_DIR": str(root / "data"), "VICE_RUNS_DIR": str(root / "runs"),
            "VICE_FIGURES_DIR": str(root / "figures"), "MPLBACKEND": "Agg", "PYTHONHASHSEED": "0"}


def _sweep(root: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", SWEEP, json.dumps(VARIANTS), json.dumps(OVERRIDES)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _descendants(pid: int) -> list[int]:
    found, queue = [], [pid]
    while queue:
        children = _children(queue.pop())
        found += children
        queue += children
    return found


def _kernels(pid: int) -> list[int]:
    """The ipykernel processes below a worker's job (papermill's kernel of 03)."""
    kernels = []
    for child in _descendants(pid):
        try:
            if "ipykernel" in Path(f"/proc/{child}/cmdline").read_text():
                kernels.append(child)
        except OSError:
            continue
    return kernels


def _done(folder: Path) -> bool:
    return (folder / "train_done.json").is_file()


def _losses(folder: Path) -> list[dict]:
    from lib.io import read_jsonl

    return [{k: v for k, v in r.items() if k.startswith(("d_", "g_"))} for r in read_jsonl(folder / "stats.jsonl")
            if "g_total" in r]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """01 and 02 at tiny, once; both sweeps read the same data."""
    from lib.paths import notebooks_dir
    from lib.runs.notebooks import execute_notebook

    root = tmp_path_factory.mktemp("faults")
    env = _environment(root)
    saved = dict(os.environ)
    os.environ.update({k: env[k] for k in ("VICE_DATA_DIR", "VICE_RUNS_DIR", "VICE_FIGURES_DIR")})
    try:
        for stage in ("01_preprocess", "02_autoencoders"):
            execute_notebook(notebooks_dir() / f"{stage}.ipynb", root / "runs" / stage, {"preset": "tiny"})
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return root, env


def test_a_sweep_killed_at_random_points_loses_nothing(prepared, tmp_path):
    import torch

    from lib.io import load_checkpoint
    from lib.runs.runner import grid_dir, run_evaluation_notebook

    root, env = prepared
    reference = _sweep(root, env)
    assert reference.wait(timeout=1800) == 0
    grid = root / "runs" / grid_dir("thesis", "tiny", "fast").name
    clean = {name: grid / name for name in VARIANTS}
    assert all(_done(folder) for folder in clean.values())
    # the faulted copy: the same data, its own runs folder
    faulted_env = {**env, "VICE_RUNS_DIR": str(tmp_path / "runs")}
    faulted = {name: tmp_path / "runs" / grid.name / name for name in VARIANTS}
    rng = random.Random(20261207)
    kills: list[tuple[str, str, int]] = []
    for _ in range(40):  # sweeps, each started again after its killed workers
        if all(_done(folder) for folder in faulted.values()):
            break
        sweep = _sweep(tmp_path, faulted_env)
        while sweep.poll() is None:
            time.sleep(rng.uniform(1.0, 6.0))
            if len(kills) >= KILLS:
                continue
            live = []
            for name, folder in faulted.items():
                status = folder / "status.json"
                if status.is_file() and not _done(folder):
                    info = json.loads(status.read_text())
                    if info.get("state") == "running" and info.get("pid"):
                        live.append((name, int(info["pid"])))
            if not live:
                continue
            name, job = rng.choice(live)
            how = rng.choice(["SIGKILL", "SIGTERM"])
            try:
                if how == "SIGKILL":  # the worker's job and everything below it, at once, as a crash would
                    for pid in [job, *_descendants(job)]:
                        os.kill(pid, signal.SIGKILL)
                else:
                    targets = _kernels(job)
                    if not targets:
                        continue
                    for kernel in targets:
                        os.kill(kernel, signal.SIGTERM)
            except ProcessLookupError:
                continue
            kills.append((name, how, len(_losses(faulted[name])) if (faulted[name] / "stats.jsonl").is_file() else 0))
        sweep.wait(timeout=600)
    assert len(kills) >= KILLS, f"only {len(kills)} kills landed: {kills}"
    assert {how for _, how, _ in kills} == {"SIGKILL", "SIGTERM"}
    assert all(_done(folder) for folder in faulted.values()), "the faulted sweep never finished"
    for name in VARIANTS:
        assert _losses(faulted[name]) == _losses(clean[name]), f"{name}: losses differ after the kills"
        mine, theirs = (load_checkpoint(f / "checkpoint.pt") for f in (faulted[name], clean[name]))
        assert mine["step"] == theirs["step"] == OVERRIDES["steps"]
        for key in ("generator", "image_discriminator", "video_discriminator"):
            for tensor_name, value in theirs[key].items():
                assert torch.equal(mine[key][tensor_name], value), f"{name}: {key}.{tensor_name} differs"
        leftovers = [p.name for p in faulted[name].rglob("*") if p.name.endswith((".tmp", ".lock"))]
        assert not leftovers, f"{name}: {leftovers} left behind"
    # 05's table over both sets of runs: the same numbers
    tables = []
    for runs, environment in ((clean, env), (faulted, faulted_env)):
        saved = dict(os.environ)
        os.environ.update({k: environment[k] for k in ("VICE_DATA_DIR", "VICE_RUNS_DIR", "VICE_FIGURES_DIR")})
        try:
            table, _ = run_evaluation_notebook(list(runs.values()), "tiny", run_name="faults")
        finally:
            os.environ.clear()
            os.environ.update(saved)
        tables.append(table.drop(columns=[c for c in table.columns if c in ("run_dir", "seconds", "cache_dir")]))
    assert tables[0].equals(tables[1])
    _record(kills, {name: OVERRIDES["steps"] for name in VARIANTS})


def _record(kills: list[tuple[str, str, int]], steps: dict[str, int]) -> None:
    """The kills survived, as JSON and a figure (step logged at each kill, per run), in test-artifacts/faults/."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    from lib.paths import REPO_ROOT

    folder = Path(os.environ.get("VICE_TEST_ARTIFACTS", REPO_ROOT / "test-artifacts")) / "faults"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "kills.json").write_text(json.dumps({"kills": [{"run": n, "signal": h, "logged_steps": s}
                                                             for n, h, s in kills], "steps": steps,
                                                   "identical": True}, indent=1))
    figure, axis = plt.subplots(figsize=(7, 3.2))
    runs = sorted(steps)
    for number, (name, how, logged) in enumerate(kills, start=1):
        axis.scatter(number, runs.index(name), marker="x" if how == "SIGKILL" else "o", color="C3" if how == "SIGKILL"
                     else "C0", s=50)
        axis.annotate(str(logged), (number, runs.index(name)), textcoords="offset points", xytext=(0, 7), ha="center",
                      fontsize=7)
    axis.set_yticks(range(len(runs)), runs)
    axis.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    axis.set_xlabel("kill (x: SIGKILL of the worker's job, o: SIGTERM of its kernel; label: steps logged then)")
    axis.set_title(f"{len(kills)} kills, {len(runs)} runs of {max(steps.values())} steps each: losses, weights and "
                   "05's table identical to an uninterrupted sweep", fontsize=8)
    figure.tight_layout()
    figure.savefig(folder / "kills.png", dpi=120)
    plt.close(figure)
