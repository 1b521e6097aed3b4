"""Faults and bad files: killed writers, damaged checkpoints/caches/splits, two writers, unsafe pickles."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lib import io as lio
from lib.paths import REPO_ROOT

_WRITER = """
import os, sys
from lib.io import atomic_write_bytes
data = os.urandom(64 << 20)
print("ready", flush=True)
while True:
    atomic_write_bytes(sys.argv[1], data)
"""


def test_killed_writers_temp_files_are_swept_at_the_next_write(tmp_path):
    target = tmp_path / "checkpoint.pt"
    left = 0
    for _ in range(4):  # SIGKILL writers in the middle of their writes
        writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(target)], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                                  text=True)
        assert writer.stdout.readline().strip() == "ready"
        time.sleep(0.3)
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        writer.stdout.close()
        left = max(left, len(list(tmp_path.glob(".checkpoint.pt.*.tmp"))))
    assert left >= 1, "the kills never hit a write in progress; the test proves nothing"
    live = tmp_path / f".checkpoint.pt.pid{os.getppid()}.x.tmp"  # a live writer's temp file is kept
    live.write_bytes(b"in progress")
    lio.atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert sorted(tmp_path.iterdir()) == sorted([target, live])


def test_failed_write_removes_its_temp_file(tmp_path, monkeypatch):
    def full_disk(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(lio.os, "replace", full_disk)
    with pytest.raises(OSError, match="No space"):
        lio.atomic_write_bytes(tmp_path / "out.pt", b"x" * 1000)
    assert list(tmp_path.iterdir()) == []
