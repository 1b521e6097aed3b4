"""Videos shown in the notebooks: scaled up, labelled, MP4 that decodes back to the frames, GIF fallback."""
from __future__ import annotations

import base64
import re

import numpy as np
import pytest

from lib.display import (encode_mp4, labelled_grid, read_video, split_grid, upscale, video_html)
from lib.io import video_grid


def _video(seed=0, t=4, size=8):
    return np.random.default_rng(seed).integers(0, 256, (t, size, size, 3), dtype=np.uint8)


def test_upscale_nearest_repeats_pixels_and_smooth_keeps_size():
    video = _video()
    big = upscale(video, 4)
    assert big.shape == (4, 32, 32, 3) and np.array_equal(big[:, ::4, ::4], video)
    assert np.array_equal(big[:, 3::4, 3::4], video)  # whole 4x4 blocks
    smooth = upscale(video, 4, smooth=True)
    assert smooth.shape == big.shape and not np.array_equal(smooth, big)
    with pytest.raises(ValueError, match="scale"):
        upscale(video, 0)


def test_split_grid_inverts_video_grid():
    rows = [[_video(r * 3 + c) for c in range(3)] for r in range(2)]
    cells = split_grid(video_grid(rows), n_rows=2)
    assert all(np.array_equal(cells[r][c], rows[r][c]) for r in range(2) for c in range(3))
    with pytest.raises(ValueError, match="rows"):
        split_grid(video_grid(rows), n_rows=3)


def test_labelled_grid_adds_label_strips_and_keeps_cells_in_sync():
    rows = [[_video(1), _video(2)], [_video(3), _video(4)]]
    plain = upscale(video_grid(rows), 4)
    grid = labelled_grid(rows, ["input", "model"], ["anger", "fear"], scale=4)
    assert grid.shape[0] == 4 and grid.shape[1] > plain.shape[1] and grid.shape[2] > plain.shape[2]
    top, left = grid.shape[1] - plain.shape[1], grid.shape[2] - plain.shape[2]
    assert np.array_equal(grid[:, top:, left:], plain)  # one video: every cell on the same frame clock
    assert (grid[0, :top] < 128).any() and (grid[0, top:, :left] < 128).any()  # text drawn in the strips


def test_mp4_decodes_to_the_frames_and_html_plays_it():
    video = upscale(np.repeat(np.linspace(0, 255, 16, dtype=np.uint8)[None, None, :, None], 6, 0).repeat(16, 1)
                    .repeat(3, 3), 4)
    data = encode_mp4(video, fps=8)
    assert data[4:8] == b"ftyp"
    html = video_html(video)
    assert "<video" in html and "controls" in html and "loop" in html
    payload = base64.b64decode(re.search(r"base64,([^']+)'", html).group(1))
    path = __import__("pathlib").Path(__import__("tempfile").mkdtemp()) / "v.mp4"
    path.write_bytes(payload)
    decoded = read_video(path)
    assert decoded.shape == video.shape
    assert np.abs(decoded.astype(int) - video.astype(int)).mean() < 4  # lossy, but the same picture


def test_gif_fallback_when_mp4_cannot_be_written(monkeypatch):
    import lib.display as display

    def broken(*args, **kwargs):
        raise RuntimeError("no ffmpeg here")

    monkeypatch.setattr(display, "encode_mp4", broken)
    assert "image/gif" in video_html(_video())
    with pytest.raises(RuntimeError, match="no ffmpeg"):
        video_html(_video(), fmt="mp4")
    with pytest.raises(Exception, match="valid choices"):
        video_html(_video(), fmt="webm")
