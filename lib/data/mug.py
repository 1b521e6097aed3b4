"""Reader for the MUG Facial Expression Database layout (also written by the synthetic benchmark).

Layout::

    <root>/<subject>/[session0|session1/]<emotion>/<take>/img_NNNN.jpg

``<subject>`` is a number (MUG: three digits), ``<emotion>`` one of the seven MUG
folders, ``<take>`` ``take000``..``take007`` optionally suffixed (``take000end``,
``take001nsg``).  Anything else (``.avi`` files, ``Thumbs.db``, ``identity.json``)
is ignored.  Frames are ordered by their number, not lexically.

The synthetic benchmark adds ground truth beside the frames: ``truth.npz`` per take
and ``identity.json`` per subject, read by :func:`read_truth` / :func:`read_identity`.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lib.constants import EMOTIONS, MUG_EMOTION_FOLDERS, NEUTRAL

SUBJECT_PATTERN = re.compile(r"^\d+$")
SESSION_PATTERN = re.compile(r"^session\d+$", re.IGNORECASE)
TAKE_PATTERN = re.compile(r"^take(\d+)([A-Za-z_]*)$")
FRAME_PATTERN = re.compile(r"^img_(\d+)\.(jpe?g|png|bmp)$", re.IGNORECASE)
NSG_SUFFIX = "nsg"  # MUG's marker for takes that the public code discards
TRUTH_FILE = "truth.npz"
IDENTITY_FILE = "identity.json"
SYNTHETIC_META_FILE = "synthetic_meta.json"

EXPECTED_LAYOUT = """expected the MUG layout:
    <root>/<subject, e.g. 001>/<emotion>/<take, e.g. take000>/img_0000.jpg
    (optionally <root>/<subject>/session0/<emotion>/... for multi-session subjects)
    emotion folders: """ + ", ".join(MUG_EMOTION_FOLDERS)


class MugLayoutError(FileNotFoundError):
    """The folder is missing or holds no videos in the MUG layout (the message shows the layout)."""


class CorruptVideoError(RuntimeError):
    """A frame of a video could not be decoded (or its size differs from the others)."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"cannot read frame {path}: {reason}")
        self.path = Path(path)
        self.reason = reason


@dataclass(frozen=True)
class VideoRecord:
    """One take: its identity in the tree and its frame files in frame-number order."""

    subject: str
    emotion: str
    take: str
    session: str | None
    frame_paths: tuple[Path, ...]

    @property
    def n_frames(self) -> int:
        return len(self.frame_paths)

    @property
    def folder(self) -> Path:
        return self.frame_paths[0].parent

    @property
    def key(self) -> str:
        """``subject[/session]/emotion/take``: unique within a tree."""
        parts = [self.subject] + ([self.session] if self.session else []) + [self.emotion, self.take]
        return "/".join(parts)

    @property
    def is_nsg(self) -> bool:
        return self.take.lower().endswith(NSG_SUFFIX)


@dataclass(frozen=True)
class SkippedItem:
    path: str
    reason: str


@dataclass
class ScanResult:
    """What :func:`scan_mug` found: videos of the six emotions, neutral ones apart, and what it skipped."""

    root: Path
    videos: list[VideoRecord]
    neutral: list[VideoRecord]
    skipped: list[SkippedItem] = field(default_factory=list)

    @property
    def subjects(self) -> list[str]:
        return sorted({v.subject for v in self.videos})

    @property
    def is_synthetic(self) -> bool:
        return (self.root / SYNTHETIC_META_FILE).is_file()

    def counts(self) -> dict[str, Any]:
        per_emotion = {e: sum(v.emotion == e for v in self.videos) for e in EMOTIONS}
        return {
            "videos": len(self.videos),
            "neutral_videos": len(self.neutral),
            "subjects": len(self.subjects),
            "frames": sum(v.n_frames for v in self.videos),
            "skipped": len(self.skipped),
            "videos_per_emotion": per_emotion,
        }


def _subfolders(folder: Path) -> list[Path]:
    """Sub-folders in name order; hidden ones (.ipynb_checkpoints, a generator's unfinished take) are not data."""
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _frame_files(folder: Path) -> tuple[Path, ...]:
    numbered = []
    for path in folder.iterdir():
        match = FRAME_PATTERN.match(path.name)
        if match and path.is_file():
            numbered.append((int(match.group(1)), path))
    # By number: img_0002 before img_0010 even if a writer forgot the zero padding.
    return tuple(path for _, path in sorted(numbered))


def _scan_emotion(folder: Path, subject: str, session: str | None, drop_nsg: bool,
                  skipped: list[SkippedItem]) -> list[VideoRecord]:
    records = []
    for take_dir in _subfolders(folder):
        if not TAKE_PATTERN.match(take_dir.name):
            skipped.append(SkippedItem(str(take_dir), "not a take folder (takeNNN[suffix])"))
            continue
        if drop_nsg and take_dir.name.lower().endswith(NSG_SUFFIX):
            skipped.append(SkippedItem(str(take_dir), "nsg take dropped (drop_nsg=True)"))
            continue
        frames = _frame_files(take_dir)
        if not frames:
            skipped.append(SkippedItem(str(take_dir), "no img_NNNN frames"))
            continue
        records.append(VideoRecord(subject, folder.name, take_dir.name, session, frames))
    return records


def _scan_subject_level(folder: Path, subject: str, session: str | None, drop_nsg: bool,
                        skipped: list[SkippedItem]) -> list[VideoRecord]:
    records = []
    for child in _subfolders(folder):
        if child.name in MUG_EMOTION_FOLDERS:
            records += _scan_emotion(child, subject, session, drop_nsg, skipped)
        elif session is None and SESSION_PATTERN.match(child.name):
            # Subjects 002, 003, 049 of MUG: one more level; handled for any subject.
            records += _scan_subject_level(child, subject, child.name, drop_nsg, skipped)
        else:
            skipped.append(SkippedItem(str(child), "not an emotion or session folder"))
    return records


def scan_mug(root: str | Path, drop_nsg: bool = True) -> ScanResult:
    """List every take under ``root``; raises :class:`MugLayoutError` if there is none."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise MugLayoutError(f"data folder not found: {root}\n{EXPECTED_LAYOUT}")
    skipped: list[SkippedItem] = []
    records: list[VideoRecord] = []
    for subject_dir in _subfolders(root):
        if not SUBJECT_PATTERN.match(subject_dir.name):
            skipped.append(SkippedItem(str(subject_dir), "not a subject folder (digits)"))
            continue
        records += _scan_subject_level(subject_dir, subject_dir.name, None, drop_nsg, skipped)
    videos = [r for r in records if r.emotion != NEUTRAL]
    neutral = [r for r in records if r.emotion == NEUTRAL]
    if not videos:
        found = f" (found {len(neutral)} neutral takes only)" if neutral else ""
        raise MugLayoutError(f"no emotion videos found under {root}{found}\n{EXPECTED_LAYOUT}")
    return ScanResult(root=root, videos=videos, neutral=neutral, skipped=skipped)


def read_frame(path: str | Path, min_side: int | None = None) -> np.ndarray:
    """Decode one frame as uint8 (H, W, 3) RGB; raises :class:`CorruptVideoError`.

    ``min_side`` lets a JPEG decode at a reduced scale (DCT scaling, much faster for
    MUG's 896x896 frames) while keeping both sides >= ``min_side``.
    """
    from PIL import Image

    path = Path(path)
    try:
        with Image.open(path) as image:
            if min_side is not None and image.format == "JPEG":
                width, height = image.size
                factor = min(width, height) / float(min_side)
                if factor >= 2:
                    image.draft("RGB", (int(np.ceil(width / factor)), int(np.ceil(height / factor))))
            array = np.asarray(image.convert("RGB"))
    except Exception as error:  # PIL raises OSError, SyntaxError, ValueError... for broken files
        raise CorruptVideoError(path, f"{type(error).__name__}: {error}") from error
    return array


def frame_size(path: str | Path) -> tuple[int, int]:
    """(height, width) of a frame from its header, without decoding it."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            width, height = image.size
    except Exception as error:
        raise CorruptVideoError(Path(path), f"{type(error).__name__}: {error}") from error
    return height, width


def read_frames(record: VideoRecord, min_side: int | None = None, limit: int | None = None) -> np.ndarray:
    """All (or the first ``limit``) frames of a take as uint8 (T, H, W, 3)."""
    paths = record.frame_paths[:limit] if limit else record.frame_paths
    frames = []
    for path in paths:
        frame = read_frame(path, min_side)
        if frames and frame.shape != frames[0].shape:
            raise CorruptVideoError(path, f"size {frame.shape} differs from the first frame's {frames[0].shape}")
        frames.append(frame)
    return np.stack(frames)


def read_truth(record: VideoRecord) -> dict[str, np.ndarray] | None:
    """The synthetic ground truth of a take (``au``, ``au_names``, ``landmarks``...), or None."""
    path = record.folder / TRUTH_FILE
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def read_identity(root: str | Path, subject: str) -> dict[str, Any] | None:
    """``<root>/<subject>/identity.json`` of the synthetic benchmark, or None."""
    path = Path(root) / subject / IDENTITY_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def read_synthetic_meta(root: str | Path) -> dict[str, Any] | None:
    path = Path(root) / SYNTHETIC_META_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def representative_frames(scan: ScanResult, subjects: list[str] | None = None, n_subjects: int = 3,
                          position: float = 0.5) -> dict[tuple[str, str], np.ndarray]:
    """One raw frame per (subject, emotion folder) incl. neutral, from the subject's first take.

    ``position`` picks the frame within the take (0.5: the middle, near MUG's apex).
    Used for the overview grid of notebook 01.
    """
    subjects = subjects if subjects is not None else scan.subjects[:n_subjects]
    first_take: dict[tuple[str, str], VideoRecord] = {}
    for record in scan.videos + scan.neutral:
        if record.subject in subjects:
            first_take.setdefault((record.subject, record.emotion), record)
    frames = {}
    for key, record in sorted(first_take.items()):
        path = record.frame_paths[min(int(position * record.n_frames), record.n_frames - 1)]
        try:
            frames[key] = read_frame(path)
        except CorruptVideoError:
            continue  # the overview just leaves that cell empty
    return frames
