"""Write notebooks/02_autoencoders.ipynb (without outputs) from the cells below.

Run: ``.venv/bin/python tools/build_notebook_02.py``.  Edit the cells here, not the
notebook, so the notebook stays thin and reviewable.
"""
from __future__ import annotations

from pathlib import Path

from nbtools import write_notebook

from lib.constants import PRESET_NAMES as _PRESETS
from lib.utils import DEVICES as _DEVICES

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "02_autoencoders.ipynb"

TITLE = """# 02 - Autoencoders: train six, measure them, select one for the GAN

The thesis (section 4.1, Table 1, Appendix A.1) encodes each frame's *content* with an
autoencoder. Six variants - standard (SAE) or variational (VAE), each small / medium /
large (2/2, 4/3, 5/4 conv/deconv layers), all with a 50-d code - are trained on the
frames of the **training subjects** (Adam, lr 0.005, batch 32, MSE reconstruction, plus a
KL term for the VAE), then measured on the frames of the **test subjects**: MSE and SSIM on
the [0, 1] pixel scale (thesis Table 4), PSNR, parameters and training time. The best one
by `selection_metric` is recorded as the selected autoencoder of `preset`, which
`03_train` uses with `encoder="ae"`.

`composition="seen"` (not in the thesis) also trains on the test subjects' *seen* emotions, which
seen GAN variants train on anyway, and measures on their unseen emotions; 03 then gives seen
variants this autoencoder and unseen variants the default one. With 16 training subjects
(`small`) the default autoencoder draws a test subject as another face: see README.

Training checkpoints every epoch: re-running with the same `run_name` resumes.
The architectures (and why they differ from the appendix) are documented in
`lib/models/autoencoders.py`.

Run headless: `papermill notebooks/02_autoencoders.ipynb out.ipynb -p preset tiny`."""

PARAMETERS = f"""preset = "small"            # {" | ".join(_PRESETS)} (sizes, epochs, width: lib.train.autoencoders.AE_PRESETS)
variants: list | str | None = None   # names (a list, or "a,b" from papermill -p); None = all six
epochs: int | None = None   # None: the preset's (paper: 50, as the thesis)
batch_size = 32
learning_rate = 0.005
kl_weight: float | None = None   # weight of the VAE's KL term; None: the preset's
ssim_weight: float | None = None   # loss += ssim_weight * (1 - SSIM); None: the preset's (0: MSE only, as the thesis)
augment: bool | None = None   # random flips + colour jitter of the training frames; None: the preset's (off, as the thesis)
selection_metric = "ssim"   # ssim (highest) | mse (lowest)
composition = "unseen"      # unseen: training subjects only (for every GAN variant) | seen: + the test subjects' seen emotions (seen variants only)
device = "auto"             # {" | ".join(_DEVICES)}
seed = 0
run_name: str | None = None   # None: a new numbered run folder; reuse a name to resume
cache_dir: str | None = None   # None: the cache that 01_preprocess recorded for the preset"""

SETUP = """import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from lib.config import check_choice, name_list, to_dict
from lib.constants import PRESET_NAMES
from lib.data.cache import load_cache
from lib.data.locate import find_cache
from lib.evaluation import ae_figures, ae_report
from lib.io import atomic_write_json
from lib.models.autoencoders import AUTOENCODERS
from lib.paths import run_dir
from lib.train.autoencoders import SELECTION_CRITERIA, ae_config, select_autoencoder, train_autoencoder

# Every choice is checked before any work.
check_choice("preset", preset, PRESET_NAMES)
check_choice("selection_metric", selection_metric, SELECTION_CRITERIA)
variants = list(AUTOENCODERS) if variants is None else name_list(variants)
configs = {name: ae_config(preset, name, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                           kl_weight=kl_weight, ssim_weight=ssim_weight, augment=augment, device=device, seed=seed,
                           composition=composition) for name in variants}
cache = load_cache(find_cache(preset, cache_dir))
run = run_dir("02_autoencoders", run_name, description=preset)
atomic_write_json(run / "config.json", {
    "preset": preset, "variants": variants, "selection_metric": selection_metric, "composition": composition,
    "cache": str(cache.path),
    "configs": {name: to_dict(cfg) for name, cfg in configs.items()}})
print(cache)
print("run folder:", run)"""

TRAIN = """summaries = {name: train_autoencoder(cfg, cache, run) for name, cfg in configs.items()}"""

TABLE = """import pandas as pd

eval_frames = configs[variants[0]].eval_frames
table = ae_report.autoencoder_table(run, cache, variants, eval_frames=eval_frames, device=device,
                                    composition=composition)
# the best linear 50-d code (PCA of the same fitted frames) as a reference row; never selected.  With augment,
# also a PCA fitted on frames augmented the same way (pca-50-augmented): the linear code given the same data
linear_fits = (False, True) if any(cfg.augment for cfg in configs.values()) else (False,)
linear = [ae_report.pca_baseline(cache, eval_frames=eval_frames, composition=composition,
                                 heldout_every=configs[variants[0]].heldout_every, seed=seed, augment=augmented)
          for augmented in linear_fits]
with_linear = pd.concat([table, pd.DataFrame(linear)], ignore_index=True)
display(Markdown("**Two test sets: the composition's test videos (`mse`, `ssim`, `psnr`) and held-out frames of "
                 "the training subjects (`*_heldout`); `pca-50` is the linear reference**"))
display(with_linear.round(6))
display(Markdown("**In the layout of the thesis's Table 4 (test split, [0, 1] scale)**"))
display(ae_report.table4_layout(table))
display(Markdown("**The thesis's Table 4 (MUG, 50 epochs, full width), for comparison**"))
display(ae_report.table4_layout(ae_report.thesis_table4()))"""

SELECT = """pointer = select_autoencoder(table, run, preset, criterion=selection_metric, composition=composition)
paths = ae_report.write_table(with_linear, run, selected=pointer["name"])
atomic_write_json(run / "results.json", {"selected": pointer, "table": with_linear.to_dict("records")})
print(f"selected by {selection_metric}: {pointer['name']} -> {pointer['checkpoint']}")
print("tables:", paths["csv"], paths["markdown"])"""

FIGURES = """data = ae_report.figure_data(run, cache, variants, device=device, composition=composition)
figures = {
    "reconstructions": ae_figures.plot_reconstructions(data["real"], data["reconstructions"],
                                                        title="test frames (top) and each model's reconstruction"),
    "training_curves": ae_figures.plot_training_curves(run, variants),
    "code_projection": ae_figures.plot_code_projection(data["codes"], data["subjects"], method="pca",
                                                        is_test=data["is_test"]),
}
for stem, fig in figures.items():
    ae_figures.save_figure(fig, run, stem, preset)
    display(fig)
    plt.close(fig)"""

CELLS = [
    ("markdown", TITLE),
    ("parameters", PARAMETERS),
    ("code", SETUP),
    ("markdown", "## Training (resumable; one progress bar per model)"),
    ("code", TRAIN),
    ("markdown", "## Test-split results (thesis Table 4 analogue)"),
    ("code", TABLE),
    ("markdown", "## Selection: the autoencoder the GAN will use for this preset"),
    ("code", SELECT),
    ("markdown", "## Figures: reconstructions, training curves, test codes by subject\n\n"
                 "Saved into the run folder's `figures/` and the report `figures/` folder."),
    ("code", FIGURES),
]

if __name__ == "__main__":
    write_notebook(NOTEBOOK, CELLS)
