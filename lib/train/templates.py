"""The ``templates`` system: a training-free prior, scored as a baseline of its own.

Its videos are the input's first frame with its expression taken off (the input neutraliser,
:mod:`lib.models.neutraliser`, trained on the training videos), plus each emotion's mean per-frame change
from a take's first frame in the training videos (:func:`lib.train.gan_data.emotion_templates`, head movement
removed first and applied as a warp), drawn through a decoder warm-started from 02's autoencoder.  Nothing of it
is trained by a GAN: it is VICE-GAN's generator at step 0 with :data:`lib.train.recipes.TEMPLATES_PRIOR`, what
a trained generator has to beat.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from lib.train.recipes import TEMPLATES_PRIOR


def prior_config(cfg: Any) -> Any:
    """``cfg`` as the prior's generator: every recipe option at :data:`TEMPLATES_PRIOR`, no GAN step, one probe
    (step 0) when probes are on, so ``best.pt`` is the prior itself."""
    return dataclasses.replace(cfg, **TEMPLATES_PRIOR, steps=0, probe_every=1 if cfg.probe_every else 0)


def fit_templates(cfg: Any, run_dir: str | Path, cache: Any | None = None, progress: bool = True,
                  probe: Any = None) -> dict[str, Any]:
    """Build the prior for ``cfg`` (its encoder, composition, cache) and write its run folder; returns the summary."""
    from lib.train.gan import train_gan
    from lib.train.gan_config import resolve_config

    return train_gan(resolve_config(prior_config(cfg)), run_dir, cache, progress, probe)


def load_templates(run_dir: str | Path, device: str = "cpu", snapshot: str = "best") -> Any:
    from lib.train.gan import load_generator

    return load_generator(run_dir, device=device, snapshot=snapshot)
