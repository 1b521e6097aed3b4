"""What 03 trains is a system (``lib.train.systems``) and its options: one dataclass per system, each declaring its own
options next to its code, on top of the options every run shares (:class:`RunOptions`).

- :class:`RunOptions`: the data, the schedule, the seed, the device and the learning probes; 03's parameters cell
  shows the ones marked ``cell``.
- :class:`AutoencoderOptions` (02's autoencoder), :class:`EncoderOptions` (a content / identity encoder) and
  :class:`NetworkOptions` (networks trained by Adam), :class:`ConsistencyOptions` (a content-consistency loss),
  :class:`SourceFrameOptions` (the input frame a system draws from):
  groups that several systems declare by inheriting them.
- Each system's class (``VICEGANOptions`` in :mod:`lib.train.gan_config`, ``FEVGANOptions`` in
  :mod:`lib.train.fevgan`, ...) adds its own fields, its checks (``check``) and its run name (``describe``).

:func:`make_config` resolves a config once: the class's defaults, then the preset's values (:data:`PRESETS`), then
values that follow from others (a recipe's values, the consistency scale of an encoder), then what the user gave.
A parameter given as ``None`` is left to those steps; an option the system does not have fails, naming the ones it
has.  The resolved config is saved whole in the run folder (``config.json``, every checkpoint).
:func:`resolve_config` then finds the files it needs (cache, autoencoder, FaceNet weights).
"""
from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from lib.config import ConfigError, check_choice, check_positive, check_types, from_dict
from lib.constants import CLIP_STRIDE, PRESET_NAMES, VIDEO_LENGTH
from lib.data.splits import COMPOSITIONS
from lib.models.encoders import CONTENT_ENCODERS
from lib.utils import DEVICES

# Named criteria for the best snapshot (higher is better), computed from a probe's metrics.
BEST_CRITERIA = ("headline", "ssim", "cas_trained", "cas_truth", "verif_truth", "verif_dlib")
CONSISTENCY_LOSSES = ("mse", "cosine")
FACENET_WEIGHT_MODES = ("train", "random")  # besides a file path
SOURCE_FRAMES = ("first", "neutral")  # the input frame that reenact and the latent walk draw from

# Per preset: sizes and schedules, each taken by the systems that have the field.  paper = thesis 5.2 (batches
# 32/32, checkpoint every 10k, ~60k steps, full widths, FaceNet at 160px).  small = one variant in 80-100 s on one
# CPU core (0.47-0.57 s per iteration with two variants on the two cores): narrow networks, small batches, FaceNet
# at 80px (its smallest comfortable input) with the consistency loss on 4 of the 16 frames.  tiny = a few steps
# for tests.
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(steps=4, image_batch=4, video_batch=2, checkpoint_every=2, log_every=1, sample_every=4,
                 width=0.125, facenet_input_size=80, consistency_frames=2, identity_steps=4, identity_batch=8,
                 n_sample_subjects=2, probe_every=0, neutraliser_steps=4),
    "small": dict(steps=150, image_batch=8, video_batch=4, checkpoint_every=50, log_every=10, sample_every=75,
                  width=0.25, facenet_input_size=80, consistency_frames=4, identity_steps=80, identity_batch=16,
                  n_sample_subjects=3, probe_every=250, neutraliser_steps=1500),
    "paper": dict(steps=60000, image_batch=32, video_batch=32, checkpoint_every=10000, log_every=100,
                  sample_every=5000, width=1.0, facenet_input_size=160, consistency_frames=16,
                  identity_steps=20000, identity_batch=64, n_sample_subjects=4,
                  probe_every=5000, neutraliser_steps=5000),
}

# Default consistency scale per (encoder, loss), sized so the scaled term starts at a few tens, like the thesis's
# 44 at the start of training (Oostveen 4.1).  FaceNet codes are unit vectors, so per-element MSE is ~1e-3:
# Oostveen's 10000 (MSE) and 2000 (cosine distance).  Autoencoder codes are unnormalised 50-d vectors: measured on
# the 02 autoencoder, the MSE between real codes and codes of an untrained generator's frames is ~6 and the cosine
# distance ~0.66, hence 5 and 50.
DEFAULT_CONSISTENCY_SCALE = {("facenet", "mse"): 10000.0, ("facenet", "cosine"): 2000.0,
                             ("ae", "mse"): 5.0, ("ae", "cosine"): 50.0, ("none", "mse"): 0.0,
                             ("none", "cosine"): 0.0}

# Where a run is written is not an option: 03 takes these beside the options (name -> (default, help)).
RUN_LOCATION_PARAMETERS: dict[str, tuple[Any, str]] = {
    "run_name": (None, "None: a new numbered folder under papermill_runs/03_train/"),
    "run_dir": (None, "explicit run folder (the sweep runner sets it)"),
}


def option(default: Any, help: str, choices: tuple | None = None, cell: bool = False, given: bool = True) -> Any:
    """A field with its one-line help and choices: the single declaration that 03's parameters, the grids,
    validation and docs read.  ``cell``: shown in 03's parameters cell; ``given=False``: filled in by
    :func:`resolve_config` or the trainer, never a parameter."""
    return field(default=default, metadata={"help": help, "choices": choices, "cell": cell, "given": given})


@dataclass
class RunOptions:
    """The options of every run, whatever the system."""

    system: str = option("vicegan", "what is trained (lib/train/systems.py; each system's own options: "
                                    "lib.train.options.system_options)", cell=True)
    preset: str = option("small", "tiny | small | paper: sizes and schedules (lib.train.options.PRESETS)",
                         PRESET_NAMES, cell=True)
    composition: str = option("seen", "Seen/Unseen training composition (thesis 4.2)", COMPOSITIONS, cell=True)
    cache_dir: str | None = option(None, "None: the cache 01_preprocess recorded for the preset", cell=True)
    steps: int = option(150, "training steps", cell=True)
    time_limit_minutes: float | None = option(None, "also stop after this much wall time, resumes included (None: no "
                                                    "limit; the step reached then depends on the machine)", cell=True)
    seed: int = option(0, "every random draw of the run follows it", cell=True)
    device: str = option("auto", "auto | cpu | cuda | cuda:N", cell=True)
    num_threads: int | None = option(None, "torch CPU threads (the sweep runner sets 1 when it runs two at once)",
                                     cell=True)
    probe_every: int = option(250, "learning probes every N steps (0 = none)", cell=True)
    probe_pairs: int = option(24, "held-out pairs each probe generates and scores", cell=True)
    best_criterion: str = option("headline", "what best.pt maximises", BEST_CRITERIA, cell=True)
    checkpoint_every: int = option(50, "checkpoint every N steps")
    log_every: int = option(10, "log the losses every N steps")
    sample_every: int = option(75, "write the sample grid every N steps")
    n_sample_subjects: int = option(3, "columns of the sample grid")
    video_length: int = option(VIDEO_LENGTH, "frames per video", given=False)
    every_nth: int = option(CLIP_STRIDE, "clip frame stride", given=False)
    image_size: int | None = option(None, "the cache's frame size", given=False)

    @classmethod
    def derived(cls, values: dict[str, Any]) -> dict[str, Any]:
        """Values that follow from others (``values``: the defaults, the preset's and what the user gave), which the
        user's values then override."""
        return values

    @classmethod
    def fixed(cls, values: dict[str, Any]) -> dict[str, Any]:
        """Values the system sets whatever is given (a training-free system has no steps)."""
        return values

    def check(self) -> None:
        """This system's checks beyond types and choices (raise ConfigError)."""
        for name in ("checkpoint_every", "log_every", "sample_every", "n_sample_subjects", "probe_pairs"):
            check_positive(name, getattr(self, name))
        check_positive("steps", self.steps, allow_zero=True)  # 0: an untrained generator (a baseline)
        check_positive("probe_every", self.probe_every, allow_zero=True)
        check_choice("device", self.device if not str(self.device).startswith("cuda:") else "cuda", DEVICES)
        for name in ("time_limit_minutes", "num_threads"):
            if getattr(self, name) is not None:
                check_positive(name, getattr(self, name))

    def describe(self) -> str:
        """A readable run-folder suffix, e.g. ``landmark-warp-seen``."""
        return f"{self.system}-{self.composition}"

    def needs_autoencoder(self) -> bool:
        return False


@dataclass
class AutoencoderOptions(RunOptions):
    """Systems that read 02's autoencoder."""

    autoencoder: str | None = option(None, "None: the selected one; or an autoencoder name or checkpoint path")
    autoencoder_checkpoint: str | None = option(None, "resolved autoencoder checkpoint", given=False)

    def needs_autoencoder(self) -> bool:
        return True


@dataclass
class EncoderOptions(AutoencoderOptions):
    """Systems with a content (or identity) encoder: 02's autoencoder, FaceNet, or none."""

    encoder: str = option("ae", "content encoder: ae (02's selected autoencoder) | facenet | none (MoCoGAN)",
                          CONTENT_ENCODERS)
    facenet_weights: str | None = option(None, 'None: local VGGFace2 file if found, else "train"; or a path, "random"')
    facenet_input_size: int = option(80, "FaceNet input size")
    facenet_weights_path: str | None = option(None, "resolved FaceNet weights file", given=False)

    def check(self) -> None:
        super().check()
        check_positive("facenet_input_size", self.facenet_input_size)
        weights = self.facenet_weights
        if (weights is not None and weights not in FACENET_WEIGHT_MODES
                and not str(weights).endswith((".pt", ".pth")) and not Path(str(weights)).expanduser().is_file()):
            raise ConfigError(f"invalid facenet_weights={weights!r}; valid: None, 'train', 'random' or a .pt/.pth path")

    def needs_autoencoder(self) -> bool:
        return self.encoder == "ae"


@dataclass
class NetworkOptions:
    """Networks trained by Adam, in batches."""

    learning_rate: float = option(2e-4, "Adam learning rate (the generator's)")
    image_batch: int = option(8, "frames per batch")
    video_batch: int = option(4, "clips per batch")
    width: float = option(0.25, "network width factor (1 = the paper's)")
    beta1: float = option(0.5, "Adam beta1")
    beta2: float = option(0.999, "Adam beta2")

    def check(self) -> None:
        super().check()  # type: ignore[misc]  (a mixin: the next class in the MRO checks the rest)
        for name in ("learning_rate", "image_batch", "video_batch", "width"):
            check_positive(name, getattr(self, name))


@dataclass
class ConsistencyOptions:
    """A content-consistency loss: the encoder's codes of the generated frames against the input's."""

    consistency_loss: str = option("mse", "content-consistency distance", CONSISTENCY_LOSSES)
    consistency_scale: float = option(5.0, "None: the default for the encoder and loss (0 drops the term)")
    consistency_frames: int = option(4, "frames per clip in the consistency loss")

    @classmethod
    def derived(cls, values: dict[str, Any]) -> dict[str, Any]:
        values = super().derived(values)  # type: ignore[misc]
        key = (values["encoder"], values["consistency_loss"])  # a bad name is reported by validate
        values["consistency_scale"] = DEFAULT_CONSISTENCY_SCALE.get(key, values["consistency_scale"])
        return values

    def check(self) -> None:
        super().check()  # type: ignore[misc]
        check_positive("consistency_scale", self.consistency_scale, allow_zero=True)
        if not 1 <= self.consistency_frames <= self.video_length:  # type: ignore[attr-defined]
            raise ConfigError(f"consistency_frames must be in 1..{self.video_length}")  # type: ignore[attr-defined]


@dataclass
class SourceFrameOptions:
    """Systems that draw every frame from one input frame (reenact, the latent walk)."""

    source_frame: str = option("first", "the input frame every frame is drawn from: first (the input clip's first "
                                        "frame: the papers') | neutral (the clip's frame closest to the training "
                                        "takes' mean first frame: our option)", SOURCE_FRAMES)


def system_of(params: Mapping[str, Any]) -> str:
    """The system a set of parameters or a stored config names (RunOptions' default when it names none)."""
    return params.get("system") or _fields(RunOptions)["system"].default


def options_class(system: str) -> type[RunOptions]:
    """The options dataclass a system declares (its registry entry in :mod:`lib.train.systems`)."""
    from lib.train.systems import SYSTEM_NAMES, SYSTEMS

    check_choice("system", system, SYSTEM_NAMES)
    entry = SYSTEMS[system]
    return getattr(importlib.import_module(entry.module), entry.options)


def _fields(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def cell_options() -> list[dataclasses.Field]:
    """The options in 03's parameters cell: the shared ones marked ``cell``."""
    return [f for f in dataclasses.fields(RunOptions) if f.metadata["cell"]]


def system_options(system: str) -> dict[str, Any]:
    """name -> default of the options ``system`` takes as parameters besides the cell's (``-p name value``)."""
    cell = {f.name for f in cell_options()}
    return {name: f.default for name, f in _fields(options_class(system)).items()
            if f.metadata["given"] and name not in cell}


def make_config(**params: Any) -> RunOptions:
    """The resolved options of ``params['system']`` (default ``vicegan``); see the module docstring."""
    system = system_of(params)
    cls = options_class(system)
    fields = _fields(cls)
    unknown = sorted(set(params) - set(fields))
    if unknown:
        takes = sorted(name for name, f in fields.items() if f.metadata["given"])
        raise ConfigError(f"system {system!r} has no options {unknown}; its options: {', '.join(takes)}")
    given = {name: value for name, value in params.items() if value is not None}
    preset = check_choice("preset", given.get("preset", fields["preset"].default), PRESET_NAMES)
    values = {name: f.default for name, f in fields.items()}
    values.update({name: value for name, value in PRESETS[preset].items() if name in fields})
    values.update(given)  # derived values read the user's choices (encoder, recipe...)
    values = cls.derived(values)
    values = cls.fixed({**values, **given})
    return validate(cls(**{**values, "system": system}))


def validate(cfg: RunOptions) -> RunOptions:
    """Check every field's type, named choice and number before any work (raises ConfigError listing choices)."""
    check_types(cfg)
    for item in dataclasses.fields(cfg):
        if item.metadata.get("choices"):
            check_choice(item.name, getattr(cfg, item.name), item.metadata["choices"])
    cfg.check()
    return cfg


def config_from_dict(data: dict[str, Any]) -> RunOptions:
    """A config from a stored one (``config.json``, a checkpoint's ``config``), of the class of its system; the
    stored format version is checked where the file is read (:func:`lib.io.check_format`)."""
    data = {k: v for k, v in data.items() if k not in ("class", "format_version")}
    return from_dict(options_class(system_of(data)), data)


def resolve_config(cfg: RunOptions) -> RunOptions:
    """Validate and find the files the config needs; raises naming the notebook to run first."""
    validate(cfg)
    from lib.data.locate import find_cache  # raises FileNotFoundError: run 01_preprocess

    values: dict[str, Any] = {"cache_dir": str(Path(cfg.cache_dir) if cfg.cache_dir else find_cache(cfg.preset))}
    if not Path(values["cache_dir"]).exists():
        raise FileNotFoundError(f"preprocessed cache not found: {values['cache_dir']}; run "
                                f"notebooks/01_preprocess.ipynb with preset={cfg.preset!r} first")
    if cfg.needs_autoencoder():
        values["autoencoder_checkpoint"] = str(find_autoencoder_checkpoint(cfg.preset, cfg.autoencoder,
                                                                           cfg.composition))
    if getattr(cfg, "encoder", None) == "facenet":
        values["facenet_weights"], values["facenet_weights_path"] = resolve_facenet_weights(cfg.facenet_weights)
    return dataclasses.replace(cfg, **values)


def is_resolved(cfg: RunOptions) -> bool:
    """Whether ``cfg`` came out of :func:`resolve_config`: its cache and the files it needs are found."""
    return (cfg.cache_dir is not None and (not cfg.needs_autoencoder() or cfg.autoencoder_checkpoint is not None)
            and (getattr(cfg, "encoder", None) != "facenet" or cfg.facenet_weights is not None))


def ensure_resolved(cfg: RunOptions) -> RunOptions:
    """``cfg`` as it is when already resolved (validated once, where it was resolved), else resolved now."""
    return cfg if is_resolved(cfg) else resolve_config(cfg)


def find_autoencoder_checkpoint(preset: str, autoencoder: str | None, composition: str = "unseen") -> Path:
    """``None`` = the selected autoencoder of ``preset`` for a GAN of ``composition``; an autoencoder
    name; or a checkpoint path.  An unseen GAN refuses an autoencoder trained on the seen composition
    (it has seen the test subjects)."""
    if autoencoder is not None and str(autoencoder).endswith((".pt", ".pth")):
        path = Path(autoencoder).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"autoencoder checkpoint not found: {path}")
        return _check_autoencoder_composition(path, composition)
    if autoencoder is not None:
        from lib.models.autoencoders import AUTOENCODERS

        check_choice("autoencoder", autoencoder, AUTOENCODERS)
    from lib.train.autoencoders import find_selected_autoencoder

    hint = f"this system needs a trained autoencoder: run notebooks/02_autoencoders.ipynb with preset={preset!r} first"
    try:
        path = Path(find_selected_autoencoder(preset, name=autoencoder, composition=composition))
    except FileNotFoundError as error:
        raise FileNotFoundError(f"{error}\n{hint}") from error
    if not path.is_file():
        raise FileNotFoundError(f"autoencoder checkpoint not found: {path}; {hint}")
    return _check_autoencoder_composition(path, composition)


def _check_autoencoder_composition(path: Path, composition: str) -> Path:
    if composition != "unseen":  # a seen variant may use either autoencoder: nothing to read
        return path
    from lib.io import load_checkpoint

    trained_on = load_checkpoint(path).get("config", {}).get("composition", "unseen")  # older: training subjects
    if trained_on != "unseen":
        raise ConfigError(f"{path} was trained on the {trained_on} composition, which includes test subjects; "
                          "an unseen variant needs an autoencoder of the unseen composition (02 with "
                          "composition='unseen', the default)")
    return path


def resolve_facenet_weights(weights: str | None) -> tuple[str, str | None]:
    """(facenet_weights, weights file or None): the local VGGFace2 file when found, else "train"."""
    from lib.models.encoders import default_facenet_weights_path

    if weights is None:
        local = default_facenet_weights_path()
        if local.is_file():
            return str(local), str(local)
        print(f"*** No FaceNet VGGFace2 weights at {local} (offline). FaceNet will be TRAINED as an identity "
              "embedder on the training subjects (facenet_weights='train'); put the file there to use them. ***")
        return "train", None
    if weights in FACENET_WEIGHT_MODES:
        return weights, None
    path = Path(weights).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"FaceNet weights file not found: {path}; give an existing file, or "
                                "facenet_weights='train' / 'random'")
    return str(path), str(path)


def _cell_entries() -> list[tuple[str, str, Any, str]]:
    """(name, type, default, help) of 03's parameters cell: the run location, the shared options, the display."""
    from lib.display import DISPLAY_PARAMETERS
    from lib.train.systems import SYSTEM_NAMES

    entries = [(name, "str | None", default, text) for name, (default, text) in RUN_LOCATION_PARAMETERS.items()]
    for f in cell_options():
        text = f.metadata["help"]
        if f.name == "system":
            text = f"{' | '.join(SYSTEM_NAMES)}: {text}"
        if any(f.name in values for values in PRESETS.values()):  # the preset's value unless given
            entries.append((f.name, f"{f.type} | None", None, f"None: the preset's; {text}"))
        else:
            entries.append((f.name, f.type, f.default, text))
    entries += [(name, type(default).__name__, default, text) for name, (default, text) in DISPLAY_PARAMETERS.items()]
    return entries


def notebook_parameters() -> dict[str, Any]:
    """03_train's parameters cell (name -> default), in declaration order, run location and display included."""
    return {name: default for name, _, default, _ in _cell_entries()}


def parameters_cell() -> str:
    """The source of 03_train's ``parameters`` cell (annotated: lib.notebook_parameters checks types)."""
    entries = _cell_entries()
    lines = [f"{name}: {annotation} = {default!r}" for name, annotation, default, _ in entries]
    width = max(map(len, lines)) + 2
    return "\n".join(f"{line:<{width}}# {text}" for line, (*_, text) in zip(lines, entries))


def config_from_notebook(namespace: dict[str, Any]) -> RunOptions:
    """03's config: the parameters cell's options, plus the system's own options papermill injected (``-p``)."""
    from lib.notebook_parameters import injected_names

    names = [f.name for f in cell_options()]
    extra = injected_names(list(namespace.get("In", []))) - set(notebook_parameters())
    return make_config(**{name: namespace[name] for name in (*names, *sorted(extra))})
