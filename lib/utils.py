"""Seeding, device choice and small helpers shared by training and evaluation."""
from __future__ import annotations

import os
import random

import numpy as np

from lib.config import check_choice

DEVICES = ("auto", "cpu", "cuda")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch so the same seed gives the same result on CPU."""
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))


def global_rng_states() -> dict:
    """Python's, NumPy's and torch's global RNG states (``lib.io.save_checkpoint`` stores NumPy's key
    array as a tensor, so the checkpoint loads with ``weights_only=True``)."""
    import torch

    return {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state()}


def restore_global_rng_states(states: dict) -> None:
    import torch

    torch.set_rng_state(states["torch"].cpu())
    random.setstate(states["python"])
    name, keys, position, has_gauss, cached = states["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), position, has_gauss, cached))


def resolve_device(device: str = "auto"):
    """``auto`` -> CUDA when present, else CPU; ``cuda`` without a GPU is an error."""
    import torch

    check_choice("device", device if not str(device).startswith("cuda:") else "cuda", DEVICES)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' was asked for but torch sees no CUDA GPU; use device='auto' or 'cpu'")
    return torch.device(device)


def count_parameters(module) -> int:
    return sum(p.numel() for p in module.parameters())
