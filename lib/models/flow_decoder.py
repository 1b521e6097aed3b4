"""The ``flow`` output head of a VICE-GAN generator: a U-Net that reads the input face and moves its pixels.

MoCoGAN's decoder draws every frame from a code; on a face it has not seen (or a real one) that loses the
person.  Here the frame latent (content code, GRU motion code, category) modulates a small U-Net over the
input frame (FiLM at every decoder level), which outputs a flow field, an occlusion mask and a colour change:

    moved_t = warp(input, flow_t);  frame_t = mask_t * moved_t + (1 - mask_t) * (moved_t + change_t)

as in LFDM's flow + occlusion composite and GANimation's attention mask: what the flow cannot bring from the
input (teeth, a shadow) is drawn where the mask lets it through.  The last layer starts at zero, so an untrained
generator repeats its input frame exactly: whatever emotion its videos show is learned.
"""
from __future__ import annotations

import torch
from torch import nn

from lib.constants import VIDEO_LENGTH

MAX_SHIFT = 0.15  # largest displacement in [-1, 1] units (4.8 px at 64x64: a mouth opening)
FLOW_CELL = 4  # the flow is averaged over 4x4 cells: it moves regions (lips, brows), not single pixels
BANK_CELL = 4  # the emotion bank's change is drawn on 4x4 cells (16x16 at 64 px), its flow on 8x8: no pixel texture
BANK_LR_RATIO = 50.0  # the bank is a few direct parameters per pixel cell: Adam's lr x this
OUTPUT_CHANNELS = 6  # colour change (3), mask logit (1), flow (2)


def warp(images: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) images sampled at the identity grid + ``flow`` (N, 2, H, W; x, y in [-1, 1] units)."""
    identity = torch.eye(2, 3, device=images.device, dtype=images.dtype).expand(len(images), 2, 3)
    grid = nn.functional.affine_grid(identity, list(images.shape), align_corners=False)
    return nn.functional.grid_sample(images, grid + flow.permute(0, 2, 3, 1), padding_mode="border",
                                     align_corners=False)


def _block(c_in: int, c_out: int, down: bool) -> nn.Sequential:
    conv = nn.Conv2d(c_in, c_out, 4, 2, 1) if down else nn.Conv2d(c_in, c_out, 3, 1, 1)
    return nn.Sequential(conv, nn.LeakyReLU(0.2, inplace=True))


class FiLM(nn.Module):
    """features * (1 + gamma(latent)) + beta(latent), per channel."""

    def __init__(self, latent_dim: int, channels: int):
        super().__init__()
        self.linear = nn.Linear(latent_dim, 2 * channels)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, features: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.linear(latent)[:, :, None, None].chunk(2, dim=1)
        return features * (1 + gamma) + beta


class ReferenceFlowDecoder(nn.Module):
    """(frame latents (B*T, D), input frames (B, 3, S, S), labels (B,)) -> (B*T, 3, S, S) frames, (B*T, 1, S, S) maps of the
    drawn change's magnitude and the (B*T, 2, S, S) flow: where each output pixel takes its colour from in the input
    frame, as an offset in [-1, 1] units.

    The input frame is encoded once per video (64 -> 32 -> 16 -> 8 px); each frame's latent modulates the decoder
    (8 -> 16 -> 32 -> 64 px, skip connections from the encoder)."""

    def __init__(self, latent_dim: int, width: float = 1.0, n_categories: int = 6, video_length: int = VIDEO_LENGTH,
                 image_size: int = 64):
        super().__init__()
        # the emotion bank: per emotion and frame, a coarse change and flow shared by every face, learned from zero
        # (its own, larger learning rate: BANK_LR_RATIO); the U-Net adds each face's own part
        self.bank_change = nn.Parameter(torch.zeros(n_categories, video_length, 3, image_size // BANK_CELL,
                                                    image_size // BANK_CELL))
        self.bank_flow = nn.Parameter(torch.zeros(n_categories, video_length, 2, image_size // (2 * BANK_CELL),
                                                  image_size // (2 * BANK_CELL)))
        c = max(8, int(round(64 * width)))
        chans = [c // 2, c, 2 * c, 4 * c]  # 64, 32, 16, 8 px: narrow where the frames are large (CPU time)
        self.stem = _block(3, chans[0], down=False)
        self.down = nn.ModuleList(_block(a, b, down=True) for a, b in zip(chans[:-1], chans[1:]))
        self.bottleneck_film = FiLM(latent_dim, chans[-1])
        self.up = nn.ModuleList()
        self.films = nn.ModuleList()
        for deep, skip in zip(chans[:0:-1], chans[-2::-1]):  # (8 px -> 16 px), (16 -> 32), (32 -> 64)
            self.up.append(nn.Sequential(nn.Conv2d(deep + skip, skip, 3, 1, 1), nn.LeakyReLU(0.2, inplace=True)))
            self.films.append(FiLM(latent_dim, skip))
        self.head = nn.Conv2d(chans[0], OUTPUT_CHANNELS, 3, 1, 1)
        self.start_from_reference()

    @torch.no_grad()
    def start_from_reference(self) -> None:
        """Zero the output layer and the bank: no flow, no change drawn: the input frame repeated."""
        for parameter in (self.head.weight, self.head.bias, self.bank_change, self.bank_flow):
            parameter.zero_()

    def output_layer(self) -> nn.Module:
        return self.head

    def bank(self, labels: torch.Tensor, length: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(B*T, 3, S, S) change and (B*T, 2, S, S) flow of the emotion bank for each video's label."""
        up = lambda x: nn.functional.interpolate(x.flatten(0, 1), size=size, mode="bilinear",  # noqa: E731
                                                 align_corners=False)
        return up(self.bank_change[labels, :length]), up(self.bank_flow[labels, :length])

    def forward(self, latent: torch.Tensor, reference: torch.Tensor,
                labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        length = latent.shape[0] // reference.shape[0]
        skips = [self.stem(reference)]
        for block in self.down:
            skips.append(block(skips[-1]))
        # every frame of a video shares its input frame's encoding
        skips = [s.repeat_interleave(length, dim=0) for s in skips]
        hidden = self.bottleneck_film(skips[-1], latent)
        for up, film, skip in zip(self.up, self.films, skips[-2::-1]):
            hidden = nn.functional.interpolate(hidden, scale_factor=2, mode="nearest")
            hidden = film(up(torch.cat([hidden, skip], dim=1)), latent)
        out = self.head(hidden)
        mask = torch.sigmoid(out[:, 3:4])
        coarse = nn.functional.avg_pool2d(out[:, 4:6], FLOW_CELL)
        flow = nn.functional.interpolate(coarse, size=out.shape[-2:], mode="bilinear", align_corners=False)
        bank_change, bank_flow = self.bank(labels.long(), length, out.shape[-1])
        flow = MAX_SHIFT * torch.tanh(flow + bank_flow)
        moved = warp(reference.repeat_interleave(length, dim=0), flow)
        change = (1 - mask) * out[:, :3] + bank_change  # the face's own part where the mask lets it through
        return (moved + change).clamp(-1, 1), change.abs().mean(dim=1, keepdim=True), flow


def pixels_to_grid(points: torch.Tensor, size: int) -> torch.Tensor:
    """Pixel coordinates (pixel centres at integers) -> ``grid_sample`` coordinates in [-1, 1] (align_corners=False)."""
    return (2 * points + 1) / size - 1


def landmark_flow_error(flow: torch.Tensor, first_points: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Mean L1, in [-1, 1] units, between where a flow (B, T, 2, S, S) fetches each landmark of frame t from and
    where that landmark is in the first frame: ``points`` (B, T, 68, 2) and ``first_points`` (B, 68, 2) in pixels.
    A frame whose landmark at q came from p in the input needs flow(q) = p - q."""
    batch, length, _, size = flow.shape[:4]
    targets = pixels_to_grid(points, size).reshape(batch * length, 1, -1, 2)
    fetched = nn.functional.grid_sample(flow.reshape(batch * length, 2, size, size), targets, align_corners=False,
                                        padding_mode="border")  # (B*T, 2, 1, 68)
    sources = targets[:, 0] + fetched[:, :, 0].transpose(1, 2)
    wanted = pixels_to_grid(first_points, size)[:, None].expand(batch, length, -1, -1).reshape(sources.shape)
    return (sources - wanted).abs().mean()
