"""The measuring instruments' extra synthetic faces: pooling, which probes take them, other people only,
and one process training a shared probe while the others wait."""
from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

from lib.data.cache import VideoCache
from lib.data.splits import Split


def _cache(subjects, shade: int, with_truth: bool = True, split: Split | None = None) -> VideoCache:
    videos = [np.full((5, 8, 8, 3), shade + i, np.uint8) for i in range(len(subjects))]
    truth = {"au": [np.full((5, 2), shade / 255, np.float32) for _ in subjects], "au_names": ["AU01", "AU02"],
             "identities": {s: np.full(3, shade + i, np.float32) for i, s in enumerate(subjects)}} if with_truth else {}
    return VideoCache.from_videos(videos, subjects, ["anger"] * len(subjects), split=split, **truth)


def test_pooled_cache_adds_training_subjects_and_keeps_the_test_subjects():
    ours = _cache(["001", "002", "003"], 10, split=Split(["001", "002"], ["003"], {"003": ["anger"]}))
    extra = _cache(["001", "002"], 100, split=Split(["001"], ["002"], {}))
    pooled = ours.with_training_subjects(extra, prefix="instrument-")
    assert pooled.split.train_subjects == ["001", "002", "instrument-001", "instrument-002"]
    assert pooled.split.test_subjects == ["003"] and pooled.split.seen_emotions == {"003": ["anger"]}
    assert len(pooled) == 5 and len(pooled.frames) == 25
    for video_id in range(3):  # our videos unchanged
        np.testing.assert_array_equal(pooled.video(video_id), ours.video(video_id))
    for video_id in range(2):  # the extra videos behind them, each with its own frames and AUs
        np.testing.assert_array_equal(pooled.video(3 + video_id), extra.video(video_id))
        np.testing.assert_array_equal(pooled.video_au(3 + video_id), extra.video_au(video_id))
    np.testing.assert_array_equal(pooled.identities["instrument-002"], extra.identities["002"])
    assert ours.split.train_subjects == ["001", "002"]  # the cache itself is not changed


def test_pooling_refuses_caches_that_do_not_match():
    ours = _cache(["001", "002"], 10, split=Split(["001"], ["002"], {}))
    with pytest.raises(ValueError, match="ground-truth AUs differ"):
        ours.with_training_subjects(_cache(["001"], 50, with_truth=False), prefix="x-")
    with pytest.raises(ValueError, match="no subject split"):
        _cache(["001"], 10).with_training_subjects(ours, prefix="x-")


def test_only_the_emotion_and_au_probes_of_the_synthetic_benchmark_take_extra_faces():
    from lib.evaluation.probes import PROBE_PRESETS, probe_config

    synthetic = _cache(["001", "002"], 10, split=Split(["001"], ["002"], {}))
    mug = _cache(["001", "002"], 10, with_truth=False, split=Split(["001"], ["002"], {}))
    for kind in ("emotion", "au"):
        assert probe_config(kind, synthetic, "small").extra_subjects == PROBE_PRESETS["small"]["extra_subjects"] > 0
    assert probe_config("identity", synthetic, "small").extra_subjects == 0
    assert probe_config("emotion", mug, "small").extra_subjects == 0
    with pytest.raises(ValueError, match="synthetic benchmark"):
        probe_config("emotion", mug, "small", extra_subjects=5)
    with pytest.raises(ValueError, match="kind 'identity'"):
        probe_config("identity", synthetic, "small", extra_subjects=5)


def test_instrument_faces_are_other_people_and_the_guard_says_so(monkeypatch, tmp_path):
    import lib.data.synthetic as synthetic
    from lib.data.locate import prepare_dataset
    from lib.evaluation.probes import probe_config, training_cache

    monkeypatch.setenv("VICE_DATA_DIR", str(tmp_path))
    cache = prepare_dataset(None, preset="tiny", out_root=tmp_path / "cache", progress=False)
    config = probe_config("au", cache, "tiny", extra_subjects=2)
    pooled = training_cache(cache, config)
    assert len(pooled.split.train_subjects) == len(cache.split.train_subjects) + 2
    assert pooled.split.test_subjects == cache.split.test_subjects
    extra = {s: v for s, v in pooled.identities.items() if s.startswith("instrument-")}
    assert len(extra) == 2 and pooled.index["subject"].str.startswith("instrument-").sum() == 2 * 6
    for vector in extra.values():  # drawn from another stream than every subject of the benchmark
        assert all(np.abs(vector - v).max() > 1e-3 for v in cache.identities.values())
    # with no seed offset the instrument set would hold the benchmark's own first subjects: refused
    monkeypatch.setattr(synthetic, "INSTRUMENT_SEED_OFFSET", 0)
    with pytest.raises(ValueError, match="shares subjects"):
        training_cache(cache, config)


def test_a_second_process_waits_for_a_shared_lock(tmp_path):
    from lib.locks import waiting_lock

    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from lib.locks import waiting_lock\n"
        f"with waiting_lock({str(tmp_path)!r}, 'probe.lock'):\n"
        "    print('held', flush=True); time.sleep(1.5)\n")], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    started, said = time.time(), []
    with waiting_lock(tmp_path, "probe.lock", poll_s=0.1, say=said.append):
        waited = time.time() - started
    holder.wait(timeout=30)
    assert waited > 0.5 and len(said) == 1 and "waiting for pid" in said[0]
    assert not (tmp_path / "probe.lock").exists()
