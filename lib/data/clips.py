"""Clip sampling (MoCoGAN's every-n-th rule) and torch datasets over a :class:`VideoCache`.

Randomness is derived from ``(seed, item, draw)`` rather than from a global or
per-worker generator, so a batch is the same whatever ``num_workers`` is.
"""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

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


def frames_to_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> contiguous float (3, T, H, W) in [-1, 1] (the video discriminator layout)."""
    return torch.from_numpy(_TO_UNIT_RANGE[np.ascontiguousarray(np.asarray(frames).transpose(3, 0, 1, 2))])


def image_to_tensor(frame: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) -> contiguous float (3, H, W) in [-1, 1]."""
    return torch.from_numpy(_TO_UNIT_RANGE[np.ascontiguousarray(np.asarray(frame).transpose(2, 0, 1))])


def _split_key(key) -> tuple[int, int | None]:
    """Dataset keys are an int, or ``(item, draw)`` from :class:`InfiniteSampler`."""
    if isinstance(key, (tuple, list)):
        return int(key[0]), int(key[1])
    return int(key), None


class VideoClipDataset(Dataset):
    """Clips of ``n_frames`` from the given videos: ``{"video": (3, T, H, W), "label", "video_id"}``.

    The clip start depends on ``(seed, item, draw)``; with plain int keys ``draw`` is the
    epoch set by :meth:`set_epoch`, so every epoch sees new starts yet reruns repeat.
    """

    def __init__(self, cache, video_ids: Sequence[int], n_frames: int = 16, every_nth: int = 2, seed: int = 0):
        self.cache = cache
        self.video_ids = np.asarray(video_ids, np.int64)
        if len(self.video_ids) == 0:
            raise ValueError("VideoClipDataset needs at least one video id")
        self.n_frames, self.every_nth, self.seed = int(n_frames), int(every_nth), int(seed)
        self.labels = cache.labels
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.video_ids)

    def clip_indices(self, item: int, draw: int | None = None) -> np.ndarray:
        video_id = int(self.video_ids[item])
        rng = np.random.default_rng([self.seed, item, self.epoch if draw is None else draw])
        return sample_clip_indices(self.cache.length(video_id), self.n_frames, self.every_nth, rng)

    def __getitem__(self, key) -> dict:
        item, draw = _split_key(key)
        video_id = int(self.video_ids[item])
        frames = self.cache.video(video_id, self.clip_indices(item, draw))
        return {"video": frames_to_tensor(frames), "label": int(self.labels[video_id]), "video_id": video_id}


class FrameDataset(Dataset):
    """Every frame of the given videos (for the image discriminator and autoencoders):
    ``{"image": (3, H, W) in [-1, 1], "label", "video_id"}``."""

    def __init__(self, cache, video_ids: Sequence[int]):
        self.cache = cache
        video_ids = np.asarray(video_ids, np.int64)
        if len(video_ids) == 0:
            raise ValueError("FrameDataset needs at least one video id")
        lengths = cache.index["length"].to_numpy(np.int64)[video_ids]
        starts = cache.index["start"].to_numpy(np.int64)[video_ids]
        self.frame_rows = np.concatenate([s + np.arange(n) for s, n in zip(starts, lengths)])
        self.frame_video = np.repeat(video_ids, lengths)
        self.labels = cache.labels

    def __len__(self) -> int:
        return len(self.frame_rows)

    def __getitem__(self, key) -> dict:
        item, _ = _split_key(key)
        video_id = int(self.frame_video[item])
        image = image_to_tensor(self.cache.frames[self.frame_rows[item]])  # the lookup copies out of the mmap
        return {"image": image, "label": int(self.labels[video_id]), "video_id": video_id}


class InfiniteSampler(Sampler):
    """Endless ``(item, draw)`` keys: a fresh permutation of ``range(n)`` per pass, seeded.

    ``start`` skips that many keys, so a resumed run continues the same stream.
    """

    def __init__(self, n: int, seed: int = 0, shuffle: bool = True, start: int = 0):
        if n <= 0:
            raise ValueError("InfiniteSampler needs a non-empty dataset")
        self.n, self.seed, self.shuffle, self.start = int(n), int(seed), shuffle, int(start)

    def _order(self, epoch: int) -> np.ndarray:
        if not self.shuffle:
            return np.arange(self.n)
        return np.random.default_rng([self.seed, epoch]).permutation(self.n)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch, offset = divmod(self.start, self.n)
        while True:
            order = self._order(epoch)
            for position in range(offset, self.n):
                yield int(order[position]), epoch * self.n + position
            epoch, offset = epoch + 1, 0


def infinite_batches(dataset: Dataset, batch_size: int, seed: int = 0, start_batch: int = 0,
                     num_workers: int = 0, shuffle: bool = True) -> Iterator[dict]:
    """Endless batches for step-based GAN training; ``start_batch`` resumes the same stream."""
    check_positive("batch_size", batch_size)
    sampler = InfiniteSampler(len(dataset), seed=seed, shuffle=shuffle, start=start_batch * batch_size)
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                        drop_last=True, persistent_workers=num_workers > 0)
    return iter(loader)
