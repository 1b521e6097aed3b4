"""The one clip rule (MoCoGAN's every-n-th frame, from a random start or the first frame), used by
GAN training (:class:`lib.train.gan_data.ClipSampler`), the evaluation pairs and the probes, and a
uint8 -> [-1, 1] conversion of clips."""
from __future__ import annotations

import numpy as np
import torch

from lib.config import check_choice, check_positive


# Where a clip starts: anywhere (MoCoGAN), or at the video's first frame, i.e. the neutral -> onset ->
# apex part of a MUG take, so that every clip shows the expression appearing.
CLIP_STARTS = ("random", "first")


def sample_clip_indices(length: int, n_frames: int = 16, every_nth: int = 2,
                        rng: np.random.Generator | int | None = None, start: str = "random") -> np.ndarray:
    """Frame numbers of one clip of ``n_frames`` from a video of ``length`` frames.

    If the video has at least ``every_nth * (n_frames - 1) + 1`` frames: a random start
    (``start="random"``; one draw from ``rng``) or frame 0 (``"first"``; no draw) and ``n_frames``
    frames spaced ``every_nth`` apart. Otherwise the first ``n_frames`` frames, the last one
    repeated if the video is even shorter.
    """
    check_positive("length", length)
    check_positive("n_frames", n_frames)
    check_positive("every_nth", every_nth)
    check_choice("start", start, CLIP_STARTS)
    span = every_nth * (n_frames - 1)
    if length >= span + 1:
        first = 0
        if start == "random":
            rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
            first = int(rng.integers(0, length - span))
        return first + every_nth * np.arange(n_frames, dtype=np.int64)
    return np.minimum(np.arange(n_frames, dtype=np.int64), length - 1)


# uint8 value k -> k / 127.5 - 1; one table lookup is several times faster than float, divide, subtract.
_TO_UNIT_RANGE = np.linspace(-1.0, 1.0, 256, dtype=np.float32)


def uint8_to_model(frames: np.ndarray) -> torch.Tensor:
    """uint8 (..., H, W, 3) -> contiguous float (..., 3, H, W) in [-1, 1]: the one conversion of stored
    frames to model inputs (``lib.io.to_uint8_frames`` is the way back)."""
    array = np.asarray(frames)
    if array.dtype != np.uint8:
        raise TypeError(f"expected uint8 frames, got {array.dtype}")
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(_TO_UNIT_RANGE[array], -1, -3)))


def frames_to_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> contiguous float (3, T, H, W) in [-1, 1] (the video discriminator layout)."""
    return uint8_to_model(frames).transpose(0, 1).contiguous()
