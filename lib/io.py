"""Atomic file writes, checkpoints (weights + the config that built them), stats logs, videos.

Everything that a crash could leave half-written goes through a temporary file in
the same folder and ``os.replace``, so a reader sees the old file or the new one.
"""
from __future__ import annotations

import errno
import glob
import io
import json
import os
import shutil
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any, Iterable, Mapping, TypeVar

import numpy as np

from lib.config import from_dict, to_dict
from lib.locks import pid_alive

T = TypeVar("T")


_UMASK = os.umask(0)
os.umask(_UMASK)


STALE_TEMP_SECONDS = 24 * 3600  # a temp file this old is stale even if its pid is alive (reused, or another host)


def _temp_prefix(path: Path) -> str:
    return f".{path.name}.pid"


def sweep_stale_temps(path: str | Path) -> list[Path]:
    """Remove temp files that killed writers of ``path`` left behind (their pid is gone, or they are
    older than a day); a live writer's temp file is kept.  Returns what was removed."""
    path = Path(path)
    removed = []
    prefix = _temp_prefix(path)
    for temp in path.parent.glob(f"{glob.escape(prefix)}*.tmp"):
        pid = temp.name[len(prefix):].split(".", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            if not pid_alive(int(pid)) or time.time() - temp.stat().st_mtime > STALE_TEMP_SECONDS:
                temp.unlink()
                removed.append(temp)
        except FileNotFoundError:  # another writer swept it first
            continue
    return removed


# The errors of a full disk, a read-only file system and a folder one may not write to
UNWRITABLE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


class UnwritableError(OSError):
    """A write that a full disk or an unwritable folder refused; the message names the folder, the space the
    write needed and the fix. The file it would have replaced is untouched (atomic writes) and no partial file
    is left, so running the same command again once there is room resumes from the last good checkpoint."""


def unwritable(error: OSError, path: Path, needed: int) -> UnwritableError:
    folder = path.parent
    try:
        free = f"{shutil.disk_usage(folder).free / 1e6:.1f} MB free"
    except OSError:
        free = "free space unknown"
    reason = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is used up",
              errno.EROFS: "the file system is read-only"}.get(error.errno, "the folder is not writable")
    fix = ("free some space" if error.errno in (errno.ENOSPC, errno.EDQUOT) else
           "make the folder writable or point VICE_RUNS_DIR / VICE_DATA_DIR elsewhere")
    return UnwritableError(error.errno, f"cannot write {path.name} in {folder}: {reason} ({needed / 1e6:.2f} MB "
                                        f"needed, {free}); the last good file is kept: {fix} and run the same "
                                        "command again to resume")


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write through a temp file ``.<name>.pid<pid>.<random>.tmp`` in the same folder and ``os.replace``:
    readers see the old file or the new one; the temp file is removed on failure, and ones left
    by killed writers are swept here, at the next write of the same file."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        sweep_stale_temps(path)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{_temp_prefix(path)}{os.getpid()}.", suffix=".tmp")
    except OSError as error:
        if error.errno in UNWRITABLE_ERRNOS and not isinstance(error, UnwritableError):
            raise unwritable(error, path, len(data)) from error
        raise
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual permissions
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(error, OSError) and error.errno in UNWRITABLE_ERRNOS and not isinstance(error, UnwritableError):
            raise unwritable(error, path, len(data)) from error
        raise
    return path


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def atomic_write_json(path: str | Path, data: Any) -> Path:
    text = json.dumps(data, indent=2, sort_keys=False, default=_json_default)
    return atomic_write_bytes(path, (text + "\n").encode())


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode())


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


class CheckpointError(RuntimeError):
    """A checkpoint or weights file cannot be read safely: damaged, or not plain tensors and containers."""


# The format of the checkpoints and run-folder configs this code writes.  One written by another version is
# refused with the version that wrote it and the fix (re-run): no code here converts older formats.
# 1: everything written before the version was recorded; 2: one config class of every option of every system;
# 3: each system's own options (lib.train.options)
FORMAT_VERSION = 3


class FormatVersionError(CheckpointError):
    """A checkpoint or run config written by another format version of this repository."""


def check_format(stored: Mapping[str, Any], path: str | Path) -> None:
    """Raise :class:`FormatVersionError` unless ``stored`` (a checkpoint or a run's config.json) has this
    code's :data:`FORMAT_VERSION`; a file without one was written by version 1."""
    version = stored.get("format_version", 1)
    if version != FORMAT_VERSION:
        raise FormatVersionError(
            f"{path} was written by format version {version} of this repository; this version reads format "
            f"{FORMAT_VERSION} only. Delete its run folder and run it again (03_train, or `make demo`), "
            "or check out the version that wrote it to use it as it is")


def plain_state(value: Any) -> Any:
    """``value`` with NumPy arrays/scalars and paths turned into tensors, Python numbers and strings, so
    that ``torch.load(weights_only=True)`` reads it back (it refuses arbitrary pickled objects)."""
    import torch

    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {key: plain_state(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain_state(item) for item in value)
    return value


def save_checkpoint(path: str | Path, state: Mapping[str, Any], config: Any = None) -> Path:
    """Save ``state`` (state dicts, step, RNG states...) plus the config that built the model.

    ``config`` may be a dataclass (stored as a dict with its class name) or a dict.  Everything is
    stored as tensors and plain containers (:func:`plain_state`), so loading needs no unpickling of code.
    """
    import torch

    payload = {**state, "format_version": FORMAT_VERSION}
    if config is not None:
        cfg = to_dict(config) if hasattr(config, "__dataclass_fields__") else dict(config)
        payload["config"] = cfg
        payload["config_class"] = type(config).__name__
    buffer = io.BytesIO()
    torch.save(plain_state(payload), buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | Path, map_location: str = "cpu", fix: str = "") -> dict[str, Any]:
    """A checkpoint or weights file, read with ``weights_only=True`` (a crafted pickle cannot run code).

    A damaged file or one holding other objects raises :class:`CheckpointError` naming the path and
    the fix (``fix``: what the caller's user should do, e.g. delete the file to retrain)."""
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    fix = fix or f"delete {path} and train again"
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        if not zipfile.is_zipfile(path):  # torch.save writes zip archives; a cut or overwritten one is not
            raise CheckpointError(f"{path} is damaged or truncated (not a readable torch archive); {fix}") from None
        raise CheckpointError(
            f"{path} holds objects other than tensors and plain containers, so it is not loaded (loading it "
            f"could run code); {fix}. ({str(error).splitlines()[0]})") from None
    except Exception as error:
        # Random bytes that are not a torch archive go to torch's legacy unpickler, which can fail with any
        # error (IndexError, KeyError...): every failure on a non-archive is damage.
        if not (isinstance(error, (RuntimeError, EOFError, OSError, ValueError)) or not zipfile.is_zipfile(path)):
            raise
        raise CheckpointError(f"{path} is damaged or truncated ({type(error).__name__}: "
                              f"{str(error).splitlines()[0] if str(error) else 'no detail'}); {fix}") from None
    if isinstance(state, dict) and ("config_class" in state or "format_version" in state):  # one of ours
        check_format(state, path)
    return state


class StatsWriter:
    """Append-only ``stats.jsonl``: one JSON object per line, flushed at once."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: Mapping[str, Any]) -> None:
        line = json.dumps({"time": round(time.time(), 3), **record}, default=_json_default) + "\n"
        size = self.path.stat().st_size if self.path.exists() else 0
        try:
            with open(self.path, "a") as handle:
                handle.write(line)
                handle.flush()
        except OSError as error:  # a full disk may have taken half a line: cut the file back to whole records
            if self.path.exists() and self.path.stat().st_size > size:
                os.truncate(self.path, size)
            if error.errno in UNWRITABLE_ERRNOS:
                raise unwritable(error, self.path, len(line)) from error
            raise

    def truncate_after(self, key: str, value: float) -> None:
        """Drop records with ``record[key] > value`` (used on resume, so no step is logged twice)."""
        if not self.path.exists():
            return
        keep = [r for r in read_jsonl(self.path) if r.get(key, -np.inf) <= value]
        atomic_write_text(self.path, "".join(json.dumps(r, default=_json_default) + "\n" for r in keep))


def open_run_log(config: Any, run_dir: str | Path, step: int) -> StatsWriter:
    """Write a training run's ``config.json`` and open its ``stats.jsonl`` with the records after ``step``
    dropped (a resumed run logs no step twice)."""
    save_config(config, Path(run_dir) / "config.json")
    stats = StatsWriter(Path(run_dir) / "stats.jsonl")
    stats.truncate_after("step", step)
    return stats


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:  # a torn last line after a crash
                continue
    return records


def to_uint8_frames(frames: Any) -> np.ndarray:
    """Frames as uint8 (T, H, W, 3) from a tensor/array in [-1, 1] (float) or uint8.

    Accepts (T, H, W, 3), (T, 3, H, W) or (3, T, H, W) (the video discriminator layout).
    """
    array = frames.detach().cpu().numpy() if hasattr(frames, "detach") else np.asarray(frames)
    if array.ndim != 4:
        raise ValueError(f"expected a 4-d video array, got shape {array.shape}")
    if array.shape[-1] != 3:
        if array.shape[1] == 3:
            array = array.transpose(0, 2, 3, 1)
        elif array.shape[0] == 3:
            array = array.transpose(1, 2, 3, 0)
        else:
            raise ValueError(f"cannot find the colour axis in shape {array.shape}")
    if array.dtype != np.uint8:
        array = np.clip((array.astype(np.float32) + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(array)


def video_grid(rows: Iterable[Iterable[Any]], pad: int = 2) -> np.ndarray:
    """Tile videos into one video: ``rows[r][c]`` is a video; returns uint8 (T, H', W', 3).

    Videos of different lengths are padded by repeating their last frame.
    """
    rows = [[to_uint8_frames(v) for v in row] for row in rows]
    length = max(v.shape[0] for row in rows for v in row)
    height, width = rows[0][0].shape[1:3]
    n_rows, n_cols = len(rows), max(len(row) for row in rows)
    canvas = np.full((length, n_rows * (height + pad) + pad, n_cols * (width + pad) + pad, 3), 255, np.uint8)
    for r, row in enumerate(rows):
        for c, video in enumerate(row):
            idx = np.minimum(np.arange(length), video.shape[0] - 1)
            y, x = pad + r * (height + pad), pad + c * (width + pad)
            canvas[:, y:y + height, x:x + width] = video[idx]
    return canvas


def write_gif(frames: Any, path: str | Path, fps: float = 8.0, scale: int = 1) -> Path:
    """Write a video (see :func:`to_uint8_frames`) as a looping GIF, atomically."""
    import imageio.v3 as iio

    video = to_uint8_frames(frames)
    if scale > 1:
        video = video.repeat(scale, axis=1).repeat(scale, axis=2)
    buffer = io.BytesIO()
    iio.imwrite(buffer, video, extension=".gif", duration=1000.0 / fps, loop=0)
    return atomic_write_bytes(path, buffer.getvalue())


def show_gif(path: str | Path):
    """An IPython object that shows a GIF inline in a notebook (embedded, so it survives export)."""
    from IPython.display import Image

    return Image(data=Path(path).read_bytes(), format="gif")


def save_config(config: Any, path: str | Path) -> Path:
    """A config dataclass as JSON (with its class name and :data:`FORMAT_VERSION`), written atomically."""
    return atomic_write_json(path, {"class": type(config).__name__, "format_version": FORMAT_VERSION,
                                    **to_dict(config)})


def read_run_config(path: str | Path) -> dict[str, Any]:
    """A run folder's ``config.json`` as a dict, its format version checked (:func:`check_format`)."""
    data = read_json(path)
    check_format(data, path)
    return data


def load_config(cls: type[T], path: str | Path) -> T:
    """A config saved by :func:`save_config` (run folders' configs are checked by :func:`check_format` where
    they are read as runs; a cache's carry the cache's own format version in its name)."""
    data = json.loads(Path(path).read_text())
    data.pop("class", None)
    data.pop("format_version", None)
    return from_dict(cls, data)
