"""The input neutraliser (recipe option ``neutralise_input``): network, training pairs, cache, GAN plumbing."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from lib.models.neutraliser import InputNeutraliser
from lib.train.gan import NEUTRALISER_FIGURE, prepare_training, build_models, generator_inputs, load_generator, train_gan
from lib.train.options import validate
from lib.train.neutraliser import NeutraliserSettings, neutraliser_path, posed_first_frames, train_neutraliser
from test_gan_training import _config, ae_checkpoint, cache_dir  # noqa: F401 (fixtures)


def test_an_untrained_neutraliser_is_the_identity():
    torch.manual_seed(0)
    frames = torch.rand(3, 3, 64, 64) * 2 - 1
    net = InputNeutraliser(8)
    torch.testing.assert_close(net(frames), frames)
    assert net.change(frames).abs().max() == 0
    with pytest.raises(ValueError, match="multiple of 8"):
        InputNeutraliser(12)


def test_training_pairs_are_each_takes_first_frame_in_the_frames_pose(cache_dir):  # noqa: F811
    from lib.data.cache import load_cache

    cache = load_cache(cache_dir)
    ids = cache.index["video_id"].to_numpy()[:2]
    rows, targets, takes = posed_first_frames(cache, ids)
    first = cache.index.set_index("video_id").loc[ids[0]]
    assert len(rows) == len(targets) == len(takes) == int(cache.index.set_index("video_id").loc[ids, "length"].sum())
    assert rows[0] == first["start"] and takes[0] == 0 and takes[-1] == 1
    np.testing.assert_array_equal(targets[0], np.asarray(cache.frames[int(first["start"])]))  # no motion at t = 0


def test_a_moved_face_gets_its_first_frame_moved_the_same_way():
    """The target of a frame whose head moved is the first frame moved into that pose, not the first frame."""
    from lib.data.cache import VideoCache

    rng = np.random.default_rng(0)
    base = np.zeros((64, 96, 3), np.uint8)
    base[20:44, 30:54] = 200  # a bright square "face" with texture
    base[24:40, 34:50] = rng.integers(0, 120, size=(16, 16, 3))
    frames = np.stack([base[:, 16:80], base[:, 14:78]])  # frame 1: the face moved 2 px right
    cache = VideoCache.from_videos([frames], ["000"], ["anger"])
    _, targets, _ = posed_first_frames(cache, cache.index["video_id"].to_numpy())
    error_posed = np.abs(targets[1].astype(int) - frames[1].astype(int))[16:48, 16:48].mean()
    error_first = np.abs(frames[0].astype(int) - frames[1].astype(int))[16:48, 16:48].mean()
    assert error_posed < 0.25 * error_first


def test_train_neutraliser_stores_once_and_reuses(cache_dir, tmp_path, monkeypatch):  # noqa: F811
    from lib.data.cache import load_cache
    import lib.train.neutraliser as module

    monkeypatch.setenv("VICE_DATA_DIR", str(tmp_path / "data"))
    cache = load_cache(cache_dir)
    ids = cache.index["video_id"].to_numpy()[:4]
    settings = NeutraliserSettings(steps=3, width=8, batch_size=4)
    net = train_neutraliser(cache, cache_dir, ids, settings, progress=False)
    path = neutraliser_path(cache_dir, ids, settings)
    assert path.is_file() and path.with_suffix(".json").is_file()
    assert not any(p.requires_grad for p in net.parameters()) and net.change(torch.zeros(1, 3, 64, 64)).abs().sum() > 0
    calls = []
    monkeypatch.setattr(module, "_train", lambda *a, **k: calls.append(a))
    again = train_neutraliser(cache, cache_dir, ids, settings, progress=False)
    assert calls == []  # read from its file
    for a, b in zip(net.state_dict().values(), again.state_dict().values()):
        torch.testing.assert_close(a, b)
    assert neutraliser_path(cache_dir, ids[:3], settings) != path  # other training videos, another file
    path.write_bytes(b"damaged")
    with pytest.raises(Exception, match=str(path.name)):
        train_neutraliser(cache, cache_dir, ids, settings, progress=False)


def test_generator_reads_neutralised_inputs_and_the_checkpoint_keeps_them(cache_dir, ae_checkpoint, tmp_path):  # noqa: F811
    # probes on (they hold the validation videos out of training, the neutraliser's too), as the run below
    cfg = _config(cache_dir, ae_checkpoint, "ae", recipe="fast", steps=2, log_every=1, probe_every=2,
                  content_mode="single")
    cfg, cache, train_ids, _ = prepare_training(validate(cfg))
    assert cfg.neutralise_input is True and cfg.neutraliser_steps == 4  # fast's value, tiny's steps
    models = build_models(cfg, torch.device("cpu"), cache, train_ids)
    videos = torch.rand(2, 3, 16, 64, 64) * 2 - 1
    inputs = generator_inputs(models, cfg, videos)
    torch.testing.assert_close(inputs[:, :, 1:], videos[:, :, 1:])  # single: only the first frame is read
    torch.testing.assert_close(inputs[:, :, 0], models.neutraliser(videos[:, :, 0]))
    assert not torch.equal(inputs[:, :, 0], videos[:, :, 0])
    every = generator_inputs(models, dataclasses.replace(cfg, content_mode="all"), videos)
    torch.testing.assert_close(every[:, :, 5], models.neutraliser(videos[:, :, 5]))
    summary = train_gan(cfg, tmp_path / "run", progress=False, probe=lambda generator: {"headline": 0.5})
    assert summary["neutraliser_figure"] == str(tmp_path / "run" / NEUTRALISER_FIGURE)
    assert (tmp_path / "run" / NEUTRALISER_FIGURE).stat().st_size > 1000
    for snapshot in ("latest", "best"):  # best.pt keeps the neutraliser beside the sampling generator
        generator = load_generator(tmp_path / "run", snapshot=snapshot)
        assert generator.models.neutraliser is not None
        for a, b in zip(models.neutraliser.state_dict().values(), generator.models.neutraliser.state_dict().values()):
            torch.testing.assert_close(a, b)  # the same cached network, restored from the checkpoint
    off = _config(cache_dir, ae_checkpoint, "ae", recipe="fast", neutralise_input=False)
    cfg_off, cache, train_ids, _ = prepare_training(validate(off))
    assert build_models(cfg_off, torch.device("cpu"), cache, train_ids).neutraliser is None
    mocogan, cache, train_ids, _ = prepare_training(validate(_config(cache_dir, ae_checkpoint, "none", recipe="fast",
                                                                 autoencoder=str(ae_checkpoint))))
    assert build_models(mocogan, torch.device("cpu"), cache, train_ids).neutraliser is None  # no input frames
