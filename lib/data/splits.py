"""Subject-level train/test split and the two training compositions of the thesis.

- ``unseen``: the test subjects are absent from training.
- ``seen``: each test subject contributes exactly two of its emotions (chosen at
  random from those it has) to training; its other emotions are the test targets.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from lib.config import check_choice
from lib.constants import EMOTIONS

COMPOSITIONS = ("seen", "unseen")
SEEN_EMOTIONS_PER_SUBJECT = 2


@dataclass
class Split:
    train_subjects: list[str]
    test_subjects: list[str]
    seen_emotions: dict[str, list[str]] = field(default_factory=dict)
    seed: int = 0
    test_fraction: float = 0.2


def make_split(subjects: Iterable[str], seed: int, test_fraction: float = 0.2,
               emotions_by_subject: Mapping[str, Iterable[str]] | None = None) -> Split:
    """Draw ``round(test_fraction * n)`` test subjects (at least one, leaving one for training).

    ``emotions_by_subject`` lists the emotions each subject has videos of (default: all
    six); the two seen emotions of a test subject are drawn from those.
    """
    subjects = sorted({str(s) for s in subjects})
    if len(subjects) < 2:
        raise ValueError(f"a subject-level split needs at least 2 subjects, got {subjects}")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    n_test = int(np.clip(round(test_fraction * len(subjects)), 1, len(subjects) - 1))
    order = rng.permutation(len(subjects))
    test = sorted(subjects[i] for i in order[:n_test])
    train = sorted(subjects[i] for i in order[n_test:])
    seen: dict[str, list[str]] = {}
    for subject in test:
        available = sorted(set(emotions_by_subject[subject]) if emotions_by_subject else EMOTIONS,
                           key=EMOTIONS.index)
        # Keep at least one emotion as a test target when a subject has few emotions.
        n_seen = min(SEEN_EMOTIONS_PER_SUBJECT, max(len(available) - 1, 0))
        if n_seen < SEEN_EMOTIONS_PER_SUBJECT:
            warnings.warn(f"test subject {subject} has only {len(available)} emotions; "
                          f"{n_seen} seen in training instead of {SEEN_EMOTIONS_PER_SUBJECT}")
        picked = rng.choice(len(available), size=n_seen, replace=False) if n_seen else []
        seen[subject] = sorted((available[i] for i in picked), key=EMOTIONS.index)
    return Split(train, test, seen, int(seed), float(test_fraction))


def split_for_cache(cache, seed: int, test_fraction: float = 0.2) -> Split:
    """:func:`make_split` over the subjects and emotions present in a :class:`VideoCache`."""
    emotions = cache.index.groupby("subject")["emotion"].apply(lambda e: sorted(set(e))).to_dict()
    return make_split(emotions.keys(), seed, test_fraction, emotions_by_subject=emotions)


def save_split(split: Split, path: str | Path) -> Path:
    from lib.io import save_config
    return save_config(split, path)


def load_split(path: str | Path) -> Split:
    from lib.io import load_config
    return load_config(Split, path)


def composition_videos(cache, composition: str) -> tuple[np.ndarray, np.ndarray]:
    """``(train_ids, test_ids)`` video ids of ``cache`` for ``composition`` (``seen``/``unseen``)."""
    check_choice("composition", composition, COMPOSITIONS)
    split: Split | None = cache.split
    if split is None:
        raise ValueError("this cache has no split; run notebooks/01_preprocess.ipynb (it writes split.json) "
                         "or set cache.split = lib.data.splits.split_for_cache(cache, seed)")
    index = cache.index
    ids = index["video_id"].to_numpy(np.int64)
    is_test_subject = index["subject"].isin(split.test_subjects).to_numpy()
    is_train_subject = index["subject"].isin(split.train_subjects).to_numpy()
    if composition == "unseen":
        return ids[is_train_subject], ids[is_test_subject]
    seen = np.array([e in split.seen_emotions.get(s, ()) for s, e in zip(index["subject"], index["emotion"])], bool)
    train = is_train_subject | (is_test_subject & seen)
    return ids[train], ids[is_test_subject & ~seen]


# Validation: carved from the training subjects, so that learning probes, best-snapshot choice and every weight
# chosen by hand never look at a test subject.  It mirrors the test protocol: ``VALIDATION_SUBJECTS`` training
# subjects play the test subjects' part (``seen``: two of their emotions stay in training, the others are
# validation targets; ``unseen``: they leave training altogether).
VALIDATION_SUBJECTS = 2
VALIDATION_SEED_OFFSET = 104729  # the validation draw is its own stream of the split's seed


def validation_split(split: Split, emotions_by_subject: Mapping[str, Iterable[str]] | None = None) -> Split:
    """A :class:`Split` of ``split``'s training subjects: ``test_subjects`` are the validation subjects
    (``VALIDATION_SUBJECTS``, fewer when there are few: one training subject always stays), ``train_subjects``
    the others, ``seen_emotions`` the validation subjects' two emotions that the ``seen`` composition trains on."""
    subjects = sorted(map(str, split.train_subjects))
    if len(subjects) < 2:
        raise ValueError(f"a validation split needs at least 2 training subjects, got {subjects}")
    n_validation = min(VALIDATION_SUBJECTS, len(subjects) - 1)
    emotions = {s: emotions_by_subject[s] for s in subjects} if emotions_by_subject else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few emotions: said once by the test split already
        return make_split(subjects, split.seed + VALIDATION_SEED_OFFSET, n_validation / len(subjects), emotions)


def _emotions_by_subject(cache) -> dict[str, list[str]]:
    return cache.index.groupby(cache.index["subject"].astype(str))["emotion"].apply(lambda e: sorted(set(e))).to_dict()


def validation_cache(cache):
    """``cache`` seen through its validation split: its ``split.test_subjects`` are the validation subjects, so
    the evaluation protocol (:func:`lib.evaluation.protocol.make_pairs`) draws validation pairs from it."""
    import copy

    view = copy.copy(cache)
    view.split = validation_split(cache.split, _emotions_by_subject(cache))
    return view


def training_videos(cache, composition: str, hold_out: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``(train_ids, validation_ids)`` for a generator of ``composition``: ``validation_ids`` are the validation
    subjects' held-out videos (``seen``: their emotions other than their two seen ones; ``unseen``: all of theirs)
    and, with ``hold_out``, ``train_ids`` are the composition's training videos without them.  ``hold_out=False``
    (a run that selects nothing on validation) trains on every training video.  No test subject's held-out video
    is in either."""
    train_ids, _ = composition_videos(cache, composition)
    _, held_out = composition_videos(validation_cache(cache), composition)
    held_out = np.intersect1d(held_out, train_ids)
    return (np.setdiff1d(train_ids, held_out) if hold_out else train_ids), held_out
