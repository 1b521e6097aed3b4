"""Seed 002's landmark-driven reenactment (lib.train.reenact): landmark geometry with known answers, one
training step per loss group, resume, and generation of 16-frame emotion videos that 05 can score."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lib.data.landmarks import MIRROR, displaced_landmarks, emotion_displacements, flip_points, rotate
from lib.models.mocogan import init_dcgan_weights
from lib.models.reenact import HEATMAP_RADIUS, PatchDiscriminator, UNetGenerator, landmark_heatmaps
from lib.train.options import resolve_config
from lib.train.reenact import REENACT_LOSSES
from lib.train.reenact import LOSS_GROUPS, loss_terms
from lib.train.systems import load_generator, train
from test_gan_training import _config, ae_checkpoint, cache_dir  # noqa: F401 (fixtures)
from test_systems import check_loads_for_05, resumed_losses


def _face(rng, n=1):
    points = rng.uniform(20, 44, size=(n, 68, 2)).astype(np.float32)
    points[:, 36:42] = [24, 28]  # left eye, right eye: level, 16 px apart
    points[:, 42:48] = [40, 28]
    return points


def test_mirror_is_an_involution_and_flipping_twice_is_identity():
    assert sorted(MIRROR) == list(range(68)) and (MIRROR[MIRROR] == np.arange(68)).all()
    points = _face(np.random.default_rng(0), 3)
    np.testing.assert_allclose(flip_points(flip_points(points, 64), 64), points)
    flipped = flip_points(points, 64)
    assert flipped[0, 36:42, 0].mean() < flipped[0, 42:48, 0].mean()  # the left eye is still on the left


def test_displacements_carry_to_a_rotated_scaled_face_and_stay_inside_the_frame():
    rng = np.random.default_rng(1)
    first = _face(rng)
    motion = np.zeros((1, 4, 68, 2), np.float32)
    motion[0, :, 48:68, 1] = np.linspace(0, 4, 4)[:, None]  # the mouth drops by up to 4 px
    clips = first[:, None] + motion
    learned = emotion_displacements(clips, np.array([0]), 2)
    np.testing.assert_allclose(learned[0, 3, 48:68, 1], 4 / 16, atol=1e-6)  # in inter-ocular units
    assert not learned[1].any()  # an emotion without takes has no motion
    # the same face, twice as large and turned by 90 degrees: the mouth moves 8 px along its rotated axis
    big = rotate((first - 32) * 2, np.array([np.pi / 2])) + 32
    moved = displaced_landmarks(big, learned[[0]], 64)
    np.testing.assert_allclose(moved[0, 3, 48:68] - big[0, 48:68], [[-8, 0]] * 20, atol=1e-4)
    far = displaced_landmarks(first, learned[[0]] * 100, 64)
    assert far.min() >= 0 and far.max() <= 63


def test_heatmaps_peak_at_each_point_within_the_seven_pixel_window():
    maps = landmark_heatmaps(torch.tensor([[[10.0, 20.0], [63.0, 0.0]]]), 64)
    assert maps.shape == (1, 2, 64, 64) and maps[0, 0, 20, 10] == 1 and maps[0, 1, 0, 63] == 1
    assert maps[0, 0, 20, 10 + HEATMAP_RADIUS] > 0 and maps[0, 0, 20, 10 + HEATMAP_RADIUS + 1] == 0


def test_networks_have_the_papers_shapes():
    generator, discriminator = UNetGenerator(0.125), PatchDiscriminator()
    frames, maps = torch.rand(2, 3, 64, 64) * 2 - 1, torch.rand(2, 68, 64, 64)
    out = generator(frames, maps)
    assert out.shape == (2, 3, 64, 64) and out.abs().max() <= 1
    assert discriminator(out, maps).shape == (2,)
    assert sum(isinstance(m, torch.nn.Conv2d) and m.stride == (2, 2) for m in discriminator.modules()) == 3
    warping = UNetGenerator(0.125, output="warp").eval()
    warping.apply(init_dcgan_weights)  # as the trainer starts it
    frames = torch.nn.functional.interpolate(frames[:, :, :4, :4], size=64, mode="bilinear")  # a smooth picture
    moved = warping(frames, maps)
    assert moved.shape == (2, 3, 64, 64) and moved.abs().max() <= 1
    # a fresh warping generator mostly copies its source (mask ~0.88, flow ~0): closer to it than a drawn frame
    assert (moved - frames).abs().mean() < 0.5 * (generator.eval()(frames, maps) - frames).abs().mean()
    with pytest.raises(ValueError, match="'image', 'warp'"):
        UNetGenerator(0.125, output="paste")


def test_each_ablation_drops_one_group():
    assert set(loss_terms("all")) == {t for group in LOSS_GROUPS.values() for t in group}
    for choice in REENACT_LOSSES[1:]:
        dropped = LOSS_GROUPS[choice.removeprefix("no-")]
        assert set(loss_terms(choice)) == set(loss_terms("all")) - set(dropped)


@pytest.mark.parametrize("losses,output", [(losses, "image") for losses in REENACT_LOSSES] + [("all", "warp")])
def test_reenact_trains_resumes_and_generates_emotion_videos(cache_dir, ae_checkpoint, tmp_path, losses,  # noqa: F811
                                                             output):
    kwargs = dict(system="reenact", reenact_losses=losses, reenact_output=output, checkpoint_every=2, log_every=1,
                  probe_every=2)
    probe = lambda generator: {"headline": float(generator.generate(torch.zeros(1, 3, 16, 64, 64), [0]).mean())}  # noqa: E731
    first = resolve_config(_config(cache_dir, ae_checkpoint, "ae", steps=3, **kwargs))
    train(first, tmp_path / "one", probe=probe, progress=False)
    train(resolve_config(_config(cache_dir, ae_checkpoint, "ae", steps=2, **kwargs)), tmp_path / "two", probe=probe,
          progress=False)
    summary = train(first, tmp_path / "two", probe=probe, progress=False)
    logged = set(resumed_losses(tmp_path / "one", tmp_path / "two", summary, 3)[0])
    for group, terms in LOSS_GROUPS.items():
        assert all((f"g_{t}" in logged) == (losses != f"no-{group}") for t in terms)
    check_loads_for_05(tmp_path / "two", "reenact")


def test_neutral_source_frame_is_the_clips_frame_nearest_the_mean_first_frame(cache_dir, ae_checkpoint, tmp_path):  # noqa: F811
    import dataclasses

    from lib.data.cache import load_cache
    from lib.data.clips import uint8_to_model
    from lib.data.landmarks import LandmarkPredictor, aligned

    cfg = resolve_config(_config(cache_dir, ae_checkpoint, "ae", system="reenact", steps=1, source_frame="neutral"))
    train(cfg, tmp_path / "run", progress=False)
    model = load_generator(tmp_path / "run")
    assert model.neutral_shape.shape == (68, 2) and model.config.source_frame == "neutral"
    cache = load_cache(cfg.cache_dir)
    row = cache.index.iloc[0]
    frames = np.asarray(cache.frames[int(row.start):int(row.start) + 16])
    videos = uint8_to_model(frames)[None].transpose(1, 2)  # (1, 3, 16, 64, 64)
    points = LandmarkPredictor().clip_in_frame_pixels(frames)[0]
    model.neutral_shape = aligned(points[[9]])[0]  # make frame 9 the neutral reference
    source, source_points = model.source(videos)
    torch.testing.assert_close(source, videos[:, :, 9])
    np.testing.assert_allclose(source_points[0], points[9])
    assert model.generate(videos, [3]).shape == (1, 3, 16, 64, 64)
    first = dataclasses.replace(model.config, source_frame="first")
    model.config = first
    torch.testing.assert_close(model.source(videos)[0], videos[:, :, 0])


def test_one_step_updates_the_generator_and_the_discriminator(cache_dir, ae_checkpoint):  # noqa: F811
    from lib.data.cache import load_cache
    from lib.data.landmarks import cache_landmarks
    from lib.data.splits import composition_videos
    from lib.train.reenact import D_LR_RATIO, Reenactor, TripletSampler, train_step

    cfg = resolve_config(_config(cache_dir, ae_checkpoint, "ae", system="reenact"))
    cache = load_cache(cfg.cache_dir)
    landmarks = cache_landmarks(cache, cfg.cache_dir, progress=False)
    model = Reenactor(cfg, "cpu", np.zeros((6, 16, 68, 2), np.float32))
    optimizers = {"generator": torch.optim.Adam(model.generator.parameters(), 2e-4),
                  "discriminator": torch.optim.Adam(model.discriminator.parameters(), 2e-4 * D_LR_RATIO)}
    before = {name: [p.detach().clone() for p in net.parameters()]
              for name, net in (("g", model.generator), ("d", model.discriminator))}
    frozen = [p.detach().clone() for p in model.perceptual.parameters()]
    train_step(model, optimizers, TripletSampler(cache, composition_videos(cache, "seen")[0], landmarks), 2)
    for name, net in (("g", model.generator), ("d", model.discriminator)):
        assert any(not torch.equal(a, b) for a, b in zip(before[name], net.parameters())), name
    assert all(torch.equal(a, b) for a, b in zip(frozen, model.perceptual.parameters()))
