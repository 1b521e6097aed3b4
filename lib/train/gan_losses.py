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

GENERATOR_TERMS = ("image_adv", "video_adv", "category", "consistency", "reconstruction", "drawn")


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
