"""Facial landmarks by dlib: the 68-point predictor of ``face_recognition_models`` on our 64x64 frames.

Shared by the instruments (the ``dlib`` extractor, the face rate, the ``landmarks`` classifier) and by
seed 002's landmark-driven ``reenact`` system, which is why it lives with the data.  Frames are upscaled
to dlib's face-chip size (:data:`DLIB_UPSCALE`: a 64 px face is too small for its HOG detector); the face
box is found once per clip (on its first frame; the whole frame when none is found, since our frames are
face crops) and the 68 points are predicted on every frame (about 5 ms a frame here).
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

DLIB_UPSCALE = 150  # px: 64x64 frames are upscaled to dlib's face-chip size before detection
N_LANDMARKS = 68  # iBUG 68-point order
LEFT_EYE, RIGHT_EYE = slice(36, 42), slice(42, 48)
LANDMARKS_FILE = "landmarks-dlib.npy"  # beside a cache: every frame's 68 points (cache_landmarks)
DLIB_FIX = "install dlib-bin and face-recognition-models (pip install -r requirements.txt; make install)"


def dlib_image(frame: np.ndarray) -> np.ndarray:
    """A uint8 (H, W, 3) frame upscaled to DLIB_UPSCALE (bicubic), as every dlib instrument reads it."""
    import cv2

    return cv2.resize(frame, (DLIB_UPSCALE, DLIB_UPSCALE), interpolation=cv2.INTER_CUBIC)


def dlib_face_box(detector, image: np.ndarray) -> tuple[Any, bool]:
    """(the largest face box the HOG detector finds, True), or (the whole image, False)."""
    import dlib

    boxes = detector(image, 0)
    if len(boxes):
        return max(boxes, key=lambda r: r.area()), True
    return dlib.rectangle(0, 0, image.shape[1] - 1, image.shape[0] - 1), False


class LandmarkPredictor:
    """dlib's HOG detector + 68-point shape predictor; ImportError naming the packages when unavailable."""

    def __init__(self):
        try:
            import dlib
            import face_recognition_models as models
        except ImportError as error:
            raise ImportError(f"dlib's 68-point landmarks need dlib and face_recognition_models: {DLIB_FIX}") \
                from error
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(models.pose_predictor_model_location())

    def clip(self, frames: np.ndarray) -> tuple[np.ndarray, bool]:
        """uint8 (T, H, W, 3) -> ((T, 68, 2) points in upscaled pixels, whether a face box was found)."""
        images = [dlib_image(frame) for frame in frames]
        box, found = dlib_face_box(self.detector, images[0])
        points = [[(p.x, p.y) for p in self.predictor(image, box).parts()] for image in images]
        return np.asarray(points, np.float32), found

    def clip_in_frame_pixels(self, frames: np.ndarray) -> tuple[np.ndarray, bool]:
        """As :meth:`clip`, with the points in the frames' own pixels (x, y)."""
        points, found = self.clip(frames)
        return points * (np.asarray(frames).shape[2] / DLIB_UPSCALE), found


def face_frames(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per frame of (T, 68, 2) points: the centre (T, 2), the in-plane angle of the eye line (T,) and the
    inter-ocular distance (T,) that :func:`aligned` removes."""
    left, right = points[:, LEFT_EYE].mean(1), points[:, RIGHT_EYE].mean(1)
    between = right - left
    return (points.mean(1), np.arctan2(between[:, 1], between[:, 0]),
            np.maximum(np.linalg.norm(between, axis=1), 1e-6))


def rotate(points: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """(..., K, 2) points rotated about the origin by angles (radians) that broadcast to (...), e.g. (T,) for
    (T, K, 2), or (V, 1) for (V, T, K, 2): one angle per take."""
    cos, sin = np.cos(angle)[..., None], np.sin(angle)[..., None]
    x, y = points[..., 0], points[..., 1]
    return np.stack([x * cos - y * sin, x * sin + y * cos], -1)


def aligned(points: np.ndarray) -> np.ndarray:
    """(T, 68, 2) -> the same shapes centred, eyes level, inter-ocular distance 1."""
    centre, angle, scale = face_frames(points)
    return rotate(points - centre[:, None], -angle) / scale[:, None, None]


# iBUG 68-point order mirrored left <-> right (a horizontally flipped face's point k is point MIRROR[k]).
MIRROR = np.array([*range(16, -1, -1),  # jaw
                   *range(26, 21, -1), *range(21, 16, -1),  # brows swap
                   27, 28, 29, 30, 35, 34, 33, 32, 31,  # nose bridge, nostrils reversed
                   45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40,  # eyes swap
                   54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55,  # outer lip
                   64, 63, 62, 61, 60, 67, 66, 65])  # inner lip


def flip_points(points: np.ndarray, width: int) -> np.ndarray:
    """(..., 68, 2) points of a frame flipped horizontally: x mirrored and the points renumbered."""
    flipped = points[..., MIRROR, :].copy()
    flipped[..., 0] = width - 1 - flipped[..., 0]
    return flipped


def cache_landmarks(cache: Any, cache_dir: str | Path, progress: bool = True,
                    video_ids: Sequence[int] | None = None) -> np.ndarray:
    """dlib's 68 points of the frames of ``cache`` (N_frames, 68, 2) float32 in frame pixels, of every video or of
    ``video_ids`` only (the other frames NaN, never read: a generator's training videos, no test subject's);
    computed once (one face box per video, about 5 ms a frame) and kept beside the cache as :data:`LANDMARKS_FILE`,
    which later calls extend with the videos they add."""
    from tqdm.auto import tqdm

    from lib.io import atomic_write_bytes

    path = Path(cache_dir) / LANDMARKS_FILE
    n_frames = len(cache.frames)
    points = None
    if path.is_file():
        try:
            points = np.load(path)
        except (OSError, ValueError) as error:
            raise ValueError(f"damaged landmark file {path} ({error}); delete it and it is computed again") from None
        if points.shape != (n_frames, N_LANDMARKS, 2):
            points = None
    if points is None:
        points = np.full((n_frames, N_LANDMARKS, 2), np.nan, np.float32)
    rows = cache.index if video_ids is None else cache.index[cache.index["video_id"].isin(list(video_ids))]
    missing = [row for row in rows.itertuples() if np.isnan(points[int(row.start)]).any()]
    if not missing:
        return points
    predictor = LandmarkPredictor()
    for row in tqdm(missing, desc="dlib landmarks", disable=not progress):
        start, length = int(row.start), int(row.length)
        points[start:start + length] = predictor.clip_in_frame_pixels(np.asarray(cache.frames[start:start + length]))[0]
    buffer = io.BytesIO()
    np.save(buffer, points)
    try:
        atomic_write_bytes(path, buffer.getvalue())
    except OSError as error:  # a read-only cache (shared data): keep the points for this run only
        warnings.warn(f"could not keep the landmarks at {path} ({error}); they are computed again next time")
    return points


def emotion_displacements(points: np.ndarray, labels: np.ndarray, n_categories: int) -> np.ndarray:
    """Each emotion's mean landmark motion along a take: (V, T, 68, 2) points of V takes' clips (from their
    first frame) with their labels -> (n_categories, T, 68, 2) displacements from the first frame, in the
    first frame's face coordinates (eye line level, inter-ocular distance 1), so they carry to another face."""
    _, angle, scale = face_frames(points[:, 0])
    local = rotate(points - points[:, :1], -angle[:, None]) / scale[:, None, None, None]
    out = np.zeros((n_categories, *points.shape[1:]), np.float32)
    for label in range(n_categories):
        if (labels == label).any():
            out[label] = local[labels == label].mean(0)
    return out


def displaced_landmarks(first: np.ndarray, displacements: np.ndarray, size: int) -> np.ndarray:
    """(B, 68, 2) points of each input's first frame + (B, T, 68, 2) displacements in face coordinates
    -> (B, T, 68, 2) target points in pixels, kept inside the ``size`` x ``size`` frame."""
    _, angle, scale = face_frames(first)
    moves = rotate(displacements, angle[:, None]) * scale[:, None, None, None]
    return np.clip(first[:, None] + moves, 0, size - 1).astype(np.float32)
