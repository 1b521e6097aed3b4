"""Recipe ablation at equal wall time: the ``fast`` recipe, then each of its techniques switched off in turn.

Every run trains the same variant (default: the headline, thesis model 4 seen) for the same wall time
(``--minutes``) with 03's learning probes, ``--parallel`` runs at a time on one thread each, so every run
shares the machine alike.  "Off" means the thesis value of that option (``lib.train.recipes.RECIPES``);
options the fast recipe leaves at the thesis value are not ablated.  Resumable: a finished run is kept,
an interrupted one resumes (its time limit counts the earlier sittings).

    .venv/bin/python benchmarks/recipe_ablation.py --minutes 5 --parallel 2
    .venv/bin/python benchmarks/recipe_ablation.py --minutes 5 --base clip_start=first category_ramp=true

Writes ``papermill_runs/benchmarks/recipe_ablation-<preset>[-<tag>]/``: one run folder per configuration,
``ablation.csv`` / ``ablation.md`` (steps reached, last and best probe) and ``ablation_curves.png``.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pandas as pd  # noqa: E402

from lib.config import ConfigError  # noqa: E402
from lib.io import atomic_write_text, read_jsonl  # noqa: E402
from lib.paths import runs_dir, safe_name  # noqa: E402
from lib.train.options import make_config, resolve_config  # noqa: E402
from lib.train.recipes import RECIPE_OPTIONS, RECIPES  # noqa: E402

HEADLINE = dict(encoder="ae", content_mode="single", finetune=False, composition="seen")  # thesis model 4, seen
# Switching an option off also switches off the options that need it.
NEEDED_BY = {"warm_start": ("emotion_directions",),
             "composite": ("emotion_templates", "template_alignment", "landmark_flow_weight"),
             "emotion_templates": ("template_alignment",), "clip_start": ("landmark_flow_weight",),
             "paired_target": ("landmark_flow_weight", "feature_matching_weight")}  # (template_alignment: for a --base that turns it on)
MEASURES = ("headline", "ssim", "cas_trained", "cas_truth", "verif_truth", "verif_dlib", "verif_ae", "face_rate_dlib",
            "acd_ratio_truth")


def configurations(base: dict) -> dict[str, dict]:
    """``{"fast": options, "no-<option>": options with that option at its thesis value, ...}``."""
    fast, thesis = RECIPES["fast"], RECIPES["thesis"]
    runs = {"fast": dict(base)}
    for name in RECIPE_OPTIONS:
        current = base.get(name, fast[name])
        if current != thesis[name]:
            runs[f"no-{name}"] = {**base, name: thesis[name],
                                  **{other: thesis[other] for other in NEEDED_BY.get(name, ())}}
    return runs


def parse_base(items: list[str]) -> dict:
    base = {}
    for item in items:
        key, _, text = item.partition("=")
        try:
            base[key] = json.loads(text)
        except ValueError:
            base[key] = text
    return base


def _train(args: tuple[Path, str, dict, str, float, int]) -> str:
    folder, name, options, preset, minutes, seed = args
    import torch

    from lib.evaluation.learning_probes import build_learning_probe
    from lib.train.gan import train_gan

    torch.set_num_threads(1)
    cfg = resolve_config(make_config(preset=preset, recipe="fast", steps=10 ** 6, time_limit_minutes=minutes,
                                     num_threads=1, seed=seed, **HEADLINE, **options))
    train_gan(cfg, folder / name, probe=build_learning_probe(cfg), progress=False)
    return name


def summarise(folder: Path, names: list[str]) -> pd.DataFrame:
    rows = []
    for name in names:
        probes = [r for r in read_jsonl(folder / name / "stats.jsonl") if "probe_headline" in r]
        last, best = probes[-1], max(probes, key=lambda r: r["probe_headline"])
        row = {"run": name, "steps": last["step"], "minutes": round(last["elapsed_seconds"] / 60, 1),
               "best_step": best["step"]}
        row.update({m: round(last.get(f"probe_{m}", float("nan")), 3) for m in MEASURES})
        row.update({f"best_{m}": round(best.get(f"probe_{m}", float("nan")), 3) for m in MEASURES})
        rows.append(row)
    return pd.DataFrame(rows)


def markdown_table(table: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines) + "\n"


# README's columns: the validation probe at the end of each run's wall time
README_COLUMNS = (("steps", "steps"), ("cas_trained", "CAS trained"), ("cas_truth", "CAS truth"),
                  ("verif_truth", "`truth` identity"), ("verif_dlib", "dlib identity"), ("face_rate_dlib", "faces"),
                  ("acd_ratio_truth", "ACD ratio"))


def readme_table(table: pd.DataFrame, command: str) -> str:
    """The compact ablation table for README: one row per configuration, the last validation probe."""
    lines = [f"Written by `{command}` (validation subjects, the probe at the end of each run's wall time):", "",
             "| run | " + " | ".join(h for _, h in README_COLUMNS) + " |", "|---" * (len(README_COLUMNS) + 1) + "|"]
    for row in table.itertuples(index=False):
        values = row._asdict()
        lines.append(f"| {values['run']} | " + " | ".join(str(values[c]) for c, _ in README_COLUMNS) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--minutes", type=float, default=5.0, help="wall time of every run")
    parser.add_argument("--parallel", type=int, default=2, help="runs at once, one thread each")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--base", nargs="*", default=[], help="options for every run, e.g. clip_start=first")
    parser.add_argument("--tag", default="", help="suffix of the output folder")
    parser.add_argument("--only", nargs="*", help="run just these configurations (e.g. fast no-warm_start)")
    parser.add_argument("--readme", action="store_true", help="also write the compact table into README's "
                                                              "ablation block")
    args = parser.parse_args(argv)
    base = parse_base(args.base)
    runs = configurations(base)
    for name, options in runs.items():  # every configuration is valid before any training
        resolve_config(make_config(preset=args.preset, recipe="fast", **HEADLINE, **options))
    if args.only:
        unknown = sorted(set(args.only) - set(runs))
        if unknown:
            raise ConfigError(f"unknown configurations {unknown}; valid: {sorted(runs)}")
        runs = {name: runs[name] for name in args.only}
    folder = runs_dir() / "benchmarks" / safe_name(f"recipe_ablation-{args.preset}" + (f"-{args.tag}" if args.tag else ""))
    folder.mkdir(parents=True, exist_ok=True)
    jobs = [(folder, name, options, args.preset, args.minutes, args.seed) for name, options in runs.items()]
    with multiprocessing.get_context("spawn").Pool(args.parallel) as pool:
        for name in pool.imap_unordered(_train, jobs):
            print(f"finished {name}", flush=True)
    # every configuration of this folder that has finished, those of earlier --only calls included
    finished = [name for name in configurations(base) if (folder / name / "train_done.json").is_file()]
    table = summarise(folder, finished)
    atomic_write_text(folder / "ablation.csv", table.to_csv(index=False))
    atomic_write_text(folder / "ablation.md", markdown_table(table))
    from lib.train.gan_samples import compare_learning_curves

    compare_learning_curves({name: folder / name for name in finished}, folder / "ablation_curves.png")
    print(table.to_string(index=False))
    if args.readme:
        from lib.runs.readme import replace_block

        command = "benchmarks/recipe_ablation.py " + " ".join(argv if argv is not None else sys.argv[1:])
        replace_block("ablation", readme_table(table, command.strip()))
    print(f"written to {folder}")


if __name__ == "__main__":
    main()
