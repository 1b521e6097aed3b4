"""Facial geometry from dlib's 68-point landmarks (``face_recognition_models``), for the ``landmarks``
emotion classifier: expression read from where the brows, eyes and mouth are, not from texture or identity.

Frames are upscaled to dlib's 150 px as for the ``dlib`` extractor; the face box is found once per clip
(on its first frame; the whole frame when none is found) and the 68 points are predicted on every frame
(about 5 ms a frame here).  Each frame's points are aligned: centred, rotated so the eye centres are
level, scaled to an inter-ocular distance of 1.  A clip's features are each coordinate's mean, max and
min over its frames (the apex shows in the extremes wherever the clip starts).
"""
from __future__ import annotations

import numpy as np

from lib.evaluation.extractors import dlib_face_box, dlib_image

N_POINTS = 68


class LandmarkPredictor:
    """dlib's HOG detector + 68-point shape predictor; raises ImportError/RuntimeError when unavailable."""

    def __init__(self):
        import dlib
        import face_recognition_models as models

        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(models.pose_predictor_model_location())

    def clip(self, frames: np.ndarray) -> tuple[np.ndarray, bool]:
        """uint8 (T, H, W, 3) -> ((T, 68, 2) points in upscaled pixels, whether a face box was found)."""
        images = [dlib_image(frame) for frame in frames]
        box, found = dlib_face_box(self.detector, images[0])
        points = [[(p.x, p.y) for p in self.predictor(image, box).parts()] for image in images]
        return np.asarray(points, np.float32), found


def aligned(points: np.ndarray) -> np.ndarray:
    """(T, 68, 2) -> the same shapes centred, eyes level, inter-ocular distance 1."""
    centred = points - points.mean(1, keepdims=True)
    left, right = points[:, 36:42].mean(1), points[:, 42:48].mean(1)
    between = right - left
    angle = -np.arctan2(between[:, 1], between[:, 0])[:, None]
    scale = np.maximum(np.linalg.norm(between, axis=1), 1e-6)[:, None]
    x, y = centred[..., 0], centred[..., 1]
    rotated = np.stack([x * np.cos(angle) - y * np.sin(angle), x * np.sin(angle) + y * np.cos(angle)], -1)
    return rotated / scale[..., None]


def clip_features(points: np.ndarray) -> np.ndarray:
    """(T, 68, 2) points of one clip -> (3 * 136,) mean, max and min of each aligned coordinate."""
    shapes = aligned(points).reshape(len(points), -1)
    return np.concatenate([shapes.mean(0), shapes.max(0), shapes.min(0)])
