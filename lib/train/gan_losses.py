"""VICE-GAN loss terms and the loss composition (each term's share of the generator loss).

Adversarial terms are BCE-with-logits (MoCoGAN); the category term is cross-entropy on
D_V's category logits; the content-consistency term compares encoder codes of the real
input frames with codes of the generated frames (MSE or cosine distance) times a scale
(Oostveen 3.3).  Loss weights scale the generator's terms; a weight of 0 drops the
term and, for the adversarial ones, skips training that discriminator's real/fake part.
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

GENERATOR_TERMS = ("image_adv", "video_adv", "category", "consistency", "reconstruction", "feature_matching", "landmark_flow",
                   "drawn")


def bce_real(logits: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))


def bce_fake(logits: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits))


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, kind: str = "bce") -> torch.Tensor:
    """``bce``: MoCoGAN's BCE (real -> 1, fake -> 0); ``hinge``: mean relu(1 - real) + mean relu(1 + fake)."""
    if kind == "bce":
        return bce_real(real_logits) + bce_fake(fake_logits)
    if kind == "hinge":
        return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()
    raise ValueError(f"unknown adversarial loss {kind!r}; valid: 'bce', 'hinge'")


def generator_adv_loss(fake_logits: torch.Tensor, kind: str = "bce") -> torch.Tensor:
    """``bce``: non-saturating BCE towards "real"; ``hinge``: -mean(fake logits)."""
    if kind == "bce":
        return bce_real(fake_logits)
    if kind == "hinge":
        return -fake_logits.mean()
    raise ValueError(f"unknown adversarial loss {kind!r}; valid: 'bce', 'hinge'")


def r1_penalty(real_logits: torch.Tensor, real_inputs: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): mean over samples of the squared gradient norm of D at real inputs."""
    (gradient,) = torch.autograd.grad(real_logits.sum(), real_inputs, create_graph=True)
    return gradient.pow(2).flatten(1).sum(1).mean()


def consistency_distance(real_codes: torch.Tensor, fake_codes: torch.Tensor, kind: str) -> torch.Tensor:
    """Mean over codes of MSE (per element) or cosine distance (1 - cos) between code pairs."""
    if kind == "mse":
        return F.mse_loss(fake_codes, real_codes)
    if kind == "cosine":
        return (1.0 - F.cosine_similarity(fake_codes, real_codes, dim=-1)).mean()
    raise ValueError(f"unknown consistency loss {kind!r}; valid: 'mse', 'cosine'")


def loss_shares(weighted_terms: dict[str, float]) -> dict[str, float]:
    """Each term's share of the total generator loss (Oostveen Table 1), plus the adversarial sum."""
    magnitudes = {k: abs(v) for k, v in weighted_terms.items()}
    total = sum(magnitudes.values())
    shares = {f"share_{k}": (v / total if total > 0 else 0.0) for k, v in magnitudes.items()}
    shares["share_adversarial"] = shares.get("share_image_adv", 0.0) + shares.get("share_video_adv", 0.0)
    return shares


PYRAMID_POOLS = (2, 4, 8)  # 32, 16 and 8 px views of a 64 px frame


def pyramid_error(fake: torch.Tensor, real: torch.Tensor, pools: tuple[int, ...] = PYRAMID_POOLS) -> torch.Tensor:
    """(B,) mean squared error between videos (B, 3, T, H, W) seen at coarser scales, each frame's per-channel mean
    removed.

    A take's frames differ from its first by sensor noise and a lighting flicker over the whole frame (on the
    synthetic benchmark about two thirds of a pixel L1), neither of which the input frame can predict; the
    expression (mouth, brows, eyes) is a few pixels wide.  Averaged over 2x2..8x8 cells the noise shrinks and the
    expression stays; without the frame mean the flicker goes.  Squared, not absolute: takes differ in timing and
    intensity, and L1's optimum, the per-pixel median, is "no change" wherever fewer than half of them move."""
    batch, channels, length = fake.shape[:3]
    flat = lambda v: v.transpose(1, 2).reshape(batch * length, channels, *v.shape[-2:])  # noqa: E731
    fake, real = flat(fake), flat(real)
    fake = fake - fake.mean(dim=(2, 3), keepdim=True)
    real = real - real.mean(dim=(2, 3), keepdim=True)
    errors = [(F.avg_pool2d(fake, k) - F.avg_pool2d(real, k)).square().mean(dim=(1, 2, 3)) for k in pools]
    return torch.stack(errors).mean(0).reshape(batch, length).mean(1)
