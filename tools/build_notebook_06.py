"""Write notebooks/06_human_rating.ipynb (without outputs). Run: ``.venv/bin/python tools/build_notebook_06.py``."""
from __future__ import annotations

from pathlib import Path

from nbtools import write_notebook

from lib.display import display_parameters

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "06_human_rating.ipynb"

TITLE = """# 06 - Human rating: CAS-H

The thesis (section 5.4) asks people which emotion a generated video shows: for each
model, `n_per_emotion` videos per target emotion are shown in random order, blind to
the model and the target. CAS-H is the per-emotion accuracy averaged over the six
emotions, next to CAS-M (the same score from a classifier, notebook 05).

Set `rater` to your name and step through the form; every answer is saved at once
(`ratings-<rater>.jsonl` in the rating-set folder), so you can stop and continue later.
Several raters can rate the same set; CAS-H pools them."""

PARAMETERS = """preset = "small"        # tiny | small | paper: the default number of videos per emotion
runs: list | str | None = None   # run folders / glob patterns; None = every finished GAN run
n_per_emotion: int | None = None   # videos per emotion and model; None = preset default (thesis: 10)
rater = ""              # your name; empty = just show the current CAS-H table
seed = 0
run_name: str | None = None   # rating-set folder name under papermill_runs/06_human_rating/
device = "cpu"
""" + display_parameters()

SETUP = """import matplotlib.pyplot as plt

from lib.config import check_choice
from lib.constants import PRESET_NAMES
from lib.evaluation.evaluate import find_runs
from lib.evaluation.human_rating import RatingSession, build_rating_set, cas_h, rating_form
from lib.paths import run_dir

check_choice("preset", preset, PRESET_NAMES)
n_per_emotion = n_per_emotion or {"tiny": 1, "small": 5, "paper": 10}[preset]
run_dirs = find_runs(runs)
set_dir = run_dir("06_human_rating", run_name or f"rating-{preset}")
print(f"{len(run_dirs)} runs x 6 emotions x {n_per_emotion} videos -> {set_dir}")"""

BUILD_MD = "## The rating set\nGenerated once (same inputs and seeds for every model), then reused."

BUILD = """build_rating_set(run_dirs, set_dir, n_per_emotion=n_per_emotion, seed=seed, device=device)"""

FORM_MD = ("## Rate\nWhich emotion does the face show? Answer with the buttons, or with the keys 1-6 (the emotions "
           "in the buttons' order) and 0 (can't tell) while the pointer is over the form; each answer is saved "
           "at once and the next video follows. The model and the target stay hidden.")

FORM = """if rater.strip():
    display(rating_form(RatingSession(set_dir, rater), scale=video_scale, smooth=video_smooth))
else:
    print("Set rater = 'your name' in the parameters cell (or -p rater NAME) to rate.")"""

SCORE_MD = "## CAS-H per model\nPooled over all raters of this set; \"can't tell\" counts as wrong."

SCORE = """table = cas_h(set_dir)
table.to_csv(set_dir / "cas_h.csv", index=False)
display(table)
if len(table):
    ax = table.set_index(table["run"].map(lambda r: r.rstrip("/").split("/")[-1]))["cas_h"].plot.bar(figsize=(8, 3))
    ax.set_ylabel("CAS-H"); ax.set_ylim(0, 1); ax.axhline(1 / 6, ls="--", c="grey", label="chance")
    ax.legend(); plt.tight_layout(); plt.savefig(set_dir / "cas_h.png", dpi=100); plt.show()
else:
    print("no ratings yet")"""

CELLS = [("markdown", TITLE), ("parameters", PARAMETERS), ("code", SETUP), ("markdown", BUILD_MD), ("code", BUILD),
         ("markdown", FORM_MD), ("code", FORM), ("markdown", SCORE_MD), ("code", SCORE)]

if __name__ == "__main__":
    write_notebook(NOTEBOOK, CELLS)
