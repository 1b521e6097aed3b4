"""The synthetic MUG-like benchmark: determinism, layout, ground truth, idempotence, CLI."""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lib.config import ConfigError
from lib.constants import EMOTIONS, NEUTRAL
from lib.data import synthetic
from lib.data.faces import AU_NAMES, IDENTITY_NAMES
from lib.data.synthetic import (EMOTION_PROTOTYPES, META_NAME, MIN_USABLE_FRAMES, SYNTHETIC_PRESETS, SyntheticPreset,
                                default_synthetic_dir, ensure_synthetic, generate, load_truth, plan_takes)

REPO = Path(__file__).resolve().parent.parent
TINY = SYNTHETIC_PRESETS["tiny"]
# A custom preset of a few 8-frame takes, for tests that only need some generation.
MINI = SyntheticPreset("mini", subjects=1, takes_per_emotion=1, neutral_takes=0, frames_min=8, frames_max=8, short_takes=0)


def tree_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("synthetic") / "tiny", "tiny", seed=0, progress=False, workers=2)


def take_dirs(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.glob("*/*/*/truth.npz"))


def test_same_seed_gives_identical_bytes(tiny, tmp_path):
    # The fixture renders with a process pool of 2; one process must give the very same bytes.
    again = generate(tmp_path / "again", "tiny", seed=0, progress=False, workers=1)
    first, second = tree_hashes(tiny), tree_hashes(again)
    assert len(first) > 1000 and first == second


def test_different_seed_gives_different_data(tiny, tmp_path):
    # Same take rendered from seed 1: different identity, timing, pixels.
    plan = plan_takes(TINY, 1)[0]
    identity = synthetic.subject_identity(1, 0)
    synthetic.render_take(plan, identity, TINY, 1, tmp_path / "take")
    other = tree_hashes(tmp_path / "take")
    mine = tree_hashes(tiny / plan.relative_dir)
    assert set(other.values()).isdisjoint(mine.values())
    assert not np.allclose(identity, json.loads((tiny / "001" / "identity.json").read_text())["vector"])


def test_layout_and_counts(tiny):
    meta = json.loads((tiny / META_NAME).read_text())
    assert meta["complete"] and meta["preset"] == "tiny" and meta["seed"] == 0
    assert meta["fps"] == 19 and meta["frame_size"] == [TINY.frame_size] * 2
    assert meta["au_names"] == list(AU_NAMES) and meta["identity_names"] == list(IDENTITY_NAMES)
    subjects = sorted(p.name for p in tiny.iterdir() if p.is_dir())
    assert subjects == [f"{i:03d}" for i in range(1, TINY.subjects + 1)]
    for subject in subjects:
        for emotion in EMOTIONS:
            takes = sorted(p.name for p in (tiny / subject / emotion).iterdir())
            assert takes == [f"take{t:03d}" for t in range(TINY.takes_per_emotion)]
    neutral = sorted(tiny.glob(f"*/{NEUTRAL}/take*"))
    assert len(neutral) == TINY.neutral_takes == meta["counts"]["neutral_videos"]
    dirs = take_dirs(tiny)
    assert len(dirs) == meta["counts"]["videos"] + meta["counts"]["neutral_videos"] == len(meta["videos"])
    assert meta["counts"]["videos"] == TINY.subjects * len(EMOTIONS) * TINY.takes_per_emotion
    assert not list(tiny.rglob(".*partial"))
    for take in dirs:
        frames = sorted(p.name for p in take.glob("*.jpg"))
        assert frames == [f"img_{i:04d}.jpg" for i in range(len(frames))]
    image = Image.open(dirs[0] / "img_0000.jpg")
    assert image.format == "JPEG" and image.size == (TINY.frame_size, TINY.frame_size) and image.mode == "RGB"
    # The background is MUG-like blue: its corner pixels are bluer than red.
    corner = np.asarray(image)[:8, :8].reshape(-1, 3).mean(axis=0)
    assert corner[2] > corner[0] + 30


def test_short_takes_exist_for_the_length_filter(tiny):
    meta = json.loads((tiny / META_NAME).read_text())
    lengths = {(s, e, t): n for s, e, t, n in meta["videos"]}
    short = [k for k, n in lengths.items() if n < MIN_USABLE_FRAMES]
    assert len(short) == TINY.short_takes == meta["counts"]["short_videos"] > 0
    assert all(k[1] in EMOTIONS for k in short)
    assert meta["counts"]["usable_videos"] == meta["counts"]["videos"] - len(short)
    for (s, e, t), n in lengths.items():
        assert len(list((tiny / s / e / t).glob("*.jpg"))) == n


def test_ground_truth_shapes_and_ranges(tiny):
    for take in take_dirs(tiny):
        truth = load_truth(take)
        n = len(list(take.glob("*.jpg")))
        assert truth["au"].shape == (n, len(AU_NAMES)) and truth["au"].dtype == np.float32
        assert truth["au_names"] == list(AU_NAMES)
        assert truth["au"].min() >= 0.0 and truth["au"].max() <= 1.0
        assert truth["landmarks"].shape == (n, 68, 2) and truth["landmarks"].dtype == np.float32
        assert truth["landmarks"].min() > 0 and truth["landmarks"].max() < TINY.frame_size
        assert truth["head_pose"].shape == (n, 3) and np.abs(truth["head_pose"]).max() < 15
        assert truth["emotion"] == take.parent.name
        # iBUG order: the jaw runs left to right, right eye (image left) before the left eye, nose below the eyes.
        lm = truth["landmarks"][0]
        assert lm[0, 0] < lm[8, 0] < lm[16, 0] and lm[36:42, 0].mean() < lm[42:48, 0].mean()
        assert lm[36:48, 1].mean() < lm[30, 1] < lm[48:68, 1].mean() < lm[8, 1]
    for subject in sorted(p for p in tiny.iterdir() if p.is_dir()):
        identity = json.loads((subject / "identity.json").read_text())
        vector = np.array(identity["vector"])
        assert identity["subject"] == subject.name and vector.shape == (len(IDENTITY_NAMES),)
        assert vector.min() >= 0 and vector.max() <= 1 and "hair_style" in identity["attributes"]


def test_action_units_follow_the_emotion(tiny):
    blink = AU_NAMES.index("AU45")
    for take in take_dirs(tiny):
        truth = load_truth(take)
        au = np.delete(truth["au"], blink, axis=1)
        names = [n for n in AU_NAMES if n != "AU45"]
        prototype = EMOTION_PROTOTYPES[truth["emotion"]]
        # Neutral at the first frame; nothing outside the prototype ever moves.
        assert au[0].max() < 0.05
        outside = [i for i, n in enumerate(names) if n not in prototype]
        assert np.all(au[:, outside] == 0)
        if not prototype:
            continue
        apex_start, apex_end = truth["timing"][1:3]
        apex = au[(apex_start + apex_end) // 2]
        for name, peak in prototype.items():
            assert apex[names.index(name)] >= 0.5 * peak, (take, name)
        assert au[-1].max() < 0.5 * au.max()  # back towards neutral at the end


def _mouth_opening(lm):
    return lm[66, 1] - lm[62, 1]


def test_landmarks_move_with_the_action_units(tiny):
    """The drawn face follows the truth: an open mouth in surprise, raised corners in happiness."""
    for take in take_dirs(tiny):
        truth = load_truth(take)
        emotion = truth["emotion"]
        first = truth["landmarks"][0]
        apex = truth["landmarks"][int(np.argmax(truth["au"][:, :-1].sum(axis=1)))]
        scale = first[16, 0] - first[0, 0]  # face width in pixels
        if emotion == "surprise":
            assert _mouth_opening(apex) - _mouth_opening(first) > 0.1 * scale
            assert (first[17:27, 1].mean() - first[36:48, 1].mean()) - (apex[17:27, 1].mean() - apex[36:48, 1].mean()) > 0.04 * scale
        if emotion in ("happiness", "sadness"):
            corners = lambda lm: lm[[48, 54], 1].mean() - lm[[51, 57], 1].mean()  # noqa: E731
            change = corners(apex) - corners(first)
            assert change < -0.03 * scale if emotion == "happiness" else change > 0.03 * scale


def test_generate_is_idempotent_and_refuses_foreign_data(tiny, tmp_path):
    before = {p: p.stat().st_mtime_ns for p in tiny.rglob("*") if p.is_file()}
    start = time.perf_counter()
    assert generate(tiny, "tiny", seed=0, progress=False) == tiny
    assert time.perf_counter() - start < 2.0
    assert before == {p: p.stat().st_mtime_ns for p in tiny.rglob("*") if p.is_file()}
    with pytest.raises(FileExistsError, match="overwrite=True"):
        generate(tiny, "tiny", seed=1, progress=False)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        generate(foreign, MINI, seed=0, progress=False, overwrite=True)


def test_overwrite_replaces_another_synthetic_dataset(tmp_path):
    out = generate(tmp_path / "mini", MINI, seed=0, progress=False)
    first = tree_hashes(out)
    generate(out, MINI, seed=1, progress=False, overwrite=True)
    assert json.loads((out / META_NAME).read_text())["seed"] == 1
    assert tree_hashes(out).keys() == first.keys() and tree_hashes(out) != first


def test_interrupted_generation_resumes(tmp_path):
    out = generate(tmp_path / "mini", MINI, seed=0, progress=False)
    expected = tree_hashes(out)
    # Simulate a crash: meta not yet complete, one take missing, one half-written take folder.
    meta = json.loads((out / META_NAME).read_text())
    (out / META_NAME).write_text(json.dumps({**meta, "complete": False}))
    shutil.rmtree(out / "001" / "fear" / "take000")
    (out / "001" / "fear" / ".take000.partial").mkdir()
    (out / "001" / "fear" / ".take000.partial" / "img_0000.jpg").write_bytes(b"torn")
    generate(out, MINI, seed=0, progress=False)
    assert tree_hashes(out) == expected


def test_default_dir_and_ensure_synthetic_reuse(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("VICE_DATA_DIR", str(tmp_path / "data"))
    target = default_synthetic_dir("tiny", 0)
    assert target == (tmp_path / "data" / "synthetic" / "tiny-seed0").resolve()
    shutil.copytree(tiny, target)
    start = time.perf_counter()
    assert ensure_synthetic("tiny", 0) == target
    assert time.perf_counter() - start < 2.0


def test_bad_preset_lists_the_choices(tmp_path, capsys):
    with pytest.raises(ConfigError) as error:
        generate(tmp_path / "x", preset="huge")
    assert all(f"'{name}'" in str(error.value) for name in SYNTHETIC_PRESETS)
    with pytest.raises(ConfigError):
        default_synthetic_dir("huge", 0)
    with pytest.raises(ConfigError, match="seed"):
        generate(tmp_path / "x", preset="tiny", seed=-1)
    with pytest.raises(ConfigError, match="workers"):
        generate(tmp_path / "x", preset="tiny", workers=0)
    with pytest.raises(SystemExit):
        synthetic.main(["--preset", "huge", "--out", str(tmp_path / "x")])
    assert "invalid choice" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_cli_runs(tiny, tmp_path):
    result = subprocess.run([sys.executable, "-m", "lib.data.synthetic", "--preset", "tiny", "--out", str(tiny),
                             "--seed", "0", "--gallery", str(tmp_path / "gallery.png")],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert str(tiny) in result.stdout and '"usable_videos": 22' in result.stdout
    image = Image.open(tmp_path / "gallery.png")
    assert image.format == "PNG" and (tmp_path / "gallery.png").stat().st_size < 300_000
