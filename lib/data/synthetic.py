"""The synthetic MUG-like benchmark: a deterministic generator written in MUG's on-disk layout.

MUG cannot be downloaded, so this module renders a stand-in with the same folder
layout (``<out>/<sss>/<emotion>/<takeNNN>/img_NNNN.jpg``) plus the ground truth MUG
cannot offer: each subject's identity vector and per-frame action-unit intensities,
68 landmarks and head pose (see docs/architecture.md, "Ground-truth files").

Each take is drawn from its own random stream keyed by (seed, subject, emotion,
take), so the same seed gives byte-identical files, and an interrupted generation
resumes where it stopped: a take is written into a hidden folder and renamed into
place only when complete.

CLI: ``python -m lib.data.synthetic --preset small --out DIR --seed 0``.
"""
from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import shutil
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np
from tqdm.auto import tqdm

from lib.config import ConfigError, check_choice, to_dict
from lib.constants import EMOTIONS, MUG_EMOTION_FOLDERS, NEUTRAL
from lib.data.faces import (AU_DESCRIPTIONS, AU_NAMES, IDENTITY_NAMES, Lighting, face_params,
                            identity_attributes, render_face, sample_identity)
from lib.io import atomic_write_bytes, atomic_write_json, read_json
from lib.paths import data_dir

# Bump when the rendering or the random streams change: files of another version differ.
GENERATOR_VERSION = 1
FPS = 19
# The length filter of the thesis' preprocessing; short takes are made to fall below it.
MIN_USABLE_FRAMES = 64
META_NAME = "synthetic_meta.json"

# FACS prototypes (peak intensities in [0, 1]) of the six emotions, as in the SPEC.
EMOTION_PROTOTYPES: dict[str, dict[str, float]] = {
    "anger": {"AU04": 1.0, "AU05": 0.6, "AU07": 1.0, "AU23": 1.0},
    "disgust": {"AU09": 1.0, "AU10": 1.0, "AU15": 0.7},
    "fear": {"AU01": 1.0, "AU02": 0.7, "AU04": 0.8, "AU05": 1.0, "AU20": 1.0, "AU26": 0.6},
    "happiness": {"AU06": 0.8, "AU12": 1.0, "AU25": 0.6},
    "sadness": {"AU01": 1.0, "AU04": 0.6, "AU15": 1.0},
    "surprise": {"AU01": 1.0, "AU02": 1.0, "AU05": 1.0, "AU26": 1.0},
    NEUTRAL: {},
}
# Small head movements that go with an expression (degrees of pitch at apex; + = down).
_EMOTION_PITCH = {"sadness": 4.0, "surprise": -3.0, "fear": -2.0, "anger": 1.5, "disgust": -1.0}


@dataclass(frozen=True)
class SyntheticPreset:
    """Size of one synthetic benchmark."""
    name: str
    subjects: int
    takes_per_emotion: int
    neutral_takes: int           # in total, one per subject from subject 001 on
    frames_min: int              # usable takes have frames_min..frames_max frames
    frames_max: int
    short_takes: int             # emotion takes made shorter than MIN_USABLE_FRAMES
    short_frames_min: int = 40
    frame_size: int = 128        # rendered side length in pixels (MUG: 896)
    jpeg_quality: int = 92


SYNTHETIC_PRESETS: dict[str, SyntheticPreset] = {
    "tiny": SyntheticPreset("tiny", subjects=4, takes_per_emotion=1, neutral_takes=2,
                            frames_min=64, frames_max=68, short_takes=2, short_frames_min=32),
    # Many identities rather than many takes: models must generalise to unseen test subjects.
    "small": SyntheticPreset("small", subjects=20, takes_per_emotion=1, neutral_takes=10,
                             frames_min=64, frames_max=96, short_takes=4),
    # 50 subjects x 6 emotions x 2 takes = 600, minus 50 short ones -> 550 usable videos (MUG: 548).
    "full": SyntheticPreset("full", subjects=50, takes_per_emotion=2, neutral_takes=50,
                            frames_min=64, frames_max=120, short_takes=50),
}


@dataclass(frozen=True)
class TakePlan:
    subject: str       # "001"
    emotion: str       # one of MUG_EMOTION_FOLDERS
    take: str          # "take000"
    n_frames: int

    @property
    def relative_dir(self) -> Path:
        return Path(self.subject, self.emotion, self.take)


def default_synthetic_dir(preset: str, seed: int) -> Path:
    """Where :func:`ensure_synthetic` keeps a preset: ``data_dir()/synthetic/<preset>-seed<seed>``."""
    check_choice("preset", preset, SYNTHETIC_PRESETS)
    return data_dir() / "synthetic" / f"{preset}-seed{_check_seed(seed)}"


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"invalid seed={seed!r}; must be an integer >= 0")
    return int(seed)


def _resolve_preset(preset: str | SyntheticPreset) -> SyntheticPreset:
    if isinstance(preset, SyntheticPreset):
        return preset
    return SYNTHETIC_PRESETS[check_choice("preset", preset, SYNTHETIC_PRESETS)]


def _rng(seed: int, *keys: int) -> np.random.Generator:
    """An independent random stream per (seed, keys): a take never depends on the others."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), GENERATOR_VERSION, *keys]))


def subject_identity(seed: int, subject_index: int) -> np.ndarray:
    """The identity vector of subject ``subject_index`` (0-based) for ``seed``."""
    return sample_identity(_rng(seed, subject_index, 1_000))


def plan_takes(preset: SyntheticPreset, seed: int) -> list[TakePlan]:
    """Every take with its length; which emotion takes are short is drawn from the seed."""
    rng = _rng(seed, 2_000)
    plans: list[TakePlan] = []
    for s in range(preset.subjects):
        subject = f"{s + 1:03d}"
        for emotion in EMOTIONS:
            for t in range(preset.takes_per_emotion):
                plans.append(TakePlan(subject, emotion, f"take{t:03d}", int(rng.integers(preset.frames_min, preset.frames_max + 1))))
    n_short = min(preset.short_takes, len(plans))
    for i in rng.choice(len(plans), size=n_short, replace=False):
        short = int(rng.integers(preset.short_frames_min, MIN_USABLE_FRAMES))
        plans[i] = TakePlan(plans[i].subject, plans[i].emotion, plans[i].take, short)
    for k in range(preset.neutral_takes):
        subject = f"{k % preset.subjects + 1:03d}"
        take = f"take{k // preset.subjects:03d}"
        plans.append(TakePlan(subject, NEUTRAL, take, int(rng.integers(preset.frames_min, preset.frames_max + 1))))
    plans.sort(key=lambda p: (p.subject, MUG_EMOTION_FOLDERS.index(p.emotion), p.take))
    return plans


# --------------------------------------------------------------------------- one take

def _smooth_ramp(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def expression_profile(n_frames: int, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, int]]:
    """MUG's neutral -> onset -> apex -> offset -> neutral curve in [0, 1], with random timing."""
    parts = np.array([rng.uniform(0.08, 0.18), rng.uniform(0.12, 0.22), rng.uniform(0.25, 0.4), rng.uniform(0.12, 0.22)])
    parts = parts / max(1.0, parts.sum() / 0.92)  # leave a few neutral frames at the end
    start, onset, apex, offset = np.maximum(np.round(parts * n_frames), [2, 2, 3, 2]).astype(int)
    t = np.arange(n_frames, dtype=np.float64)
    rise = _smooth_ramp((t - start) / onset)
    fall = 1.0 - _smooth_ramp((t - start - onset - apex) / offset)
    timing = {"onset_start": int(start), "apex_start": int(start + onset), "apex_end": int(start + onset + apex),
              "offset_end": int(start + onset + apex + offset)}
    return np.minimum(rise, fall), timing


def _blinks(n_frames: int, rng: np.random.Generator) -> np.ndarray:
    """AU45 over time: a blink (about 0.25 s) every 1.5-4 s."""
    shape = np.array([0.5, 1.0, 1.0, 0.6, 0.2])
    curve = np.zeros(n_frames)
    t = int(rng.integers(4, 40))
    while t < n_frames:
        end = min(n_frames, t + len(shape))
        curve[t:end] = shape[: end - t]
        t += int(rng.integers(28, 76))
    return curve


def _wander(n_frames: int, rng: np.random.Generator, amplitude: float) -> np.ndarray:
    """Slow smooth motion: two sinusoids of random frequency (0.1-0.6 Hz) and phase."""
    t = np.arange(n_frames) / FPS
    out = np.zeros(n_frames)
    for _ in range(2):
        freq, phase = rng.uniform(0.1, 0.6), rng.uniform(0, 2 * np.pi)
        out += amplitude * 0.5 * rng.uniform(0.5, 1.0) * np.sin(2 * np.pi * freq * t + phase)
    return out


@dataclass(frozen=True)
class TakeTruth:
    au: np.ndarray           # (T, K) float32
    head_pose: np.ndarray    # (T, 3) float32, yaw, pitch, roll degrees
    translation: np.ndarray  # (T, 2) float32, fraction of the frame
    lighting: Lighting
    timing: dict[str, int]
    intensity: float


def take_truth(plan: TakePlan, rng: np.random.Generator) -> TakeTruth:
    """Action units, head motion and lighting of one take (everything but the pixels)."""
    n = plan.n_frames
    prototype = EMOTION_PROTOTYPES[plan.emotion]
    curve, timing = expression_profile(n, rng)
    intensity = float(rng.uniform(0.75, 1.0))
    au = np.zeros((n, len(AU_NAMES)), np.float64)
    t = np.arange(n, dtype=np.float64)
    for name, peak in prototype.items():
        # Each AU has its own small lag and gain, so the units do not move in lockstep.
        lag = rng.uniform(-1.5, 1.5)
        gain = rng.uniform(0.88, 1.12)
        au[:, AU_NAMES.index(name)] = np.interp(t - lag, t, curve) * peak * intensity * gain
    au[:, AU_NAMES.index("AU45")] = np.maximum(au[:, AU_NAMES.index("AU45")], _blinks(n, rng))
    au = np.clip(au, 0.0, 1.0)
    if not prototype:
        timing = {}
        intensity = 0.0

    offset = rng.uniform(-2.0, 2.0, 3)
    pose = np.stack([_wander(n, rng, 6.0), _wander(n, rng, 3.5), _wander(n, rng, 3.0)], axis=1) + offset
    pose[:, 1] += _EMOTION_PITCH.get(plan.emotion, 0.0) * curve * intensity
    translation = np.stack([_wander(n, rng, 0.02), _wander(n, rng, 0.012)], axis=1) + rng.uniform(-0.02, 0.02, 2)
    lighting = Lighting(brightness=float(rng.uniform(0.88, 1.1)), direction=float(rng.uniform(0, 2 * np.pi)),
                        strength=float(rng.uniform(0.06, 0.22)), warmth=float(rng.uniform(-1, 1)),
                        noise_sigma=float(rng.uniform(1.0, 4.0)), blur_sigma=float(rng.uniform(0.3, 0.7)))
    return TakeTruth(au.astype(np.float32), pose.astype(np.float32), translation.astype(np.float32),
                     lighting, timing, intensity)


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An .npz without time stamps (numpy's own writer stamps the time, breaking byte-identity)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)
            archive.writestr(info, member.getvalue())
    return buffer.getvalue()


def render_take(plan: TakePlan, identity: np.ndarray, preset: SyntheticPreset, seed: int, take_dir: Path) -> int:
    """Render one take into ``take_dir`` (frames, then truth.npz last); returns the frame count."""
    keys = (int(plan.subject), MUG_EMOTION_FOLDERS.index(plan.emotion), int(plan.take[4:]))
    rng = _rng(seed, *keys)
    truth = take_truth(plan, rng)
    params = face_params(identity)
    size = preset.frame_size
    landmarks = np.zeros((plan.n_frames, 68, 2), np.float32)
    # The lighting flickers slightly from frame to frame, like a real camera's exposure.
    flicker = 1.0 + 0.012 * rng.standard_normal(plan.n_frames)
    # Sensor noise: each frame takes a random window of one noise field drawn per take
    # (drawing fresh Gaussian noise for every frame would cost more than the rendering).
    noise_field = rng.standard_normal((2 * size, 2 * size, 3), dtype=np.float32)
    windows = rng.integers(0, size, (plan.n_frames, 2))
    take_dir.mkdir(parents=True, exist_ok=True)
    encode = [int(cv2.IMWRITE_JPEG_QUALITY), preset.jpeg_quality]
    for i in range(plan.n_frames):
        light = dataclasses.replace(truth.lighting, brightness=truth.lighting.brightness * float(flicker[i]))
        y, x = windows[i]
        frame = render_face(params, truth.au[i], size, truth.head_pose[i], truth.translation[i], light,
                            noise_field[y:y + size, x:x + size])
        landmarks[i] = frame.landmarks
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR), encode)
        if not ok:
            raise RuntimeError(f"OpenCV could not encode frame {i} of {plan.relative_dir}")
        (take_dir / f"img_{i:04d}.jpg").write_bytes(data.tobytes())
    arrays = {
        "au": truth.au, "au_names": np.array(AU_NAMES), "landmarks": landmarks,
        "head_pose": truth.head_pose, "translation": truth.translation,
        "emotion": np.array(plan.emotion), "fps": np.array(FPS, np.float32),
        "intensity": np.array(truth.intensity, np.float32),
        "timing": np.array([truth.timing.get(k, -1) for k in ("onset_start", "apex_start", "apex_end", "offset_end")], np.int32),
    }
    atomic_write_bytes(take_dir / "truth.npz", _npz_bytes(arrays))
    return plan.n_frames


def load_truth(take_dir: str | Path) -> dict[str, Any]:
    """The ground truth of one take as a dict of arrays (``emotion`` as str)."""
    path = Path(take_dir) / "truth.npz"
    if not path.is_file():
        raise FileNotFoundError(f"no ground truth at {path}; is {take_dir} a synthetic take? "
                                "Generate the benchmark with `python -m lib.data.synthetic`.")
    with np.load(path, allow_pickle=False) as data:
        truth = {k: data[k] for k in data.files}
    truth["emotion"] = str(truth["emotion"])
    truth["au_names"] = [str(x) for x in truth["au_names"]]
    return truth


# --------------------------------------------------------------------------- the dataset

def _meta(preset: SyntheticPreset, seed: int, plans: Sequence[TakePlan], complete: bool) -> dict[str, Any]:
    emotion_plans = [p for p in plans if p.emotion != NEUTRAL]
    usable = [p for p in emotion_plans if p.n_frames >= MIN_USABLE_FRAMES]
    return {
        "generator": "lib.data.synthetic",
        "generator_version": GENERATOR_VERSION,
        "preset": preset.name,
        "preset_config": to_dict(preset),
        "seed": int(seed),
        "complete": complete,
        "frame_size": [preset.frame_size, preset.frame_size],
        "fps": FPS,
        "layout": "<root>/<sss>/<emotion>/<takeNNN>/img_NNNN.jpg (frames zero-based)",
        "au_names": list(AU_NAMES),
        "au_descriptions": AU_DESCRIPTIONS,
        "identity_names": list(IDENTITY_NAMES),
        "emotion_prototypes": EMOTION_PROTOTYPES,
        "min_usable_frames": MIN_USABLE_FRAMES,
        "counts": {
            "subjects": preset.subjects,
            "videos": len(emotion_plans),
            "usable_videos": len(usable),
            "short_videos": len(emotion_plans) - len(usable),
            "neutral_videos": len(plans) - len(emotion_plans),
            "videos_per_emotion": {e: sum(p.emotion == e for p in emotion_plans) for e in EMOTIONS},
            "frames": int(sum(p.n_frames for p in plans)),
        },
        "videos": [[p.subject, p.emotion, p.take, p.n_frames] for p in plans],
    }


def _same_dataset(meta: dict[str, Any], preset: SyntheticPreset, seed: int) -> bool:
    return (meta.get("generator") == "lib.data.synthetic" and meta.get("generator_version") == GENERATOR_VERSION
            and meta.get("seed") == int(seed) and meta.get("preset_config") == to_dict(preset))


def _clear_generated(out: Path) -> None:
    """Remove what an earlier generation wrote (subject folders and meta), nothing else."""
    for child in out.iterdir():
        if child.is_dir() and len(child.name) == 3 and child.name.isdigit():
            shutil.rmtree(child)
    (out / META_NAME).unlink(missing_ok=True)


def _write_take(plan: TakePlan, identity: np.ndarray, spec: SyntheticPreset, seed: int, out: Path) -> int:
    """Render one take into a hidden folder, then rename it into place (a process-pool task)."""
    final = out / plan.relative_dir
    partial = final.parent / f".{plan.take}.partial"
    if partial.exists():
        shutil.rmtree(partial)
    if final.exists():  # a take folder without truth cannot come from us; do not mix files
        shutil.rmtree(final)
    n_frames = render_take(plan, identity, spec, seed, partial)
    os.replace(partial, final)
    return n_frames


def default_workers() -> int:
    """Processes for :func:`generate`: the CPUs this process may use (at most 8)."""
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        available = os.cpu_count() or 1
    return max(1, min(8, available))


def generate(out_dir: str | Path, preset: str | SyntheticPreset = "tiny", seed: int = 0, overwrite: bool = False,
             progress: bool = True, workers: int | None = None) -> Path:
    """Write the synthetic benchmark into ``out_dir`` and return it.

    ``workers`` processes render takes in parallel (None: :func:`default_workers`); every
    take has its own random stream, so the files are the same for any number of workers.

    If ``out_dir`` already holds the same preset, seed and generator version, finished
    takes are kept (a complete dataset returns at once; an interrupted one resumes).
    A different synthetic dataset there is replaced only with ``overwrite=True``; a
    non-empty folder that is not a synthetic dataset is never touched.
    """
    spec = _resolve_preset(preset)
    seed = _check_seed(seed)
    workers = default_workers() if workers is None else workers
    if not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"invalid workers={workers!r}; must be None or an integer >= 1")
    out = Path(out_dir).expanduser().resolve()
    meta_path = out / META_NAME
    if meta_path.is_file():
        old = read_json(meta_path)
        if _same_dataset(old, spec, seed):
            if old.get("complete"):
                return out
        elif overwrite:
            _clear_generated(out)
        else:
            raise FileExistsError(
                f"{out} holds a different synthetic dataset (preset={old.get('preset')!r}, seed={old.get('seed')}, "
                f"version={old.get('generator_version')}); pass overwrite=True (CLI: --overwrite) to replace it, "
                "or choose another folder")
    elif out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty and holds no {META_NAME}; refusing to write a synthetic "
                              "dataset into it. Choose an empty or new folder.")

    plans = plan_takes(spec, seed)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(meta_path, _meta(spec, seed, plans, complete=False))
    identities: dict[str, np.ndarray] = {}
    for s in range(spec.subjects):
        subject = f"{s + 1:03d}"
        identities[subject] = subject_identity(seed, s)
        atomic_write_json(out / subject / "identity.json", {
            "subject": subject, "vector": [round(float(x), 6) for x in identities[subject]],
            "names": list(IDENTITY_NAMES), "attributes": identity_attributes(identities[subject])})

    todo = [plan for plan in plans if not (out / plan.relative_dir / "truth.npz").is_file()]  # others: resumed
    bar = tqdm(total=len(plans), initial=len(plans) - len(todo), desc=f"synthetic {spec.name} seed {seed}",
               unit="take", disable=not progress)
    if workers == 1 or len(todo) < 2:
        for plan in todo:
            _write_take(plan, identities[plan.subject], spec, seed, out)
            bar.update(1)
    else:
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(max_workers=min(workers, len(todo))) as pool:
            futures = [pool.submit(_write_take, plan, identities[plan.subject], spec, seed, out) for plan in todo]
            for future in as_completed(futures):
                future.result()  # re-raises a worker's error here
                bar.update(1)
    bar.close()
    atomic_write_json(meta_path, _meta(spec, seed, plans, complete=True))
    return out


def ensure_synthetic(preset: str = "tiny", seed: int = 0, workers: int | None = None, progress: bool = True) -> Path:
    """The benchmark for ``preset``/``seed`` in its default folder, generated on first use."""
    return generate(default_synthetic_dir(preset, seed), preset, seed, progress=progress, workers=workers)


# --------------------------------------------------------------------------- instrument subjects
# The instruments' extra faces are drawn with the seed of the benchmark plus this offset: another stream of
# identities than any subject of the benchmark (checked by vector in lib.evaluation.probes).
INSTRUMENT_SEED_OFFSET = 10_000


def instrument_preset(subjects: int) -> SyntheticPreset:
    """A benchmark of ``subjects`` faces, one usable take per emotion each, no neutral or short takes:
    extra faces on which the measuring instruments learn (:mod:`lib.evaluation.probes`), never a generator."""
    if isinstance(subjects, bool) or not isinstance(subjects, (int, np.integer)) or subjects < 1:
        raise ConfigError(f"invalid number of instrument subjects {subjects!r}; must be an integer >= 1")
    return SyntheticPreset(f"instruments{int(subjects)}", subjects=int(subjects), takes_per_emotion=1,
                           neutral_takes=0, frames_min=MIN_USABLE_FRAMES, frames_max=96, short_takes=0)


def ensure_instrument_set(subjects: int, seed: int, progress: bool = True) -> Path:
    """The instruments' extra benchmark (:func:`instrument_preset`) for a benchmark of ``seed``, generated on
    first use into ``data_dir()/synthetic/instruments<N>-seed<seed + offset>``."""
    spec = instrument_preset(subjects)
    own_seed = _check_seed(seed) + INSTRUMENT_SEED_OFFSET
    return generate(data_dir() / "synthetic" / f"{spec.name}-seed{own_seed}", spec, own_seed, progress=progress)


# --------------------------------------------------------------------------- README picture

# Two contrasting subjects of seed 0 (0-based indices), shown in the README picture.
GALLERY_SUBJECTS = (5, 10)


def emotion_gallery(seed: int = 0, subjects: Sequence[int] = GALLERY_SUBJECTS, size: int = 128) -> np.ndarray:
    """Apex frames (uint8, (len(subjects), 6, size, size, 3)) of each emotion for some subjects."""
    rows = []
    for s in subjects:
        params = face_params(subject_identity(seed, s))
        row = []
        for emotion in EMOTIONS:
            au = {name: 0.95 * value for name, value in EMOTION_PROTOTYPES[emotion].items()}
            row.append(render_face(params, au, size, (0.0, 0.0, 0.0), lighting=Lighting(direction=0.6)).image)
        rows.append(row)
    return np.array(rows, np.uint8)


def save_emotion_gallery(path: str | Path, seed: int = 0, subjects: Sequence[int] = GALLERY_SUBJECTS) -> Path:
    """A labelled PNG grid: one row per subject, one column per emotion."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frames = emotion_gallery(seed, subjects)
    fig, axes = plt.subplots(len(subjects), len(EMOTIONS), figsize=(1.6 * len(EMOTIONS), 1.75 * len(subjects)), dpi=90)
    for r, s in enumerate(subjects):
        for c, emotion in enumerate(EMOTIONS):
            ax = axes[r, c]
            ax.imshow(frames[r, c])
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(emotion, fontsize=10)
            if c == 0:
                ax.set_ylabel(f"subject {s + 1:03d}", fontsize=9)
    fig.tight_layout(pad=0.3)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return atomic_write_bytes(path, buffer.getvalue())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.data.synthetic", description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="small", choices=list(SYNTHETIC_PRESETS))
    parser.add_argument("--out", default=None, help="output folder (default: data/synthetic/<preset>-seed<seed>)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=None, help="parallel processes (default: the CPUs available)")
    parser.add_argument("--overwrite", action="store_true", help="replace a different synthetic dataset in --out")
    parser.add_argument("--gallery", default=None, metavar="PNG", help="also save one apex frame per emotion for two subjects")
    args = parser.parse_args(argv)
    out = Path(args.out) if args.out else default_synthetic_dir(args.preset, args.seed)
    path = generate(out, args.preset, args.seed, overwrite=args.overwrite, workers=args.workers)
    counts = read_json(path / META_NAME)["counts"]
    print(f"synthetic benchmark at {path}: {json.dumps(counts)}")
    if args.gallery:
        print(f"gallery written to {save_emotion_gallery(args.gallery, args.seed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
