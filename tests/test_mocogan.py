"""Networks of VICE-GAN (lib.models.mocogan) and the content encoders (lib.models.encoders)."""
from __future__ import annotations

import pytest
import torch

from lib.config import ConfigError
from lib.models.encoders import (CONTENT_ENCODERS, AutoencoderContent, FaceNetContent, build_content_encoder,
                                 build_facenet_network)
from lib.models.mocogan import (COMPOSITES, OUTPUT_HEADS, CategoricalVideoDiscriminator, MotionGRU,
                                PatchImageDiscriminator, ResidualFrames, VideoGenerator, init_dcgan_weights)


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_paper_preset_shapes():
    torch.manual_seed(0)
    generator = VideoGenerator(content_dim=50, image_size=64, width=1.0)
    content = torch.randn(2, 16, 50)
    videos = generator(content, torch.tensor([0, 5]))
    assert videos.shape == (2, 3, 16, 64, 64)
    assert videos.abs().max() <= 1.0  # Tanh output
    # the paper's channel counts: ConvT 512 (4x4) -> 256 -> 128 -> 64 -> 3
    convs = [m for m in generator.decoder.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [c.out_channels for c in convs] == [512, 256, 128, 64, 3]
    assert convs[0].in_channels == 50 + 10 + 6

    image_d = PatchImageDiscriminator(64, 1.0)
    assert image_d(videos[:, :, 0]).shape == (2, 1, 4, 4)
    assert [m.out_channels for m in image_d.modules() if isinstance(m, torch.nn.Conv2d)] == [64, 128, 256, 1]

    video_d = CategoricalVideoDiscriminator(64, 16, 1.0)
    real_fake, categories = video_d(videos)
    assert real_fake.shape == (2,) and categories.shape == (2, 6)
    convs3d = [m for m in video_d.features.modules() if isinstance(m, torch.nn.Conv3d)]
    assert [c.out_channels for c in convs3d] == [64, 128, 256]
    assert all(c.stride == (1, 2, 2) and c.padding == (0, 1, 1) for c in convs3d)


@pytest.mark.parametrize("image_size,width", [(64, 0.125), (32, 0.25)])
def test_small_preset_shapes(image_size, width):
    generator = VideoGenerator(content_dim=512, image_size=image_size, width=width)
    videos = generator(torch.randn(3, 16, 512), torch.tensor([1, 2, 3]))
    assert videos.shape == (3, 3, 16, image_size, image_size)
    image_logits = PatchImageDiscriminator(image_size, width)(videos[:, :, 4])
    assert image_logits.shape == (3, 1, 4, 4)
    real_fake, categories = CategoricalVideoDiscriminator(image_size, 16, width)(videos)
    assert real_fake.shape == (3,) and categories.shape == (3, 6)
    assert _count(generator) < _count(VideoGenerator(512, image_size, 1.0))


def test_bad_image_size_fails():
    with pytest.raises(ValueError, match="power of two"):
        VideoGenerator(50, image_size=48)


def test_motion_is_noise_driven_and_seeded():
    motion = MotionGRU(10)
    first = motion(4, 16, torch.Generator().manual_seed(3))
    again = motion(4, 16, torch.Generator().manual_seed(3))
    other = motion(4, 16, torch.Generator().manual_seed(4))
    assert first.shape == (4, 16, 10)
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert not torch.allclose(first[:, 0], first[:, 1])  # the code moves from frame to frame


def test_category_is_fixed_across_a_video():
    generator = VideoGenerator(50, 64, 0.125)
    latent = generator.latent(torch.randn(2, 16, 50), torch.tensor([3, 1]))
    category = latent[..., 60:]
    assert torch.equal(category[0], torch.nn.functional.one_hot(torch.tensor(3), 6).float().expand(16, 6))
    assert torch.equal(category[1, 0], category[1, -1])


def test_category_ramp_grows_the_one_hot_from_zero_to_one():
    generator = VideoGenerator(50, 64, 0.125, category_ramp=True)
    category = generator.latent(torch.randn(2, 16, 50), torch.tensor([3, 1]))[..., 60:]
    expected = torch.linspace(0, 1, 16)[:, None] * torch.nn.functional.one_hot(torch.tensor(3), 6).float()
    assert torch.allclose(category[0], expected)
    assert category[1, 0].abs().sum() == 0 and category[1, -1, 1] == 1


def test_warp_moves_the_image_by_the_flow_and_zero_flow_keeps_it():
    from lib.models.mocogan import warp

    images = torch.rand(2, 3, 16, 16)
    torch.testing.assert_close(warp(images, torch.zeros(2, 2, 16, 16)), images, atol=1e-5, rtol=0)
    one_pixel = torch.zeros(2, 2, 16, 16)
    one_pixel[:, 0] = 2 / 16  # x + 1 pixel: each output pixel reads its right neighbour
    torch.testing.assert_close(warp(images, one_pixel)[..., :-1], images[..., 1:], atol=1e-5, rtol=0)


@pytest.mark.parametrize("composite", ["mask", "warp"])
def test_composite_generators_need_reference_frames_and_keep_them_at_a_saturated_mask(composite):
    generator = VideoGenerator(50, 32, 0.125, head=OUTPUT_HEADS[composite]())
    reference = torch.rand(2, 3, 16, 32, 32) * 2 - 1
    videos, drawn = generator(torch.randn(2, 16, 50), torch.tensor([0, 1]), reference=reference, return_drawn=True)
    assert videos.shape == reference.shape and drawn.shape == (2, 1, 16, 32, 32)
    assert 0 < drawn.mean() < 0.5  # starts mostly keeping the reference
    with pytest.raises(ValueError, match="input frames"):
        generator(torch.randn(2, 16, 50), torch.tensor([0, 1]))
    assert COMPOSITES == ("off", "mask", "warp", "residual", "flow")  # the heads by name


def test_residual_drawn_change_smoothing_and_ramp():
    torch.manual_seed(0)
    plain = VideoGenerator(50, 32, 0.125, head=ResidualFrames(32))
    with torch.no_grad():  # a drawn change that is not zero (it starts at zero)
        for parameter in plain.decoder.output_layer().parameters():
            parameter.normal_(0, 0.5)
    shaped = VideoGenerator(50, 32, 0.125, head=ResidualFrames(32, smoothing=4, ramp=True))
    shaped.load_state_dict(plain.state_dict())
    content, labels = torch.randn(2, 16, 50), torch.tensor([0, 1])
    reference = torch.rand(2, 3, 16, 32, 32) * 2 - 1
    change = plain(content, labels, torch.Generator().manual_seed(1), reference) - reference
    shaped_change = shaped(content, labels, torch.Generator().manual_seed(1), reference) - reference
    assert change[:, :, 0].abs().max() > 0.01 and shaped_change[:, :, 0].abs().max() == 0  # frame 0 = the input
    flat = change.transpose(1, 2).reshape(-1, 3, 32, 32)
    coarse = torch.nn.functional.interpolate(torch.nn.functional.avg_pool2d(flat, 4), size=(32, 32), mode="bilinear",
                                             align_corners=False)
    ramp = torch.linspace(0, 1, 16)[None, None, :, None, None]
    expected = coarse.reshape(2, 16, 3, 32, 32).transpose(1, 2) * ramp
    torch.testing.assert_close(shaped_change, expected, atol=1e-5, rtol=0)
    # per-row weights (drawn_upper_weight=0: nothing drawn above the mouth), saved with the generator
    weighted = VideoGenerator(50, 32, 0.125, head=ResidualFrames(32, weighted=True))
    weights = torch.cat([torch.zeros(20, 1), torch.full((12, 1), 2.0)])
    weighted.load_state_dict({**plain.state_dict(), "head.drawn_weights": weights})
    weighted_change = weighted(content, labels, torch.Generator().manual_seed(1), reference) - reference
    assert weighted_change[..., :20, :].abs().max() == 0
    torch.testing.assert_close(weighted_change[..., 20:, :], 2 * change[..., 20:, :], atol=1e-5, rtol=0)
    assert torch.equal(weighted.state_dict()["head.drawn_weights"], weights)
    with pytest.raises(ValueError, match="templates=True"):
        ResidualFrames(32, template_motion=True)


def test_dcgan_init():
    generator = VideoGenerator(50, 64, 0.25)
    generator.apply(init_dcgan_weights)
    weight = generator.decoder.main[0].weight
    assert abs(weight.std().item() - 0.02) < 0.005


def test_facenet_random_small_input():
    encoder = build_content_encoder("facenet", facenet_weights=None, facenet_input_size=80)
    assert isinstance(encoder, FaceNetContent) and encoder.code_dim == 512
    codes = encoder(torch.rand(2, 3, 64, 64) * 2 - 1)
    assert codes.shape == (2, 512)
    assert torch.allclose(codes.norm(dim=1), torch.ones(2), atol=1e-4)
    assert not any(p.requires_grad for p in encoder.parameters())  # frozen by default
    assert not encoder.training
    encoder.train()
    assert not encoder.training  # stays in eval mode: BN statistics of a feature extractor stay fixed


def test_facenet_missing_weights_file_names_the_path(tmp_path):
    missing = tmp_path / "nope.pt"
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        build_facenet_network(missing)


def test_facenet_weights_file_drops_logits(tmp_path):
    from lib.compat import import_facenet_pytorch

    source = import_facenet_pytorch().InceptionResnetV1(pretrained=None, classify=True, num_classes=7)
    path = tmp_path / "weights.pt"
    torch.save(source.state_dict(), path)  # facenet-pytorch's own format: a flat state dict with logits.*
    network = build_facenet_network(path)
    assert torch.equal(network.last_linear.weight, source.last_linear.weight)


def test_autoencoder_content_encoder_frozen_and_finetune():
    from lib.models.autoencoders import build_autoencoder

    frozen = AutoencoderContent(build_autoencoder("sae-small", 50, 64, 0.25), finetune=False)
    tuned = AutoencoderContent(build_autoencoder("sae-small", 50, 64, 0.25), finetune=True)
    assert frozen.code_dim == 50
    assert not any(p.requires_grad for p in frozen.parameters())
    assert all(p.requires_grad for p in tuned.parameters())
    assert frozen(torch.zeros(3, 3, 64, 64)).shape == (3, 50)


def test_encoder_names_are_checked():
    assert CONTENT_ENCODERS == ("ae", "facenet", "none")
    assert build_content_encoder("none") is None
    with pytest.raises(ConfigError, match="'ae', 'facenet', 'none'"):
        build_content_encoder("facenett")
