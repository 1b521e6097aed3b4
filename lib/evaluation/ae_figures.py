"""Figures of notebook 02: reconstructions, training curves, 2-D projection of codes by subject.

Each function returns a matplotlib Figure; :func:`save_figure` writes it into the run
folder and into the report figures folder (``lib.paths.figures_dir()``).
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from lib.config import check_choice
from lib.io import read_jsonl, to_uint8_frames

PROJECTIONS = ("pca", "tsne")


def _pyplot():
    import matplotlib.pyplot as plt
    return plt


def plot_reconstructions(real, reconstructions: Mapping[str, object], title: str | None = None):
    """Rows: the real frames, then each model's reconstructions of the same frames.

    ``real`` and each reconstruction: frames (N, 3, H, W) in [-1, 1] or uint8 (N, H, W, 3).
    """
    plt = _pyplot()
    real = to_uint8_frames(real)
    rows = [("real", real)] + [(name, to_uint8_frames(frames)) for name, frames in reconstructions.items()]
    n_cols = real.shape[0]
    fig, axes = plt.subplots(len(rows), n_cols, figsize=(1.1 * n_cols + 1.2, 1.1 * len(rows)), squeeze=False)
    for r, (label, frames) in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r][c]
            ax.imshow(frames[c])
            ax.set_xticks([]), ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_training_curves(run_dir: str | Path, names: Sequence[str]):
    """Training reconstruction MSE per epoch for each variant (and the VAEs' KL term)."""
    plt = _pyplot()
    fig, (ax_mse, ax_kl) = plt.subplots(1, 2, figsize=(10, 3.5))
    for name in names:
        records = read_jsonl(Path(run_dir) / name / "stats.jsonl")
        if not records:
            continue
        epochs = [r["epoch"] for r in records]
        ax_mse.plot(epochs, [r["mse"] for r in records], marker="o", label=name)
        if name.startswith("vae"):
            ax_kl.plot(epochs, [r["kl"] for r in records], marker="o", label=name)
    ax_mse.set(xlabel="epoch", ylabel="train MSE ([-1, 1] scale)", yscale="log", title="reconstruction loss")
    ax_kl.set(xlabel="epoch", ylabel="KL (nats per frame)", title="VAE KL divergence")
    for ax in (ax_mse, ax_kl):
        if ax.lines:
            ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def project_codes(codes: np.ndarray, method: str = "pca", seed: int = 0) -> np.ndarray:
    """2-D projection of codes (N, D) by PCA or t-SNE."""
    check_choice("projection", method, PROJECTIONS)
    codes = np.asarray(codes, np.float64)
    if method == "pca":
        from sklearn.decomposition import PCA
        return PCA(n_components=2, random_state=seed).fit_transform(codes)
    from sklearn.manifold import TSNE
    perplexity = float(min(30, max(2, (len(codes) - 1) // 3)))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(codes)


def plot_code_projection(codes_by_model: Mapping[str, np.ndarray], subjects: Sequence[str], method: str = "pca",
                         seed: int = 0, is_test: Sequence[bool] | None = None):
    """One panel per model: codes projected to 2-D, coloured by subject.

    With ``is_test`` the test (unseen) subjects are drawn as large crosses and the
    training subjects as small dots.
    """
    plt = _pyplot()
    check_choice("projection", method, PROJECTIONS)
    subjects = np.asarray(subjects).astype(str)
    is_test = np.ones(len(subjects), bool) if is_test is None else np.asarray(is_test, bool)
    unique = sorted(set(subjects))
    colours = plt.get_cmap("tab20" if len(unique) > 10 else "tab10")
    n = len(codes_by_model)
    n_cols = min(3, n)
    n_rows = int(np.ceil(n / n_cols))
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(4 * n_cols, 3.6 * n_rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    for ax, (name, codes) in zip(axes.flat, codes_by_model.items()):
        points = project_codes(codes, method, seed)
        for i, subject in enumerate(unique):
            mask = subjects == subject
            test = bool(is_test[mask].any())
            ax.scatter(points[mask, 0], points[mask, 1], s=18 if test else 4, marker="x" if test else "o",
                       color=colours(i % colours.N), label=f"{subject} (test)" if test else subject,
                       alpha=1.0 if test else 0.5)
        ax.set_title(f"{name} ({method.upper()})", fontsize=10)
        ax.set_xticks([]), ax.set_yticks([])
    axes.flat[0].legend(title="subject", fontsize=7, markerscale=1.5, loc="best")
    fig.tight_layout()
    return fig


def save_figure(fig, run_dir: str | Path, stem: str, preset: str) -> dict[str, Path]:
    """Write ``fig`` as PNG to ``<run_dir>/figures/<stem>.png`` and ``<figures_dir>/02_<stem>-<preset>.png``."""
    from lib.io import atomic_write_bytes
    from lib.paths import figures_dir

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    data = buffer.getvalue()
    paths = {"run": Path(run_dir) / "figures" / f"{stem}.png", "report": figures_dir() / f"02_{stem}-{preset}.png"}
    for path in paths.values():
        atomic_write_bytes(path, data)
    return paths
