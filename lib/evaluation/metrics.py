"""Image-quality metrics: SSIM (Wang et al. 2004; by pytorch-msssim), MSE and PSNR, batched in torch.

All functions take image batches ``(B, C, H, W)`` (a single ``(C, H, W)`` image is
accepted too) and are differentiable, so they can serve as losses as well as scores.

SSIM is the single-scale index with an 11x11 Gaussian window (sigma 1.5), K1=0.01,
K2=0.03 and population (not sample) covariances; the SSIM map is averaged over the
positions where the whole window fits inside the image (a "valid" convolution), then
over colour channels.  This is exactly what
``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=R, channel_axis=-1)`` computes: skimage
filters the whole image but crops the window radius from every border before
averaging, which leaves the same positions; pytorch-msssim computes the same index.

SSIM is not invariant to shifting the value range (the luminance term compares
means), so scores are comparable only on one scale.  The thesis reports MSE and
SSIM on images in [0, 1]; :func:`image_quality` converts the models' [-1, 1] images
to that scale first.
"""
from __future__ import annotations

import torch

REDUCTIONS = ("mean", "none")


def _as_batch(images: torch.Tensor) -> torch.Tensor:
    if images.dim() == 3:
        return images.unsqueeze(0)
    if images.dim() != 4:
        raise ValueError(f"expected images shaped (B, C, H, W) or (C, H, W), got {tuple(images.shape)}")
    return images


def _check_pair(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = _as_batch(torch.as_tensor(x)), _as_batch(torch.as_tensor(y))
    if x.shape != y.shape:
        raise ValueError(f"image batches differ in shape: {tuple(x.shape)} vs {tuple(y.shape)}")
    if not x.is_floating_point():
        x = x.double()
    return x, y.to(x.dtype)


def _reduce(per_image: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction not in REDUCTIONS:
        raise ValueError(f"invalid reduction={reduction!r}; valid choices: {', '.join(map(repr, REDUCTIONS))}")
    return per_image.mean() if reduction == "mean" else per_image


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, reduction: str = "mean",
         window_size: int = 11, sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """Mean SSIM per image (averaged over positions, then channels); ``reduction="none"`` gives ``(B,)``.

    ``data_range`` is the span of possible values (1 for [0, 1] images, 2 for [-1, 1],
    255 for uint8).  Computed by pytorch-msssim (equal to scikit-image's to 1e-7, tests/test_metrics.py).
    """
    from pytorch_msssim import ssim as library_ssim

    x, y = _check_pair(x, y)
    if min(x.shape[-2:]) < window_size:
        raise ValueError(f"images {tuple(x.shape[-2:])} are smaller than the {window_size}x{window_size} SSIM window")
    if data_range <= 0:
        raise ValueError(f"data_range must be > 0, got {data_range}")
    if window_size % 2 != 1:
        raise ValueError(f"window_size must be a positive odd number, got {window_size}")
    per_image = library_ssim(x, y, data_range=data_range, size_average=False, win_size=window_size,
                             win_sigma=sigma, K=(k1, k2), nonnegative_ssim=False)
    return _reduce(per_image, reduction)


def mse(x: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Mean squared error per image over all channels and pixels."""
    x, y = _check_pair(x, y)
    return _reduce(((x - y) ** 2).mean(dim=(1, 2, 3)), reduction)


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, reduction: str = "mean") -> torch.Tensor:
    """Peak signal-to-noise ratio ``10 log10(R^2 / MSE)`` in dB per image (inf for identical images)."""
    per_image_mse = mse(x, y, reduction="none")
    per_image = 10.0 * torch.log10(data_range ** 2 / per_image_mse)
    return _reduce(per_image, reduction)


def to_unit_range(images: torch.Tensor, value_range: tuple[float, float] = (-1.0, 1.0)) -> torch.Tensor:
    """Map images from ``value_range`` linearly onto [0, 1] (uint8 input: divide by 255)."""
    images = torch.as_tensor(images)
    if images.dtype == torch.uint8:
        return images.double() / 255.0
    low, high = value_range
    return (images - low) / (high - low)


def image_quality(real: torch.Tensor, fake: torch.Tensor, value_range: tuple[float, float] = (-1.0, 1.0),
                  reduction: str = "mean") -> dict[str, torch.Tensor]:
    """MSE, SSIM and PSNR of ``fake`` against ``real`` on the [0, 1] scale (the thesis's convention).

    Generated images are clipped to ``value_range`` first, as a saved image would be.
    """
    low, high = value_range
    real01 = to_unit_range(real, value_range)
    fake = torch.as_tensor(fake)
    fake01 = to_unit_range(fake if fake.dtype == torch.uint8 else fake.clamp(low, high), value_range)
    return {
        "mse": mse(real01, fake01, reduction),
        "ssim": ssim(real01, fake01, data_range=1.0, reduction=reduction),
        "psnr": psnr(real01, fake01, data_range=1.0, reduction=reduction),
    }


__all__ = ["ssim", "mse", "psnr", "to_unit_range", "image_quality"]
