"""The latent-direction walk of seed 004, on 02's autoencoder instead of StyleGAN2: a baseline that trains
no network and fits in seconds.

Fit (training subjects of the composition only):

1. Codes: 02's selected autoencoder encodes, for every training take, its first frame (neutral in MUG's
   neutral -> onset -> apex takes) and the frames of its apex window (:data:`APEX_WINDOW` of its length).
2. Directions: per emotion, a logistic regression (scikit-learn; seed 004 chose it over an SVM) on those
   codes minus their take's neutral code, that emotion's apex frames against every other one (other
   emotions' apex frames and the neutral frames, i.e. zero change); the direction is its weight vector,
   unit length.  Seed 004 regresses the codes themselves; on absolute codes (measured on ``small``, seen)
   the direction mostly separates the subjects who have the emotion in training, the takes move along it by
   0.03-0.24 code units and the walked videos do not move (ACD ratio 0.01).
3. Amplitude: per emotion, the mean distance its takes move along that direction from the first frame
   to the apex window (seed 004 used "a fixed coefficient"; ours is measured on the training takes).
4. Curve: per emotion, the mean position along the direction at each frame of a 16-frame clip that
   starts at the take's first frame, in units of the amplitude, read at the keyframes
   (:data:`KEYFRAMES`: neutral, onset, ..., apex) and linearly interpolated between them, as seed 004
   interpolates between keyframe codes.

Generate: the input clip's first frame is encoded, its code moved by ``curve[e, t] * amplitude[e] *
direction[e]`` at frame t and decoded.  The first frame is therefore the autoencoder's reconstruction of
the input, and the identity is what the code keeps of it.  ``walk_output="residual"`` (our option) shows
instead the input frame plus the decoded change, ``decode(walked code) - decode(input code)``: the input's
detail, which the autoencoder blurs, is kept, and only the walk's change is drawn (seed 004 walks a
StyleGAN2, whose images are sharp; an autoencoder's are not).  ``source_frame="neutral"`` (our option)
starts from the input clip's frame whose code is closest to the training takes' mean first-frame code
instead of its first frame: 05's input clips start anywhere in a take, often at the input emotion's apex.

Not from the paper: no layer masking (seed 004 changed 8 of StyleGAN2's 18 style vectors; an autoencoder
code has no layers), no emotion-sequence LSTM (05 asks for one target emotion), amplitude and curve
measured rather than hand-set.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lib.constants import CLIP_STRIDE, EMOTIONS, VIDEO_LENGTH
from lib.data.clips import check_input_videos, closest_frames, sample_clip_indices, uint8_to_model
from lib.train.loop import fitted_run, load_fitted
from lib.train.options import AutoencoderOptions, SourceFrameOptions, option

WALK_OUTPUTS = ("decoded", "residual")


@dataclass
class LatentWalkOptions(SourceFrameOptions, AutoencoderOptions):
    """The walk's options: what it shows and which input frame it walks from (nothing is trained)."""

    walk_output: str = option("decoded", "decoded (the autoencoder's decoding of the walked code: seed 004) | "
                                         "residual (the input frame plus the decoded change from its own code: "
                                         "keeps the input's detail; our option)", WALK_OUTPUTS)

    def describe(self) -> str:
        return f"{self.system}-{self.composition}" + ("" if self.walk_output == "decoded" else f"-{self.walk_output}")

MODEL_NAME = "latent_walk.pt"
APEX_WINDOW = (0.35, 0.6)  # fractions of a take's length: its apex frames (as emotion_code_directions)
KEYFRAMES = (0, 5, 10, 15)
# Inverse L2 strength of the regressions.  Strong regularisation turns the weight vector toward the
# difference of the class means, the way the takes actually move; measured on ``small`` (seen): C = 1
# gives directions at cosine 0.08-0.15 to the mean apex change, along which the takes move 0.1-0.3 code
# units (the decoded videos barely move), C = 1e-3 cosine 0.75-0.96 and 0.6-2.9 units, at a training
# accuracy of 0.83-0.86 instead of 0.87-0.91.
REGULARISATION_C = 1e-3  # clip frames whose curve values are kept; the rest is linear between them


@torch.no_grad()
def _codes(autoencoder: torch.nn.Module, frames: np.ndarray) -> np.ndarray:
    return autoencoder.encode(uint8_to_model(frames)).double().numpy()


@torch.no_grad()
def fit_walk(autoencoder: torch.nn.Module, cache: Any, video_ids, video_length: int = VIDEO_LENGTH,
             every_nth: int = CLIP_STRIDE,
             seed: int = 0) -> dict[str, torch.Tensor]:
    """Directions, amplitudes and curves of the walk (module doc), from the takes ``video_ids``."""
    from sklearn.linear_model import LogisticRegression

    autoencoder.eval()
    rows = cache.index.set_index("video_id").loc[list(video_ids)]
    apex_codes, apex_labels, neutral_codes, clip_codes, clip_labels = [], [], [], [], []
    for start, length, label in zip(rows["start"], rows["length"], rows["label"]):
        length, start = int(length), int(start)
        first, last = (int(round(f * (length - 1))) for f in APEX_WINDOW)
        window = np.arange(first, max(last, first + 1))
        clip_index = sample_clip_indices(length, video_length, every_nth, start="first")
        wanted = np.unique(np.r_[0, window, clip_index])  # each frame encoded once
        codes = _codes(autoencoder, np.asarray(cache.frames[start + wanted]))
        neutral_codes.append(codes[0])  # frame 0 comes first in `wanted`
        # relative to the take's neutral frame: expression, not identity
        apex_codes.append(codes[np.searchsorted(wanted, window)] - codes[0])
        apex_labels += [int(label)] * len(window)
        clip_codes.append(codes[np.searchsorted(wanted, clip_index)])
        clip_labels.append(int(label))
    apex, apex_labels = np.concatenate(apex_codes), np.asarray(apex_labels)
    features = np.concatenate([apex, np.zeros((len(neutral_codes), apex.shape[1]))])  # a neutral frame: no change
    labels = np.concatenate([apex_labels, np.full(len(neutral_codes), -1)])  # -1: neutral
    clip_codes, clip_labels = np.stack(clip_codes), np.asarray(clip_labels)  # (N, T, D), (N,)
    n_emotions, dim = len(EMOTIONS), features.shape[1]
    directions, amplitudes = np.zeros((n_emotions, dim)), np.zeros(n_emotions)
    curves, accuracy = np.zeros((n_emotions, video_length)), np.full(n_emotions, np.nan)
    for emotion in range(n_emotions):
        target = labels == emotion
        if not target.any():  # no training take of this emotion: no walk
            continue
        model = LogisticRegression(C=REGULARISATION_C, max_iter=5000, random_state=seed).fit(features, target)
        accuracy[emotion] = model.score(features, target)
        direction = model.coef_[0] / np.linalg.norm(model.coef_[0])
        takes = clip_labels == emotion
        along = (clip_codes[takes] - clip_codes[takes, :1]) @ direction  # (takes, T): position on the direction
        apex_shift = np.array([changes.mean(0) @ direction for changes, label in zip(apex_codes, clip_labels)
                               if label == emotion])
        amplitudes[emotion] = max(float(apex_shift.mean()), 0.0)
        curve = along.mean(0) / amplitudes[emotion] if amplitudes[emotion] > 0 else np.zeros(video_length)
        keys = [k for k in KEYFRAMES if k < video_length]
        curves[emotion] = np.interp(np.arange(video_length), keys, curve[keys])
        directions[emotion] = direction
    return {"neutral_code": torch.from_numpy(np.mean(neutral_codes, axis=0)).float(),
            "directions": torch.from_numpy(directions).float(), "amplitudes": torch.from_numpy(amplitudes).float(),
            "curves": torch.from_numpy(curves).float(), "train_accuracy": torch.from_numpy(accuracy).float()}


class LatentWalkGenerator:
    """``generate(input_videos, labels, seed)`` of a fitted walk (the module doc); ``seed`` is unused: the
    walk is deterministic."""

    def __init__(self, config: LatentWalkOptions, autoencoder: torch.nn.Module, walk: dict[str, torch.Tensor],
                 device: torch.device | str = "cpu"):
        self.config, self.device = config, torch.device(device)
        self.autoencoder = autoencoder.to(self.device).eval()
        self.walk = {k: v.to(self.device) for k, v in walk.items()}
        self.snapshot = "fitted"

    def source_frames(self, videos: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) -> (B, 3, H, W): each clip's first frame, or with ``source_frame="neutral"`` the frame
        whose code is closest to the training takes' mean first-frame code."""
        if self.config.source_frame == "first":
            return videos[:, :, 0]
        frames = videos.transpose(1, 2)  # (B, T, 3, H, W)
        codes = self.autoencoder.encode(frames.reshape(-1, *frames.shape[2:])).reshape(*frames.shape[:2], -1)
        return frames[torch.arange(len(frames)), closest_frames(codes, self.walk["neutral_code"])]

    @torch.no_grad()
    def generate(self, input_videos: torch.Tensor, labels, seed: int = 0) -> torch.Tensor:
        """(B, 3, T, H, W) real frames in [-1, 1] + target labels (B,) -> (B, 3, video_length, H, W)."""
        videos = check_input_videos(input_videos)
        labels = torch.as_tensor(np.asarray(labels), dtype=torch.long, device=self.device)
        first = self.source_frames(videos.to(self.device, torch.float32))
        code = self.autoencoder.encode(first)  # (B, D)
        steps = self.walk["curves"][labels] * self.walk["amplitudes"][labels, None]  # (B, T)
        codes = code[:, None] + steps[..., None] * self.walk["directions"][labels][:, None]  # (B, T, D)
        batch, length, dim = codes.shape
        frames = self.autoencoder.decode(codes.reshape(batch * length, dim)).reshape(batch, length, *first.shape[1:])
        if self.config.walk_output == "residual":
            frames = first[:, None] + frames - frames[:, :1]  # frame 0 decodes the input's own code (curve 0)
        return frames.clamp(-1, 1).transpose(1, 2)


def _autoencoder(cfg: LatentWalkOptions, device: torch.device | str) -> torch.nn.Module:
    from lib.models.encoders import load_autoencoder_network

    return load_autoencoder_network(cfg.autoencoder_checkpoint, device)


def fit_latent_walk(cfg: LatentWalkOptions, run_dir: str | Path, cache: Any | None = None, progress: bool = True,
                    probe=None) -> dict[str, Any]:
    """Fit the walk of a resolved config (``system="latent-walk"``) into ``run_dir``: ``latent_walk.pt``,
    ``config.json``, ``samples/latest.gif``, one learning probe in ``stats.jsonl`` (with ``probe``) and
    ``train_done.json``, whose summary is returned (a finished folder is reported, not fitted again)."""
    with fitted_run(cfg, run_dir, "latent-walk", MODEL_NAME, cache, probe) as run:
        if run.summary is not None:
            return run.summary
        autoencoder = _autoencoder(run.cfg, "cpu")
        walk = fit_walk(autoencoder, run.cache, run.train_ids, run.cfg.video_length, run.cfg.every_nth, run.cfg.seed)
        accuracy = {e: round(float(a), 4) for e, a in zip(EMOTIONS, walk["train_accuracy"]) if np.isfinite(float(a))}
        return run.finish({"walk": walk}, LatentWalkGenerator(run.cfg, autoencoder, walk),
                          {"direction_train_accuracy": accuracy})


def load_latent_walk(run_dir: str | Path, device: str | torch.device = "cpu", snapshot: str = "best") -> LatentWalkGenerator:
    """The fitted walk of a run folder (``snapshot`` is accepted for the systems' common signature: a walk
    has one state)."""
    state, cfg = load_fitted(run_dir, MODEL_NAME, "latent-walk")
    return LatentWalkGenerator(cfg, _autoencoder(cfg, device), state["walk"], device)
