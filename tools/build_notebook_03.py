"""Write notebooks/03_train.ipynb (no outputs): parameters cell, calls into lib.train.gan, plots.

Run: ``.venv/bin/python tools/build_notebook_03.py``.
"""
from __future__ import annotations

from pathlib import Path

from nbtools import write_notebook

from lib.train.gan_config import parameters_cell

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "03_train.ipynb"

INTRO = """# 03 - Train one VICE-GAN variant

Every variant is chosen by the parameters below (papermill `-p name value`): the content
encoder (`ae` = the autoencoder selected in 02, `facenet`, or `none` = plain MoCoGAN), all-frame
or single-frame content, fine-tuned or frozen encoder, the Seen/Unseen training composition,
the content-consistency loss and its scale, a weight for every loss term (0 drops it), and the
training `recipe` (`thesis` = the papers' loop; `fast` = small-compute techniques, each its own
parameter; see `lib/train/recipes.py`).  `system` picks what is trained (`lib/train/systems.py`):
`vicegan` (the default), seed 003's `fevgan` (`encoder` is its frozen identity encoder;
`fevgan_encoders` gives the paper's ablations), seed 002's landmark-driven `reenact`
(`reenact_losses` gives the paper's loss-group ablations) or seed 004's `latent-walk`, which fits in seconds
and has no losses.  Every `probe_every` steps the learning probes score the
generator on held-out pairs with 05's measures; `best.pt` keeps the best snapshot.
Needs `01_preprocess` (and `02_autoencoders` for `encoder="ae"`) at the same preset.
The run folder gets `config.json`, `stats.jsonl`, `checkpoint.pt`, `best.pt`, `samples/*.gif`,
`loss_curves.png`, `learning_curves.png` and `train_done.json`; rerunning with the same `run_name`/`run_dir` resumes from the checkpoint."""

PARAMETERS = parameters_cell()  # written from GANConfig's fields: the one declaration of every option

SETUP = """from pathlib import Path

import pandas as pd
from IPython.display import Image, display

from lib.constants import EMOTIONS
from lib.display import read_video, show_video_grid, split_grid
from lib.evaluation.learning_probes import build_learning_probe
from lib.paths import run_dir as new_run_dir
from lib.train.gan import description, make_gan_config, resolve_config
from lib.train.gan_config import notebook_parameters
from lib.train.systems import train, training_report

cfg = make_gan_config(**{name: globals()[name] for name in notebook_parameters()})
cfg = resolve_config(cfg)  # validates every choice (listing the valid ones), finds cache / autoencoder / weights
out_dir = Path(run_dir) if run_dir else new_run_dir("03_train", run_name, description(cfg))
print("run folder:", out_dir)
# learning probes: 05's cheap measures on held-out pairs every probe_every steps; best.pt keeps the best
probe = build_learning_probe(cfg) if cfg.probe_every else None"""

TRAIN = """summary = train(cfg, out_dir, probe=probe)  # the system's trainer (lib/train/systems.py)
print(training_report(summary))"""

CURVES = """if summary["loss_curves"]:  # systems without losses (latent-walk) have none
    display(Image(filename=summary["loss_curves"]))
if summary["learning_curves"]:  # the learning probes; dotted: the real videos' CAS; green band: the ACD bar
    display(Image(filename=summary["learning_curves"]))
    best = summary["best"]
    print(f"best snapshot by {best['criterion']}: step {best['step']}",
          {k: round(v, 3) for k, v in best["metrics"].items()})
if summary.get("neutraliser_figure"):  # neutralise_input: held-out frames, neutralised, and their takes' first frames
    display(Image(filename=summary["neutraliser_figure"]))"""

COMPOSITION = """# Loss composition: each term's share of the generator loss over the last 20% of training (Oostveen Table 1)
shares = {k.removeprefix("share_"): round(100 * v, 1) for k, v in summary["loss_shares"].items()}
final = {k: v for k, v in summary["final_losses"].items() if k.startswith(("g_", "d_"))}
display(pd.DataFrame({"share of G loss (%)": shares}))
display(pd.DataFrame({"last logged value": final}))"""

SAMPLES = """# Row 0: the input videos (one test subject per column); then one row per target emotion
rows = split_grid(read_video(out_dir / "samples" / "latest.gif"), n_rows=1 + len(EMOTIONS))
display(show_video_grid(rows, row_labels=["input", *EMOTIONS], scale=video_scale, smooth=video_smooth))"""


CELLS = [
    ("markdown", INTRO), ("parameters", PARAMETERS), ("code", SETUP), ("code", TRAIN),
    ("markdown", "## Loss curves"), ("code", CURVES),
    ("markdown", "## Loss composition"), ("code", COMPOSITION),
    ("markdown", "## Samples"), ("code", SAMPLES),
]

if __name__ == "__main__":
    write_notebook(NOTEBOOK, CELLS)
