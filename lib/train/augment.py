"""Differentiable augmentation of discriminator inputs (DiffAugment, Zhao et al. 2020).

The same policy of random transforms is applied to real and generated inputs of a discriminator, and
gradients flow through it to the generator, so the discriminator cannot memorise the few
training videos.  A video gets one transform for all its frames (motion is left intact).
Policies are named; ``""`` = off.  All randomness comes from the ``generator`` passed in,
so a run stays deterministic and resumable.
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

from lib.config import ConfigError


def _uniform(shape, generator: torch.Generator, device) -> torch.Tensor:
    return torch.rand(shape, generator=generator, device=device)


def _color(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Brightness +-0.5, saturation x[0, 2], contrast x[0.5, 1.5] (on [-1, 1] images)."""
    shape = (x.shape[0],) + (1,) * (x.dim() - 1)
    x = x + (_uniform(shape, g, x.device) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_uniform(shape, g, x.device) * 2) + mean
    dims = tuple(range(1, x.dim()))
    mean = x.mean(dim=dims, keepdim=True)
    return (x - mean) * (_uniform(shape, g, x.device) + 0.5) + mean


def _translation(x: torch.Tensor, g: torch.Generator, ratio: float = 0.125) -> torch.Tensor:
    """Shift by up to ``ratio`` of the size with zero padding (per sample; frames of a video move together)."""
    batch, size = x.shape[0], x.shape[-1]
    limit = int(size * ratio + 0.5)
    shifts = (torch.randint(-limit, limit + 1, (batch, 2), generator=g, device=x.device)).tolist()
    padded = F.pad(x, (limit, limit, limit, limit))
    out = [padded[i, ..., limit + dy:limit + dy + size, limit + dx:limit + dx + size] for i, (dy, dx) in enumerate(shifts)]
    return torch.stack(out)


def _cutout(x: torch.Tensor, g: torch.Generator, ratio: float = 0.5) -> torch.Tensor:
    """Zero a square of ``ratio`` of the size at a random place (same place in every frame)."""
    batch, size = x.shape[0], x.shape[-1]
    cut = int(size * ratio + 0.5)
    corners = torch.randint(0, size - cut + 1, (batch, 2), generator=g, device=x.device)
    rows = torch.arange(size, device=x.device)
    inside_y = (rows[None] >= corners[:, :1]) & (rows[None] < corners[:, :1] + cut)
    inside_x = (rows[None] >= corners[:, 1:]) & (rows[None] < corners[:, 1:] + cut)
    keep = ~(inside_y[:, :, None] & inside_x[:, None, :])
    shape = (batch,) + (1,) * (x.dim() - 3) + (size, size)
    return x * keep.reshape(shape).to(x.dtype)


def _flip(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Mirror left-right half of the samples (every frame of a video alike): a face's mirror image shows
    the same expression."""
    shape = (x.shape[0],) + (1,) * (x.dim() - 1)
    mirrored = _uniform(shape, g, x.device) < 0.5
    return torch.where(mirrored, x.flip(-1), x)


AUGMENTATIONS = {"color": _color, "translation": _translation, "cutout": _cutout, "flip": _flip}


def parse_policy(policy: str | None) -> tuple[str, ...]:
    """``"color,translation"`` -> ("color", "translation"); unknown names fail listing the valid ones."""
    names = tuple(p.strip() for p in (policy or "").split(",") if p.strip())
    unknown = [n for n in names if n not in AUGMENTATIONS]
    if unknown:
        raise ConfigError(f"invalid diffaugment={policy!r}: unknown {unknown}; valid: a comma list of "
                          f"{', '.join(repr(n) for n in AUGMENTATIONS)} or '' (off)")
    return names


def diff_augment(x: torch.Tensor, policy: tuple[str, ...], generator: torch.Generator) -> torch.Tensor:
    """Augment images (B, 3, H, W) or videos (B, 3, T, H, W) with the named transforms, in order."""
    for name in policy:
        x = AUGMENTATIONS[name](x, generator)
    return x
