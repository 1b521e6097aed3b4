"""FEV-GAN (seed 003) training: ``system="fevgan"`` in 03.  Networks in :mod:`lib.models.fevgan`.

One iteration: a batch of training takes (clips from their first frame, neutral -> apex); the input is
each take's first frame, the target another take of the same subject in another emotion
(:meth:`ClipSampler.partner_clips`, training subjects of the composition only).  The generator draws
the target emotion's 16 frames at once from the input frame; the conditional video discriminator sees
the real target clips and the generated ones with the target labels.  Losses (paper Eq. 1-5):

- adversarial: binary cross-entropy (the paper's), generator and discriminator;
- reconstruction: L1 between the generated and the target clip, weighted by :data:`L1_WEIGHT` (pix2pix's
  100; the paper's weight is not given); takes whose subject has no other emotion in training are left out;
- identity: the distance of the frozen identity encoder's code of ``consistency_frames`` evenly spaced
  generated frames (4 at ``small``, as the paper) to the input frame's code (``consistency_loss``,
  weighted by ``consistency_scale``: the same defaults as VICE-GAN's content-consistency term).

Options (:class:`FEVGANOptions`): ``encoder`` (the identity encoder: ``ae`` or ``facenet``, frozen),
``fevgan_encoders`` (``both`` | ``spatial`` = without the identity encoder | ``identity`` = without
the spatial encoder: the paper's ablations), the consistency loss of the identity term, the networks' sizes and
``learning_rate`` / ``beta1`` / ``beta2``, and the options every run shares.  Resumable like every system
(:mod:`lib.train.loop`); ``best.pt`` keeps the best probe's generator.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from lib.data.clips import check_input_videos
from lib.models.encoders import build_content_encoder
from lib.models.fevgan import FEVDiscriminator, FEVGenerator
from lib.models.mocogan import init_dcgan_weights
from lib.config import ConfigError, check_positive
from lib.train.options import ConsistencyOptions, EncoderOptions, NetworkOptions, config_from_dict, option
from lib.train.gan_data import ClipSampler
from lib.train.gan_losses import bce_fake, bce_real, consistency_distance
from lib.train.loop import Trainee, load_snapshot, run_training, training_run
from lib.utils import resolve_device, seed_everything

L1_WEIGHT = 100.0
FEVGAN_ENCODERS = ("both", "spatial", "identity")


@dataclass
class FEVGANOptions(NetworkOptions, ConsistencyOptions, EncoderOptions):
    """FEV-GAN's options: its encoders (the paper's ablations) besides the identity encoder and the networks."""

    fevgan_encoders: str = option("both", "both encoders | spatial (without the identity encoder) | identity "
                                          "(without the spatial encoder): the paper's ablations", FEVGAN_ENCODERS)

    def check(self) -> None:
        super().check()
        check_positive("steps", self.steps)
        if self.fevgan_encoders != "spatial" and self.encoder == "none":
            raise ConfigError("system='fevgan' takes its identity encoder from encoder: choose 'ae' or 'facenet' "
                              "(or fevgan_encoders='spatial', the ablation without it)")

    def describe(self) -> str:
        return f"fevgan-{self.encoder}-{self.fevgan_encoders}-{self.composition}"


class FEVGAN:
    """The networks of one run and ``generate(input_videos, labels, seed)`` for samples, probes and 05."""

    def __init__(self, cfg: FEVGANOptions, device: torch.device | str = "cpu"):
        self.config, self.device, self.snapshot = cfg, torch.device(device), "latest"
        uses_identity = cfg.fevgan_encoders in ("both", "identity")
        self.encoder = None
        if uses_identity:
            self.encoder = build_content_encoder(cfg.encoder, finetune=False,
                                                 autoencoder_checkpoint=cfg.autoencoder_checkpoint,
                                                 facenet_weights=cfg.facenet_weights_path,
                                                 facenet_input_size=cfg.facenet_input_size, device=self.device)
        identity_dim = self.encoder.code_dim if self.encoder is not None else 0
        self.generator = FEVGenerator(identity_dim, cfg.image_size, cfg.width, cfg.video_length,
                                      use_spatial=cfg.fevgan_encoders in ("both", "spatial"),
                                      use_identity=uses_identity).to(self.device)
        self.discriminator = FEVDiscriminator(cfg.image_size, cfg.width, cfg.video_length).to(self.device)
        for net in (self.generator, self.discriminator):
            net.apply(init_dcgan_weights)

    def identity(self, frames: torch.Tensor) -> torch.Tensor | None:
        if self.encoder is None:
            return None
        with torch.no_grad():
            return self.encoder(frames)

    @torch.no_grad()
    def generate(self, input_videos: torch.Tensor, labels, seed: int = 0) -> torch.Tensor:
        """(B, 3, T, H, W) real frames in [-1, 1] + target labels -> (B, 3, video_length, H, W); deterministic."""
        videos = check_input_videos(input_videos)
        frames = videos[:, :, 0].to(self.device, torch.float32)
        labels = torch.as_tensor(np.asarray(labels), dtype=torch.long, device=self.device)
        was_training = self.generator.training
        self.generator.eval()
        try:
            return self.generator(frames, self.identity(frames), labels)
        finally:
            self.generator.train(was_training)


def train_step(model: FEVGAN, optimizers: dict, sampler: ClipSampler, cfg: FEVGANOptions, device: torch.device) -> dict:
    videos, _, positions = sampler.clips(cfg.video_batch)
    targets, target_labels, paired = sampler.partner_clips(positions)
    videos, targets, target_labels = videos.to(device), targets.to(device), target_labels.to(device)
    inputs = videos[:, :, 0]
    identity = model.identity(inputs)
    fake = model.generator(inputs, identity, target_labels)

    d_loss = bce_real(model.discriminator(targets, target_labels)) + \
        bce_fake(model.discriminator(fake.detach(), target_labels))
    optimizers["discriminator"].zero_grad(set_to_none=True)
    d_loss.backward()
    optimizers["discriminator"].step()

    adversarial = bce_real(model.discriminator(fake, target_labels))
    mask = torch.as_tensor(paired, device=device).float()
    per_video = (fake - targets).abs().mean(dim=(1, 2, 3, 4))
    reconstruction = (per_video * mask).sum() / mask.sum().clamp(min=1)
    terms = {"g_adv": adversarial, "g_reconstruction": L1_WEIGHT * reconstruction}
    if identity is not None and cfg.consistency_scale:
        picks = torch.linspace(0, fake.shape[2] - 1, cfg.consistency_frames).round().long()
        frames = fake[:, :, picks].transpose(1, 2).reshape(-1, *fake.shape[1:2], *fake.shape[-2:])
        codes = model.encoder(frames).reshape(fake.shape[0], len(picks), -1)
        distance = consistency_distance(identity[:, None].expand_as(codes), codes, cfg.consistency_loss)
        terms["g_identity"] = cfg.consistency_scale * distance
    g_loss = sum(terms.values())
    optimizers["generator"].zero_grad(set_to_none=True)
    g_loss.backward()
    optimizers["generator"].step()
    return {"d_video": d_loss.item(), **{k: v.item() for k, v in terms.items()}, "g_total": g_loss.item(),
            "l1": reconstruction.item(), "paired": mask.mean().item()}


def fit_fevgan(cfg: FEVGANOptions, run_dir: str | Path, cache: Any | None = None, progress: bool = True,
               probe: Callable[[FEVGAN], dict[str, float]] | None = None) -> dict[str, Any]:
    """Train (or resume, or report the finished) FEV-GAN run of a config with ``system="fevgan"``."""
    with training_run(cfg, run_dir, "fevgan", cache) as run:
        cfg, device = run.cfg, resolve_device(run.cfg.device)
        seed_everything(cfg.seed)
        model = FEVGAN(cfg, device)
        optimizers = {"generator": torch.optim.Adam(model.generator.parameters(), cfg.learning_rate, (cfg.beta1, cfg.beta2)),
                      "discriminator": torch.optim.Adam(model.discriminator.parameters(), cfg.learning_rate,
                                                        (cfg.beta1, cfg.beta2))}
        sampler = ClipSampler(run.cache, run.train_ids, cfg.video_length, cfg.every_nth, seed=cfg.seed,
                              clip_start="first")
        trainee = Trainee(model, {"generator": model.generator, "discriminator": model.discriminator}, optimizers,
                          sampler, lambda step: train_step(model, optimizers, sampler, cfg, device),
                          f"FEV-GAN {cfg.fevgan_encoders}")
        return run_training(run, trainee, progress, probe)


def load_fevgan(run_dir: str | Path, device: str | torch.device = "cpu", snapshot: str = "best") -> FEVGAN:
    """The generator of a FEV-GAN run folder: ``best.pt`` when there is one and ``snapshot="best"``."""
    state, used = load_snapshot(run_dir, snapshot, "FEV-GAN")
    model = FEVGAN(config_from_dict(state["config"]), device)
    model.generator.load_state_dict(state["generator"])
    model.generator.eval()
    model.snapshot = used
    return model
