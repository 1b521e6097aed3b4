"""Content encoders I_e by name: the selected autoencoder, FaceNet, or none (plain MoCoGAN).

An encoder maps frames (N, 3, H, W) in [-1, 1] to content codes (N, code_dim).  It is
either frozen (``requires_grad`` off, weights never change) or fine-tuned together
with the generator.  Either way it stays in eval mode: BatchNorm statistics and
dropout of a pretrained feature extractor are kept fixed, only its weights learn.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from torch.nn import functional as F

from lib.config import check_choice

CONTENT_ENCODERS = ("ae", "facenet", "none")
FACENET_CODE_DIM = 512
FACENET_PAPER_INPUT = 160  # Oostveen 3.2: frames upscaled bilinearly to 160x160
VGGFACE2_FILE = "20180402-114759-vggface2.pt"  # facenet-pytorch's VGGFace2 weights file name


class ContentEncoder(nn.Module):
    """Wraps a network with ``encode(frames) -> codes``; frozen unless ``finetune``."""

    def __init__(self, name: str, network: nn.Module, code_dim: int, finetune: bool):
        super().__init__()
        self.name, self.code_dim, self.finetune = name, code_dim, bool(finetune)
        self.network = network
        for parameter in self.network.parameters():
            parameter.requires_grad_(self.finetune)
        self.train(False)

    def train(self, mode: bool = True):  # noqa: D102 - always eval, see module docstring
        return super().train(False)

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.encode(frames)


class AutoencoderContent(ContentEncoder):
    """The thesis's I_e: an autoencoder's ``encode`` (VAE: the mean), 50-d codes."""

    def __init__(self, autoencoder: nn.Module, finetune: bool, image_size: int = 64):
        code_dim = getattr(autoencoder, "code_dim", None)
        if code_dim is None:  # probe once with a blank frame
            autoencoder.eval()
            with torch.no_grad():
                device = next(autoencoder.parameters()).device
                code_dim = autoencoder.encode(torch.zeros(1, 3, image_size, image_size, device=device)).shape[1]
        super().__init__("ae", autoencoder, int(code_dim), finetune)

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        return self.network.encode(frames)


class FaceNetContent(ContentEncoder):
    """facenet-pytorch InceptionResnetV1 (L2-normalised 512-d), frames resized bilinearly.

    Frames in [-1, 1] are already FaceNet's ``(x - 127.5) / 128`` standardisation (up to 0.4%).
    """

    def __init__(self, network: nn.Module, finetune: bool, input_size: int = FACENET_PAPER_INPUT):
        super().__init__("facenet", network, FACENET_CODE_DIM, finetune)
        self.input_size = int(input_size)

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        if frames.shape[-1] != self.input_size or frames.shape[-2] != self.input_size:
            frames = F.interpolate(frames, size=(self.input_size, self.input_size), mode="bilinear",
                                   align_corners=False)
        return self.network(frames)


def default_facenet_weights_path() -> Path:
    """Where facenet-pytorch keeps its VGGFace2 download: ``$TORCH_HOME/checkpoints/``."""
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "torch")
    return Path(torch_home) / "checkpoints" / VGGFACE2_FILE


def build_facenet_network(weights: str | Path | None = None) -> nn.Module:
    """InceptionResnetV1 (classify=False) with random init (``None``) or weights from a file.

    The file may be facenet-pytorch's own (``logits.*`` keys are dropped) or one written by
    :func:`lib.train.identity.train_identity_embedder`.
    """
    from lib.compat import import_facenet_pytorch

    network = import_facenet_pytorch().InceptionResnetV1(pretrained=None, classify=False)
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(
                f"FaceNet weights not found: {path}; put facenet-pytorch's {VGGFACE2_FILE} there, "
                "or use facenet_weights='train' (train an identity embedder on the training subjects)")
        from lib.io import load_checkpoint

        state = load_checkpoint(path, fix=f"put an intact copy of facenet-pytorch's {VGGFACE2_FILE} at {path}")
        state = state.get("model", state) if isinstance(state, dict) else state
        state = {k: v for k, v in state.items() if not k.startswith("logits.")}
        network.load_state_dict(state)
    return network.eval()


def load_autoencoder_network(checkpoint: str | Path, device: torch.device | str = "cpu") -> nn.Module:
    """The autoencoder network of a 02 checkpoint file (models do not import lib.train)."""
    from lib.io import load_checkpoint
    from lib.models.autoencoders import autoencoder_from_state

    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise FileNotFoundError(f"autoencoder checkpoint not found: {checkpoint}; run "
                                "notebooks/02_autoencoders.ipynb first")
    return autoencoder_from_state(load_checkpoint(checkpoint)).to(device)


@dataclass(frozen=True)
class EncoderOptions:
    """What any content encoder builder may read (one object for every builder of the registry)."""
    finetune: bool = False
    autoencoder_checkpoint: str | Path | None = None
    facenet_weights: str | Path | None = None  # resolved: a file path, or None for a random init
    facenet_input_size: int = FACENET_PAPER_INPUT
    device: torch.device | str = "cpu"


def _build_ae(options: EncoderOptions) -> ContentEncoder:
    if options.autoencoder_checkpoint is None:
        raise ValueError("encoder='ae' needs the autoencoder checkpoint path")
    network = load_autoencoder_network(options.autoencoder_checkpoint, options.device)
    return AutoencoderContent(network, options.finetune).to(options.device)


def _build_facenet(options: EncoderOptions) -> ContentEncoder:
    network = build_facenet_network(options.facenet_weights)
    return FaceNetContent(network, options.finetune, options.facenet_input_size).to(options.device)


# The registry: name -> builder(EncoderOptions) (None = no encoder: MoCoGAN's content from noise).
ENCODER_BUILDERS: dict[str, Callable[[EncoderOptions], ContentEncoder | None]] = {
    "ae": _build_ae, "facenet": _build_facenet, "none": lambda options: None,
}
assert tuple(ENCODER_BUILDERS) == CONTENT_ENCODERS


def build_content_encoder(name: str, **options: Any) -> ContentEncoder | None:
    """The content encoder ``name`` (None for ``none``), built from :class:`EncoderOptions` fields.

    ``facenet_weights`` here is already resolved: a file path, or None for random init
    (``"random"``); the GAN config turns ``"train"`` into the trained embedder's file.
    """
    check_choice("encoder", name, CONTENT_ENCODERS)
    return ENCODER_BUILDERS[name](EncoderOptions(**options))
