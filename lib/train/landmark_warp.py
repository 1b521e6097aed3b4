"""The ``landmark-warp`` system: each emotion's mean landmark motion applied to the input face as a warp of its
own pixels.  Nothing draws a pixel, so the face stays the input's (a real photograph stays a photograph), and
the expression is as far as its geometry carries it (no teeth or mouth interior is drawn).

Fit (training subjects of the composition only; seconds): dlib's 68 points on the training takes
(:func:`lib.data.landmarks.cache_landmarks`) and each emotion's mean motion along a 16-frame clip from a take's
first frame, in face coordinates (:func:`lib.train.reenact.emotion_motion`, the motion seed 002's reenactment is
driven by).

Generate: dlib's points on the input clip's first frame, moved at frame ``t`` by ``warp_gain`` times the target
emotion's mean motion (rotated and scaled to the input's face, :func:`lib.data.landmarks.displaced_landmarks`);
frame ``t`` is the first frame resampled through the thin-plate spline that takes the moved points back to the
input's (:func:`lib.data.face_warp.sampling_grid`, the frame's border pinned).  ``warp_gain`` > 1 exaggerates the
measured motion; 1 (the default) is the training takes' own amplitude.

"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from lib.constants import EMOTIONS
from lib.config import check_positive
from lib.data.clips import check_input_videos
from lib.data.face_warp import sampling_grid
from lib.data.landmarks import LandmarkPredictor, cache_landmarks, displaced_landmarks
from lib.io import to_uint8_frames
from lib.train.loop import fitted_run, load_fitted
from lib.train.options import RunOptions, option


@dataclass
class LandmarkWarpOptions(RunOptions):
    """The warp's one option: how far it moves the landmarks (nothing is trained)."""

    warp_gain: float = option(1.0, "the emotions' mean landmark motion is multiplied by it (1: the training takes' "
                                   "own amplitude)")

    def check(self) -> None:
        super().check()
        check_positive("warp_gain", self.warp_gain, allow_zero=True)

    def describe(self) -> str:
        return f"{self.system}-{self.composition}" + ("" if self.warp_gain == 1.0 else f"-x{self.warp_gain:g}")

MODEL_NAME = "landmark_warp.pt"


class LandmarkWarpGenerator:
    """``generate(input_videos, labels, seed)`` of a fitted motion (module doc); deterministic, ``seed`` unused."""

    def __init__(self, config: LandmarkWarpOptions, displacements: np.ndarray, device: torch.device | str = "cpu"):
        self.config, self.device = config, torch.device(device)
        self.displacements = np.asarray(displacements, np.float32)  # (n_emotions, T, 68, 2), face coordinates
        self.snapshot = "fitted"
        self._predictor: LandmarkPredictor | None = None

    def points(self, first_frames: torch.Tensor) -> np.ndarray:
        """(B, 3, H, W) frames in [-1, 1] -> their dlib points (B, 68, 2), pixels."""
        if self._predictor is None:
            self._predictor = LandmarkPredictor()
        return np.stack([self._predictor.clip_in_frame_pixels(to_uint8_frames(frame[:, None].cpu()))[0][0]
                         for frame in first_frames])

    @torch.no_grad()
    def generate(self, input_videos: torch.Tensor, labels, seed: int = 0) -> torch.Tensor:
        """(B, 3, T, H, W) real frames in [-1, 1] + target labels (B,) -> (B, 3, video_length, H, W)."""
        videos = check_input_videos(input_videos)
        labels = np.asarray(torch.as_tensor(np.asarray(labels)).long())
        first = videos[:, :, 0].to(self.device, torch.float32)
        size = first.shape[-1]
        start = self.points(first)
        moved = displaced_landmarks(start, self.config.warp_gain * self.displacements[labels], size)  # (B, T, 68, 2)
        start = np.clip(start, 0, size - 1)  # as the moved points are kept in the frame: no motion is no warp
        grids = np.stack([[sampling_grid(frame_points, points, size) for frame_points in clip]
                          for clip, points in zip(moved, start)])  # (B, T, H, W, 2)
        batch, length = grids.shape[:2]
        sources = first[:, None].expand(-1, length, -1, -1, -1).reshape(batch * length, *first.shape[1:])
        grid = torch.from_numpy(grids.reshape(batch * length, size, size, 2)).to(self.device)
        frames = F.grid_sample(sources, grid, mode="bilinear", padding_mode="border", align_corners=False)
        return frames.reshape(batch, length, *first.shape[1:]).transpose(1, 2).clamp(-1, 1)


def fit_landmark_warp(cfg: LandmarkWarpOptions, run_dir: str | Path, cache: Any | None = None, progress: bool = True,
                      probe=None) -> dict[str, Any]:
    """Fit the motion of a resolved config (``system="landmark-warp"``) into ``run_dir``: ``landmark_warp.pt``,
    ``config.json``, ``samples/latest.gif``, one learning probe in ``stats.jsonl`` (with ``probe``) and
    ``train_done.json``, whose summary is returned (a finished folder is reported, not fitted again)."""
    from lib.train.reenact import emotion_motion

    with fitted_run(cfg, run_dir, "landmark-warp", MODEL_NAME, cache, probe) as run:
        if run.summary is not None:
            return run.summary
        landmarks = cache_landmarks(run.cache, run.cfg.cache_dir, progress=progress, video_ids=run.train_ids)
        displacements, _ = emotion_motion(run.cache, run.train_ids, landmarks, run.cache.split.train_subjects,
                                          run.cfg.video_length, run.cfg.every_nth)
        amplitude = np.linalg.norm(displacements[:, -1], axis=-1).mean(-1)  # mean point motion at the last frame
        return run.finish({"displacements": torch.from_numpy(displacements)},
                          LandmarkWarpGenerator(run.cfg, displacements),
                          {"last_frame_motion": {e: round(float(a), 4) for e, a in zip(EMOTIONS, amplitude)}})


def load_landmark_warp(run_dir: str | Path, device: str | torch.device = "cpu",
                       snapshot: str = "best") -> LandmarkWarpGenerator:
    """The fitted motion of a run folder (``snapshot`` is accepted for the systems' common signature)."""
    state, cfg = load_fitted(run_dir, MODEL_NAME, "landmark-warp")
    return LandmarkWarpGenerator(cfg, state["displacements"].numpy(), device)
