"""Generator systems by name (lib.train.systems) and the latent-direction walk of seed 004
(lib.train.latent_walk): fitted from the training subjects, deterministic, loaded and scored by 05."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from lib.config import ConfigError
from lib.io import read_json
from lib.train.options import make_config, resolve_config
from lib.train.latent_walk import MODEL_NAME, LatentWalkGenerator, fit_walk
from lib.train.systems import SYSTEM_NAMES, load_generator, run_system, train
from test_gan_training import _config, ae_checkpoint, cache_dir  # noqa: F401 (fixtures)
from test_protocol import GridColourExtractor


def _walk_config(cache_dir, ae_checkpoint, **extra):  # noqa: F811
    return resolve_config(_config(cache_dir, ae_checkpoint, "ae", system="latent-walk", **extra))


def test_the_walk_runs_along_each_emotions_direction_from_the_inputs_code(cache_dir, ae_checkpoint):  # noqa: F811
    from lib.data.cache import load_cache
    from lib.data.splits import composition_videos
    from lib.models.encoders import load_autoencoder_network

    cfg = _walk_config(cache_dir, ae_checkpoint)
    cache = load_cache(cfg.cache_dir)
    train_ids = composition_videos(cache, cfg.composition)[0]
    autoencoder = load_autoencoder_network(cfg.autoencoder_checkpoint)
    walk = fit_walk(autoencoder, cache, train_ids, cfg.video_length, cfg.every_nth, cfg.seed)
    trained = set(cache.index.set_index("video_id").loc[list(train_ids), "label"])
    norms = walk["directions"].norm(dim=1)
    for emotion in range(6):  # unit directions for the emotions with training takes, none for the rest
        assert norms[emotion] == pytest.approx(1.0 if emotion in trained else 0.0, abs=1e-5)
    assert torch.all(walk["curves"][:, 0] == 0)  # frame 0 is the input's own code
    assert torch.all(walk["amplitudes"] >= 0)
    generator = LatentWalkGenerator(cfg, autoencoder, walk)
    videos = torch.rand(3, 3, 20, 64, 64) * 2 - 1
    labels = torch.tensor([0, 1, 2])
    out = generator.generate(videos, labels)
    assert out.shape == (3, 3, cfg.video_length, 64, 64) and out.abs().max() <= 1
    torch.testing.assert_close(out, generator.generate(videos, labels, seed=5))  # deterministic: no noise
    with torch.no_grad():  # frame t decodes code(first frame) + curve[e, t] * amplitude[e] * direction[e]
        code = autoencoder.encode(videos[:, :, 0])
        t = cfg.video_length - 1
        moved = code + (walk["curves"][labels, t] * walk["amplitudes"][labels])[:, None] * walk["directions"][labels]
        torch.testing.assert_close(out[:, :, t], autoencoder.decode(moved).clamp(-1, 1))
        torch.testing.assert_close(out[:, :, 0], autoencoder.decode(code).clamp(-1, 1))
    with pytest.raises(ValueError, match=r"\(B, 3, T, H, W\)"):
        generator.generate(videos[0], labels)
    # residual output: the input frame itself at frame 0, plus the decoded change of the walk after it
    residual = LatentWalkGenerator(dataclasses.replace(cfg, walk_output="residual"), autoencoder, walk)
    shown = residual.generate(videos, labels)
    torch.testing.assert_close(shown[:, :, 0], videos[:, :, 0].clamp(-1, 1))
    with torch.no_grad():
        change = autoencoder.decode(moved) - autoencoder.decode(code)
    torch.testing.assert_close(shown[:, :, t], (videos[:, :, 0] + change).clamp(-1, 1))
    # source_frame="neutral": the frame whose code is nearest the training takes' mean first-frame code
    neutral = LatentWalkGenerator(dataclasses.replace(cfg, source_frame="neutral"), autoencoder, walk)
    planted = videos.clone()
    planted[1, :, 7] = autoencoder.decode(walk["neutral_code"][None])[0]  # a frame that encodes close to it
    with torch.no_grad():
        codes = autoencoder.encode(planted.transpose(1, 2).reshape(-1, 3, 64, 64)).reshape(3, 20, -1)
    picks = (codes - walk["neutral_code"]).norm(dim=2).argmin(dim=1)
    assert picks[1] == 7
    torch.testing.assert_close(neutral.source_frames(planted), planted[torch.arange(3), :, picks])


def test_latent_walk_run_folder_is_written_once_and_loads_for_05(cache_dir, ae_checkpoint, tmp_path):  # noqa: F811
    cfg = _walk_config(cache_dir, ae_checkpoint)
    calls = []

    def probe(generator):
        calls.append(generator)
        return {"headline": 0.5, "ssim": 0.4}

    summary = train(cfg, tmp_path / "walk", probe=probe)
    for name in ("config.json", MODEL_NAME, "train_done.json", "samples/latest.gif", "stats.jsonl"):
        assert (tmp_path / "walk" / name).is_file(), name
    assert summary["system"] == "latent-walk" and summary["loss_curves"] is None and len(calls) == 1
    assert summary["best"]["metrics"]["headline"] == 0.5
    assert run_system(tmp_path / "walk") == "latent-walk"
    again = train(cfg, tmp_path / "walk", probe=probe)  # finished: reported, not fitted again
    assert again == read_json(tmp_path / "walk" / "train_done.json") and len(calls) == 1
    loaded = load_generator(tmp_path / "walk")
    videos = torch.rand(2, 3, 16, 64, 64) * 2 - 1
    torch.testing.assert_close(loaded.generate(videos, [0, 1]), calls[0].generate(videos, [0, 1]))
    assert loaded.config.system == "latent-walk" and loaded.snapshot == "fitted"
    with pytest.raises(ValueError, match="must be \\(B, 3, T, H, W\\)"):  # frames-last clips are refused
        loaded.generate(videos.permute(0, 2, 1, 3, 4), [0, 1])


def test_evaluation_scores_a_latent_walk_beside_the_real_videos(cache_dir, ae_checkpoint, tmp_path):  # noqa: F811
    from lib.evaluation.evaluate import evaluate_runs

    train(_walk_config(cache_dir, ae_checkpoint), tmp_path / "walk")
    table = evaluate_runs([tmp_path / "walk"], extractors=[GridColourExtractor()], classifiers=[], n_pairs=4,
                          preset="tiny")
    row = table.set_index("run").loc["walk"]
    assert row["system"] == "latent-walk" and row["snapshot"] == "fitted"
    assert np.isfinite(row["ssim"]) and np.isfinite(row["acd_grid"])


def test_system_choices_fail_before_any_work(cache_dir, ae_checkpoint, tmp_path):  # noqa: F811
    assert SYSTEM_NAMES == ("vicegan", "fevgan", "reenact", "landmark-warp", "templates", "latent-walk")
    with pytest.raises(ConfigError, match="latent-walk"):
        resolve_config(_config(cache_dir, ae_checkpoint, "ae", system="latent_walk"))
    with pytest.raises(ConfigError, match="system 'latent-walk' has no options \\['encoder'\\]; its options: .*walk_output"):
        make_config(system="latent-walk", encoder="none")
    with pytest.raises(ConfigError, match="system 'fevgan' has no options \\['recipe'\\]"):
        make_config(system="fevgan", recipe="fast")
    with pytest.raises(FileNotFoundError, match="03_train"):
        load_generator(tmp_path / "missing")
    assert not (tmp_path / "missing").exists()


def test_landmark_warp_moves_the_inputs_own_pixels_by_the_emotions_motion(cache_dir, ae_checkpoint, tmp_path):  # noqa: F811
    from lib.train.landmark_warp import MODEL_NAME as WARP_MODEL, LandmarkWarpGenerator

    cfg = resolve_config(_config(cache_dir, ae_checkpoint, "none", system="landmark-warp"))
    calls = []
    summary = train(cfg, tmp_path / "warp", probe=lambda g: calls.append(g) or {"headline": 0.25}, progress=False)
    for name in ("config.json", WARP_MODEL, "train_done.json", "samples/latest.gif", "stats.jsonl"):
        assert (tmp_path / "warp" / name).is_file(), name
    assert summary["system"] == "landmark-warp" and summary["best"]["metrics"]["headline"] == 0.25
    assert train(cfg, tmp_path / "warp", probe=calls.append, progress=False) == summary and len(calls) == 1
    warp = load_generator(tmp_path / "warp")
    assert run_system(tmp_path / "warp") == "landmark-warp" and warp.snapshot == "fitted"
    from lib.data.cache import load_cache
    from lib.data.clips import uint8_to_model

    cache = load_cache(cfg.cache_dir)
    start = int(cache.index.iloc[0]["start"])
    face = uint8_to_model(np.asarray(cache.frames[start:start + 16])).transpose(0, 1)[None]  # (1, 3, 16, H, W)
    trained = sorted(set(cache.index["label"]))
    videos = face.expand(len(trained), -1, -1, -1, -1)
    out = warp.generate(videos, trained)
    assert out.shape == (len(trained), 3, 16, 64, 64)
    torch.testing.assert_close(out[:, :, 0], videos[:, :, 0], atol=1e-3, rtol=0)  # no motion at frame 0: the input
    torch.testing.assert_close(warp.generate(videos, trained), out)  # deterministic
    moved = (out[:, :, -1] - videos[:, :, 0]).abs().mean()
    assert moved > 1e-3  # the last frame is warped
    # the gain scales the motion: none at 0, more at 2
    still = LandmarkWarpGenerator(dataclasses.replace(warp.config, warp_gain=0.0), warp.displacements)
    torch.testing.assert_close(still.generate(videos, trained), videos[:, :, :1].expand_as(out), atol=1e-3, rtol=0)
    doubled = LandmarkWarpGenerator(dataclasses.replace(warp.config, warp_gain=2.0), warp.displacements)
    assert (doubled.generate(videos, trained)[:, :, -1] - videos[:, :, 0]).abs().mean() > moved
    with pytest.raises(ConfigError, match="warp_gain"):
        resolve_config(_config(cache_dir, ae_checkpoint, "none", system="landmark-warp", warp_gain=-1.0))


@pytest.mark.parametrize("encoders", ["both", "spatial", "identity"])
def test_fevgan_trains_resumes_and_loads_for_05(cache_dir, ae_checkpoint, tmp_path, encoders):  # noqa: F811
    kwargs = dict(system="fevgan", fevgan_encoders=encoders, checkpoint_every=2, log_every=1, probe_every=2)
    probe = lambda generator: {"headline": float(generator.generate(torch.zeros(1, 3, 16, 64, 64), [0]).mean())}  # noqa: E731
    train(resolve_config(_config(cache_dir, ae_checkpoint, "ae", steps=4, **kwargs)), tmp_path / "one", probe=probe,
          progress=False)
    train(resolve_config(_config(cache_dir, ae_checkpoint, "ae", steps=2, **kwargs)), tmp_path / "two", probe=probe,
          progress=False)
    summary = train(resolve_config(_config(cache_dir, ae_checkpoint, "ae", steps=4, **kwargs)), tmp_path / "two",
                    probe=probe, progress=False)
    losses = resumed_losses(tmp_path / "one", tmp_path / "two", summary, 4)
    assert ("g_identity" in losses[0]) == (encoders != "spatial")
    check_loads_for_05(tmp_path / "two", "fevgan")


def resumed_losses(uninterrupted, resumed, summary: dict, steps: int) -> list[dict]:
    """The loss records of a run trained in one go and of one stopped and resumed: asserted equal, finite,
    ``steps`` long, with samples written."""
    from lib.io import read_jsonl

    losses = [[{k: v for k, v in r.items() if k.startswith(("d_", "g_"))} for r in read_jsonl(p / "stats.jsonl")
               if "g_total" in r] for p in (uninterrupted, resumed)]
    assert losses[0] == losses[1] and len(losses[0]) == steps  # stop + resume = one uninterrupted run
    assert all(np.isfinite(v) for r in losses[0] for v in r.values())
    assert summary["steps"] == steps and (resumed / "samples" / "latest.gif").is_file()
    return losses[0]


def check_loads_for_05(run_dir, system: str) -> None:
    """The run loads by its system's name, from best.pt, and generates checked, deterministic 16-frame videos."""
    generator = load_generator(run_dir)
    assert generator.snapshot.startswith("best") and run_system(run_dir) == system
    videos = torch.rand(2, 3, 16, 64, 64) * 2 - 1
    out = generator.generate(videos, [1, 2])
    assert out.shape == (2, 3, 16, 64, 64) and out.abs().max() <= 1
    torch.testing.assert_close(out, generator.generate(videos, [1, 2], seed=9))
    with pytest.raises(ValueError, match="must be \\(B, 3, T, H, W\\)"):
        generator.generate(videos[0], [1])


@pytest.mark.parametrize("system,option,ablation,why,valid", [
    ("fevgan", "fevgan_encoders", "spatial", "identity encoder", "'both', 'spatial'"),
    ("reenact", "reenact_losses", "no-feature", "identity loss", "'all', 'no-pixel'")])
def test_an_identity_encoder_is_needed_unless_ablated(cache_dir, ae_checkpoint, system, option, ablation, why,  # noqa: F811
                                                      valid):
    with pytest.raises(ConfigError, match=why):
        resolve_config(_config(cache_dir, ae_checkpoint, "none", system=system))
    resolve_config(_config(cache_dir, ae_checkpoint, "none", system=system, **{option: ablation}))
    with pytest.raises(ConfigError, match=valid):
        resolve_config(_config(cache_dir, ae_checkpoint, "ae", system=system, **{option: "neither"}))


def test_each_system_declares_its_own_options_and_refuses_the_others():
    """Every system's option set (lib.train.options.system_options): shared options once, each system's own next
    to its code, a stored config read back as its system's class, and an option of another system refused."""
    from lib.config import to_dict
    from lib.train.options import RunOptions, cell_options, config_from_dict, notebook_parameters, system_options
    from lib.train.recipes import RECIPE_OPTIONS

    shared = {f.name for f in dataclasses.fields(RunOptions) if f.metadata["given"]} - {f.name for f in cell_options()}
    own = {system: set(system_options(system)) - shared for system in SYSTEM_NAMES}
    assert own["landmark-warp"] == {"warp_gain"}
    assert own["latent-walk"] == {"autoencoder", "walk_output", "source_frame"}
    assert {"fevgan_encoders", "encoder", "consistency_loss", "learning_rate"} <= own["fevgan"]
    assert {"reenact_losses", "reenact_output", "source_frame", "encoder"} <= own["reenact"]
    assert {"recipe", "content_mode", "finetune", *RECIPE_OPTIONS} <= own["vicegan"] == own["templates"]
    for system, foreign in (("fevgan", "recipe"), ("reenact", "consistency_loss"), ("latent-walk", "encoder"),
                            ("landmark-warp", "autoencoder"), ("vicegan", "warp_gain")):
        assert foreign not in own[system]
        with pytest.raises(ConfigError, match=f"system {system!r} has no options \\['{foreign}'\\]; its options: "):
            make_config(system=system, **{foreign: system_options("vicegan").get(foreign, 1.0)})
    assert len(notebook_parameters()) <= 20  # 03's parameters cell: the shared options, the run location, display
    for system in SYSTEM_NAMES:  # resolved once, saved whole, read back as its own class
        cfg = make_config(system=system, preset="tiny")
        assert config_from_dict(to_dict(cfg)) == cfg and all(value is not None for name, value in to_dict(cfg).items()
                                                              if name in {"steps", "probe_every", "log_every"})
