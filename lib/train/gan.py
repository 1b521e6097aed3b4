"""VICE-GAN (notebook 03): its networks and one iteration (D_I step, D_V step, G step), trained by the shared loop.

``train_gan(cfg, run_dir)`` builds one variant chosen by :class:`VICEGANOptions` and hands its step to
:func:`lib.train.loop.run_training`, which logs every loss term and its share of the generator loss to
``stats.jsonl``, checkpoints atomically (networks, optimisers, step and every RNG state, so stop + resume gives
the same losses as one uninterrupted run on CPU), writes sample GIFs and a loss-curve PNG, and finally
``train_done.json``.  ``load_generator(run_dir)`` gives evaluation a :class:`TrainedGenerator`.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.nn import functional as F

from lib.data.clips import check_input_videos
from lib.data.face_warp import ShapeAligner
from lib.io import load_checkpoint, to_uint8_frames
from lib.models.encoders import ContentEncoder, build_content_encoder
from lib.models.flow_decoder import BANK_LR_RATIO, landmark_flow_error
from lib.models.neutraliser import InputNeutraliser
from lib.models.mocogan import (MOTION_DIM, N_CATEGORIES, NOISE_CONTENT_DIM, OUTPUT_HEADS, AutoencoderFrameDecoder,
                                CategoricalVideoDiscriminator, FlowFrames, OutputHead, PatchImageDiscriminator,
                                ResidualFrames, VideoGenerator, add_spectral_norm, init_dcgan_weights)
from lib.train.augment import diff_augment, parse_policy
from lib.train.gan_config import VICEGANOptions
from lib.train.gan_data import ClipSampler, emotion_code_directions, emotion_templates, face_region_weights
from lib.train.gan_losses import (consistency_distance, discriminator_loss, generator_adv_loss, loss_shares,
                                  pyramid_error, r1_penalty)
from lib.train.gan_samples import write_neutraliser_figure
from lib.train.loop import BEST_NAME, CHECKPOINT_NAME, SNAPSHOTS, Trainee, prepare_run, run_training, training_run
from lib.train.options import config_from_dict, ensure_resolved
from lib.utils import resolve_device, seed_everything

NEUTRALISER_FIGURE = "neutraliser.png"  # neutralise_input: held-out frames before and after (gan_samples)
GENERATE_CHUNK = 16  # videos per generator call in TrainedGenerator.generate


@dataclasses.dataclass
class GANModels:
    generator: VideoGenerator
    image_discriminator: PatchImageDiscriminator
    video_discriminator: CategoricalVideoDiscriminator
    encoder: ContentEncoder | None
    generator_ema: VideoGenerator | None = None  # recipe option ema_beta > 0
    template_aligner: ShapeAligner | None = None  # template_alignment: input faces' grids, made when first needed
    neutraliser: InputNeutraliser | None = None  # neutralise_input: frozen, trained before the GAN

    @property
    def sampling_generator(self) -> VideoGenerator:
        """The generator that draws samples, probes and evaluation videos (the EMA one when kept)."""
        return self.generator_ema if self.generator_ema is not None else self.generator


def build_models(cfg: VICEGANOptions, device: torch.device, cache: Any | None = None,
                 train_ids: Any | None = None) -> GANModels:
    """Networks of a resolved config (``cfg.image_size`` set); DCGAN init from the global seed.

    ``cache`` and ``train_ids`` (training only) give the emotion directions of ``emotion_directions`` and the
    templates of ``emotion_templates``; without them (loading a checkpoint) the state dict fills those."""
    encoder = build_content_encoder(cfg.encoder, finetune=cfg.finetune, autoencoder_checkpoint=cfg.autoencoder_checkpoint,
                                    facenet_weights=cfg.facenet_weights_path, facenet_input_size=cfg.facenet_input_size,
                                    device=device)
    content_dim = encoder.code_dim if encoder is not None else NOISE_CONTENT_DIM
    autoencoder = directions = None
    if cfg.warm_start:
        from lib.models.encoders import load_autoencoder_network

        autoencoder = load_autoencoder_network(cfg.autoencoder_checkpoint, "cpu")
        if cfg.emotion_directions and cache is not None:
            directions = emotion_code_directions(autoencoder, cache, train_ids, N_CATEGORIES)
    templates = None
    if uses_templates(cfg) and cache is not None:
        templates = emotion_templates(cache, train_ids, N_CATEGORIES, cfg.video_length, cfg.every_nth,
                                      stabilise=uses_template_motion(cfg), align=uses_template_alignment(cfg),
                                      region_weights=(cfg.template_upper_weight, cfg.template_lower_weight))
    networks = build_networks(cfg, content_dim, device, autoencoder, directions, templates)
    neutraliser = None
    if uses_neutraliser(cfg):
        if cache is not None:  # training: trained on the training subjects' videos (or read from its cache)
            from lib.train.neutraliser import neutraliser_for

            neutraliser = neutraliser_for(cache, cfg.cache_dir, cfg.neutraliser_steps, cfg.seed, bool(cfg.probe_every),
                                          device)
        else:  # loading a checkpoint: its state dict fills the weights
            neutraliser = InputNeutraliser().to(device).eval().requires_grad_(False)
    return GANModels(**networks, encoder=encoder, neutraliser=neutraliser)


def compile_decoder(generator: VideoGenerator) -> None:
    """torch.compile the training generator's frame decoder in place.  Its ``forward`` is compiled, not the
    module wrapped, so parameter names (checkpoints, EMA) stay as they are.  The discriminators stay eager:
    the R1 penalty needs a double backward, which compiled graphs do not support."""
    generator.decoder.forward = torch.compile(generator.decoder.forward)


def output_head(cfg: VICEGANOptions) -> OutputHead:
    """The generator's output head that the config names (``composite``; ``off`` without a content encoder), with
    its options: the residual head's shaping and templates."""
    composite = cfg.composite if uses_composite(cfg) else "off"
    if composite != "residual":
        return OUTPUT_HEADS[composite]()
    head = ResidualFrames(cfg.image_size, smoothing=cfg.drawn_smoothing, ramp=cfg.drawn_ramp,
                          weighted=cfg.drawn_upper_weight != 1, templates=uses_templates(cfg),
                          template_motion=uses_template_motion(cfg), template_alignment=uses_template_alignment(cfg),
                          video_length=cfg.video_length)
    if head.drawn_weights is not None:
        head.drawn_weights.copy_(face_region_weights(cfg.image_size, cfg.drawn_upper_weight, 1.0))
    return head


def build_networks(cfg: VICEGANOptions, content_dim: int, device: torch.device, autoencoder: torch.nn.Module | None = None,
                   directions: torch.Tensor | None = None,
                   templates: torch.Tensor | None = None) -> dict[str, torch.nn.Module | None]:
    """The generator, both discriminators and the EMA generator of a resolved config, as the recipe
    builds them: ``autoencoder`` is the warm start's decoder source (needed when ``cfg.warm_start``),
    ``directions`` the optional emotion directions, ``templates`` the optional :class:`EmotionTemplates`.  Shared by :func:`build_models` and ``make benchmark``."""
    head = output_head(cfg)
    decoder = None
    if cfg.warm_start:
        decoder = AutoencoderFrameDecoder(autoencoder, content_dim + MOTION_DIM + N_CATEGORIES, content_dim,
                                          extra_channels=head.extra_channels)
        if directions is not None:
            decoder.set_category_directions(autoencoder.from_code[0].weight, directions)
    generator = VideoGenerator(content_dim, cfg.image_size, cfg.width, head=head, decoder=decoder,
                               category_ramp=cfg.category_ramp, video_length=cfg.video_length)
    if templates is not None:
        head.templates.copy_(templates.changes)
        if templates.motions is not None:
            head.template_motion.copy_(templates.motions)
        if templates.shape is not None:
            head.template_shape.copy_(templates.shape)
    image_d = PatchImageDiscriminator(cfg.image_size, cfg.width)
    video_d = CategoricalVideoDiscriminator(cfg.image_size, cfg.video_length, cfg.width)
    # a warm-started decoder keeps the autoencoder's weights; the flow U-Net keeps PyTorch's default init (DCGAN's
    # N(0, 0.02) would shrink its signal through the skip-connected levels)
    keeps_init = cfg.warm_start or isinstance(head, FlowFrames)
    for net in ((image_d, video_d) if keeps_init else (generator, image_d, video_d)):
        net.apply(init_dcgan_weights)
    generator.start_from_reference()
    if cfg.spectral_norm:  # after the init: it re-parametrises the initialised weights
        add_spectral_norm(image_d)
        add_spectral_norm(video_d)
    generator_ema = None
    if cfg.ema_beta:
        import copy

        generator_ema = copy.deepcopy(generator).requires_grad_(False).to(device)
    return {"generator": generator.to(device), "image_discriminator": image_d.to(device),
            "video_discriminator": video_d.to(device), "generator_ema": generator_ema}


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, beta: float) -> None:
    """ema <- beta * ema + (1 - beta) * model for parameters; buffers (BatchNorm statistics) copied."""
    for averaged, current in zip(ema.parameters(), model.parameters()):
        averaged.lerp_(current, 1.0 - beta)
    for averaged, current in zip(ema.buffers(), model.buffers()):
        averaged.copy_(current)


def _flat_frames(videos: torch.Tensor) -> torch.Tensor:
    """(B, 3, T, H, W) -> (B*T, 3, H, W)."""
    return videos.transpose(1, 2).reshape(-1, videos.shape[1], *videos.shape[-2:])


def content_codes(models: GANModels, cfg: VICEGANOptions, videos: torch.Tensor,
                  noise: torch.Generator) -> torch.Tensor:
    """(B, T, D) content codes for the generator from input clips (B, 3, T, H, W).

    ``all``: the code of every frame; ``single``: the first frame's code repeated;
    encoder ``none``: MoCoGAN's Gaussian content, one per video.
    """
    batch, _, length = videos.shape[:3]
    if models.encoder is None:
        code = torch.randn(batch, NOISE_CONTENT_DIM, generator=noise, device=videos.device)
        return code[:, None, :].expand(batch, length, -1)
    with torch.set_grad_enabled(torch.is_grad_enabled() and models.encoder.finetune):
        if cfg.content_mode == "single":
            code = models.encoder(videos[:, :, 0])
            return code[:, None, :].expand(batch, length, -1)
        return models.encoder(_flat_frames(videos)).reshape(batch, length, -1)


def uses_composite(cfg: VICEGANOptions) -> bool:
    """The ``composite`` option applies to variants with a content encoder (they have input frames)."""
    return cfg.composite != "off" and cfg.encoder != "none"


def uses_landmark_flow(cfg: VICEGANOptions) -> bool:
    """``landmark_flow_weight`` applies to flow generators trained on aligned pairs (variants with an encoder)."""
    return bool(cfg.landmark_flow_weight) and uses_composite(cfg) and cfg.reconstruction_weight > 0


def uses_templates(cfg: VICEGANOptions) -> bool:
    """``emotion_templates`` applies where ``composite="residual"`` does (variants with a content encoder)."""
    return bool(cfg.emotion_templates) and uses_composite(cfg) and cfg.composite == "residual"


def uses_template_motion(cfg: VICEGANOptions) -> bool:
    """The templates' head movement is a warp of the frames (``template_motion="warp"``), not pixels."""
    return uses_templates(cfg) and cfg.template_motion == "warp"


def uses_neutraliser(cfg: VICEGANOptions) -> bool:
    """``neutralise_input`` applies to variants with a content encoder (they read input frames)."""
    return bool(cfg.neutralise_input) and cfg.encoder != "none"


def generator_inputs(models: GANModels, cfg: VICEGANOptions, videos: torch.Tensor) -> torch.Tensor:
    """The input clips as the generator reads them (content codes, composite reference, template grids): with
    ``neutralise_input`` the frames it reads (the first with ``content_mode="single"``, else all) go through the
    neutraliser; otherwise the clips themselves."""
    if models.neutraliser is None:
        return videos
    with torch.no_grad():
        if cfg.content_mode == "single":
            first = models.neutraliser(videos[:, :, 0])
            return torch.cat([first[:, :, None], videos[:, :, 1:]], dim=2)
        batch, channels, length = videos.shape[:3]
        frames = models.neutraliser(_flat_frames(videos))  # (B*T, 3, H, W), frame-major per video
        return frames.reshape(batch, length, channels, *videos.shape[-2:]).transpose(1, 2)


def uses_template_alignment(cfg: VICEGANOptions) -> bool:
    """The templates are drawn on a mean face and moved onto each input face (``template_alignment``)."""
    return uses_templates(cfg) and cfg.template_alignment != "none"


def template_grids(models: GANModels, videos: torch.Tensor) -> torch.Tensor | None:
    """(B, S, S, 2) grids that move an aligned-template generator's templates onto the faces of the input clips'
    first frames (dlib's landmarks, kept per frame: training reads each first frame once); None without
    ``template_alignment``."""
    template_shape = getattr(models.generator.head, "template_shape", None)
    if template_shape is None:
        return None
    shape, size = template_shape.cpu().numpy(), videos.shape[-1]
    if models.template_aligner is None or not models.template_aligner.matches(shape, size):
        models.template_aligner = ShapeAligner(shape, size)
    first_frames = to_uint8_frames(videos[:, :, 0])  # (B, H, W, 3)
    return torch.from_numpy(models.template_aligner.grids(first_frames)).to(videos.device)


def reference_frames(cfg: VICEGANOptions, videos: torch.Tensor) -> torch.Tensor | None:
    """The input frames a composite generator copies from, aligned with :func:`content_codes`: the first
    frame repeated (``single``, and ``flow`` always) or every frame (``all``); None for other generators."""
    if not uses_composite(cfg):
        return None
    single = cfg.content_mode == "single" or cfg.composite == "flow"  # flow: moves the first frame's pixels
    return videos[:, :, :1].expand_as(videos) if single else videos


def _lazy_r1(real_logits: torch.Tensor, real_inputs: torch.Tensor, cfg: VICEGANOptions, log: dict, key: str) -> torch.Tensor:
    """The weighted R1 term of a lazy-R1 step (x r1_every: it runs every r1_every steps); logs the penalty."""
    penalty = r1_penalty(real_logits, real_inputs)
    log[key] = penalty.item()
    return 0.5 * cfg.r1_gamma * cfg.r1_every * penalty


def train_step(models: GANModels, optimizers: dict, sampler: ClipSampler, cfg: VICEGANOptions,
               noise: torch.Generator, device: torch.device, step: int = 0) -> dict[str, float]:
    """One MoCoGAN iteration: D_I step, D_V step, then G (+ R_m, + a fine-tuned encoder) step.

    With every recipe option off (``recipe="thesis"``) this is the papers' loop, term for term.
    """
    real_videos, real_labels, positions = sampler.clips(cfg.video_batch)
    real_images = sampler.images(cfg.image_batch)
    real_videos, real_labels, real_images = real_videos.to(device), real_labels.to(device), real_images.to(device)
    batch, length = real_videos.shape[0], real_videos.shape[2]
    paired = cfg.reconstruction_weight > 0 and models.encoder is not None
    own_take = paired and cfg.paired_target == "own-take"
    if own_take:  # aligned pairs: input = each take's first frame, target = that take in its own emotion
        target_videos, targets = real_videos, real_labels
        has_partner = torch.ones(batch, dtype=torch.bool, device=device)
        input_videos = real_videos[:, :, :1].expand_as(real_videos)  # the generator sees the first frame only
    elif paired:  # target = the emotion of a real video of the same subject, which is the L1 target
        target_videos, targets, has_partner = sampler.partner_clips(positions)
        target_videos, targets, has_partner = target_videos.to(device), targets.to(device), has_partner.to(device)
        input_videos = real_videos  # the real clips are also the generator's inputs: content of the same subjects
    else:
        targets = torch.randint(0, N_CATEGORIES, (batch,), generator=noise, device=device)
        input_videos = real_videos

    inputs = generator_inputs(models, cfg, input_videos)
    content = content_codes(models, cfg, inputs, noise)
    supervise_flow = own_take and uses_landmark_flow(cfg)
    if supervise_flow and sampler.landmarks is None:
        raise ValueError("landmark_flow_weight > 0 needs the training videos' landmarks: set sampler.landmarks "
                         "(lib.data.landmarks.cache_landmarks), as train_gan does")
    outputs = models.generator(content, targets, noise, reference_frames(cfg, inputs), return_drawn=True,
                               template_grid=template_grids(models, inputs), return_flow=supervise_flow)
    fake_videos, drawn_map = outputs[:2]
    frame_pick = torch.randint(0, batch * length, (cfg.image_batch,), generator=noise, device=device)
    fake_images = _flat_frames(fake_videos)[frame_pick]
    use_image_d, use_video_adv = cfg.image_adv_weight > 0, cfg.video_adv_weight > 0
    use_category = cfg.category_weight > 0
    policy = parse_policy(cfg.diffaugment)
    augment = (lambda x: diff_augment(x, policy, noise)) if policy else (lambda x: x)
    lazy_r1 = cfg.r1_gamma > 0 and step % cfg.r1_every == 0
    log: dict[str, float] = {}

    if use_image_d:
        real_in = augment(real_images)
        if lazy_r1:
            real_in = real_in.detach().requires_grad_(True)
        real_logits = models.image_discriminator(real_in)
        loss = discriminator_loss(real_logits, models.image_discriminator(augment(fake_images.detach())),
                                  cfg.adversarial_loss)
        log["d_image"] = loss.item()
        if lazy_r1:
            loss = loss + _lazy_r1(real_logits, real_in, cfg, log, "r1_image")
        optimizers["image_discriminator"].zero_grad(set_to_none=True)
        loss.backward()
        optimizers["image_discriminator"].step()
    if use_video_adv or use_category:
        real_in = augment(real_videos)
        if lazy_r1 and use_video_adv:
            real_in = real_in.detach().requires_grad_(True)
        real_logit, real_category = models.video_discriminator(real_in)
        loss = torch.zeros((), device=device)
        fake_on_category = use_category and cfg.fake_category_weight > 0
        if use_video_adv or fake_on_category:
            fake_logit, fake_category = models.video_discriminator(augment(fake_videos.detach()))
        if use_video_adv:
            adversarial = discriminator_loss(real_logit, fake_logit, cfg.adversarial_loss)
            loss = loss + adversarial
            log["d_video"] = adversarial.item()
            if lazy_r1:
                loss = loss + _lazy_r1(real_logit, real_in, cfg, log, "r1_video")
        if use_category:
            category = F.cross_entropy(real_category, real_labels)
            loss = loss + category
            log["d_category"] = category.item()
        if fake_on_category:  # the head must not name an emotion in a generated clip: uniform target
            uniform = -F.log_softmax(fake_category, dim=1).mean()
            loss = loss + cfg.fake_category_weight * uniform
            log["d_category_fake"] = uniform.item()
        optimizers["video_discriminator"].zero_grad(set_to_none=True)
        loss.backward()
        optimizers["video_discriminator"].step()

    terms: dict[str, torch.Tensor] = {}
    if use_image_d:
        terms["image_adv"] = cfg.image_adv_weight * generator_adv_loss(
            models.image_discriminator(augment(fake_images)), cfg.adversarial_loss)
    if use_video_adv or use_category:
        fake_logit, fake_category = models.video_discriminator(augment(fake_videos))
        if use_video_adv:
            terms["video_adv"] = cfg.video_adv_weight * generator_adv_loss(fake_logit, cfg.adversarial_loss)
        if use_category:
            terms["category"] = cfg.category_weight * F.cross_entropy(fake_category, targets)
    if models.encoder is not None and cfg.consistency_scale > 0:
        # codes of generated frames vs the content codes they were made from (a subset of frames on CPU presets)
        frames = torch.randperm(length, generator=noise, device=device)[:cfg.consistency_frames].sort().values
        fake_codes = models.encoder(_flat_frames(fake_videos[:, :, frames]))
        real_codes = content[:, frames].reshape(len(fake_codes), -1)
        distance = consistency_distance(real_codes, fake_codes, cfg.consistency_loss)
        terms["consistency"] = cfg.consistency_scale * distance
        log["consistency_distance"] = distance.item()
    if paired and bool(has_partner.any()):
        fake, target = fake_videos, target_videos
        if cfg.reconstruction_target == "changes":  # the expression, without the other take's light and pose
            fake, target = fake - fake[:, :, :1], target - target[:, :, :1]
        # l1's optimum is the per-pixel median, which is "no change" wherever fewer than half of the
        # targets move (expressions are small and their timing varies); mse's is the mean change
        if cfg.reconstruction_loss == "pyramid":
            error = pyramid_error(fake, target)
        else:
            difference = (fake - target).abs() if cfg.reconstruction_loss == "l1" else (fake - target).square()
            error = difference.mean(dim=(1, 2, 3, 4))
        terms["reconstruction"] = cfg.reconstruction_weight * error[has_partner].mean()
    if own_take and cfg.feature_matching_weight > 0:  # D_V reads the generated clip as it reads its own take
        with torch.no_grad():
            wanted = models.video_discriminator.feature_maps(target_videos)
        got = models.video_discriminator.feature_maps(fake_videos)
        terms["feature_matching"] = cfg.feature_matching_weight * sum(
            (a - b).abs().mean() for a, b in zip(got, wanted)) / len(got)
    if supervise_flow:  # each landmark of frame t must be fetched from its place in the take's first frame
        points = sampler.first_clip_landmarks(positions, sampler.landmarks).to(device)
        error = landmark_flow_error(outputs[2], points[:, 0], points)
        terms["landmark_flow"] = cfg.landmark_flow_weight * error
        log["landmark_flow_error"] = error.item()
    if drawn_map is not None:
        drawn = drawn_map.mean()  # how much of the frames is drawn rather than kept from the input
        log["drawn"] = drawn.item()
        if cfg.composite_drawn_weight > 0:  # as GANimation's attention penalty: redraw only what must change
            terms["drawn"] = cfg.composite_drawn_weight * drawn
    total = sum(terms.values())
    optimizers["generator"].zero_grad(set_to_none=True)
    if torch.is_tensor(total):
        total.backward()
        optimizers["generator"].step()
    if models.generator_ema is not None:
        update_ema(models.generator_ema, models.generator, cfg.ema_beta)
    values = {name: value.item() for name, value in terms.items()}
    log.update({f"g_{name}": value for name, value in values.items()}, g_total=float(total.item() if torch.is_tensor(total) else total))
    log.update(loss_shares(values))
    return log


def make_optimizers(models: GANModels, cfg: VICEGANOptions) -> dict[str, torch.optim.Optimizer]:
    betas = (cfg.beta1, cfg.beta2)
    bank = [p for name, p in models.generator.named_parameters() if name.startswith("decoder.bank_")]
    generator_params = [p for name, p in models.generator.named_parameters() if not name.startswith("decoder.bank_")]
    if models.encoder is not None and models.encoder.finetune:
        generator_params += list(models.encoder.parameters())
    groups = [{"params": generator_params}]
    if bank:  # the flow generator's emotion bank: direct per-cell parameters, a larger step
        groups.append({"params": bank, "lr": cfg.learning_rate * BANK_LR_RATIO})
    d_lr = cfg.learning_rate * (cfg.d_lr_ratio or 1.0)  # two-time-scale update (TTUR) when the ratio is not 1
    return {
        "generator": torch.optim.Adam(groups, lr=cfg.learning_rate, betas=betas),
        "image_discriminator": torch.optim.Adam(models.image_discriminator.parameters(), lr=d_lr, betas=betas),
        "video_discriminator": torch.optim.Adam(models.video_discriminator.parameters(), lr=d_lr, betas=betas),
    }


def _saves_encoder(cfg: VICEGANOptions) -> bool:
    # a fine-tuned encoder changes; a randomly initialised one cannot be rebuilt from a file
    return cfg.encoder != "none" and (cfg.finetune or cfg.facenet_weights_path is None and cfg.encoder == "facenet")


def _load_model_states(models: GANModels, state: dict[str, Any]) -> None:
    models.generator.load_state_dict(state["generator"])
    if "image_discriminator" in state:  # absent from best.pt, which keeps the sampling generator only
        models.image_discriminator.load_state_dict(state["image_discriminator"])
        models.video_discriminator.load_state_dict(state["video_discriminator"])
    if models.generator_ema is not None:
        models.generator_ema.load_state_dict(state.get("generator_ema", state["generator"]))
    if "encoder" in state and models.encoder is not None:
        models.encoder.load_state_dict(state["encoder"])
    if models.neutraliser is not None:
        if "neutraliser" not in state:
            raise KeyError("the checkpoint's config has neutralise_input=True but it holds no neutraliser weights; "
                           "it is damaged or was written by other code: train the run again")
        models.neutraliser.load_state_dict(state["neutraliser"])


def best_state(models: GANModels, cfg: VICEGANOptions) -> dict[str, Any]:
    """What best.pt keeps: the sampling generator (EMA when kept) + a saved encoder and the neutraliser."""
    state = {"generator": models.sampling_generator.state_dict()}
    if _saves_encoder(cfg):
        state["encoder"] = models.encoder.state_dict()
    if models.neutraliser is not None:
        state["neutraliser"] = models.neutraliser.state_dict()
    return state


def _saved_networks(models: GANModels, cfg: VICEGANOptions) -> dict[str, torch.nn.Module]:
    """The networks a training checkpoint holds, by name (:func:`_load_model_states` reads the same names)."""
    named = {"generator": models.generator, "image_discriminator": models.image_discriminator,
             "video_discriminator": models.video_discriminator, "encoder": models.encoder if _saves_encoder(cfg) else None,
             "generator_ema": models.generator_ema, "neutraliser": models.neutraliser}
    return {name: network for name, network in named.items() if network is not None}


def with_identity_embedder(cfg: VICEGANOptions, cache: Any) -> VICEGANOptions:
    """``cfg`` with ``facenet_weights="train"`` pointing at the FaceNet identity embedder trained on the training
    subjects (trained once per cache and settings); any other config as it is."""
    if cfg.encoder != "facenet" or cfg.facenet_weights != "train":
        return cfg
    from lib.train.identity import train_identity_embedder

    path = train_identity_embedder(cache, cfg.cache_dir, cfg.facenet_input_size, cfg.identity_steps,
                                   cfg.identity_batch, seed=cfg.seed, device=resolve_device(cfg.device))
    print(f"FaceNet identity embedder (trained on the training subjects): {path}")
    return dataclasses.replace(cfg, facenet_weights_path=str(path))


def prepare_training(cfg: VICEGANOptions, cache: Any | None = None) -> tuple[VICEGANOptions, Any, np.ndarray, np.ndarray]:
    """What :func:`train_gan` trains from, without a run folder (tests, benchmarks): the resolved config, the
    cache, the training and validation video ids (:func:`lib.train.loop.prepare_run`)."""
    cfg, cache, train_ids, validation_ids = prepare_run(ensure_resolved(cfg), cache)
    return with_identity_embedder(cfg, cache), cache, train_ids, validation_ids


def train_gan(cfg: VICEGANOptions, run_dir: str | Path, cache: Any | None = None, progress: bool = True,
              probe: Callable[["TrainedGenerator"], dict[str, float]] | None = None) -> dict[str, Any]:
    """Train (or resume, or just report a finished) run in ``run_dir`` with the shared loop
    (:func:`lib.train.loop.run_training`); returns the train_done summary.

    ``probe(generator) -> metrics`` (see :mod:`lib.evaluation.learning_probes`) runs before the first step,
    every ``probe_every`` steps and at the end; its metrics go to ``stats.jsonl`` (``probe_*``) and the
    generator with the highest ``metrics[cfg.best_criterion]`` is kept as ``best.pt``.
    ``cfg`` is the config :func:`resolve_config` returned (as 03 makes it, validated there); an unresolved
    one is resolved, and so validated, here, before any work.
    """
    with training_run(cfg, run_dir, ("vicegan", "templates"), cache) as run:  # one writer per run folder
        cfg = run.cfg = with_identity_embedder(run.cfg, run.cache)
        cache, train_ids, device = run.cache, run.train_ids, resolve_device(cfg.device)
        seed_everything(cfg.seed)
        models = build_models(cfg, device, cache, train_ids)
        if cfg.compile_generator:  # training only: loading a generator for evaluation stays eager
            compile_decoder(models.generator)
        optimizers = make_optimizers(models, cfg)
        sampler = ClipSampler(cache, train_ids, cfg.video_length, cfg.every_nth, seed=cfg.seed,
                              clip_start=cfg.clip_start)
        if uses_landmark_flow(cfg):  # the training videos' dlib points, computed once beside the cache
            from lib.data.landmarks import cache_landmarks

            sampler.landmarks = cache_landmarks(cache, cfg.cache_dir, progress=progress, video_ids=train_ids)
        noise = torch.Generator(device=device)
        noise.manual_seed(cfg.seed + 1)
        figure = run.run_dir / NEUTRALISER_FIGURE
        if models.neutraliser is not None and not figure.is_file():
            write_neutraliser_figure(models.neutraliser, cache, run.validation_ids, figure)
        trainee = Trainee(TrainedGenerator(cfg, models, device), _saved_networks(models, cfg), optimizers, sampler,
                          lambda step: train_step(models, optimizers, sampler, cfg, noise, device, step),
                          f"GAN {cfg.describe()}", streams={"noise": noise},
                          trained=("generator", "image_discriminator", "video_discriminator"),
                          best_state=lambda: best_state(models, cfg),
                          postfix=lambda log: dict(g=f"{log['g_total']:.3g}", d_img=f"{log.get('d_image', 0):.3g}",
                                                   d_vid=f"{log.get('d_video', 0):.3g}"),
                          summary={"neutraliser_figure": str(figure) if figure.is_file() else None})
        return run_training(run, trainee, progress, probe)


class TrainedGenerator:
    """A trained generator + its content encoder: ``generate(input_videos, labels, seed)``."""

    def __init__(self, config: VICEGANOptions, models: GANModels, device: torch.device | str = "cpu"):
        self.config, self.models, self.device = config, models, torch.device(device)

    def _input_clip(self, videos: torch.Tensor) -> torch.Tensor:
        """The ``video_length`` input frames: every ``every_nth`` frame when long enough, last frame repeated if short."""
        length, want = videos.shape[2], self.config.video_length
        stride = self.config.every_nth if length >= (want - 1) * self.config.every_nth + 1 else 1
        picks = np.minimum(np.arange(want) * stride, length - 1)
        return videos[:, :, torch.from_numpy(picks).to(videos.device)]

    @torch.no_grad()
    def generate(self, input_videos: torch.Tensor, labels: torch.Tensor | np.ndarray | list, seed: int = 0) -> torch.Tensor:
        """(B, 3, T, H, W) real frames in [-1, 1] + target labels (B,) -> (B, 3, 16, H, W) in [-1, 1]."""
        videos = self._input_clip(check_input_videos(input_videos).to(self.device, torch.float32))
        labels = torch.as_tensor(np.asarray(labels), dtype=torch.long, device=self.device)
        noise = torch.Generator(device=self.device)
        noise.manual_seed(int(seed))
        generator = self.models.sampling_generator
        was_training = generator.training
        generator.eval()
        try:
            outputs = []
            for first in range(0, len(videos), GENERATE_CHUNK):  # bounded memory for long evaluation batches
                inputs = generator_inputs(self.models, self.config, videos[first:first + GENERATE_CHUNK])
                content = content_codes(self.models, self.config, inputs, noise)
                reference = reference_frames(self.config, inputs)
                grids = template_grids(self.models, inputs)
                outputs.append(generator(content, labels[first:first + GENERATE_CHUNK], noise, reference,
                                         template_grid=grids).clamp(-1, 1))
            return torch.cat(outputs)
        finally:
            generator.train(was_training)


def load_generator(run_dir: str | Path, device: str | torch.device = "cpu", snapshot: str = "best") -> TrainedGenerator:
    """The generator of a run folder (with its encoder), ready for evaluation.

    ``snapshot="best"`` takes ``best.pt`` (the best probe) when the run has one, else the latest
    checkpoint; ``"latest"`` always the latest.  ``.snapshot`` on the result says which was used.
    """
    from lib.config import check_choice

    check_choice("snapshot", snapshot, SNAPSHOTS)
    run_dir = Path(run_dir)
    path = run_dir / CHECKPOINT_NAME if run_dir.is_dir() else run_dir
    used = "latest"
    if run_dir.is_dir() and snapshot == "best" and (run_dir / BEST_NAME).is_file():
        path, used = run_dir / BEST_NAME, "best"
    if not path.is_file():
        raise FileNotFoundError(f"no GAN checkpoint at {path}; train it with notebooks/03_train.ipynb "
                                f"(-p run_dir {run_dir})")
    state = load_checkpoint(path)
    cfg = config_from_dict(state["config"])
    device = resolve_device(str(device)) if str(device) in ("auto", "cpu", "cuda") else torch.device(device)
    models = build_models(cfg, device)
    _load_model_states(models, state)
    models.generator.eval()
    trained = TrainedGenerator(cfg, models, device)
    trained.snapshot = f"{used} (step {state.get('step')})"
    return trained


__all__ = ["VICEGANOptions", "train_gan", "load_generator", "TrainedGenerator", "GANModels", "build_models",
           "train_step", "content_codes", "reference_frames", "build_networks", "update_ema", "CHECKPOINT_NAME",
           "BEST_NAME", "SNAPSHOTS"]
