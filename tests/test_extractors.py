"""Identity feature extractors: dlib on real faces, input conventions, the truth probe's cache."""
import cv2
import numpy as np
import pytest
import skimage.data
import torch

from lib.config import ConfigError
from lib.evaluation.extractors import EXTRACTORS, build_extractor, to_float_nchw, to_uint8_nhwc
from lib.evaluation.verification import cosine_distance


def _degrade(grey: np.ndarray) -> np.ndarray:
    """Every face goes through the same path: grey, 25x25 (LFW subset's size), back to 64x64 RGB."""
    small = cv2.resize(grey, (25, 25), interpolation=cv2.INTER_AREA)
    return np.repeat(cv2.resize(small, (64, 64), interpolation=cv2.INTER_CUBIC)[:, :, None], 3, axis=2)


@pytest.fixture(scope="module")
def dlib_extractor():
    return build_extractor("dlib")


def test_dlib_places_a_face_nearer_its_mirror_than_other_people(dlib_extractor):
    # Real faces: the astronaut (Eileen Collins) from skimage, and the first 12 faces of
    # skimage's LFW subset (real people, 25x25 grey).  The astronaut is degraded the same
    # way, so only identity - not image quality - separates them.
    astronaut = _degrade(cv2.cvtColor(skimage.data.astronaut()[50:200, 150:290], cv2.COLOR_RGB2GRAY))
    others = [_degrade((face * 255).astype(np.uint8)) for face in skimage.data.lfw_subset()[:12]]
    features = dlib_extractor.extract(np.stack([astronaut, astronaut[:, ::-1], *others]))
    assert features.shape == (14, 128) and features.dtype == np.float32
    mirror = cosine_distance(features[:1], features[1:2])[0]
    strangers = cosine_distance(features[:1], features[2:])
    assert mirror < strangers.min()


def test_dlib_falls_back_to_the_whole_frame(dlib_extractor):
    before = dlib_extractor.report["whole_frame_used"]
    flat = np.full((2, 64, 64, 3), 128, np.uint8)
    assert dlib_extractor.extract(flat).shape == (2, 128)
    assert dlib_extractor.report["whole_frame_used"] == before + 2


def test_frame_conventions_round_trip():
    frames = np.random.default_rng(0).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    as_float = to_float_nchw(frames)
    assert as_float.shape == (3, 3, 64, 64) and as_float.min() >= -1 and as_float.max() <= 1
    np.testing.assert_array_equal(to_uint8_nhwc(as_float), frames)
    np.testing.assert_array_equal(to_uint8_nhwc(frames.transpose(0, 3, 1, 2)), frames)


def test_unknown_extractor_lists_choices():
    with pytest.raises(ConfigError) as error:
        build_extractor("arcface")
    for name in EXTRACTORS:
        assert repr(name) in str(error.value)


def test_truth_extractor_needs_ground_truth():
    from lib.data.cache import VideoCache
    from lib.data.splits import Split

    videos = [np.zeros((20, 64, 64, 3), np.uint8)] * 4
    cache = VideoCache.from_videos(videos, ["001", "001", "002", "002"], ["anger", "fear"] * 2,
                                   split=Split(["001"], ["002"], {"002": ["anger"]}))
    with pytest.raises(ValueError, match="ground-truth identity"):
        build_extractor("truth", cache, preset="tiny")


@pytest.mark.slow  # ~30 s of CPU: trains the probe for 150 steps
def test_identity_probe_learns_and_is_cached(monkeypatch, tmp_path):
    from lib.data.cache import VideoCache
    from lib.data.splits import Split
    from lib.evaluation.probes import load_or_train_probe, probe_config, probe_path

    monkeypatch.setenv("VICE_DATA_DIR", str(tmp_path))
    rng = np.random.default_rng(0)
    subjects = [f"{i:03d}" for i in range(20)]
    identity = {s: rng.uniform(-1, 1, 3).astype(np.float32) for s in subjects}
    # the identity vector is the frame colour: a probe must recover it on unseen subjects
    videos = [np.clip((identity[s] + 1) * 127.5 + rng.normal(0, 3, (6, 64, 64, 3)), 0, 255).astype(np.uint8)
              for s in subjects]
    cache = VideoCache.from_videos(videos, subjects, ["anger"] * 20, identities=identity,
                                   split=Split(subjects[:16], subjects[16:], {}), meta={"test": "probe"})
    probe = load_or_train_probe("identity", cache, preset="tiny", steps=150, batch_size=16)
    assert probe.report["r2"] > 0.5, probe.report
    path = probe_path(probe_config("identity", cache, "tiny", steps=150, batch_size=16))
    assert path.is_file() and str(path).startswith(str(tmp_path))
    again = load_or_train_probe("identity", cache, preset="tiny", steps=150, batch_size=16)
    frames = torch.from_numpy(videos[18][:4]).permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.no_grad():
        assert torch.allclose(probe.model(frames), again.model(frames))
    assert again.report == probe.report


def test_dlib_face_rate_finds_the_astronaut_and_not_noise():
    from lib.evaluation.extractors import dlib_face_rate

    face = cv2.resize(np.ascontiguousarray(skimage.data.astronaut()[30:230, 130:310]), (64, 64))
    noise = np.random.default_rng(0).integers(0, 256, (4, 64, 64, 3), dtype=np.uint8)
    clips = np.stack([np.stack([face] * 4), noise])  # one clip of a face, one of noise
    np.testing.assert_array_equal(dlib_face_rate(clips), [1.0, 0.0])


def test_a_slow_extractor_reads_evenly_spaced_frames_of_each_clip():
    from lib.evaluation.evaluate import _features
    from lib.evaluation.extractors import Extractor

    class FrameNumber(Extractor):
        def _extract_batch(self, frames):
            return np.asarray(frames)[:, :1, 0, :1].reshape(len(frames), 1).astype(np.float32)

    clips = np.broadcast_to(np.arange(16, dtype=np.uint8)[None, :, None, None, None], (2, 16, 4, 4, 3)).copy()
    every = _features(FrameNumber("n", 1), clips)
    some = _features(FrameNumber("n", 1, clip_frames=4), clips)
    assert every.shape == (2, 16, 1) and some.shape == (2, 4, 1)
    assert some[0, :, 0].tolist() == [0, 5, 10, 15]
