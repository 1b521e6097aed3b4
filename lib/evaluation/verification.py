"""Identity metrics on feature vectors: ACD, ACD-I, cosine distances, ROC/AUC, verification.

Conventions (fixed here so every model is scored the same way):

- ACD (Tulyakov et al., thesis 5.4.3): mean L2 distance between the feature vectors of
  consecutive frames of one video.
- ACD-I (FEV-GAN 4.3): mean L2 distance between the input face's feature vector (the
  first frame of the input clip, the face the generator was conditioned on) and each
  generated frame's.
- Verification distance of a video to a reference video (Oostveen 4.2): the cosine
  distance of each frame's features to the reference video's *mean* feature vector,
  averaged over the frames.  The mean feature is a stable template of the reference
  identity; averaging per-frame distances keeps one bad frame from deciding alone.
- Accuracy = share of generated videos whose distance is below a threshold, at the
  extractor's default threshold and at one tuned on a ROC curve of real same/different
  subject pairs (Youden's J = max(TPR - FPR)).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Published cosine-distance thresholds for the same networks (DeepFace's table), where
# one exists; other extractors take the midpoint rule of :func:`default_threshold`.
# (dlib ResNet 0.07; Facenet512 = the 512-d VGGFace2 InceptionResnetV1, 0.30).  They hold
# only for the pretrained networks, not for an embedder trained here.
PUBLISHED_COSINE_THRESHOLDS: dict[str, float] = {"dlib": 0.07, "facenet": 0.30}


def _as_2d(features) -> np.ndarray:
    array = np.asarray(features, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"expected per-frame features of shape (T, D), got {array.shape}")
    return array


def acd(features) -> float:
    """Average content distance of one video: mean L2 between consecutive frames' features."""
    array = _as_2d(features)
    if len(array) < 2:
        raise ValueError("ACD needs at least two frames")
    return float(np.linalg.norm(np.diff(array, axis=0), axis=1).mean())


def acd_input(input_features, generated_features) -> float:
    """ACD-I: mean L2 distance between the input face's features (D,) and each generated frame's."""
    reference = np.asarray(input_features, dtype=np.float64).reshape(1, -1)
    array = _as_2d(generated_features)
    return float(np.linalg.norm(array - reference, axis=1).mean())


def cosine_distance(a, b) -> np.ndarray:
    """Row-wise 1 - cos(a, b); broadcasts (N, D) against (N, D) or (1, D)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    norm = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    return 1.0 - (a * b).sum(-1) / np.maximum(norm, 1e-12)


def video_distance(features, reference_features) -> float:
    """Mean over ``features``' frames of the cosine distance to the reference video's mean feature."""
    array = _as_2d(features)
    template = _as_2d(reference_features).mean(0, keepdims=True)
    return float(cosine_distance(array, template).mean())


@dataclass
class RocResult:
    """ROC of a distance used as a same-identity detector (small distance = same)."""
    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray  # distance thresholds: "same" when distance <= threshold
    auc: float
    tuned_threshold: float  # Youden's J
    tuned_accuracy: float  # accuracy on the ROC pairs at the tuned threshold


def roc_from_distances(distances, same) -> RocResult:
    """ROC, AUC and the Youden-tuned threshold from pair distances and same-identity flags.

    Every distinct distance is a candidate threshold; ties are handled as one step
    (so AUC equals the probability that a same pair is closer than a different pair,
    ties counting half).
    """
    distances = np.asarray(distances, dtype=np.float64)
    same = np.asarray(same, dtype=bool)
    n_pos, n_neg = int(same.sum()), int((~same).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"a ROC curve needs both same and different pairs (got {n_pos} same, {n_neg} different)")
    candidates = np.unique(distances)
    tpr = np.array([(distances[same] <= t).mean() for t in candidates])
    fpr = np.array([(distances[~same] <= t).mean() for t in candidates])
    fpr_curve = np.concatenate([[0.0], fpr])
    tpr_curve = np.concatenate([[0.0], tpr])
    thresholds = np.concatenate([[-np.inf], candidates])
    auc = float(np.trapezoid(tpr_curve, fpr_curve))
    best = int(np.argmax(tpr - fpr))
    tuned = float(candidates[best])
    accuracy = float(((distances <= tuned) == same).mean())
    return RocResult(fpr_curve, tpr_curve, thresholds, auc, tuned, accuracy)


def verification_accuracy(distances, threshold: float) -> float:
    """Share of (same-identity) videos recognised: distance <= threshold."""
    distances = np.asarray(distances, dtype=np.float64)
    if distances.size == 0:
        return float("nan")
    return float((distances <= threshold).mean())


def default_threshold(extractor: str, same_distances, different_distances,
                      pretrained: bool = True) -> tuple[float, str]:
    """The untuned threshold and where it comes from.

    A published cosine threshold where the (pretrained) network has one; otherwise
    (autoencoder codes, truth probe, an embedder trained here) the midpoint of the mean
    same-pair and mean different-pair distances of real videos, which needs no search.
    """
    if pretrained and extractor in PUBLISHED_COSINE_THRESHOLDS:
        return PUBLISHED_COSINE_THRESHOLDS[extractor], "published (DeepFace cosine table)"
    midpoint = 0.5 * (float(np.mean(same_distances)) + float(np.mean(different_distances)))
    return midpoint, "midpoint of real same/different pair mean distances"


def real_pairs(video_subjects, rng: np.random.Generator, max_pairs: int = 400) -> list[tuple[int, int, bool]]:
    """Pairs (i, j, same_subject) of distinct real videos, balanced same/different when possible."""
    subjects = np.asarray(video_subjects)
    n = len(subjects)
    all_pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    same = [p for p in all_pairs if subjects[p[0]] == subjects[p[1]]]
    different = [p for p in all_pairs if subjects[p[0]] != subjects[p[1]]]
    half = max_pairs // 2
    chosen = []
    for group, flag in ((same, True), (different, False)):
        if len(group) > half:
            picks = rng.choice(len(group), size=half, replace=False)
            group = [group[k] for k in sorted(picks)]
        chosen.extend((i, j, flag) for i, j in group)
    return chosen
