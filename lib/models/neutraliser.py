"""The input neutraliser: a small residual U-Net that takes the expression off a face frame.

05's inputs are clips of a test subject showing *another* emotion, drawn from anywhere in a take, so the
frame a composite generator starts from is often already at an apex (an open mouth of surprise, the
widened eyes of fear).  The emotion templates assume a neutral start: added to an expressive frame they
draw two expressions at once, which the classifiers read as the wrong one (README, "The input's own
expression").  This network maps any frame of a take to that take's first frame (neutral in MUG and in
the synthetic benchmark) moved into the frame's head pose, so the face and pose stay and the expression
goes; :mod:`lib.train.neutraliser` trains it on the training videos only.

Its output is ``frame + change``; the last layer starts at zero, so an untrained neutraliser is the
identity map.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

NEUTRALISER_WIDTH = 16  # channels at full resolution (119k parameters); a training step of 16 frames: 0.11 s on 2 threads
NEUTRALISER_GROUPS = 8  # GroupNorm groups: batch statistics would make a frame's output depend on its batch


def _block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.GroupNorm(NEUTRALISER_GROUPS, out_channels),
                         nn.SiLU(), nn.Conv2d(out_channels, out_channels, 3, padding=1),
                         nn.GroupNorm(NEUTRALISER_GROUPS, out_channels), nn.SiLU())


class InputNeutraliser(nn.Module):
    """(N, 3, H, W) frames in [-1, 1] -> the same faces without their expression, in [-1, 1].

    Two poolings (receptive field about 40 px at 64x64: a mouth with its surroundings), skip connections
    at full and half resolution so the face's detail passes through unchanged."""

    def __init__(self, width: int = NEUTRALISER_WIDTH):
        super().__init__()
        if width < NEUTRALISER_GROUPS or width % NEUTRALISER_GROUPS:
            raise ValueError(f"width must be a positive multiple of {NEUTRALISER_GROUPS}, got {width}")
        self.width = int(width)
        self.encode_full, self.encode_half = _block(3, width), _block(width, 2 * width)
        self.encode_quarter = _block(2 * width, 4 * width)
        self.decode_half, self.decode_full = _block(6 * width, 2 * width), _block(3 * width, width)
        self.to_change = nn.Conv2d(width, 3, 1)
        nn.init.zeros_(self.to_change.weight)
        nn.init.zeros_(self.to_change.bias)

    def change(self, frames: torch.Tensor) -> torch.Tensor:
        """The change that neutralises ``frames`` (what :meth:`forward` adds)."""
        full = self.encode_full(frames)
        half = self.encode_half(F.avg_pool2d(full, 2))
        quarter = self.encode_quarter(F.avg_pool2d(half, 2))
        half = self.decode_half(torch.cat([half, F.interpolate(quarter, scale_factor=2.0)], 1))
        full = self.decode_full(torch.cat([full, F.interpolate(half, scale_factor=2.0)], 1))
        return self.to_change(full)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return (frames + self.change(frames)).clamp(-1.0, 1.0)
