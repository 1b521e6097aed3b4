"""MoCoGAN-style networks of VICE-GAN: generator, patch image discriminator, categorical video discriminator.

Shapes follow MoCoGAN (Tulyakov et al. 2018) and the thesis (Appendix A.2).  The
appendix lists the generator's first layer as k6 and LeakyReLU on every layer including
the output; that does not give 64x64 images from a 1x1 code (k6 s1 p0 -> 6x6 -> 96x96),
so we follow MoCoGAN: ConvT k4 s1 p0 -> 4x4, then k4 s2 p1 doublings with BatchNorm+ReLU,
and a Tanh output (images live in [-1, 1]).

``width`` scales every channel count (1.0 = the paper's 512/256/128/64) and the number
of up/down-sampling layers follows ``image_size`` (64 -> the paper's layer counts), so
tests and CPU presets run narrow versions of the same code.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from lib.constants import EMOTIONS, VIDEO_LENGTH
from lib.data.landmarks import N_LANDMARKS
from lib.models.flow_decoder import ReferenceFlowDecoder, warp

N_CATEGORIES = len(EMOTIONS)
MOTION_DIM = 10  # MoCoGAN: GRUCell(10, 10)
NOISE_CONTENT_DIM = 50  # content size of plain MoCoGAN (encoder "none")
# ``mask`` / ``warp`` heads: the mask logit's offset, so a fresh generator starts mostly copying its reference frame
# (sigmoid(2) = 0.88) and learns where to draw.
COMPOSITE_MASK_BIAS = 2.0
# ``warp``: the largest displacement, in [-1, 1] image coordinates (0.15 = 4.8 px at 64x64: a mouth opening),
# and the flow's resolution: averaged over 4x4 cells and upsampled, so it moves regions, not single pixels.
WARP_MAX_SHIFT = 0.15
WARP_FLOW_CELL = 4


def _levels(image_size: int) -> int:
    """Number of x2 steps between 4x4 and ``image_size`` (64 -> 4)."""
    levels = math.log2(image_size / 4)
    if image_size < 16 or levels != int(levels):
        raise ValueError(f"image_size must be a power of two >= 16, got {image_size}")
    return int(levels)


def _channels(base: int, width: float) -> int:
    return max(4, int(round(base * width)))


class MotionGRU(nn.Module):
    """Motion codes z_m: a GRUCell run over fresh Gaussian noise at every step (noise injection)."""

    def __init__(self, motion_dim: int = MOTION_DIM):
        super().__init__()
        self.motion_dim = motion_dim
        self.cell = nn.GRUCell(motion_dim, motion_dim)

    def forward(self, batch: int, length: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(B, T, motion_dim) motion codes; the initial state is ~N(0, 1) like MoCoGAN's."""
        device = self.cell.weight_hh.device
        state = torch.randn(batch, self.motion_dim, generator=generator, device=device)
        noise = torch.randn(length, batch, self.motion_dim, generator=generator, device=device)
        codes = []
        for step in range(length):
            state = self.cell(noise[step], state)
            codes.append(state)
        return torch.stack(codes, dim=1)


def _colour_and_extra(out: torch.Tensor) -> torch.Tensor:
    """Tanh on the 3 colour channels (images in [-1, 1]); extra channels (the composite mask logit) raw."""
    colour = torch.tanh(out[:, :3])
    return colour if out.shape[1] == 3 else torch.cat([colour, out[:, 3:]], dim=1)


class FrameDecoder(nn.Module):
    """DCGAN decoder: (N, in_dim) codes -> (N, 3, S, S) images in [-1, 1] (+ ``extra_channels`` raw maps)."""

    def __init__(self, in_dim: int, image_size: int = 64, width: float = 1.0, extra_channels: int = 0):
        super().__init__()
        levels = _levels(image_size)
        chans = [_channels(64 * 2 ** (levels - 1 - i), width) for i in range(levels)]  # 512,256,128,64
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(in_dim, chans[0], 4, 1, 0, bias=False), nn.BatchNorm2d(chans[0]), nn.ReLU(True)]
        for c_in, c_out in zip(chans[:-1], chans[1:]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]
        layers.append(nn.ConvTranspose2d(chans[-1], 3 + extra_channels, 4, 2, 1, bias=False))
        self.main = nn.Sequential(*layers)  # the output Tanh is applied in forward, to the colour channels

    def output_layer(self) -> nn.Module:
        return self.main[-1]

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return _colour_and_extra(self.main(codes[:, :, None, None]))


class OutputHead(nn.Module):
    """How the generator turns its decoder's output into frames (``composite``): drawn outright, or composited with
    the input frames it was given (its ``reference``).  A head may own buffers (the residual head's templates),
    saved with the generator under ``head.``."""

    extra_channels = 0  # decoder channels besides the colour: a mask logit, a flow field
    needs_reference = True

    def build_decoder(self, latent_dim: int, image_size: int, width: float, n_categories: int,
                      video_length: int) -> nn.Module:
        """The decoder this head reads when none is given (MoCoGAN's DCGAN decoder)."""
        return FrameDecoder(latent_dim, image_size, width, extra_channels=self.extra_channels)

    def start(self, decoder: nn.Module) -> None:
        """Set the decoder so that step 0 draws what the head starts from (nothing to do for most heads)."""

    def forward(self, decoder: nn.Module, latent: torch.Tensor, reference: torch.Tensor | None, labels: torch.Tensor,
                length: int, template_grid: torch.Tensor | None = None):
        """(B*T, dim) frame latents -> (frames (B*T, 3, S, S), drawn (B*T, 1, S, S) or None, flow or None);
        ``reference`` (B*T, 3, S, S): the input frames of each generated frame."""
        return decoder(latent), None, None


class DrawnFrames(OutputHead):
    """``off``: MoCoGAN's decoder draws every pixel."""

    needs_reference = False


class MaskedFrames(OutputHead):
    """``mask`` (GANimation's attention, Pumarola et al. 2018): the decoder also draws a mask, and frame t =
    mask * reference_t + (1 - mask) * colour, so it redraws only what changes and keeps the rest of the input."""

    extra_channels = 1

    def forward(self, decoder, latent, reference, labels, length, template_grid=None):
        frames = decoder(latent)
        mask = torch.sigmoid(frames[:, 3:4] + COMPOSITE_MASK_BIAS)
        return mask * self.moved(frames, reference) + (1 - mask) * frames[:, :3], 1 - mask, None

    def moved(self, frames: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        return reference


class WarpedMaskedFrames(MaskedFrames):
    """``warp``: as ``mask``, with the reference first moved by a flow field the decoder also draws (warp-guided,
    as in Geng et al. 2018's wg-GAN), so an expression can move the input's own lips and brows."""

    extra_channels = 3

    def moved(self, frames, reference):
        coarse = nn.functional.avg_pool2d(frames[:, 4:6], WARP_FLOW_CELL)
        flow = nn.functional.interpolate(coarse, size=reference.shape[-2:], mode="bilinear", align_corners=False)
        return warp(reference, WARP_MAX_SHIFT * torch.tanh(flow))


class ResidualFrames(OutputHead):
    """``residual``: frame t = reference_t + the decoder's output (which starts at zero), so the decoder draws only
    the change from the input frame.

    ``smoothing`` k > 1 averages the drawn change over k x k cells (bilinear back up), ``ramp`` scales it by
    t / (T - 1), ``weighted`` by a per-row weight (the ``drawn_weights`` buffer, filled by the trainer).  With
    ``templates``, a fixed per-emotion change at each of the ``video_length`` frames is added too (the ``templates``
    buffer, filled from the training videos); with ``template_motion`` each frame is then moved by that emotion's
    mean head movement at that frame (affine thetas); with ``template_alignment`` the templates are drawn on a mean
    face shape (``template_shape``, 68 landmarks) and moved onto each input face by ``template_grid`` (B, S, S, 2),
    a ``grid_sample`` grid from that face's landmarks (:class:`lib.data.face_warp.ShapeAligner`).
    """

    def __init__(self, image_size: int = 64, smoothing: int = 1, ramp: bool = False, weighted: bool = False,
                 templates: bool = False, template_motion: bool = False, template_alignment: bool = False,
                 n_categories: int = N_CATEGORIES, video_length: int = VIDEO_LENGTH):
        super().__init__()
        if (template_motion or template_alignment) and not templates:
            raise ValueError("template_motion and template_alignment move emotion templates: templates=True")
        self.smoothing, self.ramp = int(smoothing), bool(ramp)
        shapes = {"drawn_weights": (weighted, torch.ones(image_size, 1)),
                  "templates": (templates, torch.zeros(n_categories, 3, video_length, image_size, image_size)),
                  "template_motion": (template_motion, torch.eye(2, 3).repeat(n_categories, video_length, 1, 1)),
                  "template_shape": (template_alignment, torch.zeros(N_LANDMARKS, 2))}
        for name, (wanted, initial) in shapes.items():  # filled by the trainer; saved with the generator
            if wanted:
                self.register_buffer(name, initial)
            else:
                setattr(self, name, None)

    def start(self, decoder):
        with torch.no_grad():
            for parameter in decoder.output_layer().parameters():
                parameter.zero_()

    def forward(self, decoder, latent, reference, labels, length, template_grid=None):
        change = decoder(latent)
        if self.smoothing > 1:  # only coarse changes: no decoder texture (checkerboard) on the face
            change = nn.functional.interpolate(nn.functional.avg_pool2d(change, self.smoothing),
                                               size=change.shape[-2:], mode="bilinear", align_corners=False)
        batch = change.shape[0] // length
        if self.ramp:  # nothing drawn at the first frame: it is the input frame (neutral) exactly
            ramp = torch.linspace(0.0, 1.0, length, device=change.device, dtype=change.dtype)
            change = change * ramp.repeat(batch)[:, None, None, None]
        if self.drawn_weights is not None:  # e.g. nothing drawn above the mouth (drawn_upper_weight=0)
            change = change * self.drawn_weights
        frames = reference + change
        if self.templates is not None:  # each emotion's mean change at this frame of the clip
            templates = self.templates[labels.long()]  # (B, 3, T, S, S)
            if self.template_shape is not None:  # moved from the mean face onto each input face
                if template_grid is None:
                    raise ValueError("an aligned-template generator needs each input's template_grid (B, S, S, 2)")
                size = templates.shape[-1]
                templates = nn.functional.grid_sample(
                    templates.reshape(batch, -1, size, size), template_grid.to(templates), align_corners=False,
                    padding_mode="zeros").reshape(templates.shape)
            frames = frames + templates.transpose(1, 2).reshape(frames.shape)
        if self.template_motion is not None:  # each emotion's mean head movement moves the whole frame
            theta = self.template_motion[labels.long()].reshape(batch * length, 2, 3)
            grid = nn.functional.affine_grid(theta, list(frames.shape), align_corners=False)
            frames = nn.functional.grid_sample(frames, grid, padding_mode="border", align_corners=False)
        return frames, change.abs().mean(dim=1, keepdim=True), None


class FlowFrames(OutputHead):
    """``flow``: a U-Net reads the input frame and moves its pixels by a drawn flow, drawing only occlusions
    (:class:`lib.models.flow_decoder.ReferenceFlowDecoder`, which is this head's decoder)."""

    def build_decoder(self, latent_dim, image_size, width, n_categories, video_length):
        return ReferenceFlowDecoder(latent_dim, width, n_categories, video_length, image_size)

    def start(self, decoder):
        decoder.start_from_reference()

    def forward(self, decoder, latent, reference, labels, length, template_grid=None):
        first = reference.reshape(-1, length, *reference.shape[1:])[:, 0]  # the decoder reads the first frame
        return decoder(latent, first, labels)


# The generator's output heads by name (the ``composite`` option); a head takes its own options.
OUTPUT_HEADS: dict[str, type[OutputHead]] = {"off": DrawnFrames, "mask": MaskedFrames, "warp": WarpedMaskedFrames,
                                             "residual": ResidualFrames, "flow": FlowFrames}
COMPOSITES = tuple(OUTPUT_HEADS)


class VideoGenerator(nn.Module):
    """G_I with R_m, made of parts: per-frame latents concat(z_c, z_m, z_a) (content from outside: an encoder or
    noise; motion from :class:`MotionGRU`; the category one-hot) -> ``decoder`` -> ``head`` (how the frames are
    made, :data:`OUTPUT_HEADS`); returns (B, 3, T, S, S).

    ``content`` is (B, T, content_dim) - one code per frame (``all``) or the first frame's code repeated
    (``single``); the category one-hot is fixed across a video, or, with ``category_ramp``, scaled by t / (T - 1)
    at frame t: MUG's takes go neutral -> onset -> apex, and a constant code gives the generator no time signal
    (its GRU sees only noise), so its videos came out static.  ``decoder``: any (N, latent_dim) ->
    (N, 3 + head.extra_channels, S, S) module, e.g. :class:`AutoencoderFrameDecoder`; None: the head's own.
    """

    def __init__(self, content_dim: int, image_size: int = 64, width: float = 1.0, head: OutputHead | None = None,
                 decoder: nn.Module | None = None, category_ramp: bool = False, motion_dim: int = MOTION_DIM,
                 n_categories: int = N_CATEGORIES, video_length: int = VIDEO_LENGTH):
        super().__init__()
        self.content_dim, self.motion_dim, self.n_categories = content_dim, motion_dim, n_categories
        self.image_size, self.category_ramp = image_size, category_ramp
        self.motion = MotionGRU(motion_dim)
        head = head if head is not None else DrawnFrames()
        self.decoder = decoder if decoder is not None else head.build_decoder(
            self.latent_dim, image_size, width, n_categories, video_length)
        self.head = head
        self.start_from_reference()

    def start_from_reference(self) -> None:
        """Let the head set the decoder's start (``residual``: a zero change; ``flow``: the input frame); call again
        after re-initialising the weights."""
        self.head.start(self.decoder)

    @property
    def latent_dim(self) -> int:
        return self.content_dim + self.motion_dim + self.n_categories

    def latent(self, content: torch.Tensor, labels: torch.Tensor,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """(B, T, dim) frame latents concat(z_c, z_m, z_a)."""
        batch, length, _ = content.shape
        motion = self.motion(batch, length, generator)
        category = nn.functional.one_hot(labels.long(), self.n_categories).to(content)[:, None, :]
        if self.category_ramp:
            category = category * torch.linspace(0.0, 1.0, length, device=content.device)[None, :, None]
        return torch.cat([content, motion, category.expand(batch, length, -1)], dim=2)

    def forward(self, content: torch.Tensor, labels: torch.Tensor, generator: torch.Generator | None = None,
                reference: torch.Tensor | None = None, return_drawn: bool = False,
                template_grid: torch.Tensor | None = None, return_flow: bool = False):
        """(B, 3, T, S, S) videos; ``reference`` (B, 3, T, S, S), the input frames, is required by every head but
        ``off``, ``template_grid`` (B, S, S, 2) with ``template_alignment``.
        ``return_drawn``: also a (B, 1, T, S, S) map of how much of each pixel is drawn rather than kept from
        the reference (1 - mask; for ``residual`` the drawn change's mean magnitude; None for ``off``).
        ``return_flow`` (``flow`` only): (videos, drawn, flow (B, T, 2, S, S))."""
        latent = self.latent(content, labels, generator)
        batch, length, dim = latent.shape
        if self.head.needs_reference:
            if reference is None:
                raise ValueError(f"a {type(self.head).__name__} generator needs its reference, the input frames "
                                 "(B, 3, T, S, S)")
            reference = reference.transpose(1, 2).reshape(batch * length, 3, *reference.shape[-2:])
        frames, drawn, flow = self.head(self.decoder, latent.reshape(batch * length, dim), reference, labels, length,
                                        template_grid)

        def videos(per_frame: torch.Tensor) -> torch.Tensor:
            return per_frame.reshape(batch, length, *per_frame.shape[1:]).transpose(1, 2)

        drawn = videos(drawn) if drawn is not None else None
        if return_flow:
            return videos(frames), drawn, flow.reshape(batch, length, *flow.shape[1:])
        return (videos(frames), drawn) if return_drawn else videos(frames)


class AutoencoderFrameDecoder(nn.Module):
    """The decoder of a :class:`lib.models.autoencoders.ConvAutoencoder` taking the generator's latent.

    Used by the ``warm_start`` recipe option: the autoencoder's decoder already draws faces
    from 50-d codes, so the generator starts from the input's face instead of noise.  The
    first linear layer is widened to ``latent_dim`` inputs: the columns of the content code
    are the autoencoder's (when the code sizes match), the motion and category columns start
    at zero, so at step 0 the generator reproduces the autoencoder's reconstruction.  ``extra_channels``
    (the composite mask logit) get zero weights and bias: a constant map at step 0.
    """

    def __init__(self, autoencoder: nn.Module, latent_dim: int, content_dim: int, copy_weights: bool = True,
                 extra_channels: int = 0):
        super().__init__()
        import copy

        source = autoencoder.from_code[0]
        self.input_shape = tuple(autoencoder.decoder_input_shape)
        self.from_code = nn.Sequential(nn.Linear(latent_dim, source.out_features), nn.ReLU(inplace=True))
        self.decoder = copy.deepcopy(autoencoder.decoder)
        colour = autoencoder.to_image[0]  # Conv -> 3 channels; its Tanh is applied in forward
        self.to_image = nn.Sequential(nn.Conv2d(colour.in_channels, 3 + extra_channels, colour.kernel_size,
                                                colour.stride, colour.padding))
        with torch.no_grad():
            self.to_image[0].weight.zero_()
            self.to_image[0].bias.zero_()
            self.to_image[0].weight[:3] = colour.weight
            self.to_image[0].bias[:3] = colour.bias
            linear = self.from_code[0]
            linear.weight.zero_()
            linear.bias.copy_(source.bias)
            if copy_weights and content_dim == source.in_features:
                linear.weight[:, :content_dim] = source.weight
            else:  # other code sizes (FaceNet, noise): a fresh init of the content columns
                nn.init.kaiming_uniform_(linear.weight[:, :content_dim], a=5 ** 0.5)

    @torch.no_grad()
    def set_category_directions(self, source_weight: torch.Tensor, directions: torch.Tensor) -> None:
        """Category columns := the autoencoder's first layer applied to per-emotion code changes
        ``directions`` (n_categories, code_dim): the one-hot of emotion e then adds what moving the
        code by ``directions[e]`` adds, so step 0 already draws the emotion (on a static face)."""
        n_categories = directions.shape[0]
        self.from_code[0].weight[:, -n_categories:] = source_weight @ directions.T

    def output_layer(self) -> nn.Module:
        return self.to_image[0]

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        hidden = self.from_code(codes).view(codes.shape[0], *self.input_shape)
        return _colour_and_extra(self.to_image(self.decoder(hidden)))


def add_spectral_norm(module: nn.Module) -> nn.Module:
    """Spectral normalisation (Miyato et al. 2018) of every conv/linear weight of ``module``, in place."""
    for name, child in list(module.named_children()):
        if isinstance(child, (nn.Conv2d, nn.Conv3d, nn.Linear)):
            setattr(module, name, nn.utils.parametrizations.spectral_norm(child))
        else:
            add_spectral_norm(child)
    return module


class PatchImageDiscriminator(nn.Module):
    """D_I: Conv 64,128,256 (k4 s2 p1, BN after the first, LeakyReLU 0.2) -> 1-channel patch logits."""

    def __init__(self, image_size: int = 64, width: float = 1.0):
        super().__init__()
        n_layers = _levels(image_size) - 1  # 64 -> 3 layers, 8x8 features, 4x4 patches
        chans = [_channels(64 * 2 ** i, width) for i in range(n_layers)]
        layers: list[nn.Module] = []
        c_in = 3
        for i, c_out in enumerate(chans):
            layers.append(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False))
            if i > 0:  # DCGAN/MoCoGAN: no BatchNorm on the first layer
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(nn.LeakyReLU(0.2, True))
            c_in = c_out
        layers.append(nn.Conv2d(c_in, 1, 4, 2, 1, bias=False))
        self.main = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> (B, 1, S/16, S/16) real/fake logits per patch."""
        return self.main(images)


class CategoricalVideoDiscriminator(nn.Module):
    """D_V: Conv3d 64,128,256 (k4, stride (1,2,2), pad (0,1,1), BN, LeakyReLU) -> 1 + 6 logits.

    The head is a Conv3d whose kernel spans the remaining (T', H', W') extent, so each
    video gets exactly one real/fake logit and ``n_categories`` category logits, as in
    MoCoGAN's CategoricalVideoDiscriminator.
    """

    def __init__(self, image_size: int = 64, video_length: int = VIDEO_LENGTH, width: float = 1.0,
                 n_categories: int = N_CATEGORIES):
        super().__init__()
        n_layers = _levels(image_size) - 1
        if video_length - 3 * n_layers < 1:
            raise ValueError(f"video_length {video_length} too short for {n_layers} temporal k4 convs")
        self.n_categories = n_categories
        chans = [_channels(64 * 2 ** i, width) for i in range(n_layers)]
        layers: list[nn.Module] = []
        c_in = 3
        for i, c_out in enumerate(chans):
            layers.append(nn.Conv3d(c_in, c_out, 4, stride=(1, 2, 2), padding=(0, 1, 1), bias=False))
            if i > 0:
                layers.append(nn.BatchNorm3d(c_out))
            layers.append(nn.LeakyReLU(0.2, True))
            c_in = c_out
        self.features = nn.Sequential(*layers)
        extent = (video_length - 3 * n_layers, image_size // 2 ** n_layers, image_size // 2 ** n_layers)
        self.head = nn.Conv3d(c_in, 1 + n_categories, extent, bias=False)

    def forward(self, videos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, T, S, S) -> (real/fake logits (B,), category logits (B, n_categories))."""
        out = self.head(self.features(videos)).flatten(1)
        return out[:, 0], out[:, 1:]

    def feature_maps(self, videos: torch.Tensor) -> list[torch.Tensor]:
        """The activations after each LeakyReLU (pix2pixHD's feature-matching loss compares them)."""
        maps, hidden = [], videos
        for layer in self.features:
            hidden = layer(hidden)
            if isinstance(layer, nn.LeakyReLU):
                maps.append(hidden)
        return maps


def init_dcgan_weights(module: nn.Module) -> None:
    """DCGAN initialisation: conv weights ~N(0, 0.02), BatchNorm gamma ~N(1, 0.02), beta 0."""
    if isinstance(module, (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, (nn.BatchNorm2d, nn.BatchNorm3d)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
