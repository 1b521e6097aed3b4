"""Image-quality metrics: SSIM against scikit-image, MSE and PSNR against their formulas."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data, transform
from skimage.metrics import structural_similarity

from lib.evaluation.metrics import image_quality, mse, psnr, ssim


def _astronaut(size: int = 64) -> np.ndarray:
    return transform.resize(data.astronaut(), (size, size), anti_aliasing=True)  # float64 in [0, 1]


def _variants(image: np.ndarray) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    noisy = [np.clip(image + rng.normal(0, s, image.shape), 0, 1) for s in (0.01, 0.05, 0.2)]
    shifted = np.clip(image * 0.8 + 0.1, 0, 1)
    blurred = transform.resize(transform.resize(image, (32, 32), anti_aliasing=True), image.shape[:2])
    return noisy + [shifted, blurred, image.copy()]


def _chw(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))


def _skimage_ssim(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    return structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                 data_range=data_range, channel_axis=-1)


@pytest.mark.parametrize("size", [64, 96])
def test_ssim_matches_skimage_on_unit_range(size):
    image = _astronaut(size)
    others = _variants(image)
    expected = [_skimage_ssim(image, other, 1.0) for other in others]
    batch_real = torch.stack([_chw(image)] * len(others))
    batch_other = torch.stack([_chw(o) for o in others])
    got = ssim(batch_real, batch_other, data_range=1.0, reduction="none")
    assert got.shape == (len(others),)
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-3)
    assert got[-1].item() == pytest.approx(1.0, abs=1e-9)  # identical images
    # noisier -> lower
    assert got[0] > got[1] > got[2]


def test_ssim_matches_skimage_in_other_ranges_and_float32():
    image = _astronaut()
    other = _variants(image)[1]
    for scale, offset, data_range in [(2.0, -1.0, 2.0), (255.0, 0.0, 255.0)]:
        a, b = image * scale + offset, other * scale + offset
        expected = _skimage_ssim(a, b, data_range)
        got = ssim(_chw(a).float(), _chw(b).float(), data_range=data_range).item()
        assert got == pytest.approx(expected, abs=1e-3)


def test_ssim_is_differentiable_and_symmetric():
    image = _chw(_astronaut()).unsqueeze(0)
    noisy = (image + 0.1 * torch.randn_like(image)).clamp(0, 1).requires_grad_(True)
    score = ssim(image, noisy)
    score.backward()
    assert noisy.grad is not None and torch.isfinite(noisy.grad).all() and noisy.grad.abs().sum() > 0
    assert ssim(noisy.detach(), image).item() == pytest.approx(score.item(), abs=1e-12)


def test_mse_and_psnr_by_formula():
    rng = np.random.default_rng(1)
    a = torch.from_numpy(rng.random((3, 3, 16, 16)))
    b = torch.from_numpy(rng.random((3, 3, 16, 16)))
    per_image = ((a - b) ** 2).reshape(3, -1).mean(axis=1)
    torch.testing.assert_close(mse(a, b, reduction="none"), per_image)
    torch.testing.assert_close(mse(a, b), per_image.mean())
    torch.testing.assert_close(psnr(a, b, data_range=1.0, reduction="none"), 10 * torch.log10(1.0 / per_image))
    torch.testing.assert_close(psnr(a * 255, b * 255, data_range=255.0, reduction="none"),
                               10 * torch.log10(1.0 / per_image))
    assert torch.isinf(psnr(a, a)).item()


def test_image_quality_reports_on_unit_scale():
    image = _astronaut()
    other = _variants(image)[1]
    real = _chw(image * 2 - 1).unsqueeze(0)
    fake = _chw(other * 2 - 1).unsqueeze(0)
    scores = image_quality(real, fake)
    assert scores["ssim"].item() == pytest.approx(_skimage_ssim(image, other, 1.0), abs=1e-3)
    assert scores["mse"].item() == pytest.approx(((image - other) ** 2).mean(), rel=1e-9)
    # out-of-range generated values are clipped as a saved image would be
    clipped = image_quality(real, fake * 3)
    assert clipped["mse"].item() == pytest.approx(image_quality(real, (fake * 3).clamp(-1, 1))["mse"].item())


def test_bad_inputs_fail_clearly():
    with pytest.raises(ValueError, match="differ in shape"):
        ssim(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 17))
    with pytest.raises(ValueError, match="smaller than"):
        ssim(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="valid choices"):
        mse(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4), reduction="sum")
