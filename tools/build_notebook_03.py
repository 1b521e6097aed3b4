"""Write notebooks/03_train.ipynb (no outputs): parameters cell, calls into lib.train.gan, plots.

Run: ``.venv/bin/python tools/build_notebook_03.py``.
"""
from __future__ import annotations

from pathlib import Path

from nbtools import write_notebook

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "03_train.ipynb"

INTRO = """# 03 - Train one VICE-GAN variant

Every variant is chosen by the parameters below (papermill `-p name value`): the content
encoder (`ae` = the autoencoder selected in 02, `facenet`, or `none` = plain MoCoGAN), all-frame
or single-frame content, fine-tuned or frozen encoder, the Seen/Unseen training composition,
the content-consistency loss and its scale, and a weight for every loss term (0 drops it).
Needs `01_preprocess` (and `02_autoencoders` for `encoder="ae"`) at the same preset.
The run folder gets `config.json`, `stats.jsonl`, `checkpoint.pt`, `samples/*.gif`, `loss_curves.png`
and `train_done.json`; rerunning with the same `run_name`/`run_dir` resumes from the checkpoint."""

PARAMETERS = """preset = "small"            # tiny | small | paper
run_name = None             # None: a new numbered folder under papermill_runs/03_train/
run_dir = None              # explicit run folder (the sweep runner uses it)
cache_dir = None            # None: the cache 01_preprocess recorded for the preset
encoder = "ae"              # ae | facenet | none
autoencoder = None          # None: the selected one (or an autoencoder name or checkpoint path)
finetune = False            # fine-tune the content encoder with the generator
facenet_weights = None      # None: local VGGFace2 file if found, else "train" (or a path, "train", "random")
content_mode = "all"        # all | single
composition = "seen"        # seen | unseen
consistency_loss = "mse"    # mse | cosine
consistency_scale = None    # None: the default for the encoder and loss
category_weight = 1.0
image_adv_weight = 1.0
video_adv_weight = 1.0
steps = None                # None: the preset value
image_batch = None
video_batch = None
learning_rate = 2e-4
checkpoint_every = None
log_every = None
sample_every = None
device = "auto"
seed = 0
num_threads = None          # torch CPU threads (the sweep runner sets 1 when it runs two at once)"""

SETUP = """from pathlib import Path

import pandas as pd
from IPython.display import Image, display

from lib.io import show_gif
from lib.paths import run_dir as new_run_dir
from lib.train.gan import description, make_gan_config, resolve_config, train_gan, validate

cfg = make_gan_config(
    preset=preset, run_name=run_name, run_dir=run_dir, cache_dir=cache_dir, encoder=encoder,
    autoencoder=autoencoder, finetune=finetune, facenet_weights=facenet_weights, content_mode=content_mode,
    composition=composition, consistency_loss=consistency_loss, consistency_scale=consistency_scale,
    category_weight=category_weight, image_adv_weight=image_adv_weight, video_adv_weight=video_adv_weight,
    steps=steps, image_batch=image_batch, video_batch=video_batch, learning_rate=learning_rate,
    checkpoint_every=checkpoint_every, log_every=log_every, sample_every=sample_every, device=device,
    seed=seed, num_threads=num_threads)
validate(cfg)             # a misspelt choice fails here, listing the valid ones
cfg = resolve_config(cfg)  # finds the cache / autoencoder / FaceNet weights, or names the notebook to run first
out_dir = Path(run_dir) if run_dir else new_run_dir("03_train", run_name, description(cfg))
print("run folder:", out_dir)"""

TRAIN = """summary = train_gan(cfg, out_dir)
print(f"{summary['steps']} steps, {summary['wall_seconds']:.0f} s, {summary['seconds_per_iteration']:.3f} s/iteration")"""

CURVES = """display(Image(filename=str(out_dir / "loss_curves.png")))"""

COMPOSITION = """# Loss composition: each term's share of the generator loss over the last 20% of training (Oostveen Table 1)
shares = {k.removeprefix("share_"): round(100 * v, 1) for k, v in summary["loss_shares"].items()}
final = {k: v for k, v in summary["final_losses"].items() if k.startswith(("g_", "d_"))}
display(pd.DataFrame({"share of G loss (%)": shares}))
display(pd.DataFrame({"last logged value": final}))"""

SAMPLES = """# Row 0: the input videos; then one row per target emotion (anger, disgust, fear, happiness, sadness, surprise)
show_gif(out_dir / "samples" / "latest.gif")"""


CELLS = [
    ("markdown", INTRO), ("parameters", PARAMETERS), ("code", SETUP), ("code", TRAIN),
    ("markdown", "## Loss curves"), ("code", CURVES),
    ("markdown", "## Loss composition"), ("code", COMPOSITION),
    ("markdown", "## Samples"), ("code", SAMPLES),
]

if __name__ == "__main__":
    write_notebook(NOTEBOOK, CELLS)
