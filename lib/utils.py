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
    """Python's, NumPy's and torch's global RNG states, as tensors and plain values (a checkpoint
    loads them with ``weights_only=True``)."""
    import torch

    name, keys, position, has_gauss, cached = np.random.get_state()
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "position": int(position),
                      "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}}


def restore_global_rng_states(states: dict) -> None:
    import torch

    torch.set_rng_state(states["torch"].cpu())
    random.setstate(tuple(tuple(s) if isinstance(s, list) else s for s in states["python"]))
    numpy = states["numpy"]
    if not isinstance(numpy, dict):  # a converted checkpoint of an older version: get_state()'s tuple
        numpy = dict(zip(("name", "keys", "position", "has_gauss", "cached_gaussian"), numpy))
    keys = numpy["keys"].numpy() if hasattr(numpy["keys"], "numpy") else np.asarray(numpy["keys"])
    np.random.set_state((numpy["name"], keys.astype(np.uint32), numpy["position"], numpy["has_gauss"],
                         numpy["cached_gaussian"]))


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
