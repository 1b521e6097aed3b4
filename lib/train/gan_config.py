"""VICE-GAN's options (``system="vicegan"``; MoCoGAN with ``encoder="none"``): :class:`VICEGANOptions`.

Besides the options every run shares (:class:`lib.train.options.RunOptions`) and its encoder and networks, it has
the thesis's variant options (content mode, fine-tuning, the consistency loss, a weight per loss term) and the
training ``recipe`` (:mod:`lib.train.recipes`): a named set of values for the recipe options below, filled in by
:func:`lib.train.options.make_config` unless given.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lib.config import ConfigError, check_positive
from lib.data.clips import CLIP_STARTS
from lib.models.mocogan import COMPOSITES
from lib.train.augment import parse_policy
from lib.train.options import ConsistencyOptions, EncoderOptions, NetworkOptions, option
from lib.train.recipes import (ADVERSARIAL_LOSSES, PAIRED_TARGETS, RECIPE_NAMES, RECIPES, RECONSTRUCTION_LOSSES,
                               RECONSTRUCTION_TARGETS, TEMPLATE_ALIGNMENTS, TEMPLATE_MOTIONS)

CONTENT_MODES = ("all", "single")
# FaceNet costs ~13 ms per 80px frame on one CPU core (64 content codes per clip batch of 4), so at `small` a
# FaceNet variant runs fewer, smaller iterations to take about as long as an ae one.
ENCODER_PRESET_OVERRIDES: dict[tuple[str, str], dict[str, Any]] = {
    ("small", "facenet"): dict(steps=60, video_batch=2, sample_every=60),
}


@dataclass
class VICEGANOptions(NetworkOptions, ConsistencyOptions, EncoderOptions):
    """Every option of one VICE-GAN training run."""

    finetune: bool = option(False, "fine-tune the content encoder with the generator", (True, False))
    content_mode: str = option("all", "content code of every input frame (all) or the first one (single)",
                               CONTENT_MODES)
    image_adv_weight: float = option(1.0, "weight of D_I's adversarial term (0 drops D_I)")
    video_adv_weight: float = option(1.0, "weight of D_V's adversarial term (0 drops it)")
    compile_generator: bool = option(False, "torch.compile the generator's frame decoder (speed only; about 7 s to "
                                            "compile; README Benchmarks)", (True, False))
    identity_steps: int = option(80, "steps of the FaceNet identity embedder (facenet_weights='train')")
    identity_batch: int = option(16, "batch of the FaceNet identity embedder")
    # training recipe (lib.train.recipes): the recipe's values unless given
    recipe: str = option("thesis", "thesis (the papers' loop) | fast (small-compute techniques, lib/train/recipes.py)",
                         RECIPE_NAMES)
    category_weight: float = option(1.0, "recipe option; weight of the category term (0 drops it)")
    adversarial_loss: str = option('bce', "recipe option; bce | hinge", ADVERSARIAL_LOSSES)
    r1_gamma: float = option(0.0, "recipe option; R1 penalty weight (0 = off)")
    r1_every: int = option(4, "lazy R1: every N steps")
    ema_beta: float = option(0.0, "recipe option; generator EMA decay (0 = off)")
    diffaugment: str = option('', 'recipe option; DiffAugment policy, e.g. "color,translation" ("" = off)')
    spectral_norm: bool = option(False, "recipe option; spectral norm on both discriminators",
                                 (True, False))
    d_lr_ratio: float = option(1.0, "recipe option; discriminator learning rate x ratio (TTUR)")
    reconstruction_weight: float = option(0.0, "recipe option; paired loss to a real video of the "
                                          "subject in the target emotion (0 = off)")
    paired_target: str = option('other-take', "recipe option; the paired loss's target: other-take (a real video of "
                                "the input's subject in the target emotion) | own-take (the take whose "
                                "first frame is the input, in that take's emotion: aligned pairs)",
                                PAIRED_TARGETS)
    landmark_flow_weight: float = option(0.0, "recipe option; with composite=flow and own-take pairs, "
                                         "weight of the flow's error at the target frame's dlib landmarks "
                                         "(each must come from its place in the input frame; 0 = off)")
    feature_matching_weight: float = option(0.0, "recipe option; with own-take pairs, weight of the L1 "
                                            "between D_V's features of a generated clip and of its own "
                                            "take (pix2pixHD; 0 = off)")
    reconstruction_target: str = option('frames', "recipe option; what the paired loss compares: the "
                                        "frames, or their changes from the first frame (changes: the "
                                        "expression without the other take's lighting and pose)",
                                        RECONSTRUCTION_TARGETS)
    reconstruction_loss: str = option('l1', "recipe option; l1 (pix2pix, FEV-GAN) | mse | pyramid (L1 "
                                      "of 32, 16 and 8 px views, each frame's mean removed: "
                                      "lib.train.gan_losses.pyramid_error)",
                                      RECONSTRUCTION_LOSSES)
    warm_start: bool = option(False, "recipe option; generator decoder from the autoencoder's decoder",
                              (True, False))
    clip_start: str = option('random', "recipe option; real training clips start anywhere (random) or at "
                             "the video's first frame (first: neutral -> apex)", CLIP_STARTS)
    emotion_directions: bool = option(False, "recipe option; with warm_start, the category columns start "
                                      "at each emotion's autoencoder-code change (neutral -> apex)",
                                      (True, False))
    fake_category_weight: float = option(0.0, "recipe option; D_V's category head is also trained "
                                         "on generated clips toward the uniform distribution (0 = off)")
    category_ramp: bool = option(False, "recipe option; the category one-hot grows from 0 at the first "
                                 "frame to 1 at the last (neutral -> expression) instead of constant",
                                 (True, False))
    composite: str = option('off', "recipe option; off | mask (the generator draws a colour image and a "
                            "mask, and keeps the input frame where the mask is 1: GANimation) | "
                            "warp (the input frame is also moved by a drawn flow field) | residual "
                            "(input frame + a drawn change) | flow (a U-Net reads the input frame, "
                            "moves its pixels by a drawn flow and draws occlusions: "
                            "lib/models/flow_decoder.py); variants with a content encoder only",
                            COMPOSITES)
    emotion_templates: bool = option(False, "recipe option; with composite=residual, each emotion's mean "
                                     "change from the first frame in the training videos (per frame, "
                                     "at the real videos' amplitude) is added to the drawn change",
                                     (True, False))
    template_motion: str = option('pixels', "recipe option; with emotion_templates, where the training takes' "
                                  "head movement goes: pixels (averaged into the mean change, a ghost "
                                  "outline) | warp (each take aligned to its first frame, rigid ECC fit, "
                                  "before the mean; the mean movement then moves the generated frames)",
                                  TEMPLATE_MOTIONS)
    template_alignment: str = option('none', "recipe option; with emotion_templates: none | landmarks (each "
                                     "take's change is moved onto the takes' mean face shape by a "
                                     "thin-plate spline through dlib's 68 points before the mean, and "
                                     "the mean change onto each input face's shape)",
                                     TEMPLATE_ALIGNMENTS)
    template_upper_weight: float = option(1.0, "recipe option; with emotion_templates, the templates' "
                                          "change above the nose-mouth split (rows above "
                                          "TEMPLATE_SPLIT of the frame: brows, eyes) is scaled by this")
    template_lower_weight: float = option(1.0, "recipe option; with emotion_templates, the templates' "
                                          "change below the nose-mouth split (mouth, jaw) is scaled by this")
    drawn_smoothing: int = option(1, "recipe option; with composite=residual, the drawn change is "
                                  "averaged over k x k pixel cells and scaled back up bilinearly, so the "
                                  "decoder cannot lay texture on the face (1 = off)")
    drawn_ramp: bool = option(False, "recipe option; with composite=residual, the drawn change is scaled "
                              "by t / (T - 1): the first frame is the input frame exactly",
                              (True, False))
    drawn_upper_weight: float = option(1.0, "recipe option; with composite=residual, the drawn change "
                                       "above the nose-mouth split (TEMPLATE_SPLIT) is scaled by this "
                                       "(0: the decoder draws on the mouth and jaw only; 1 = off)")
    neutralise_input: bool = option(False, "recipe option; variants with a content encoder read the "
                                    "input frames through a network trained on the training videos to "
                                    "take their expression off (lib.models.neutraliser)",
                                    (True, False))
    neutraliser_steps: int = option(1500, "training steps of neutralise_input's network (cached per cache, "
                                          "composition and settings)")
    composite_drawn_weight: float = option(0.0, "recipe option; with composite, weight of how much of "
                                           "the frames is drawn, not kept: 1 - mask, or the residual's "
                                           "mean |change| (0 = off)")

    @classmethod
    def derived(cls, values: dict[str, Any]) -> dict[str, Any]:
        values = super().derived(values)
        values.update(ENCODER_PRESET_OVERRIDES.get((values["preset"], values["encoder"]), {}))
        values.update(RECIPES[values["recipe"]] if values["recipe"] in RECIPES else {})  # a bad name fails in check
        return values

    def check(self) -> None:
        super().check()
        parse_policy(self.diffaugment)
        for name in ("r1_gamma", "reconstruction_weight", "fake_category_weight", "composite_drawn_weight",
                     "template_upper_weight", "template_lower_weight", "drawn_upper_weight", "landmark_flow_weight",
                     "feature_matching_weight", "category_weight", "image_adv_weight", "video_adv_weight"):
            check_positive(name, getattr(self, name), allow_zero=True)
        for name in ("d_lr_ratio", "drawn_smoothing", "r1_every", "neutraliser_steps", "identity_steps",
                     "identity_batch"):
            check_positive(name, getattr(self, name))
        if not (isinstance(self.ema_beta, (int, float)) and not isinstance(self.ema_beta, bool) and 0 <= self.ema_beta < 1):
            raise ConfigError(f"invalid ema_beta={self.ema_beta!r}; must be a number in [0, 1) (0 = no EMA)")
        if self.emotion_directions and not self.warm_start:
            raise ConfigError("emotion_directions=True sets columns of the autoencoder's decoder: it needs "
                              "warm_start=True")
        if self.warm_start and self.composite == "flow":
            raise ConfigError("warm_start=True loads the autoencoder's decoder; composite='flow' has none (it starts at "
                              "the input frame): use one or the other")
        if self.emotion_templates and self.composite != "residual":
            raise ConfigError("emotion_templates=True adds to a residual generator's change: it needs "
                              "composite='residual'")
        if self.landmark_flow_weight and not (self.composite == "flow" and self.paired_target == "own-take"
                                              and self.clip_start == "first"):
            raise ConfigError("landmark_flow_weight > 0 supervises the flow of aligned pairs: it needs "
                              "composite='flow', paired_target='own-take' and clip_start='first'")
        if self.feature_matching_weight and self.paired_target != "own-take":
            raise ConfigError("feature_matching_weight > 0 compares a generated clip with its own take: it needs "
                              "paired_target='own-take'")
        if self.template_alignment != "none" and not self.emotion_templates:
            raise ConfigError("template_alignment moves the emotion templates onto each face: it needs "
                              "emotion_templates=True")
        if self.finetune and self.encoder == "none":
            raise ConfigError("finetune=True needs a content encoder; encoder='none' has none (choose 'ae' or "
                              "'facenet')")

    def needs_autoencoder(self) -> bool:
        return self.encoder == "ae" or self.warm_start  # warm_start reads the autoencoder's decoder

    def describe(self) -> str:
        """e.g. ``ae-all-frozen-mse-seen``: the options a variant of the thesis grids sets."""
        from lib.train.options import DEFAULT_CONSISTENCY_SCALE

        parts = [self.encoder]
        if self.encoder != "none":
            parts += [self.content_mode, "finetune" if self.finetune else "frozen", self.consistency_loss]
            if self.consistency_scale != DEFAULT_CONSISTENCY_SCALE[(self.encoder, self.consistency_loss)]:
                parts.append(f"x{self.consistency_scale:g}")
        parts.append(self.composition)
        if self.recipe != "thesis":
            parts.append(self.recipe)
        for name, short in (("category_weight", "cat"), ("image_adv_weight", "dimg"), ("video_adv_weight", "dvid")):
            value = getattr(self, name)
            if value != RECIPES[self.recipe].get(name, 1.0):
                parts.append(f"{short}{value:g}")
        return "-".join(parts)
