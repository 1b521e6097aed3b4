"""Training recipes by name: each recipe is a set of values for the GAN options marked ``recipe``.

A recipe never changes VICE-GAN's structure (content from the encoder, GRU motion, one-hot
category, D_I + D_V, consistency loss); it picks *how* that structure is trained.

- ``thesis``: the papers' loop exactly (MoCoGAN/VICE-GAN: BCE losses, Adam 2e-4 for all
  networks, DCGAN decoder from a random init, no augmentation, no EMA).  Default.
- ``fast``: a generator that learns the emotion from aligned pairs on a CPU budget.  Each technique is
  its own option (set it to the value in ``RECIPES["thesis"]`` to switch it off; docs/recipes.md has the
  measured ablation):

  ====================== ======================================================= =========
  option                 technique                                               fast
  ====================== ======================================================= =========
  paired_target          the paired loss's target is the take the input frame     ``own-take``
                         belongs to (input = its first, neutral frame; target =
                         that take, in its emotion), not another take
  reconstruction_weight  weight of that paired loss                              1000.0
  reconstruction_loss    ``pyramid``: squared error of 32, 16 and 8 px views     ``pyramid``
                         with each frame's mean removed (sensor noise and
                         lighting flicker are most of a pixel L1 between a take's
                         frames; L1's median is "no change" where takes differ in
                         timing)
  landmark_flow_weight   the flow must fetch each of dlib's 68 landmarks of the  10.0
                         target frame from where it is in the input frame (the
                         training takes' landmarks, computed once): geometry
                         supervised where pixels are noisy
  feature_matching_weight D_V's features of each generated clip match those of   10.0
                         its own take (pix2pixHD's feature matching on aligned
                         pairs: what D reads of the emotion, not the noise)
  composite              ``flow``: a U-Net reads the input frame and moves its   ``flow``
                         pixels by a drawn flow, drawing only occlusions (LFDM's
                         flow + occlusion, GANimation's mask), plus an emotion
                         bank of coarse per-emotion, per-frame changes learned
                         from zero; step 0 repeats the input frame
  adversarial_loss       hinge loss (SAGAN/BigGAN) instead of BCE                ``hinge``
  r1_gamma               R1 penalty on real inputs, lazy every ``r1_every``      0.1
  ema_beta               generator EMA used for samples, probes and evaluation   0.99
  diffaugment            DiffAugment on real and fake inputs of both Ds          ``color``
  spectral_norm          spectral normalisation of both discriminators           True
  d_lr_ratio             two-time-scale update: D learning rate x ratio (TTUR)   2.0
  clip_start             real clips start at the take's first frame (neutral ->  ``first``
                         apex, as generated ones do)
  category_ramp          the one-hot scaled by t / (T - 1): a time signal        True
  neutralise_input       the input frames go through a network trained to take   True
                         the expression off a frame (:mod:`lib.models.neutraliser`):
                         training inputs are neutral first frames, 05's inputs
                         are often at another emotion's apex
  ====================== ======================================================= =========

``TEMPLATES_PRIOR`` is not a recipe of VICE-GAN but the training-free ``templates`` system
(:mod:`lib.train.templates`): per-emotion mean-pixel changes of the training takes added to the
neutralised input and decoded by a decoder warm-started from the autoencoder, with the options of the
rows below, which only that system uses:

  ====================== =======================================================
  warm_start             generator decoder = the selected autoencoder's decoder
  composite=residual     the drawn change is added to the input frame
  emotion_templates      each emotion's mean per-frame change from the first frame
  template_motion=warp   the templates are averaged over head-stabilised takes; each
                         emotion's mean head movement then moves the frames
  drawn_smoothing, drawn_ramp, template_alignment, template_upper_weight,
  template_lower_weight, drawn_upper_weight, composite_drawn_weight, reconstruction_target,
  emotion_directions, fake_category_weight: options of that prior (README of docs/recipes.md)
  ====================== =======================================================

Why ``fast`` leaves DiffAugment's ``translation`` out (measured 2026-11-23, ``small``, D_V alone
trained on real clips for its category head, 400 steps of 4 clips, lr 4e-4, mean cross-entropy of
the last 100; chance = ln 6 = 1.79): no augmentation 0.30, spectral norm 0.009, spectral norm +
``color`` 0.18, spectral norm + ``translation`` 1.84.  D_V's head spans the whole remaining
(T', 8, 8) extent, so a face shifted by up to 8 px defeats it.
"""
from __future__ import annotations

from typing import Any

RECIPE_OPTIONS = ("adversarial_loss", "r1_gamma", "ema_beta", "diffaugment", "spectral_norm", "d_lr_ratio",
                  "category_weight", "reconstruction_weight", "warm_start", "clip_start", "emotion_directions",
                  "category_ramp", "fake_category_weight", "composite", "composite_drawn_weight",
                  "reconstruction_target", "reconstruction_loss", "emotion_templates", "template_motion",
                  "drawn_smoothing", "drawn_ramp", "template_alignment", "template_upper_weight",
                  "template_lower_weight", "drawn_upper_weight", "neutralise_input", "paired_target",
                  "landmark_flow_weight", "feature_matching_weight")

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
ADVERSARIAL_LOSSES = ("bce", "hinge")
RECONSTRUCTION_TARGETS = ("frames", "changes")
RECONSTRUCTION_LOSSES = ("l1", "mse", "pyramid")
TEMPLATE_MOTIONS = ("pixels", "warp")
TEMPLATE_ALIGNMENTS = ("none", "landmarks")
PAIRED_TARGETS = ("other-take", "own-take")

assert all(set(values) == set(RECIPE_OPTIONS) for values in (*RECIPES.values(), TEMPLATES_PRIOR))


def recipe_value(recipe: str, option: str) -> Any:
    return RECIPES[recipe][option]
