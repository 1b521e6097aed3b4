"""Train (or reuse) the input neutraliser of recipe option ``neutralise_input`` (:mod:`lib.models.neutraliser`).

Pairs come from the generator's own training videos, never a held-out one: the input is any frame of a take,
the target is the take's first frame (neutral: takes run neutral -> onset -> apex) moved into that frame's head
pose by the rigid ECC fit of :func:`lib.data.clips.stabilise_clip`.  So the network learns to take the
expression off and to leave pose, light and the face's detail alone; a target in the first frame's pose would
also ask it to undo head movement it cannot predict, and it answers that with blur (measured: README, "The
input's own expression").  L1 loss, Adam with a one-cycle schedule, random mirror flips, batches of 16 (as good
as 32 on 05's pairs at 1,500 steps, at half the time: 0.17 s a step on one thread, 0.11 s on two).

Like the FaceNet identity embedder, the result is cached under ``data_dir()/models/``, keyed by the cache,
the training videos and the settings, so the GAN runs of one composition share it; parallel runs wait for
the one that trains it.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from lib.data.clips import stabilise_clip, uint8_to_model
from lib.io import atomic_write_json, load_checkpoint, save_checkpoint
from lib.models.neutraliser import NEUTRALISER_WIDTH, InputNeutraliser
from lib.paths import data_dir

NEUTRALISER_VERSION = 1  # bump when training changes: cached files of another version are not reused


@dataclass(frozen=True)
class NeutraliserSettings:
    steps: int = 1500
    width: int = NEUTRALISER_WIDTH
    batch_size: int = 16
    learning_rate: float = 2e-3
    seed: int = 0


def neutraliser_path(cache_dir: str | Path, video_ids: Sequence[int], settings: NeutraliserSettings) -> Path:
    """Where the neutraliser for this cache, these training videos and these settings is (or will be) stored."""
    key_data = {"cache": str(Path(cache_dir).resolve()), "videos": sorted(int(v) for v in video_ids),
                "version": NEUTRALISER_VERSION, **asdict(settings)}
    key = hashlib.sha1(json.dumps(key_data, sort_keys=True).encode()).hexdigest()[:12]
    return data_dir() / "models" / f"neutraliser-{Path(cache_dir).name}-{key}.pt"


def posed_first_frames(cache: Any, video_ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every frame of the videos ``video_ids`` and its target: ``(frame_rows, targets, take_of_frame)``:
    the cache rows of the frames, uint8 (F, H, W, 3) targets (the take's first frame in that frame's head pose)
    and each frame's position in ``video_ids``."""
    import cv2

    rows = cache.index.set_index("video_id").loc[list(video_ids)]
    frame_rows, targets, takes = [], [], []
    for take, (start, length) in enumerate(zip(rows["start"].to_numpy(int), rows["length"].to_numpy(int))):
        frames = np.asarray(cache.frames[start:start + length])
        _, motions = stabilise_clip(frames)
        size = (frames.shape[2], frames.shape[1])
        # motions[t] maps the first frame's (x, y) to where frame t shows it: a forward warp of the first frame.
        targets += [cv2.warpAffine(frames[0], motion, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                    for motion in motions]
        frame_rows.append(np.arange(start, start + length))
        takes.append(np.full(length, take))
    return np.concatenate(frame_rows), np.stack(targets), np.concatenate(takes)


def neutraliser_for(cache: Any, cache_dir: str | Path, steps: int, seed: int = 0, hold_out_validation: bool = True,
                    device: str | torch.device = "cpu", progress: bool = True) -> InputNeutraliser:
    """The neutraliser every generator of this cache shares: trained on the training subjects' videos (the
    ``unseen`` composition's, without the validation subjects' held-out ones when ``hold_out_validation``), so
    one network serves the seen and the unseen variants and no test subject's video is read."""
    from lib.data.splits import training_videos

    video_ids, _ = training_videos(cache, "unseen", hold_out=hold_out_validation)
    return train_neutraliser(cache, cache_dir, video_ids, NeutraliserSettings(steps=steps, seed=seed), device, progress)


def train_neutraliser(cache: Any, cache_dir: str | Path, video_ids: Sequence[int],
                      settings: NeutraliserSettings = NeutraliserSettings(), device: str | torch.device = "cpu",
                      progress: bool = True) -> InputNeutraliser:
    """The trained neutraliser for these training videos: read from its cache file, or trained and stored."""
    path = neutraliser_path(cache_dir, video_ids, settings)
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_suffix(".lock"), "a") as lock:  # one writer; parallel runs wait and reuse its file
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not path.is_file():
                _train(cache, cache_dir, video_ids, settings, path, torch.device(device), progress)
    return load_neutraliser(path, device)


def load_neutraliser(path: str | Path, device: str | torch.device = "cpu") -> InputNeutraliser:
    state = load_checkpoint(path, fix=f"delete {path}: the next GAN run with neutralise_input trains it again")
    model = InputNeutraliser(int(state["info"]["width"]))
    model.load_state_dict(state["model"])
    return model.to(device).eval().requires_grad_(False)


def _train(cache: Any, cache_dir: str | Path, video_ids: Sequence[int], settings: NeutraliserSettings, path: Path,
           device: torch.device, progress: bool) -> None:
    started = time.time()
    frame_rows, targets, _ = posed_first_frames(cache, video_ids)
    rng = np.random.default_rng(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    with torch.random.fork_rng():  # the init must not move the caller's global stream
        torch.manual_seed(settings.seed)
        model = InputNeutraliser(settings.width).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, settings.learning_rate, total_steps=settings.steps)
    losses, unchanged = [], []
    for _ in tqdm(range(settings.steps), desc=f"input neutraliser ({len(video_ids)} training videos)",
                  leave=False, disable=not progress):
        pick = np.sort(rng.integers(0, len(frame_rows), size=settings.batch_size))  # sorted reads: memory-mapped cache
        frames = uint8_to_model(np.asarray(cache.frames[frame_rows[pick]])).to(device)
        wanted = uint8_to_model(targets[pick]).to(device)
        flip = (torch.rand(settings.batch_size, generator=generator) < 0.5).to(device)[:, None, None, None]
        frames, wanted = torch.where(flip, frames.flip(-1), frames), torch.where(flip, wanted.flip(-1), wanted)
        loss = (model(frames) - wanted).abs().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        unchanged.append(float((frames - wanted).abs().mean()))
    tail = max(1, settings.steps // 5)
    info = {**asdict(settings), "videos": len(video_ids), "frames": int(len(frame_rows)), "cache_dir": str(cache_dir),
            "final_l1": float(np.mean(losses[-tail:])), "input_l1": float(np.mean(unchanged[-tail:])),
            "seconds": round(time.time() - started, 1), "version": NEUTRALISER_VERSION}
    save_checkpoint(path, {"model": model.state_dict(), "info": info})
    atomic_write_json(path.with_suffix(".json"), info)
