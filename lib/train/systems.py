"""Generator systems by name: what 03 trains (``-p system ...``) and what 05 loads from a run folder.

Every system declares its options as a dataclass next to its code (on :class:`lib.train.options.RunOptions`)
and writes a run folder with ``config.json`` (those options, resolved; the ``system`` field names it), ``samples/latest.gif`` and ``train_done.json``, and loads as an object with
``generate(input_videos, labels, seed)``, ``config`` and ``snapshot``, so 05 scores every system on the
same pairs.  The registry names modules, not objects, so that the names can be imported without importing the
systems.

- ``vicegan``: VICE-GAN and MoCoGAN (``encoder="none"``), the options of :mod:`lib.train.gan_config`.
- ``fevgan``: seed 003's one-step spatio-temporal GAN (:mod:`lib.train.fevgan`).
- ``reenact``: seed 002's landmark-driven pix2pix reenactment (:mod:`lib.train.reenact`), driven by each
  emotion's mean landmark motion.
- ``latent-walk``: seed 004's latent-direction walk on 02's autoencoder (:mod:`lib.train.latent_walk`);
  no network is trained.
- ``landmark-warp``: each emotion's mean landmark motion applied to the input as a thin-plate-spline warp of
  its own pixels (:mod:`lib.train.landmark_warp`); fitted in seconds, nothing drawn: the system for real faces.
- ``templates``: the training-free prior of per-emotion mean pixel changes (:mod:`lib.train.templates`), a
  baseline for every trained system.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable


@dataclass(frozen=True)
class System:
    module: str  # where its functions live
    train: str  # train(cfg, run_dir, cache=None, progress=True, probe=None) -> train_done summary
    load: str  # load(run_dir, device="cpu", snapshot="best") -> a generator with .generate
    options: str  # its options dataclass (lib.train.options.RunOptions and its own fields)
    description: str


SYSTEMS: dict[str, System] = {
    "vicegan": System("lib.train.gan", "train_gan", "load_generator", "VICEGANOptions",
                      "VICE-GAN (encoder ae/facenet) and MoCoGAN (encoder none): the GAN of every recipe option"),
    "fevgan": System("lib.train.fevgan", "fit_fevgan", "load_fevgan", "FEVGANOptions",
                     "seed 003's FEV-GAN: frozen identity encoder + trainable spatial encoder -> 3D-convolutional "
                     "decoder drawing all 16 frames at once; adversarial, L1 and identity losses"),
    "reenact": System("lib.train.reenact", "fit_reenact", "load_reenact", "ReenactOptions",
                      "seed 002: pix2pix U-Net + PatchGAN conditioned on the first input frame and target landmark "
                      "heatmaps; the input's dlib landmarks moved by the target emotion's mean landmark motion; pixel, "
                      "self/triple-consistency, perceptual and identity losses"),
    "landmark-warp": System("lib.train.landmark_warp", "fit_landmark_warp", "load_landmark_warp", "LandmarkWarpOptions",
                            "each emotion's mean landmark motion in the training takes moves the input's dlib "
                            "points; the input frame is warped through the thin-plate spline of the moved points "
                            "(its own pixels, nothing drawn)"),
    "templates": System("lib.train.templates", "fit_templates", "load_templates", "TemplatesOptions",
                        "a training-free prior: the neutralised input + each emotion's mean pixel change in the "
                        "training takes, decoded by the autoencoder's decoder (VICE-GAN's generator at step 0)"),
    "latent-walk": System("lib.train.latent_walk", "fit_latent_walk", "load_latent_walk", "LatentWalkOptions",
                          "seed 004: per-emotion logistic-regression directions in the autoencoder's code space, "
                          "the input's code walked along them on a neutral -> onset -> apex curve, decoded"),
}
SYSTEM_NAMES = tuple(SYSTEMS)


def _function(system: str, role: str) -> Callable[..., Any]:
    from lib.config import check_choice

    check_choice("system", system, SYSTEM_NAMES)
    entry = SYSTEMS[system]
    return getattr(importlib.import_module(entry.module), getattr(entry, role))


def train(cfg: Any, run_dir: str | Path, **kwargs: Any) -> dict[str, Any]:
    """Train (or resume, or report the finished) run of ``cfg.system`` in ``run_dir``."""
    return _function(cfg.system, "train")(cfg, run_dir, **kwargs)


def run_system(run_dir: str | Path) -> str:
    """The system a run folder holds (its ``config.json``, format version checked)."""
    from lib.io import read_run_config

    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: {run_dir} is not a trained run folder; train one with "
                                "notebooks/03_train.ipynb")
    return read_run_config(path)["system"]


def load_generator(run_dir: str | Path, device: str = "cpu", snapshot: str = "best") -> Any:
    """The generator of any system's run folder, ready for 05."""
    return _function(run_system(run_dir), "load")(run_dir, device=device, snapshot=snapshot)


def training_report(summary: dict[str, Any]) -> str:
    """One line on what a run took (03 prints it)."""
    per_step = summary.get("seconds_per_iteration")
    speed = f", {per_step:.3f} s/iteration" if per_step else ""
    return f"{summary['steps']} steps, {summary['wall_seconds']:.0f} s{speed}"
