"""The evaluation protocol: which real input video drives which generated target.

For each test subject, a target is an emotion for which a real video of that subject
exists and which no model saw for that subject: never one of
``split.seen_emotions[subject]`` (those videos are in the training set of the `seen`
composition).  The same rule is used for `unseen` models, so that models of both
compositions are scored on *identical* pairs.  The input is a real video of the same
subject in a different emotion.  Clips follow training's 16-frame rule
(:func:`lib.data.clips.sample_clip_indices`) drawn with a fixed RNG.

Pairs depend only on the cache (its index and split), ``n_pairs`` and ``seed``, never
on the model; :func:`pairs_fingerprint` lets a result file prove which pairs it used.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

import numpy as np

from lib.constants import CLIP_STRIDE, EMOTIONS, VIDEO_LENGTH


@dataclass(frozen=True)
class EvaluationPair:
    """One generation task: drive ``input_video_id`` towards ``target_label``; compare to the target."""
    pair_index: int
    subject: str
    input_video_id: int
    input_emotion: str
    target_video_id: int
    target_emotion: str
    target_label: int
    input_frames: tuple[int, ...]  # frame indices within the input video
    target_frames: tuple[int, ...]  # frame indices within the target video


def _emotion_name(value) -> str:
    if isinstance(value, (int, np.integer)):
        return EMOTIONS[int(value)]
    return str(value)


def held_out_emotions(cache, subject: str) -> list[str]:
    """Emotions with a real video of ``subject`` that no composition trains on for that subject."""
    index = cache.index
    present = set(index.loc[index["subject"].astype(str) == str(subject), "emotion"].astype(str))
    seen = {_emotion_name(e) for e in cache.split.seen_emotions.get(str(subject), [])}
    return [e for e in EMOTIONS if e in present and e not in seen]


def make_pairs(cache, n_pairs: int | None = None, seed: int = 0, n_frames: int = VIDEO_LENGTH,
               every_nth: int = CLIP_STRIDE) -> list[EvaluationPair]:
    """The protocol's pairs for ``cache``: deterministic in (cache, split, n_pairs, seed).

    Every (test subject, held-out emotion) combination is a task; they are shuffled
    with ``seed`` and visited round-robin until ``n_pairs`` pairs exist (``None`` = each
    task once), drawing a random target take, a random input video of another emotion,
    and clip positions.
    """
    from lib.data.clips import sample_clip_indices

    if n_pairs is not None and (not isinstance(n_pairs, (int, np.integer)) or n_pairs < 1):
        raise ValueError(f"n_pairs must be a positive integer or None, got {n_pairs!r}")
    index = cache.index.copy()
    index["subject"] = index["subject"].astype(str)
    index["emotion"] = index["emotion"].astype(str)
    rng = np.random.default_rng(seed)
    tasks = [(str(s), e) for s in sorted(map(str, cache.split.test_subjects)) for e in held_out_emotions(cache, s)]
    tasks = [t for t in tasks if ((index["subject"] == t[0]) & (index["emotion"] != t[1])).any()]
    if not tasks:
        raise ValueError("the cache's test split has no subject with a held-out emotion and another input video; "
                         "rebuild the cache with more test subjects or emotions")
    order = rng.permutation(len(tasks))
    total = len(tasks) if n_pairs is None else int(n_pairs)
    pairs = []
    for k in range(total):
        subject, emotion = tasks[order[k % len(tasks)]]
        own = index[index["subject"] == subject].sort_values("video_id")
        targets = own[own["emotion"] == emotion]
        inputs = own[own["emotion"] != emotion]
        target = targets.iloc[int(rng.integers(len(targets)))]
        source = inputs.iloc[int(rng.integers(len(inputs)))]
        pairs.append(EvaluationPair(
            pair_index=k, subject=subject,
            input_video_id=int(source["video_id"]), input_emotion=str(source["emotion"]),
            target_video_id=int(target["video_id"]), target_emotion=emotion,
            target_label=EMOTIONS.index(emotion),
            input_frames=tuple(int(i) for i in sample_clip_indices(int(source["length"]), n_frames, every_nth, rng)),
            target_frames=tuple(int(i) for i in sample_clip_indices(int(target["length"]), n_frames, every_nth, rng)),
        ))
    return pairs


def pairs_fingerprint(pairs: list[EvaluationPair]) -> str:
    """A short hash of the pairs, stored with results so comparisons can check they match."""
    text = json.dumps([asdict(p) for p in pairs], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def pair_clips(cache, pair: EvaluationPair) -> tuple[np.ndarray, np.ndarray]:
    """The uint8 (T, H, W, 3) input clip and real target clip of a pair."""
    input_clip = cache.video(pair.input_video_id)[list(pair.input_frames)]
    target_clip = cache.video(pair.target_video_id)[list(pair.target_frames)]
    return input_clip, target_clip


def to_model_video(clips: np.ndarray):
    """uint8 (B, T, H, W, 3) -> float tensor (B, 3, T, H, W) in [-1, 1] (the generator's input)."""
    from lib.data.clips import uint8_to_model

    return uint8_to_model(clips).transpose(1, 2)
