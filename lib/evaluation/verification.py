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
  extractor's default threshold and at one tuned on real same/different subject pairs
  (the most accurate threshold; the middle of the interval when a whole interval ties);
  the equal-error-rate threshold is reported beside it.
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
    tuned_threshold: float  # maximises accuracy on the real pairs; the middle of a tied interval
    tuned_accuracy: float  # accuracy on the ROC pairs at the tuned threshold
    eer: float = float("nan")  # equal error rate: where the false accept and false reject rates meet
    eer_threshold: float = float("nan")


def accuracy_threshold(distances, same) -> tuple[float, float]:
    """(threshold, accuracy): the distance threshold with the highest accuracy on the pairs.

    Accuracy is constant between consecutive distinct distances, so the best thresholds form
    intervals; the middle of the widest best interval is taken, so that a gap between same and
    different pairs puts the threshold half-way across it rather than at its lower edge (where
    only near copies pass).  An interval reaching below every distance starts at min(0, smallest);
    one reaching above every distance (accept all) ends at the largest distance.
    """
    distances = np.asarray(distances, dtype=np.float64)
    same = np.asarray(same, dtype=bool)
    values = np.unique(distances)
    n_different = int((~same).sum())
    # correct[j]: pairs classified right when accepting the j smallest distinct distances
    accepted_same = np.searchsorted(np.sort(distances[same]), values, side="right")
    accepted_different = np.searchsorted(np.sort(distances[~same]), values, side="right")
    correct = np.concatenate([[n_different], accepted_same + n_different - accepted_different])
    lower = np.concatenate([[min(0.0, values[0])], values])  # threshold interval j = [lower[j], upper[j])
    upper = np.concatenate([values, [values[-1]]])
    best, runs, j = correct.max(), [], 0
    while j < len(correct):
        if correct[j] != best:
            j += 1
            continue
        end = j
        while end + 1 < len(correct) and correct[end + 1] == best:
            end += 1
        runs.append((upper[end] - lower[j], -j, j, end))
        j = end + 1
    _, _, first, last = max(runs)  # the accept-all interval alone has lower == upper: its midpoint is its edge
    return float(0.5 * (lower[first] + upper[last])), float(best / len(distances))


def roc_from_distances(distances, same) -> RocResult:
    """ROC (scikit-learn), AUC, the accuracy-tuned threshold and the equal-error-rate point.

    AUC is the probability that a same pair is closer than a different pair, ties counting half.
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    distances = np.asarray(distances, dtype=np.float64)
    same = np.asarray(same, dtype=bool)
    n_pos, n_neg = int(same.sum()), int((~same).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"a ROC curve needs both same and different pairs (got {n_pos} same, {n_neg} different)")
    fpr, tpr, scores = roc_curve(same, -distances, drop_intermediate=False)  # score = -distance: high = same
    thresholds = np.where(np.isinf(scores), -np.inf, -scores)
    auc = float(roc_auc_score(same, -distances))
    tuned, accuracy = accuracy_threshold(distances, same)
    crossing = int(np.argmin(np.abs(fpr - (1.0 - tpr))))
    eer = float(0.5 * (fpr[crossing] + 1.0 - tpr[crossing]))
    return RocResult(fpr, tpr, thresholds, auc, tuned, accuracy, eer, float(thresholds[crossing]))


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
