"""Identity feature extractors by name: ``extract(frames) -> (N, D) float``.

- ``ae``: the selected autoencoder's codes (the thesis's ACD features).
- ``facenet``: the FaceNet content encoder (InceptionResnetV1, 512-d, 160x160
  bilinear) as the evaluated run trained it, else the locally cached trained embedder.
- ``dlib``: dlib's 128-d face-recognition ResNet with the 5-point shape predictor
  (from ``face_recognition_models``).  Frames are upscaled to 150x150 (dlib's chip
  size; a 64x64 face is too small for its HOG detector); when the detector finds no
  face the whole frame is used as the face box, since our frames are face crops.
- ``truth`` (synthetic benchmark): the identity probe's penultimate features, a CNN
  trained on training subjects to predict the ground-truth identity vector; its
  held-out R^2 on test subjects is in ``.report``.

Frames: uint8 (N, H, W, 3) or (N, 3, H, W), or a float tensor (N, 3, H, W) in [-1, 1].
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from lib.config import check_choice
from lib.data.clips import uint8_to_model
from lib.data.landmarks import DLIB_UPSCALE, dlib_face_box, dlib_image


def to_uint8_nhwc(frames) -> np.ndarray:
    """Any accepted frame batch -> uint8 (N, H, W, 3)."""
    if isinstance(frames, torch.Tensor):
        frames = frames.detach().cpu()
        if frames.dtype != torch.uint8:
            frames = ((frames.float().clamp(-1, 1) + 1) * 127.5 + 0.5).clamp(0, 255).to(torch.uint8)
        frames = frames.numpy()
    array = np.asarray(frames)
    if array.dtype != np.uint8:
        array = np.clip((array.astype(np.float32) + 1) * 127.5 + 0.5, 0, 255).astype(np.uint8)
    if array.ndim != 4:
        raise ValueError(f"expected a batch of frames (N, H, W, 3) or (N, 3, H, W), got shape {array.shape}")
    if array.shape[-1] != 3 and array.shape[1] == 3:
        array = array.transpose(0, 2, 3, 1)
    return np.ascontiguousarray(array)


def to_float_nchw(frames) -> torch.Tensor:
    """Any accepted frame batch -> float (N, 3, H, W) in [-1, 1]."""
    if isinstance(frames, torch.Tensor) and frames.dtype != torch.uint8:
        return frames.detach().float().cpu()
    return uint8_to_model(to_uint8_nhwc(frames))


@dataclass
class Extractor:
    """A named feature extractor; ``report`` says how far to trust it (where measurable)."""
    name: str
    dim: int
    batch_size: int = 64
    report: dict = field(default_factory=dict)
    clip_frames: int | None = None  # frames of each clip it reads, evenly spaced (None: all); for slow ones

    def _extract_batch(self, frames) -> np.ndarray:
        raise NotImplementedError

    def extract(self, frames) -> np.ndarray:
        n = len(frames)
        if n == 0:
            return np.zeros((0, self.dim), np.float32)
        chunks = [self._extract_batch(frames[i:i + self.batch_size]) for i in range(0, n, self.batch_size)]
        return np.concatenate(chunks).astype(np.float32)


class TorchEncoderExtractor(Extractor):
    """Features from a torch module ``encode``-like callable on [-1, 1] frames."""

    def __init__(self, name: str, encode, dim: int, batch_size: int = 64, report=None):
        super().__init__(name, dim, batch_size, report or {})
        self.encode = encode

    @torch.no_grad()
    def _extract_batch(self, frames) -> np.ndarray:
        return self.encode(to_float_nchw(frames)).reshape(len(frames), -1).cpu().numpy()


class DlibExtractor(Extractor):
    """dlib's ResNet face descriptor (128-d); see the module docstring for the 64x64 handling."""

    UPSCALE = DLIB_UPSCALE

    def __init__(self):
        # the descriptor costs ~240 ms a frame here (dlib-bin without BLAS): 4 evenly spaced frames per clip
        super().__init__("dlib", 128, 32, {"face_found": 0, "whole_frame_used": 0}, clip_frames=4)
        import dlib
        import face_recognition_models as models

        self.detector = dlib.get_frontal_face_detector()
        self.shape_predictor = dlib.shape_predictor(models.pose_predictor_five_point_model_location())
        self.recogniser = dlib.face_recognition_model_v1(models.face_recognition_model_location())

    def _extract_batch(self, frames) -> np.ndarray:
        out = []
        for frame in to_uint8_nhwc(frames):
            image = dlib_image(frame)
            box, found = dlib_face_box(self.detector, image)
            self.report["face_found" if found else "whole_frame_used"] += 1
            shape = self.shape_predictor(image, box)
            out.append(np.asarray(self.recogniser.compute_face_descriptor(image, shape)))
        return np.stack(out)


def dlib_face_rate(clips) -> np.ndarray:
    """Per clip, the share of frames in which dlib's HOG face detector finds a face: uint8 clips
    (P, T, H, W, 3) -> (P,).  Frames are upscaled to :attr:`DlibExtractor.UPSCALE` as for the
    descriptor; the detector costs about 6 ms per frame on this CPU (the descriptor, 240 ms, is
    what makes the ``dlib`` extractor slow: dlib-bin is built without BLAS)."""
    import dlib

    detector = dlib.get_frontal_face_detector()
    found = [[len(detector(dlib_image(frame), 0)) > 0 for frame in clip] for clip in np.asarray(clips)]
    return np.asarray(found, dtype=np.float64).mean(axis=1)


def build_extractor(name: str, cache=None, run_config=None, preset: str = "small", seed: int = 0,
                    device: str = "cpu") -> Extractor:
    """The extractor ``name`` (one of :data:`EXTRACTORS`).

    ``cache`` is needed by ``truth`` (training data); ``run_config`` (the evaluated run's
    options) lets ``facenet`` use the encoder that run was trained with.
    """
    check_choice("extractor", name, EXTRACTORS)
    return EXTRACTOR_BUILDERS[name](ExtractorOptions(cache, run_config, preset, seed, device))


def _autoencoder_extractor(preset: str, device: str) -> Extractor:
    from lib.train.autoencoders import find_selected_autoencoder, load_autoencoder

    checkpoint = find_selected_autoencoder(preset)
    model = load_autoencoder(checkpoint).eval().to(device)
    code_dim = int(model.encode(torch.zeros(1, 3, 64, 64, device=device)).shape[1])
    return TorchEncoderExtractor("ae", lambda x: model.encode(x.to(device)), code_dim,
                                 report={"checkpoint": str(checkpoint)})


def _facenet_extractor(cache, run_config, device: str) -> Extractor:
    from lib.models.encoders import FACENET_CODE_DIM, FaceNetContent, build_facenet_network

    weights, source, input_size = find_facenet_weights(cache, run_config)
    encoder = FaceNetContent(build_facenet_network(weights), finetune=False, input_size=input_size).to(device)
    return TorchEncoderExtractor("facenet", lambda x: encoder.encode(x.to(device)), FACENET_CODE_DIM,
                                 batch_size=32, report={"weights": str(weights), "source": source})


def find_facenet_weights(cache=None, run_config=None) -> tuple[Path, str, int]:
    """(weights file, where it comes from, input size) for the ``facenet`` extractor.

    In order: facenet-pytorch's pretrained VGGFace2 file if present offline (a real face
    recogniser, identical for every run); the weights file the evaluated run was trained
    with; the trained identity embedder cached for this cache (newest).  The fine-tuned
    copy inside a run's checkpoint is deliberately not used: every model must be
    measured with the same instrument.
    """
    from lib.models.encoders import FACENET_PAPER_INPUT, default_facenet_weights_path
    from lib.paths import data_dir

    pretrained = default_facenet_weights_path()
    if pretrained.is_file():
        return pretrained, "pretrained VGGFace2", FACENET_PAPER_INPUT
    for field_name in ("facenet_weights_path", "facenet_weights"):
        configured = getattr(run_config, field_name, None) if run_config is not None else None
        if configured and configured not in ("train", "random") and Path(configured).is_file():
            size = getattr(run_config, "facenet_input_size", None) or FACENET_PAPER_INPUT
            return Path(configured), "the evaluated run's FaceNet weights", int(size)
    cache_path = getattr(cache, "path", None)
    pattern = f"facenet-identity-{Path(cache_path).name}-*.pt" if cache_path else "facenet-identity-*.pt"
    found = sorted((data_dir() / "models").glob(pattern), key=lambda p: p.stat().st_mtime)
    if found:
        size = re.search(r"-(\d+)px-", found[-1].name)
        return found[-1], "trained identity embedder", int(size.group(1)) if size else FACENET_PAPER_INPUT
    raise FileNotFoundError(
        f"no FaceNet weights: neither the VGGFace2 file {pretrained} nor a trained identity embedder "
        f"({data_dir() / 'models' / pattern}) exists; put facenet-pytorch's VGGFace2 file there, or train a "
        "FaceNet run first (notebooks/03_train.ipynb with encoder='facenet', which trains the embedder), "
        "or drop 'facenet' from extractors")


def _truth_extractor(cache, preset: str, seed: int, device: str) -> Extractor:
    from lib.evaluation.probes import load_or_train_probe

    if cache is None:
        raise ValueError("the 'truth' extractor needs the cache (it trains on its training split)")
    probe = load_or_train_probe("identity", cache, preset=preset, seed=seed, device=device)
    model = probe.model
    return TorchEncoderExtractor("truth", lambda x: model.features(_resize64(x)), model.feature_dim,
                                 report={f"probe_{k}": v for k, v in probe.report.items()})


def _resize64(x: torch.Tensor) -> torch.Tensor:
    if x.shape[-2:] == (64, 64):
        return x
    return torch.nn.functional.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False)


@dataclass(frozen=True)
class ExtractorOptions:
    """What a builder may need: the cache (``truth``), the evaluated run's options (``facenet``)..."""
    cache: Any = None
    run_config: Any = None
    preset: str = "small"
    seed: int = 0
    device: str = "cpu"


# The registry: name -> builder. Validation, 05's parameters and the docs read these keys.
EXTRACTOR_BUILDERS: dict[str, Callable[[ExtractorOptions], Extractor]] = {
    "ae": lambda o: _autoencoder_extractor(o.preset, o.device),
    "facenet": lambda o: _facenet_extractor(o.cache, o.run_config, o.device),
    "dlib": lambda o: DlibExtractor(),
    "truth": lambda o: _truth_extractor(o.cache, o.preset, o.seed, o.device),
}
EXTRACTORS = tuple(EXTRACTOR_BUILDERS)
