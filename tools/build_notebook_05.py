"""Write notebooks/05_evaluate.ipynb (no outputs): parameters cell, calls into lib.evaluation, figures.

Run: ``.venv/bin/python tools/build_notebook_05.py``.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nbtools import write_notebook  # noqa: E402

from lib.constants import PRESET_NAMES  # noqa: E402
from lib.evaluation.emotion import CLASSIFIERS  # noqa: E402
from lib.evaluation.extractors import EXTRACTORS  # noqa: E402
from lib.display import display_parameters  # noqa: E402


NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "05_evaluate.ipynb"

INTRO = """# 05 - Evaluate GAN runs: every metric of the papers under one protocol

For each test subject a real input video drives the generator towards an emotion that
no model saw for that subject; the generated clip is compared with the subject's real
video of that emotion.  The pairs and noise seeds depend only on the cache, `n_pairs` and
`seed`, so every model is scored on the same pairs.

- quality: SSIM, MSE, PSNR (thesis 5.4, FEV-GAN 4.3)
- identity, per feature extractor (`ae` = thesis ACD features, `facenet`, `dlib`, `truth`
  = probe of the synthetic ground truth): ACD (with real videos as reference), ACD-I,
  face verification at a default and a ROC-tuned threshold, AUC on real pairs (Oostveen 4.2)
- emotion, per classifier (`fer` = the thesis's FER2013 mini-Xception, `trained`, `truth`,
  `deepface` if available): CAS-M, per emotion, confusion matrix, real/generated agreement

Writes `results.json` + `evaluation.npz` into each evaluated run folder, the table
(`results.csv`, `results.md`) into this notebook's run folder, and the figures into `figures/`
(`make figures` redraws them from the saved results)."""

PARAMETERS = f"""runs: list | str | None = None   # None: every finished GAN run (folder with train_done.json); or a list of folders / glob patterns
extractors: list | str | None = None   # None: the preset's list; any of {", ".join(f'"{name}"' for name in EXTRACTORS)} (a list, or "a,b" from papermill -p)
classifiers: list | str | None = None   # None: the preset's list; any of {", ".join(f'"{name}"' for name in CLASSIFIERS)}
n_pairs: int | None = None   # None: the preset's number of (input, target) pairs
seed = 0
preset = "small"     # {" | ".join(PRESET_NAMES)} (sizes of the probes and of the evaluation)
run_name: str | None = None   # None: a new numbered folder under papermill_runs/05_evaluate/
{display_parameters()}"""

SETUP = """from IPython.display import Image, Markdown, display

from lib.evaluation.evaluate import find_runs, make_evaluation_config
from lib.paths import figures_dir, run_dir

config = make_evaluation_config(preset, extractors=extractors, classifiers=classifiers, n_pairs=n_pairs, seed=seed)
run_folders = find_runs(runs)  # fails here, naming the notebook to run, if there is nothing to evaluate
out_dir = run_dir("05_evaluate", run_name, description=f"evaluate-{preset}")
print(f"evaluating {len(run_folders)} runs:")
for folder in run_folders:
    print("  ", folder)
print("extractors:", config.extractors, "| classifiers:", config.classifiers, "| pairs:", config.n_pairs)
print("results folder:", out_dir)"""

EVALUATE = """from lib.evaluation.evaluate import evaluate_runs

table = evaluate_runs(run_folders, config=config, out_dir=out_dir)  # the config made and checked above"""

TABLE = """display(Markdown((out_dir / "results.md").read_text()))
# with seeds: each variant's mean and interval over its seeds; with thesis variant pairs: Table 5 as verdicts
for extra in ("results_by_variant.md", "findings.md"):
    if (out_dir / extra).is_file():
        display(Markdown((out_dir / extra).read_text()))"""

SKIPPED = """import json

# Instruments that could not run here, and how far to trust the trained ones
first = json.loads((run_folders[0] / "results.json").read_text())
for name, reason in first["skipped"].items():
    print(f"skipped {name}: {reason}")
real = table[table["run"] == "real"].dropna(axis=1)
display(real.T.rename(columns=lambda c: "real reference"))"""

FIGURES = """from lib.evaluation.figures import draw_all_figures

figure_paths = draw_all_figures(out_dir, figures_dir())
for path in figure_paths:
    print(path.name)
    display(Image(filename=str(path)))"""

GIFS = """from lib.display import show_video_grid
from lib.evaluation.evaluate import comparison_rows, load_results

# input | real target | every model, one row per sample pair (labelled with its target emotion); one video, in sync
_, arrays = load_results(out_dir)
rows, columns, row_labels = comparison_rows(arrays, [r for r in table["run"] if r != "real"])
display(show_video_grid(rows, columns, row_labels, scale=video_scale, smooth=video_smooth))"""

CELLS = [
    ("markdown", INTRO),
    ("parameters", PARAMETERS),
    ("code", SETUP),
    ("markdown", "## Evaluate every run on the same pairs"),
    ("code", EVALUATE),
    ("markdown", "## Results (every column is in `results.csv`)"),
    ("code", TABLE),
    ("code", SKIPPED),
    ("markdown", "## Figures"),
    ("code", FIGURES),
    ("markdown", "## Generated videos"),
    ("code", GIFS),
]

if __name__ == "__main__":
    write_notebook(NOTEBOOK, CELLS)
