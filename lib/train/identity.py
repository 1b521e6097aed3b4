"""Train FaceNet (InceptionResnetV1) as an identity embedder when no VGGFace2 weights exist offline.

facenet-pytorch's own recipe: the network with ``classify=True`` (embedding layer +
a linear ``logits`` head over the training subjects), cross-entropy on subject labels,
then the head is dropped and ``classify=False`` gives L2-normalised 512-d embeddings.
Only the training subjects of the split are used (never a test subject, in either
composition).  The result is cached under ``data_dir()/models/`` keyed by the cache and
the settings, so every GAN run on that cache reuses it.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

from lib.data.clips import uint8_to_model
from lib.io import atomic_write_json, save_checkpoint
from lib.paths import data_dir


def identity_embedder_path(cache_dir: str | Path, input_size: int, steps: int, batch_size: int, seed: int) -> Path:
    """Where the embedder for this cache and these settings is (or will be) stored."""
    settings = {"cache": str(Path(cache_dir).resolve()), "input_size": input_size, "steps": steps,
                "batch_size": batch_size, "seed": seed, "version": 1}
    key = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
    return data_dir() / "models" / f"facenet-identity-{Path(cache_dir).name}-{input_size}px-{key}.pt"


def _training_subject_rows(cache: Any):
    split = cache.split
    train_subjects = set(getattr(split, "train_subjects", None) or split["train_subjects"])
    rows = cache.index[cache.index["subject"].astype(str).isin({str(s) for s in train_subjects})]
    if rows["subject"].nunique() < 2:
        raise ValueError(f"identity training needs >= 2 training subjects, found {rows['subject'].nunique()}")
    return rows


def train_identity_embedder(cache: Any, cache_dir: str | Path, input_size: int = 160, steps: int = 2000,
                            batch_size: int = 32, learning_rate: float = 1e-3, seed: int = 0,
                            device: str | torch.device = "cpu", overwrite: bool = False) -> Path:
    """Train (or reuse) the identity embedder; returns its weights file (classify=False state dict)."""
    path = identity_embedder_path(cache_dir, input_size, steps, batch_size, seed)
    if path.is_file() and not overwrite:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    # Parallel GAN runs on one cache need the same embedder: one trains it, the others wait for it.
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.is_file() and not overwrite:
            return path
        return _train_identity_embedder(cache, cache_dir, path, input_size, steps, batch_size, learning_rate,
                                        seed, device)


def _train_identity_embedder(cache: Any, cache_dir: str | Path, path: Path, input_size: int, steps: int,
                             batch_size: int, learning_rate: float, seed: int, device: str | torch.device) -> Path:
    from lib.compat import import_facenet_pytorch

    rows = _training_subject_rows(cache)
    subjects = sorted(rows["subject"].astype(str).unique())
    subject_index = {s: i for i, s in enumerate(subjects)}
    # every frame of every training-subject video, with its subject label
    frame_ids = np.concatenate([np.arange(s, s + n) for s, n in zip(rows["start"], rows["length"])])
    frame_labels = np.concatenate([np.full(n, subject_index[str(s)]) for s, n in zip(rows["subject"], rows["length"])])

    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    model = import_facenet_pytorch().InceptionResnetV1(pretrained=None, classify=True,
                                                       num_classes=len(subjects)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    model.train()
    started, losses, correct = time.time(), [], []
    for _ in tqdm(range(steps), desc=f"FaceNet identity training ({len(subjects)} subjects)", leave=False):
        pick = rng.integers(0, len(frame_ids), size=batch_size)
        order = np.argsort(frame_ids[pick])  # sorted reads are cheap on a memory-mapped cache
        images = uint8_to_model(np.asarray(cache.frames[frame_ids[pick][order]])).to(device)
        labels = torch.from_numpy(frame_labels[pick][order]).long().to(device)
        flip = torch.from_numpy(rng.random(batch_size) < 0.5).to(device)  # mirror augmentation
        images = torch.where(flip[:, None, None, None], images.flip(-1), images)
        images = F.interpolate(images, size=(input_size, input_size), mode="bilinear", align_corners=False)
        logits = model(images)
        loss = F.cross_entropy(logits, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        correct.append(float((logits.argmax(1) == labels).float().mean()))
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("logits.")}
    tail = max(1, steps // 5)
    info = {"subjects": subjects, "steps": steps, "batch_size": batch_size, "input_size": input_size,
            "learning_rate": learning_rate, "seed": seed, "cache_dir": str(cache_dir),
            "final_loss": float(np.mean(losses[-tail:])), "final_train_accuracy": float(np.mean(correct[-tail:])),
            "seconds": round(time.time() - started, 1)}
    save_checkpoint(path, {"model": state, "info": info})
    atomic_write_json(path.with_suffix(".json"), info)
    return path
