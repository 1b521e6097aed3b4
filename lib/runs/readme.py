"""README's results table, written from 05's results so that no number in it is typed by hand.

``python -m lib.runs.readme RESULTS_DIR --command "..."`` replaces what stands between the
``<!-- results:begin -->`` and ``<!-- results:end -->`` lines of README.md with the headline columns of
``RESULTS_DIR/results.csv`` (a 05 run folder), each with its 95% subject-bootstrap interval, plus the pairs and the
command that made them, and redraws README's pictures of the headline runs it scored (figures/readme/).
"""
from __future__ import annotations

import argparse
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from lib.paths import REPO_ROOT

BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def replace_block(name: str, body: str, readme: str | Path | None = None) -> Path:
    """Write ``body`` between README's ``<!-- NAME:begin -->`` and ``<!-- NAME:end -->`` lines (a block that a
    command regenerates: the results table, the recipe ablation); returns README's path."""
    readme = Path(readme) if readme else REPO_ROOT / "README.md"
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    text = readme.read_text()
    if begin not in text or end not in text:
        raise ValueError(f"{readme} has no {begin} ... {end} block to write into")
    text = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: f"{begin}\n{body}\n{end}", text, flags=re.S)
    readme.write_text(text)
    return readme
# (results.csv column, header): the learning issue's bars, in the order README explains them
COLUMNS = (("snapshot", "snapshot"), ("face_rate_dlib", "faces (dlib)"), ("verif_acc_tuned_truth", "`truth` identity"),
           ("verif_acc_tuned_dlib", "dlib identity"), ("cas_trained", "CAS trained"), ("cas_truth", "CAS truth"),
           ("acd_ratio_truth", "ACD ratio"), ("ssim", "SSIM"))


def _cell(row: pd.Series, column: str) -> str:
    value = row.get(column)
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return ""
    if isinstance(value, str):  # e.g. the snapshot: "best (step 600)"
        return value
    cell = f"{value:.2f}"
    low, high = row.get(f"{column}_lo"), row.get(f"{column}_hi")
    if isinstance(low, float) and isinstance(high, float) and np.isfinite([low, high]).all():
        cell += f" [{low:.2f}, {high:.2f}]"
    return cell


def results_table(results_dir: str | Path) -> str:
    """The markdown table of the headline columns of ``results_dir/results.csv`` (the real videos first)."""
    table = pd.read_csv(Path(results_dir) / "results.csv")
    real = table[table["run"] == "real"]
    if "acd_truth" in table.columns and len(real):
        reference = float(real["acd_truth"].iloc[0])
        for suffix in ("", "_lo", "_hi"):
            if f"acd_truth{suffix}" in table.columns:
                table[f"acd_ratio_truth{suffix}"] = table[f"acd_truth{suffix}"] / reference
    columns = [(c, h) for c, h in COLUMNS if c in table.columns]
    lines = ["| run | " + " | ".join(h for _, h in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for _, row in table.iterrows():
        name = str(row["run"])  # the run folder: the variant with its composition
        lines.append(f"| {name} | " + " | ".join(_cell(row, c) for c, _ in columns) + " |")
    return "\n".join(lines)


def emotion_rows(run_dir: str | Path, n_inputs: int = 3, frames: tuple[int, ...] = (0, 5, 10, 15),
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """What a run's best generator makes of validation inputs (never a test subject's video), for README.

    Returns ``(grid, video)``: ``grid`` uint8 (H, W, 3), one row per emotion, for each of ``n_inputs`` validation
    subjects its input frame then the generated ``frames``; ``video`` uint8 (T, H', W', 3), the first input
    beside its six generated videos, for a GIF of the face changing expression.
    """
    import torch

    from lib.constants import EMOTIONS
    from lib.data.cache import load_cache
    from lib.data.clips import uint8_to_model
    from lib.data.splits import training_videos
    from lib.io import to_uint8_frames, video_grid
    from lib.train.systems import load_generator

    generator = load_generator(run_dir, snapshot="best")
    config = generator.config
    cache = load_cache(config.cache_dir)
    _, validation = training_videos(cache, config.composition)
    rows = cache.index.set_index("video_id").loc[list(validation)].reset_index().drop_duplicates("subject")
    clips = [np.asarray(cache.frames[int(row["start"]) + np.minimum(np.arange(config.video_length) * config.every_nth,
                                                                  int(row["length"]) - 1)])
             for _, row in rows.head(n_inputs).iterrows()]
    videos = uint8_to_model(np.stack(clips)).transpose(1, 2)  # (B, 3, T, H, W)
    generated = [generator.generate(videos, torch.full((len(videos),), e), seed=seed) for e in range(len(EMOTIONS))]
    inputs = [to_uint8_frames(v)[0] for v in videos]
    grid = np.concatenate([np.concatenate([np.concatenate([inputs[b], *to_uint8_frames(out[b])[list(frames)]], 1)
                                           for b in range(len(videos))], 1) for out in generated], 0)
    still = np.repeat(inputs[0][None], config.video_length, 0)
    video = video_grid([[still] + [out[0] for out in generated]])
    return grid, video


def write_readme_figures(run_dir: str | Path, out_dir: str | Path | None = None, scale: int = 2) -> list[Path]:
    """README's pictures of the headline run: ``demo_emotions.png`` (rows = emotions) and ``demo_emotions.gif``."""
    from PIL import Image

    from lib.io import atomic_write_bytes, write_gif
    from lib.paths import figures_dir

    out_dir = Path(out_dir) if out_dir else figures_dir() / "readme"
    grid, video = emotion_rows(run_dir)
    buffer = io.BytesIO()
    Image.fromarray(grid.repeat(scale, 0).repeat(scale, 1)).save(buffer, format="PNG")
    return [atomic_write_bytes(out_dir / "demo_emotions.png", buffer.getvalue()),
            write_gif(video, out_dir / "demo_emotions.gif", fps=6, scale=scale)]


def update_readme(results_dir: str | Path, readme: str | Path | None = None, command: str = "make demo") -> Path:
    """Write the table of ``results_dir`` between README's result markers; returns README's path."""
    results_dir = Path(results_dir)
    pairs = ""
    meta = results_dir / "results.json"
    if meta.is_file():
        import json

        n_pairs = json.loads(meta.read_text()).get("config", {}).get("n_pairs")
        pairs = f" on {n_pairs} test pairs" if n_pairs else ""
    table = pd.read_csv(results_dir / "results.csv")
    if not pairs and "n_pairs" in table and table["n_pairs"].notna().any():
        pairs = f" on {int(table['n_pairs'].dropna().max())} test pairs"
    where = results_dir.resolve()
    where = where.relative_to(REPO_ROOT) if where.is_relative_to(REPO_ROOT) else where
    body = (f"Written by `{command}` from `{where}/results.csv`{pairs} (05's protocol: the test subjects' held-out "
            f"emotions):\n\n{results_table(results_dir)}")
    return replace_block("results", body, readme)


def headline_runs(results_dir: str | Path) -> dict[str, Path]:
    """``{variant: run folder}`` of the headline variants that ``results_dir/results.csv`` scored."""
    from lib.runs.grid import HEADLINE_VARIANTS

    table = pd.read_csv(Path(results_dir) / "results.csv")
    found = {str(r["run"]): Path(str(r["run_dir"])) for _, r in table.iterrows()
             if str(r["run"]) in HEADLINE_VARIANTS and isinstance(r.get("run_dir"), str)}
    return {name: found[name] for name in HEADLINE_VARIANTS if name in found}


def write_time_to_quality(runs: dict[str, Path], path: str | Path | None = None) -> Path:
    """README's time-to-quality curve: the validation probes of ``runs`` against wall-clock minutes."""
    from lib.paths import figures_dir
    from lib.train.gan_samples import compare_learning_curves

    return compare_learning_curves(runs, path or figures_dir() / "readme" / "time_to_quality.png",
                                   keys=("cas_trained", "cas_truth", "verif_truth", "verif_dlib", "face_rate_dlib",
                                         "acd_ratio_truth"), x="minutes")


def update_all(results_dir: str | Path, command: str, readme: str | Path | None = None) -> list[Path]:
    """README's results block, and its pictures of the headline runs that ``results_dir`` scored: the emotion
    rows and GIF of the first (``best.pt``, validation inputs) and the time-to-quality curve of all."""
    written = [update_readme(results_dir, readme, command)]
    runs = headline_runs(results_dir)
    if runs:
        written += write_readme_figures(next(iter(runs.values())))
        written.append(write_time_to_quality(runs))
    return written


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m lib.runs.readme", description=__doc__.split("\n\n")[0])
    parser.add_argument("results_dir", help="a 05_evaluate run folder (with results.csv)")
    parser.add_argument("--command", required=True, help="the command that made results_dir, named in README")
    args = parser.parse_args()
    for path in update_all(args.results_dir, args.command):
        print(f"written: {path}")
