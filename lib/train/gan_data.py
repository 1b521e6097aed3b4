"""Batches of real clips and frames for GAN training, drawn with one seeded, checkpointable RNG.

MoCoGAN's sampling: a clip is ``video_length`` frames taken every ``every_nth`` frame
from a random start (or the video's first frame, ``clip_start="first"``), by the one rule of
:func:`lib.data.clips.sample_clip_indices`; an image is one random frame of a random training video.  All
randomness goes through ``self.rng`` (a NumPy Generator) whose state is saved in the
checkpoint, so a resumed run draws exactly the batches an uninterrupted run would.
"""
from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import numpy as np
import torch

from lib.constants import CLIP_STRIDE, VIDEO_LENGTH
from lib.data.clips import motion_to_sampling_grid, sample_clip_indices, stabilise_clip, uint8_to_model
from lib.data.face_warp import FaceShapeReader, sampling_grid


class ClipSampler:
    """Random real clips ``(n, 3, T, H, W)`` with labels, and random real frames ``(n, 3, H, W)``."""

    def __init__(self, cache: Any, video_ids: Sequence[int], video_length: int = VIDEO_LENGTH, every_nth: int = CLIP_STRIDE,
                 seed: int = 0, clip_start: str = "random"):
        if len(video_ids) == 0:
            raise ValueError("no training videos to sample from (empty composition)")
        rows = cache.index.set_index("video_id").loc[list(video_ids)]
        self.frames = cache.frames
        self.video_ids = np.asarray(list(video_ids))
        self.starts = rows["start"].to_numpy(np.int64)
        self.lengths = rows["length"].to_numpy(np.int64)
        self.labels = rows["label"].to_numpy(np.int64)
        self.subjects = rows["subject"].astype(str).to_numpy()
        self.video_length, self.every_nth, self.clip_start = video_length, every_nth, clip_start
        self.rng = np.random.default_rng(seed)
        self.landmarks: np.ndarray | None = None  # per-frame dlib points of the cache, for landmark_flow_weight

    def clip_of(self, position: int, offsets: np.ndarray | None = None) -> np.ndarray:
        """uint8 (T, H, W, 3) clip of the video at ``position`` (random offsets unless given)."""
        if offsets is None:
            offsets = sample_clip_indices(int(self.lengths[position]), self.video_length, self.every_nth, self.rng,
                                          self.clip_start)
        return np.asarray(self.frames[self.starts[position] + offsets])

    def clips(self, n: int) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        """(videos (n, 3, T, H, W) in [-1, 1], labels (n,), positions of the videos drawn)."""
        positions = self.rng.integers(0, len(self.video_ids), size=n)
        clips = np.stack([self.clip_of(int(p)) for p in positions])
        videos = uint8_to_model(clips).transpose(1, 2)  # (n, T, 3, H, W) -> (n, 3, T, H, W)
        return videos.contiguous(), torch.from_numpy(self.labels[positions]), positions

    def partner_clips(self, positions: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """For each drawn video, a random clip of another video of the same subject in another emotion.

        Returns (videos (n, 3, T, H, W), their labels (n,), has_partner (n,) bool): a subject with
        one emotion only gets its own clip back and ``has_partner`` False (no paired loss for it).
        """
        clips, labels, found = [], [], []
        for position in positions:
            candidates = np.flatnonzero((self.subjects == self.subjects[position]) & (self.labels != self.labels[position]))
            found.append(len(candidates) > 0)
            partner = int(self.rng.choice(candidates)) if len(candidates) else int(position)
            clips.append(self.clip_of(partner))
            labels.append(self.labels[partner])
        videos = uint8_to_model(np.stack(clips)).transpose(1, 2).contiguous()
        return videos, torch.as_tensor(np.asarray(labels, np.int64)), torch.as_tensor(found)

    def first_clip_landmarks(self, positions: np.ndarray, landmarks: np.ndarray) -> torch.Tensor:
        """(n, T, 68, 2) landmarks (``landmarks``: the cache's per-frame points) of the clips that ``clips`` draws
        with ``clip_start="first"`` at ``positions`` (those clips' frames are fixed: no draw)."""
        if self.clip_start != "first":
            raise ValueError("landmarks of drawn clips are known for clip_start='first' only")
        frames = [self.starts[p] + sample_clip_indices(int(self.lengths[p]), self.video_length, self.every_nth,
                                                       start="first") for p in positions]
        return torch.from_numpy(np.stack([landmarks[f] for f in frames]))

    def images(self, n: int) -> torch.Tensor:
        positions = self.rng.integers(0, len(self.video_ids), size=n)
        offsets = (self.rng.random(n) * self.lengths[positions]).astype(np.int64)
        return uint8_to_model(np.asarray(self.frames[np.sort(self.starts[positions] + offsets)]))

    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]


@torch.no_grad()
def emotion_code_directions(autoencoder: torch.nn.Module, cache: Any, video_ids: Sequence[int],
                            n_categories: int, apex_window: tuple[float, float] = (0.35, 0.6)) -> torch.Tensor:
    """(n_categories, code_dim): each emotion's mean change of the autoencoder code from a take's first
    frame (neutral, in MUG's neutral -> onset -> apex -> offset takes) to its apex window (the mean code
    of the frames between ``apex_window`` fractions of its length).  Differences within one take leave
    the subject's identity out; an emotion without training videos gets a zero direction."""
    rows = cache.index.set_index("video_id").loc[list(video_ids)]
    was_training = autoencoder.training
    autoencoder.eval()
    sums, counts = None, np.zeros(n_categories)
    for start, length, label in zip(rows["start"], rows["length"], rows["label"]):
        first, last = (int(round(f * (int(length) - 1))) for f in apex_window)
        picks = np.r_[0, np.arange(first, max(last, first + 1))]
        codes = autoencoder.encode(uint8_to_model(np.asarray(cache.frames[int(start) + picks])))
        change = codes[1:].mean(0) - codes[0]
        sums = torch.zeros(n_categories, change.numel()) if sums is None else sums
        sums[int(label)] += change
        counts[int(label)] += 1
    autoencoder.train(was_training)
    return sums / torch.from_numpy(np.maximum(counts, 1)).float()[:, None]


TEMPLATE_SPLIT = 0.6  # of the frame height: between the mean face's nose tip (0.57) and mouth (0.65) in our crops


def face_region_weights(size: int, upper: float, lower: float, split: float = TEMPLATE_SPLIT) -> torch.Tensor:
    """(size, 1) weights per pixel row: ``upper`` above ``split`` of the height, ``lower`` below, with a soft
    (2 px) step between them, so the weighted change has no seam."""
    rows = torch.arange(size, dtype=torch.float32) + 0.5
    return (upper + (lower - upper) * torch.sigmoid((rows - split * size) / 2.0))[:, None]


class EmotionTemplates(NamedTuple):
    """What :func:`emotion_templates` gives the generator's buffers."""

    changes: torch.Tensor  # (n_categories, 3, T, S, S)
    motions: torch.Tensor | None  # (n_categories, T, 2, 3) affine_grid thetas, with ``stabilise``
    shape: torch.Tensor | None  # (68, 2) the mean first-frame landmarks the changes are drawn on, with ``align``


def emotion_templates(cache: Any, video_ids: Sequence[int], n_categories: int,
                      video_length: int = VIDEO_LENGTH, every_nth: int = CLIP_STRIDE, stabilise: bool = False, align: bool = False,
                      region_weights: tuple[float, float] = (1.0, 1.0)) -> EmotionTemplates:
    """Each emotion's mean change of a clip from its first frame, over the clips that start at each training
    take's first frame (neutral -> onset -> apex, as 05's inputs do): ``(changes, motions)``.

    ``changes`` (n_categories, 3, T, H, W) is scaled up so that its mean magnitude equals that of the single
    takes' changes.  Averaging takes whose timing and head movement differ shrinks the change without moving
    it (x2.7 for the seen training videos of ``small``); the scale restores the real videos' amplitude.  An
    emotion without training videos gets zeros.

    ``stabilise``: each take's frames are first moved onto its first frame (:func:`lib.data.clips.stabilise_clip`),
    so the mean change keeps the expression and loses the head movement, whose average over subjects of different
    face shapes is a ghost outline that face recognisers read as another person (``small``, seen, 05's 24 pairs:
    dlib identity of input frame + template 0.12 without, 0.54 with); ``motions`` (n_categories, T, 2, 3) is then
    each emotion's mean head movement as ``affine_grid`` thetas (:func:`lib.data.clips.motion_to_sampling_grid`;
    sadness lowers the head, surprise raises it), so the generator can move the input's own face instead.
    Without ``stabilise`` ``motions`` is None.

    ``align``: each take's change is also moved onto the takes' mean face shape (dlib's 68 points of its first
    frame, a thin-plate spline: :mod:`lib.data.face_warp`) before the mean, so the brows, eyes and mouth of
    faces of different shapes add up in one place instead of side by side (a doubled brow line); ``shape`` is
    that mean shape, onto which the generator maps each input face.

    ``region_weights`` ``(upper, lower)`` then scale the change above and below the nose-mouth split
    (:func:`face_region_weights`): dlib's identity descriptor reads the brows and eyes, the emotion classifiers
    read the mouth most (README, "Where the templates draw")."""
    rows = cache.index.set_index("video_id").loc[list(video_ids)]
    size = int(cache.frames.shape[1])
    sums = torch.zeros(n_categories, 3, video_length, size, size)
    motion_sums = np.zeros((n_categories, video_length, 2, 3))
    counts, magnitude = np.zeros(n_categories), 0.0
    takes = list(zip(rows["start"], rows["length"], rows["label"]))
    shape, take_points = None, {}
    if align:
        reader = FaceShapeReader()
        take_points = {start: reader.points(np.asarray(cache.frames[int(start)])) for start, _, _ in takes}
        shape = np.mean(list(take_points.values()), axis=0)
    for start, length, label in takes:
        picks = sample_clip_indices(int(length), video_length, every_nth, start="first")
        frames = np.asarray(cache.frames[int(start) + picks])
        if stabilise:
            frames, motions = stabilise_clip(frames)
            frames = frames.round().clip(0, 255).astype(np.uint8)
            motion_sums[int(label)] += motion_to_sampling_grid(motions, size)
        clip = uint8_to_model(frames)  # (T, 3, H, W)
        change = (clip - clip[:1]).transpose(0, 1)  # (3, T, H, W)
        if align:  # drawn on the mean shape
            grid = torch.from_numpy(sampling_grid(shape, take_points[start], size))[None]
            change = torch.nn.functional.grid_sample(change.reshape(1, -1, size, size), grid, align_corners=False,
                                                     padding_mode="zeros").reshape(change.shape)
        sums[int(label)] += change
        counts[int(label)] += 1
        magnitude += float(change.abs().mean())
    means = sums / torch.from_numpy(np.maximum(counts, 1)).float()[:, None, None, None, None]
    seen = counts > 0
    gain = (magnitude / counts.sum()) / float(means[torch.from_numpy(seen)].abs().mean())
    shape = None if shape is None else torch.from_numpy(shape).float()
    changes = means * gain * face_region_weights(size, *region_weights)
    if not stabilise:
        return EmotionTemplates(changes, None, shape)
    identity = np.broadcast_to(np.eye(2, 3), motion_sums.shape)
    motions = np.where(seen[:, None, None, None], motion_sums / np.maximum(counts, 1)[:, None, None, None], identity)
    return EmotionTemplates(changes, torch.from_numpy(motions).float(), shape)
