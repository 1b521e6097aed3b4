"""Facial geometry from dlib's 68-point landmarks (``face_recognition_models``), for the ``landmarks``
emotion classifier: expression read from where the brows, eyes and mouth are, not from texture or identity.

The points come from :class:`lib.data.landmarks.LandmarkPredictor` (dlib at 150 px, one face box per
clip, about 5 ms a frame here).  Each frame's points are aligned: centred, rotated so the eye centres are
level, scaled to an inter-ocular distance of 1.  A clip's features are each coordinate's mean, max and
min over its frames (the apex shows in the extremes wherever the clip starts).
"""
from __future__ import annotations

import numpy as np

from lib.data.landmarks import aligned


def clip_features(points: np.ndarray) -> np.ndarray:
    """(T, 68, 2) points of one clip -> (3 * 136,) mean, max and min of each aligned coordinate."""
    shapes = aligned(points).reshape(len(points), -1)
    return np.concatenate([shapes.mean(0), shapes.max(0), shapes.min(0)])
