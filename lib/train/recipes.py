"""Training recipes by name: each recipe is a set of values for the GAN options marked ``recipe``.

A recipe never changes VICE-GAN's structure (content from the encoder, GRU motion, one-hot
category, D_I + D_V, consistency loss); it picks *how* that structure is trained.

- ``thesis``: the papers' loop exactly (MoCoGAN/VICE-GAN: BCE losses, Adam 2e-4 for all
  networks, DCGAN decoder from a random init, no augmentation, no EMA).  Default.
- ``fast``: known small-compute GAN techniques, each its own option (set it to the value in
  ``RECIPES["thesis"]`` to switch it off):

  ===================== ======================================================= =========
  option                technique                                               fast
  ===================== ======================================================= =========
  adversarial_loss      hinge loss (SAGAN/BigGAN) instead of BCE                ``hinge``
  r1_gamma              R1 penalty on real inputs, lazy every ``r1_every`` (StyleGAN2) 0.1
  ema_beta              generator EMA used for samples, probes and evaluation   0.99
  diffaugment           DiffAugment on real and fake inputs of both Ds          ``color,translation``
  spectral_norm         spectral normalisation of both discriminators           True
  d_lr_ratio            two-time-scale update: D learning rate x ratio (TTUR)   2.0
  category_weight       stronger category pathway (issue probe: 5 learns emotion) 5.0
  reconstruction_weight L1 to a real video of the input's subject showing the   10.0
                        target emotion (pix2pix/FEV-GAN paired loss; variants
                        with a content encoder only)
  warm_start            generator decoder = the selected autoencoder's decoder,  True
                        initialised from its weights (content columns copied,
                        motion/category columns zero)
  ===================== ======================================================= =========
"""
from __future__ import annotations

from typing import Any

RECIPE_OPTIONS = ("adversarial_loss", "r1_gamma", "ema_beta", "diffaugment", "spectral_norm", "d_lr_ratio",
                  "category_weight", "reconstruction_weight", "warm_start", "clip_start", "emotion_directions")

RECIPES: dict[str, dict[str, Any]] = {
    "thesis": dict(adversarial_loss="bce", r1_gamma=0.0, ema_beta=0.0, diffaugment="", spectral_norm=False,
                   d_lr_ratio=1.0, category_weight=1.0, reconstruction_weight=0.0, warm_start=False,
                   clip_start="random", emotion_directions=False),
    "fast": dict(adversarial_loss="hinge", r1_gamma=0.1, ema_beta=0.99, diffaugment="color,translation",
                 spectral_norm=True, d_lr_ratio=2.0, category_weight=5.0, reconstruction_weight=10.0,
                 warm_start=True, clip_start="random", emotion_directions=False),
}
RECIPE_NAMES = tuple(RECIPES)
ADVERSARIAL_LOSSES = ("bce", "hinge")

assert all(set(values) == set(RECIPE_OPTIONS) for values in RECIPES.values())


def recipe_value(recipe: str, option: str) -> Any:
    return RECIPES[recipe][option]
