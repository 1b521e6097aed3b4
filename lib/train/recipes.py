"""Training recipes by name: each recipe is a set of values for the GAN options marked ``recipe``.

A recipe never changes VICE-GAN's structure (content from the encoder, GRU motion, one-hot
category, D_I + D_V, consistency loss); it picks *how* that structure is trained.

- ``thesis``: the papers' loop exactly (MoCoGAN/VICE-GAN: BCE losses, Adam 2e-4 for all
  networks, DCGAN decoder from a random init, no augmentation, no EMA).  Default.
- ``fast``: a generator that learns the emotion from aligned pairs on a CPU budget: aligned pairs
  (``paired_target="own-take"``: input = a take's first frame, target = that take) with a pyramid paired loss,
  the flow generator (``composite="flow"``) with its landmark supervision, feature matching, hinge loss, R1, EMA,
  DiffAugment ``color``, spectral norm, TTUR, clips from the first frame, the category ramp and the input
  neutraliser.  Each technique is its own option (its help: its field in
  :class:`lib.train.gan_config.VICEGANOptions`); set it to the value in ``RECIPES["thesis"]`` to switch it off.
  What each does and the measured ablation: docs/recipes.md.

``TEMPLATES_PRIOR`` is not a recipe of VICE-GAN but the values of the training-free ``templates`` system
(:mod:`lib.train.templates`): per-emotion mean-pixel changes of the training takes added to the neutralised input
and decoded by a decoder warm-started from the autoencoder (``warm_start``, ``composite="residual"``,
``emotion_templates``, ``template_motion="warp"`` and the residual head's shaping options).

Why ``fast`` leaves DiffAugment's ``translation`` out (measured 2026-11-23, ``small``, D_V alone
trained on real clips for its category head, 400 steps of 4 clips, lr 4e-4, mean cross-entropy of
the last 100; chance = ln 6 = 1.79): no augmentation 0.30, spectral norm 0.009, spectral norm +
``color`` 0.18, spectral norm + ``translation`` 1.84.  D_V's head spans the whole remaining
(T', 8, 8) extent, so a face shifted by up to 8 px defeats it.
"""
from __future__ import annotations

from typing import Any

_THESIS = dict(adversarial_loss="bce", r1_gamma=0.0, ema_beta=0.0, diffaugment="", spectral_norm=False,
               d_lr_ratio=1.0, category_weight=1.0, reconstruction_weight=0.0, warm_start=False,
               clip_start="random", emotion_directions=False, category_ramp=False,
               fake_category_weight=0.0, composite="off",
               composite_drawn_weight=0.0, reconstruction_target="frames",
               reconstruction_loss="l1", emotion_templates=False, template_motion="pixels",
               drawn_smoothing=1, drawn_ramp=False, template_alignment="none", template_upper_weight=1.0,
               template_lower_weight=1.0, drawn_upper_weight=1.0, neutralise_input=False, paired_target="other-take",
               landmark_flow_weight=0.0, feature_matching_weight=0.0)
RECIPES: dict[str, dict[str, Any]] = {
    "thesis": _THESIS,
    "fast": {**_THESIS, **dict(adversarial_loss="hinge", r1_gamma=0.1, ema_beta=0.99, diffaugment="color",
                               spectral_norm=True, d_lr_ratio=2.0, category_weight=1.0, reconstruction_weight=1000.0,
                               clip_start="first", category_ramp=True, composite="flow", neutralise_input=True,
                               paired_target="own-take", reconstruction_loss="pyramid", landmark_flow_weight=10.0,
                               feature_matching_weight=10.0)},
}
# The training-free prior of the ``templates`` system (lib/train/templates.py): the templates at the training
# videos' own amplitude (no weight chosen by hand), added to the neutralised input, decoded by the warm-started
# autoencoder decoder; never trained.
TEMPLATES_PRIOR: dict[str, Any] = {**RECIPES["fast"], **dict(
    warm_start=True, composite="residual", emotion_templates=True, template_motion="warp", drawn_smoothing=4,
    drawn_ramp=True, paired_target="other-take", reconstruction_weight=0.0, composite_drawn_weight=0.0,
    landmark_flow_weight=0.0, feature_matching_weight=0.0)}
RECIPE_NAMES = tuple(RECIPES)
RECIPE_OPTIONS = tuple(_THESIS)  # the options a recipe sets
ADVERSARIAL_LOSSES = ("bce", "hinge")
RECONSTRUCTION_TARGETS = ("frames", "changes")
RECONSTRUCTION_LOSSES = ("l1", "mse", "pyramid")
TEMPLATE_MOTIONS = ("pixels", "warp")
TEMPLATE_ALIGNMENTS = ("none", "landmarks")
PAIRED_TARGETS = ("other-take", "own-take")

assert all(set(values) == set(RECIPE_OPTIONS) for values in (*RECIPES.values(), TEMPLATES_PRIOR))
