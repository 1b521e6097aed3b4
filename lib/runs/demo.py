"""The one-command pipelines: ``make demo``, ``make reproduce`` and ``make figures``.

``python -m lib.runs.demo --plan demo --preset small`` runs, in order and resumably:
01_preprocess (synthetic data at the preset), 02_autoencoders (the six autoencoders on the training
subjects, then the selected architecture again under the seen composition, for the seen GAN
variants), the plan's grid through the sweep runner (03_train per variant, 2 at a time) with the
plan's recipe, seeds and step count, 05_evaluate; then writes every figure into figures/ and prints
a summary.  Each executed notebook lands in ``papermill_runs/<notebook>/<plan>-<preset>/`` (the
grid's in ``papermill_runs/<grid>-<preset>[-<recipe>]/``), so a second call skips what is finished
and resumes what is not.  Plans (:data:`PLANS`): ``demo`` (what ``make demo`` runs) and
``reproduce`` (every grid, three seeds: hours).

``--figures-only`` redraws every figure from the existing results without training.
A stage whose notebook does not exist yet is skipped with a message.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping

from lib.config import ConfigError, check_choice
from lib.constants import PRESET_NAMES
from lib.io import atomic_write_json, read_json
from lib.paths import figures_dir, notebooks_dir, runs_dir
from lib.runs.notebooks import execute_notebook
from lib.runs.runner import grid_dir, run_evaluation_notebook, run_grid

STEP_MARKER = "demo_step.json"  # written beside an executed notebook once it succeeded


@dataclasses.dataclass(frozen=True)
class Plan:
    """What one pipeline command trains: ``grid`` with ``recipe`` (once per seed of ``seeds``), with
    03 ``training`` overrides per preset (absent preset: the preset's own values)."""

    name: str
    grid: str
    recipe: str
    seeds: tuple[int, ...] | None
    training: dict[str, dict[str, Any]]
    description: str


PLANS: dict[str, Plan] = {
    # The headline variant, its unseen twin, the templates prior of both compositions, MoCoGAN and the latent
    # walk, fast recipe; 400 steps at `small` (about 6.5 minutes a VICE-GAN run, two at a time on one thread
    # each) keep `make demo` near 30 minutes on a 2-core CPU; validation probes (dlib included) every 200 steps.
    "demo": Plan("demo", "demo", "fast", None, {"small": {"steps": 400, "probe_every": 200}},
                 "thesis model 4 seen and unseen + the templates prior + MoCoGAN + the latent walk, fast recipe"),
    # The learning issue's bar runs: the headline variant and its unseen twin, 30 minutes of training each
    # (two at a time on one thread each), validation probes every 250 steps; 05 then evaluates them beside the
    # demo's baselines on 96 pairs (docs/reproduce.md).
    "headline": Plan("headline", "headline", "fast", None,
                     {"small": {"steps": 100000, "time_limit_minutes": 30.0, "probe_every": 250}},
                     "thesis model 4 seen and unseen, 30 minutes of training each, fast recipe"),
    # Every variant of every grid, three seeds, 2,000 steps each at `small` (about 15 minutes a VICE-GAN
    # run alone on two cores, 23 two at a time; FaceNet ones slower; FEV-GAN about 13 minutes on one
    # thread; reenact about 9 minutes on two (0.27 s an iteration); the latent walk seconds): 78 runs, about
    # 18 hours on this CPU (an estimate from per-iteration times; not run end to end).
    "reproduce": Plan("reproduce", "all", "fast", (0, 1, 2), {"small": {"steps": 2000}},
                      "every grid's variants x seeds 0, 1, 2, fast recipe"),
}
PLAN_NAMES = tuple(PLANS)


def run_name(plan: str, preset: str) -> str:
    return f"{plan}-{preset}"


def demo_run_name(preset: str) -> str:
    return run_name("demo", preset)


def stage_dir(notebook_stem: str, preset: str, plan: str = "demo") -> Path:
    return runs_dir() / notebook_stem / run_name(plan, preset)


def evaluation_dir(preset: str, plan: str = "demo") -> Path:
    return stage_dir("05_evaluate", preset, plan)


def _say(message: str) -> None:
    print(f"[demo {time.strftime('%H:%M:%S')}] {message}", flush=True)


def _missing(notebook: Path) -> bool:
    if notebook.is_file():
        return False
    _say(f"SKIPPED {notebook.name}: {notebook} does not exist yet")
    return True


def _still_valid(check: Callable[[], Any] | None) -> bool:
    if check is None:
        return True
    try:
        check()
        return True
    except Exception:  # the outputs were deleted since: run the stage again
        return False


def run_stage(stem: str, preset: str, parameters: Mapping[str, Any],
              outputs_exist: Callable[[], Any] | None = None, verbose: bool = False, name: str | None = None) -> bool:
    """Run ``notebooks/<stem>.ipynb`` once into ``papermill_runs/<stem>/<name or demo-<preset>>/``.

    Skipped when its marker says it finished with these parameters and ``outputs_exist()``
    does not raise.  Returns False when the notebook does not exist.
    """
    notebook = notebooks_dir() / f"{stem}.ipynb"
    if _missing(notebook):
        return False
    out_dir = runs_dir() / stem / (name or demo_run_name(preset))
    marker = out_dir / STEP_MARKER
    parameters = dict(parameters)
    if marker.is_file() and read_json(marker).get("parameters") == parameters and _still_valid(outputs_exist):
        _say(f"{stem}: already done ({out_dir}), skipped")
        return True
    _say(f"{stem}: running with {parameters} ...")
    started = time.time()
    try:
        execute_notebook(notebook, out_dir, parameters, log_output=verbose)
    except Exception as error:
        raise RuntimeError(f"{stem} failed; read the executed notebook {out_dir / notebook.name}\n{error}") from error
    atomic_write_json(marker, {"parameters": parameters, "wall_s": round(time.time() - started, 1)})
    _say(f"{stem}: done in {time.time() - started:.0f} s")
    return True


def _cache_exists(preset: str) -> Callable[[], Any]:
    def check():
        from lib.data.locate import find_cache
        return find_cache(preset)
    return check


def _autoencoder_exists(preset: str, composition: str = "unseen") -> Callable[[], Any]:
    def check():
        from lib.train.autoencoders import selection_pointer_path

        pointer = selection_pointer_path(preset, composition)
        if not pointer.is_file() or not Path(read_json(pointer)["checkpoint"]).exists():
            raise FileNotFoundError(pointer)
    return check


def _selected_autoencoder_name(preset: str) -> str | None:
    from lib.train.autoencoders import selection_pointer_path

    pointer = selection_pointer_path(preset)
    return read_json(pointer)["name"] if pointer.is_file() else None


def draw_figures(preset: str, plan: str = "demo") -> list[Path]:
    """Every report figure, redrawn into figures/ from 05's results of the plan's run."""
    results = evaluation_dir(preset, plan)
    if not (results / "results.csv").is_file():
        raise FileNotFoundError(f"no results at {results / 'results.csv'}; run `make {plan} PRESET={preset}` "
                                "(or notebooks/05_evaluate.ipynb) first")
    from lib.evaluation.figures import draw_all_figures

    paths = draw_all_figures(results, figures_dir=figures_dir())
    _say(f"{len(paths)} figures in {figures_dir()}")
    return paths


def print_summary(preset: str, timings: Mapping[str, float], plan: Plan) -> None:
    from lib.runs.runner import grid_status

    print("\n=== training runs ===")
    if grid_dir(plan.grid, preset, plan.recipe).is_dir():
        table = grid_status(plan.grid, preset, recipe=plan.recipe, seeds=plan.seeds)
        print(table.drop(columns=["run_dir"]).to_string(index=False))
    print("\n=== results ===")
    for name in ("results.md", "results_by_variant.md"):
        summary = evaluation_dir(preset, plan.name) / name
        print(summary.read_text() if summary.is_file() else "(no results yet)" if name == "results.md" else "")
    print("=== wall time per stage ===")
    for stage, seconds in timings.items():
        print(f"{stage:>16}: {seconds:7.0f} s")
    print(f"runs in {runs_dir()}, figures in {figures_dir()}")


def main(preset: str = "small", figures_only: bool = False, parallel: int = 2, verbose: bool = False,
         plan: str = "demo") -> int:
    """Run a plan (see module doc); returns a process exit code (1 if any variant failed)."""
    check_choice("preset", preset, PRESET_NAMES)
    check_choice("plan", plan, PLAN_NAMES)
    chosen = PLANS[plan]
    if figures_only:
        draw_figures(preset, plan)
        return 0
    name = run_name(plan, preset)
    timings: dict[str, float] = {}

    def timed(stage: str, action: Callable[[], Any]) -> Any:
        started = time.time()
        try:
            return action()
        finally:
            timings[stage] = time.time() - started

    timed("01_preprocess", lambda: run_stage("01_preprocess", preset, {"preset": preset},
                                             _cache_exists(preset), verbose, name))
    timed("02_autoencoders", lambda: run_stage("02_autoencoders", preset, {"preset": preset, "run_name": name},
                                               _autoencoder_exists(preset), verbose, name))
    selected = _selected_autoencoder_name(preset)
    if selected is not None:  # the seen variants' autoencoder: the selected architecture, seen composition
        seen = f"{name}-seen"
        timed("02 (seen)", lambda: run_stage(
            "02_autoencoders", preset, {"preset": preset, "run_name": seen, "composition": "seen",
                                        "variants": selected},
            _autoencoder_exists(preset, "seen"), verbose, seen))
    timed("instruments", lambda: prepare_instruments(preset))
    failed = 0
    finished: list[str] = []
    if not _missing(notebooks_dir() / "03_train.ipynb"):
        _say(f"training the {chosen.grid!r} grid at {preset!r} with the {chosen.recipe!r} recipe"
             f"{f', seeds {list(chosen.seeds)}' if chosen.seeds else ''}, {parallel} variants at a time ...")
        status = timed("03_train (grid)", lambda: run_grid(
            chosen.grid, preset, recipe=chosen.recipe, seeds=chosen.seeds, parallel=parallel, steps=["train"],
            overrides=chosen.training.get(preset, {})).status)
        finished = [p for p, s in zip(status["run_dir"], status["state"]) if s == "done"]
        failed = int((status["state"] == "failed").sum())
        if failed:
            _say(f"{failed} variant(s) failed; their errors are in status.json (table below)")
    if finished and not _missing(notebooks_dir() / "05_evaluate.ipynb"):
        evaluated_now = timed("05_evaluate", lambda: _evaluate(preset, finished, verbose, plan))
        if not evaluated_now:  # 05 draws every figure when it runs; otherwise redraw them from its results
            timed("figures", lambda: draw_figures(preset, plan))
    elif not finished:
        _say("no finished training run: evaluation and figures skipped")
    print_summary(preset, timings, chosen)
    return 1 if failed else 0


def prepare_instruments(preset: str) -> None:
    """Train (or load) the measuring instruments that the learning probes and 05 share, and the input
    neutraliser the VICE-GAN runs share, with every core, before the trainings ask for them two at a time (one
    would train them while the other waits)."""
    from lib.data.cache import load_cache
    from lib.data.locate import find_cache
    from lib.evaluation.emotion import build_classifiers
    from lib.evaluation.extractors import build_extractor
    from lib.evaluation.learning_probes import PROBE_CLASSIFIERS

    cache = load_cache(find_cache(preset))
    _say(f"instruments: {', '.join(PROBE_CLASSIFIERS)} classifiers and the truth extractor for {preset!r} ...")
    _, skipped = build_classifiers(PROBE_CLASSIFIERS, cache, preset)
    for name, reason in skipped.items():
        _say(f"instruments: {name} skipped ({reason})")
    if getattr(cache, "identities", None):
        build_extractor("truth", cache, preset=preset)
    # the input neutraliser that every VICE-GAN run of the fast recipe shares: trained here with every core
    from lib.train.options import PRESETS
    from lib.train.neutraliser import neutraliser_for

    _say("input neutraliser of the fast recipe ...")
    neutraliser_for(cache, find_cache(preset), PRESETS[preset]["neutraliser_steps"])
    # the training videos' landmarks (the flow's landmark loss), once, before two runs would compute them each
    import numpy as np

    from lib.data.landmarks import cache_landmarks
    from lib.data.splits import COMPOSITIONS, training_videos

    _say("dlib landmarks of the training videos ...")
    cache_landmarks(cache, find_cache(preset), video_ids=np.unique(np.concatenate(
        [training_videos(cache, composition)[0] for composition in COMPOSITIONS])))


def _evaluate(preset: str, finished: list[str], verbose: bool, plan: str = "demo") -> bool:
    """05 over the finished runs, unless it already evaluated exactly these runs; True if it ran."""
    out_dir = evaluation_dir(preset, plan)
    marker = out_dir / STEP_MARKER
    if (marker.is_file() and read_json(marker).get("runs") == sorted(finished)
            and (out_dir / "results.csv").is_file()):
        _say(f"05_evaluate: these {len(finished)} runs are already evaluated ({out_dir}), skipped")
        return False
    _say(f"05_evaluate: evaluating {len(finished)} runs ...")
    started = time.time()
    run_evaluation_notebook(finished, preset, run_name=run_name(plan, preset), log_output=verbose)
    atomic_write_json(marker, {"runs": sorted(finished), "wall_s": round(time.time() - started, 1)})
    _say(f"05_evaluate: done in {time.time() - started:.0f} s (figures in {figures_dir()})")
    return True


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m lib.runs.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--plan", default="demo", help=f"one of {', '.join(PLAN_NAMES)} (default demo)")
    parser.add_argument("--preset", default="small", help=f"one of {', '.join(PRESET_NAMES)} (default small)")
    parser.add_argument("--figures-only", action="store_true", help="redraw the figures from existing results")
    parser.add_argument("--parallel", type=int, default=2, help="variants trained at once (default 2)")
    parser.add_argument("--verbose", action="store_true", help="stream the notebooks' output")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    if args.verbose:  # papermill streams cell output through logging
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        code = main(args.preset, figures_only=args.figures_only, parallel=args.parallel, verbose=args.verbose,
                    plan=args.plan)
    except (ConfigError, FileNotFoundError, RuntimeError) as error:  # a message, not a traceback
        print(f"demo failed: {error}", file=sys.stderr)
        code = 2
    sys.exit(code)
