"""Faults and bad files: killed writers, damaged checkpoints/caches/splits, two writers, unsafe pickles."""
from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lib import io as lio
from lib.paths import REPO_ROOT

_WRITER = """
import os, sys, time
from lib import io as lio
def stall(*args):  # the temp file is written; hold here, before the rename, until killed
    print("writing", flush=True)
    time.sleep(600)
lio.os.replace = stall
lio.atomic_write_bytes(sys.argv[1], os.urandom(1 << 20))
"""


def test_killed_writers_temp_files_are_swept_at_the_next_write(tmp_path):
    target = tmp_path / "checkpoint.pt"
    for _ in range(4):  # SIGKILL writers in the middle of their writes (after the data, before the rename)
        writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(target)], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                                  text=True)
        assert writer.stdout.readline().strip() == "writing"
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        writer.stdout.close()
        # this writer's temp file is left; the one the previous killed writer left was swept by this write
        left = list(tmp_path.glob(".checkpoint.pt.*.tmp"))
        assert len(left) == 1 and left[0].name.startswith(f".checkpoint.pt.pid{writer.pid}."), left
    live = tmp_path / f".checkpoint.pt.pid{os.getppid()}.x.tmp"  # a live writer's temp file is kept
    live.write_bytes(b"in progress")
    lio.atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert sorted(tmp_path.iterdir()) == sorted([target, live])


def test_failed_write_removes_its_temp_file(tmp_path, monkeypatch):
    def full_disk(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(lio.os, "replace", full_disk)
    with pytest.raises(OSError, match="the disk is full"):
        lio.atomic_write_bytes(tmp_path / "out.pt", b"x" * 1000)
    assert list(tmp_path.iterdir()) == []


class _WritesAFile:  # unpickling this would create a file: what a crafted checkpoint does
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (Path.write_text, (Path(self.path), "pwned"))


def test_a_crafted_pickle_is_refused_and_runs_nothing(tmp_path):
    import torch

    marker = tmp_path / "pwned.txt"
    crafted = tmp_path / "checkpoint.pt"
    torch.save({"model": {}, "payload": _WritesAFile(marker)}, crafted)
    with pytest.raises(lio.CheckpointError, match=r"not loaded \(loading it could run code\); delete .* and train again"):
        lio.load_checkpoint(crafted)
    assert not marker.exists()


def test_a_checkpoint_or_run_config_of_another_format_version_is_refused_naming_the_version(tmp_path):
    """Checkpoints and run configs carry FORMAT_VERSION; one written before it was recorded (version 1) or by
    another version fails on reading with the version that wrote it and the fix; nothing converts it."""
    import torch

    from lib.train.options import make_config
    from lib.train.systems import load_generator, run_system

    cfg = make_config(preset="tiny")
    path = lio.save_checkpoint(tmp_path / "checkpoint.pt", {"step": 3}, cfg)
    assert lio.load_checkpoint(path)["format_version"] == lio.FORMAT_VERSION
    torch.save({"step": 3, "config": lio.to_dict(cfg), "config_class": "GANConfig"}, tmp_path / "old.pt")  # v1
    with pytest.raises(lio.FormatVersionError, match=r"old.pt was written by format version 1 .* reads format "
                                                     f"{lio.FORMAT_VERSION} only.*run it again"):
        lio.load_checkpoint(tmp_path / "old.pt")
    torch.save({"step": 3, "format_version": lio.FORMAT_VERSION + 1}, tmp_path / "newer.pt")
    with pytest.raises(lio.FormatVersionError, match=f"format version {lio.FORMAT_VERSION + 1}"):
        lio.load_checkpoint(tmp_path / "newer.pt")
    run = tmp_path / "run"
    lio.save_config(cfg, run / "config.json")
    assert run_system(run) == "vicegan" and lio.read_json(run / "config.json")["format_version"] == lio.FORMAT_VERSION
    stored = lio.read_json(run / "config.json")
    del stored["format_version"]
    lio.atomic_write_json(run / "config.json", stored)
    for read in (run_system, load_generator):
        with pytest.raises(lio.FormatVersionError, match=r"config.json was written by format version 1"):
            read(run)


@pytest.mark.parametrize("damage", ["truncate", "empty", "garbage"])
def test_a_damaged_checkpoint_names_its_path_and_the_fix(tmp_path, damage):
    import numpy as np
    import torch

    path = lio.save_checkpoint(tmp_path / "checkpoint.pt", {"model": {"w": torch.ones(1000)}, "step": 3,
                                                             "rng": {"keys": np.arange(5)}})
    data = path.read_bytes()
    path.write_bytes({"truncate": data[: len(data) // 2], "empty": b"", "garbage": os.urandom(len(data))}[damage])
    with pytest.raises(lio.CheckpointError, match=f"{path} is damaged or truncated.*; delete {path} and train again"):
        lio.load_checkpoint(path)


def test_checkpoints_hold_only_plain_values_so_rng_states_survive_weights_only(tmp_path):
    import random

    import numpy as np
    import torch

    from lib.utils import global_rng_states, restore_global_rng_states, seed_everything

    seed_everything(3)
    path = lio.save_checkpoint(tmp_path / "c.pt", {"rng": global_rng_states(), "when": np.float64(1.5)})
    expected = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    state = lio.load_checkpoint(path)
    assert state["when"] == 1.5 and isinstance(state["when"], float)
    restore_global_rng_states(state["rng"])
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == expected


@pytest.fixture
def built_cache(tmp_path):
    from lib.data.preprocess import build_cache
    from test_mug import write_fixture_tree

    tree = write_fixture_tree(tmp_path / "mug")
    with pytest.warns(UserWarning):
        folder = build_cache(tree, image_size=16, out_root=tmp_path / "cache", progress=False)
    return tree, folder


def _zero_frames(file: Path) -> None:
    """Zero a run of bytes inside the frames member (the file stays a valid zip of the same size)."""
    data = bytearray(file.read_bytes())
    middle = len(data) // 3
    data[middle:middle + 4096] = bytes(4096)
    file.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["truncate", "zero", "split", "meta"])
def test_a_damaged_cache_is_never_used_and_01_rebuilds_it(built_cache, damage, capsys):
    import numpy as np

    from lib.data.cache import DamagedCacheError, load_cache
    from lib.data.preprocess import build_cache

    tree, folder = built_cache
    frames = np.array(load_cache(folder).frames)
    target = {"truncate": folder / "cache.npz", "zero": folder / "cache.npz", "split": folder / "split.json",
              "meta": folder / "meta.json"}[damage]
    if damage == "zero":
        _zero_frames(target)
    else:
        target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
    with pytest.raises(DamagedCacheError, match=f"{target} is damaged .*re-run notebooks/01_preprocess.ipynb"):
        load_cache(folder)
    again = build_cache(tree, image_size=16, out_root=folder.parent, progress=False)
    assert again == folder and "rebuilding it" in capsys.readouterr().out
    np.testing.assert_array_equal(load_cache(folder).frames, frames)


_FAILED_RUN = """
import sys
from lib.paths import run_dir
folder = run_dir("01_preprocess", description="small-center64")
(folder / "config.json").write_text("{}")
print(folder)
sys.exit("failed before writing anything else")
"""


def test_a_failed_runs_empty_numbered_folder_is_swept_by_the_next_run(tmp_path, monkeypatch):
    from lib.paths import run_dir

    monkeypatch.setenv("VICE_RUNS_DIR", str(tmp_path))
    env = {**os.environ, "VICE_RUNS_DIR": str(tmp_path)}
    failed = Path(subprocess.run([sys.executable, "-c", _FAILED_RUN], cwd=REPO_ROOT, env=env, capture_output=True,
                                 text=True).stdout.strip())
    assert failed.is_dir() and failed.name == "00000-small-center64"
    alive = run_dir("01_preprocess", description="live")  # this process is alive: its folder stays
    (alive / "config.json").write_text("{}")
    assert not failed.exists()
    kept = run_dir("01_preprocess", description="next")
    assert alive.is_dir() and kept.name == "00001-next"
    (kept / "report.json").write_text("{}")  # a run that wrote results is never swept
    assert sorted(p.name for p in (tmp_path / "01_preprocess").iterdir()) == ["00000-live", "00001-next"]


@pytest.mark.parametrize("field, value", [("steps", 2.5), ("image_batch", 2.5), ("finetune", "yes"), ("seed", "0"),
                                          ("learning_rate", "fast")])
def test_gan_config_fields_are_type_checked_before_any_work(field, value):
    from lib.config import ConfigError
    from lib.train.options import make_config, validate

    with pytest.raises(ConfigError, match=f"invalid {field}={value!r}"):
        validate(make_config(preset="tiny", **{field: value}))


from test_gan_training import ae_checkpoint, cache_dir  # noqa: E402, F401 (fixtures)


@pytest.mark.parametrize("system", ["vicegan", "fevgan"])
def test_sigterm_checkpoints_the_step_and_resumes_with_identical_losses(cache_dir, ae_checkpoint, tmp_path,  # noqa: F811
                                                                         monkeypatch, system):
    """SIGTERM (Slurm's time limit, scancel, a kernel shutdown) arriving during step 3 of 6: the loop finishes
    that step, writes its checkpoint and raises TrainingStopped; running again resumes and logs exactly the
    losses of an uninterrupted run."""
    import lib.train.fevgan as fevgan_module
    import lib.train.gan as gan_module
    from lib.io import load_checkpoint, read_jsonl
    from lib.train.options import resolve_config
    from lib.train.stopping import TrainingStopped
    from lib.train.systems import train
    from test_gan_training import _config

    kwargs = dict(steps=6, log_every=1, checkpoint_every=100, sample_every=100, system=system,
                  **({"recipe": "fast"} if system == "vicegan" else {}))  # VICE-GAN's learning recipe
    cfg = resolve_config(_config(cache_dir, ae_checkpoint, "ae", **kwargs))
    train(cfg, tmp_path / "whole", progress=False)

    module, name = (gan_module if system == "vicegan" else fevgan_module), "train_step"
    original, calls = getattr(module, name), []

    def step_then_signal(*args, **kw):
        calls.append(1)
        out = original(*args, **kw)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return out

    monkeypatch.setattr(module, name, step_then_signal)
    with pytest.raises(TrainingStopped, match="SIGTERM after step 3") as stopped:
        train(cfg, tmp_path / "stopped", progress=False)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is removed again
    assert stopped.value.step == 3 and not (tmp_path / "stopped" / "train_done.json").exists()
    assert load_checkpoint(tmp_path / "stopped" / "checkpoint.pt")["step"] == 3
    monkeypatch.setattr(module, name, original)
    train(cfg, tmp_path / "stopped", progress=False)
    losses = [[{k: v for k, v in r.items() if k.startswith(("d_", "g_"))} for r in read_jsonl(p / "stats.jsonl")
               if "g_total" in r] for p in (tmp_path / "whole", tmp_path / "stopped")]
    assert len(losses[0]) == 6 and losses[0] == losses[1]
    assert not list((tmp_path / "stopped").glob("*.tmp*"))  # no half-written file


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_an_unwritable_folder_gives_one_clear_message_and_keeps_the_old_file(tmp_path, monkeypatch, code):
    target = tmp_path / "results.csv"
    lio.atomic_write_text(target, "old\n")
    real_replace = os.replace

    def failing_replace(source, destination):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(lio.os, "replace", failing_replace)
    with pytest.raises(lio.UnwritableError, match=f"cannot write results.csv in {tmp_path}") as error:
        lio.atomic_write_text(target, "new\n" * 1000)
    assert "MB needed" in str(error.value) and "run the same command again" in str(error.value)
    monkeypatch.setattr(lio.os, "replace", real_replace)
    assert target.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["results.csv"]


class _FullDisk:
    """Makes the ``nth`` write of a file whose name contains ``name`` fail with ENOSPC (a stats line: half of it
    reaches the file first, as on a disk that fills mid-write)."""

    def __init__(self, monkeypatch, name: str, nth: int):
        self.name, self.nth, self.seen = name, nth, 0
        real_replace, real_open = os.replace, open

        def replace(source, destination):
            if self._hit(destination):
                raise OSError(errno.ENOSPC, "No space left on device")
            return real_replace(source, destination)

        def opened(file, mode="r", *args, **kwargs):
            handle = real_open(file, mode, *args, **kwargs)
            if "a" in mode and self._hit(file):
                write = handle.write

                def half_then_full(text):
                    write(text[: len(text) // 2])
                    handle.flush()
                    raise OSError(errno.ENOSPC, "No space left on device")

                handle.write = half_then_full
            return handle

        monkeypatch.setattr(lio.os, "replace", replace)
        monkeypatch.setattr(lio, "open", opened, raising=False)

    def _hit(self, path) -> bool:
        if self.name not in Path(path).name:
            return False
        self.seen += 1
        return self.seen == self.nth


@pytest.mark.parametrize("name,nth", [("checkpoint.pt", 2), ("stats.jsonl", 4), ("step-", 1)])
def test_a_full_disk_stops_training_cleanly_and_it_resumes_when_space_returns(cache_dir, ae_checkpoint, tmp_path,  # noqa: F811
                                                                               monkeypatch, name, nth):
    from lib.io import read_jsonl
    from lib.train.options import resolve_config
    from lib.train.systems import train
    from test_gan_training import _config

    cfg = resolve_config(_config(cache_dir, ae_checkpoint, "ae", recipe="fast", steps=6, log_every=1,
                                 checkpoint_every=2, sample_every=3))
    train(cfg, tmp_path / "whole", progress=False)
    patch = monkeypatch.context()
    with patch as context:
        _FullDisk(context, name, nth)
        with pytest.raises(lio.UnwritableError, match=f"in {tmp_path / 'full'}"):
            train(cfg, tmp_path / "full", progress=False)
    run = tmp_path / "full"
    assert not list(run.rglob("*.tmp")) and not (run / "train_done.json").exists()
    read_jsonl(run / "stats.jsonl")  # whole lines only: the half-written one was cut
    train(cfg, run, progress=False)  # space is back: resumes from the last good checkpoint
    losses = [[{k: v for k, v in r.items() if k.startswith(("d_", "g_"))} for r in read_jsonl(p / "stats.jsonl")
               if "g_total" in r] for p in (tmp_path / "whole", run)]
    assert len(losses[0]) == 6 and losses[0] == losses[1]
