"""Face detectors chosen by name, and the square crop box built from their detections.

- ``mtcnn``  facenet-pytorch's MTCNN (weights ship inside the package; CPU is fine)
- ``haar``   OpenCV's frontal-face Haar cascade
- ``center`` no detection: a fixed centre square (``center_fraction`` of the short side)
- ``none``   no crop: the whole frame is resized

A box is ``(x1, y1, x2, y2)`` in pixels of the frame it was found in.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from lib.config import check_choice

DETECTORS = ("mtcnn", "haar", "center", "none")
Box = tuple[float, float, float, float]
DETECT_SIDE = 320  # longest side of the frames given to a detector


class MTCNNDetector:
    """Most confident face per frame from facenet-pytorch's MTCNN."""

    def __init__(self, min_probability: float = 0.9, min_face_size: int = 48):
        from lib.compat import import_facenet_pytorch

        facenet = import_facenet_pytorch()
        # Frames reach the detector at DETECT_SIDE pixels (see detect_downscaled); MUG faces span
        # a third of the frame, so skipping faces under ~1/7 of it drops most of MTCNN's pyramid.
        self.model = facenet.MTCNN(keep_all=True, device="cpu", min_face_size=min_face_size)
        self.min_probability = min_probability

    def detect(self, frames: np.ndarray) -> list[Box | None]:
        import torch

        with torch.no_grad():
            # A stacked (N, H, W, 3) batch goes through the networks in one pass.
            boxes, probs = self.model.detect(np.ascontiguousarray(frames))
        found: list[Box | None] = []
        for frame_boxes, frame_probs in zip(boxes, probs):
            if frame_boxes is None or len(frame_boxes) == 0:
                found.append(None)
                continue
            best = int(np.nanargmax(frame_probs))
            ok = frame_probs[best] is not None and frame_probs[best] >= self.min_probability
            found.append(tuple(float(v) for v in frame_boxes[best]) if ok else None)
        return found


class HaarDetector:
    """Largest frontal face per frame from OpenCV's Haar cascade."""

    def __init__(self):
        import cv2

        path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise FileNotFoundError(f"OpenCV Haar cascade not found at {path}; reinstall opencv-python-headless")

    def detect(self, frames: np.ndarray) -> list[Box | None]:
        import cv2

        found: list[Box | None] = []
        for frame in frames:
            gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
            min_size = max(24, min(gray.shape) // 8)
            faces = self.cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_size, min_size))
            if len(faces) == 0:
                found.append(None)
                continue
            x, y, w, h = max(faces, key=lambda f: f[2] * f[3])
            found.append((float(x), float(y), float(x + w), float(y + h)))
        return found


# The registry: name -> detector factory; None for the detector-free ``center`` (a fixed central
# crop) and ``none`` (the whole frame), which :func:`face_box` handles without a detector.
DETECTOR_BUILDERS: dict[str, Callable[[], Any] | None] = {"mtcnn": MTCNNDetector, "haar": HaarDetector,
                                                          "center": None, "none": None}
assert tuple(DETECTOR_BUILDERS) == DETECTORS


def make_detector(name: str):
    """A detector object for ``mtcnn``/``haar``; None for the detector-free ``center``/``none``."""
    check_choice("detector", name, DETECTORS)
    builder = DETECTOR_BUILDERS[name]
    return builder() if builder is not None else None


def detect_downscaled(detector, frames: np.ndarray, max_side: int = DETECT_SIDE) -> list[Box | None]:
    """Detect on copies shrunk to ``max_side`` (MUG faces are large; detection cost grows with pixels),
    returning boxes in the original frames' pixels."""
    import cv2

    height, width = frames.shape[1:3]
    scale = max_side / max(height, width)
    if scale >= 1:
        return detector.detect(frames)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])
    factor_x, factor_y = width / size[0], height / size[1]
    return [None if b is None else (b[0] * factor_x, b[1] * factor_y, b[2] * factor_x, b[3] * factor_y)
            for b in detector.detect(small)]


def center_box(height: int, width: int, fraction: float = 1.0) -> Box:
    side = min(height, width) * fraction
    x1, y1 = (width - side) / 2, (height - side) / 2
    return (x1, y1, x1 + side, y1 + side)


def square_box(boxes: Sequence[Box], height: int, width: int, margin: float) -> Box:
    """One square box for a take: the median of the detections, enlarged by ``margin``, kept inside the frame.

    MUG faces barely move within a take, so a single box avoids frame-to-frame jitter.
    """
    x1, y1, x2, y2 = np.median(np.asarray(boxes, dtype=np.float64), axis=0)
    side = min(max(x2 - x1, y2 - y1) * (1.0 + margin), height, width)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    left = float(np.clip(cx - side / 2, 0, width - side))
    top = float(np.clip(cy - side / 2, 0, height - side))
    return (left, top, left + side, top + side)


def crop_and_resize(frames: np.ndarray, box: Box | None, image_size: int) -> np.ndarray:
    """Crop every frame to ``box`` (None = whole frame) and resize to a square ``image_size``.

    Area interpolation: the right filter for strong downscaling (no aliasing).
    """
    import cv2

    if box is not None:
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        frames = frames[:, y1:y2, x1:x2]
    out = np.empty((len(frames), image_size, image_size, 3), np.uint8)
    for i, frame in enumerate(frames):
        interpolation = cv2.INTER_AREA if frame.shape[0] >= image_size else cv2.INTER_CUBIC
        out[i] = cv2.resize(np.ascontiguousarray(frame), (image_size, image_size), interpolation=interpolation)
    return out


def face_box(probe: np.ndarray, detector_name: str, detector=None, margin: float = 0.3,
             center_fraction: float = 1.0) -> tuple[tuple | None, bool]:
    """One crop box for a take from its probe frames uint8 (K, H, W, 3): ``(box, face_found)``.

    ``box`` is None for ``none`` (whole frame); with no face found it is the centre box.
    """
    check_choice("detector", detector_name, DETECTORS)
    height, width = probe.shape[1:3]
    if detector_name == "none":
        return None, True
    if detector_name == "center":
        return center_box(height, width, center_fraction), True
    detector = detector if detector is not None else make_detector(detector_name)
    boxes = [b for b in detect_downscaled(detector, probe) if b is not None]
    if not boxes:
        return center_box(height, width, center_fraction), False
    return square_box(boxes, height, width, margin), True


def crop_frames(frames: np.ndarray, detector: str = "center", image_size: int = 64, margin: float = 0.3,
                center_fraction: float = 1.0, probe_frames: int = 5) -> tuple[np.ndarray, tuple | None, bool]:
    """In-memory version of the per-take crop: ``(uint8 (T, S, S, 3), box, face_found)``."""
    box, found = face_box(frames[:probe_frames], detector, margin=margin, center_fraction=center_fraction)
    return crop_and_resize(frames, box, image_size), box, found
