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
