"""FEV-GAN networks (seed 003): a one-step spatio-temporal generator and a video discriminator.

Generator: a frozen identity encoder (one of our content encoders, given to :meth:`FEVGenerator.forward` as
its code) and a trainable spatial encoder of the input frame (four stride-2 convolutions: 64 -> 4 px);
the identity code is tiled over the 4x4 grid, concatenated with the spatial features and the tiled one-hot
emotion, and decoded by fractionally strided 3D convolutions (each doubling time and space: 1 x 4 x 4 ->
16 x 64 x 64) into all frames at once, BatchNorm + ReLU between layers and a Tanh output, as the paper.
Discriminator: five 3D convolutions with the one-hot emotion tiled as input channels (conditional, BCE),
LeakyReLU and BatchNorm except at the input, the last one reading the whole 1 x 4 x 4 remainder.

Where the paper is silent or differs, and our choice: the identity encoder is VGG-Face's convolutional
part (1024 maps of 4x4) in the paper, ours gives a vector (02's autoencoder: 50-d; FaceNet: 512-d),
tiled; channel counts are the paper's 512/256/128/64 times ``width``.  ``use_spatial`` / ``use_identity``
drop one encoder (the paper's two ablations).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from lib.constants import VIDEO_LENGTH
from lib.models.mocogan import N_CATEGORIES

FEATURE_SIZE = 4  # the encoders' output grid and the decoder's first spatial size


def _channels(width: float, base: int) -> int:
    return max(8, int(round(base * width)))


class SpatialEncoder(nn.Module):
    """(B, 3, S, S) -> (B, C, 4, 4): stride-2 convolutions, BatchNorm + LeakyReLU."""

    def __init__(self, image_size: int = 64, width: float = 1.0):
        super().__init__()
        levels = int(math.log2(image_size // FEATURE_SIZE))
        layers, channels = [], 3
        for level in range(levels):
            out = _channels(width, 64 * 2 ** level)
            layers += [nn.Conv2d(channels, out, 4, 2, 1, bias=False)]
            if level:
                layers += [nn.BatchNorm2d(out)]
            layers += [nn.LeakyReLU(0.2, inplace=True)]
            channels = out
        self.main, self.out_channels = nn.Sequential(*layers), channels

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.main(frames)


class FEVGenerator(nn.Module):
    """``forward(input_frames (B, 3, S, S), identity_codes (B, D) or None, labels (B,)) -> (B, 3, T, S, S)``."""

    def __init__(self, identity_dim: int, image_size: int = 64, width: float = 1.0, video_length: int = VIDEO_LENGTH,
                 n_categories: int = N_CATEGORIES, use_spatial: bool = True, use_identity: bool = True):
        super().__init__()
        if not (use_spatial or use_identity):
            raise ValueError("FEV-GAN needs at least one encoder (spatial or identity)")
        self.n_categories, self.use_spatial, self.use_identity = n_categories, use_spatial, use_identity
        self.spatial = SpatialEncoder(image_size, width) if use_spatial else None
        channels = (self.spatial.out_channels if use_spatial else 0) + (identity_dim if use_identity else 0) + n_categories
        space_levels = int(math.log2(image_size // FEATURE_SIZE))
        time_levels = int(math.log2(video_length))
        if 2 ** time_levels != video_length or time_levels > space_levels:
            raise ValueError(f"video_length must be a power of two <= {2 ** space_levels}, got {video_length}")
        layers = []
        for level in range(space_levels):
            last = level == space_levels - 1
            out = 3 if last else _channels(width, 64 * 2 ** (space_levels - 2 - level))
            # the first levels double time too, until it reaches video_length (16 frames from 1 in 4 steps)
            time_stride = 2 if level >= space_levels - time_levels else 1
            layers.append(nn.ConvTranspose3d(channels, out, (2 * time_stride, 4, 4), (time_stride, 2, 2),
                                             (time_stride // 2, 1, 1), bias=last))
            layers += [nn.Tanh()] if last else [nn.BatchNorm3d(out), nn.ReLU(inplace=True)]
            channels = out
        self.decoder = nn.Sequential(*layers)

    def forward(self, frames: torch.Tensor, identity: torch.Tensor | None, labels: torch.Tensor) -> torch.Tensor:
        batch = frames.shape[0]
        parts = []
        if self.use_spatial:
            parts.append(self.spatial(frames))
        if self.use_identity:
            parts.append(identity[:, :, None, None].expand(-1, -1, FEATURE_SIZE, FEATURE_SIZE))
        one_hot = nn.functional.one_hot(labels.long(), self.n_categories).to(frames)
        parts.append(one_hot[:, :, None, None].expand(-1, -1, FEATURE_SIZE, FEATURE_SIZE))
        features = torch.cat(parts, dim=1)[:, :, None]  # (B, C, 1, 4, 4)
        return self.decoder(features)[:, :, :, :frames.shape[-2], :frames.shape[-1]].reshape(
            batch, 3, -1, *frames.shape[-2:])


class FEVDiscriminator(nn.Module):
    """(B, 3, T, S, S) videos + labels (B,) -> (B,) real/fake logits, conditioned on the emotion."""

    def __init__(self, image_size: int = 64, width: float = 1.0, video_length: int = VIDEO_LENGTH,
                 n_categories: int = N_CATEGORIES):
        super().__init__()
        self.n_categories = n_categories
        levels = int(math.log2(image_size // FEATURE_SIZE))
        layers, channels, length = [], 3 + n_categories, video_length
        for level in range(levels):
            out = _channels(width, 64 * 2 ** level)
            time_stride = 2 if length > 1 else 1
            layers.append(nn.Conv3d(channels, out, (2 * time_stride, 4, 4) if time_stride == 2 else (1, 4, 4),
                                    (time_stride, 2, 2), (time_stride // 2, 1, 1), bias=False))
            if level:
                layers.append(nn.BatchNorm3d(out))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            channels, length = out, max(1, length // time_stride)
        layers.append(nn.Conv3d(channels, 1, (length, FEATURE_SIZE, FEATURE_SIZE)))  # the fifth layer: one logit
        self.main = nn.Sequential(*layers)

    def forward(self, videos: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        one_hot = nn.functional.one_hot(labels.long(), self.n_categories).to(videos)
        maps = one_hot[:, :, None, None, None].expand(-1, -1, *videos.shape[2:])
        return self.main(torch.cat([videos, maps], dim=1)).reshape(videos.shape[0])
