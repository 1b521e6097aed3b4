"""The `landmarks` emotion classifier: alignment with known answers, dlib's points on a real face, and
a fit on the tiny synthetic benchmark that reads its training clips above chance."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data
import torch

from lib.constants import EMOTIONS
from lib.data.landmarks import DLIB_UPSCALE, LandmarkPredictor, aligned
from lib.evaluation.landmarks import clip_features


def test_alignment_removes_position_rotation_and_scale():
    shape = np.random.default_rng(0).normal(size=(1, 68, 2)).astype(np.float64)
    shape[:, 36:42] += [-3, 0]  # eyes apart, as on a face
    shape[:, 42:48] += [3, 0]
    angle, scale, shift = 0.3, 2.5, np.array([40.0, -7.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = shape @ rotation.T * scale + shift
    np.testing.assert_allclose(aligned(moved), aligned(shape), atol=1e-9)
    eyes = aligned(shape)[0]
    assert np.linalg.norm(eyes[42:48].mean(0) - eyes[36:42].mean(0)) == pytest.approx(1.0)
    assert clip_features(np.repeat(shape, 5, axis=0)).shape == (3 * 136,)


def test_dlib_puts_68_points_on_a_real_face():
    face = cv2.resize(np.ascontiguousarray(skimage.data.astronaut()[30:230, 130:310]), (64, 64))
    points, found = LandmarkPredictor().clip(np.stack([face] * 3))
    assert found and points.shape == (3, 68, 2)
    assert (points >= 0).all() and (points < DLIB_UPSCALE).all()
    assert points[0, 36:42, 1].mean() < points[0, 48:68, 1].mean()  # eyes above the mouth


@pytest.mark.slow
def test_landmark_classifier_fits_the_tiny_benchmark(tmp_path, monkeypatch):
    from lib.data.locate import prepare_dataset
    from lib.evaluation.emotion import build_classifier

    monkeypatch.setenv("VICE_DATA_DIR", str(tmp_path))
    cache = prepare_dataset(None, preset="tiny", out_root=tmp_path / "cache", progress=False)
    classifier = build_classifier("landmarks", cache, "tiny")
    assert classifier.report["n_train_clips"] > 0 and 0 <= classifier.report["accuracy_real_test_random"] <= 1
    rows = cache.index[cache.index["subject"].astype(str).isin({str(s) for s in cache.split.train_subjects})]
    clips = np.stack([np.asarray(cache.frames[int(r.start) + np.arange(0, 32, 2)]) for r in rows.itertuples()])
    proba = classifier.predict_proba(clips)
    assert proba.shape == (len(clips), len(EMOTIONS)) and np.allclose(proba.sum(1), 1)
    assert (proba.argmax(1) == rows["label"].to_numpy()).mean() > 1 / len(EMOTIONS)  # fitted on these
    as_model = torch.from_numpy(clips).permute(0, 4, 1, 2, 3).float() / 127.5 - 1  # the generator's layout
    np.testing.assert_allclose(classifier.predict_proba(as_model[:2]), proba[:2], atol=1e-6)
