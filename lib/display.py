"""Videos a person can see in a notebook: 64x64 clips scaled up, labelled, as HTML5 MP4 with controls.

A labelled grid (input, real target, each model...) is tiled into *one* video, so its cells play in
sync by construction.  MP4 (H.264, what every browser's ``<video>`` plays) is written with the ffmpeg
binary that the ``imageio-ffmpeg`` wheel ships; where it is missing or fails, the same frames go out
as a GIF ``<img>`` (``fmt="gif"`` asks for that directly).
"""
from __future__ import annotations

import base64
import html
import io
import os
import tempfile
from typing import Any, Sequence

import numpy as np

from lib.config import check_choice
from lib.io import to_uint8_frames, video_grid

VIDEO_FORMATS = ("auto", "mp4", "gif")
# The notebooks' display parameters (name -> (default, help)): 03, 05 and 06 write them from here.
DISPLAY_PARAMETERS: dict[str, tuple[Any, str]] = {
    "video_scale": (4, "videos shown this many times their 64 px size"),
    "video_smooth": (False, "scale up smoothly (bicubic) instead of sharp pixels (nearest)"),
}
LABEL_HEIGHT = 18  # px of the label strips, after scaling
BACKGROUND = 255


def upscale(video: np.ndarray, scale: int, smooth: bool = False) -> np.ndarray:
    """uint8 (T, H, W, 3) frames ``scale`` times larger: pixel blocks, or bicubic when ``smooth``."""
    if not isinstance(scale, int) or isinstance(scale, bool) or scale < 1:
        raise ValueError(f"scale={scale!r} must be an integer >= 1")
    if scale == 1:
        return video
    if not smooth:
        return video.repeat(scale, axis=1).repeat(scale, axis=2)
    import cv2

    size = (video.shape[2] * scale, video.shape[1] * scale)
    return np.stack([cv2.resize(frame, size, interpolation=cv2.INTER_CUBIC) for frame in video])


def _draw_text(strip: np.ndarray, text: str, x_centre: int, max_width: int | None = None) -> None:
    import cv2

    font, size, thick = cv2.FONT_HERSHEY_SIMPLEX, 0.42, 1
    (width, height), _ = cv2.getTextSize(text, font, size, thick)
    if max_width and width > max_width:  # a long name under a narrow cell: smaller, not overlapping
        size *= max_width / width
        (width, height), _ = cv2.getTextSize(text, font, size, thick)
    x = int(max(0, min(strip.shape[1] - width, x_centre - width // 2)))
    cv2.putText(strip, text, (x, (strip.shape[0] + height) // 2), font, size, (0, 0, 0), thick, cv2.LINE_AA)


def labelled_grid(rows: Sequence[Sequence[Any]], column_labels: Sequence[str] | None = None,
                  row_labels: Sequence[str] | None = None, scale: int = 4, smooth: bool = False,
                  pad: int = 2) -> np.ndarray:
    """``rows[r][c]`` videos tiled into one uint8 video ``scale`` times larger, with a label strip above
    the columns and one left of the rows (drawn into the frames, so a saved file keeps them)."""
    grid = upscale(video_grid(rows, pad=pad), scale, smooth)
    cell_h = to_uint8_frames(rows[0][0]).shape[1] * scale
    cell_w = to_uint8_frames(rows[0][0]).shape[2] * scale
    step_h, step_w, offset = cell_h + pad * scale, cell_w + pad * scale, pad * scale
    frames, height = grid.shape[0], grid.shape[1]
    if row_labels:
        label_w = 8 * max(len(label) for label in row_labels) + 12
        side = np.full((height, label_w, 3), BACKGROUND, np.uint8)
        for r, label in enumerate(row_labels):
            band = side[offset + r * step_h: offset + r * step_h + cell_h]
            _draw_text(band, label, label_w // 2)
        grid = np.concatenate([np.broadcast_to(side, (frames, *side.shape)), grid], axis=2)
    else:
        label_w = 0
    if column_labels:
        top = np.full((LABEL_HEIGHT, grid.shape[2], 3), BACKGROUND, np.uint8)
        for c, label in enumerate(column_labels):
            _draw_text(top, label, label_w + offset + c * step_w + cell_w // 2, max_width=step_w - 4)
        grid = np.concatenate([np.broadcast_to(top, (frames, *top.shape)), grid], axis=1)
    return np.ascontiguousarray(grid)


def encode_mp4(video: np.ndarray, fps: float = 8.0) -> bytes:
    """H.264 MP4 bytes of uint8 (T, H, W, 3) frames (sizes padded to even numbers, as yuv420p needs)."""
    import imageio_ffmpeg

    video = to_uint8_frames(video)
    pad_h, pad_w = video.shape[1] % 2, video.shape[2] % 2
    if pad_h or pad_w:
        video = np.pad(video, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), constant_values=BACKGROUND)
    handle, path = tempfile.mkstemp(suffix=".mp4")
    os.close(handle)
    try:
        writer = imageio_ffmpeg.write_frames(path, (video.shape[2], video.shape[1]), fps=fps, codec="libx264",
                                             pix_fmt_out="yuv420p", quality=8, macro_block_size=1,
                                             output_params=["-movflags", "+faststart"])
        writer.send(None)
        for frame in video:
            writer.send(np.ascontiguousarray(frame))
        writer.close()
        with open(path, "rb") as file:
            return file.read()
    finally:
        os.unlink(path)


def encode_gif(video: np.ndarray, fps: float = 8.0) -> bytes:
    import imageio.v3 as iio

    buffer = io.BytesIO()
    iio.imwrite(buffer, to_uint8_frames(video), extension=".gif", duration=1000.0 / fps, loop=0)
    return buffer.getvalue()


def video_html(video: Any, fps: float = 8.0, fmt: str = "auto", title: str | None = None) -> str:
    """HTML that plays ``video`` (any layout :func:`lib.io.to_uint8_frames` takes) at its pixel size:
    a looping, muted ``<video>`` with controls (MP4), or a GIF ``<img>`` as the fallback."""
    check_choice("fmt", fmt, VIDEO_FORMATS)
    video = to_uint8_frames(video)
    height, width = video.shape[1:3]
    caption = f"<div style='font-weight:bold'>{html.escape(title)}</div>" if title else ""
    if fmt in ("auto", "mp4"):
        try:
            data = base64.b64encode(encode_mp4(video, fps)).decode()
            # JupyterLab renders outputs before they are shown, which leaves `autoplay` paused: start it on load
            return (f"{caption}<video width='{width}' height='{height}' autoplay loop muted playsinline controls "
                    "onloadeddata='this.muted = true; this.play()' style='image-rendering:pixelated'>"
                    f"<source type='video/mp4' src='data:video/mp4;base64,{data}'></video>")
        except Exception:  # no ffmpeg binary or no H.264 encoder: the GIF plays everywhere
            if fmt == "mp4":
                raise
    data = base64.b64encode(encode_gif(video, fps)).decode()
    return f"{caption}<img width='{width}' height='{height}' src='data:image/gif;base64,{data}'>"


def show_video(video: Any, fps: float = 8.0, scale: int = 4, smooth: bool = False, fmt: str = "auto",
               title: str | None = None):
    """An IPython HTML object playing one video ``scale`` times larger."""
    from IPython.display import HTML

    return HTML(video_html(upscale(to_uint8_frames(video), scale, smooth), fps, fmt, title))


def show_video_grid(rows: Sequence[Sequence[Any]], column_labels: Sequence[str] | None = None,
                    row_labels: Sequence[str] | None = None, fps: float = 8.0, scale: int = 4, smooth: bool = False,
                    fmt: str = "auto", title: str | None = None):
    """An IPython HTML object playing a labelled grid of videos in sync (one video; see :func:`labelled_grid`)."""
    from IPython.display import HTML

    grid = labelled_grid(rows, column_labels, row_labels, scale, smooth)
    return HTML(video_html(grid, fps, fmt, title))


def read_video(path: Any) -> np.ndarray:
    """uint8 (T, H, W, 3) frames of a GIF or MP4 file (e.g. a run's ``samples/latest.gif``)."""
    import imageio.v3 as iio

    frames = np.asarray(iio.imread(path, index=None))
    return np.ascontiguousarray(frames[..., :3]) if frames.ndim == 4 else frames[None, ..., :3]


def split_grid(video: np.ndarray, n_rows: int, pad: int = 2) -> list[list[np.ndarray]]:
    """The cells of a video tiled by :func:`lib.io.video_grid` with ``n_rows`` rows of square cells."""
    video = to_uint8_frames(video)
    cell = (video.shape[1] - pad) // n_rows - pad
    if cell < 1 or n_rows * (cell + pad) + pad != video.shape[1]:
        raise ValueError(f"a {video.shape[1]} px high grid is not {n_rows} rows of square cells with {pad} px gaps")
    n_cols = (video.shape[2] - pad) // (cell + pad)
    return [[video[:, pad + r * (cell + pad): pad + r * (cell + pad) + cell,
                   pad + c * (cell + pad): pad + c * (cell + pad) + cell] for c in range(n_cols)]
            for r in range(n_rows)]
