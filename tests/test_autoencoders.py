"""The six autoencoders: shapes, learning, checkpoints, resume, evaluation, selection pointer."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from lib.config import ConfigError
from lib.constants import EMOTIONS
from lib.data.cache import VideoCache
from lib.data.splits import Split
from lib.io import load_checkpoint
from lib.paths import REPO_ROOT
from lib.models.autoencoders import AUTOENCODERS, build_autoencoder, layer_table, layer_table_markdown
from lib.train.autoencoders import (AE_PRESETS, ae_config, find_selected_autoencoder, load_autoencoder,
                                    reconstruction_loss, select_autoencoder, selection_pointer_path,
                                    train_autoencoder)

SUBJECTS = ["001", "002", "003", "004", "005"]


@pytest.fixture(autouse=True)
def _one_thread():
    # The test machine's cores are shared: one thread per test avoids contention stalls.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _face_video(subject: int, emotion: int, length: int = 12, size: int = 64) -> np.ndarray:
    """A smooth coloured blob per subject that moves and changes shape with the emotion."""
    rng = np.random.default_rng(subject)
    background, skin = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    yy, xx = np.mgrid[0:size, 0:size] / size
    frames = []
    for t in range(length):
        cx, cy = 0.5 + 0.05 * np.sin(t / 3 + emotion), 0.5
        rx, ry = 0.22 + 0.02 * subject, 0.3 + 0.01 * emotion * np.sin(t / 4)
        inside = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 < 1
        frame = np.where(inside[..., None], skin, background).astype(np.uint8)
        frames.append(frame)
    return np.stack(frames)


@pytest.fixture(scope="module")
def cache() -> VideoCache:
    videos, subjects, emotions = [], [], []
    for s, subject in enumerate(SUBJECTS):
        for e, emotion in enumerate(EMOTIONS[:2]):
            videos.append(_face_video(s, e))
            subjects.append(subject)
            emotions.append(emotion)
    split = Split(train_subjects=SUBJECTS[:4], test_subjects=SUBJECTS[4:], seen_emotions={"005": ["anger"]})
    return VideoCache.from_videos(videos, subjects, emotions, split=split)


def _frames(n: int = 4) -> torch.Tensor:
    video = _face_video(1, 0, length=n)
    return torch.from_numpy(video).permute(0, 3, 1, 2).float() / 127.5 - 1


@pytest.mark.parametrize("name", AUTOENCODERS)
def test_every_variant_maps_frames_to_50d_codes_and_back(name):
    torch.manual_seed(0)
    model = build_autoencoder(name, width=0.25).eval()
    x = _frames(3)
    codes = model.encode(x)
    assert codes.shape == (3, 50)
    recon = model.decode(codes)
    assert recon.shape == (3, 3, 64, 64)
    assert recon.min() >= -1 and recon.max() <= 1
    out = model(x)
    assert set(out) == ({"recon", "z", "mu", "logvar"} if name.startswith("vae") else {"recon", "z"})
    torch.testing.assert_close(out["z"], codes)  # eval mode: the VAE uses its mean


def test_conv_counts_follow_table_1():
    counts = {"small": (2, 2), "medium": (4, 3), "large": (5, 4)}
    for name in AUTOENCODERS:
        model = build_autoencoder(name)
        convs = sum(isinstance(m, torch.nn.Conv2d) for m in model.encoder.modules())
        deconvs = sum(isinstance(m, torch.nn.ConvTranspose2d) for m in model.modules())
        assert (convs, deconvs) == counts[name.split("-")[1]], name
    sizes = [sum(p.numel() for p in build_autoencoder(f"sae-{s}").parameters()) for s in ("small", "medium", "large")]
    assert sizes == sorted(sizes)


def test_width_scales_channels_but_keeps_narrow_layers():
    half = build_autoencoder("sae-large", width=0.5)
    assert half.encoder[0][0].out_channels == 16 and half.encoder[4][0].out_channels == 256
    small = build_autoencoder("sae-small", width=0.25)
    assert [block[0].out_channels for block in small.encoder[:2]] == [4, 4]  # 16 -> 4, the 4 stays 4


def test_vae_samples_while_training_and_has_mean_and_logvar_layers():
    torch.manual_seed(0)
    model = build_autoencoder("vae-small", width=0.25).train()
    x = _frames(4)
    first, second = model(x)["z"], model(x)["z"]
    assert not torch.allclose(first, second)
    assert hasattr(model, "to_mu") and hasattr(model, "to_logvar") and not hasattr(model, "to_code")


def test_documented_layer_tables_are_those_of_the_real_modules():
    for name in AUTOENCODERS:
        page = (REPO_ROOT / "docs" / "autoencoders.md").read_text()
        assert layer_table_markdown(name) in page, f"regenerate the {name} table in docs/autoencoders.md"
    rows = layer_table(build_autoencoder("sae-large"))
    assert rows[-1]["output_shape"] == "3x64x64"
    assert sum(r["parameters"] for r in rows) == sum(p.numel() for p in build_autoencoder("sae-large").parameters())


def test_bad_variant_name_lists_the_six():
    with pytest.raises(ConfigError) as error:
        build_autoencoder("sae-huge")
    for name in AUTOENCODERS:
        assert name in str(error.value)
    with pytest.raises(ConfigError, match="sae-small"):
        ae_config("small", "ae-large")
    with pytest.raises(ConfigError, match="tiny"):
        ae_config("medium", "sae-large")


@pytest.mark.parametrize("name", AUTOENCODERS)
def test_a_few_steps_lower_the_loss_on_a_fixed_batch(name):
    torch.manual_seed(0)
    model = build_autoencoder(name, width=0.25).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.005)
    x = _frames(8)
    losses = []
    for _ in range(20):
        loss = reconstruction_loss(model, x, kl_weight=1e-4)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert np.mean(losses[-3:]) < 0.7 * np.mean(losses[:3])


def test_ssim_weight_adds_one_minus_ssim_of_the_reconstruction():
    from lib.evaluation.metrics import ssim

    torch.manual_seed(0)
    model = build_autoencoder("sae-small", width=0.25).eval()
    x = _frames(4)
    with torch.no_grad():
        plain = reconstruction_loss(model, x, kl_weight=0.0)
        weighted = reconstruction_loss(model, x, kl_weight=0.0, ssim_weight=2.0)
        recon = model(x)["recon"]
    expected = plain["mse"] + 2.0 * (1 - ssim((recon + 1) / 2, (x + 1) / 2, data_range=1.0))
    torch.testing.assert_close(weighted["loss"], expected, rtol=1e-5, atol=1e-6)
    assert weighted["mse"] == plain["mse"] and plain["loss"] == plain["mse"]
    with pytest.raises(ConfigError, match="ssim_weight"):
        ae_config("tiny", "sae-small", ssim_weight=-1.0)


def _cfg(name: str, epochs: int, **extra):
    return ae_config("tiny", name, epochs=epochs, batch_size=8, max_frames_per_epoch=40, device="cpu", **extra)


def test_checkpoint_round_trip_gives_the_same_outputs(cache, tmp_path):
    summary = train_autoencoder(_cfg("sae-medium", 1), cache, tmp_path, progress=False)
    assert (tmp_path / "sae-medium" / "checkpoint.pt").is_file()
    assert json.loads((tmp_path / "sae-medium" / "config.json").read_text())["name"] == "sae-medium"
    model = load_autoencoder(summary["checkpoint"], device="cpu")
    again = load_autoencoder(tmp_path, device="cpu", name="sae-medium")
    x = _frames(4)
    with torch.no_grad():
        torch.testing.assert_close(model(x)["recon"], again(x)["recon"], rtol=0, atol=0)
    assert model.width == AE_PRESETS["tiny"]["width"] and not model.training
    with pytest.raises(FileNotFoundError, match="sae-medium"):
        load_autoencoder(tmp_path, device="cpu")  # a run folder needs the variant's name


@pytest.mark.parametrize("name,augment", [("sae-small", False), ("vae-small", True)])
def test_resume_equals_uninterrupted_training(cache, tmp_path, name, augment):
    straight = train_autoencoder(_cfg(name, 3, augment=augment), cache, tmp_path / "straight", progress=False)
    # "interrupted" after epoch 1, then resumed
    train_autoencoder(_cfg(name, 1, augment=augment), cache, tmp_path / "resumed", progress=False)
    resumed = train_autoencoder(_cfg(name, 3, augment=augment), cache, tmp_path / "resumed", progress=False)
    a = load_checkpoint(straight["checkpoint"])
    b = load_checkpoint(resumed["checkpoint"])
    assert a["epoch"] == b["epoch"] == 3
    for key, value in a["model"].items():
        torch.testing.assert_close(value, b["model"][key], rtol=0, atol=0, msg=key)
    stats = [json.loads(line) for line in (tmp_path / "resumed" / name / "stats.jsonl").read_text().splitlines()]
    assert [s["epoch"] for s in stats] == [1, 2, 3]
    assert resumed["train_loss"] == pytest.approx(straight["train_loss"], rel=0, abs=0)
    # a finished run is not trained again; a changed architecture is refused
    again = train_autoencoder(_cfg(name, 3, augment=augment), cache, tmp_path / "resumed", progress=False)
    assert again["train_loss"] == resumed["train_loss"]
    with pytest.raises(ConfigError, match="width"):
        train_autoencoder(_cfg(name, 4, augment=augment, width=0.5), cache, tmp_path / "resumed", progress=False)


def test_training_uses_training_subjects_only(cache):
    from lib.train.autoencoders import composition_frame_indices
    from lib.evaluation.ae_report import frame_subjects

    train_rows = composition_frame_indices(cache, "train")
    test_rows = composition_frame_indices(cache, "test")
    assert set(frame_subjects(cache, train_rows)) == set(SUBJECTS[:4])
    assert set(frame_subjects(cache, test_rows)) == {"005"}
    assert len(train_rows) + len(test_rows) == len(cache.frames)


def test_heldout_frames_are_never_fitted_and_the_pca_row_scores_both_sets(cache):
    from lib.evaluation.ae_report import heldout_frame_rows, pca_baseline
    from lib.train.autoencoders import composition_frame_indices, split_heldout

    rows = composition_frame_indices(cache, "train")
    fit, held = split_heldout(rows, 10)
    assert len(held) == len(rows[5::10]) and not set(fit) & set(held) and len(fit) + len(held) == len(rows)
    assert np.array_equal(heldout_frame_rows(cache, 10), held)
    assert len(split_heldout(rows, 0)[1]) == 0
    with pytest.raises(ConfigError, match="heldout_every"):
        _cfg("sae-small", 1).__class__(name="sae-small", heldout_every=1).validate()
    row = pca_baseline(cache, n_components=8, fit_frames=200)
    pixels = 3 * cache.image_size ** 2
    assert row["name"] == "pca-8" and row["parameters"] == 8 * pixels + pixels
    # the frames it was fitted on's neighbours reconstruct better than unseen subjects' frames
    assert 0 < row["ssim"] < row["ssim_heldout"] <= 1 and row["mse_heldout"] < row["mse"]
    # fitted on flipped, colour-jittered copies (what augmented autoencoders see): another code, same for a seed
    augmented = pca_baseline(cache, n_components=8, fit_frames=200, augment=True)
    assert augmented["name"] == "pca-8-augmented" and augmented["mse"] != row["mse"]
    assert pca_baseline(cache, n_components=8, fit_frames=200, augment=True)["mse"] == augmented["mse"]


def test_evaluation_table_and_selection_pointer_round_trip(cache, tmp_path, monkeypatch):
    from lib.evaluation.ae_report import autoencoder_table, table4_layout, write_table

    monkeypatch.setenv("VICE_DATA_DIR", str(tmp_path / "data"))
    run = tmp_path / "run"
    names = ["sae-small", "vae-small"]
    for name in names:
        train_autoencoder(_cfg(name, 1), cache, run, progress=False)
    table = autoencoder_table(run, cache, names, progress=False)
    assert list(table["name"]) == names
    assert ((table["ssim"] > -1) & (table["ssim"] <= 1)).all() and (table["mse"] >= 0).all()
    assert ((table["ssim_heldout"] > -1) & (table["ssim_heldout"] <= 1)).all()  # the second test set
    assert (table["parameters"] > 0).all() and (table["train_seconds"] > 0).all() and (table["epochs"] == 1).all()
    paths = write_table(table, run)
    assert pd.read_csv(paths["csv"])["name"].tolist() == names
    assert "Table 4" in paths["markdown"].read_text()
    assert table4_layout(table).shape == (2, 2)
    # 02 with augment adds two linear rows (pca-50, pca-50-augmented): Table 4's layout leaves them out
    linear = [{"name": name, "type": "Linear (PCA)", "size": "-", "mse": 0.01, "ssim": 0.5}
              for name in ("pca-50", "pca-50-augmented")]
    with_linear = pd.concat([table, pd.DataFrame(linear)], ignore_index=True)
    assert table4_layout(with_linear).equals(table4_layout(table))
    assert "pca-50-augmented" in write_table(with_linear, run)["markdown"].read_text()

    with pytest.raises(FileNotFoundError, match="02_autoencoders.ipynb.*-p preset tiny"):
        find_selected_autoencoder("tiny")
    fake = table.assign(ssim=[0.5, 0.9], mse=[0.01, 0.02])
    pointer = select_autoencoder(fake, run, "tiny", criterion="ssim")
    assert pointer["name"] == "vae-small"
    assert json.loads(selection_pointer_path("tiny").read_text())["metrics"]["ssim"] == 0.9
    assert find_selected_autoencoder("tiny") == run.resolve() / "vae-small" / "checkpoint.pt"
    assert find_selected_autoencoder("tiny", name="sae-small") == run / "sae-small" / "checkpoint.pt"
    assert select_autoencoder(fake, run, "tiny", criterion="mse")["name"] == "sae-small"
    with pytest.raises(FileNotFoundError, match="sae-large"):
        find_selected_autoencoder("tiny", name="sae-large")
    with pytest.raises(ConfigError, match="'ssim', 'mse'"):
        select_autoencoder(fake, run, "tiny", criterion="psnr")


def test_augmentation_flips_and_jitters_within_range():
    from lib.train.autoencoders import augment_frames

    x = _frames(16)
    out = augment_frames(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.min() >= -1 and out.max() <= 1
    assert not torch.allclose(out, x)
    torch.testing.assert_close(out, augment_frames(x, torch.Generator().manual_seed(0)))


def test_figures_render_and_are_saved_in_both_places(cache, tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    from lib.evaluation import ae_figures, ae_report

    monkeypatch.setenv("VICE_FIGURES_DIR", str(tmp_path / "figures"))
    run = tmp_path / "run"
    names = ["sae-small", "vae-small"]
    for name in names:
        train_autoencoder(_cfg(name, 1), cache, run, progress=False)
    data = ae_report.figure_data(run, cache, names, n_samples=4, max_code_frames=30)
    assert data["real"].shape == (4, 3, 64, 64) and data["reconstructions"]["vae-small"].shape == (4, 3, 64, 64)
    assert data["codes"]["sae-small"].shape == (len(data["subjects"]), 50)
    assert set(data["subjects"][data["is_test"]]) == {"005"} and "005" not in set(data["subjects"][~data["is_test"]])
    figures = {
        "reconstructions": ae_figures.plot_reconstructions(data["real"], data["reconstructions"]),
        "training_curves": ae_figures.plot_training_curves(run, names),
        "code_projection": ae_figures.plot_code_projection(data["codes"], data["subjects"], is_test=data["is_test"]),
    }
    for stem, fig in figures.items():
        paths = ae_figures.save_figure(fig, run, stem, "tiny")
        assert paths["run"].stat().st_size > 1000 and paths["report"] == tmp_path / "figures" / f"02_{stem}-tiny.png"
        assert paths["report"].is_file()
    with pytest.raises(ConfigError, match="pca"):
        ae_figures.project_codes(data["codes"]["sae-small"], method="umap")


def test_seen_composition_autoencoder_serves_seen_gans_only(cache, tmp_path, monkeypatch):
    from lib.evaluation.ae_report import frame_subjects
    from lib.train.autoencoders import composition_frame_indices
    from lib.train.options import find_autoencoder_checkpoint

    monkeypatch.setenv("VICE_DATA_DIR", str(tmp_path / "data"))
    seen_rows = composition_frame_indices(cache, "train", "seen")  # + the test subject's seen emotion
    assert set(frame_subjects(cache, seen_rows)) == set(SUBJECTS)
    assert len(seen_rows) == len(composition_frame_indices(cache, "train")) + 12
    with pytest.raises(ConfigError, match="invalid composition='both'"):
        _cfg("sae-small", 1, composition="both")

    unseen_run, seen_run = tmp_path / "unseen", tmp_path / "seen"
    train_autoencoder(_cfg("sae-small", 1), cache, unseen_run, progress=False)
    summary = train_autoencoder(_cfg("sae-small", 1, composition="seen"), cache, seen_run, progress=False)
    assert load_checkpoint(summary["checkpoint"])["config"]["composition"] == "seen"
    table = pd.DataFrame({"name": ["sae-small"], "ssim": [0.5]})
    select_autoencoder(table, unseen_run, "tiny")
    # a seen GAN falls back to the unseen selection until 02 selects a seen one
    assert find_autoencoder_checkpoint("tiny", None, "seen") == unseen_run.resolve() / "sae-small" / "checkpoint.pt"
    select_autoencoder(table, seen_run, "tiny", composition="seen")
    assert selection_pointer_path("tiny", "seen").name == "selected-autoencoder-tiny-seen.json"
    assert find_autoencoder_checkpoint("tiny", None, "seen") == seen_run.resolve() / "sae-small" / "checkpoint.pt"
    assert find_autoencoder_checkpoint("tiny", None, "unseen") == unseen_run.resolve() / "sae-small" / "checkpoint.pt"
    with pytest.raises(ConfigError, match="trained on the seen composition, which includes test subjects"):
        find_autoencoder_checkpoint("tiny", summary["checkpoint"], "unseen")
