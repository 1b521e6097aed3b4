"""Dense warps between two faces from their 68 landmarks: a thin-plate spline through the point pairs.

Used by the ``template_alignment="landmarks"`` recipe option: each training take's expression change is
moved onto the mean face shape before the takes are averaged (so one subject's brows land on another's
brows, not above or below them), and the averaged change is moved back onto each input face's own shape.
The spline is scipy's :class:`~scipy.interpolate.RBFInterpolator`; the frame's border is pinned in place, so
the background does not move with the face.
"""
from __future__ import annotations

import hashlib

import numpy as np

from lib.data.landmarks import N_LANDMARKS

WARP_SMOOTHING = 1.0  # the spline's smoothing (px^2 scale): dlib's points on a 64 px face are noisy by ~1 px
BORDER_ANCHORS = 8  # points per frame side pinned to themselves


def border_points(size: int, per_side: int = BORDER_ANCHORS) -> np.ndarray:
    """(4 * per_side, 2) points along the frame's edge (pixel coordinates, x then y)."""
    ticks = np.linspace(0.0, size - 1.0, per_side, endpoint=False)
    far = np.full_like(ticks, size - 1.0)
    near = np.zeros_like(ticks)
    return np.concatenate([np.stack([ticks, near], 1), np.stack([far, ticks], 1),
                           np.stack([size - 1.0 - ticks, far], 1), np.stack([near, size - 1.0 - ticks], 1)])


def sampling_grid(output_points: np.ndarray, source_points: np.ndarray, size: int,
                  smoothing: float = WARP_SMOOTHING) -> np.ndarray:
    """The ``grid_sample`` grid (size, size, 2), normalised for ``align_corners=False``, that draws an image whose
    landmarks are at ``output_points`` from one whose landmarks are at ``source_points`` (both (68, 2), pixels).

    Each output pixel samples the source at the spline through the point pairs (and the pinned border)."""
    from scipy.interpolate import RBFInterpolator

    output_points, source_points = np.asarray(output_points, np.float64), np.asarray(source_points, np.float64)
    if output_points.shape != (N_LANDMARKS, 2) or source_points.shape != (N_LANDMARKS, 2):
        raise ValueError(f"expected two ({N_LANDMARKS}, 2) point sets, got {output_points.shape} and "
                         f"{source_points.shape}")
    border = border_points(size)
    spline = RBFInterpolator(np.concatenate([output_points, border]), np.concatenate([source_points, border]),
                             kernel="thin_plate_spline", smoothing=smoothing)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    pixels = np.stack([xs.ravel(), ys.ravel()], 1)
    sampled = spline(pixels).reshape(size, size, 2)
    return ((2.0 * sampled + 1.0) / size - 1.0).astype(np.float32)  # pixel centres -> [-1, 1]


def frame_key(frame: np.ndarray) -> bytes:
    """A digest of a frame's pixels and shape: the key its landmarks and grids are kept under."""
    frame = np.ascontiguousarray(frame)
    return hashlib.sha1(frame.tobytes() + str(frame.shape).encode()).digest()


class FaceShapeReader:
    """dlib's 68 points of single frames (the first frame of each input).  Where dlib's detector finds no face the
    points are predicted in the whole frame, as every dlib instrument here does (our frames are face crops)."""

    def __init__(self):
        from lib.data.landmarks import LandmarkPredictor

        self.predictor = LandmarkPredictor()

    def points(self, frame: np.ndarray) -> np.ndarray:
        """uint8 (H, W, 3) -> (68, 2) points in the frame's pixels."""
        return self.predictor.clip_in_frame_pixels(np.ascontiguousarray(frame)[None])[0][0]


class ShapeAligner:
    """Each input face's ``grid_sample`` grid that moves an image drawn on ``shape`` (68, 2: the mean face of
    aligned emotion templates) onto that face.  Grids are kept by frame content (:func:`frame_key`): training
    draws the same first frames again and again, so dlib reads each once and later lookups are dictionary hits."""

    def __init__(self, shape: np.ndarray, size: int, capacity: int = 8192):
        self.shape, self.size, self.capacity = np.asarray(shape, np.float64), int(size), capacity
        self.reader = FaceShapeReader()
        self._grids: dict[bytes, np.ndarray] = {}

    def matches(self, shape: np.ndarray, size: int) -> bool:
        return int(size) == self.size and np.array_equal(np.asarray(shape, np.float64), self.shape)

    def grid(self, frame: np.ndarray) -> np.ndarray:
        """uint8 (H, W, 3) -> (S, S, 2)."""
        key = frame_key(frame)
        if key not in self._grids:
            if len(self._grids) >= self.capacity:
                self._grids.clear()
            self._grids[key] = sampling_grid(self.reader.points(frame), self.shape, self.size)
        return self._grids[key]

    def grids(self, frames: np.ndarray) -> np.ndarray:
        """uint8 (B, H, W, 3) -> (B, S, S, 2)."""
        return np.stack([self.grid(frame) for frame in frames])
