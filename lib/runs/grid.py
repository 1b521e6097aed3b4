"""Named experiment variants: each one is the set of papermill parameters for ``03_train``.

Grids (SPEC "The experiment grid"):

- ``thesis``   - thesis Table 2 (models 1-4: content encoding all/single x autoencoder
  fine-tuned/frozen) under the Seen and Unseen training compositions: 8 variants.
- ``facenet``  - Oostveen Table 1: 1 AE/MSE, 2 FaceNet/MSE x10000, 3 FaceNet/MSE x15000,
  4 FaceNet/cosine x2000: 4 variants.
- ``ablation`` - the full loss, then one group of loss terms dropped at a time, as the
  face-reenactment seed (002) does: content consistency, category, image D, video D.
- ``baseline`` - MoCoGAN (content from noise, ``encoder="none"``).
- ``baselines`` - MoCoGAN, the training-free ``templates`` prior (``system="templates"``, both compositions)
  and the seeds' other systems: seed 004's latent-direction walk
  (``system="latent-walk"``), the landmark warp (``system="landmark-warp"``), seed 003's FEV-GAN (``system="fevgan"``) with its two ablations and
  seed 002's landmark-driven reenactment (``system="reenact"``) with its three loss-group ablations, and
  the walk and reenact with our output options (``walk_output="residual"``, ``reenact_output="warp"``).
- ``demo``     - what ``make demo`` trains: the headline variant (thesis model 4, seen), its unseen
  twin, the training-free ``templates`` prior of both compositions, the MoCoGAN baseline, the latent
  walk and the landmark warp (``system="landmark-warp"``, the system for real faces): 7 runs.
- ``papers``   - thesis + baseline + facenet (the first 12-run demo, 2026-11-22), identical variants
  merged as in ``all``: 12 runs.
- ``all``      - every variant once (variants with identical parameters are merged; the
  merged names are kept as ``aliases``).

Every grid is scaled by a preset (``tiny``/``small``/``paper``), which is passed to 03 as its
``preset`` parameter; 03 takes its step counts and batch sizes from that preset.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from lib.config import ConfigError, check_choice, name_list, to_dict
from lib.constants import PRESET_NAMES
from lib.paths import seeded_run_name, split_seed
from lib.data.splits import COMPOSITIONS
from lib.train.options import cell_options, make_config, notebook_parameters, system_of, system_options
from lib.train.systems import SYSTEM_NAMES
from lib.train.reenact import REENACT_LOSSES

# 03_train's parameters cell (the options every system shares) and, per system, the options it takes with -p:
# declared once, in the systems' option dataclasses.
CELL_PARAMETERS: dict[str, Any] = notebook_parameters()

GRID_NAMES = ("thesis", "facenet", "ablation", "baseline", "baselines", "headline", "demo", "papers", "all")
HEADLINE_VARIANTS = ("thesis-m4-seen", "thesis-m4-unseen")  # the learning issue's headline and its twin


@dataclasses.dataclass(frozen=True)
class Variant:
    """One named training run: ``params`` are 03_train's papermill parameters (without run_dir)."""

    name: str
    params: dict[str, Any]
    description: str = ""
    aliases: tuple[str, ...] = ()


# Thesis Table 2: model number -> (content encoding, fine-tune the autoencoder).
THESIS_MODELS: dict[int, tuple[str, bool]] = {
    1: ("all", True), 2: ("all", False), 3: ("single", True), 4: ("single", False),
}


def thesis_variants() -> list[Variant]:
    variants = []
    for composition in COMPOSITIONS:
        for model, (content_mode, finetune) in THESIS_MODELS.items():
            variants.append(Variant(
                name=f"thesis-m{model}-{composition}",
                params={"encoder": "ae", "content_mode": content_mode, "finetune": finetune,
                        "composition": composition},
                description=(f"thesis model {model}: {content_mode} frames' codes, autoencoder "
                             f"{'fine-tuned' if finetune else 'frozen'}, {composition} composition"),
            ))
    return variants


# The reference configuration the FaceNet and ablation variants vary: thesis model 2 (all
# frames, frozen autoencoder, the thesis's best on quality and emotion) under Seen, the
# composition Oostveen trains on (test subjects' other videos in training).
_REFERENCE = {"encoder": "ae", "content_mode": "all", "finetune": False, "composition": "seen"}


def facenet_variants() -> list[Variant]:
    # (name, encoder, consistency loss, scale); scale None = 03's preset default, i.e. the
    # unscaled autoencoder loss of the original VICE-GAN (Oostveen's model 1).
    table = [
        ("facenet-m1-ae-mse", "ae", "mse", None),
        ("facenet-m2-mse-x10000", "facenet", "mse", 10000.0),
        ("facenet-m3-mse-x15000", "facenet", "mse", 15000.0),
        ("facenet-m4-cosine-x2000", "facenet", "cosine", 2000.0),
    ]
    return [
        Variant(name=name,
                params={**_REFERENCE, "encoder": encoder, "consistency_loss": loss, "consistency_scale": scale},
                description=f"Oostveen Table 1: {encoder} encoder, {loss} consistency loss, scale {scale or 'default'}")
        for name, encoder, loss, scale in table
    ]


# Seed 002 ablates one group of loss terms per run; these are VICE-GAN's four groups.
ABLATED_GROUPS: dict[str, str] = {
    "no-consistency": "consistency_scale",
    "no-category": "category_weight",
    "no-image-d": "image_adv_weight",
    "no-video-d": "video_adv_weight",
}


def ablation_variants() -> list[Variant]:
    variants = [Variant("ablation-full", dict(_REFERENCE), "every loss term (thesis model 2, seen)")]
    for suffix, weight in ABLATED_GROUPS.items():
        variants.append(Variant(f"ablation-{suffix}", {**_REFERENCE, weight: 0.0},
                                f"thesis model 2 (seen) with {weight}=0"))
    return variants


def baseline_variants() -> list[Variant]:
    return [Variant("baseline-mocogan", {"encoder": "none", "content_mode": "all", "finetune": False,
                                         "composition": "seen"},
                    "MoCoGAN: content code from noise, no content encoder")]


def templates_variants() -> list[Variant]:
    return [Variant(f"baseline-templates-{composition}", {"system": "templates", "encoder": "ae",
                                                          "content_mode": "single", "composition": composition},
                    f"the training-free prior (neutralised input + mean emotion changes), {composition} composition")
            for composition in COMPOSITIONS]


def latent_walk_variants() -> list[Variant]:
    return [Variant("baseline-latent-walk", {"system": "latent-walk", "composition": "seen"},
                    "seed 004's latent-direction walk on the autoencoder's codes (no training; seconds)")]


def landmark_warp_variants() -> list[Variant]:
    return [Variant("baseline-landmark-warp", {"system": "landmark-warp", "composition": "seen"},
                    "the emotions' mean landmark motion as a warp of the input's own pixels (no training; seconds)")]


def our_option_variants() -> list[Variant]:
    """The seeds' systems with our output options (not the papers'), beside the faithful ones."""
    return [Variant("baseline-latent-walk-residual", {"system": "latent-walk", "composition": "seen",
                                                      "walk_output": "residual"},
                    "the latent walk shown as the input frame plus the decoded change (our option)"),
            Variant("baseline-reenact-warp", {"system": "reenact", "encoder": "ae", "reenact_output": "warp",
                                              "composition": "seen"},
                    "reenact whose U-Net moves the input frame by a drawn flow (our option)")]


def fevgan_variants() -> list[Variant]:
    """Seed 003's FEV-GAN with the autoencoder as identity encoder, and the paper's two ablations."""
    described = {"both": "both encoders", "spatial": "without the identity encoder",
                 "identity": "without the spatial encoder"}
    names = {"both": "baseline-fevgan", "spatial": "baseline-fevgan-no-identity",
             "identity": "baseline-fevgan-no-spatial"}
    return [Variant(names[kind], {"system": "fevgan", "encoder": "ae", "fevgan_encoders": kind, "composition": "seen"},
                    f"seed 003's FEV-GAN, {described[kind]}") for kind in names]


def reenact_variants() -> list[Variant]:
    """Seed 002's landmark-driven reenactment with every loss group, and the paper's three ablations."""
    described = {"all": "every loss group", "no-pixel": "without the pixel loss",
                 "no-consistency": "without the self- and triple-consistency losses",
                 "no-feature": "without the perceptual and identity losses"}
    return [Variant("baseline-reenact" + ("" if losses == "all" else f"-{losses}"),
                    {"system": "reenact", "encoder": "ae", "reenact_losses": losses, "composition": "seen"},
                    f"seed 002's landmark-driven reenactment, {described[losses]}") for losses in REENACT_LOSSES]


def other_system_variants() -> list[Variant]:
    """The seeds' other systems (lib/train/systems.py), on the headline's seen composition."""
    return (templates_variants() + latent_walk_variants() + landmark_warp_variants() + fevgan_variants()
            + reenact_variants() + our_option_variants())


def _merge_duplicates(variants: list[Variant]) -> list[Variant]:
    """Keep the first variant of each distinct parameter set; later names become its aliases."""
    kept: list[Variant] = []
    for variant in variants:
        for i, other in enumerate(kept):
            if _effective(other.params) == _effective(variant.params):
                kept[i] = dataclasses.replace(other, aliases=other.aliases + (variant.name,))
                break
        else:
            kept.append(variant)
    return kept


def train_parameters(system: str) -> dict[str, Any]:
    """name -> default of every 03_train parameter for ``system``: the cell's and the system's own."""
    return {**CELL_PARAMETERS, **system_options(system)}


def _effective(params: Mapping[str, Any]) -> dict[str, Any]:
    """The options 03 would train with (the system's defaults, preset and recipe filled in), so equal experiments
    compare equal."""
    return to_dict(make_config(**params))


def _grid_variants(name: str) -> list[Variant]:
    if name == "thesis":
        return thesis_variants()
    if name == "facenet":
        return facenet_variants()
    if name == "ablation":
        return ablation_variants()
    if name == "baseline":
        return baseline_variants()
    if name == "baselines":
        return baseline_variants() + other_system_variants()
    if name == "headline":
        return [v for v in thesis_variants() if v.name in HEADLINE_VARIANTS]
    if name == "demo":  # the walk and the warp fit in seconds; FEV-GAN needs its own training budget
        return ([v for v in thesis_variants() if v.name in HEADLINE_VARIANTS] + templates_variants()
                + baseline_variants() + latent_walk_variants() + landmark_warp_variants())
    if name == "papers":  # facenet-m1-ae-mse is thesis-m2-seen: trained once, under the thesis name
        return _merge_duplicates(thesis_variants() + baseline_variants() + facenet_variants())
    return _merge_duplicates(thesis_variants() + baseline_variants() + facenet_variants()
                             + ablation_variants() + other_system_variants())


def validate_train_params(params: Mapping[str, Any], where: str = "variant") -> None:
    """Raise ConfigError for a parameter 03_train does not have for the variant's system, or a value its options
    refuse (types, choices, numbers, combinations: :func:`lib.train.options.make_config`)."""
    system = check_choice(f"{where}.system", system_of(params), SYSTEM_NAMES)
    valid = train_parameters(system)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ConfigError(f"{where}: system {system!r} has no 03_train parameters {unknown}; valid: {sorted(valid)}")
    options = set(system_options(system)) | {f.name for f in cell_options()}  # not the run location or display
    try:
        make_config(**{name: value for name, value in params.items() if name in options})
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}") from None


def parse_seeds(seeds: Any) -> list[int] | None:
    """``seeds`` as a list of distinct ints >= 0 (``"0,1,2"``, ``[0, 1, 2]``, ``2``); None stays None."""
    values = name_list([seeds] if isinstance(seeds, int) and not isinstance(seeds, bool) else seeds)
    if values is None:
        return None
    try:
        parsed = [int(str(v).strip()) for v in values]
    except ValueError:
        raise ConfigError(f"seeds={seeds!r}: expected integers >= 0, e.g. 0,1,2") from None
    if not parsed or min(parsed) < 0 or len(set(parsed)) != len(parsed):
        raise ConfigError(f"seeds={seeds!r}: expected distinct integers >= 0, e.g. 0,1,2")
    return parsed


def resolve_grid(name: str, preset: str, overrides: Mapping[str, Any] | None = None,
                 seeds: Any = None) -> list[Variant]:
    """The variants of grid ``name`` at ``preset``, each with its full 03 parameters.

    ``overrides`` (e.g. ``{"steps": 200, "device": "cpu"}``) are applied to every variant whose system has them
    (``recipe``: the VICE-GAN ones); one that no system has fails.
    ``seeds`` (e.g. ``[0, 1, 2]``) trains each variant once per seed, as ``<variant>-seed<N>``
    (05 then also reports each variant's mean and interval over its seeds).
    Bad names fail before any work, listing the valid choices.
    """
    check_choice("grid", name, GRID_NAMES)
    check_choice("preset", preset, PRESET_NAMES)
    overrides = dict(overrides or {})
    if "run_dir" in overrides:
        raise ConfigError("run_dir is set per variant by the runner; do not pass it as an override")
    seeds = parse_seeds(seeds)
    if seeds is not None and "seed" in overrides:
        raise ConfigError("pass either seeds (one run per seed) or a seed override, not both")
    known = set().union(*(train_parameters(system) for system in SYSTEM_NAMES))
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(f"overrides: no system has the 03_train parameters {unknown}; valid: {sorted(known)}")
    resolved = []
    for variant in _grid_variants(name):
        takes = train_parameters(system_of(variant.params))
        # an override reaches the variants whose system has it (the recipe: the VICE-GAN variants)
        params = {**variant.params, "preset": preset, **{k: v for k, v in overrides.items() if k in takes}}
        validate_train_params(params, where=variant.name)
        if seeds is None:
            resolved.append(dataclasses.replace(variant, params=params))
            continue
        for seed in seeds:
            resolved.append(Variant(seeded_run_name(variant.name, seed), {**params, "seed": seed},
                                    f"{variant.description} (seed {seed})",
                                    tuple(seeded_run_name(alias, seed) for alias in variant.aliases)))
    names = [v.name for v in resolved]
    assert len(set(names)) == len(names), f"duplicate variant names in grid {name}: {names}"
    return resolved


def select_variants(variants: list[Variant], names: list[str] | None) -> list[Variant]:
    """The variants named in ``names`` (grid order kept); None = all.  A name may be an alias, and with
    seeds a variant's plain name picks all its seeds.  Unknown names fail."""
    if names is None:
        return list(variants)
    names = name_list(names)
    known: dict[str, set[str]] = {}
    for variant in variants:
        for name in (variant.name,) + variant.aliases:
            for key in {name, split_seed(name)[0]}:
                known.setdefault(key, set()).add(variant.name)
    for name in names:
        check_choice("variant", name, list(known))
    wanted = set().union(*(known[n] for n in names))
    return [v for v in variants if v.name in wanted]
