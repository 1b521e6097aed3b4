"""The ``templates`` system: a training-free prior, scored as a baseline of its own.

Its videos are the input's first frame with its expression taken off (the input neutraliser,
:mod:`lib.models.neutraliser`, trained on the training videos), plus each emotion's mean per-frame change
from a take's first frame in the training videos (:func:`lib.train.gan_data.emotion_templates`, head movement
removed first and applied as a warp), drawn through a decoder warm-started from 02's autoencoder.  Nothing of it
is trained by a GAN: it is VICE-GAN's generator at step 0 with :data:`lib.train.recipes.TEMPLATES_PRIOR`, what
a trained generator has to beat.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lib.config import ConfigError
from lib.train.gan_config import VICEGANOptions
from lib.train.recipes import TEMPLATES_PRIOR


@dataclass
class TemplatesOptions(VICEGANOptions):
    """VICE-GAN's options with every recipe option at :data:`TEMPLATES_PRIOR`, whatever is given, and no GAN step;
    one probe (step 0) when probes are on, so ``best.pt`` is the prior itself."""

    @classmethod
    def fixed(cls, values: dict[str, Any]) -> dict[str, Any]:
        return {**values, **TEMPLATES_PRIOR, "steps": 0, "probe_every": 1 if values["probe_every"] else 0}

    def check(self) -> None:
        super().check()
        if self.encoder != "ae":
            raise ConfigError(f"system='templates' decodes with the autoencoder's decoder: it needs encoder='ae', "
                              f"got {self.encoder!r}")

    def describe(self) -> str:
        return f"{self.system}-{self.composition}"


def fit_templates(cfg: TemplatesOptions, run_dir: str | Path, cache: Any | None = None, progress: bool = True,
                  probe: Any = None) -> dict[str, Any]:
    """Build the prior for ``cfg`` (its encoder, composition, cache) and write its run folder; returns the summary."""
    from lib.train.gan import train_gan

    return train_gan(cfg, run_dir, cache, progress, probe)


def load_templates(run_dir: str | Path, device: str = "cpu", snapshot: str = "best") -> Any:
    from lib.train.gan import load_generator

    return load_generator(run_dir, device=device, snapshot=snapshot)
