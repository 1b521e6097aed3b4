"""Subject split + compositions, MoCoGAN clip sampling and the torch datasets."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lib.config import ConfigError
from lib.constants import EMOTIONS
from lib.data.cache import VideoCache
from lib.data.clips import sample_clip_indices
from lib.data.splits import composition_videos, load_split, make_split, save_split, split_for_cache

SUBJECTS = [f"{i:03d}" for i in range(1, 51)]


def make_cache(n_subjects=10, lengths=(70, 40, 10), side=4):
    """Every subject has all six emotions; video lengths cycle through ``lengths``;
    frame t of video v has pixel value (v + t) % 256."""
    videos, subjects, emotions = [], [], []
    for s in range(n_subjects):
        for e in EMOTIONS:
            v = len(videos)
            n = lengths[v % len(lengths)]
            values = (v + np.arange(n)) % 256
            videos.append(np.broadcast_to(values[:, None, None, None], (n, side, side, 3)).astype(np.uint8))
            subjects.append(f"{s + 1:03d}")
            emotions.append(e)
    return VideoCache.from_videos(videos, subjects, emotions)


# -- splits -------------------------------------------------------------------------
def test_split_sizes_and_determinism():
    split = make_split(SUBJECTS, seed=0)
    assert len(split.test_subjects) == 10 and len(split.train_subjects) == 40
    assert set(split.test_subjects).isdisjoint(split.train_subjects)
    assert sorted(split.test_subjects + split.train_subjects) == SUBJECTS
    assert make_split(reversed(SUBJECTS), seed=0) == split  # order of input does not matter
    assert make_split(SUBJECTS, seed=1).test_subjects != split.test_subjects
    for subject in split.test_subjects:
        assert len(split.seen_emotions[subject]) == 2 and set(split.seen_emotions[subject]) <= set(EMOTIONS)
    assert len({tuple(v) for v in split.seen_emotions.values()}) > 1  # drawn, not fixed


def test_seen_emotions_only_among_available():
    available = {s: ["anger", "fear", "surprise"] for s in SUBJECTS}
    split = make_split(SUBJECTS, seed=3, emotions_by_subject=available)
    for emotions in split.seen_emotions.values():
        assert len(emotions) == 2 and set(emotions) <= {"anger", "fear", "surprise"}


def test_split_file_round_trip(tmp_path):
    split = make_split(SUBJECTS, seed=4)
    save_split(split, tmp_path / "split.json")
    assert load_split(tmp_path / "split.json") == split


def test_compositions():
    cache = make_cache(n_subjects=10)
    cache.split = split_for_cache(cache, seed=0)
    index = cache.index
    train, test = composition_videos(cache, "unseen")
    assert set(index.loc[train, "subject"]).isdisjoint(cache.split.test_subjects)
    assert set(index.loc[test, "subject"]) == set(cache.split.test_subjects)
    assert len(train) + len(test) == len(cache)

    train_seen, test_seen = composition_videos(cache, "seen")
    assert set(train_seen).isdisjoint(test_seen) and len(train_seen) + len(test_seen) == len(cache)
    for subject in cache.split.test_subjects:
        in_train = set(index.loc[train_seen][index.loc[train_seen, "subject"] == subject]["emotion"])
        in_test = set(index.loc[test_seen][index.loc[test_seen, "subject"] == subject]["emotion"])
        assert in_train == set(cache.split.seen_emotions[subject]) and len(in_train) == 2
        assert in_test == set(EMOTIONS) - in_train
    with pytest.raises(ConfigError, match="'seen', 'unseen'"):
        composition_videos(cache, "both")


def test_composition_without_split_explains():
    with pytest.raises(ValueError, match="01_preprocess"):
        composition_videos(make_cache(n_subjects=2), "seen")


# -- clip sampling ----------------------------------------------------------------------
def test_every_nth_branch():
    rng = np.random.default_rng(0)
    starts = set()
    for _ in range(300):
        idx = sample_clip_indices(70, n_frames=16, every_nth=2, rng=rng)
        assert len(idx) == 16 and (np.diff(idx) == 2).all() and idx[-1] <= 69
        starts.add(int(idx[0]))
    assert starts == set(range(70 - 30))  # every admissible start, and only those
    exact = sample_clip_indices(31, 16, 2, rng=0)  # exactly every_nth*(T-1)+1 frames
    np.testing.assert_array_equal(exact, np.arange(0, 31, 2))
    np.testing.assert_array_equal(sample_clip_indices(70, 16, 2, rng=5), sample_clip_indices(70, 16, 2, rng=5))


def test_first_frames_branch():
    np.testing.assert_array_equal(sample_clip_indices(30, 16, 2, rng=0), np.arange(16))
    np.testing.assert_array_equal(sample_clip_indices(10, 16, 2, rng=0), np.r_[np.arange(10), [9] * 6])
    with pytest.raises(ConfigError):
        sample_clip_indices(0, 16, 2)


def test_clip_sampler_follows_the_clip_rule():
    from lib.train.gan_data import ClipSampler

    cache = make_cache(n_subjects=2)
    sampler = ClipSampler(cache, [0, 2], video_length=16, every_nth=2, seed=0)  # lengths 70 and 10
    for _ in range(5):
        videos, labels, positions = sampler.clips(4)
        assert videos.shape == (4, 3, 16, 4, 4) and videos.dtype == torch.float32
        for video, position in zip(videos, positions):
            # pixel value = video id + frame number: every 2nd frame, or the first frames of a short video
            values = ((video[0, :, 0, 0] + 1) * 127.5).round().numpy() - sampler.video_ids[position]
            if sampler.lengths[position] >= 31:
                assert (np.diff(values) == 2).all()
            else:
                np.testing.assert_array_equal(values, np.r_[np.arange(10), [9] * 6])


def test_tensor_conversion_matches_formula():
    from lib.data.clips import frames_to_tensor
    frames = np.random.default_rng(0).integers(0, 256, (5, 6, 7, 3), dtype=np.uint8)
    video = frames_to_tensor(frames)
    expected = torch.from_numpy(frames).permute(3, 0, 1, 2).float() / 127.5 - 1
    assert video.shape == (3, 5, 6, 7) and video.dtype == torch.float32 and video.is_contiguous()
    assert torch.allclose(video, expected, atol=1e-6)
    assert frames_to_tensor(np.array([[[[0, 255, 128]]]], np.uint8)).flatten().tolist()[:2] == [-1.0, 1.0]


def test_closest_frames_picks_each_clips_frame_nearest_the_reference():
    from lib.data.clips import closest_frames

    features = torch.zeros(2, 5, 3)
    features[0] += torch.arange(5.0)[:, None]  # clip 0: frames at 0, 1, ..., 4
    features[1] += torch.tensor([9.0, 8.0, 2.5, 7.0, 6.0])[:, None]
    assert closest_frames(features, torch.full((3,), 2.4)).tolist() == [2, 2]
    assert closest_frames(features, torch.zeros(3)).tolist() == [0, 2]
