"""Training recipes by name: each recipe is a set of values for the GAN options marked ``recipe``.

A recipe never changes VICE-GAN's structure (content from the encoder, GRU motion, one-hot
category, D_I + D_V, consistency loss); it picks *how* that structure is trained.

- ``thesis``: the papers' loop exactly (MoCoGAN/VICE-GAN: BCE losses, Adam 2e-4 for all
  networks, DCGAN decoder from a random init, no augmentation, no EMA).  Default.
- ``fast``: known small-compute GAN techniques, each its own option (set it to the value in
  ``RECIPES["thesis"]`` to switch it off):

  ====================== ======================================================= =========
  option                 technique                                               fast
  ====================== ======================================================= =========
  adversarial_loss       hinge loss (SAGAN/BigGAN) instead of BCE                ``hinge``
  r1_gamma               R1 penalty on real inputs, lazy every ``r1_every`` (StyleGAN2) 0.1
  ema_beta               generator EMA used for samples, probes and evaluation   0.99
  diffaugment            DiffAugment on real and fake inputs of both Ds          ``color``
  spectral_norm          spectral normalisation of both discriminators           True
  d_lr_ratio             two-time-scale update: D learning rate x ratio (TTUR)   2.0
  category_weight        stronger category pathway (issue probe: 5 learns emotion) 5.0
  reconstruction_weight  paired loss to a real video of the input's subject      10.0
                         showing the target emotion (pix2pix/FEV-GAN; variants
                         with a content encoder only)
  warm_start             generator decoder = the selected autoencoder's decoder,  True
                         initialised from its weights (content columns copied,
                         motion/category columns zero)
  composite              the generator draws a change added to the input frame   ``residual``
                         (``residual``; GANimation-style compositing keeps the
                         input's face: the decoder redraws only what moves)
  emotion_templates      each emotion's mean per-frame change from the first     True
                         frame in the training videos, at the real amplitude,
                         added to the drawn change (a data-driven start of the
                         category pathway, like emotion_directions in pixels)
  template_motion        the templates are averaged over takes whose head        ``warp``
                         movement is removed first (each frame aligned to the
                         first; an averaged movement is a ghost outline that
                         face recognisers read as another person), and each
                         emotion's mean head movement then moves the frames
  drawn_smoothing        the drawn change is averaged over 4x4 cells: no         4
                         decoder texture on the face
  drawn_ramp             the drawn change grows from 0 at the first frame        True
                         (which is then the input frame exactly)
  template_upper_weight  the templates' change above the nose tip / mouth split  0.3
                         (brows, eyes: what dlib's identity descriptor reads)
                         is scaled by this ...
  template_lower_weight  ... and below it (mouth, jaw: what the emotion           1.2
                         classifiers read most) by this
  composite_drawn_weight penalty on the drawn change's mean magnitude            50.0
  reconstruction_target  the paired loss compares changes from the first frame   ``changes``
                         (another take's light and head position differ)
  reconstruction_loss    mse: the mean change (l1's median is "no change")       ``mse``
  clip_start             real clips start at the first frame (neutral -> apex,   ``first``
                         as 05's inputs do)
  category_ramp          the one-hot scaled by t / (T - 1): a time signal        True
  neutralise_input       the input frames go through a network trained to take   True
                         the expression off a frame (:mod:`lib.models.neutraliser`)
                         before the encoder and the composite read them: the
                         templates assume a neutral start, 05's inputs are often
                         at another emotion's apex
  ====================== ======================================================= =========

Rows from ``composite`` down were added in the fifth and sixth sessions (2026-11-24): before them
``fast`` kept the input's face and drew neither emotion nor motion (README, "Training recipes");
``template_motion``, ``drawn_smoothing`` and ``drawn_ramp`` (sixth) are for dlib's identity check,
which the first templates failed (README, "Identity by dlib"); ``template_upper_weight`` and
``template_lower_weight`` (tenth) move the templates' change from the upper face, where it costs dlib's
identity most, to the lower face, where the classifiers read most of the emotion; ``neutralise_input``
(twelfth session, 2026-11-25) starts each generated video from the input's face without the other emotion
it may already show (05 draws input clips from anywhere in a take).

Why ``fast`` leaves DiffAugment's ``translation`` out (measured 2026-11-23, ``small``, D_V alone
trained on real clips for its category head, 400 steps of 4 clips, lr 4e-4, mean cross-entropy of
the last 100; chance = ln 6 = 1.79): no augmentation 0.30, spectral norm 0.009, spectral norm +
``color`` 0.18, spectral norm + ``translation`` 1.84.  D_V's head spans the whole remaining
(T', 8, 8) extent, so a face shifted by up to 8 px defeats it, and with ``color,translation`` the
category loss of a whole GAN run stayed at chance for 1,400 steps: the generator never got an
emotion signal.
"""
from __future__ import annotations

from typing import Any

# Beyond the table, off in both recipes (measured in README): emotion_directions, fake_category_weight
# (D_V's category head also sees generated clips, toward uniform, so a generator cannot lower its
# category loss with features the head reads but real expressions lack), and the composite modes
# ``mask`` (GANimation's attention: frame = mask * input frame + (1 - mask) * drawn colour) and ``warp``
# (the input frame also moved by a drawn flow field), which kept the face but learned no emotion here, and
# template_alignment="landmarks" (tenth session: the templates averaged on the takes' mean face shape and moved
# onto each input face by a thin-plate spline through dlib's 68 points; one sharp brow line instead of a doubled
# one, yet 05's dlib identity fell 0.58 -> 0.33 and CAS trained 0.58 -> 0.50: README, "Where the templates draw"),
# and drawn_upper_weight=0 (eleventh session: the decoder draws below the nose-mouth split only; over 1,200 steps
# dlib's acceptance held at 0.50-0.54 where fast's fell to 0.21, but CAS stayed at its step-0 value:
# README, "Training past step 300").
RECIPE_OPTIONS = ("adversarial_loss", "r1_gamma", "ema_beta", "diffaugment", "spectral_norm", "d_lr_ratio",
                  "category_weight", "reconstruction_weight", "warm_start", "clip_start", "emotion_directions",
                  "category_ramp", "fake_category_weight", "composite", "composite_drawn_weight",
                  "reconstruction_target", "reconstruction_loss", "emotion_templates", "template_motion",
                  "drawn_smoothing", "drawn_ramp", "template_alignment", "template_upper_weight",
                  "template_lower_weight", "drawn_upper_weight", "neutralise_input")

# Chosen on the probe pairs by best_criterion "headline" (README): 0.5 / 1.8 in the tenth session, on inputs as they
# are ("Where the templates draw"); 0.3 / 1.2 since neutralise_input, whose neutral faces need less change to read
# as the emotion and show more of it to dlib ("The input's own expression").
UPPER_WEIGHT_FAST, LOWER_WEIGHT_FAST = 0.3, 1.2
RECIPES: dict[str, dict[str, Any]] = {
    "thesis": dict(adversarial_loss="bce", r1_gamma=0.0, ema_beta=0.0, diffaugment="", spectral_norm=False,
                   d_lr_ratio=1.0, category_weight=1.0, reconstruction_weight=0.0, warm_start=False,
                   clip_start="random", emotion_directions=False, category_ramp=False,
                   fake_category_weight=0.0, composite="off",
                   composite_drawn_weight=0.0, reconstruction_target="frames",
                   reconstruction_loss="l1", emotion_templates=False, template_motion="pixels",
                   drawn_smoothing=1, drawn_ramp=False, template_alignment="none", template_upper_weight=1.0,
                   template_lower_weight=1.0, drawn_upper_weight=1.0, neutralise_input=False),
    "fast": dict(adversarial_loss="hinge", r1_gamma=0.1, ema_beta=0.99, diffaugment="color",
                 spectral_norm=True, d_lr_ratio=2.0, category_weight=5.0, reconstruction_weight=10.0,
                 warm_start=True, clip_start="first", emotion_directions=False, category_ramp=True,
                 fake_category_weight=0.0, composite="residual", composite_drawn_weight=50.0,
                 reconstruction_target="changes", reconstruction_loss="mse", emotion_templates=True,
                 template_motion="warp", drawn_smoothing=4, drawn_ramp=True, template_alignment="none",
                 template_upper_weight=UPPER_WEIGHT_FAST, template_lower_weight=LOWER_WEIGHT_FAST,
                 drawn_upper_weight=1.0, neutralise_input=True),
}
RECIPE_NAMES = tuple(RECIPES)
ADVERSARIAL_LOSSES = ("bce", "hinge")
RECONSTRUCTION_TARGETS = ("frames", "changes")
RECONSTRUCTION_LOSSES = ("l1", "mse")
TEMPLATE_MOTIONS = ("pixels", "warp")
TEMPLATE_ALIGNMENTS = ("none", "landmarks")

assert all(set(values) == set(RECIPE_OPTIONS) for values in RECIPES.values())


def recipe_value(recipe: str, option: str) -> Any:
    return RECIPES[recipe][option]
