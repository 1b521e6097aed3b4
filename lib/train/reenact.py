"""Seed 002's landmark-driven face reenactment as an emotion-video generator: ``system="reenact"`` in 03.
Networks (pix2pix U-Net + PatchGAN, landmark heatmaps) in :mod:`lib.models.reenact`.

Training (the paper's): each iteration draws, per batch item, three frames of one training take with
their dlib landmarks: source ``I_s``, in-between ``I_i`` and target ``I_t`` (all three flipped together
half of the time, points renumbered).  ``G(I_s; e_t)`` must draw ``I_t``.  Generator loss (paper Eq. 1):

- ``adv``: binary cross-entropy against the PatchGAN discriminator, which sees frames with the target
  heatmaps;
- pixel group: ``10 * ||G(I_s; e_t) - I_t||^2``;
- consistency group: self ``100 * ||G(G(I_s; e_t); e_s) - I_s||^2`` and triple
  ``100 * ||G(G(I_s; e_i); e_t) - G(I_s; e_t)||^2``;
- feature group: perceptual ``10 * (sum_l ||phi_l(I_t) - phi_l(G)||_1 + ||Gram(phi_mid(I_t)) -
  Gram(phi_mid(G))||_F)`` and identity ``1 * ||psi(I_t) - psi(G)||_1``.

``reenact_output="warp"`` (our option) makes the U-Net move the source frame by a drawn flow field and blend
in drawn colour by a drawn mask instead of drawing every pixel (:mod:`lib.models.reenact`).
``source_frame="neutral"`` (our option) draws from the input clip's frame whose aligned landmarks are closest to
the training takes' mean first frame instead of its first frame (05's input clips start anywhere in a take).
``reenact_losses`` drops one group (the paper's ablations: ``no-pixel``, ``no-consistency``,
``no-feature``).  Adam, generator ``learning_rate`` (2e-4), discriminator a quarter of it (the paper's
5e-5), betas ``beta1``/``beta2``.

Generating an emotion video (what the paper does not do, and our choice): the target landmarks of frame
``t`` are the input's first-frame landmarks (dlib) moved by the target emotion's mean landmark motion at
clip frame ``t``, learned on the training subjects' takes (clips from each take's first frame, neutral ->
onset -> apex; :func:`lib.data.landmarks.emotion_displacements`), rotated and scaled to the input's face
and kept inside the frame; each of the 16 frames is ``G(first input frame; e_t)``.  Landmarks: dlib's
68-point predictor on every frame (the synthetic ground truth is not used, so the same code runs on MUG).

Where our tools differ from the paper's: VGG-19's weights cannot be had offline, so ``phi`` is the frozen
encoder of 02's selected autoencoder (every block's activations; Gram at its middle block) and ``psi`` is
the run's frozen content encoder (``encoder``: ``ae`` codes or ``facenet`` embeddings) instead of
VGG-19's relu2_2.  Resumable like every system (:mod:`lib.train.loop`); ``best.pt`` keeps the best probe.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lib.constants import EMOTIONS
from lib.data.clips import check_input_videos, closest_frames, sample_clip_indices, uint8_to_model
from lib.data.landmarks import (LandmarkPredictor, aligned, cache_landmarks, displaced_landmarks,
                                emotion_displacements, flip_points)
from lib.io import to_uint8_frames
from lib.models.encoders import build_content_encoder, load_autoencoder_network
from lib.models.mocogan import init_dcgan_weights
from lib.models.reenact import PatchDiscriminator, UNetGenerator, landmark_heatmaps
from lib.config import ConfigError, check_positive
from lib.models.reenact import OUTPUTS
from lib.train.options import EncoderOptions, NetworkOptions, SourceFrameOptions, config_from_dict, option
from lib.train.gan_losses import bce_fake, bce_real
from lib.train.loop import Trainee, load_snapshot, run_training, training_run
from lib.utils import resolve_device, seed_everything

LOSS_WEIGHTS = {"pixel": 10.0, "self": 100.0, "triple": 100.0, "perceptual": 10.0, "identity": 1.0}  # the paper's
LOSS_GROUPS = {"pixel": ("pixel",), "consistency": ("self", "triple"), "feature": ("perceptual", "identity")}
D_LR_RATIO = 0.25  # the paper: generator 2e-4, discriminator 5e-5
SOURCE_IS_FIRST_FRAME = 0.5  # share of sources that are a take's first frame, as when generating


def loss_terms(reenact_losses: str) -> tuple[str, ...]:
    """The generator's weighted terms for a ``reenact_losses`` choice (``all`` or ``no-<group>``)."""
    dropped = LOSS_GROUPS.get(reenact_losses.removeprefix("no-"), ())
    return tuple(term for term in LOSS_WEIGHTS if term not in dropped)


class TripletSampler:
    """Per batch item three frames of one training take (source, in-between, target) with their landmarks;
    one seeded, checkpointable RNG."""

    def __init__(self, cache: Any, video_ids, landmarks: np.ndarray, seed: int = 0, flip: bool = True):
        if len(video_ids) == 0:
            raise ValueError("no training videos to sample from (empty composition)")
        rows = cache.index.set_index("video_id").loc[list(video_ids)]
        self.frames, self.landmarks, self.flip = cache.frames, landmarks, flip
        self.starts = rows["start"].to_numpy(np.int64)
        self.lengths = rows["length"].to_numpy(np.int64)
        self.rng = np.random.default_rng(seed)

    def draw(self, n: int) -> tuple[list[torch.Tensor], list[np.ndarray]]:
        """([source, in-between, target] frames (n, 3, S, S) in [-1, 1], [their points (n, 68, 2)])."""
        videos = self.rng.integers(0, len(self.starts), size=n)
        picks = self.rng.integers(0, self.lengths[videos][:, None], size=(n, 3))
        picks[:, 0] = np.where(self.rng.random(n) < SOURCE_IS_FIRST_FRAME, 0, picks[:, 0])
        rows = self.starts[videos][:, None] + picks  # (n, 3) frame rows
        frames = np.asarray(self.frames[rows.reshape(-1)]).reshape(n, 3, *self.frames.shape[1:])
        points = self.landmarks[rows]  # (n, 3, 68, 2)
        if self.flip:
            flipped = self.rng.random(n) < 0.5
            frames[flipped] = frames[flipped][:, :, :, ::-1]
            points[flipped] = flip_points(points[flipped], frames.shape[3])
        images = uint8_to_model(np.ascontiguousarray(frames))  # (n, 3 frames, 3, S, S)
        return [images[:, k] for k in range(3)], [points[:, k] for k in range(3)]

    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]


class PerceptualFeatures(nn.Module):
    """Frozen activations of every block of an autoencoder's encoder (our stand-in for VGG-19)."""

    def __init__(self, autoencoder: nn.Module):
        super().__init__()
        self.blocks = nn.ModuleList(list(autoencoder.encoder.children()))
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True):  # noqa: D102 - frozen: BatchNorm keeps its running statistics
        return super().train(False)

    def forward(self, frames: torch.Tensor) -> list[torch.Tensor]:
        out, x = [], frames
        for block in self.blocks:
            x = block(x)
            out.append(x)
        return out

    def loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """Feature reconstruction (L1 per block) + style (Frobenius norm of the Gram difference, middle block)."""
        real_maps, fake_maps = self(real), self(fake)
        features = sum(F.l1_loss(f, r) for r, f in zip(real_maps, fake_maps))
        middle = len(real_maps) // 2
        return features + torch.linalg.norm(_gram(real_maps[middle]) - _gram(fake_maps[middle]), dim=(1, 2)).mean()


def _gram(maps: torch.Tensor) -> torch.Tensor:
    flat = maps.flatten(2)
    return flat @ flat.transpose(1, 2) / flat.shape[-1] / flat.shape[1]


# the loss groups: all, or seed 002's ablations, one group dropped
REENACT_LOSSES = ("all", "no-pixel", "no-consistency", "no-feature")


@dataclass
class ReenactOptions(SourceFrameOptions, NetworkOptions, EncoderOptions):
    """The reenactment's options: its loss groups, its output and its source frame, besides the identity loss's
    encoder and the networks."""

    reenact_losses: str = option("all", "all loss groups | no-pixel | no-consistency (self + triple) | no-feature "
                                        "(perceptual + identity): seed 002's ablations", REENACT_LOSSES)
    reenact_output: str = option("image", "image (pix2pix's U-Net draws the frame: the paper) | warp (it moves the "
                                          "source frame by a drawn flow and blends drawn colour by a drawn mask: our "
                                          "option)", OUTPUTS)

    def check(self) -> None:
        super().check()
        check_positive("steps", self.steps)
        if self.reenact_losses != "no-feature" and self.encoder == "none":
            raise ConfigError("system='reenact' takes its identity loss's encoder from encoder: choose 'ae' or "
                              "'facenet' (or reenact_losses='no-feature', the ablation without the feature losses)")

    def needs_autoencoder(self) -> bool:  # the perceptual loss reads the autoencoder's encoder
        return self.encoder == "ae" or self.reenact_losses != "no-feature"

    def describe(self) -> str:
        output = "" if self.reenact_output == "image" else f"-{self.reenact_output}"
        return f"reenact-{self.encoder}-{self.reenact_losses}{output}-{self.composition}"


class Reenactor:
    """The networks of one run and ``generate(input_videos, labels, seed)`` for samples, probes and 05."""

    def __init__(self, cfg: ReenactOptions, device: torch.device | str = "cpu", displacements: np.ndarray | None = None,
                 neutral_shape: np.ndarray | None = None):
        self.config, self.device, self.snapshot = cfg, torch.device(device), "latest"
        self.terms = loss_terms(cfg.reenact_losses)
        self.generator = UNetGenerator(cfg.width, output=cfg.reenact_output).to(self.device)
        self.discriminator = PatchDiscriminator().to(self.device)
        for net in (self.generator, self.discriminator):
            net.apply(init_dcgan_weights)
        self.identity = self.perceptual = None
        if "identity" in self.terms:
            self.identity = build_content_encoder(cfg.encoder, finetune=False,
                                                  autoencoder_checkpoint=cfg.autoencoder_checkpoint,
                                                  facenet_weights=cfg.facenet_weights_path,
                                                  facenet_input_size=cfg.facenet_input_size, device=self.device)
        if "perceptual" in self.terms:
            self.perceptual = PerceptualFeatures(load_autoencoder_network(cfg.autoencoder_checkpoint, self.device))
        self.displacements = displacements  # (n_emotions, T, 68, 2), set by fit or the checkpoint
        self.neutral_shape = neutral_shape  # (68, 2) aligned: the training takes' mean first frame
        self._predictor = None

    def heatmaps(self, points: np.ndarray, size: int) -> torch.Tensor:
        return landmark_heatmaps(torch.as_tensor(points, dtype=torch.float32, device=self.device), size)

    def source(self, videos: torch.Tensor) -> tuple[torch.Tensor, np.ndarray]:
        """(B, 3, T, H, W) input clips -> (the frames drawn from (B, 3, H, W), their dlib points (B, 68, 2)): each
        clip's first frame, or with ``source_frame="neutral"`` its frame whose aligned landmark shape is closest to
        the training takes' mean first-frame shape."""
        neutral = self.config.source_frame == "neutral"
        if self._predictor is None:
            self._predictor = LandmarkPredictor()
        clips = videos if neutral else videos[:, :, :1]
        points = np.stack([self._predictor.clip_in_frame_pixels(to_uint8_frames(clip.cpu()))[0] for clip in clips])
        picks = np.zeros(len(videos), np.int64)
        if neutral:
            shapes = torch.from_numpy(aligned(points.reshape(-1, *points.shape[2:])).reshape(points.shape))
            picks = closest_frames(shapes, torch.as_tensor(self.neutral_shape)).numpy()
        rows = np.arange(len(videos))
        return videos[rows, :, picks].to(self.device, torch.float32), points[rows, picks]

    @torch.no_grad()
    def generate(self, input_videos: torch.Tensor, labels, seed: int = 0) -> torch.Tensor:
        """(B, 3, T, H, W) real frames in [-1, 1] + target labels -> (B, 3, T', H, W); deterministic (no noise)."""
        videos = check_input_videos(input_videos)
        labels = np.asarray(torch.as_tensor(np.asarray(labels)).long())
        first, start_points = self.source(videos)
        points = displaced_landmarks(start_points, self.displacements[labels], first.shape[-1])
        batch, length = points.shape[:2]
        sources = first[:, None].expand(-1, length, -1, -1, -1).reshape(batch * length, *first.shape[1:])
        was_training = self.generator.training
        self.generator.eval()
        try:
            heatmaps = self.heatmaps(points.reshape(batch * length, *points.shape[2:]), first.shape[-1])
            frames = self.generator(sources, heatmaps)
        finally:
            self.generator.train(was_training)
        return frames.reshape(batch, length, *frames.shape[1:]).transpose(1, 2)


def train_step(model: Reenactor, optimizers: dict, sampler: TripletSampler, batch: int) -> dict[str, float]:
    (source, between, target), points = sampler.draw(batch)
    source, between, target = (x.to(model.device) for x in (source, between, target))
    heat_source, heat_between, heat_target = (model.heatmaps(p, source.shape[-1]) for p in points)
    G, D = model.generator, model.discriminator
    fake = G(source, heat_target)

    d_loss = bce_real(D(target, heat_target)) + bce_fake(D(fake.detach(), heat_target))
    optimizers["discriminator"].zero_grad(set_to_none=True)
    d_loss.backward()
    optimizers["discriminator"].step()

    raw = {"adv": bce_real(D(fake, heat_target))}
    if "pixel" in model.terms:
        raw["pixel"] = F.mse_loss(fake, target)
    if "self" in model.terms:
        raw["self"] = F.mse_loss(G(fake, heat_source), source)
        raw["triple"] = F.mse_loss(G(G(source, heat_between), heat_target), fake)
    if "perceptual" in model.terms:
        raw["perceptual"] = model.perceptual.loss(target, fake)
        raw["identity"] = F.l1_loss(model.identity(fake), model.identity(target))
    terms = {f"g_{name}": LOSS_WEIGHTS.get(name, 1.0) * value for name, value in raw.items()}
    g_loss = sum(terms.values())
    optimizers["generator"].zero_grad(set_to_none=True)
    g_loss.backward()
    optimizers["generator"].step()
    return {"d_patch": d_loss.item(), **{k: v.item() for k, v in terms.items()}, "g_total": g_loss.item(),
            "pixel_mse": F.mse_loss(fake.detach(), target).item()}


def emotion_motion(cache: Any, video_ids, landmarks: np.ndarray, train_subjects, video_length: int,
                   every_nth: int) -> tuple[np.ndarray, np.ndarray]:
    """From the training subjects' takes among ``video_ids``, on the clip rule's frames from each take's first
    frame (neutral -> onset -> apex): each emotion's mean landmark motion (n_emotions, T, 68, 2), and the mean
    aligned shape of their first frames (68, 2), the reference of ``source_frame="neutral"``."""
    rows = cache.index.set_index("video_id").loc[list(video_ids)]
    rows = rows[rows["subject"].astype(str).isin({str(s) for s in train_subjects})]
    if rows.empty:
        raise ValueError("no training subject's takes to learn the emotions' landmark motion from")
    clips = np.stack([landmarks[int(r.start) + sample_clip_indices(int(r.length), video_length, every_nth,
                                                                   np.random.default_rng(0), start="first")]
                      for r in rows.itertuples()])
    return (emotion_displacements(clips, rows["label"].to_numpy(), len(EMOTIONS)),
            aligned(clips[:, 0]).mean(0).astype(np.float32))


def fit_reenact(cfg: ReenactOptions, run_dir: str | Path, cache: Any | None = None, progress: bool = True,
                probe: Callable[[Reenactor], dict[str, float]] | None = None) -> dict[str, Any]:
    """Train (or resume, or report the finished) reenactment run of a config with ``system="reenact"``."""
    with training_run(cfg, run_dir, "reenact", cache) as run:
        cfg = run.cfg
        landmarks = cache_landmarks(run.cache, cfg.cache_dir, progress=progress, video_ids=run.train_ids)
        displacements, neutral_shape = emotion_motion(run.cache, run.train_ids, landmarks,
                                                      run.cache.split.train_subjects, cfg.video_length, cfg.every_nth)
        seed_everything(cfg.seed)
        model = Reenactor(cfg, resolve_device(cfg.device), displacements, neutral_shape)
        betas = (cfg.beta1, cfg.beta2)
        optimizers = {"generator": torch.optim.Adam(model.generator.parameters(), cfg.learning_rate, betas),
                      "discriminator": torch.optim.Adam(model.discriminator.parameters(),
                                                        cfg.learning_rate * D_LR_RATIO, betas)}
        sampler = TripletSampler(run.cache, run.train_ids, landmarks, seed=cfg.seed)
        trainee = Trainee(model, {"generator": model.generator, "discriminator": model.discriminator}, optimizers,
                          sampler, lambda step: train_step(model, optimizers, sampler, cfg.image_batch),
                          f"reenact {cfg.reenact_losses}", {"displacements": torch.from_numpy(displacements),
                                                             "neutral_shape": torch.from_numpy(neutral_shape)})
        return run_training(run, trainee, progress, probe)


def load_reenact(run_dir: str | Path, device: str | torch.device = "cpu", snapshot: str = "best") -> Reenactor:
    """The generator of a reenactment run folder: ``best.pt`` when there is one and ``snapshot="best"``."""
    state, used = load_snapshot(run_dir, snapshot, "reenact")
    cfg = config_from_dict(state["config"])
    extra = state["extra"]
    model = Reenactor(dataclasses.replace(cfg, reenact_losses="no-feature"), device,  # no loss networks: generation
                      extra["displacements"].numpy(),
                      extra["neutral_shape"].numpy())
    model.config = cfg
    model.generator.load_state_dict(state["generator"])
    model.generator.eval()
    model.snapshot = used
    return model
