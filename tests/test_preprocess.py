"""Face crop, cache building (reuse, invalidation, corrupt takes, ground truth) and cache lookup."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from lib.config import ConfigError
from lib.data import mug
from lib.data.cache import VideoCache, load_cache
from lib.data.locate import find_cache, prepare_dataset, record_latest_cache
from lib.data.detectors import crop_frames
from lib.data.preprocess import build_cache, format_report
from test_mug import FRAME_STEP, write_fixture_tree, write_take

# The fixture tree has subjects with one or two emotions: the split warns about them.
pytestmark = pytest.mark.filterwarnings("ignore:test subject .* has only")

# Where the astronaut's face is in skimage.data.astronaut() (512x512).
FACE_X, FACE_Y = (175, 265), (60, 170)


@pytest.fixture
def tree(tmp_path):
    return write_fixture_tree(tmp_path / "mug")


@pytest.fixture
def astronaut_video():
    from skimage import data
    return np.repeat(data.astronaut()[None], 2, axis=0)


@pytest.mark.parametrize("detector", ["mtcnn", "haar"])
def test_detector_crops_the_face(detector, astronaut_video):
    crops, box, found = crop_frames(astronaut_video, detector=detector, image_size=64, margin=0.3)
    assert found and crops.shape == (2, 64, 64, 3) and crops.dtype == np.uint8
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    assert FACE_X[0] < cx < FACE_X[1] and FACE_Y[0] < cy < FACE_Y[1]
    side = box[2] - box[0]
    assert side == pytest.approx(box[3] - box[1]) and 90 < side < 200  # square, about the face's size
    # The crop is the box region, downscaled: compare with a direct crop of it.
    import cv2
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    direct = cv2.resize(astronaut_video[0, y1:y2, x1:x2], (64, 64), interpolation=cv2.INTER_AREA)
    assert np.abs(crops[0].astype(int) - direct).mean() < 1.0


def test_no_face_falls_back_to_centre():
    blank = np.full((2, 100, 120, 3), 90, np.uint8)
    crops, box, found = crop_frames(blank, detector="haar", image_size=16)
    assert not found and box == (10.0, 0.0, 110.0, 100.0) and crops.shape == (2, 16, 16, 3)


def test_center_and_none_crops():
    frames = np.zeros((1, 40, 80, 3), np.uint8)
    frames[:, :, 20:60] = 255  # the centre square is white
    centre, box, _ = crop_frames(frames, detector="center", image_size=8)
    assert box == (20.0, 0.0, 60.0, 40.0) and centre.min() == 255
    whole, box, _ = crop_frames(frames, detector="none", image_size=8)
    assert box is None and whole[0, :, 0].max() == 0 and whole[0, :, 4].min() == 255


def test_bad_parameters_fail_before_work(tmp_path):
    with pytest.raises(ConfigError, match="'mtcnn', 'haar', 'center', 'none'"):
        build_cache(tmp_path / "does-not-exist", detector="dlib")
    with pytest.raises(ConfigError, match="image_size"):
        build_cache(tmp_path / "does-not-exist", image_size=0)
    with pytest.raises(ConfigError, match="preset"):
        prepare_dataset(tmp_path, preset="huge")


def test_build_cache_counts_and_content(tree, tmp_path):
    bad = tree / "002" / "session1" / "surprise" / "take001" / "img_0007.jpg"
    bad.write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="skipping 002/session1/surprise/take001"):
        folder = build_cache(tree, detector="center", image_size=16, min_frames=64, out_root=tmp_path / "cache",
                             progress=False, verbose=False)
    meta = json.loads((folder / "meta.json").read_text())
    report = meta["report"]
    assert report["too_short"] == ["001/sadness/take002"]
    assert [c["video"] for c in report["corrupt"]] == ["002/session1/surprise/take001"]
    assert "img_0007.jpg" in report["corrupt"][0]["path"]
    assert report["neutral_videos_not_cached"] == 1
    assert meta["counts"]["videos"] == 4 and meta["counts"]["frames"] == 4 * 70
    assert "kept    4 videos of 3 subjects" in format_report(meta)

    cache = load_cache(folder)
    assert isinstance(cache.frames, np.memmap) and cache.frames.shape == (280, 16, 16, 3)
    assert list(cache.index["source"]) == ["001/anger/take000", "001/happiness/take000end",
                                           "002/session0/fear/take000", "003/disgust/take000"]
    assert list(cache.index["label"]) == [0, 3, 2, 1]
    assert list(cache.index["session"]) == ["", "", "session0", ""]
    for video_id in range(4):  # numeric frame order survives (subject 003 has unpadded names)
        levels = cache.video(video_id).reshape(70, -1).mean(axis=1)
        assert np.abs(levels - FRAME_STEP * np.arange(70)).max() < 3
    np.testing.assert_array_equal(load_cache(folder, mmap=False).frames, cache.frames)
    assert cache.video(0).flags.writeable
    import warnings
    from lib.train.gan_data import ClipSampler
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. torch's "non-writable array" warning on a memory map
        assert ClipSampler(cache, [0, 1]).clips(2)[0].shape == (2, 3, 16, 16, 16)
    assert cache.split is not None and cache.au is None and cache.identities == {}


def test_cache_reuse_and_invalidation(tree, tmp_path, capsys):
    out = tmp_path / "cache"
    first = build_cache(tree, image_size=16, out_root=out, progress=False)
    written = (first / "cache.npz").stat().st_mtime_ns
    again = build_cache(tree, image_size=16, out_root=out, progress=False)
    assert again == first and (first / "cache.npz").stat().st_mtime_ns == written
    assert "reusing cache" in capsys.readouterr().out

    resized = build_cache(tree, image_size=8, out_root=out, progress=False)
    assert resized != first and load_cache(resized).image_size == 8
    cropped = build_cache(tree, image_size=16, center_fraction=0.5, out_root=out, progress=False)
    assert cropped not in (first, resized)

    # A new split seed reuses the crops (hard link or copy) but writes its own split.
    reseeded = build_cache(tree, image_size=16, seed=1, out_root=out, progress=False)
    assert reseeded != first and "reusing the crops" in capsys.readouterr().out
    np.testing.assert_array_equal(load_cache(reseeded).frames, load_cache(first).frames)

    write_take(tree / "004" / "anger" / "take000", 70)  # new data -> new cache
    grown = build_cache(tree, image_size=16, out_root=out, progress=False)
    assert grown not in (first, reseeded) and len(load_cache(grown)) == len(load_cache(first)) + 1
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no work folders left


def test_ground_truth_goes_into_cache(tree, tmp_path):
    anger = tree / "001" / "anger" / "take000"
    au = np.random.default_rng(0).random((70, 2)).astype(np.float32)
    np.savez(anger / mug.TRUTH_FILE, au=au, au_names=np.array(["AU06", "AU12"]))
    (tree / "001" / mug.IDENTITY_FILE).write_text(json.dumps({"subject": "001", "vector": [0.5, 0.25]}))
    cache = load_cache(build_cache(tree, image_size=8, out_root=tmp_path / "c", progress=False, verbose=False))
    assert cache.au_names == ["AU06", "AU12"] and cache.au.shape == (len(cache.frames), 2)
    np.testing.assert_allclose(cache.video_au(0), au)
    assert np.isnan(cache.video_au(1)).all()  # no truth for that take
    np.testing.assert_allclose(cache.identity_vector("001"), [0.5, 0.25])
    assert cache.identity_vector("002") is None


def test_from_videos_round_trip():
    videos = [np.full((n, 8, 8, 3), i, np.uint8) for i, n in enumerate([5, 3, 4])]
    cache = VideoCache.from_videos(videos, ["001", "001", "002"], ["anger", "fear", "sadness"])
    assert len(cache) == 3 and cache.frames.shape == (12, 8, 8, 3)
    assert list(cache.labels) == [0, 2, 4] and cache.video(1).shape == (3, 8, 8, 3)
    assert (cache.video(2) == 2).all() and (cache.video(0, [4, 0]) == 0).all()
    assert list(cache.videos_of(subject="001")) == [0, 1] and list(cache.videos_of(emotion="sadness")) == [2]
    with pytest.raises(ConfigError, match="valid choices"):
        VideoCache.from_videos(videos[:1], ["001"], ["neutral"])


def test_find_cache_and_prepare_dataset(tree, tmp_path, monkeypatch):
    monkeypatch.setenv("VICE_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(FileNotFoundError, match="01_preprocess.ipynb.*-p preset tiny"):
        find_cache("tiny")
    cache = prepare_dataset(data_root=tree, preset="tiny", image_size=8, min_frames=64, progress=False)
    assert len(cache) == 5 and cache.split is not None
    assert find_cache("tiny") == cache.path.resolve()
    assert str(cache.path).startswith(str(tmp_path / "data" / "cache"))
    with pytest.raises(FileNotFoundError, match="holds no cache.npz"):
        find_cache("tiny", cache_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="img_0000.jpg"):
        prepare_dataset(data_root=tmp_path / "missing", preset="tiny")
    os.remove(cache.path / "cache.npz")
    with pytest.raises(FileNotFoundError, match="is gone"):
        find_cache("tiny")
    with pytest.raises(FileNotFoundError):
        record_latest_cache("tiny", cache.path)


def test_mtcnn_cache_of_real_jpegs_matches_in_memory_crop(tmp_path, astronaut_video):
    """build_cache decodes JPEGs at a reduced scale; its crop must still be the face."""
    from PIL import Image
    take = tmp_path / "astro" / "001" / "happiness" / "take000"
    take.mkdir(parents=True)
    for n, frame in enumerate(astronaut_video):
        Image.fromarray(frame).save(take / f"img_{n:04d}.jpg", quality=95)
    with pytest.warns(UserWarning, match="only 1 subject kept"):
        folder = build_cache(tmp_path / "astro", detector="mtcnn", image_size=16, min_frames=1,
                             out_root=tmp_path / "cache", progress=False, verbose=False)
    cached = load_cache(folder).video(0)
    expected, _, _ = crop_frames(astronaut_video, detector="mtcnn", image_size=16)
    assert cached.shape == (2, 16, 16, 3)
    assert np.abs(cached.astype(int) - expected).mean() < 8
    assert json.loads((folder / "meta.json").read_text())["report"]["no_face_fallback"] == []


def test_interrupted_build_resumes(tree, tmp_path, monkeypatch, capsys):
    from lib.data import preprocess
    monkeypatch.setattr(preprocess, "CHECKPOINT_EVERY", 1)
    real = preprocess._process_video
    calls = []

    def crash_on_third(record, *args):
        calls.append(record.key)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(record, *args)

    monkeypatch.setattr(preprocess, "_process_video", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        build_cache(tree, image_size=8, out_root=tmp_path / "c", progress=False)
    partial = [p for p in (tmp_path / "c").iterdir()]
    assert len(partial) == 1 and partial[0].name.startswith(".partial-")
    assert not (partial[0] / "building.lock").exists()
    monkeypatch.setattr(preprocess, "_process_video", lambda record, *args: (calls.append(record.key), real(record, *args))[1])
    folder = build_cache(tree, image_size=8, out_root=tmp_path / "c", progress=False)
    assert "resuming: 2 of 5 videos" in capsys.readouterr().out
    assert len(calls) == 3 + 3  # the interrupted video and the two after it, nothing twice
    fresh = load_cache(build_cache(tree, image_size=8, out_root=tmp_path / "fresh", progress=False, verbose=False))
    resumed = load_cache(folder)
    np.testing.assert_array_equal(resumed.frames, fresh.frames)
    assert resumed.index.equals(fresh.index) and resumed.meta["counts"] == fresh.meta["counts"]


def test_live_builder_blocks_a_second_one(tree, tmp_path):
    from lib.data import preprocess
    scan = mug.scan_mug(tree)
    name, _ = preprocess._cache_names(scan, preprocess.PreprocessConfig(image_size=8), preprocess.data_fingerprint(scan))
    work = tmp_path / "c" / f".partial-{name}"
    work.mkdir(parents=True)
    import json
    import socket

    def lock_of(pid):  # lib.locks' lock file
        return json.dumps({"pid": pid, "host": socket.gethostname(), "since": 0})

    (work / "building.lock").write_text(lock_of(os.getppid()))  # a live process that is not us
    with pytest.raises(RuntimeError, match=f"pid {os.getppid()} .* is building this cache"):
        build_cache(tree, image_size=8, out_root=tmp_path / "c", progress=False)
    (work / "building.lock").write_text(lock_of(999999999))  # a dead one: taken over
    assert build_cache(tree, image_size=8, out_root=tmp_path / "c", progress=False).is_dir()
