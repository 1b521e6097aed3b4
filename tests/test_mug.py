"""MUG reader on a small fixture tree with every quirk of the real layout.

``write_fixture_tree`` is also used by test_preprocess.py.  Frame ``n`` of every take
is a flat image of grey level ``FRAME_STEP * n`` so the order can be read back.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lib.data import mug

FRAME_STEP = 3
SIDE = 32


def write_take(folder: Path, n_frames: int, padded: bool = True, size: int = SIDE) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(n_frames):
        name = f"img_{n:04d}.jpg" if padded else f"img_{n}.jpg"
        value = (FRAME_STEP * n) % 256
        Image.fromarray(np.full((size, size, 3), value, np.uint8)).save(folder / name, quality=95)
    return folder


def write_fixture_tree(root: Path, long: int = 70, short: int = 20) -> Path:
    """6 emotion videos (one short), 1 neutral, 1 nsg take, a session level, stray files."""
    take = write_take(root / "001" / "anger" / "take000", long)
    (take / "take000.avi").write_bytes(b"not a video we read")
    (take / "Thumbs.db").write_bytes(b"\x00\x01")
    write_take(root / "001" / "anger" / "take001nsg", long)
    write_take(root / "001" / "happiness" / "take000end", long)
    write_take(root / "001" / "neutral" / "take000", long)
    write_take(root / "001" / "sadness" / "take002", short)
    (root / "001" / "sadness" / "misc").mkdir()
    write_take(root / "002" / "session0" / "fear" / "take000", long)
    write_take(root / "002" / "session1" / "surprise" / "take001", long)
    write_take(root / "003" / "disgust" / "take000", long, padded=False)  # img_2 must come before img_10
    (root / "README.txt").write_text("not data")
    write_take(root / "003" / "disgust" / ".take001-partial", 3)  # hidden: silently ignored
    return root


@pytest.fixture
def tree(tmp_path):
    return write_fixture_tree(tmp_path / "mug")


def test_scan_counts_every_quirk(tree):
    scan = mug.scan_mug(tree)
    keys = sorted(v.key for v in scan.videos)
    assert keys == ["001/anger/take000", "001/happiness/take000end", "001/sadness/take002",
                    "002/session0/fear/take000", "002/session1/surprise/take001", "003/disgust/take000"]
    assert [v.key for v in scan.neutral] == ["001/neutral/take000"]
    assert scan.subjects == ["001", "002", "003"]
    reasons = {Path(s.path).name: s.reason for s in scan.skipped}
    assert "nsg" in reasons["take001nsg"] and "take" in reasons["misc"] and len(scan.skipped) == 2
    by_key = {v.key: v for v in scan.videos}
    assert by_key["002/session0/fear/take000"].session == "session0"
    assert by_key["001/anger/take000"].session is None
    # .avi and Thumbs.db are not frames
    assert by_key["001/anger/take000"].n_frames == 70
    assert by_key["001/sadness/take002"].n_frames == 20
    counts = scan.counts()
    assert counts["videos"] == 6 and counts["neutral_videos"] == 1 and counts["frames"] == 5 * 70 + 20


def test_nsg_kept_when_asked(tree):
    scan = mug.scan_mug(tree, drop_nsg=False)
    assert "001/anger/take001nsg" in {v.key for v in scan.videos}
    assert len(scan.videos) == 7


def test_frames_ordered_by_number_not_lexically(tree):
    scan = mug.scan_mug(tree)
    record = next(v for v in scan.videos if v.subject == "003")
    names = [p.name for p in record.frame_paths]
    assert names[:3] == ["img_0.jpg", "img_1.jpg", "img_2.jpg"] and names[10] == "img_10.jpg"
    frames = mug.read_frames(record)
    assert frames.shape == (70, SIDE, SIDE, 3) and frames.dtype == np.uint8
    levels = frames.reshape(70, -1).mean(axis=1)
    expected = (FRAME_STEP * np.arange(70)) % 256
    assert np.abs(levels - expected).max() < 3


def test_missing_root_shows_layout(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        mug.scan_mug(tmp_path / "nowhere")
    assert "nowhere" in str(error.value) and "<emotion>/<take" in str(error.value)


def test_empty_tree_shows_layout(tmp_path):
    (tmp_path / "empty" / "001" / "neutral" / "take000").mkdir(parents=True)
    with pytest.raises(mug.MugLayoutError) as error:
        mug.scan_mug(tmp_path / "empty")
    assert "no emotion videos" in str(error.value) and "img_0000.jpg" in str(error.value)
    write_take(tmp_path / "only_neutral" / "001" / "neutral" / "take000", 3)
    with pytest.raises(mug.MugLayoutError, match="neutral"):
        mug.scan_mug(tmp_path / "only_neutral")


def test_corrupt_frame_raises_naming_the_file(tree):
    bad = tree / "001" / "anger" / "take000" / "img_0005.jpg"
    bad.write_bytes(bad.read_bytes()[:40])  # truncated JPEG
    record = next(v for v in mug.scan_mug(tree).videos if v.key == "001/anger/take000")
    with pytest.raises(mug.CorruptVideoError) as error:
        mug.read_frames(record)
    assert error.value.path == bad and "img_0005.jpg" in str(error.value)


def test_reduced_scale_decoding_keeps_min_side(tmp_path):
    take = write_take(tmp_path / "big" / "001" / "anger" / "take000", 2, size=256)
    record = mug.scan_mug(tmp_path / "big").videos[0]
    assert mug.read_frames(record).shape[1:3] == (256, 256)
    reduced = mug.read_frames(record, min_side=64)
    assert reduced.shape[1] >= 64 and reduced.shape[1] < 256
    assert take.is_dir()


def test_ground_truth_files_are_read(tree):
    record = next(v for v in mug.scan_mug(tree).videos if v.key == "001/anger/take000")
    assert mug.read_truth(record) is None and mug.read_identity(tree, "001") is None
    np.savez(record.folder / mug.TRUTH_FILE, au=np.zeros((70, 3), np.float32), au_names=np.array(["AU01", "AU02", "AU04"]))
    (tree / "001" / mug.IDENTITY_FILE).write_text('{"subject": "001", "vector": [0.1, 0.2]}')
    truth = mug.read_truth(record)
    assert truth["au"].shape == (70, 3) and list(truth["au_names"]) == ["AU01", "AU02", "AU04"]
    assert mug.read_identity(tree, "001")["vector"] == [0.1, 0.2]
