"""The report figures, one function each; every function saves a PNG and returns its path.

Inputs are the results table of :func:`lib.evaluation.evaluate.evaluate_runs` (one row
per run plus ``real`` rows) and the per-run arrays (``evaluation.npz``).  Figures:
bars per model and composition for SSIM / MSE / ACD / CAS-M (thesis Figs 7, 8, 10,
12), frame grids (Figs 9, 11), ROC with AUC and tuned threshold, violin plots of
verification distances seen vs unseen, verification accuracy at both thresholds,
emotion agreement (Oostveen Figs 3, 6-9), error heatmaps (seed 002), confusion matrix.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from lib.constants import EMOTIONS

COMPOSITION_COLOURS = {"seen": "#4C72B0", "unseen": "#DD8452", "unknown": "#8C8C8C"}
METRIC_TITLES = {"ssim": "SSIM (higher is better)", "mse": "MSE (lower is better)", "psnr": "PSNR dB (higher is better)"}


def _out(figures_dir, name: str) -> Path:
    from lib.paths import figures_dir as default_figures_dir

    folder = Path(figures_dir) if figures_dir is not None else default_figures_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _models(table: pd.DataFrame) -> pd.DataFrame:
    return table[table["run"] != "real"]


def _grouped_bars(ax, table: pd.DataFrame, columns: list[str], labels: list[str] | None = None):
    """Bars: x = variant, one bar per (composition, column)."""
    models = _models(table)
    variants = list(dict.fromkeys(models["variant"]))
    compositions = list(dict.fromkeys(models["composition"]))
    groups = [(c, col) for c in compositions for col in columns]
    width = 0.8 / max(len(groups), 1)
    for k, (composition, column) in enumerate(groups):
        values = [models.loc[(models["variant"] == v) & (models["composition"] == composition), column].mean()
                  for v in variants]
        label = composition if len(columns) == 1 else f"{composition} - {(labels or columns)[columns.index(column)]}"
        colour = COMPOSITION_COLOURS.get(composition) if len(columns) == 1 else None
        ax.bar(np.arange(len(variants)) + (k - (len(groups) - 1) / 2) * width, values, width, label=label,
               color=colour, alpha=1.0 if k % 2 == 0 or len(columns) == 1 else 0.6)
    ax.set_xticks(np.arange(len(variants)))
    ax.set_xticklabels(variants, rotation=30, ha="right", fontsize=8)
    ax.legend(fontsize=8)


def metric_bars(table: pd.DataFrame, metric: str, figures_dir=None, title: str | None = None) -> Path:
    """Bars of ``metric`` per model and composition, with the real-video reference as a line."""
    if metric not in table.columns:
        raise KeyError(f"no column {metric!r} in the results; columns: {sorted(table.columns)}")
    fig, ax = plt.subplots(figsize=(max(5, 1.1 * _models(table)["variant"].nunique() + 3), 3.6))
    _grouped_bars(ax, table, [metric])
    real = table.loc[table["run"] == "real", metric].dropna() if "run" in table else pd.Series(dtype=float)
    if len(real):
        ax.axhline(float(real.mean()), color="k", linestyle="--", linewidth=1, label="real videos")
        ax.legend(fontsize=8)
    ax.set_title(title or METRIC_TITLES.get(metric, metric))
    return _save(fig, _out(figures_dir, f"bars_{metric}.png"))


def ssim_bars(table, figures_dir=None) -> Path:
    return metric_bars(table, "ssim", figures_dir, "SSIM per model (thesis Fig. 7)")


def mse_bars(table, figures_dir=None) -> Path:
    return metric_bars(table, "mse", figures_dir, "MSE per model (thesis Fig. 8)")


def acd_bars(table, extractor: str, figures_dir=None) -> Path:
    return metric_bars(table, f"acd_{extractor}", figures_dir,
                       f"ACD with {extractor} features; dashed = real videos (thesis Fig. 10)")


def cas_bars(table, classifier: str, figures_dir=None) -> Path:
    return metric_bars(table, f"cas_{classifier}", figures_dir,
                       f"CAS-M with the {classifier} classifier; dashed = real videos (thesis Fig. 12)")


def verification_bars(table: pd.DataFrame, extractor: str, figures_dir=None) -> Path:
    """Share of generated videos verified as the target person at the default and tuned thresholds."""
    columns = [f"verif_acc_default_{extractor}", f"verif_acc_tuned_{extractor}"]
    fig, ax = plt.subplots(figsize=(max(5, 1.2 * _models(table)["variant"].nunique() + 3), 3.6))
    _grouped_bars(ax, table, columns, ["default threshold", "ROC-tuned threshold"])
    ax.set_ylim(0, 1.05)
    ax.set_title(f"Face verification accuracy ({extractor}; Oostveen Figs 7-8)")
    return _save(fig, _out(figures_dir, f"verification_{extractor}.png"))


def agreement_bars(table: pd.DataFrame, classifier: str, figures_dir=None) -> Path:
    return metric_bars(table, f"agreement_{classifier}", figures_dir,
                       f"Emotion agreement real vs generated ({classifier}; Oostveen Fig. 9)")


def roc_figure(fpr, tpr, auc: float, tuned_threshold: float, extractor: str, figures_dir=None,
               real_distances=None, real_same=None) -> Path:
    """ROC of real same/different-subject pairs, with AUC and the tuned operating point."""
    fig, ax = plt.subplots(figsize=(4.2, 4.0))
    ax.plot(fpr, tpr, label=f"AUC = {auc:.3f}")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    if real_distances is not None and real_same is not None:
        d, s = np.asarray(real_distances), np.asarray(real_same, bool)
        point = ((d[~s] <= tuned_threshold).mean(), (d[s] <= tuned_threshold).mean())
        ax.scatter(*point, color="red", zorder=3, label=f"tuned threshold {tuned_threshold:.3f}")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(f"ROC of real pairs ({extractor})")
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, _out(figures_dir, f"roc_{extractor}.png"))


def distance_violins(distances_by_run: dict[str, np.ndarray], compositions: dict[str, str], extractor: str,
                     figures_dir=None, thresholds: dict | None = None) -> Path:
    """Violin plots of verification distances per model, seen vs unseen (Oostveen Fig. 6)."""
    runs = [r for r in distances_by_run if len(distances_by_run[r])]
    fig, ax = plt.subplots(figsize=(max(5, 0.9 * len(runs) + 3), 3.8))
    if runs:
        parts = ax.violinplot([distances_by_run[r] for r in runs], showmeans=True)
        for body, run in zip(parts["bodies"], runs):
            body.set_facecolor(COMPOSITION_COLOURS.get(compositions.get(run, "unknown"), "#8C8C8C"))
            body.set_alpha(0.7)
    for name, value in (thresholds or {}).items():
        ax.axhline(value, linestyle="--", linewidth=1, color="k" if name == "default" else "red",
                   label=f"{name} threshold {value:.3f}")
    ax.set_xticks(np.arange(1, len(runs) + 1))
    ax.set_xticklabels([f"{r}\n({compositions.get(r, '?')})" for r in runs], rotation=30, ha="right", fontsize=7)
    ax.set_ylabel("cosine distance to real target")
    ax.set_title(f"Verification distances ({extractor})")
    if thresholds:
        ax.legend(fontsize=8)
    return _save(fig, _out(figures_dir, f"violins_{extractor}.png"))


def frame_grid(samples: dict[str, dict[str, np.ndarray]], figures_dir=None, pair: int = 0, every: int = 2) -> Path:
    """Rows: input, real target, then each model's generated clip for one pair (thesis Figs 9, 11)."""
    runs = list(samples)
    first = samples[runs[0]]
    rows = [("input", first["input_samples"][pair]), ("real target", first["target_samples"][pair])]
    rows += [(run, samples[run]["generated_samples"][pair]) for run in runs]
    frames = [clip[::every] for _, clip in rows]
    n_cols = max(len(f) for f in frames)
    fig, axes = plt.subplots(len(rows), n_cols, figsize=(0.9 * n_cols + 1.2, 0.95 * len(rows)), squeeze=False)
    for r, ((label, _), clip) in enumerate(zip(rows, frames)):
        for c in range(n_cols):
            ax = axes[r, c]
            ax.axis("off")
            if c < len(clip):
                ax.imshow(clip[c])
        axes[r, 0].text(-4, clip.shape[1] / 2, label, ha="right", va="center", fontsize=7)
    fig.suptitle(f"pair {pair}: input / real target / generated", fontsize=9)
    return _save(fig, _out(figures_dir, f"frames_pair{pair}.png"))


ERROR_HEATMAP_MAX = 96 / 255  # seed 002's colour scale: errors of 96 of 255 and above are yellow


def error_heatmaps(error_maps: dict[str, np.ndarray], figures_dir=None) -> Path:
    """Per-pixel mean absolute error of generated vs real target frames, per model, on seed 002's scale:
    viridis from 0 (blue) to 96 of 255 and above (yellow)."""
    runs = list(error_maps)
    fig, axes = plt.subplots(1, len(runs), figsize=(2.3 * len(runs) + 0.8, 2.6), squeeze=False)
    for ax, run in zip(axes[0], runs):
        image = ax.imshow(error_maps[run], cmap="viridis", vmin=0, vmax=ERROR_HEATMAP_MAX)
        ax.set_title(run, fontsize=7)
        ax.axis("off")
    fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8, label="mean |error| (0-1; 96/255 and above: yellow)")
    fig.savefig(path := _out(figures_dir, "error_heatmaps.png"), dpi=110)
    plt.close(fig)
    return path


def confusion_figure(matrix, title: str, filename: str, figures_dir=None) -> Path:
    """Row-normalised confusion matrix (rows: target emotion, columns: predicted)."""
    matrix = np.asarray(matrix, dtype=float)
    normalised = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(4.6, 4.0))
    ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(EMOTIONS)):
        for j in range(len(EMOTIONS)):
            ax.text(j, i, f"{int(matrix[i, j])}", ha="center", va="center", fontsize=7,
                    color="white" if normalised[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(EMOTIONS)))
    ax.set_xticklabels(EMOTIONS, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(len(EMOTIONS)))
    ax.set_yticklabels(EMOTIONS, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("target")
    ax.set_title(title, fontsize=9)
    return _save(fig, _out(figures_dir, filename))


def per_emotion_bars(table: pd.DataFrame, classifier: str, figures_dir=None) -> Path:
    """CAS-M per target emotion, one bar per run (thesis Fig. 15)."""
    columns = [f"cas_{classifier}_{e}" for e in EMOTIONS]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    width = 0.8 / max(len(table), 1)
    for k, (_, row) in enumerate(table.iterrows()):
        ax.bar(np.arange(len(EMOTIONS)) + (k - (len(table) - 1) / 2) * width,
               [row.get(c, np.nan) for c in columns], width, label=f"{row['run']} ({row['composition']})")
    ax.set_xticks(range(len(EMOTIONS)))
    ax.set_xticklabels(EMOTIONS, fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7)
    ax.set_title(f"CAS-M per emotion ({classifier})")
    return _save(fig, _out(figures_dir, f"cas_per_emotion_{classifier}.png"))


# --------------------------------------------------------------------------- all at once
def _names(table: pd.DataFrame, prefix: str, exclude: tuple[str, ...] = ()) -> list[str]:
    names = [c[len(prefix):] for c in table.columns if c.startswith(prefix)]
    return [n for n in names if "_" not in n and n not in exclude]


def draw_all_figures(results, figures_dir=None, arrays: dict | None = None) -> list[Path]:
    """Every figure from a results folder (results.csv + arrays/) or a results DataFrame.

    With a DataFrame, per-run arrays are read from each run's ``evaluation.npz``
    (``run_dir`` column) unless given; the ROC needs the real-pair arrays of a results
    folder and is skipped otherwise.
    """
    if isinstance(results, pd.DataFrame):
        table = results
        arrays = dict(arrays or {})
        for _, row in _models(table).iterrows():
            path = Path(str(row.get("run_dir", ""))) / "evaluation.npz"
            if row["run"] not in arrays and path.is_file():
                with np.load(path, allow_pickle=False) as data:
                    arrays[row["run"]] = {k: data[k] for k in data.files}
    else:
        from lib.evaluation.evaluate import load_results

        table, loaded = load_results(results)
        arrays = {**loaded, **(arrays or {})}
    models = _models(table)
    paths: list[Path] = []
    if len(models):
        paths += [ssim_bars(table, figures_dir), mse_bars(table, figures_dir)]
        if "psnr" in table:
            paths.append(metric_bars(table, "psnr", figures_dir))
    extractors = _names(table, "acd_")
    classifiers = _names(table, "cas_")
    compositions = dict(zip(models["run"], models["composition"]))
    for extractor in extractors:
        if len(models):
            paths.append(acd_bars(table, extractor, figures_dir))
            if f"acd_i_{extractor}" in table:
                paths.append(metric_bars(table, f"acd_i_{extractor}", figures_dir, f"ACD-I with {extractor} features"))
            if f"verif_acc_default_{extractor}" in table:
                paths.append(verification_bars(table, extractor, figures_dir))
        distances = {r: arrays[r][f"distances_{extractor}"] for r in models["run"]
                     if r in arrays and f"distances_{extractor}" in arrays[r]}
        real_rows = table[table["run"] == "real"]
        thresholds = {}
        if len(real_rows) and f"threshold_default_{extractor}" in table:
            thresholds = {"default": real_rows[f"threshold_default_{extractor}"].iloc[0],
                          "tuned": real_rows[f"threshold_tuned_{extractor}"].iloc[0]}
            thresholds = {k: float(v) for k, v in thresholds.items() if pd.notna(v)}
        if distances:
            paths.append(distance_violins(distances, compositions, extractor, figures_dir, thresholds))
        for name, real in arrays.items():
            if name.startswith("real") and f"roc_fpr_{extractor}" in real:
                paths.append(roc_figure(real[f"roc_fpr_{extractor}"], real[f"roc_tpr_{extractor}"],
                                        float(real_rows[f"auc_{extractor}"].iloc[0]), thresholds.get("tuned", np.nan),
                                        extractor, figures_dir, real[f"real_distances_{extractor}"],
                                        real[f"real_same_{extractor}"]))
                break
    for classifier in classifiers:
        if len(models):
            paths.append(cas_bars(table, classifier, figures_dir))
            if f"agreement_{classifier}" in table:
                paths.append(agreement_bars(table, classifier, figures_dir))
            if f"cas_{classifier}_{EMOTIONS[0]}" in table:
                paths.append(per_emotion_bars(table, classifier, figures_dir))
            matrices = [arrays[r][f"confusion_{classifier}"] for r in models["run"]
                        if r in arrays and f"confusion_{classifier}" in arrays[r]]
            if matrices:
                paths.append(confusion_figure(np.sum(matrices, axis=0), f"{classifier} on generated videos (all runs)",
                                              f"confusion_{classifier}.png", figures_dir))
    samples = {r: arrays[r] for r in models["run"] if r in arrays and "generated_samples" in arrays[r]}
    if samples:
        n_pairs = min(len(s["generated_samples"]) for s in samples.values())
        paths += [frame_grid(samples, figures_dir, pair) for pair in range(min(2, n_pairs))]
        paths.append(error_heatmaps({r: s["error_map"] for r, s in samples.items() if "error_map" in s}, figures_dir))
    return paths
