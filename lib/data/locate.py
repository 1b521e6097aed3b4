"""Where the current cache of each preset is, and ``prepare_dataset`` (everything notebook 01 does).

Notebook 01 records its cache in ``<data_dir>/cache/latest-<preset>.json``; later
notebooks call :func:`find_cache` with their preset.
"""
from __future__ import annotations

import time
from pathlib import Path

from lib.config import check_choice
from lib.constants import PRESET_NAMES, SYNTHETIC_FOR_PRESET
from lib.data.cache import CACHE_FILE, VideoCache, load_cache
from lib.io import atomic_write_json, read_json


def latest_pointer_path(preset: str) -> Path:
    from lib.paths import data_dir
    return data_dir() / "cache" / f"latest-{preset}.json"


def record_latest_cache(preset: str, cache_path: str | Path) -> Path:
    """Make ``cache_path`` the current cache of ``preset`` (atomic pointer file)."""
    check_choice("preset", preset, PRESET_NAMES)
    cache_path = Path(cache_path).expanduser().resolve()
    if not (cache_path / CACHE_FILE).is_file():
        raise FileNotFoundError(f"{cache_path} holds no {CACHE_FILE}; build it with lib.data.preprocess.build_cache")
    return atomic_write_json(latest_pointer_path(preset), {
        "preset": preset, "cache": str(cache_path),
        "recorded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})


def _how_to_build(preset: str) -> str:
    return (f"run `papermill notebooks/01_preprocess.ipynb out.ipynb -p preset {preset}` "
            f"(or open notebooks/01_preprocess.ipynb with preset=\"{preset}\")")


def find_cache(preset: str, cache_dir: str | Path | None = None) -> Path:
    """The cache folder to use: ``cache_dir`` if given, else the one 01_preprocess recorded for ``preset``."""
    check_choice("preset", preset, PRESET_NAMES)
    if cache_dir is not None:
        folder = Path(cache_dir).expanduser()
        if not (folder / CACHE_FILE).is_file():
            raise FileNotFoundError(f"cache_dir={folder} holds no {CACHE_FILE}; {_how_to_build(preset)}")
        return folder
    pointer = latest_pointer_path(preset)
    if not pointer.is_file():
        raise FileNotFoundError(f"no preprocessed cache recorded for preset {preset!r} ({pointer} is missing); "
                                f"{_how_to_build(preset)}")
    folder = Path(read_json(pointer)["cache"])
    if not (folder / CACHE_FILE).is_file():
        raise FileNotFoundError(f"the cache recorded in {pointer} is gone ({folder}); {_how_to_build(preset)}")
    return folder


def resolve_data_root(data_root: str | Path | None, preset: str, seed: int, progress: bool = True) -> Path:
    """``data_root`` itself, or the synthetic benchmark for ``preset`` (generated once, then reused)."""
    if data_root is not None:
        return Path(data_root).expanduser()
    from lib.data.synthetic import ensure_synthetic
    return Path(ensure_synthetic(SYNTHETIC_FOR_PRESET[preset], seed, progress=progress))


def prepare_dataset(data_root: str | Path | None = None, preset: str = "small", detector: str = "center",
                    image_size: int = 64, min_frames: int = 64, seed: int = 0,
                    out_root: str | Path | None = None, progress: bool = True, **build_options) -> VideoCache:
    """Everything notebook 01 does: data (synthetic if ``data_root`` is None), crop + cache, split, pointer.

    ``build_options`` go to :func:`lib.data.preprocess.build_cache` (margin, center_fraction...).
    """
    from lib.data.detectors import DETECTORS
    from lib.data.preprocess import PreprocessConfig, build_cache

    check_choice("preset", preset, PRESET_NAMES)
    check_choice("detector", detector, DETECTORS)
    PreprocessConfig(detector=detector, image_size=image_size, min_frames=min_frames, seed=seed).validate()
    root = resolve_data_root(data_root, preset, seed, progress)
    folder = build_cache(root, detector=detector, image_size=image_size, min_frames=min_frames,
                         out_root=out_root, seed=seed, progress=progress, **build_options)
    record_latest_cache(preset, folder)
    return load_cache(folder)
