"""A VICE-GAN that learns: validation carved from the training subjects, aligned pairs, the flow generator,
the training-free ``templates`` system, and the guard that nothing before 05 reads a test subject."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from lib.data.cache import load_cache
from lib.data.splits import COMPOSITIONS, composition_videos, training_videos, validation_cache
from lib.io import read_json
from lib.train.gan import build_models, load_generator, make_optimizers, train_gan, train_step
from lib.train.gan_data import ClipSampler
from lib.train.options import resolve_config
from test_gan_training import _config, ae_checkpoint, cache_dir  # noqa: F401 (fixtures)


@pytest.mark.parametrize("composition", COMPOSITIONS)
def test_validation_is_carved_from_the_training_subjects(cache_dir, composition):  # noqa: F811
    cache = load_cache(cache_dir)
    view = validation_cache(cache)
    validation_subjects, test_subjects = set(view.split.test_subjects), set(cache.split.test_subjects)
    assert validation_subjects and validation_subjects <= set(cache.split.train_subjects)
    assert not validation_subjects & test_subjects and view.split.train_subjects  # one training subject stays
    train_ids, validation_ids = training_videos(cache, composition)
    everything, _ = composition_videos(cache, composition)
    subject_of = cache.index.set_index("video_id")["subject"].astype(str)
    emotion_of = cache.index.set_index("video_id")["emotion"].astype(str)
    assert not set(train_ids) & set(validation_ids) and set(train_ids) | set(validation_ids) == set(everything)
    assert {subject_of[v] for v in validation_ids} == validation_subjects
    for video in validation_ids:  # seen: held out are a validation subject's emotions but its two seen ones
        seen = emotion_of[video] in view.split.seen_emotions[subject_of[video]]
        assert not seen or composition == "unseen"
    kept = {subject_of[v] for v in train_ids} & validation_subjects
    assert kept == (validation_subjects if composition == "seen" else set())
    without_hold_out, _ = training_videos(cache, composition, hold_out=False)
    assert set(without_hold_out) == set(everything)


def test_aligned_pairs_read_the_first_frame_of_the_take_they_are_scored_against(cache_dir, ae_checkpoint):  # noqa: F811
    cfg = resolve_config(_config(cache_dir, ae_checkpoint, "ae", recipe="fast", neutralise_input=False,
                                 content_mode="all", landmark_flow_weight=0.0))  # the landmark loss: below
    assert cfg.paired_target == "own-take" and cfg.composite == "flow"
    cache = load_cache(cfg.cache_dir)
    import dataclasses

    cfg = dataclasses.replace(cfg, image_size=64)
    torch.manual_seed(0)
    models = build_models(cfg, torch.device("cpu"))
    sampler = ClipSampler(cache, composition_videos(cache, cfg.composition)[0], cfg.video_length, cfg.every_nth,
                          clip_start=cfg.clip_start)
    drawn, seen = {}, {}
    clips = sampler.clips

    def recording_clips(n):
        drawn["videos"], drawn["labels"], drawn["positions"] = clips(n)
        return drawn["videos"], drawn["labels"], drawn["positions"]

    forward = models.generator.forward

    def recording_forward(content, labels, generator=None, reference=None, **kwargs):
        seen.update(content=content, labels=labels, reference=reference)
        seen["out"] = forward(content, labels, generator, reference, **kwargs)
        return seen["out"]

    sampler.clips, models.generator.forward = recording_clips, recording_forward
    log = train_step(models, make_optimizers(models, cfg), sampler, cfg, torch.Generator().manual_seed(1),
                     torch.device("cpu"))
    real = drawn["videos"]
    for position in drawn["positions"]:  # clips of the takes from their first frame (neutral)
        assert sampler.starts[position] >= 0
    assert torch.equal(seen["labels"], drawn["labels"])  # each take in its own emotion
    first = real[:, :, :1].expand_as(real)
    assert torch.equal(seen["reference"], first)  # the generator reads the first frame only...
    assert torch.allclose(seen["content"], seen["content"][:, :1].expand_as(seen["content"]))  # ...its code too
    from lib.train.gan_losses import pyramid_error

    fake = seen["out"][0].detach()
    assert log["g_reconstruction"] == pytest.approx(cfg.reconstruction_weight * float(pyramid_error(fake, real).mean()),
                                                    rel=1e-5)  # ...and is scored against that very take


def test_the_flow_generator_starts_by_repeating_its_input_frame(cache_dir, ae_checkpoint, tmp_path):  # noqa: F811
    cfg = _config(cache_dir, ae_checkpoint, "ae", recipe="fast", neutralise_input=False, steps=1, log_every=1)
    train_gan(cfg, tmp_path / "run", progress=False)
    generator = load_generator(tmp_path / "run")
    cache = load_cache(cache_dir)
    video = torch.from_numpy(cache.video(0)[:32:2]).permute(3, 0, 1, 2)[None].float() / 127.5 - 1
    from lib.models.flow_decoder import ReferenceFlowDecoder

    fresh = ReferenceFlowDecoder(generator.models.generator.latent_dim, 0.25)
    frames, drawn, flow = fresh(torch.randn(16, generator.models.generator.latent_dim), video[:, :, 0],
                                torch.tensor([2]))
    assert float(flow.abs().max()) == 0.0
    assert torch.allclose(frames, video[:, :, 0].expand(16, -1, -1, -1), atol=1e-5)  # no flow, nothing drawn
    assert float(drawn.abs().max()) == 0.0
    out = generator.generate(video, [3], seed=0)
    assert out.shape == (1, 3, 16, 64, 64) and torch.isfinite(out).all()


def test_the_templates_system_is_the_untrained_prior(cache_dir, ae_checkpoint, tmp_path):  # noqa: F811
    from lib.train import systems

    cfg = _config(cache_dir, ae_checkpoint, "ae", system="templates", recipe="fast")
    summary = systems.train(cfg, tmp_path / "prior", progress=False)
    assert summary["steps"] == 0
    # every figure the summary names exists (03 shows them); no step, no loss curves
    assert summary["loss_curves"] is None and all(
        Path(summary[key]).is_file() for key in ("samples", "checkpoint") if summary[key])
    stored = read_json(tmp_path / "prior" / "config.json")
    assert stored["system"] == "templates" and stored["emotion_templates"] and stored["composite"] == "residual"
    assert stored["template_upper_weight"] == stored["template_lower_weight"] == 1.0  # no hand-set weight
    assert (tmp_path / "prior" / "samples" / "latest.gif").is_file()
    generator = systems.load_generator(tmp_path / "prior")
    cache = load_cache(cache_dir)
    video = torch.from_numpy(cache.video(0)[:32:2]).permute(3, 0, 1, 2)[None].float() / 127.5 - 1
    outputs = [generator.generate(video, [label], seed=0) for label in range(3)]
    assert not torch.equal(outputs[0], outputs[1])  # each emotion its own template
    with pytest.raises(Exception, match="encoder='ae'"):
        resolve_config(_config(cache_dir, ae_checkpoint, "none", system="templates"))


class _RecordingFrames(np.ndarray):
    """A cache's frames that record every frame index read."""

    def __getitem__(self, key):
        first = key[0] if isinstance(key, tuple) else key
        self.reads.update(np.arange(len(self))[first].ravel().tolist())  # np.arange: the same indexing rule
        return np.asarray(super().__getitem__(key))


# Every trained system (the templates prior and the latent walk read frames the same way as vicegan / fevgan)
GUARDED = [("vicegan", {}, "seen"), ("vicegan", {}, "unseen"), ("fevgan", {}, "seen"),
           ("reenact", {}, "seen"), ("templates", {}, "unseen"), ("latent-walk", {}, "seen"),
           ("landmark-warp", {}, "seen")]


@pytest.mark.parametrize("system,extra,composition", GUARDED)
def test_nothing_before_05_reads_a_test_subjects_held_out_frames(cache_dir, ae_checkpoint, tmp_path, monkeypatch,  # noqa: F811
                                                                  system, extra, composition):
    """Training each system (the learning recipe for VICE-GAN, its neutraliser), sample grids and validation
    probes never read a frame of a test subject's held-out video (``unseen``: any test subject's frame)."""
    import lib.data.cache as cache_module
    from lib.evaluation.evaluate import make_evaluation_config, prepare_cache
    from lib.evaluation.learning_probes import LearningProbe
    from lib.train.systems import train

    reads: set[int] = set()
    loaded = cache_module.load_cache

    def recording_load(path, mmap=True):
        cache = loaded(path, mmap=False)
        cache.frames = np.asarray(cache.frames).view(_RecordingFrames)
        cache.frames.reads = reads
        return cache

    monkeypatch.setattr(cache_module, "load_cache", recording_load)
    recipe = {"recipe": "fast"} if system in ("vicegan", "templates") else {}  # VICE-GAN's learning recipe
    cfg = resolve_config(_config(cache_dir, ae_checkpoint, "ae", composition=composition, steps=2, probe_every=1,
                                 probe_pairs=2, sample_every=1, system=system, **recipe, **extra))
    config = make_evaluation_config("tiny", extractors=["ae"], classifiers=[], n_pairs=2)
    probe = LearningProbe(prepare_cache(cfg.cache_dir, config, cfg, subjects="validation"), config)
    train(cfg, tmp_path / "run", progress=False, probe=lambda generator: {**probe(generator), "headline": 0.0})
    cache = loaded(cache_dir)
    _, test_ids = composition_videos(cache, composition)
    forbidden = set()
    for video in test_ids:
        start, length = int(cache.index.loc[video, "start"]), int(cache.index.loc[video, "length"])
        forbidden.update(range(start, start + length))
    assert reads, "the recording saw no read: the guard is not wired"
    assert not reads & forbidden, f"{len(reads & forbidden)} frames of test videos were read before 05"


def test_landmark_flow_error_is_zero_for_the_flow_that_moved_the_landmarks():
    from lib.models.flow_decoder import landmark_flow_error, warp

    size = 64
    rng = np.random.default_rng(0)
    first = torch.from_numpy(rng.uniform(10, 50, size=(2, 68, 2)).astype(np.float32))
    shift_px = torch.tensor([1.5, -2.0])  # frame t shows every point shifted by this many pixels
    points = (first + shift_px)[:, None].expand(2, 3, 68, 2).clone()
    points[:, 0] = first  # frame 0 is the first frame
    flow = torch.zeros(2, 3, 2, size, size)
    flow[:, 1:] = (-shift_px * 2 / size)[None, None, :, None, None]  # fetch from where the point was
    assert float(landmark_flow_error(flow, first, points)) == pytest.approx(0.0, abs=1e-6)
    assert float(landmark_flow_error(torch.zeros_like(flow), first, points)) > 0.03
    image = torch.zeros(1, 1, size, size)
    image[0, 0, 20, 30] = 1.0  # the warp with that flow moves a pixel by the same shift
    moved = warp(image, flow[0, 1:2, :, :, :].reshape(1, 2, size, size))
    row, column = np.unravel_index(int(moved.argmax()), (size, size))
    assert row == 18 and column in (31, 32)  # x + 1.5 px, y - 2 px: where the landmarks went
