"""GANConfig (every 03_train option), GAN_PRESETS, validation and resolution of prerequisites.

The field names are the 03_train papermill parameters of docs/architecture.md, plus the
preset-sized knobs (widths, FaceNet input size...) and the resolved paths.  ``None``
means "the preset's value"; :func:`resolve_config` fills those and finds the cache,
the autoencoder checkpoint and the FaceNet weights, failing with the notebook to run.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lib.config import ConfigError, check_choice, check_positive, check_types, from_dict
from lib.constants import CLIP_STRIDE, PRESET_NAMES, VIDEO_LENGTH
from lib.data.clips import CLIP_STARTS
from lib.data.splits import COMPOSITIONS
from lib.display import DISPLAY_PARAMETERS
from lib.models.encoders import CONTENT_ENCODERS, default_facenet_weights_path
from lib.models.mocogan import COMPOSITES
from lib.models.reenact import OUTPUTS as REENACT_OUTPUTS
from lib.train.augment import parse_policy
from lib.train.recipes import (ADVERSARIAL_LOSSES, PAIRED_TARGETS, RECIPE_NAMES, RECIPE_OPTIONS, RECONSTRUCTION_LOSSES,
                               RECONSTRUCTION_TARGETS, TEMPLATE_ALIGNMENTS, TEMPLATE_MOTIONS,
                               recipe_value)
from lib.train.systems import SYSTEM_NAMES
from lib.utils import DEVICES

CONTENT_MODES = ("all", "single")
FEVGAN_ENCODERS = ("both", "spatial", "identity")  # FEV-GAN's encoders (lib/train/fevgan.py)
# reenact's loss groups: all, or seed 002's ablations, one group dropped (lib/train/reenact.py)
REENACT_LOSSES = ("all", "no-pixel", "no-consistency", "no-feature")
SOURCE_FRAMES = ("first", "neutral")  # the input frame that reenact and the walk draw from
WALK_OUTPUTS = ("decoded", "residual")  # what the latent walk shows (lib/train/latent_walk.py)
CONSISTENCY_LOSSES = ("mse", "cosine")
FACENET_WEIGHT_MODES = ("train", "random")  # besides a file path
# Named criteria for the best snapshot (higher is better), computed from a probe's metrics.
BEST_CRITERIA = ("headline", "ssim", "cas_trained", "cas_truth", "verif_truth", "verif_dlib")

# Per preset: sizes and schedules.  paper = thesis 5.2 (batches 32/32, checkpoint every 10k,
# ~60k steps, full widths, FaceNet at 160px).  small = one variant in 80-100 s on one CPU
# core (0.47-0.57 s per iteration with two variants on the two cores): narrow networks, small
# batches, FaceNet at 80px (its smallest comfortable input)
# with the consistency loss on 4 of the 16 frames.  tiny = a few steps for tests.
GAN_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(steps=4, image_batch=4, video_batch=2, checkpoint_every=2, log_every=1, sample_every=4,
                 width=0.125, facenet_input_size=80, consistency_frames=2, identity_steps=4, identity_batch=8,
                 n_sample_subjects=2, probe_every=0, neutraliser_steps=4),
    "small": dict(steps=150, image_batch=8, video_batch=4, checkpoint_every=50, log_every=10, sample_every=75,
                  width=0.25, facenet_input_size=80, consistency_frames=4, identity_steps=80, identity_batch=16,
                  n_sample_subjects=3, probe_every=250, neutraliser_steps=1500),
    "paper": dict(steps=60000, image_batch=32, video_batch=32, checkpoint_every=10000, log_every=100,
                  sample_every=5000, width=1.0, facenet_input_size=160, consistency_frames=16,
                  identity_steps=20000, identity_batch=64, n_sample_subjects=4,
                  probe_every=5000, neutraliser_steps=5000),
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


# Where a run is written is not a hyperparameter: 03 takes these beside GANConfig's fields (name ->
# (default, help)).
RUN_LOCATION_PARAMETERS: dict[str, tuple[Any, str]] = {
    "run_name": (None, "None: a new numbered folder under papermill_runs/03_train/"),
    "run_dir": (None, "explicit run folder (the sweep runner sets it)"),
}


def _param(default: Any, help: str, choices: tuple | None = None, notebook: bool = True) -> Any:
    """A GANConfig field with its one-line help and choices: the single declaration that the 03
    parameters cell, the grids' defaults, validation and docs/architecture.md all read."""
    return field(default=default, metadata={"help": help, "choices": choices, "notebook": notebook})


@dataclass
class GANConfig:
    """Every option of one VICE-GAN training run (03_train's parameters are the ``notebook`` fields)."""

    preset: str = _param("small", "tiny | small | paper: sizes and schedules (GAN_PRESETS)", PRESET_NAMES)
    system: str = _param("vicegan", "what is trained (lib/train/systems.py): vicegan (VICE-GAN; MoCoGAN with "
                                    "encoder none) | fevgan (seed 003; encoder = its frozen identity encoder) | "
                                    "reenact (seed 002's landmark-driven pix2pix; encoder = its identity loss's) | "
                                    "latent-walk (seed 004's walk in the autoencoder's code space; reads preset, "
                                    "cache_dir, autoencoder, composition, seed) | landmark-warp (the emotions' "
                                    "mean landmark motion warps the input's own pixels) | templates (the "
                                    "training-free prior)", SYSTEM_NAMES)
    fevgan_encoders: str = _param("both", "system fevgan: both encoders | spatial (without the identity encoder) | "
                                          "identity (without the spatial encoder): the paper's ablations",
                                  FEVGAN_ENCODERS)
    reenact_losses: str = _param("all", "system reenact: all loss groups | no-pixel | no-consistency (self + triple) | "
                                        "no-feature (perceptual + identity): seed 002's ablations", REENACT_LOSSES)
    source_frame: str = _param("first", "systems reenact, latent-walk: the input frame every frame is drawn from: "
                                        "first (the input clip's first frame: the papers') | neutral (the clip's "
                                        "frame closest to the training takes' mean first frame: our option)",
                               SOURCE_FRAMES)
    walk_output: str = _param("decoded", "system latent-walk: decoded (the autoencoder's decoding of the walked "
                                         "code: seed 004) | residual (the input frame plus the decoded change "
                                         "from its own code: keeps the input's detail; our option)", WALK_OUTPUTS)
    reenact_output: str = _param("image", "system reenact: image (pix2pix's U-Net draws the frame: the paper) | warp "
                                          "(it moves the source frame by a drawn flow and blends drawn colour by "
                                          "a drawn mask: our option)", REENACT_OUTPUTS)
    warp_gain: float = _param(1.0, "system landmark-warp: the emotions' mean landmark motion is multiplied by it "
                                   "(1: the training takes' own amplitude)")
    cache_dir: str | None = _param(None, "None: the cache 01_preprocess recorded for the preset")
    encoder: str = _param("ae", "content encoder: ae (02's selected autoencoder) | facenet | none (MoCoGAN)",
                          CONTENT_ENCODERS)
    autoencoder: str | None = _param(None, "None: the selected one; or an autoencoder name or checkpoint path")
    finetune: bool = _param(False, "fine-tune the content encoder with the generator", (True, False))
    facenet_weights: str | None = _param(None, 'None: local VGGFace2 file if found, else "train"; or a path, "random"')
    content_mode: str = _param("all", "content code of every input frame (all) or the first one (single)", CONTENT_MODES)
    composition: str = _param("seen", "Seen/Unseen training composition (thesis 4.2)", COMPOSITIONS)
    consistency_loss: str = _param("mse", "content-consistency distance", CONSISTENCY_LOSSES)
    consistency_scale: float | None = _param(None, "None: the default for the encoder and loss (0 drops the term)")
    category_weight: float | None = _param(None, "None: the recipe's (thesis 1, fast 5); 0 drops the term")
    image_adv_weight: float = _param(1.0, "weight of D_I's adversarial term (0 drops D_I)")
    video_adv_weight: float = _param(1.0, "weight of D_V's adversarial term (0 drops it)")
    steps: int | None = _param(None, "None: the preset value")
    time_limit_minutes: float | None = _param(None, "also stop after this much wall time, resumes included "
                                                    "(None: no limit; the step reached then depends on the machine)")
    image_batch: int | None = _param(None, "None: the preset value")
    video_batch: int | None = _param(None, "None: the preset value")
    learning_rate: float = _param(2e-4, "Adam learning rate (the generator's; D's x d_lr_ratio)")
    checkpoint_every: int | None = _param(None, "None: the preset value")
    log_every: int | None = _param(None, "None: the preset value")
    sample_every: int | None = _param(None, "None: the preset value")
    device: str = _param("auto", "auto | cpu | cuda | cuda:N")
    seed: int = _param(0, "every random draw of the run follows it")
    num_threads: int | None = _param(None, "torch CPU threads (the sweep runner sets 1 when it runs two at once)")
    compile_generator: bool = _param(False, "torch.compile the generator's frame decoder (speed only; about 7 s to "
                                            "compile; README Benchmarks)", (True, False))
    # training recipe (lib.train.recipes): None = the recipe's value for each option
    recipe: str = _param("thesis", "thesis (the papers' loop) | fast (small-compute techniques, lib/train/recipes.py)",
                         RECIPE_NAMES)
    adversarial_loss: str | None = _param(None, "None: the recipe's; bce | hinge", (None,) + ADVERSARIAL_LOSSES)
    r1_gamma: float | None = _param(None, "None: the recipe's; R1 penalty weight (0 = off)")
    r1_every: int = _param(4, "lazy R1: every N steps")
    ema_beta: float | None = _param(None, "None: the recipe's; generator EMA decay (0 = off)")
    diffaugment: str | None = _param(None, 'None: the recipe\'s; DiffAugment policy, e.g. "color,translation" ("" = off)')
    spectral_norm: bool | None = _param(None, "None: the recipe's; spectral norm on both discriminators",
                                        (None, True, False))
    d_lr_ratio: float | None = _param(None, "None: the recipe's; discriminator learning rate x ratio (TTUR)")
    reconstruction_weight: float | None = _param(None, "None: the recipe's; paired loss to a real video of the "
                                                       "subject in the target emotion (0 = off)")
    paired_target: str | None = _param(None, "None: the recipe's; the paired loss's target: other-take (a real video of "
                                             "the input's subject in the target emotion) | own-take (the take whose "
                                             "first frame is the input, in that take's emotion: aligned pairs)",
                                       (None,) + PAIRED_TARGETS)
    landmark_flow_weight: float | None = _param(None, "None: the recipe's; with composite=flow and own-take pairs, "
                                                   "weight of the flow's error at the target frame's dlib landmarks "
                                                   "(each must come from its place in the input frame; 0 = off)")
    feature_matching_weight: float | None = _param(None, "None: the recipe's; with own-take pairs, weight of the L1 "
                                                      "between D_V's features of a generated clip and of its own "
                                                      "take (pix2pixHD; 0 = off)")
    reconstruction_target: str | None = _param(None, "None: the recipe's; what the paired loss compares: the "
                                                     "frames, or their changes from the first frame (changes: the "
                                                     "expression without the other take's lighting and pose)",
                                               (None,) + RECONSTRUCTION_TARGETS)
    reconstruction_loss: str | None = _param(None, "None: the recipe's; l1 (pix2pix, FEV-GAN) | mse | pyramid (L1 "
                                                   "of 32, 16 and 8 px views, each frame's mean removed: "
                                                   "lib.train.gan_losses.pyramid_error)",
                                             (None,) + RECONSTRUCTION_LOSSES)
    warm_start: bool | None = _param(None, "None: the recipe's; generator decoder from the autoencoder's decoder",
                                     (None, True, False))
    clip_start: str | None = _param(None, "None: the recipe's; real training clips start anywhere (random) or at "
                                          "the video's first frame (first: neutral -> apex)", (None,) + CLIP_STARTS)
    emotion_directions: bool | None = _param(None, "None: the recipe's; with warm_start, the category columns start "
                                                   "at each emotion's autoencoder-code change (neutral -> apex)",
                                             (None, True, False))
    fake_category_weight: float | None = _param(None, "None: the recipe's; D_V's category head is also trained "
                                                      "on generated clips toward the uniform distribution (0 = off)")
    category_ramp: bool | None = _param(None, "None: the recipe's; the category one-hot grows from 0 at the first "
                                              "frame to 1 at the last (neutral -> expression) instead of constant",
                                        (None, True, False))
    composite: str | None = _param(None, "None: the recipe's; off | mask (the generator draws a colour image and a "
                                         "mask, and keeps the input frame where the mask is 1: GANimation) | "
                                         "warp (the input frame is also moved by a drawn flow field) | residual "
                                         "(input frame + a drawn change) | flow (a U-Net reads the input frame, "
                                         "moves its pixels by a drawn flow and draws occlusions: "
                                         "lib/models/flow_decoder.py); variants with a content encoder only",
                                   (None,) + COMPOSITES)
    emotion_templates: bool | None = _param(None, "None: the recipe's; with composite=residual, each emotion's mean "
                                                  "change from the first frame in the training videos (per frame, "
                                                  "at the real videos' amplitude) is added to the drawn change",
                                            (None, True, False))
    template_motion: str | None = _param(None, "None: the recipe's; with emotion_templates, where the training takes' "
                                                "head movement goes: pixels (averaged into the mean change, a ghost "
                                                "outline) | warp (each take aligned to its first frame, rigid ECC fit, "
                                                "before the mean; the mean movement then moves the generated frames)",
                                         (None,) + TEMPLATE_MOTIONS)
    template_alignment: str | None = _param(None, "None: the recipe's; with emotion_templates: none | landmarks (each "
                                                   "take's change is moved onto the takes' mean face shape by a "
                                                   "thin-plate spline through dlib's 68 points before the mean, and "
                                                   "the mean change onto each input face's shape)",
                                            (None,) + TEMPLATE_ALIGNMENTS)
    template_upper_weight: float | None = _param(None, "None: the recipe's; with emotion_templates, the templates' "
                                                      "change above the nose-mouth split (rows above "
                                                      "TEMPLATE_SPLIT of the frame: brows, eyes) is scaled by this")
    template_lower_weight: float | None = _param(None, "None: the recipe's; with emotion_templates, the templates' "
                                                      "change below the nose-mouth split (mouth, jaw) is scaled by this")
    drawn_smoothing: int | None = _param(None, "None: the recipe's; with composite=residual, the drawn change is "
                                                "averaged over k x k pixel cells and scaled back up bilinearly, so the "
                                                "decoder cannot lay texture on the face (1 = off)")
    drawn_ramp: bool | None = _param(None, "None: the recipe's; with composite=residual, the drawn change is scaled "
                                           "by t / (T - 1): the first frame is the input frame exactly",
                                     (None, True, False))
    drawn_upper_weight: float | None = _param(None, "None: the recipe's; with composite=residual, the drawn change "
                                                   "above the nose-mouth split (TEMPLATE_SPLIT) is scaled by this "
                                                   "(0: the decoder draws on the mouth and jaw only; 1 = off)")
    neutralise_input: bool | None = _param(None, "None: the recipe's; variants with a content encoder read the "
                                                 "input frames through a network trained on the training videos to "
                                                 "take their expression off (lib.models.neutraliser)",
                                           (None, True, False))
    neutraliser_steps: int | None = _param(None, "None: the preset value; training steps of neutralise_input's "
                                                 "network (cached per cache, composition and settings)")
    composite_drawn_weight: float | None = _param(None, "None: the recipe's; with composite, weight of how much of "
                                                     "the frames is drawn, not kept: 1 - mask, or the residual's "
                                                     "mean |change| (0 = off)")
    # learning probes (lib.evaluation.learning_probes) and best-snapshot selection
    probe_every: int | None = _param(None, "None: the preset value; 0 = no learning probes")
    probe_pairs: int = _param(24, "held-out pairs each probe generates and scores")
    best_criterion: str = _param("headline", "what best.pt maximises", BEST_CRITERIA)
    # preset-sized knobs (None = preset value)
    width: float | None = _param(None, "network width factor (1 = the paper's)", notebook=False)
    facenet_input_size: int | None = _param(None, "FaceNet input size", notebook=False)
    consistency_frames: int | None = _param(None, "frames per clip in the consistency loss", notebook=False)
    identity_steps: int | None = _param(None, "steps of the FaceNet identity embedder", notebook=False)
    identity_batch: int | None = _param(None, "batch of the FaceNet identity embedder", notebook=False)
    n_sample_subjects: int | None = _param(None, "columns of the sample grid", notebook=False)
    beta1: float = _param(0.5, "Adam beta1", notebook=False)
    beta2: float = _param(0.999, "Adam beta2", notebook=False)
    video_length: int = _param(VIDEO_LENGTH, "frames per video", notebook=False)
    every_nth: int = _param(CLIP_STRIDE, "clip frame stride", notebook=False)
    image_size: int | None = _param(None, "None: the cache's frame size", notebook=False)
    # resolved by resolve_config
    autoencoder_checkpoint: str | None = _param(None, "resolved autoencoder checkpoint", notebook=False)
    facenet_weights_path: str | None = _param(None, "resolved FaceNet weights file", notebook=False)


def notebook_parameters() -> dict[str, Any]:
    """03_train's parameters (name -> default), in declaration order."""
    return {f.name: f.default for f in dataclasses.fields(GANConfig) if f.metadata.get("notebook", True)}


def parameters_cell() -> str:
    """The source of 03_train's ``parameters`` cell: the run location, GANConfig's fields, then how the
    sample videos are shown (:data:`lib.display.DISPLAY_PARAMETERS`)."""
    fields = [f for f in dataclasses.fields(GANConfig) if f.metadata.get("notebook", True)]
    # annotated: lib.notebook_parameters checks types
    lines = [f"{name}: str | None = {default!r}" for name, (default, _) in RUN_LOCATION_PARAMETERS.items()]
    lines += [f"{f.name}: {f.type} = {f.default!r}" for f in fields]
    lines += [f"{name}: {type(default).__name__} = {default!r}" for name, (default, _) in DISPLAY_PARAMETERS.items()]
    helps = [text for _, text in RUN_LOCATION_PARAMETERS.values()] + [f.metadata["help"] for f in fields]
    helps += [text for _, text in DISPLAY_PARAMETERS.values()]
    width = max(map(len, lines)) + 2
    return "\n".join(f"{line:<{width}}# {text}" for line, text in zip(lines, helps))


def gan_config_from_dict(data: dict[str, Any]) -> GANConfig:
    """A GANConfig from a stored config (``config.json``, a checkpoint's ``config``); the stored format version
    is checked where the file is read (:func:`lib.io.check_format`)."""
    return from_dict(GANConfig, {k: v for k, v in data.items() if k not in ("class", "format_version")})


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


def option(cfg: GANConfig, name: str) -> Any:
    """A field's value; for a recipe option left at None, the recipe's value."""
    value = getattr(cfg, name)
    return recipe_value(cfg.recipe, name) if value is None and name in RECIPE_OPTIONS else value


def validate(cfg: GANConfig) -> GANConfig:
    """Check every field's type, named choice and number before any work (raises ConfigError listing choices)."""
    check_types(cfg)
    for item in dataclasses.fields(GANConfig):
        if item.metadata.get("choices"):
            check_choice(item.name, getattr(cfg, item.name), item.metadata["choices"])
    parse_policy(option(cfg, "diffaugment"))
    for name in ("r1_gamma", "reconstruction_weight", "fake_category_weight", "composite_drawn_weight",
                 "template_upper_weight", "template_lower_weight", "drawn_upper_weight", "landmark_flow_weight",
                 "feature_matching_weight"):
        check_positive(name, option(cfg, name), allow_zero=True)
    check_positive("d_lr_ratio", option(cfg, "d_lr_ratio"))
    check_positive("drawn_smoothing", option(cfg, "drawn_smoothing"))
    beta = option(cfg, "ema_beta")
    if not (isinstance(beta, (int, float)) and not isinstance(beta, bool) and 0 <= beta < 1):
        raise ConfigError(f"invalid ema_beta={beta!r}; must be a number in [0, 1) (0 = no EMA)")
    check_positive("r1_every", cfg.r1_every)
    check_positive("warp_gain", cfg.warp_gain, allow_zero=True)
    if cfg.neutraliser_steps is not None:
        check_positive("neutraliser_steps", cfg.neutraliser_steps)
    if cfg.time_limit_minutes is not None:
        check_positive("time_limit_minutes", cfg.time_limit_minutes)
    check_positive("probe_pairs", cfg.probe_pairs)
    check_positive("probe_every", preset_value(cfg, "probe_every"), allow_zero=True)
    check_choice("device", cfg.device if not str(cfg.device).startswith("cuda:") else "cuda", DEVICES)
    if option(cfg, "emotion_directions") and not option(cfg, "warm_start"):
        raise ConfigError("emotion_directions=True sets columns of the autoencoder's decoder: it needs warm_start=True")
    if option(cfg, "warm_start") and option(cfg, "composite") == "flow":
        raise ConfigError("warm_start=True loads the autoencoder's decoder; composite='flow' has none (it starts at "
                          "the input frame): use one or the other")
    if option(cfg, "emotion_templates") and option(cfg, "composite") != "residual":
        raise ConfigError("emotion_templates=True adds to a residual generator's change: it needs composite='residual'")
    if option(cfg, "landmark_flow_weight") and not (option(cfg, "composite") == "flow" and option(
            cfg, "paired_target") == "own-take" and option(cfg, "clip_start") == "first"):
        raise ConfigError("landmark_flow_weight > 0 supervises the flow of aligned pairs: it needs composite='flow', "
                          "paired_target='own-take' and clip_start='first'")
    if option(cfg, "feature_matching_weight") and option(cfg, "paired_target") != "own-take":
        raise ConfigError("feature_matching_weight > 0 compares a generated clip with its own take: it needs "
                          "paired_target='own-take'")
    if option(cfg, "template_alignment") != "none" and not option(cfg, "emotion_templates"):
        raise ConfigError("template_alignment moves the emotion templates onto each face: it needs emotion_templates=True")
    if cfg.system == "templates" and cfg.encoder != "ae":
        raise ConfigError(f"system='templates' decodes with the autoencoder's decoder: it needs encoder='ae', "
                          f"got {cfg.encoder!r}")
    if cfg.system == "latent-walk" and cfg.encoder != "ae":
        raise ConfigError(f"system='latent-walk' walks in the autoencoder's code space: it needs encoder='ae', "
                          f"got {cfg.encoder!r}")
    if cfg.system == "fevgan" and cfg.fevgan_encoders != "spatial" and cfg.encoder == "none":
        raise ConfigError("system='fevgan' takes its identity encoder from encoder: choose 'ae' or 'facenet' "
                          "(or fevgan_encoders='spatial', the ablation without it)")
    if cfg.system == "reenact" and cfg.reenact_losses != "no-feature" and cfg.encoder == "none":
        raise ConfigError("system='reenact' takes its identity loss's encoder from encoder: choose 'ae' or 'facenet' "
                          "(or reenact_losses='no-feature', the ablation without the feature losses)")
    if cfg.finetune and cfg.encoder == "none":
        raise ConfigError("finetune=True needs a content encoder; encoder='none' has none (choose 'ae' or 'facenet')")
    weights = cfg.facenet_weights
    if (weights is not None and weights not in FACENET_WEIGHT_MODES and not str(weights).endswith((".pt", ".pth"))
            and not Path(str(weights)).expanduser().is_file()):
        raise ConfigError(f"invalid facenet_weights={weights!r}; valid: None, 'train', 'random' or a .pt/.pth path")
    for name in ("category_weight", "image_adv_weight", "video_adv_weight"):
        check_positive(name, option(cfg, name), allow_zero=True)
    if cfg.consistency_scale is not None:
        check_positive("consistency_scale", cfg.consistency_scale, allow_zero=True)
    check_positive("learning_rate", cfg.learning_rate)
    check_positive("steps", preset_value(cfg, "steps"), allow_zero=cfg.system in ("templates", "vicegan"))  # an untrained generator
    for name in ("image_batch", "video_batch", "checkpoint_every", "log_every", "sample_every",
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
    values.update({name: option(cfg, name) for name in RECIPE_OPTIONS})
    if cfg.consistency_scale is None:
        values["consistency_scale"] = DEFAULT_CONSISTENCY_SCALE[(cfg.encoder, cfg.consistency_loss)]
    from lib.data.locate import find_cache  # raises FileNotFoundError: run 01_preprocess

    values["cache_dir"] = str(Path(cfg.cache_dir) if cfg.cache_dir else find_cache(cfg.preset))
    if not Path(values["cache_dir"]).exists():
        raise FileNotFoundError(f"preprocessed cache not found: {values['cache_dir']}; run "
                                f"notebooks/01_preprocess.ipynb with preset={cfg.preset!r} first")
    # warm_start reads the autoencoder's decoder; reenact's perceptual loss its encoder
    if cfg.encoder == "ae" or values["warm_start"] or (cfg.system == "reenact" and cfg.reenact_losses != "no-feature"):
        values["autoencoder_checkpoint"] = str(find_autoencoder_checkpoint(cfg.preset, cfg.autoencoder, cfg.composition))
    if cfg.encoder == "facenet":
        values["facenet_weights"], values["facenet_weights_path"] = resolve_facenet_weights(cfg.facenet_weights)
    return dataclasses.replace(cfg, **values)


def is_resolved(cfg: GANConfig) -> bool:
    """Whether ``cfg`` came out of :func:`resolve_config`: every preset value, recipe option, the
    consistency scale and the cache are filled in."""
    names = (*GAN_PRESETS[cfg.preset], *RECIPE_OPTIONS, "consistency_scale", "cache_dir")
    return all(getattr(cfg, name) is not None for name in names)


def ensure_resolved(cfg: GANConfig) -> GANConfig:
    """``cfg`` as it is when already resolved (validated once, where it was resolved), else resolved now."""
    return cfg if is_resolved(cfg) else resolve_config(cfg)


def find_autoencoder_checkpoint(preset: str, autoencoder: str | None, composition: str = "unseen") -> Path:
    """``None`` = the selected autoencoder of ``preset`` for a GAN of ``composition``; an autoencoder
    name; or a checkpoint path.  An unseen GAN refuses an autoencoder trained on the seen composition
    (it has seen the test subjects)."""
    if autoencoder is not None and str(autoencoder).endswith((".pt", ".pth")):
        path = Path(autoencoder).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"autoencoder checkpoint not found: {path}")
        return _check_autoencoder_composition(path, composition)
    if autoencoder is not None:
        from lib.models.autoencoders import AUTOENCODERS

        check_choice("autoencoder", autoencoder, AUTOENCODERS)
    from lib.train.autoencoders import find_selected_autoencoder

    hint = f"encoder='ae' needs a trained autoencoder: run notebooks/02_autoencoders.ipynb with preset={preset!r} first"
    try:
        path = Path(find_selected_autoencoder(preset, name=autoencoder, composition=composition))
    except FileNotFoundError as error:
        raise FileNotFoundError(f"{error}\n{hint}") from error
    if not path.is_file():
        raise FileNotFoundError(f"autoencoder checkpoint not found: {path}; {hint}")
    return _check_autoencoder_composition(path, composition)


def _check_autoencoder_composition(path: Path, composition: str) -> Path:
    if composition != "unseen":  # a seen variant may use either autoencoder: nothing to read
        return path
    from lib.io import load_checkpoint

    trained_on = load_checkpoint(path).get("config", {}).get("composition", "unseen")  # older: training subjects
    if trained_on != "unseen":
        raise ConfigError(f"{path} was trained on the {trained_on} composition, which includes test subjects; "
                          "an unseen variant needs an autoencoder of the unseen composition (02 with "
                          "composition='unseen', the default)")
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
    if cfg.system == "fevgan":
        return f"fevgan-{cfg.encoder}-{cfg.fevgan_encoders}-{cfg.composition}"
    if cfg.system == "reenact":
        output = "" if cfg.reenact_output == "image" else f"-{cfg.reenact_output}"
        return f"reenact-{cfg.encoder}-{cfg.reenact_losses}{output}-{cfg.composition}"
    if cfg.system == "latent-walk":  # the walk reads only the data options and its output
        return f"{cfg.system}-{cfg.composition}" + ("" if cfg.walk_output == "decoded" else f"-{cfg.walk_output}")
    if cfg.system == "landmark-warp":
        return f"{cfg.system}-{cfg.composition}" + ("" if cfg.warp_gain == 1.0 else f"-x{cfg.warp_gain:g}")
    if cfg.system != "vicegan":
        return f"{cfg.system}-{cfg.composition}"
    parts = [cfg.encoder]
    if cfg.encoder != "none":
        parts += [cfg.content_mode, "finetune" if cfg.finetune else "frozen", cfg.consistency_loss]
        if cfg.consistency_scale is not None:
            parts.append(f"x{cfg.consistency_scale:g}")
    parts.append(cfg.composition)
    if cfg.recipe != "thesis":
        parts.append(cfg.recipe)
    for name, short in (("category_weight", "cat"), ("image_adv_weight", "dimg"), ("video_adv_weight", "dvid")):
        value = option(cfg, name)
        if value != (recipe_value(cfg.recipe, name) if name in RECIPE_OPTIONS else 1.0):
            parts.append(f"{short}{value:g}")
    return "-".join(parts)
