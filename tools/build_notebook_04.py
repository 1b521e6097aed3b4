"""Write notebooks/04_ablations.ipynb (without outputs) from the cells below.

Run: ``.venv/bin/python tools/build_notebook_04.py``.  Edit the cells here, not the
notebook, so the notebook stays thin and reviewable.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nbtools import write_notebook  # noqa: E402

from lib.constants import PRESET_NAMES  # noqa: E402
from lib.runs.grid import GRID_NAMES  # noqa: E402
from lib.runs.backends import BACKEND_NAMES  # noqa: E402
from lib.train.recipes import RECIPE_NAMES  # noqa: E402


NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "04_ablations.ipynb"

TITLE = """# 04 - Ablations: every variant of a grid through papermill, resumably

Trains each variant of the chosen grid with `03_train.ipynb` (one papermill run per
variant, into `papermill_runs/<grid>-<preset>[-<recipe>]/<variant>/`; every variant of a grid
trains with the same `recipe`), then evaluates all finished
variants with `05_evaluate.ipynb` into one results table and the report figures.

Grids (`lib.runs.grid`): `thesis` (thesis Table 2 models 1-4 x seen/unseen),
`facenet` (Oostveen Table 1), `ablation` (drop one group of loss terms at a time, as in
the face-reenactment ablation), `baseline` (MoCoGAN), `demo` = thesis model 4 seen and unseen +
MoCoGAN (what `make demo` trains), `papers` = thesis + baseline + facenet, `all` = every distinct variant.

Re-running is cheap: finished variants (`train_done.json`) are skipped, unfinished ones
resume from their checkpoint, failed ones are retried and their error is kept in
`status.json`. Each variant x seed is a submitit job (`backend`: `local` on this machine, `slurm` on a cluster,
with its partition, GPUs, CPUs, memory and time limit; a preempted or timed-out job is requeued
and resumes); 05 is one more job after them. Job logs: `<grid folder>/.submitit/`. Two runners
on one grid train each variant once (the job owns the run folder).

Run headless: `papermill notebooks/04_ablations.ipynb out.ipynb -p grid thesis -p preset tiny`;
on a Slurm login node: `... -p grid all -p preset paper -p recipe fast -p seeds 0,1,2 -p backend slurm -p slurm_partition gpu`."""

PARAMETERS = f"""grid = "demo"                    # {" | ".join(GRID_NAMES)}
preset = "small"                 # {" | ".join(PRESET_NAMES)} (passed to 03 as its preset)
recipe = "thesis"                # {" | ".join(RECIPE_NAMES)}: every variant trains with it (lib/train/recipes.py)
backend = "local"                # {" | ".join(BACKEND_NAMES)}: where the jobs run (lib/runs/backends.py, submitit)
parallel = 1                     # local: jobs at once (each kernel gets cpu_count // parallel threads); slurm: array parallelism (0 = no limit)
steps: list | str = ["train", "evaluate"]   # which stages to run
variants: list | str | None = None   # list of variant names, or None for the whole grid
seeds: list | str | None = None  # e.g. 0,1,2: each variant once per seed (<variant>-seed<N>); None: once
slurm_partition: str | None = None  # slurm only: partition (None: the cluster default)
slurm_gpus = 1                   # slurm only: GPUs per job
slurm_cpus = 8                   # slurm only: CPUs per job (the kernel's threads)
slurm_mem_gb: int | float = 32   # slurm only: memory per job (GB)
slurm_time_min = 720             # slurm only: time limit per attempt; a timed-out job is requeued and resumes
slurm_options: dict | str | None = None  # slurm only: extra sbatch options, e.g. {{"account": "lab", "qos": "high"}} (JSON with -p)"""

SETUP = """import pandas as pd
from IPython.display import Image, Markdown, display

from lib.runs import grid_status, resolve_grid, run_grid, select_variants

pd.set_option("display.max_colwidth", 80)
chosen = select_variants(resolve_grid(grid, preset, {"recipe": recipe}, seeds), variants)  # bad names fail here
pd.DataFrame([{"variant": v.name, "description": v.description,
               "also known as": ", ".join(v.aliases)} for v in chosen])"""

RUN_MD = """## Run the sweep
The table below refreshes as jobs are queued, run and end (state, steps, wall time, job id, error, log)."""

RUN = """live_table = display(grid_status(grid, preset, variants, recipe, seeds), display_id=True)
slurm = {"slurm_partition": slurm_partition, "slurm_gpus": slurm_gpus, "slurm_cpus": slurm_cpus,
         "slurm_mem_gb": slurm_mem_gb, "slurm_time_min": slurm_time_min, "slurm_options": slurm_options or {}}
result = run_grid(grid, preset, variants=variants, recipe=recipe, seeds=seeds, backend=backend, parallel=parallel,
                  backend_options=slurm if backend == "slurm" else None, steps=steps, on_update=live_table.update)
result.status"""

FAILED = """failed = result.status[result.status["state"] == "failed"]
for _, row in failed.iterrows():  # where to look when a variant failed
    print(f"{row['variant']}: {row['error']}\\n  executed notebook: {row['run_dir']}/03_train.ipynb")
print(f"{len(result.status) - len(failed)} of {len(result.status)} variants finished" if len(failed) else "no failures")"""

RESULTS_MD = """## Results
One row per evaluated run (and a `real` reference row per dataset); every metric is
in `results.csv` of the evaluation run folder. With `seeds`, `results_by_variant.md` gives each
variant's mean over its seeds with a 95% t-interval across seeds."""

RESULTS = """if result.results is None:
    print("not evaluated in this run (add 'evaluate' to steps)")
else:
    print("evaluation run folder:", result.evaluation_dir)
    summary = result.evaluation_dir / "results.md"
    display(Markdown(summary.read_text()) if summary.is_file() else result.results)
    by_variant = result.evaluation_dir / "results_by_variant.md"
    if by_variant.is_file():
        display(Markdown(by_variant.read_text()))"""

FIGURES = """if result.results is not None:
    from lib.evaluation.figures import draw_all_figures

    # drawn into the evaluation folder, so this grid's figures never overwrite the report's
    for path in draw_all_figures(result.evaluation_dir, figures_dir=result.evaluation_dir / "figures"):
        print(path.name)
        display(Image(filename=str(path)))"""


CELLS = [
    ("markdown", TITLE), ("parameters", PARAMETERS), ("code", SETUP), ("markdown", RUN_MD),
    ("code", RUN), ("code", FAILED), ("markdown", RESULTS_MD), ("code", RESULTS), ("code", FIGURES),
]

if __name__ == "__main__":
    write_notebook(NOTEBOOK, CELLS)
