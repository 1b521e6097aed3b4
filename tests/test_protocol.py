"""The evaluation protocol (pairs) and an end-to-end evaluation of two stand-in models."""
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from lib.constants import EMOTIONS
from lib.data.cache import VideoCache
from lib.data.splits import Split, composition_videos
from lib.evaluation.protocol import make_pairs, pair_clips, pairs_fingerprint

SUBJECTS = [f"{i:03d}" for i in range(6)]


def _face(subject: int, emotion: int, length: int, rng) -> np.ndarray:
    """A procedural face: the subject sets colours and face width, the emotion the mouth over time."""
    yy, xx = np.mgrid[0:64, 0:64].astype(np.float32)
    look = np.random.default_rng(100 + subject)
    skin, hair, background = look.uniform(90, 230, 3), look.uniform(0, 120, 3), look.uniform(0, 255, 3)
    width = look.uniform(14, 22)
    frames = []
    for t in range(length):
        image = np.empty((64, 64, 3), np.float32)
        image[:] = background
        face = ((xx - 32) / width) ** 2 + ((yy - 34) / 24) ** 2 <= 1
        image[face] = skin
        image[face & (yy < 16)] = hair
        opening = 1 + 5 * np.sin(np.pi * t / (length - 1)) * (emotion + 1) / 6
        image[(np.abs(xx - 32) < 8 - emotion) & (np.abs(yy - 46) < opening)] = (120, 20, 30)
        image += rng.normal(0, 4, image.shape)
        frames.append(np.clip(image, 0, 255).astype(np.uint8))
    return np.stack(frames)


def standin_cache(length: int = 36) -> VideoCache:
    rng = np.random.default_rng(0)
    videos, subjects, emotions, takes = [], [], [], []
    for s, subject in enumerate(SUBJECTS):
        for e, emotion in enumerate(EMOTIONS):
            for take in range(2 if s < 2 else 1):
                videos.append(_face(s, e, length + 4 * take, rng))
                subjects.append(subject)
                emotions.append(emotion)
                takes.append(f"take{take:03d}")
    split = Split(train_subjects=SUBJECTS[2:], test_subjects=SUBJECTS[:2],
                  seen_emotions={SUBJECTS[0]: ["anger", "happiness"], SUBJECTS[1]: ["fear", "surprise"]})
    return VideoCache.from_videos(videos, subjects, emotions, takes=takes, split=split, meta={"standin": 1})


@pytest.fixture(scope="module")
def cache():
    return standin_cache()


def test_pairs_never_target_an_emotion_seen_for_that_subject(cache):
    pairs = make_pairs(cache, n_pairs=40, seed=3)
    _, seen_test_ids = composition_videos(cache, "seen")
    assert len(pairs) == 40
    for pair in pairs:
        assert pair.subject in cache.split.test_subjects
        assert pair.target_emotion not in cache.split.seen_emotions[pair.subject]
        assert pair.target_video_id in seen_test_ids  # a test video of the `seen` composition
        target = cache.index.loc[pair.target_video_id]
        source = cache.index.loc[pair.input_video_id]
        assert target["subject"] == source["subject"] == pair.subject
        assert target["emotion"] == pair.target_emotion == EMOTIONS[pair.target_label]
        assert source["emotion"] != pair.target_emotion
        for frames, row in ((pair.input_frames, source), (pair.target_frames, target)):
            assert len(frames) == 16 and max(frames) < row["length"]
            assert set(np.diff(frames)) == {2}  # training's every-2nd-frame clip rule
    # all four held-out emotions of both subjects appear
    assert {(p.subject, p.target_emotion) for p in pairs} == {
        (s, e) for s in SUBJECTS[:2] for e in EMOTIONS if e not in cache.split.seen_emotions[s]}


def test_pairs_depend_only_on_cache_seed_and_count(cache):
    first, again = make_pairs(cache, 12, seed=0), make_pairs(cache, 12, seed=0)
    assert first == again and pairs_fingerprint(first) == pairs_fingerprint(again)
    assert pairs_fingerprint(make_pairs(cache, 12, seed=1)) != pairs_fingerprint(first)
    input_clip, target_clip = pair_clips(cache, first[0])
    assert input_clip.shape == target_clip.shape == (16, 64, 64, 3)


def test_bad_pair_count_fails_before_work(cache):
    with pytest.raises(ValueError, match="n_pairs"):
        make_pairs(cache, n_pairs=0)


class StillGenerator:
    """Stand-in model: repeats the first input frame (perfect identity, no motion)."""

    def __init__(self, cache_dir, composition):
        self.config = SimpleNamespace(cache_dir=str(cache_dir), composition=composition, encoder="none",
                                      content_mode="single")
        self.calls = []

    def generate(self, input_videos, labels, seed=0):
        self.calls.append((input_videos.clone(), torch.as_tensor(labels).clone(), seed))
        return input_videos[:, :, :1].repeat(1, 1, 16, 1, 1)


class NoiseGenerator(StillGenerator):
    """Stand-in model: uniform noise (no identity at all)."""

    def generate(self, input_videos, labels, seed=0):
        self.calls.append((input_videos.clone(), torch.as_tensor(labels).clone(), seed))
        noise = torch.Generator().manual_seed(int(seed))
        return torch.rand(input_videos.shape[0], 3, 16, 64, 64, generator=noise) * 2 - 1


class GridColourExtractor:
    """A cheap stand-in identity feature (mean colour of a 4x4 grid), so this test stays fast;
    the real extractors are tested in test_extractors.py."""
    name, report = "grid", {}

    def extract(self, frames):
        frames = np.asarray(frames, np.float32)
        return frames.reshape(len(frames), 4, 16, 4, 16, 3).mean(axis=(2, 4)).reshape(len(frames), -1)


def _write_cache(cache, folder: Path) -> Path:
    from lib.data.cache import save_cache_file
    from lib.data.splits import save_split

    folder.mkdir(parents=True)
    save_cache_file(folder / "cache.npz", cache)
    save_split(cache.split, folder / "split.json")
    (folder / "meta.json").write_text(json.dumps(cache.meta))
    return folder


def test_two_models_are_scored_on_identical_pairs(cache, tmp_path, monkeypatch):
    from lib.evaluation.evaluate import evaluate_runs, load_results, make_evaluation_config
    from lib.io import save_config
    from lib.train.options import make_config

    monkeypatch.setenv("VICE_DATA_DIR", str(tmp_path / "data"))
    cache_dir = _write_cache(cache, tmp_path / "cache")
    runs = {}
    for name, cls, composition in (("still-seen", StillGenerator, "seen"), ("noise-unseen", NoiseGenerator, "unseen")):
        run = tmp_path / "runs" / name
        run.mkdir(parents=True)
        (run / "train_done.json").write_text("{}")
        save_config(make_config(preset="tiny", cache_dir=str(cache_dir), composition=composition, encoder="none",
                                    content_mode="single"), run / "config.json")  # where 05 finds the run's cache
        runs[run.resolve()] = cls(cache_dir, composition)
    table = evaluate_runs(list(runs), extractors=[GridColourExtractor()], classifiers=["fer", "deepface"], n_pairs=6, seed=0,
                          out_dir=tmp_path / "out", preset="tiny", load_generator=lambda run, device: runs[Path(run)])
    assert list(table["run"]) == ["real", "still-seen", "noise-unseen"]
    still, noise = [runs[r] for r in runs]
    # the same inputs, labels and noise seeds reached both models
    for (a_in, a_lab, a_seed), (b_in, b_lab, b_seed) in zip(still.calls, noise.calls):
        assert torch.equal(a_in, b_in) and torch.equal(a_lab, b_lab) and a_seed == b_seed
    results = [json.loads((run / "results.json").read_text()) for run in runs]
    assert results[0]["metrics"]["pairs_fingerprint"] == results[1]["metrics"]["pairs_fingerprint"]
    assert "deepface" in results[0]["skipped"]["classifier:deepface"]  # skipped cleanly, with the reason
    rows = table.set_index("run")
    assert rows.loc["still-seen", "acd_grid"] == pytest.approx(0.0, abs=1e-6)  # identical frames
    assert rows.loc["still-seen", "acd_i_grid"] == pytest.approx(0.0, abs=1e-6)
    assert rows.loc["still-seen", "verif_distance_grid"] < rows.loc["noise-unseen", "verif_distance_grid"]
    assert rows.loc["still-seen", "ssim"] > rows.loc["noise-unseen", "ssim"]
    assert 0 <= rows.loc["real", "auc_grid"] <= 1 and rows.loc["real", "acd_grid"] > 0
    for column in ("ssim", "mse", "psnr", "cas_fer", "agreement_fer", "verif_acc_default_grid", "verif_acc_tuned_grid"):
        assert np.isfinite(rows.loc["still-seen", column]), column
    # a second call with the same settings resumes from the stored results instead of generating again
    calls = len(still.calls)
    # ... also when handed the config notebook 05 makes and validates once
    grid = GridColourExtractor()
    config = make_evaluation_config("tiny", custom_extractors={grid.name: grid}, extractors=[grid.name],
                                    classifiers=["fer", "deepface"], n_pairs=6, seed=0)
    again = evaluate_runs(list(runs), extractors=[grid], config=config,
                          load_generator=lambda run, device: runs[Path(run)])
    assert len(still.calls) == calls
    pd.testing.assert_series_equal(again["ssim"], table["ssim"])
    with pytest.raises(ValueError, match="with config"):
        evaluate_runs(list(runs), classifiers=["fer"], config=config)
    saved, arrays = load_results(tmp_path / "out")
    assert len(saved) == 3 and (tmp_path / "out" / "results.md").read_text().startswith("| run")
    assert arrays["still-seen"]["distances_grid"].shape == (6,)
    assert arrays["still-seen"]["confusion_fer"].sum() == 6
