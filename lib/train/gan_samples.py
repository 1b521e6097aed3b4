"""Sample videos and loss curves of a GAN run.

The sample grid (a GIF): row 0 the input videos (one column per subject), then one row
per target emotion, generated from those inputs with a fixed seed, so grids from
different steps are comparable.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from lib.config import check_choice
from lib.constants import ACD_RATIO_RANGE, EMOTIONS
from lib.data.clips import uint8_to_model
from lib.io import atomic_write_bytes, video_grid, write_gif
from lib.train.gan_losses import GENERATOR_TERMS

SAMPLE_SEED = 1234


def sample_inputs(cache: Any, video_ids: Sequence[int], cfg: Any, more_ids: Sequence[int] = ()) -> torch.Tensor:
    """(n, 3, T, H, W) input clips: the first video of each of ``n_sample_subjects`` subjects.

    Subjects of ``video_ids`` (the test videos) come first; ``more_ids`` fill up the columns.
    """
    index = cache.index.set_index("video_id")
    ordered = [index.loc[list(ids)].reset_index().sort_values(["subject", "video_id"]) for ids in (video_ids, more_ids)
               if len(ids)]
    firsts = pd.concat(ordered).drop_duplicates("subject").head(cfg.n_sample_subjects)
    clips = []
    for start, length in zip(firsts["start"], firsts["length"]):
        stride = cfg.every_nth if length >= (cfg.video_length - 1) * cfg.every_nth + 1 else 1
        offsets = np.minimum(np.arange(cfg.video_length) * stride, length - 1)
        clips.append(np.asarray(cache.frames[int(start) + offsets]))
    return uint8_to_model(np.stack(clips)).transpose(1, 2).contiguous()


def write_sample_grid(trained: Any, inputs: torch.Tensor, folder: str | Path, step: int) -> Path:
    """Write ``samples/step-NNNNNN.gif`` and ``samples/latest.gif``; returns the latter."""
    folder = Path(folder)
    rows = [[video for video in inputs]]
    for label in range(len(EMOTIONS)):
        labels = torch.full((len(inputs),), label, dtype=torch.long)
        generated = trained.generate(inputs, labels, seed=SAMPLE_SEED).cpu()
        rows.append([video for video in generated])
    grid = video_grid(rows)
    write_gif(grid, folder / f"step-{step:06d}.gif", fps=8)
    return write_gif(grid, folder / "latest.gif", fps=8)


def _write_png(figure, path: str | Path) -> Path:
    """Lay out ``figure`` and write it as a PNG, atomically."""
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    return atomic_write_bytes(path, buffer.getvalue())


def write_loss_curves(records: list[dict], path: str | Path) -> Path | None:
    """Discriminator and generator loss terms against step, as a PNG."""
    records = [r for r in records if "g_total" in r]  # not the probe records
    if not records:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    steps = [r["step"] for r in records]
    figure = Figure(figsize=(10, 3.6))
    FigureCanvasAgg(figure)
    logged = list(dict.fromkeys(k for r in records for k in r))  # every system's terms, in logging order
    known = [f"g_{term}" for term in GENERATOR_TERMS]
    panels = [("discriminators", [k for k in logged if k.startswith("d_")]),
              ("generator terms (weighted)", [k for k in known if k in logged]
               + [k for k in logged if k.startswith("g_") and k not in known and k != "g_total"] + ["g_total"])]
    for i, (title, keys) in enumerate(panels):
        axis = figure.add_subplot(1, 2, i + 1)
        for key in keys:
            if any(key in r for r in records):
                axis.plot(steps, [r.get(key, np.nan) for r in records], label=key)
        axis.set_title(title)
        axis.set_xlabel("step")
        axis.legend(fontsize=7)
        if title.startswith("generator"):
            axis.set_yscale("symlog", linthresh=1.0)
    return _write_png(figure, path)


# Probe measures drawn by write_learning_curves: (panel title, metric keys, reference keys)
LEARNING_PANELS = (
    ("image quality", ("ssim",), ()),
    ("emotion (CAS)", ("cas_trained", "cas_truth"), ("real_cas_trained", "real_cas_truth")),
    ("identity (verification, dlib face rate)", ("verif_truth", "verif_ae", "verif_dlib", "face_rate_dlib"), ()),
    ("motion (ACD gen / real)", ("acd_ratio_truth", "acd_ratio_ae"), ()),
)


def write_learning_curves(records: list[dict], path: str | Path) -> Path | None:
    """The learning probes (``probe_*`` records of stats.jsonl) against step, as a PNG; None without probes."""
    records = [r for r in records if any(k.startswith("probe_") for k in r)]
    if not records:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    steps = [r["step"] for r in records]
    figure = Figure(figsize=(13, 3.2))
    FigureCanvasAgg(figure)
    for i, (title, keys, references) in enumerate(LEARNING_PANELS):
        axis = figure.add_subplot(1, len(LEARNING_PANELS), i + 1)
        for key in keys:
            if any(f"probe_{key}" in r for r in records):
                axis.plot(steps, [r.get(f"probe_{key}", np.nan) for r in records], marker="o", label=key)
        for key in references:
            value = records[-1].get(f"probe_{key}")
            if value is not None:
                axis.axhline(value, linestyle=":", color="grey")
                axis.annotate(key, (steps[0], value), fontsize=6, color="grey")
        if title.startswith("motion"):
            axis.axhspan(*ACD_RATIO_RANGE, color="green", alpha=0.08)  # the bar: 0.5x to 2x the real videos
        axis.set_title(title, fontsize=9)
        axis.set_xlabel("step")
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=7)
    return _write_png(figure, path)


def compare_learning_curves(run_dirs: dict[str, str | Path], path: str | Path,
                            keys: tuple[str, ...] = ("headline", "ssim", "cas_trained", "cas_truth", "verif_ae",
                                                     "acd_ratio_truth"), x: str = "step") -> Path:
    """One panel per probe measure, one line per run (``{label: run folder}``), against ``x``: ``"step"`` (the
    ablation figure of several 03 runs) or ``"minutes"`` of wall time, probes included (the time-to-quality
    curve).  Raises naming a run folder that has no probe records."""
    check_choice("x", x, ("step", "minutes"))
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from lib.io import read_jsonl

    curves = {}
    for label, run_dir in run_dirs.items():
        records = [r for r in read_jsonl(Path(run_dir) / "stats.jsonl") if "probe_headline" in r]
        if not records:
            raise ValueError(f"{run_dir}/stats.jsonl has no learning-probe records (probe_every=0?)")
        curves[label] = records
    columns = 3
    rows = -(-len(keys) // columns)
    figure = Figure(figsize=(4.2 * columns, 3.0 * rows))
    FigureCanvasAgg(figure)
    for i, key in enumerate(keys):
        axis = figure.add_subplot(rows, columns, i + 1)
        for label, records in curves.items():
            where = [r["step"] if x == "step" else r["elapsed_seconds"] / 60 for r in records]
            axis.plot(where, [r.get(f"probe_{key}", np.nan) for r in records], marker="o", markersize=3, label=label)
        if key.startswith("acd_ratio"):
            axis.axhspan(*ACD_RATIO_RANGE, color="green", alpha=0.08)  # the bar: 0.5x to 2x the real videos
        axis.set_title(key, fontsize=9)
        axis.set_xlabel("step" if x == "step" else "wall-clock minutes")
    figure.axes[0].legend(fontsize=7)
    return _write_png(figure, path)


def write_neutraliser_figure(neutraliser: torch.nn.Module, cache: Any, video_ids: Sequence[int],
                             path: str | Path, n_videos: int = 8) -> Path:
    """``neutralise_input``'s work on held-out videos, as a PNG: row 1 a frame three quarters into each take
    (usually at its apex), row 2 that frame neutralised (what the generator starts from), row 3 the take's
    first frame (the neutral face the neutraliser was trained to recover, in that frame's pose)."""
    from matplotlib.figure import Figure

    index = cache.index.set_index("video_id").loc[list(video_ids)].reset_index()
    picks = index.sort_values(["emotion", "subject"]).drop_duplicates("subject").head(n_videos)
    if len(picks) < n_videos:  # fewer subjects than columns: more takes of the same subjects
        picks = pd.concat([picks, index.drop(picks.index)]).head(n_videos)
    frames = np.asarray(cache.frames[[int(s + 3 * n // 4) for s, n in zip(picks["start"], picks["length"])]])
    firsts = np.asarray(cache.frames[picks["start"].astype(int).to_numpy()])
    device = next(neutraliser.parameters()).device
    with torch.no_grad():
        neutral = neutraliser(uint8_to_model(frames).to(device)).cpu()
    rows = [[frame[None] for frame in uint8_to_model(frames)], [frame[None] for frame in neutral],
            [frame[None] for frame in uint8_to_model(firsts)]]
    grid = video_grid(rows)[0]
    figure = Figure(figsize=(1.1 * len(frames), 3.3))
    axes = figure.add_subplot()
    axes.imshow(grid)
    axes.set_yticks([grid.shape[0] * (r + 0.5) / 3 for r in range(3)],
                    ["input frame", "neutralised", "take's first frame"])
    axes.set_xticks([grid.shape[1] * (c + 0.5) / len(frames) for c in range(len(frames))],
                    [f"{s} {e}" for s, e in zip(picks["subject"], picks["emotion"])], fontsize=7)
    return _write_png(figure, path)
