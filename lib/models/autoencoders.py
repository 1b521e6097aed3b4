"""The six autoencoders of the thesis (4.1, Table 1, Appendix A.1): {sae, vae} x {small, medium, large}.

Each maps frames ``(B, 3, 64, 64)`` in [-1, 1] to a 50-d code and back (tanh output).
``encode(x)`` is the content encoder the GAN uses (for a VAE: the mean).  The VAE
replaces the code layer by a mean layer and a log-variance layer and samples
``z = mu + exp(logvar / 2) * eps`` while training; in eval mode ``z = mu`` so that
reconstructions and codes are deterministic.

Appendix A.1 does not close on 64x64 inputs, so each model is the nearest
shape-consistent version that keeps Table 1's conv/deconv counts (small 2/2, medium
4/3, large 5/4), the appendix's channels, kernels and strides where they fit, and
Conv -> BatchNorm -> ReLU blocks.  Choices common to all six:

- Output layer: the appendix lists none (large, medium) or a 64-channel sigmoid
  deconv (small).  Every model ends in a 3x3 stride-1 Conv to 3 channels + Tanh
  (images live in [-1, 1]); it is an output projection, not counted in Table 1.
- The decoder's linear layer maps the code to the smallest feature map from which
  the listed deconvs reach 64x64, followed by ReLU.
- Stride-2 3x3 deconvs use ``output_padding=1`` so that each exactly doubles the size.
- ``width`` scales every hidden channel count (CPU presets), but never below 4 channels
  (or the layer's own count if smaller); width=1.0 is the thesis.

Per model:

- small: Conv16 k3 s1 p1, Conv4 k3 s2 p1 (appendix), then MaxPool k2 s2 with p0
  (the appendix's p1 gives 17x17, which no k2 s2 deconv stack brings back to 64);
  the text's "two max pooling layers" would drop the second conv's stride, so the
  table's layout is kept.  Decoder: Deconv4 and Deconv16, k2 s2 p0 (p1 would shrink
  the maps to 2n-2); the appendix's third deconv (N64, sigmoid) is the output layer.
- medium: the appendix encoder closes (64 -> 16 -> 4 -> 2 -> 1).  The decoder's three
  k3 s2 deconvs start from 256x8x8.
- large: five k3 s2 convs (64 -> 2).  Four doubling deconvs cannot turn 2x2 into
  64x64, so the decoder starts from 512x4x4.

Layer tables at width 1.0: ``docs/autoencoders.md``, regenerated from the real modules with forward hooks by
``layer_table_markdown(name)`` (a test checks that page against them).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lib.config import ConfigError, check_choice

AUTOENCODERS: tuple[str, ...] = ("sae-small", "sae-medium", "sae-large", "vae-small", "vae-medium", "vae-large")
AE_KINDS = ("sae", "vae")
AE_SIZES = ("small", "medium", "large")

# (channels, kernel, stride, padding) per encoder conv, then per decoder deconv
# (channels, kernel, stride, padding, output_padding); see the module docstring.
_ENCODER_PLANS: dict[str, list[tuple[int, int, int, int]]] = {
    "small": [(16, 3, 1, 1), (4, 3, 2, 1)],
    "medium": [(32, 4, 4, 1), (64, 4, 4, 1), (128, 3, 3, 1), (256, 3, 3, 1)],
    "large": [(32, 3, 2, 1), (64, 3, 2, 1), (128, 3, 2, 1), (256, 3, 2, 1), (512, 3, 2, 1)],
}
_DECODER_PLANS: dict[str, list[tuple[int, int, int, int, int]]] = {
    "small": [(4, 2, 2, 0, 0), (16, 2, 2, 0, 0)],
    "medium": [(128, 3, 2, 1, 1), (64, 3, 2, 1, 1), (32, 3, 2, 1, 1)],
    "large": [(256, 3, 2, 1, 1), (128, 3, 2, 1, 1), (64, 3, 2, 1, 1), (32, 3, 2, 1, 1)],
}
# Channels of the map the decoder's linear layer produces (mirrors the encoder's last conv).
_DECODER_INPUT_CHANNELS = {"small": 4, "medium": 256, "large": 512}
_SMALL_POOL = (2, 2)  # kernel, stride of the small model's max pooling


def parse_autoencoder_name(name: str) -> tuple[str, str]:
    """``"vae-large"`` -> ``("vae", "large")`` after checking the name against :data:`AUTOENCODERS`."""
    check_choice("autoencoder", name, AUTOENCODERS)
    kind, size = name.split("-")
    return kind, size


MIN_SCALED_CHANNELS = 4


def _scaled(channels: int, width: float) -> int:
    # Narrow layers are not narrowed further: the small model's 4-channel bottleneck map at
    # width 0.5 would have 2 channels, which all die under ReLU and the model stops learning.
    return max(min(channels, MIN_SCALED_CHANNELS), int(round(channels * width)))


class ConvAutoencoder(nn.Module):
    """A convolutional (``sae-*``) or variational (``vae-*``) autoencoder; build with :func:`build_autoencoder`."""

    def __init__(self, name: str, code_dim: int = 50, image_size: int = 64, width: float = 1.0):
        super().__init__()
        kind, size = parse_autoencoder_name(name)
        if not (isinstance(code_dim, int) and code_dim > 0):
            raise ConfigError(f"invalid code_dim={code_dim!r}; must be a positive integer")
        if not (isinstance(width, (int, float)) and width > 0):
            raise ConfigError(f"invalid width={width!r}; must be a number > 0")
        self.name, self.kind, self.size = name, kind, size
        self.variational = kind == "vae"
        self.code_dim, self.image_size, self.width = code_dim, image_size, float(width)

        layers: list[nn.Module] = []
        channels = 3
        for out, kernel, stride, padding in _ENCODER_PLANS[size]:
            out = _scaled(out, width)
            layers.append(nn.Sequential(nn.Conv2d(channels, out, kernel, stride, padding), nn.BatchNorm2d(out),
                                        nn.ReLU(inplace=True)))
            channels = out
        if size == "small":
            layers.append(nn.MaxPool2d(*_SMALL_POOL))
        self.encoder = nn.Sequential(*layers)
        with torch.no_grad():
            self.encoder.eval()
            self.feature_shape = tuple(self.encoder(torch.zeros(1, 3, image_size, image_size)).shape[1:])
            self.encoder.train()
        features = int(torch.tensor(self.feature_shape).prod())
        if self.variational:
            self.to_mu = nn.Linear(features, code_dim)
            self.to_logvar = nn.Linear(features, code_dim)
        else:
            self.to_code = nn.Linear(features, code_dim)

        plan = _DECODER_PLANS[size]
        upscale = 1
        for _, kernel, stride, padding, extra in plan:
            upscale *= stride
        if image_size % upscale:
            raise ConfigError(f"image_size={image_size} must be a multiple of {upscale} for {name}")
        start_channels = _scaled(_DECODER_INPUT_CHANNELS[size], width)
        self.decoder_input_shape = (start_channels, image_size // upscale, image_size // upscale)
        self.from_code = nn.Sequential(nn.Linear(code_dim, start_channels * (image_size // upscale) ** 2),
                                       nn.ReLU(inplace=True))
        layers = []
        channels = start_channels
        for out, kernel, stride, padding, extra in plan:
            out = _scaled(out, width)
            layers.append(nn.Sequential(nn.ConvTranspose2d(channels, out, kernel, stride, padding, output_padding=extra),
                                        nn.BatchNorm2d(out), nn.ReLU(inplace=True)))
            channels = out
        self.decoder = nn.Sequential(*layers)
        self.to_image = nn.Sequential(nn.Conv2d(channels, 3, 3, 1, 1), nn.Tanh())

    def build_kwargs(self) -> dict[str, Any]:
        """The arguments that rebuild this architecture with :func:`build_autoencoder`."""
        return {"name": self.name, "code_dim": self.code_dim, "image_size": self.image_size, "width": self.width}

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 3 or tuple(x.shape[-2:]) != (self.image_size, self.image_size):
            raise ValueError(f"{self.name} expects frames (B, 3, {self.image_size}, {self.image_size}), got {tuple(x.shape)}")
        return self.encoder(x).flatten(1)

    def encode_distribution(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(mu, logvar)`` for a VAE, ``(code, None)`` for a standard autoencoder."""
        features = self._features(x)
        if self.variational:
            return self.to_mu(features), self.to_logvar(features)
        return self.to_code(features), None

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Content codes ``(B, code_dim)``: the code layer's output (VAE: the mean)."""
        return self.encode_distribution(x)[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Frames ``(B, 3, H, W)`` in [-1, 1] from codes ``(B, code_dim)``."""
        hidden = self.from_code(z).view(z.shape[0], *self.decoder_input_shape)
        return self.to_image(self.decoder(hidden))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        mu, logvar = self.encode_distribution(x)
        if self.variational:
            # Reparameterisation: sample while training, use the mean when evaluating.
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu) if self.training else mu
            return {"recon": self.decode(z), "z": z, "mu": mu, "logvar": logvar}
        return {"recon": self.decode(mu), "z": mu}


def build_autoencoder(name: str, code_dim: int = 50, image_size: int = 64, width: float = 1.0) -> ConvAutoencoder:
    """One of :data:`AUTOENCODERS` (a bad name raises ConfigError listing the six)."""
    return ConvAutoencoder(name, code_dim=code_dim, image_size=image_size, width=width)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) summed over code dimensions, averaged over the batch."""
    return (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)).mean()


_SHORT_NAMES = {"BatchNorm2d": "BN", "ReLU": "ReLU", "Tanh": "Tanh"}


def _describe(module: nn.Module) -> str:
    if isinstance(module, nn.Sequential):
        return " + ".join(_describe(child) for child in module)
    kind = type(module).__name__
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        short = "Deconv" if isinstance(module, nn.ConvTranspose2d) else "Conv"
        return (f"{short}({module.in_channels}->{module.out_channels}, k{module.kernel_size[0]}, "
                f"s{module.stride[0]}, p{module.padding[0]})")
    if isinstance(module, nn.Linear):
        return f"Linear({module.in_features}->{module.out_features})"
    if isinstance(module, nn.MaxPool2d):
        return f"MaxPool(k{module.kernel_size}, s{module.stride})"
    return _SHORT_NAMES.get(kind, kind)


def _table_units(model: ConvAutoencoder) -> list[tuple[str, nn.Module]]:
    """The blocks a layer table lists: each encoder/decoder block, the code layers, the output layer."""
    units = []
    for name, module in model.named_children():
        if name in ("encoder", "decoder"):
            units += [(f"{name}.{i}", block) for i, block in enumerate(module)]
        else:
            units.append((name, module))
    return units


def layer_table(model: ConvAutoencoder) -> list[dict[str, Any]]:
    """Rows ``{layer, output_shape, parameters}`` per block (conv + BN + ReLU...), in execution order.

    Taken with forward hooks during one forward pass (eval mode), so it describes the
    real module, not a hand-written plan.
    """
    rows: list[dict[str, Any]] = []
    hooks = []
    for unit_name, module in _table_units(model):
        def record(mod, _inputs, output, unit_name=unit_name):
            rows.append({
                "layer": f"{unit_name}: {_describe(mod)}",
                "output_shape": "x".join(str(d) for d in output.shape[1:]),
                "parameters": sum(p.numel() for p in mod.parameters()),
            })
        hooks.append(module.register_forward_hook(record))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, model.image_size, model.image_size))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    return rows


def layer_table_markdown(name: str, code_dim: int = 50, image_size: int = 64, width: float = 1.0) -> str:
    """The markdown layer table of one variant, as it appears in this module's docstring."""
    model = build_autoencoder(name, code_dim=code_dim, image_size=image_size, width=width)
    total = sum(p.numel() for p in model.parameters())
    lines = [f"{name} ({total:,} parameters)", "", "| layer | output shape | parameters |", "|---|---|---|"]
    lines += [f"| {r['layer']} | {r['output_shape']} | {r['parameters']:,} |" for r in layer_table(model)]
    return "\n".join(lines)


def autoencoder_from_state(state: dict[str, Any]) -> ConvAutoencoder:
    """The network of a 02 checkpoint's state (``config`` with name, code_dim, image_size, width;
    ``model`` weights), in eval mode on the CPU."""
    config = state["config"]  # a size missing from an old checkpoint takes build_autoencoder's default
    model = build_autoencoder(**{k: config[k] for k in ("name", "code_dim", "image_size", "width") if k in config})
    model.load_state_dict(state["model"])
    return model.eval()
