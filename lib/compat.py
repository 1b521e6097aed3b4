"""Import facenet-pytorch without torchvision.

torchvision 0.28 does not import on the CPU build of torch 2.13 (and its presence
breaks torchmetrics), so it is not installed.  facenet-pytorch needs only two of its
functions: ``torchvision.ops.boxes.batched_nms`` and
``torchvision.transforms.functional.to_tensor``.  :func:`import_facenet_pytorch`
supplies pure-torch versions of those while facenet-pytorch's modules load, then
removes the stand-in modules again so nothing else mistakes them for torchvision.
"""
from __future__ import annotations

import importlib
import sys
import types

import numpy as np
import torch


def box_iou_matrix(boxes: torch.Tensor, others: torch.Tensor) -> torch.Tensor:
    """IoU between (N, 4) and (M, 4) boxes given as x1, y1, x2, y2."""
    area = (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)
    area_o = (others[:, 2] - others[:, 0]).clamp(min=0) * (others[:, 3] - others[:, 1]).clamp(min=0)
    top_left = torch.maximum(boxes[:, None, :2], others[None, :, :2])
    bottom_right = torch.minimum(boxes[:, None, 2:], others[None, :, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(dim=2)
    return inter / (area[:, None] + area_o[None, :] - inter).clamp(min=1e-12)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression; indices of kept boxes, highest score first."""
    order = torch.argsort(scores, descending=True)
    keep = []
    while order.numel() > 0:
        best = order[0]
        keep.append(best)
        if order.numel() == 1:
            break
        ious = box_iou_matrix(boxes[best].unsqueeze(0), boxes[order[1:]])[0]
        order = order[1:][ious <= iou_threshold]
    return torch.stack(keep) if keep else torch.empty(0, dtype=torch.long, device=boxes.device)


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """NMS done independently per category ``idxs`` (same contract as torchvision's)."""
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    # Shift each category's boxes so that boxes of different categories never overlap.
    offsets = idxs.to(boxes) * (boxes.max() + 1)
    return nms(boxes + offsets[:, None], scores, iou_threshold)


def to_tensor(picture) -> torch.Tensor:
    """PIL image or HWC uint8 array -> float CHW tensor in [0, 1]."""
    array = np.asarray(picture)
    if array.ndim == 2:
        array = array[:, :, None]
    tensor = torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))
    return tensor.float().div(255) if tensor.dtype == torch.uint8 else tensor.float()


def _torchvision_importable() -> bool:
    try:
        importlib.import_module("torchvision")
        return True
    except Exception:
        for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
            del sys.modules[name]
        return False


def import_facenet_pytorch():
    """Return the ``facenet_pytorch`` module, supplying torchvision's two functions if needed."""
    if "facenet_pytorch" in sys.modules:
        return sys.modules["facenet_pytorch"]
    if _torchvision_importable():
        return importlib.import_module("facenet_pytorch")
    stand_ins = {
        "torchvision": types.ModuleType("torchvision"),
        "torchvision.ops": types.ModuleType("torchvision.ops"),
        "torchvision.ops.boxes": types.ModuleType("torchvision.ops.boxes"),
        "torchvision.transforms": types.ModuleType("torchvision.transforms"),
        "torchvision.transforms.functional": types.ModuleType("torchvision.transforms.functional"),
    }
    stand_ins["torchvision.ops.boxes"].batched_nms = batched_nms
    stand_ins["torchvision.ops"].boxes = stand_ins["torchvision.ops.boxes"]
    stand_ins["torchvision.transforms.functional"].to_tensor = to_tensor
    stand_ins["torchvision.transforms"].functional = stand_ins["torchvision.transforms.functional"]
    stand_ins["torchvision"].ops = stand_ins["torchvision.ops"]
    stand_ins["torchvision"].transforms = stand_ins["torchvision.transforms"]
    sys.modules.update(stand_ins)
    try:
        module = importlib.import_module("facenet_pytorch")
    except ImportError as error:
        raise ImportError(
            "facenet-pytorch is not installed; run `make venv` (it installs facenet-pytorch==2.6.0 "
            "with --no-deps)"
        ) from error
    finally:
        for name in stand_ins:
            sys.modules.pop(name, None)
    return module
