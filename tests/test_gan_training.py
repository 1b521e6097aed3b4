"""GAN training (lib.train.gan): steps, encoders, content modes, resume, validation, generator loading."""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from lib.config import ConfigError
from lib.constants import EMOTIONS
from lib.io import load_checkpoint, read_jsonl, save_checkpoint
from lib.train.gan import (build_models, content_codes, load_generator, make_optimizers, train_gan,
                           train_step)
from lib.train.gan_config import VICEGANOptions
from lib.train.options import make_config, resolve_config, validate
from lib.train.gan_data import ClipSampler


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    """A tiny real cache on disk: 5 subjects x 3 emotions, 40 frames of 64x64 each, with a split."""
    from lib.data.cache import VideoCache, save_cache_file
    from lib.data.splits import save_split, split_for_cache

    rng = np.random.default_rng(0)
    videos, subjects, emotions = [], [], []
    for subject in range(5):
        face = rng.integers(0, 255, size=(1, 64, 64, 3))
        for emotion in EMOTIONS[:3]:
            wobble = rng.integers(-25, 25, size=(40, 64, 64, 3))
            videos.append(np.clip(face + wobble, 0, 255).astype(np.uint8))
            subjects.append(f"{subject:03d}")
            emotions.append(emotion)
    cache = VideoCache.from_videos(videos, subjects, emotions)
    folder = tmp_path_factory.mktemp("gan_cache")
    save_cache_file(folder / "cache.npz", cache)
    save_split(split_for_cache(cache, seed=0), folder / "split.json")
    return folder


@pytest.fixture(scope="module")
def ae_checkpoint(tmp_path_factory) -> Path:
    """An (untrained) autoencoder checkpoint in the format lib.train.autoencoders writes."""
    from lib.models.autoencoders import build_autoencoder
    from lib.train.autoencoders import ae_config

    cfg = ae_config("tiny", "sae-small")
    torch.manual_seed(0)
    model = build_autoencoder(cfg.name, cfg.code_dim, cfg.image_size, cfg.width)
    return save_checkpoint(tmp_path_factory.mktemp("ae") / "checkpoint.pt", {"model": model.state_dict()}, cfg)


def _config(cache_dir, ae_checkpoint, encoder, **extra) -> VICEGANOptions:
    """A tiny config of ``extra["system"]`` (VICE-GAN by default) with ``encoder`` where the system has one."""
    from lib.train.options import system_options

    takes = system_options(extra.get("system", "vicegan"))
    if encoder == "ae" and "autoencoder" in takes:
        extra.setdefault("autoencoder", str(ae_checkpoint))
    if encoder == "facenet":
        extra.setdefault("facenet_weights", "random")
        extra.setdefault("facenet_input_size", 80)
    if "encoder" in takes:
        extra["encoder"] = encoder
    return make_config(preset="tiny", cache_dir=str(cache_dir), device="cpu", **extra)


def _parts(cfg: VICEGANOptions):
    from lib.data.cache import load_cache
    from lib.data.splits import composition_videos

    cfg = resolve_config(cfg)
    cache = load_cache(cfg.cache_dir)
    cfg = dataclasses.replace(cfg, image_size=64)
    torch.manual_seed(0)
    models = build_models(cfg, torch.device("cpu"))
    sampler = ClipSampler(cache, composition_videos(cache, cfg.composition)[0], cfg.video_length, cfg.every_nth)
    noise = torch.Generator().manual_seed(1)
    return cfg, models, make_optimizers(models, cfg), sampler, noise


def _snapshot(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _changed(before: list[torch.Tensor], module: torch.nn.Module) -> bool:
    return any(not torch.equal(a, b) for a, b in zip(before, module.parameters()))


@pytest.mark.parametrize("encoder", ["ae", pytest.param("facenet", marks=pytest.mark.slow), "none"])
def test_one_step_updates_all_networks_with_finite_losses(cache_dir, ae_checkpoint, encoder):
    cfg, models, optimizers, sampler, noise = _parts(_config(cache_dir, ae_checkpoint, encoder))
    before = {name: _snapshot(getattr(models, name)) for name in ("generator", "image_discriminator", "video_discriminator")}
    log = train_step(models, optimizers, sampler, cfg, noise, torch.device("cpu"))
    for name, params in before.items():
        assert _changed(params, getattr(models, name)), f"{name} did not change"
    assert all(math.isfinite(v) for v in log.values())
    expected = {"d_image", "d_video", "d_category", "g_image_adv", "g_video_adv", "g_category", "g_total"}
    assert expected <= set(log)
    assert ("g_consistency" in log) == (encoder != "none")
    shares = [log[k] for k in log if k.startswith("share_") and k != "share_adversarial"]
    assert sum(shares) == pytest.approx(1.0)


def test_single_repeats_the_first_code_and_all_does_not(cache_dir, ae_checkpoint):
    cfg, models, _, sampler, noise = _parts(_config(cache_dir, ae_checkpoint, "ae"))
    videos, _, _ = sampler.clips(2)
    codes_all = content_codes(models, cfg, videos, noise)
    codes_single = content_codes(models, dataclasses.replace(cfg, content_mode="single"), videos, noise)
    assert codes_all.shape == codes_single.shape == (2, 16, 50)
    assert torch.equal(codes_single[:, 0], codes_single[:, -1])
    assert torch.allclose(codes_single[:, 0], codes_all[:, 0], atol=1e-6)
    assert not torch.allclose(codes_all[:, 0], codes_all[:, 1])


@pytest.mark.parametrize("finetune", [False, True])
def test_frozen_encoder_stays_and_finetuned_one_learns(cache_dir, ae_checkpoint, finetune):
    cfg, models, optimizers, sampler, noise = _parts(_config(cache_dir, ae_checkpoint, "ae", finetune=finetune))
    before = _snapshot(models.encoder)
    for _ in range(2):
        train_step(models, optimizers, sampler, cfg, noise, torch.device("cpu"))
    assert _changed(before, models.encoder) == finetune


def test_zero_weights_drop_terms(cache_dir, ae_checkpoint):
    cfg, models, optimizers, sampler, noise = _parts(_config(cache_dir, ae_checkpoint, "ae", image_adv_weight=0.0,
                                                            category_weight=0.0, consistency_scale=0.0))
    before = _snapshot(models.image_discriminator)
    log = train_step(models, optimizers, sampler, cfg, noise, torch.device("cpu"))
    assert not _changed(before, models.image_discriminator)
    assert set(k for k in log if k.startswith("g_")) == {"g_video_adv", "g_total"}


def _losses(run_dir: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ("time", "seconds_per_iteration")}
            for r in read_jsonl(run_dir / "stats.jsonl")]


@pytest.mark.slow
def test_resume_gives_the_same_losses_as_an_uninterrupted_run(cache_dir, ae_checkpoint, tmp_path):
    cfg = _config(cache_dir, ae_checkpoint, "ae", finetune=True, steps=4, checkpoint_every=2, log_every=1)
    whole = tmp_path / "whole"
    summary = train_gan(cfg, whole, progress=False)
    parts = tmp_path / "parts"
    train_gan(dataclasses.replace(cfg, steps=2), parts, progress=False)
    assert json.loads((parts / "train_done.json").read_text())["steps"] == 2
    train_gan(cfg, parts, progress=False)
    assert [r["step"] for r in _losses(parts)] == [1, 2, 3, 4]
    assert _losses(parts) == _losses(whole)
    # the run folder: config, stats, checkpoint, samples, curves, done file
    for name in ("config.json", "stats.jsonl", "checkpoint.pt", "samples/latest.gif", "loss_curves.png",
                 "train_done.json"):
        assert (whole / name).is_file(), name
    assert summary["steps"] == 4 and summary["seconds_per_iteration"] > 0
    assert set(summary["loss_shares"]) >= {"share_consistency", "share_category", "share_adversarial"}
    # resuming with other maths is refused
    with pytest.raises(ConfigError, match="content_mode"):
        train_gan(dataclasses.replace(cfg, content_mode="single", steps=5), parts, progress=False)


@pytest.mark.slow
def test_load_generator_is_deterministic(cache_dir, ae_checkpoint, tmp_path):
    cfg = _config(cache_dir, ae_checkpoint, "none", steps=1)
    train_gan(cfg, tmp_path / "run", progress=False)
    generator = load_generator(tmp_path / "run")
    assert generator.config.encoder == "none" and generator.config.composition == "seen"
    inputs = torch.rand(2, 3, 20, 64, 64) * 2 - 1
    first = generator.generate(inputs, torch.tensor([0, 4]), seed=0)
    assert first.shape == (2, 3, 16, 64, 64) and first.abs().max() <= 1
    assert torch.equal(first, generator.generate(inputs, torch.tensor([0, 4]), seed=0))
    assert not torch.equal(first, generator.generate(inputs, torch.tensor([0, 4]), seed=1))


@pytest.mark.parametrize("name,value", [("encoder", "facenett"), ("content_mode", "every"), ("composition", "both"),
                                        ("consistency_loss", "l1"), ("preset", "huge"), ("device", "tpu")])
def test_bad_names_fail_with_the_choices(name, value):
    with pytest.raises(ConfigError, match="valid choices"):
        validate(make_config(**{name: value}))


def test_unknown_parameter_and_bad_numbers_fail():
    with pytest.raises(ConfigError, match="system 'vicegan' has no options \\['encodr'\\]; its options: .*encoder"):
        make_config(encodr="ae")
    with pytest.raises(ConfigError, match="category_weight"):
        validate(make_config(category_weight=-1))
    with pytest.raises(ConfigError, match="finetune"):
        validate(make_config(encoder="none", finetune=True))


def test_missing_prerequisites_name_the_notebook(cache_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("VICE_DATA_DIR", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match="01_preprocess"):
        resolve_config(make_config(preset="tiny"))
    with pytest.raises(FileNotFoundError, match="02_autoencoders"):
        resolve_config(make_config(preset="tiny", cache_dir=str(cache_dir), encoder="ae"))
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        resolve_config(make_config(preset="tiny", cache_dir=str(cache_dir), encoder="facenet",
                                   facenet_weights=str(tmp_path / "missing.pt")))


def test_facenet_without_weights_defaults_to_training(cache_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cfg = resolve_config(make_config(preset="tiny", cache_dir=str(cache_dir), encoder="facenet"))
    assert cfg.facenet_weights == "train" and cfg.facenet_weights_path is None
    assert "TRAINED as an identity embedder" in capsys.readouterr().out


@pytest.mark.slow
def test_identity_embedder_trains_and_is_reused(cache_dir, tmp_path, monkeypatch):
    from lib.data.cache import load_cache
    from lib.models.encoders import build_facenet_network
    from lib.train.identity import train_identity_embedder

    monkeypatch.setenv("VICE_DATA_DIR", str(tmp_path / "data"))
    cache = load_cache(cache_dir)
    path = train_identity_embedder(cache, cache_dir, input_size=80, steps=1, batch_size=2)
    assert path.is_file() and path.parent == tmp_path / "data" / "models"
    info = json.loads(path.with_suffix(".json").read_text())
    assert set(info["subjects"]) == set(cache.split.train_subjects)  # never a test subject
    stamp = path.stat().st_mtime_ns
    assert train_identity_embedder(cache, cache_dir, input_size=80, steps=1, batch_size=2) == path
    assert path.stat().st_mtime_ns == stamp  # reused, not retrained
    assert build_facenet_network(path)(torch.zeros(1, 3, 80, 80)).shape == (1, 512)


_SECOND_WRITER = """
import sys
from lib.train.gan import train_gan
from lib.train.options import make_config
cfg = make_config(preset="tiny", cache_dir=sys.argv[1], encoder="none", device="cpu", steps=100000,
                      checkpoint_every=1, probe_every=0, num_threads=1)
train_gan(cfg, sys.argv[2], progress=False)
"""


def test_two_writers_on_one_run_folder(cache_dir, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    from lib.locks import OWNER_FILE, RunFolderBusy
    from lib.paths import REPO_ROOT

    run = tmp_path / "run"
    first = subprocess.Popen([sys.executable, "-c", _SECOND_WRITER, str(cache_dir), str(run)], cwd=REPO_ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not (run / "checkpoint.pt").is_file() and time.time() < deadline:
            time.sleep(0.2)
        assert (run / OWNER_FILE).is_file()
        cfg = make_config(preset="tiny", cache_dir=str(cache_dir), encoder="none", device="cpu", steps=2,
                              probe_every=0, checkpoint_every=1, num_threads=1)
        stats_before = (run / "stats.jsonl").read_text()
        with pytest.raises(RunFolderBusy, match=f"in use by pid {first.pid} on host .* since"):
            train_gan(cfg, run, progress=False)
        assert (run / "stats.jsonl").read_text().startswith(stats_before)  # nothing of it touched by the second
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    # the dead owner's lock is taken over; the run resumes from the killed writer's checkpoint
    reached = int(load_checkpoint(run / "checkpoint.pt")["step"])
    summary = train_gan(dataclasses.replace(cfg, steps=reached + 1), run, progress=False)
    assert summary["steps"] == reached + 1 and not (run / OWNER_FILE).exists()
    assert os.path.isfile(run / "train_done.json")
