"""Write notebooks/01_preprocess.ipynb (without outputs) from the cells below.

Run: ``.venv/bin/python tools/build_notebook_01.py``.  Edit the cells here, not the
notebook, so the notebook stays thin and reviewable.
"""
from __future__ import annotations

from pathlib import Path

from nbtools import write_notebook

from lib.constants import PRESET_NAMES as _PRESETS
from lib.data.detectors import DETECTORS as _DETECTORS
from lib.data.synthetic import SYNTHETIC_PRESETS as _SYNTHETIC

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "01_preprocess.ipynb"

TITLE = """# 01 - Preprocess: read, crop, cache and split the data

Reads a dataset in the MUG layout (`<root>/<subject>/<emotion>/<take>/img_NNNN.jpg`) -
the real MUG Facial Expression Database if `data_root` points at it, otherwise the
synthetic MUG-like benchmark for `preset` (generated once, then reused).

Then, as in the thesis (section 5.1.1): crop the face (one box per take, `detector`),
resize to `image_size` x `image_size`, drop takes shorter than `min_frames` (64, so
MoCoGAN's every-2nd-frame sampling of 16-frame clips fits), cache every frame as uint8
in one file, draw the subject-level 80/20 split and the *seen*/*unseen* training
compositions, and record the cache as the current one for `preset`, where notebooks
02-06 find it.

Run headless: `papermill notebooks/01_preprocess.ipynb out.ipynb -p preset tiny`."""

PARAMETERS = f"""data_root: str | None = None   # MUG root folder; None: the synthetic benchmark of this preset
preset = "small"      # {" | ".join(_PRESETS)} (synthetic data: {" | ".join(_SYNTHETIC)})
detector = "center"   # {" | ".join(_DETECTORS)}
image_size = 64
min_frames = 64       # takes with fewer frames are dropped
seed = 0              # synthetic data and subject split
out_root: str | None = None   # cache root folder; None: <data dir>/cache"""

SETUP = """import matplotlib.pyplot as plt
import numpy as np

from lib.config import check_choice
from lib.io import save_config
from lib.constants import EMOTIONS, MUG_EMOTION_FOLDERS, PRESET_NAMES
from lib.data import mug
from lib.data.cache import emotion_statistics, load_cache
from lib.data.clips import sample_clip_indices
from lib.data.locate import record_latest_cache, resolve_data_root
from lib.data.preprocess import PreprocessConfig, build_cache, format_report
from lib.data.splits import composition_videos
from lib.io import atomic_write_json, show_gif, video_grid, write_gif
from lib.paths import run_dir

# Every parameter is checked before any work.
check_choice("preset", preset, PRESET_NAMES)
config = PreprocessConfig(detector=detector, image_size=image_size, min_frames=min_frames, seed=seed).validate()
out_dir = run_dir("01_preprocess", description=f"{preset}-{detector}{image_size}")
save_config(config, out_dir / "config.json")
print("run folder:", out_dir)"""

LOCATE_MD = "## The data\nLocate the dataset (or generate the synthetic benchmark once) and scan its folders."

LOCATE = """root = resolve_data_root(data_root, preset, seed)
scan = mug.scan_mug(root)
print("data root:", root, "(synthetic benchmark)" if scan.is_synthetic else "")
print(scan.counts())"""

RAW_MD = "Raw frames: the middle frame of the first take of each emotion, for a few subjects."

RAW = """frames = mug.representative_frames(scan, n_subjects=3)
subjects = sorted({subject for subject, _ in frames})
fig, axes = plt.subplots(len(subjects), len(MUG_EMOTION_FOLDERS),
                         figsize=(1.6 * len(MUG_EMOTION_FOLDERS), 1.7 * len(subjects)), squeeze=False)
for row, subject in enumerate(subjects):
    for col, emotion in enumerate(MUG_EMOTION_FOLDERS):
        ax = axes[row, col]
        ax.axis("off")
        if (subject, emotion) in frames:
            ax.imshow(frames[subject, emotion])
        if row == 0:
            ax.set_title(emotion, fontsize=9)
    axes[row, 0].text(-0.1, 0.5, subject, transform=axes[row, 0].transAxes, ha="right", va="center")
fig.tight_layout()
fig.savefig(out_dir / "raw_frames.png", dpi=100)
plt.show()"""

CACHE_MD = "## Crop, resize and cache\nReused when the data and the parameters are unchanged."

CACHE = """cache_path = build_cache(root, detector=detector, image_size=image_size, min_frames=min_frames,
                         out_root=out_root, seed=seed)
cache = load_cache(cache_path)
record_latest_cache(preset, cache_path)
print(cache)
print(format_report(cache.meta))"""

SPLIT_MD = "## Subject split and training compositions"

SPLIT = """split = cache.split
print("train subjects:", split.train_subjects)
print("test subjects: ", split.test_subjects)
for subject, emotions in split.seen_emotions.items():
    print(f"  seen in training for test subject {subject}: {emotions}")
sizes = {}
for composition in ("seen", "unseen"):
    train_ids, test_ids = composition_videos(cache, composition)
    sizes[composition] = {"train_videos": len(train_ids), "test_videos": len(test_ids)}
    print(f"{composition:>7}: {len(train_ids)} training videos, {len(test_ids)} test videos")"""

STATS_MD = "## Data statistics\nVideos and subjects per emotion after preprocessing (cf. the thesis's Fig. 6)."

STATS = """stats = emotion_statistics(cache)
display(stats)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
for ax, column in zip(axes, ("videos", "subjects")):
    ax.bar(stats.index, stats[column], color="tab:blue")
    ax.set_title(f"{column} per emotion")
    ax.tick_params(axis="x", rotation=30)
fig.tight_layout()
fig.savefig(out_dir / "statistics.png", dpi=100)
plt.show()"""

GIF_MD = "## Cached clips\nOne 16-frame clip per emotion (every 2nd frame, as the GAN samples them) from the cache."

GIF = """rng = np.random.default_rng(seed)
clips = []
for emotion in EMOTIONS:
    video_ids = cache.videos_of(emotion=emotion)
    if len(video_ids):
        video_id = int(video_ids[0])
        clips.append(cache.video(video_id, sample_clip_indices(cache.length(video_id), 16, 2, rng)))
gif_path = write_gif(video_grid([clips]), out_dir / "cached_clips.gif", fps=8, scale=2)
show_gif(gif_path)"""

RESULTS = """results = {"cache": str(cache_path), "data_root": str(root), "preset": preset,
           "counts": cache.meta["counts"], "dropped_short": len(cache.meta["report"]["too_short"]),
           "corrupt": len(cache.meta["report"]["corrupt"]), "compositions": sizes,
           "split": {"train": split.train_subjects, "test": split.test_subjects, "seen": split.seen_emotions}}
atomic_write_json(out_dir / "results.json", results)
print("wrote", out_dir / "results.json")"""


CELLS = [
    ("markdown", TITLE), ("parameters", PARAMETERS), ("code", SETUP),
    ("markdown", LOCATE_MD), ("code", LOCATE),
    ("markdown", RAW_MD), ("code", RAW),
    ("markdown", CACHE_MD), ("code", CACHE),
    ("markdown", SPLIT_MD), ("code", SPLIT),
    ("markdown", STATS_MD), ("code", STATS),
    ("markdown", GIF_MD), ("code", GIF), ("code", RESULTS),
]

if __name__ == "__main__":
    write_notebook(NOTEBOOK, CELLS)
