"""Seed 002's landmark-driven reenactment networks: a pix2pix U-Net generator and a PatchGAN discriminator.

Generator ``G(source frame, target landmark heatmaps) -> frame``: the source frame (3 channels) and one
Gaussian heatmap per target landmark (68 channels) are stacked and go through four stride-2 down-sampling
blocks (64 -> 4 px), one residual block at the bottleneck and four up-sampling blocks, each fed the
down-sampling features of its size (the U-Net's skip connections), Tanh output (paper: "4 down-sampling
blocks, one resnet block in the bottleneck, up-sampling blocks", after Isola et al. 2017).
Discriminator: the frame with the target heatmaps, three stride-2 convolutions of 32 channels, a 1-channel
convolution giving one logit per patch, and their mean (paper: "3 down-sampling convolutions ... thereafter
the mean operation ... 32 hidden channels ... enriched with target landmarks").

Where the paper is silent, our choice: the generator's channels are pix2pix's 64/128/256/512 times
``width``; BatchNorm in both networks except at their first layer (pix2pix); LeakyReLU(0.2) down, ReLU up.
``output="warp"`` (our option, not the paper's): the last layer also draws a mask and a flow field, and a
frame is ``mask * (source moved by the flow) + (1 - mask) * drawn colour``, as VICE-GAN's ``composite="warp"``
(:mod:`lib.models.mocogan`: the same mask offset, largest shift and flow cells), so a fresh generator starts
by copying the source frame and learns where to move and what to draw.
Heatmaps: the paper's Gaussian "over 7 pixels with a mean of 0 and a variance of 1/3", read as a window of
7 px (radius 3) spanning [-1, 1], i.e. sigma = sqrt(1/3) * 3 px, zero outside the window.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from lib.models.mocogan import COMPOSITE_MASK_BIAS, WARP_FLOW_CELL, WARP_MAX_SHIFT, warp

N_LANDMARKS = 68
HEATMAP_RADIUS = 3  # px: the 7-pixel window
HEATMAP_SIGMA = math.sqrt(1 / 3) * HEATMAP_RADIUS
DOWN_LEVELS = 4
OUTPUTS = ("image", "warp")  # what the U-Net's last layer draws (see the module docstring)
_OUTPUT_CHANNELS = {"image": 3, "warp": 3 + 1 + 2}  # colour, + mask logit and flow (x, y)


def landmark_heatmaps(points: torch.Tensor, size: int) -> torch.Tensor:
    """(N, K, 2) landmark (x, y) pixels -> (N, K, size, size) Gaussian heatmaps in [0, 1], one per point."""
    grid = torch.arange(size, dtype=points.dtype, device=points.device)
    dx = grid[None, None, None, :] - points[..., 0, None, None]
    dy = grid[None, None, :, None] - points[..., 1, None, None]
    inside = (dx.abs() <= HEATMAP_RADIUS) & (dy.abs() <= HEATMAP_RADIUS)
    return torch.exp(-(dx ** 2 + dy ** 2) / (2 * HEATMAP_SIGMA ** 2)) * inside


def _channels(width: float, base: int) -> int:
    return max(8, int(round(base * width)))


class _ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels),
                                  nn.ReLU(inplace=True), nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class UNetGenerator(nn.Module):
    """``forward(frames (B, 3, S, S), heatmaps (B, 68, S, S)) -> (B, 3, S, S)`` in [-1, 1]; S divisible by 16."""

    def __init__(self, width: float = 1.0, n_landmarks: int = N_LANDMARKS, output: str = "image"):
        super().__init__()
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        self.output = output
        channels = [_channels(width, 64 * 2 ** level) for level in range(DOWN_LEVELS)]
        self.down = nn.ModuleList()
        previous = 3 + n_landmarks
        for level, out in enumerate(channels):
            layers = [nn.Conv2d(previous, out, 4, 2, 1, bias=level == 0)]
            if level:
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            self.down.append(nn.Sequential(*layers))
            previous = out
        self.bottleneck = _ResidualBlock(previous)
        self.up = nn.ModuleList()
        for level in reversed(range(DOWN_LEVELS)):
            skip = channels[level]
            last = level == 0
            out = _OUTPUT_CHANNELS[output] if last else channels[level - 1]
            layers = [nn.ConvTranspose2d(previous + skip, out, 4, 2, 1, bias=last)]
            layers += [] if last else [nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
            self.up.append(nn.Sequential(*layers))
            previous = out

    def forward(self, frames: torch.Tensor, heatmaps: torch.Tensor) -> torch.Tensor:
        x, skips = torch.cat([frames, heatmaps], dim=1), []
        for block in self.down:
            x = block(x)
            skips.append(x)
        x = self.bottleneck(x)
        for block in self.up:
            x = block(torch.cat([x, skips.pop()], dim=1))
        colour = torch.tanh(x[:, :3])
        if self.output == "image":
            return colour
        mask = torch.sigmoid(x[:, 3:4] + COMPOSITE_MASK_BIAS)
        flow = WARP_MAX_SHIFT * torch.tanh(x[:, 4:6])
        flow = nn.functional.interpolate(nn.functional.avg_pool2d(flow, WARP_FLOW_CELL), size=flow.shape[-2:],
                                         mode="bilinear", align_corners=False)  # regions move, not pixels
        return mask * warp(frames, flow) + (1 - mask) * colour


class PatchDiscriminator(nn.Module):
    """(B, 3, S, S) frames + (B, 68, S, S) target heatmaps -> (B,) logits: the mean of the patch logits."""

    def __init__(self, hidden: int = 32, n_landmarks: int = N_LANDMARKS, levels: int = 3):
        super().__init__()
        layers, previous = [], 3 + n_landmarks
        for level in range(levels):
            layers.append(nn.Conv2d(previous, hidden, 4, 2, 1, bias=level == 0))
            if level:
                layers.append(nn.BatchNorm2d(hidden))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            previous = hidden
        layers.append(nn.Conv2d(previous, 1, 3, 1, 1))
        self.main = nn.Sequential(*layers)

    def forward(self, frames: torch.Tensor, heatmaps: torch.Tensor) -> torch.Tensor:
        return self.main(torch.cat([frames, heatmaps], dim=1)).mean(dim=(1, 2, 3))
