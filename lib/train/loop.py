"""The one training loop of every trained system (``vicegan``, ``fevgan``, ``reenact``): resume, progress bar,
stats, sample grids, learning probes with ``best.pt``, atomic checkpoints, the wall-time limit, SIGTERM and the
``train_done.json`` summary.  A system supplies a :class:`Trainee` (its networks, optimizers, sampler, random
streams and one training iteration).

Checkpoint layout (``checkpoint.pt``): each network's state dict under its name, ``optimizers``,
``sampler``, ``<name>_rng`` for each of the trainee's own random streams, ``rng`` (every global RNG), ``step``,
``elapsed``, ``best`` and the system's ``extra`` state; ``best.pt``: the trainee's ``best_state()`` (by default
the generator), ``step``, ``probe`` and the same ``extra``.
"""
from __future__ import annotations

import dataclasses
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from tqdm.auto import tqdm

from lib.config import ConfigError, check_choice, check_resumable, to_dict
from lib.io import atomic_write_json, load_checkpoint, open_run_log, read_json, read_jsonl, save_checkpoint
from lib.locks import own_run_folder
from lib.paths import TRAIN_DONE_FILE
from lib.train.options import ensure_resolved
from lib.train.gan_samples import sample_inputs, write_learning_curves, write_loss_curves, write_sample_grid
from lib.train.stopping import StopOnSignal
from lib.utils import global_rng_states, restore_global_rng_states

CHECKPOINT_NAME = "checkpoint.pt"
BEST_NAME = "best.pt"  # the generator of the best probe so far (lib.evaluation.learning_probes)
SNAPSHOTS = ("best", "latest")
# Options that may change between a run and its resumption (they do not alter the maths).
RESUME_MAY_CHANGE = ("steps", "time_limit_minutes", "checkpoint_every", "log_every", "sample_every", "device",
                     "num_threads", "compile_generator")


@dataclass
class RunSetup:
    """What :func:`training_run` prepared: the resolved config (image size from the cache), the run folder,
    the cache, the composition's training video ids and the validation ones (sample grids, probes; without them
    in training when the run probes); never a test subject's held-out video."""

    cfg: Any
    run_dir: Path
    cache: Any
    train_ids: Any
    validation_ids: Any


@contextmanager
def owned_run(cfg: Any, run_dir: str | Path, system: str | tuple[str, ...]) -> Iterator[tuple[Any, Path]]:
    """Resolve ``cfg`` (which must be of ``system``, or one of them) and hold ``run_dir``'s owner lock for the block
    (one writer per run folder); yields the resolved config and the folder."""
    cfg = ensure_resolved(cfg)
    if cfg.system not in ((system,) if isinstance(system, str) else system):
        raise ConfigError(f"this trainer is system={system!r}'s, got a config with system={cfg.system!r}")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with own_run_folder(run_dir):
        yield cfg, run_dir


def prepare_run(cfg: Any, cache: Any | None = None) -> tuple[Any, Any, Any, Any]:
    """(config with the cache's image size, cache, training ids, validation ids) of a resolved config: the
    composition's training videos, without the validation subjects' held-out ones when the run probes."""
    from lib.data.cache import load_cache
    from lib.data.splits import training_videos

    cache = cache if cache is not None else load_cache(cfg.cache_dir)
    train_ids, validation_ids = training_videos(cache, cfg.composition, hold_out=bool(cfg.probe_every))
    cfg = dataclasses.replace(cfg, image_size=cfg.image_size or int(cache.frames.shape[1]))
    if int(cache.frames.shape[1]) != cfg.image_size:
        raise ConfigError(f"image_size={cfg.image_size} but the cache holds {cache.frames.shape[1]}px frames")
    return cfg, cache, train_ids, validation_ids


@contextmanager
def training_run(cfg: Any, run_dir: str | Path, system: str | tuple[str, ...],
                 cache: Any | None = None) -> Iterator[RunSetup]:
    """:func:`owned_run` with the config's threads set and the cache loaded unless given (:func:`prepare_run`),
    for the block that trains."""
    with owned_run(cfg, run_dir, system) as (cfg, run_dir):
        if cfg.num_threads:
            torch.set_num_threads(int(cfg.num_threads))
        cfg, cache, train_ids, validation_ids = prepare_run(cfg, cache)
        yield RunSetup(cfg, run_dir, cache, train_ids, validation_ids)


@dataclass
class Trainee:
    """What the loop trains: ``model`` has ``generate(inputs, labels, seed)`` (samples, probes)."""

    model: Any
    networks: dict[str, torch.nn.Module]  # saved and restored by name (the generator under "generator")
    optimizers: dict[str, torch.optim.Optimizer]
    sampler: Any  # state_dict() / load_state_dict(): its RNG, so a resumed run draws the same batches
    train_step: Callable[[int], dict[str, float]]  # one iteration at the step count given -> the values to log
    label: str  # the progress bar's
    extra_state: dict[str, Any] = field(default_factory=dict)  # saved with every checkpoint and best.pt
    streams: dict[str, torch.Generator] = field(default_factory=dict)  # the system's own random streams
    trained: tuple[str, ...] | None = None  # the networks put in train mode (None: all; frozen ones stay as built)
    best_state: Callable[[], dict[str, Any]] | None = None  # what best.pt keeps (None: the generator)
    postfix: Callable[[dict[str, float]], dict[str, str]] | None = None  # the progress bar's values from a log
    summary: dict[str, Any] = field(default_factory=dict)  # added to train_done.json


def run_training(run: RunSetup, trainee: Trainee, progress: bool = True,
                 probe: Callable[[Any], dict[str, float]] | None = None) -> dict[str, Any]:
    """Train ``trainee`` in ``run`` to ``cfg.steps`` (or ``cfg.time_limit_minutes``), resuming from
    ``checkpoint.pt``."""
    cfg, run_dir = run.cfg, run.run_dir
    checkpoint = run_dir / CHECKPOINT_NAME
    networks, optimizers, model = trainee.networks, trainee.optimizers, trainee.model
    step, elapsed, best = 0, 0.0, None
    if checkpoint.is_file():
        state = load_checkpoint(checkpoint, fix=f"delete {checkpoint} to train this run from the start")
        check_resumable(state["config"], to_dict(cfg), checkpoint, RESUME_MAY_CHANGE)
        for name, network in networks.items():
            network.load_state_dict(state[name])
        for name, optimizer in optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
        trainee.sampler.load_state_dict(state["sampler"])
        for name, stream in trainee.streams.items():
            stream.set_state(state[f"{name}_rng"].cpu())
        restore_global_rng_states(state["rng"])
        step, elapsed, best = int(state["step"]), float(state["elapsed"]), state.get("best")
        print(f"resuming {run_dir} from step {step}")
    stats = open_run_log(cfg, run_dir, step)
    inputs = sample_inputs(run.cache, run.validation_ids, cfg, more_ids=run.train_ids)
    session_start, session_steps, step_seconds = time.time(), 0, 0.0
    time_limit = 60.0 * cfg.time_limit_minutes if cfg.time_limit_minutes else float("inf")

    def wall_seconds() -> float:
        return elapsed + time.time() - session_start

    def run_probe() -> None:
        nonlocal best
        started = time.perf_counter()
        metrics = probe(model)
        stats.write({"step": step, **{f"probe_{k}": v for k, v in metrics.items()},
                     "probe_seconds": time.perf_counter() - started, "elapsed_seconds": wall_seconds()})
        if best is None or metrics[cfg.best_criterion] > best["score"]:
            best = {"step": step, "score": metrics[cfg.best_criterion], "criterion": cfg.best_criterion,
                    "metrics": metrics}
            kept = trainee.best_state() if trainee.best_state else {"generator": model.generator.state_dict()}
            save_checkpoint(run_dir / BEST_NAME, {**kept, "step": step, "probe": metrics,
                                                  "extra": trainee.extra_state}, cfg)

    if cfg.probe_every and probe is None:
        print(f"note: probe_every={cfg.probe_every} but no probe was given (notebook 03 builds one): "
              "no learning probes and no best.pt for this run")
    for name, network in networks.items():
        if trainee.trained is None or name in trainee.trained:
            network.train()
    if probe is not None and cfg.probe_every and step == 0:  # where the curves start: the untrained generator
        run_probe()
    bar = tqdm(total=cfg.steps, initial=step, desc=trainee.label, disable=not progress)

    def save_state() -> None:
        save_checkpoint(checkpoint, {**{name: net.state_dict() for name, net in networks.items()},
                                     **{f"{name}_rng": stream.get_state() for name, stream in trainee.streams.items()},
                                     "step": step, "elapsed": wall_seconds(),
                                     "sampler": trainee.sampler.state_dict(), "rng": global_rng_states(),
                                     "best": best, "extra": trainee.extra_state,
                                     "optimizers": {k: o.state_dict() for k, o in optimizers.items()}}, cfg)

    with StopOnSignal() as stop:  # SIGTERM: finish this step, checkpoint, raise TrainingStopped
        while step < cfg.steps and wall_seconds() < time_limit:
            started = time.perf_counter()
            log = trainee.train_step(step)
            step_seconds += time.perf_counter() - started
            step, session_steps = step + 1, session_steps + 1
            bar.update(1)
            final = step == cfg.steps or wall_seconds() >= time_limit
            if step % cfg.log_every == 0 or final or stop.requested:
                stats.write({"step": step, **log, "seconds_per_iteration": step_seconds / session_steps})
                if trainee.postfix:
                    bar.set_postfix(trainee.postfix(log))
            if stop.requested:
                save_state()
                bar.close()
                raise stop.stopped(step, checkpoint)
            if step % cfg.sample_every == 0 or final:
                write_sample_grid(model, inputs, run_dir / "samples", step)
            if probe is not None and cfg.probe_every and (step % cfg.probe_every == 0 or final):
                run_probe()
            if step % cfg.checkpoint_every == 0 or final:
                save_state()
    bar.close()
    if cfg.steps == 0 and not checkpoint.is_file():  # an untrained generator (the templates prior), as it is
        write_sample_grid(model, inputs, run_dir / "samples", step)
        save_state()
    records = read_jsonl(run_dir / "stats.jsonl")
    learning_curves = write_learning_curves(records, run_dir / "learning_curves.png")
    loss_curves = write_loss_curves(records, run_dir / "loss_curves.png")  # None: no step (the templates prior)
    final = {k: v for k, v in (records[-1] if records else {}).items() if k != "time"}
    # each generator loss term's share over the last 20% of training (Oostveen Table 1), where the system logs them
    tail = [r for r in records if r["step"] > 0.8 * step] or records[-1:]
    share_keys = sorted({k for r in tail for k in r if k.startswith("share_")})
    summary = {"system": cfg.system, "steps": step, "wall_seconds": round(wall_seconds(), 2),
               "seconds_per_iteration": (step_seconds / session_steps if session_steps
                                         else final.get("seconds_per_iteration")),
               "final_losses": final,
               "loss_shares": {k: float(np.mean([r.get(k, 0.0) for r in tail])) for k in share_keys},
               "loss_shares_over_steps": [tail[0]["step"], step] if share_keys else None,
               "checkpoint": str(checkpoint), "samples": str(run_dir / "samples" / "latest.gif"),
               "loss_curves": str(loss_curves) if loss_curves else None,
               "learning_curves": str(learning_curves) if learning_curves else None, "best": best,
               "best_checkpoint": str(run_dir / BEST_NAME) if best else None, **trainee.summary,
               "config": to_dict(cfg)}
    atomic_write_json(run_dir / TRAIN_DONE_FILE, summary)
    return summary


def load_snapshot(run_dir: str | Path, snapshot: str, system_label: str) -> tuple[dict[str, Any], str]:
    """The state of ``best.pt`` (when there is one and ``snapshot="best"``) or of the latest checkpoint, and
    which one it was, e.g. ``"best (step 300)"``."""
    check_choice("snapshot", snapshot, SNAPSHOTS)
    run_dir = Path(run_dir)
    path, used = run_dir / CHECKPOINT_NAME, "latest"
    if snapshot == "best" and (run_dir / BEST_NAME).is_file():
        path, used = run_dir / BEST_NAME, "best"
    if not path.is_file():
        raise FileNotFoundError(f"no {system_label} checkpoint at {path}; train it with notebooks/03_train.ipynb "
                                f"(-p run_dir {run_dir})")
    state = load_checkpoint(path, fix=f"delete {path} and train the run again")
    return state, f"{used} (step {state.get('step')})"


def load_fitted(run_dir: str | Path, model_name: str, system: str) -> tuple[dict[str, Any], Any]:
    """(state, config) of a fitted system's model file in ``run_dir``; a missing one names how to fit it."""
    from lib.train.options import config_from_dict

    path = Path(run_dir) / model_name
    if not path.is_file():
        raise FileNotFoundError(f"no {system} model at {path}; fit it with notebooks/03_train.ipynb "
                                f"(-p system {system} -p run_dir {run_dir})")
    state = load_checkpoint(path, fix=f"delete {path} and run 03 again to refit it")
    return state, config_from_dict(state["config"])


@contextmanager
def fitted_run(cfg: Any, run_dir: str | Path, system: str, model_name: str, cache: Any | None,
               probe: Callable[[Any], dict[str, float]] | None) -> Iterator[Any]:
    """The run folder of a system that is fitted, not trained (``latent-walk``, ``landmark-warp``), owned for the
    ``with`` block (:func:`owned_run`).  Yields a :class:`FittedRun`: for a finished folder with its ``summary``
    read back (nothing to fit), else one whose ``finish(state, generator, extra)`` writes ``config.json``,
    ``model_name``, the sample grid, one probe in ``stats.jsonl`` (with ``probe``) and ``train_done.json``."""
    from lib.data.cache import load_cache
    from lib.data.splits import training_videos
    from lib.utils import seed_everything

    with owned_run(cfg, run_dir, system) as (cfg, run_dir):
        done = run_dir / TRAIN_DONE_FILE
        if done.is_file() and (run_dir / model_name).is_file():
            yield FittedRun(cfg, run_dir, model_name, None, (), (), probe, summary=read_json(done))
            return
        seed_everything(cfg.seed)
        cache = cache if cache is not None else load_cache(cfg.cache_dir)
        # the validation subjects' held-out videos stay out of the fit when a probe scores it on them
        train_ids, validation_ids = training_videos(cache, cfg.composition, hold_out=probe is not None)
        yield FittedRun(cfg, run_dir, model_name, cache, train_ids, validation_ids, probe)


@dataclass
class FittedRun:
    """What :func:`fitted_run` prepared; ``summary`` is set once the folder is finished."""

    cfg: Any
    run_dir: Path
    model_name: str
    cache: Any
    train_ids: Any
    validation_ids: Any
    probe: Callable[[Any], dict[str, float]] | None
    summary: dict[str, Any] | None = None
    started: float = field(default_factory=time.time)

    def finish(self, state: dict[str, Any], generator: Any, extra: dict[str, Any]) -> dict[str, Any]:
        from lib.io import StatsWriter, save_config

        cfg, run_dir = self.cfg, self.run_dir
        save_config(cfg, run_dir / "config.json")
        save_checkpoint(run_dir / self.model_name, {**state, "step": 0}, cfg)
        inputs = sample_inputs(self.cache, self.validation_ids, cfg, more_ids=self.train_ids)
        samples = write_sample_grid(generator, inputs, run_dir / "samples", 0)
        fit_seconds = time.time() - self.started
        best = None
        if self.probe is not None:
            metrics = self.probe(generator)
            StatsWriter(run_dir / "stats.jsonl").write({"step": 0, **{f"probe_{k}": v for k, v in metrics.items()},
                                                        "elapsed_seconds": time.time() - self.started})
            best = {"step": 0, "score": metrics[cfg.best_criterion], "criterion": cfg.best_criterion,
                    "metrics": metrics}
        self.summary = {"system": cfg.system, "steps": 0, "wall_seconds": round(fit_seconds, 2),
                        "seconds_per_iteration": None, "final_losses": {}, "loss_shares": {},
                        "loss_shares_over_steps": None, "checkpoint": str(run_dir / self.model_name),
                        "samples": str(samples), "loss_curves": None, "learning_curves": None, "best": best,
                        "best_checkpoint": None, **extra, "config": to_dict(cfg)}
        atomic_write_json(run_dir / TRAIN_DONE_FILE, self.summary)
        return self.summary
