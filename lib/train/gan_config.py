"""GANConfig (every 03_train option), GAN_PRESETS, validation and resolution of prerequisites.

The field names are the 03_train papermill parameters of docs/architecture.md, plus the
preset-sized knobs (widths, FaceNet input size...) and the resolved paths.  ``None``
means "the preset's value"; :func:`resolve_config` fills those and finds the cache,
the autoencoder checkpoint and the FaceNet weights, failing with the notebook to run.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lib.config import ConfigError, check_choice, check_positive
from lib.constants import PRESET_NAMES
from lib.models.encoders import CONTENT_ENCODERS, default_facenet_weights_path
from lib.utils import DEVICES

CONTENT_MODES = ("all", "single")
COMPOSITIONS = ("seen", "unseen")
CONSISTENCY_LOSSES = ("mse", "cosine")
FACENET_WEIGHT_MODES = ("train", "random")  # besides a file path

# Per preset: sizes and schedules.  paper = thesis 5.2 (batches 32/32, checkpoint every 10k,
# ~60k steps, full widths, FaceNet at 160px).  small = one variant in 80-100 s on one CPU
# core (0.47-0.57 s per iteration with two variants on the two cores): narrow networks, small
# batches, FaceNet at 80px (its smallest comfortable input)
# with the consistency loss on 4 of the 16 frames.  tiny = a few steps for tests.
GAN_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(steps=4, image_batch=4, video_batch=2, checkpoint_every=2, log_every=1, sample_every=4,
                 width=0.125, facenet_input_size=80, consistency_frames=2, identity_steps=4, identity_batch=8,
                 n_sample_subjects=2),
    "small": dict(steps=150, image_batch=8, video_batch=4, checkpoint_every=50, log_every=10, sample_every=75,
                  width=0.25, facenet_input_size=80, consistency_frames=4, identity_steps=80, identity_batch=16,
                  n_sample_subjects=3),
    "paper": dict(steps=60000, image_batch=32, video_batch=32, checkpoint_every=10000, log_every=100,
                  sample_every=5000, width=1.0, facenet_input_size=160, consistency_frames=16,
                  identity_steps=20000, identity_batch=64, n_sample_subjects=4),
}

# FaceNet costs ~13 ms per 80px frame on one CPU core (64 content codes per clip batch of 4),
# so at `small` a FaceNet variant runs fewer, smaller iterations to take about as long as an ae one.
GAN_PRESET_ENCODER_OVERRIDES: dict[tuple[str, str], dict[str, Any]] = {
    ("small", "facenet"): dict(steps=60, video_batch=2, sample_every=60),
}

# Default consistency scale per (encoder, loss), sized so the scaled term starts at a few
# tens, like the thesis's 44 at the start of training (Oostveen 4.1).  FaceNet codes are unit
# vectors, so per-element MSE is ~1e-3: Oostveen's 10000 (MSE) and 2000 (cosine distance).
# Autoencoder codes are unnormalised 50-d vectors: measured on the 02 autoencoder, the MSE
# between real codes and codes of an untrained generator's frames is ~6 and the cosine
# distance ~0.66, hence 5 and 50.
DEFAULT_CONSISTENCY_SCALE = {("facenet", "mse"): 10000.0, ("facenet", "cosine"): 2000.0,
                             ("ae", "mse"): 5.0, ("ae", "cosine"): 50.0, ("none", "mse"): 0.0,
                             ("none", "cosine"): 0.0}


@dataclass
class GANConfig:
    preset: str = "small"
    run_name: str | None = None
    run_dir: str | None = None
    cache_dir: str | None = None
    encoder: str = "ae"
    autoencoder: str | None = None  # None = the selected one; or an autoencoder name or checkpoint path
    finetune: bool = False
    facenet_weights: str | None = None  # None = local VGGFace2 file if found, else "train"; or path/"random"
    content_mode: str = "all"
    composition: str = "seen"
    consistency_loss: str = "mse"
    consistency_scale: float | None = None
    category_weight: float = 1.0
    image_adv_weight: float = 1.0
    video_adv_weight: float = 1.0
    steps: int | None = None
    image_batch: int | None = None
    video_batch: int | None = None
    learning_rate: float = 2e-4
    checkpoint_every: int | None = None
    log_every: int | None = None
    sample_every: int | None = None
    device: str = "auto"
    seed: int = 0
    # preset-sized knobs (None = preset value)
    width: float | None = None
    facenet_input_size: int | None = None
    consistency_frames: int | None = None
    identity_steps: int | None = None
    identity_batch: int | None = None
    n_sample_subjects: int | None = None
    beta1: float = 0.5
    beta2: float = 0.999
    video_length: int = 16
    every_nth: int = 2
    image_size: int | None = None  # None = the cache's frame size
    num_threads: int | None = None  # torch CPU threads; None = leave torch's default
    # resolved by resolve_config
    autoencoder_checkpoint: str | None = None
    facenet_weights_path: str | None = None


def make_gan_config(**params: Any) -> GANConfig:
    """A GANConfig from notebook parameters; unknown names fail with the valid ones."""
    fields = {f.name for f in dataclasses.fields(GANConfig)}
    unknown = sorted(set(params) - fields)
    if unknown:
        raise ConfigError(f"unknown GAN parameters {unknown}; valid: {sorted(fields)}")
    return GANConfig(**params)


def preset_value(cfg: GANConfig, name: str) -> Any:
    value = getattr(cfg, name)
    if value is not None:
        return value
    return GAN_PRESET_ENCODER_OVERRIDES.get((cfg.preset, cfg.encoder), {}).get(name, GAN_PRESETS[cfg.preset][name])


def validate(cfg: GANConfig) -> GANConfig:
    """Check every named choice and number before any work (raises ConfigError listing choices)."""
    check_choice("preset", cfg.preset, PRESET_NAMES)
    check_choice("encoder", cfg.encoder, CONTENT_ENCODERS)
    check_choice("content_mode", cfg.content_mode, CONTENT_MODES)
    check_choice("composition", cfg.composition, COMPOSITIONS)
    check_choice("consistency_loss", cfg.consistency_loss, CONSISTENCY_LOSSES)
    check_choice("device", cfg.device if not str(cfg.device).startswith("cuda:") else "cuda", DEVICES)
    check_choice("finetune", cfg.finetune, (True, False))
    if cfg.finetune and cfg.encoder == "none":
        raise ConfigError("finetune=True needs a content encoder; encoder='none' has none (choose 'ae' or 'facenet')")
    weights = cfg.facenet_weights
    if (weights is not None and weights not in FACENET_WEIGHT_MODES and not str(weights).endswith((".pt", ".pth"))
            and not Path(str(weights)).expanduser().is_file()):
        raise ConfigError(f"invalid facenet_weights={weights!r}; valid: None, 'train', 'random' or a .pt/.pth path")
    for name in ("category_weight", "image_adv_weight", "video_adv_weight"):
        check_positive(name, getattr(cfg, name), allow_zero=True)
    if cfg.consistency_scale is not None:
        check_positive("consistency_scale", cfg.consistency_scale, allow_zero=True)
    check_positive("learning_rate", cfg.learning_rate)
    for name in ("steps", "image_batch", "video_batch", "checkpoint_every", "log_every", "sample_every",
                 "width", "facenet_input_size", "consistency_frames", "identity_steps", "identity_batch",
                 "n_sample_subjects"):
        check_positive(name, preset_value(cfg, name))
    if not 1 <= preset_value(cfg, "consistency_frames") <= cfg.video_length:
        raise ConfigError(f"consistency_frames must be in 1..{cfg.video_length}")
    if cfg.num_threads is not None:
        check_positive("num_threads", cfg.num_threads)
    return cfg


def resolve_config(cfg: GANConfig) -> GANConfig:
    """Fill preset values and find prerequisites; raises naming the notebook to run first."""
    validate(cfg)
    values = {name: preset_value(cfg, name) for name in GAN_PRESETS[cfg.preset]}
    if cfg.consistency_scale is None:
        values["consistency_scale"] = DEFAULT_CONSISTENCY_SCALE[(cfg.encoder, cfg.consistency_loss)]
    from lib.data.locate import find_cache  # raises FileNotFoundError: run 01_preprocess

    values["cache_dir"] = str(Path(cfg.cache_dir) if cfg.cache_dir else find_cache(cfg.preset))
    if not Path(values["cache_dir"]).exists():
        raise FileNotFoundError(f"preprocessed cache not found: {values['cache_dir']}; run "
                                f"notebooks/01_preprocess.ipynb with preset={cfg.preset!r} first")
    if cfg.encoder == "ae":
        values["autoencoder_checkpoint"] = str(find_autoencoder_checkpoint(cfg.preset, cfg.autoencoder))
    if cfg.encoder == "facenet":
        values["facenet_weights"], values["facenet_weights_path"] = resolve_facenet_weights(cfg.facenet_weights)
    return dataclasses.replace(cfg, **values)


def find_autoencoder_checkpoint(preset: str, autoencoder: str | None) -> Path:
    """``None`` = the selected autoencoder of ``preset``; an autoencoder name; or a checkpoint path."""
    if autoencoder is not None and str(autoencoder).endswith((".pt", ".pth")):
        path = Path(autoencoder).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"autoencoder checkpoint not found: {path}")
        return path
    if autoencoder is not None:
        from lib.models.autoencoders import AUTOENCODERS

        check_choice("autoencoder", autoencoder, AUTOENCODERS)
    from lib.train.autoencoders import find_selected_autoencoder

    hint = f"encoder='ae' needs a trained autoencoder: run notebooks/02_autoencoders.ipynb with preset={preset!r} first"
    try:
        path = Path(find_selected_autoencoder(preset, name=autoencoder))
    except FileNotFoundError as error:
        raise FileNotFoundError(f"{error}\n{hint}") from error
    if not path.is_file():
        raise FileNotFoundError(f"autoencoder checkpoint not found: {path}; {hint}")
    return path


def resolve_facenet_weights(weights: str | None) -> tuple[str, str | None]:
    """(facenet_weights, weights file or None): the local VGGFace2 file when found, else "train"."""
    if weights is None:
        local = default_facenet_weights_path()
        if local.is_file():
            return str(local), str(local)
        print(f"*** No FaceNet VGGFace2 weights at {local} (offline). FaceNet will be TRAINED as an identity "
              "embedder on the training subjects (facenet_weights='train'); put the file there to use them. ***")
        return "train", None
    if weights in FACENET_WEIGHT_MODES:
        return weights, None
    path = Path(weights).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"FaceNet weights file not found: {path}; give an existing file, or "
                                "facenet_weights='train' / 'random'")
    return str(path), str(path)


def description(cfg: GANConfig) -> str:
    """A readable run-folder suffix from the options, e.g. ``ae-all-frozen-seen-mse``."""
    parts = [cfg.encoder]
    if cfg.encoder != "none":
        parts += [cfg.content_mode, "finetune" if cfg.finetune else "frozen", cfg.consistency_loss]
        if cfg.consistency_scale is not None:
            parts.append(f"x{cfg.consistency_scale:g}")
    parts.append(cfg.composition)
    for name, short in (("category_weight", "cat"), ("image_adv_weight", "dimg"), ("video_adv_weight", "dvid")):
        if getattr(cfg, name) != 1.0:
            parts.append(f"{short}{getattr(cfg, name):g}")
    return "-".join(parts)
