"""Training the six autoencoders (thesis 4.1.3): Adam, MSE reconstruction (+ KL for the VAE).

Training uses the frames of the ``unseen`` composition's training videos, i.e. the
training subjects only, so the test subjects stay unseen by the content encoder.
Each variant lives in ``<run_dir>/<name>/``: ``config.json``, ``stats.jsonl`` (one
record per epoch) and ``checkpoint.pt`` (weights, optimizer, epoch, RNG states,
training seconds and the config that built the model), rewritten atomically after
every epoch.  ``augment=True`` adds random flips and colour jitter (not in the thesis;
off in every preset).  Calling :func:`train_autoencoder` again on the same folder resumes
from that checkpoint; on CPU the result equals an uninterrupted run because each
epoch's frame order comes from a generator seeded by ``(seed, epoch)`` and the
global RNG (the VAE's sampling noise) is restored from the checkpoint.

The best variant is recorded for the GAN by :func:`select_autoencoder` in a pointer
``<data_dir>/models/selected-autoencoder-<preset>.json``; :func:`find_selected_autoencoder`
reads it back.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from lib.config import ConfigError, check_choice, check_positive, check_resumable, from_dict
from lib.constants import PRESET_NAMES
from lib.data.clips import uint8_to_model
from lib.data.splits import COMPOSITIONS
from lib.io import StatsWriter, load_checkpoint, save_checkpoint, save_config
from lib.locks import own_run_folder
from lib.models.autoencoders import (AUTOENCODERS, ConvAutoencoder, autoencoder_from_state, build_autoencoder,
                                     kl_divergence)
from lib.utils import count_parameters, global_rng_states, resolve_device, restore_global_rng_states, seed_everything

CHECKPOINT_NAME = "checkpoint.pt"
# Default: training subjects only, so one autoencoder serves every GAN variant.  ``seen`` adds the
# test subjects' seen emotions, which seen GAN variants train on anyway; measured 2026-11-23 on
# `small`: an unseen-composition autoencoder reconstructs a test subject as another face (the
# `truth` identity probe accepts 2% of its reconstructions), a seen one keeps it (100%).
TRAINING_COMPOSITION = "unseen"


@dataclass
class AETrainConfig:
    """Everything that defines one autoencoder training run (saved with it and in its checkpoint)."""
    name: str = "sae-large"
    epochs: int = 50
    batch_size: int = 32
    learning_rate: float = 0.005
    kl_weight: float = 1e-4          # VAE only: loss = MSE + kl_weight * KL (KL summed over code dims)
    code_dim: int = 50
    width: float = 1.0               # channel multiplier; 1.0 is the thesis's architecture
    image_size: int = 64
    seed: int = 0
    device: str = "auto"
    max_frames_per_epoch: int | None = None  # None: every training frame each epoch
    eval_frames: int | None = None   # test frames used for the metrics (evenly spaced); None: all
    preset: str = "paper"
    num_threads: int | None = None   # torch CPU threads; None: torch's default (OMP_NUM_THREADS)
    augment: bool = False            # random flips + colour jitter (not in the thesis; off in every preset)
    composition: str = TRAINING_COMPOSITION  # whose frames it learns: unseen (training subjects) | seen (+ test subjects' seen emotions)
    heldout_every: int = 10          # every N-th training frame is held out (Table 4's second test set); 0 = none
    ssim_weight: float = 0.0         # loss += ssim_weight * (1 - SSIM) on the [0, 1] scale (not in the thesis: MSE only)

    def validate(self) -> "AETrainConfig":
        check_choice("autoencoder", self.name, AUTOENCODERS)
        check_choice("preset", self.preset, PRESET_NAMES)
        check_choice("composition", self.composition, COMPOSITIONS)
        for field in ("epochs", "batch_size", "code_dim", "image_size"):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"invalid {field}={value!r}; must be an integer >= 1")
        check_positive("learning_rate", self.learning_rate)
        check_positive("width", self.width)
        check_positive("kl_weight", self.kl_weight, allow_zero=True)
        check_positive("ssim_weight", self.ssim_weight, allow_zero=True)
        if self.num_threads is not None and (not isinstance(self.num_threads, int) or self.num_threads < 1):
            raise ConfigError(f"invalid num_threads={self.num_threads!r}; must be None or an integer >= 1")
        for field in ("max_frames_per_epoch", "eval_frames"):
            value = getattr(self, field)
            if value is not None and (not isinstance(value, int) or value < 2):
                raise ConfigError(f"invalid {field}={value!r}; must be None or an integer >= 2")
        if not isinstance(self.heldout_every, int) or isinstance(self.heldout_every, bool) or self.heldout_every == 1 \
                or self.heldout_every < 0:
            raise ConfigError(f"invalid heldout_every={self.heldout_every!r}; must be 0 (none) or an integer >= 2")
        if not isinstance(self.augment, bool):
            raise ConfigError(f"invalid augment={self.augment!r}; must be True or False")
        resolve_device(self.device)
        return self


# Per preset: the numbers that differ from AETrainConfig's defaults (the thesis's).
# `small` (synthetic small benchmark: 16 training subjects, ~7.4k training frames): 6 epochs
# of 3000 frames at width 0.5; all six train in 360-440 s on this 2-core CPU (2 torch threads;
# 30-100 s per model, the shared host's speed varies), test metrics on 500 evenly spaced test frames.
AE_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"epochs": 2, "width": 0.25, "max_frames_per_epoch": 256, "eval_frames": 128, "kl_weight": 1e-4},
    "small": {"epochs": 6, "width": 0.5, "max_frames_per_epoch": 3000, "eval_frames": 500, "kl_weight": 1e-4},
    "paper": {"epochs": 50, "width": 1.0, "max_frames_per_epoch": None, "eval_frames": None, "kl_weight": 1e-4},
}


def ae_config(preset: str, name: str, **overrides: Any) -> AETrainConfig:
    """The config of variant ``name`` at ``preset``; ``overrides`` whose value is None are ignored."""
    check_choice("preset", preset, AE_PRESETS)
    values = {**AE_PRESETS[preset], "preset": preset, "name": name}
    values.update({k: v for k, v in overrides.items() if v is not None})
    return from_dict(AETrainConfig, values).validate()


# -- data ---------------------------------------------------------------------------------
def video_frame_indices(cache, video_ids) -> np.ndarray:
    """Row numbers in ``cache.frames`` of every frame of the given videos (sorted)."""
    index = cache.index.set_index("video_id").loc[np.asarray(video_ids, np.int64)]
    starts, lengths = index["start"].to_numpy(np.int64), index["length"].to_numpy(np.int64)
    if len(starts) == 0:
        return np.zeros(0, np.int64)
    return np.sort(np.concatenate([np.arange(s, s + n) for s, n in zip(starts, lengths)]))


def composition_frame_indices(cache, part: str, composition: str = TRAINING_COMPOSITION) -> np.ndarray:
    """Frame rows of the ``train`` or ``test`` videos of ``composition``."""
    from lib.data.splits import composition_videos

    check_choice("part", part, ("train", "test"))
    train_ids, test_ids = composition_videos(cache, composition)
    return video_frame_indices(cache, train_ids if part == "train" else test_ids)


def split_heldout(rows: np.ndarray, every: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows to fit, held-out rows): every ``every``-th row (from the middle of each block) held out;
    ``every=0`` holds out nothing.  Held-out frames are of the training subjects, between frames the
    model fits: what the thesis most likely measured (it does not say how its split was made)."""
    if not every:
        return rows, rows[:0]
    held = np.zeros(len(rows), bool)
    held[every // 2::every] = True
    return rows[~held], rows[held]


def evenly_spaced(indices: np.ndarray, limit: int | None) -> np.ndarray:
    """At most ``limit`` entries spread evenly over ``indices`` (deterministic subsample)."""
    if limit is None or len(indices) <= limit:
        return indices
    return indices[np.linspace(0, len(indices) - 1, limit).round().astype(np.int64)]


def load_frames(cache, rows: np.ndarray) -> torch.Tensor:
    """Frames ``(B, 3, H, W)`` float in [-1, 1] from cache rows (read in increasing order)."""
    order = np.argsort(rows, kind="stable")
    batch = np.empty((len(rows),) + tuple(cache.frames.shape[1:]), np.uint8)
    batch[order] = np.asarray(cache.frames[rows[order]])
    return uint8_to_model(batch)


def epoch_batches(rows: np.ndarray, epoch: int, cfg: AETrainConfig) -> list[np.ndarray]:
    """This epoch's batches: a (seed, epoch)-seeded shuffle, cut to ``max_frames_per_epoch``.

    A last batch of one frame is dropped (BatchNorm cannot normalise a 1x1 map of one sample).
    """
    generator = np.random.default_rng([cfg.seed, epoch])
    order = rows[generator.permutation(len(rows))][: cfg.max_frames_per_epoch or len(rows)]
    batches = [order[i:i + cfg.batch_size] for i in range(0, len(order), cfg.batch_size)]
    return [b for b in batches if len(b) > 1]


def augment_frames(frames: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random horizontal flips and per-channel gain/offset colour jitter of frames in [-1, 1].

    With few training subjects an autoencoder memorises their colours (skin, hair,
    clothes) and reconstructs an unseen face as the nearest training one; jittered
    colours make it encode colour instead.
    """
    n = frames.shape[0]
    flip = torch.rand(n, generator=generator) < 0.5
    frames = torch.where(flip[:, None, None, None], frames.flip(-1), frames)
    gain = 0.75 + 0.5 * torch.rand(n, 3, 1, 1, generator=generator)
    offset = 0.2 * torch.rand(n, 3, 1, 1, generator=generator) - 0.1
    unit = (frames + 1) / 2
    return ((unit * gain + offset).clamp(0, 1) * 2 - 1).contiguous()


# -- training ---------------------------------------------------------------------------
def reconstruction_loss(model: ConvAutoencoder, frames: torch.Tensor, kl_weight: float,
                        ssim_weight: float = 0.0) -> dict[str, torch.Tensor]:
    """``{"loss", "mse", "kl"}`` for one batch (MSE on the [-1, 1] scale; KL is 0 for an SAE).

    ``ssim_weight`` adds ``ssim_weight * (1 - SSIM)`` (pytorch-msssim, the index Table 4 reports, on the [0, 1]
    scale): MSE alone favours the blurred average of faces, which SSIM, built on local structure, scores low."""
    out = model(frames)
    mse = F.mse_loss(out["recon"], frames)
    kl = kl_divergence(out["mu"], out["logvar"]) if model.variational else torch.zeros((), device=frames.device)
    loss = mse + kl_weight * kl
    if ssim_weight:
        from pytorch_msssim import ssim

        loss = loss + ssim_weight * (1 - ssim((out["recon"] + 1) / 2, (frames + 1) / 2, data_range=1.0))
    return {"loss": loss, "mse": mse, "kl": kl}


# Only the number of epochs (and where it runs) may change between a run and its resumption.
RESUME_MAY_CHANGE = ("epochs", "device", "eval_frames", "num_threads")


def train_autoencoder(cfg: AETrainConfig, cache, run_dir: str | Path, progress: bool = True) -> dict[str, Any]:
    """Train (or resume) ``cfg.name`` into ``run_dir/<name>/``; returns a summary dict.

    Summary: name, epochs, final train loss / MSE / KL, training seconds (summed over
    resumptions), parameters, checkpoint path.
    """
    cfg.validate()
    out_dir = Path(run_dir) / cfg.name
    rows, _ = split_heldout(composition_frame_indices(cache, "train", cfg.composition), cfg.heldout_every)
    if len(rows) < 2:
        raise ValueError(f"the cache's training split has {len(rows)} frames; an autoencoder needs at least 2")
    if cache.image_size != cfg.image_size:
        raise ConfigError(f"cache frames are {cache.image_size}x{cache.image_size} but image_size={cfg.image_size}")
    out_dir.mkdir(parents=True, exist_ok=True)
    with own_run_folder(out_dir):  # one writer per run folder: a second one fails here, naming the owner
        return _train_autoencoder_owned(cfg, cache, out_dir, rows, progress)


def _train_autoencoder_owned(cfg: AETrainConfig, cache, out_dir: Path, rows: np.ndarray,
                             progress: bool) -> dict[str, Any]:
    from tqdm.auto import tqdm

    checkpoint_path = out_dir / CHECKPOINT_NAME
    device = resolve_device(cfg.device)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)

    seed_everything(cfg.seed)
    model = build_autoencoder(cfg.name, code_dim=cfg.code_dim, image_size=cfg.image_size, width=cfg.width).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)
    stats = StatsWriter(out_dir / "stats.jsonl")
    start_epoch, train_seconds, last = 0, 0.0, {}
    if checkpoint_path.exists():
        state = load_checkpoint(checkpoint_path)
        check_resumable(state["config"], dataclasses.asdict(cfg), checkpoint_path, RESUME_MAY_CHANGE)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        restore_global_rng_states(state["rng"])
        start_epoch, train_seconds, last = state["epoch"], state["train_seconds"], state.get("last", {})
        stats.truncate_after("epoch", start_epoch)  # an epoch logged after the checkpoint is redone
    save_config(cfg, out_dir / "config.json")

    schedule = {epoch: epoch_batches(rows, epoch, cfg) for epoch in range(start_epoch, cfg.epochs)}
    bar = tqdm(total=sum(len(b) for b in schedule.values()), desc=cfg.name, disable=not progress, leave=True)
    for epoch, batches in schedule.items():
        model.train()
        started = time.perf_counter()
        sums = {"loss": 0.0, "mse": 0.0, "kl": 0.0}
        jitter = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)  # per epoch, so resuming repeats it
        for batch_rows in batches:
            frames = load_frames(cache, batch_rows)
            frames = (augment_frames(frames, jitter) if cfg.augment else frames).to(device)
            losses = reconstruction_loss(model, frames, cfg.kl_weight, cfg.ssim_weight)
            optimizer.zero_grad(set_to_none=True)
            losses["loss"].backward()
            optimizer.step()
            values = {key: float(losses[key].detach()) for key in sums}
            for key, value in values.items():
                sums[key] += value
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{values['loss']:.4f}")
        train_seconds += time.perf_counter() - started
        last = {key: value / max(len(batches), 1) for key, value in sums.items()}
        stats.write({"epoch": epoch + 1, **last, "frames": sum(len(b) for b in batches),
                     "train_seconds": round(train_seconds, 3)})
        save_checkpoint(checkpoint_path, {
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch + 1,
            "rng": global_rng_states(), "train_seconds": train_seconds, "last": last,
            "build": model.build_kwargs(), "parameters": count_parameters(model),
        }, cfg)
    bar.close()
    return {"name": cfg.name, "epochs": cfg.epochs, "train_loss": last.get("loss"), "train_mse": last.get("mse"),
            "train_kl": last.get("kl"), "train_seconds": train_seconds, "parameters": count_parameters(model),
            "checkpoint": str(checkpoint_path)}


# -- loading ------------------------------------------------------------------------------
def resolve_checkpoint(path_or_run: str | Path, name: str | None = None) -> Path:
    """A checkpoint file from a file path, a variant folder, or a 02 run folder plus ``name``."""
    path = Path(path_or_run).expanduser()
    if path.is_file():
        return path
    if name is not None:
        check_choice("autoencoder", name, AUTOENCODERS)
        path = path / name
    if (path / CHECKPOINT_NAME).is_file():
        return path / CHECKPOINT_NAME
    trained = sorted(p.parent.name for p in path.glob(f"*/{CHECKPOINT_NAME}")) if path.is_dir() else []
    hint = (f"this run folder holds {trained}; pass name=" if trained else
            "train it with notebooks/02_autoencoders.ipynb")
    raise FileNotFoundError(f"no autoencoder checkpoint at {path}; {hint}")


def load_autoencoder(path_or_run: str | Path, device: str | torch.device = "cpu",
                     name: str | None = None) -> ConvAutoencoder:
    """Rebuild a trained autoencoder from its checkpoint (architecture from the stored config), in eval mode."""
    state = load_checkpoint(resolve_checkpoint(path_or_run, name))
    return autoencoder_from_state(state).to(resolve_device(str(device)))


# -- selection (what the GAN uses) --------------------------------------------------------
SELECTION_CRITERIA = {"ssim": "max", "mse": "min"}


def selection_pointer_path(preset: str, composition: str = TRAINING_COMPOSITION) -> Path:
    """``<data_dir>/models/selected-autoencoder-<preset>.json`` (``-seen`` before ``.json`` for the seen composition)."""
    from lib.paths import data_dir

    check_choice("preset", preset, PRESET_NAMES)
    check_choice("composition", composition, COMPOSITIONS)
    suffix = "" if composition == TRAINING_COMPOSITION else f"-{composition}"
    return data_dir() / "models" / f"selected-autoencoder-{preset}{suffix}.json"


def select_autoencoder(table, run_dir: str | Path, preset: str, criterion: str = "ssim",
                       composition: str = TRAINING_COMPOSITION) -> dict[str, Any]:
    """Pick the best row of ``table`` (a DataFrame with ``name`` and metric columns) and record it.

    ``ssim`` picks the highest test SSIM, ``mse`` the lowest test MSE.  Writes the
    pointer JSON (name, checkpoint, metrics, every variant's checkpoint) and returns it.
    """
    from lib.io import atomic_write_json

    check_choice("criterion", criterion, SELECTION_CRITERIA)
    check_choice("preset", preset, PRESET_NAMES)
    if table is None or len(table) == 0 or criterion not in table.columns:
        raise ValueError(f"the results table needs rows with a {criterion!r} column to select a model")
    ranked = table.sort_values(criterion, ascending=SELECTION_CRITERIA[criterion] == "min", kind="stable")
    best = ranked.iloc[0].to_dict()
    run_dir = Path(run_dir).resolve()
    variants = {str(n): str(resolve_checkpoint(run_dir, str(n)).resolve()) for n in table["name"]}
    pointer = {
        "name": str(best["name"]),
        "checkpoint": variants[str(best["name"])],
        "run_dir": str(run_dir),
        "preset": preset,
        "composition": composition,
        "criterion": criterion,
        "metrics": {k: (v.item() if hasattr(v, "item") else v) for k, v in best.items()},
        "variants": variants,
    }
    atomic_write_json(selection_pointer_path(preset, composition), pointer)
    return pointer


def find_selected_autoencoder(preset: str, name: str | None = None, composition: str = TRAINING_COMPOSITION) -> Path:
    """Checkpoint of the selected autoencoder for ``preset`` (or of variant ``name`` from the same 02 run)
    for a GAN of ``composition``: a seen GAN takes the seen-composition selection when 02 made one,
    else (and an unseen GAN always) the unseen one, which saw no test subject."""
    from lib.io import read_json

    pointer_path = selection_pointer_path(preset, composition)
    if not pointer_path.is_file():
        pointer_path = selection_pointer_path(preset)
    if not pointer_path.is_file():
        raise FileNotFoundError(
            f"no selected autoencoder for preset {preset!r} ({pointer_path} is missing); run "
            f"`papermill notebooks/02_autoencoders.ipynb out.ipynb -p preset {preset}` "
            f"(notebooks/02_autoencoders.ipynb with -p preset {preset}) first")
    pointer = read_json(pointer_path)
    if name is None:
        checkpoint = Path(pointer["checkpoint"])
    else:
        check_choice("autoencoder", name, AUTOENCODERS)
        checkpoint = Path(pointer["run_dir"]) / name / CHECKPOINT_NAME
    if not checkpoint.is_file():
        raise FileNotFoundError(
            f"{checkpoint} is missing (pointer {pointer_path}); train it with notebooks/02_autoencoders.ipynb "
            f"-p preset {preset}" + (f" -p variants {name}" if name else ""))
    return checkpoint


__all__ = ["AETrainConfig", "AE_PRESETS", "ae_config", "train_autoencoder", "load_autoencoder", "resolve_checkpoint",
           "select_autoencoder", "find_selected_autoencoder", "selection_pointer_path", "composition_frame_indices",
           "evenly_spaced", "load_frames", "CHECKPOINT_NAME", "SELECTION_CRITERIA"]
