"""Face crop + resize of every take into one cache folder (``build_cache``), reused when nothing changed.

One crop box per take, from its first ``probe_frames`` frames (MUG faces barely move),
squared and enlarged by ``margin``; a take where no face is found falls back to the
centre crop and is counted.  Takes shorter than ``min_frames`` are dropped before
decoding; a take with an unreadable frame is skipped, warned about and counted.

The cache folder ``<out_root>/<source>-<detector><size>-<hash>-seed<seed>/`` is named
by a fingerprint of the input files (paths, sizes, mtimes) and of the parameters, so
the same inputs and parameters reuse it and any change makes a new one.  It is
built in a temporary folder and renamed into place, so a crash leaves no half cache.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lib.config import ConfigError, check_choice, check_positive, to_dict
from lib.constants import EMOTION_TO_INDEX, EMOTIONS
from lib.data import mug
from lib.data.cache import (CACHE_FILE, META_FILE, SPLIT_FILE, DamagedCacheError, VideoCache, save_cache_file,
                            verify_cache_folder)
from lib.data.detectors import DETECT_SIDE, DETECTORS, crop_and_resize, face_box, make_detector
from lib.data.splits import save_split, split_for_cache
from lib.io import atomic_write_json, read_json
from lib.locks import describe_owner, lock_owner, release_lock, try_lock

CACHE_FORMAT_VERSION = 1
CHECKPOINT_EVERY = 25  # videos between progress saves of an interrupted build
LOCK_FILE, SCRATCH_FILE, PROGRESS_FILE = "building.lock", "frames.scratch.npy", "progress.json"


@dataclass
class PreprocessConfig:
    """Everything that decides the cache content (all of it goes into the folder's key)."""

    detector: str = "center"
    image_size: int = 64
    min_frames: int = 64
    margin: float = 0.3          # enlargement of the detected box (MTCNN/Haar boxes are tight)
    center_fraction: float = 1.0  # side of the `center` crop relative to the short frame side
    probe_frames: int = 5
    drop_nsg: bool = True
    seed: int = 0                # of the subject split
    test_fraction: float = 0.2

    def validate(self) -> "PreprocessConfig":
        check_choice("detector", self.detector, DETECTORS)
        for name in ("image_size", "min_frames", "probe_frames"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"invalid {name}={value!r}; must be an integer >= 1")
        check_positive("margin", self.margin, allow_zero=True)
        if not (isinstance(self.center_fraction, (int, float)) and 0 < self.center_fraction <= 1):
            raise ConfigError(f"invalid center_fraction={self.center_fraction!r}; must be in (0, 1]")
        if not (isinstance(self.test_fraction, (int, float)) and 0 < self.test_fraction < 1):
            raise ConfigError(f"invalid test_fraction={self.test_fraction!r}; must be in (0, 1)")
        if not isinstance(self.seed, (int, np.integer)) or isinstance(self.seed, bool):
            raise ConfigError(f"invalid seed={self.seed!r}; must be an integer")
        return self


def default_cache_root() -> Path:
    from lib.paths import data_dir
    return data_dir() / "cache"


def data_fingerprint(scan: mug.ScanResult) -> str:
    """Hash of every input file's relative path, size and mtime (frames, truth, identity, meta)."""
    digest = hashlib.sha256()
    paths = [p for v in scan.videos for p in v.frame_paths]
    for video in scan.videos:
        paths += [video.folder / mug.TRUTH_FILE]
    paths += [scan.root / s / mug.IDENTITY_FILE for s in scan.subjects] + [scan.root / mug.SYNTHETIC_META_FILE]
    for path in sorted(set(paths)):
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue
        digest.update(f"{path.relative_to(scan.root)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _hash(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _cache_names(scan: mug.ScanResult, cfg: PreprocessConfig, fingerprint: str) -> tuple[str, str]:
    """(folder name, preprocessing key); the key leaves out the split so a new seed reuses the crops."""
    params = {k: v for k, v in to_dict(cfg).items() if k not in ("seed", "test_fraction")}
    prep_key = _hash({"version": CACHE_FORMAT_VERSION, "data": fingerprint, "params": params})[:10]
    from lib.paths import safe_name
    name = f"{safe_name(scan.root.name.lstrip('.') or 'data')}-{cfg.detector}{cfg.image_size}-{prep_key}-seed{cfg.seed}"
    if cfg.test_fraction != 0.2:
        name += f"-test{cfg.test_fraction:g}"
    return name, prep_key


def _scale_box(box: tuple | None, factor: float) -> tuple | None:
    return None if box is None else tuple(v * factor for v in box)


def _process_video(record: mug.VideoRecord, cfg: PreprocessConfig, detector) -> tuple[np.ndarray, bool]:
    """Cropped uint8 (T, S, S, 3) frames of one take and whether a face was found.

    JPEGs are decoded at reduced scale (DCT scaling) wherever that loses nothing: the probe
    frames at about the detector's input size, all frames at >= 2x image_size across the crop.
    """
    height, width = mug.frame_size(record.frame_paths[0])
    probe = mug.read_frames(record, min_side=DETECT_SIDE, limit=cfg.probe_frames if detector is not None else 1)
    box, found = face_box(probe, cfg.detector, detector, cfg.margin, cfg.center_fraction)
    box = _scale_box(box, width / probe.shape[2])  # -> full-resolution pixels
    box_side = min(height, width) if box is None else box[2] - box[0]
    min_side = int(np.ceil(min(height, width) * 2 * cfg.image_size / max(box_side, 1)))
    frames = mug.read_frames(record, min_side=min_side)
    box = _scale_box(box, frames.shape[2] / width)
    return crop_and_resize(frames, box, cfg.image_size), found


def _truth_rows(record: mug.VideoRecord, au_names: list[str], warn: list[str]) -> np.ndarray | None:
    truth = mug.read_truth(record)
    if truth is None or "au" not in truth:
        return None
    au = np.asarray(truth["au"], np.float32)
    if "au_names" in truth and not au_names:
        au_names.extend(str(n) for n in truth["au_names"])
    if len(au) != record.n_frames:
        warn.append(f"{record.key}: truth has {len(au)} rows for {record.n_frames} frames; AUs left NaN")
        return np.full((record.n_frames, au.shape[1]), np.nan, np.float32)
    return au


def build_cache(data_root: str | Path, detector: str = "center", image_size: int = 64, min_frames: int = 64,
                out_root: str | Path | None = None, *, margin: float = 0.3, center_fraction: float = 1.0,
                probe_frames: int = 5, drop_nsg: bool = True, seed: int = 0, test_fraction: float = 0.2,
                force: bool = False, progress: bool = True, verbose: bool = True) -> Path:
    """Crop, resize and cache every take under ``data_root``; returns the cache folder.

    Reuses an existing cache with the same inputs and parameters (unless ``force``).
    Also writes the subject split (``seed``, ``test_fraction``) as ``split.json``.
    """
    cfg = PreprocessConfig(detector, image_size, min_frames, margin, center_fraction, probe_frames,
                           drop_nsg, seed, test_fraction).validate()
    say = print if verbose else (lambda *a, **k: None)
    scan = mug.scan_mug(data_root, drop_nsg=drop_nsg)
    fingerprint = data_fingerprint(scan)
    name, prep_key = _cache_names(scan, cfg, fingerprint)
    out_root = Path(out_root).expanduser() if out_root is not None else default_cache_root()
    folder = out_root / name
    if not force and (folder / CACHE_FILE).is_file() and (folder / META_FILE).is_file():
        try:
            verify_cache_folder(folder)
            say(f"reusing cache {folder} (same data and parameters)")
            return folder
        except DamagedCacheError as error:  # never used: rebuilt in place below
            say(f"{error}\nrebuilding it")
    out_root.mkdir(parents=True, exist_ok=True)
    sibling = None if force else _same_crops(out_root, prep_key, exclude=folder)
    # Crops are built in a stable hidden folder so an interrupted run resumes; a split-only
    # rebuild (crops linked from a sibling) is quick and uses a throw-away folder.
    work = out_root / (f".tmp-{name}-{os.getpid()}-{time.time_ns()}" if sibling else f".partial-{name}")
    with _build_lock(work):
        if sibling is not None:
            say(f"reusing the crops of {sibling} (only the split differs)")
            cache, meta = _link_crops(sibling, work)
        else:
            cache, meta = _crop_all(scan, cfg, work, progress, say, resume=not force)
        meta.update({"format_version": CACHE_FORMAT_VERSION, "data_root": str(scan.root.resolve()),
                     "data_fingerprint": fingerprint, "prep_key": prep_key, "params": to_dict(cfg),
                     "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        if len(cache.subjects) >= 2:
            save_split(split_for_cache(cache, cfg.seed, cfg.test_fraction), work / SPLIT_FILE)
        else:
            warnings.warn(f"only {len(cache.subjects)} subject kept: no train/test split written")
        atomic_write_json(work / META_FILE, meta)
        if folder.exists():  # force, or a leftover without meta: replace it whole
            shutil.rmtree(folder)
        release_lock(work, LOCK_FILE)
        os.replace(work, folder)
    say(f"cache written to {folder}")
    return folder


@contextlib.contextmanager
def _build_lock(work: Path):
    """Own ``work`` while building (``lib.locks``): a live other builder is an error, a dead one's files
    are resumed."""
    work.mkdir(parents=True, exist_ok=True)
    if not try_lock(work, LOCK_FILE):
        info = lock_owner(work, LOCK_FILE) or {}
        raise RuntimeError(f"{describe_owner(info)} is building this cache in {work}; wait for it, "
                           f"or delete {work / LOCK_FILE} if that process is gone")
    try:
        yield work
    finally:
        if work.exists() and work.name.startswith(".tmp-"):
            shutil.rmtree(work, ignore_errors=True)
        else:
            release_lock(work, LOCK_FILE)  # keep the partial work for a resume


def _same_crops(out_root: Path, prep_key: str, exclude: Path) -> Path | None:
    for candidate in sorted(out_root.glob(f"*-{prep_key}-seed*")):
        if candidate != exclude and (candidate / CACHE_FILE).is_file() and (candidate / META_FILE).is_file():
            return candidate
    return None


def _link_crops(sibling: Path, tmp: Path) -> tuple[VideoCache, dict]:
    try:
        os.link(sibling / CACHE_FILE, tmp / CACHE_FILE)
    except OSError:  # another file system, or no hard links: copy
        shutil.copy2(sibling / CACHE_FILE, tmp / CACHE_FILE)
    from lib.data.cache import load_cache
    cache = load_cache(tmp)
    meta = json.loads((sibling / META_FILE).read_text())
    return cache, {"report": meta["report"], "counts": meta["counts"]}


def _crop_all(scan: mug.ScanResult, cfg: PreprocessConfig, work: Path, progress: bool, say,
              resume: bool = True) -> tuple[VideoCache, dict]:
    """Crop every long-enough take into ``work/cache.npz``, resuming from ``work/progress.json``."""
    from tqdm.auto import tqdm

    candidates = [v for v in scan.videos if v.n_frames >= cfg.min_frames]
    too_short = [v.key for v in scan.videos if v.n_frames < cfg.min_frames]
    if not candidates:
        raise ValueError(f"no video under {scan.root} has >= min_frames={cfg.min_frames} frames "
                         f"(longest: {max(v.n_frames for v in scan.videos)}); lower min_frames")
    total = sum(v.n_frames for v in candidates)
    shape = (total, cfg.image_size, cfg.image_size, 3)
    scratch_path, progress_path = work / SCRATCH_FILE, work / PROGRESS_FILE
    state = {"done": 0, "cursor": 0, "rows": [], "corrupt": [], "no_face": []}
    if resume and progress_path.is_file() and scratch_path.is_file():
        saved = read_json(progress_path)
        if saved.get("candidates") == len(candidates) and saved.get("total") == total:
            state = saved
            say(f"resuming: {state['done']} of {len(candidates)} videos were already cropped")
    # Frames go straight to a memory-mapped scratch file: MUG-scale data never sits in RAM twice.
    scratch = np.lib.format.open_memmap(scratch_path, mode="r+" if state["done"] else "w+", dtype=np.uint8,
                                        shape=shape)
    detector = make_detector(cfg.detector)
    bar = tqdm(total=len(candidates), initial=state["done"], desc=f"crop ({cfg.detector}) + cache", unit="video",
               disable=not progress)
    for position in range(state["done"], len(candidates)):
        record = candidates[position]
        try:
            frames, found = _process_video(record, cfg, detector)
        except mug.CorruptVideoError as error:
            warnings.warn(f"skipping {record.key}: {error}")
            state["corrupt"].append({"video": record.key, "path": str(error.path), "reason": error.reason})
            frames = None
        if frames is not None:
            if not found:
                state["no_face"].append(record.key)
            cursor = state["cursor"]
            scratch[cursor:cursor + len(frames)] = frames
            state["rows"].append({"video_id": len(state["rows"]), "subject": record.subject,
                                  "emotion": record.emotion, "label": EMOTION_TO_INDEX[record.emotion],
                                  "take": record.take, "session": record.session or "", "start": cursor,
                                  "length": len(frames), "source": record.key})
            state["cursor"] = cursor + len(frames)
        state["done"] = position + 1
        bar.update()
        if state["done"] % CHECKPOINT_EVERY == 0 or state["done"] == len(candidates):
            scratch.flush()  # frames reach the disk before the progress file says they are there
            atomic_write_json(progress_path, {**state, "candidates": len(candidates), "total": total})
    bar.close()
    rows, cursor = state["rows"], state["cursor"]
    if not rows:
        raise ValueError(f"every candidate video under {scan.root} was unreadable: {state['corrupt'][:3]}...")
    if state["no_face"]:
        warnings.warn(f"no face found in {len(state['no_face'])} takes; used the centre crop for them: "
                      f"{state['no_face'][:5]}")
    index = pd.DataFrame(rows)
    au, au_names, truth_warnings = _ground_truth_au(scan, index)
    identities, identity_names = _identities(scan.root, sorted(index["subject"].unique()))
    cache = VideoCache(scratch[:cursor], index, au=au, au_names=au_names, identities=identities,
                       identity_names=identity_names)
    save_cache_file(work / CACHE_FILE, cache)
    del cache, scratch
    scratch_path.unlink()
    progress_path.unlink()
    report = {
        "scanned_videos": len(scan.videos), "neutral_videos_not_cached": len(scan.neutral),
        "scan_skipped": [{"path": s.path, "reason": s.reason} for s in scan.skipped],
        "too_short": too_short, "corrupt": state["corrupt"], "no_face_fallback": state["no_face"],
        "truth_warnings": truth_warnings,
    }
    return _reopen(work), {"report": report, "counts": _counts(index, cursor)}


def _ground_truth_au(scan: mug.ScanResult, index: pd.DataFrame) -> tuple[np.ndarray | None, list[str], list[str]]:
    """Per-frame AU intensities of the kept takes (NaN rows where a take has none), names, warnings."""
    by_key = {v.key: v for v in scan.videos}
    au_names: list[str] = []
    truth_warnings: list[str] = []
    parts = [(n, _truth_rows(by_key[key], au_names, truth_warnings)) for key, n in zip(index["source"], index["length"])]
    for message in truth_warnings:
        warnings.warn(message)
    if all(part is None for _, part in parts):
        return None, [], truth_warnings
    width = next(part.shape[1] for _, part in parts if part is not None)
    au = np.concatenate([part if part is not None else np.full((n, width), np.nan, np.float32) for n, part in parts])
    synthetic_meta = mug.read_synthetic_meta(scan.root) or {}
    au_names = au_names or list(synthetic_meta.get("au_names", [f"au{i}" for i in range(width)]))
    return au, au_names, truth_warnings


def _reopen(tmp: Path) -> VideoCache:
    from lib.data.cache import load_cache
    return load_cache(tmp)


def _identities(root: Path, subjects: list[str]) -> tuple[dict[str, np.ndarray], list[str]]:
    identities = {}
    for subject in subjects:
        info = mug.read_identity(root, subject)
        if info is not None and "vector" in info:
            identities[subject] = np.asarray(info["vector"], np.float32)
    names = (mug.read_synthetic_meta(root) or {}).get("identity_names", [])
    return identities, list(names)


def _counts(index: pd.DataFrame, n_frames: int) -> dict[str, Any]:
    return {
        "videos": int(len(index)), "subjects": int(index["subject"].nunique()), "frames": int(n_frames),
        "videos_per_emotion": {e: int((index["emotion"] == e).sum()) for e in EMOTIONS},
        "subjects_per_emotion": {e: int(index.loc[index["emotion"] == e, "subject"].nunique()) for e in EMOTIONS},
    }


def format_report(meta: dict) -> str:
    """A few human-readable lines on what preprocessing kept and dropped."""
    report, counts = meta["report"], meta["counts"]
    lines = [
        f"scanned {report['scanned_videos']} emotion videos (+{report['neutral_videos_not_cached']} neutral, not cached)",
        f"kept    {counts['videos']} videos of {counts['subjects']} subjects, {counts['frames']} frames",
        f"dropped {len(report['too_short'])} videos shorter than min_frames={meta['params']['min_frames']}",
        f"corrupt {len(report['corrupt'])} videos skipped (unreadable frame)",
        f"no face {len(report['no_face_fallback'])} videos cropped at the centre instead",
        f"ignored {len(report['scan_skipped'])} folders while scanning (nsg takes, unknown folders)",
    ]
    for item in report["corrupt"][:5]:
        lines.append(f"  corrupt: {item['video']}: {item['reason']}")
    return "\n".join(lines)
