"""Thin-plate warps between faces (lib.data.face_warp), behind the ``template_alignment`` recipe option."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data
import torch

from lib.data.face_warp import FaceShapeReader, ShapeAligner, border_points, sampling_grid

SIZE = 64


def _face_points(seed: int = 0) -> np.ndarray:
    """68 distinct whole-pixel points over the middle of a 64 px frame, as a face's are."""
    lattice = np.stack(np.meshgrid(np.arange(16, 49, 4), np.arange(16, 49, 4)), -1).reshape(-1, 2)
    return lattice[np.random.default_rng(seed).permutation(len(lattice))[:68]].astype(np.float64)


def _moved(points: np.ndarray) -> np.ndarray:
    """The points of a face 10% larger and 3 px right, 2 px up."""
    return (points - 32.0) * 1.1 + 32.0 + np.array([3.0, -2.0])


def _to_pixels(grid: np.ndarray) -> np.ndarray:
    return ((grid + 1.0) * SIZE - 1.0) / 2.0  # normalised (align_corners=False) -> pixel centres


def test_equal_point_sets_give_the_identity_warp():
    grid = sampling_grid(_face_points(), _face_points(), SIZE, smoothing=0.0)
    identity = torch.nn.functional.affine_grid(torch.eye(2, 3)[None], [1, 1, SIZE, SIZE], align_corners=False)[0]
    np.testing.assert_allclose(grid, identity.numpy(), atol=1e-4)


def test_each_output_landmark_samples_its_source_landmark_and_the_border_stays():
    output = _face_points(0)
    source = _moved(output)
    pixels = _to_pixels(sampling_grid(output, source, SIZE, smoothing=0.0))
    at_landmarks = np.asarray([pixels[int(y), int(x)] for x, y in output])
    np.testing.assert_allclose(at_landmarks, source, atol=1e-3)  # smoothing 0: the spline interpolates
    smoothed = _to_pixels(sampling_grid(output, source, SIZE))
    assert np.abs(np.asarray([smoothed[int(y), int(x)] for x, y in output]) - source).max() < 0.5
    for x, y in border_points(SIZE).astype(int):
        np.testing.assert_allclose(pixels[y, x], [x, y], atol=0.02)


def test_a_warped_image_moves_a_mark_from_the_source_landmark_to_the_output_landmark():
    output = _face_points(2)
    source = _moved(output)
    image = np.zeros((1, 1, SIZE, SIZE), np.float32)
    x, y = np.round(source[30]).astype(int)
    image[0, 0, y, x] = 1.0
    grid = torch.from_numpy(sampling_grid(output, source, SIZE, smoothing=0.0))[None]
    warped = torch.nn.functional.grid_sample(torch.from_numpy(image), grid, align_corners=False)[0, 0].numpy()
    peak = np.unravel_index(warped.argmax(), warped.shape)
    assert np.hypot(peak[1] - output[30, 0], peak[0] - output[30, 1]) <= 1.0


def test_the_aligner_reads_dlib_once_per_frame_and_maps_the_shape_onto_the_face():
    face = cv2.resize(np.ascontiguousarray(skimage.data.astronaut()[30:230, 130:310]), (SIZE, SIZE))
    points = FaceShapeReader().points(face)
    assert points.shape == (68, 2) and (points > 0).all() and (points < SIZE).all()
    shape = points + 2.0  # the mean face 2 px right of and below this face
    aligner = ShapeAligner(shape, SIZE)
    calls = []
    original = aligner.reader.predictor.clip_in_frame_pixels
    aligner.reader.predictor.clip_in_frame_pixels = lambda frames: calls.append(1) or original(frames)
    grids = aligner.grids(np.stack([face, face]))
    assert grids.shape == (2, SIZE, SIZE, 2) and len(calls) == 1
    # at this face's landmarks, the grid samples the template 2 px right and below
    centre = np.round(points[27:36].mean(0)).astype(int)  # the nose
    np.testing.assert_allclose(_to_pixels(grids[0])[centre[1], centre[0]], centre + 2.0, atol=0.6)
    assert aligner.matches(shape, SIZE) and not aligner.matches(shape + 1, SIZE)


def test_point_sets_of_the_wrong_shape_are_refused():
    with pytest.raises(ValueError, match="68, 2"):
        sampling_grid(np.zeros((5, 2)), np.zeros((68, 2)), SIZE)
