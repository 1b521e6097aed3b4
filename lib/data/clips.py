"""The one clip rule (MoCoGAN's every-n-th frame, from a random start or the first frame), used by
GAN training (:class:`lib.train.gan_data.ClipSampler`), the evaluation pairs and the probes, and a
uint8 -> [-1, 1] conversion of clips."""
from __future__ import annotations

import numpy as np
import torch

from lib.config import check_choice, check_positive
from lib.constants import CLIP_STRIDE, VIDEO_LENGTH


# Where a clip starts: anywhere (MoCoGAN), or at the video's first frame, i.e. the neutral -> onset ->
# apex part of a MUG take, so that every clip shows the expression appearing.
CLIP_STARTS = ("random", "first")


def sample_clip_indices(length: int, n_frames: int = VIDEO_LENGTH, every_nth: int = CLIP_STRIDE,
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


def check_input_videos(input_videos) -> torch.Tensor:
    """A generator's input clips as a tensor, checked to be (B, 3, T, H, W) (every system's ``generate``)."""
    videos = torch.as_tensor(input_videos)
    if videos.dim() != 5 or videos.shape[1] != 3:
        raise ValueError(f"input_videos must be (B, 3, T, H, W), got {tuple(videos.shape)}")
    return videos


def frames_to_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> contiguous float (3, T, H, W) in [-1, 1] (the video discriminator layout)."""
    return uint8_to_model(frames).transpose(0, 1).contiguous()


def stabilise_clip(frames: np.ndarray, iterations: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (T, H, W, 3) -> (float32 (T, H, W, 3) frames, float32 (T, 2, 3) motions): every frame moved onto
    the first by a rigid (rotation + translation) fit of OpenCV's ECC image alignment on grey levels, so that
    the change from the first frame keeps the face's own movement (brows, mouth) and loses the head's.
    ``motions[t]`` is the fit in pixels, as OpenCV states it: frame t at ``motions[t] @ (x, y, 1)`` shows what
    the first frame shows at (x, y).  A frame whose fit does not converge is kept as it is (identity motion)."""
    import cv2

    array = np.asarray(frames)
    if array.dtype != np.uint8 or array.ndim != 4 or array.shape[-1] != 3:
        raise TypeError(f"expected uint8 (T, H, W, 3) frames, got {array.dtype} {array.shape}")
    height, width = array.shape[1:3]
    reference = cv2.cvtColor(array[0], cv2.COLOR_RGB2GRAY).astype(np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, iterations, 1e-4)
    out, motions = [array[0].astype(np.float32)], [np.eye(2, 3, dtype=np.float32)]
    for frame in array[1:]:
        warp = np.eye(2, 3, dtype=np.float32)
        try:
            _, warp = cv2.findTransformECC(reference, cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32),
                                           warp, cv2.MOTION_EUCLIDEAN, criteria, None, 5)
        except cv2.error:  # no convergence (e.g. a blank frame): keep the frame
            warp = np.eye(2, 3, dtype=np.float32)
        motions.append(warp)
        out.append(cv2.warpAffine(frame, warp, (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                  borderMode=cv2.BORDER_REPLICATE).astype(np.float32))
    return np.stack(out), np.stack(motions)


def motion_to_sampling_grid(motions: np.ndarray, size: int) -> np.ndarray:
    """(..., 2, 3) pixel motions of :func:`stabilise_clip` -> (..., 2, 3) ``theta`` of
    ``torch.nn.functional.affine_grid`` (normalised coordinates, ``align_corners=False``) that moves a
    first frame the same way: ``grid_sample(first, affine_grid(theta))`` at frame t ~ frame t."""
    motions = np.asarray(motions, np.float64)
    linear, shift = motions[..., :2], motions[..., 2]
    inverse = np.linalg.inv(linear)  # the output pixel y samples the first frame at inverse @ (y - shift)
    inverse_shift = -(inverse @ shift[..., None])[..., 0]
    corner = 1.0 / size - 1.0  # the normalised coordinate of pixel 0's centre
    theta_shift = 2.0 / size * inverse_shift + corner * (1.0 - inverse.sum(-1))
    return np.concatenate([inverse, theta_shift[..., None]], axis=-1).astype(np.float32)


def closest_frames(features: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """(B, T, D) per-frame features of B clips + a (D,) reference -> (B,) index of each clip's frame closest to
    it.  With the training takes' mean first (neutral) frame as reference, this is each clip's most neutral
    frame: the subject's own offset from the mean is the same in every frame of its clip."""
    return (features - reference).flatten(2).norm(dim=2).argmin(dim=1)
