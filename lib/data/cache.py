"""The preprocessed dataset: all frames of all kept videos in one uint8 array plus an index.

On disk a cache folder holds ``cache.npz`` (uncompressed, so its frame array can be
memory-mapped), ``meta.json`` (parameters, fingerprint, report) and ``split.json``.
"""
from __future__ import annotations

import dataclasses
import json
import zipfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from lib.constants import EMOTION_TO_INDEX, EMOTIONS
from lib.config import check_choice

CACHE_FILE = "cache.npz"
META_FILE = "meta.json"
SPLIT_FILE = "split.json"
INDEX_COLUMNS = ("video_id", "subject", "emotion", "label", "take", "session", "start", "length", "source")


class VideoCache:
    """Frames ``(N_frames, H, W, 3)`` uint8 and ``index`` (one row per video).

    Optional ground truth of the synthetic benchmark: ``au`` ``(N_frames, K)`` float32
    (NaN where a take had none) named by ``au_names``, and ``identities``
    ``{subject: vector}`` named by ``identity_names``.
    """

    def __init__(self, frames: np.ndarray, index: pd.DataFrame, meta: Mapping[str, Any] | None = None,
                 au: np.ndarray | None = None, au_names: Sequence[str] = (),
                 identities: Mapping[str, np.ndarray] | None = None, identity_names: Sequence[str] = (),
                 split=None, path: Path | None = None):
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"frames must be uint8 (N, H, W, 3), got {frames.dtype} {frames.shape}")
        missing = [c for c in INDEX_COLUMNS if c not in index.columns]
        if missing:
            raise ValueError(f"index lacks columns {missing}")
        end = int((index["start"] + index["length"]).max()) if len(index) else 0
        if end > len(frames):
            raise ValueError(f"index refers to frame {end} but only {len(frames)} frames are stored")
        self.frames = frames
        self.index = index.reset_index(drop=True)
        self.meta = dict(meta or {})
        self.au = au
        self.au_names = list(au_names)
        self.identities = {k: np.asarray(v, np.float32) for k, v in (identities or {}).items()}
        self.identity_names = list(identity_names)
        self.split = split
        self.path = path
        self._starts = self.index["start"].to_numpy(np.int64)
        self._lengths = self.index["length"].to_numpy(np.int64)

    # -- construction ---------------------------------------------------------------
    @classmethod
    def from_videos(cls, videos: Sequence[np.ndarray], subjects: Sequence[str], emotions: Sequence[str],
                    takes: Sequence[str] | None = None, sessions: Sequence[str | None] | None = None,
                    au: Sequence[np.ndarray] | None = None, au_names: Sequence[str] = (),
                    identities: Mapping[str, np.ndarray] | None = None, identity_names: Sequence[str] = (),
                    meta: Mapping[str, Any] | None = None, split=None) -> "VideoCache":
        """Build a cache in memory (tests, other engineers' fixtures): one uint8 (T, H, W, 3) per video."""
        if not (len(videos) == len(subjects) == len(emotions)):
            raise ValueError("videos, subjects and emotions must have the same length")
        for emotion in emotions:
            check_choice("emotion", emotion, EMOTIONS)
        takes = list(takes) if takes is not None else [f"take{i:03d}" for i in range(len(videos))]
        sessions = list(sessions) if sessions is not None else [None] * len(videos)
        lengths = [len(v) for v in videos]
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64) if videos else np.zeros(0, np.int64)
        index = pd.DataFrame({
            "video_id": np.arange(len(videos), dtype=np.int64),
            "subject": [str(s) for s in subjects],
            "emotion": list(emotions),
            "label": [EMOTION_TO_INDEX[e] for e in emotions],
            "take": takes,
            "session": [s or "" for s in sessions],
            "start": starts,
            "length": np.asarray(lengths, np.int64),
            "source": [f"{s}/{e}/{t}" for s, e, t in zip(subjects, emotions, takes)],
        })
        frames = np.concatenate([np.asarray(v, np.uint8) for v in videos]) if videos else np.zeros((0, 1, 1, 3), np.uint8)
        au_array = np.concatenate([np.asarray(a, np.float32) for a in au]) if au is not None else None
        return cls(frames, index, meta=meta, au=au_array, au_names=au_names, identities=identities,
                   identity_names=identity_names, split=split)

    # -- access -----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.index)

    @property
    def image_size(self) -> int:
        return int(self.frames.shape[1])

    @property
    def subjects(self) -> list[str]:
        return sorted(self.index["subject"].unique())

    @property
    def labels(self) -> np.ndarray:
        return self.index["label"].to_numpy(np.int64)

    def length(self, video_id: int) -> int:
        return int(self._lengths[video_id])

    def video(self, video_id: int, frame_indices: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """uint8 (T, H, W, 3) frames of one video (all, or the given frame numbers); a writable copy
        even when the cache is memory-mapped."""
        start, length = int(self._starts[video_id]), int(self._lengths[video_id])
        if frame_indices is None:
            return np.array(self.frames[start:start + length])
        frame_indices = np.asarray(frame_indices, np.int64)
        if frame_indices.size and (frame_indices.min() < 0 or frame_indices.max() >= length):
            raise IndexError(f"frame indices out of range for video {video_id} of length {length}")
        return np.array(self.frames[start + frame_indices])

    def video_au(self, video_id: int) -> np.ndarray | None:
        """Ground-truth action-unit intensities (T, K) of one video, or None without ground truth."""
        if self.au is None:
            return None
        start, length = int(self._starts[video_id]), int(self._lengths[video_id])
        return np.array(self.au[start:start + length])

    def identity_vector(self, subject: str) -> np.ndarray | None:
        return self.identities.get(str(subject))

    def videos_of(self, subject: str | None = None, emotion: str | None = None) -> np.ndarray:
        """Video ids filtered by subject and/or emotion."""
        mask = np.ones(len(self.index), bool)
        if subject is not None:
            mask &= (self.index["subject"] == str(subject)).to_numpy()
        if emotion is not None:
            check_choice("emotion", emotion, EMOTIONS)
            mask &= (self.index["emotion"] == emotion).to_numpy()
        return self.index["video_id"].to_numpy(np.int64)[mask]

    def with_training_subjects(self, other: "VideoCache", prefix: str) -> "VideoCache":
        """This cache plus every video of ``other`` (an independent dataset), whose subjects are renamed
        ``prefix + subject`` and added to the split's training subjects: more faces to train the measuring
        instruments on, while this cache's test subjects stay unseen.  Frames are copied into memory."""
        if self.split is None:
            raise ValueError("this cache has no subject split; run 01 first")
        if other.image_size != self.image_size or (self.au is None) != (other.au is None) \
                or (self.au is not None and list(other.au_names) != list(self.au_names)):
            raise ValueError(f"cannot pool {other} into {self}: image size or ground-truth AUs differ")
        added = other.index.copy()
        added["subject"] = prefix + added["subject"].astype(str)
        added["start"] = added["start"] + len(self.frames)
        added["video_id"] = added["video_id"] + len(self.index)
        identities = {**self.identities, **{prefix + k: v for k, v in other.identities.items()}}
        split = dataclasses.replace(self.split, train_subjects=[*self.split.train_subjects,
                                                                *sorted(set(added["subject"]))])
        return VideoCache(np.concatenate([np.asarray(self.frames), np.asarray(other.frames)]),
                          pd.concat([self.index, added], ignore_index=True),
                          {**self.meta, "pooled_with": str(other.path or "")},
                          None if self.au is None else np.concatenate([self.au, other.au]), self.au_names,
                          identities, self.identity_names, split)

    def __repr__(self) -> str:
        where = f" at {self.path}" if self.path else ""
        return (f"VideoCache({len(self)} videos, {len(self.subjects)} subjects, {len(self.frames)} frames "
                f"{self.image_size}x{self.image_size}{where})")


# -- storage ---------------------------------------------------------------------------
def save_cache_file(path: str | Path, cache: VideoCache) -> Path:
    """Write ``cache.npz`` (uncompressed so the frames can be memory-mapped). Not atomic by itself:
    :func:`lib.data.preprocess.build_cache` writes into a temporary folder and renames it."""
    index = cache.index
    arrays: dict[str, np.ndarray] = {
        "frames": cache.frames,
        **{f"index_{c}": index[c].to_numpy(np.int64) for c in ("video_id", "label", "start", "length")},
        **{f"index_{c}": index[c].astype(str).to_numpy().astype(str) for c in ("subject", "emotion", "take", "session", "source")},
    }
    if cache.au is not None:
        arrays["au"] = np.asarray(cache.au, np.float32)
        arrays["au_names"] = np.asarray(cache.au_names, dtype=str)
    if cache.identities:
        subjects = sorted(cache.identities)
        arrays["identity_subjects"] = np.asarray(subjects, dtype=str)
        arrays["identity_vectors"] = np.stack([cache.identities[s] for s in subjects]).astype(np.float32)
        arrays["identity_names"] = np.asarray(cache.identity_names, dtype=str)
    path = Path(path)
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)
    return path


def _memmap_npz_member(path: Path, name: str) -> np.ndarray | None:
    """Memory-map an uncompressed array inside an .npz (None if it is compressed)."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(f"{name}.npy")
        if info.compress_type != zipfile.ZIP_STORED:
            return None
    with open(path, "rb") as handle:
        handle.seek(info.header_offset)
        local_header = handle.read(30)
        name_length = int.from_bytes(local_header[26:28], "little")
        extra_length = int.from_bytes(local_header[28:30], "little")
        handle.seek(info.header_offset + 30 + name_length + extra_length)
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
        else:
            return None
        offset = handle.tell()
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")


class DamagedCacheError(RuntimeError):
    """A cache folder's files fail their checksums or do not parse; 01_preprocess rebuilds it."""


_VERIFIED: set[tuple[str, int, int]] = set()  # (file, size, mtime): verified once per process


def _damaged(path: Path, why: str) -> DamagedCacheError:
    return DamagedCacheError(f"{path} is damaged ({why}); re-run notebooks/01_preprocess.ipynb with the same "
                             f"parameters (it rebuilds a damaged cache) or delete {path.parent}")


def verify_cache_folder(folder: str | Path) -> None:
    """Check ``cache.npz`` against the CRC32 that the zip format records for every member at write
    time (every byte is read: 0.12 s for the 115 MB of ``small``), and that ``meta.json`` and
    ``split.json`` parse.  Raises :class:`DamagedCacheError` naming the file and the fix."""
    folder = Path(folder).expanduser()
    file = folder / CACHE_FILE
    stat = file.stat()
    key = (str(file.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _VERIFIED:
        try:
            with zipfile.ZipFile(file) as archive:
                bad = archive.testzip()
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            raise _damaged(file, f"{type(error).__name__}: {error}") from None
        if bad is not None:
            raise _damaged(file, f"member {bad} fails its CRC32 check")
        _VERIFIED.add(key)
    for name in (META_FILE, SPLIT_FILE):
        if (folder / name).is_file():
            try:
                json.loads((folder / name).read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as error:
                raise _damaged(folder / name, f"not valid JSON: {error}") from None


def load_cache(path: str | Path, mmap: bool = True) -> VideoCache:
    """Open a cache folder written by :func:`lib.data.preprocess.build_cache` (frames memory-mapped),
    after :func:`verify_cache_folder`."""
    from lib.data.splits import load_split

    folder = Path(path).expanduser()
    file = folder / CACHE_FILE
    if not file.is_file():
        raise FileNotFoundError(
            f"no {CACHE_FILE} in {folder}; build one with notebooks/01_preprocess.ipynb "
            "(or lib.data.locate.prepare_dataset)")
    verify_cache_folder(folder)
    with np.load(file, allow_pickle=False) as data:
        names = set(data.files)
        index = pd.DataFrame({c: data[f"index_{c}"] for c in INDEX_COLUMNS})
        frames = _memmap_npz_member(file, "frames") if mmap else None
        if frames is None:
            frames = data["frames"]
        au = data["au"] if "au" in names else None
        au_names = [str(n) for n in data["au_names"]] if "au_names" in names else []
        identities, identity_names = {}, []
        if "identity_vectors" in names:
            identities = dict(zip((str(s) for s in data["identity_subjects"]), data["identity_vectors"]))
            identity_names = [str(n) for n in data["identity_names"]]
    meta = json.loads((folder / META_FILE).read_text()) if (folder / META_FILE).is_file() else {}
    split = load_split(folder / SPLIT_FILE) if (folder / SPLIT_FILE).is_file() else None
    return VideoCache(frames, index, meta=meta, au=au, au_names=au_names, identities=identities,
                      identity_names=identity_names, split=split, path=folder)


def emotion_statistics(cache: VideoCache) -> pd.DataFrame:
    """Videos, subjects and frames per emotion (rows in ``EMOTIONS`` order), as in the thesis's Fig. 6."""
    grouped = cache.index.groupby("emotion")
    table = pd.DataFrame({
        "videos": grouped.size(),
        "subjects": grouped["subject"].nunique(),
        "frames": grouped["length"].sum(),
    }).reindex(list(EMOTIONS)).fillna(0).astype(int)
    table.index.name = "emotion"
    return table
