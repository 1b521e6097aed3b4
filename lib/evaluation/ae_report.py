"""Test-split evaluation of trained autoencoders: the thesis's Table 4 (MSE, SSIM) plus PSNR,
parameters and training time, written as CSV and markdown into the 02 run folder.

Metrics are computed per test frame on the [0, 1] pixel scale (the thesis's
convention: its best model has MSE 0.00086 and SSIM 0.961) and averaged, on two test sets:
``mse``/``ssim``/``psnr`` on the composition's test videos (subjects never seen in training for
``unseen``), and ``*_heldout`` on the training subjects' held-out frames (every
``heldout_every``-th training frame, never fitted; what the thesis most likely measured), each
evenly subsampled to ``eval_frames`` when that is given.  :func:`pca_baseline` adds the best linear
50-d code (PCA of the fitted frames) as a reference row.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
import torch

from lib.config import check_choice
from lib.evaluation.metrics import image_quality
from lib.io import atomic_write_text, load_checkpoint
from lib.models.autoencoders import AE_SIZES, AUTOENCODERS, parse_autoencoder_name
from lib.train.autoencoders import (TRAINING_COMPOSITION, AETrainConfig, augment_frames, composition_frame_indices,
                                    evenly_spaced, load_autoencoder, load_frames, resolve_checkpoint, split_heldout)

KIND_LABELS = {"sae": "Standard", "vae": "Variational"}

# Thesis Table 4 (MUG, 50 epochs, width 1.0): the reference the notebook compares with.
THESIS_TABLE4 = {
    "sae-small": (0.001156, 0.909136), "sae-medium": (0.000984, 0.937786), "sae-large": (0.00086, 0.961358),
    "vae-small": (0.002331, 0.872967), "vae-medium": (0.001905, 0.9062063), "vae-large": (0.001277, 0.938729),
}


def test_frame_rows(cache, eval_frames: int | None = None, composition: str = TRAINING_COMPOSITION) -> np.ndarray:
    """Cache rows of the evaluation frames (test subjects only), evenly subsampled."""
    return evenly_spaced(composition_frame_indices(cache, "test", composition), eval_frames)


def heldout_frame_rows(cache, every: int, eval_frames: int | None = None,
                       composition: str = TRAINING_COMPOSITION) -> np.ndarray:
    """Cache rows of the training subjects' held-out frames (see ``split_heldout``), evenly subsampled."""
    return evenly_spaced(split_heldout(composition_frame_indices(cache, "train", composition), every)[1], eval_frames)


def frame_subjects(cache, rows: np.ndarray) -> np.ndarray:
    """The subject of each cache row."""
    index = cache.index.sort_values("start")
    starts = index["start"].to_numpy(np.int64)
    position = np.searchsorted(starts, np.asarray(rows, np.int64), side="right") - 1
    return index["subject"].to_numpy()[position]


@torch.no_grad()
def reconstruct(model, cache, rows: np.ndarray, batch_size: int = 128) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(real, reconstruction, codes)`` for the given cache rows; images in [-1, 1] on the CPU."""
    model.eval()
    device = next(model.parameters()).device
    reals, recons, codes = [], [], []
    for start in range(0, len(rows), batch_size):
        frames = load_frames(cache, np.asarray(rows[start:start + batch_size]))
        out = model(frames.to(device))
        reals.append(frames)
        recons.append(out["recon"].cpu())
        codes.append(out["z"].cpu())
    return torch.cat(reals), torch.cat(recons), torch.cat(codes)


@torch.no_grad()
def evaluate_autoencoder(model, cache, rows: np.ndarray, batch_size: int = 128) -> dict[str, float]:
    """Mean test MSE, SSIM and PSNR (on [0, 1]) of ``model``'s reconstructions of ``rows``."""
    if len(rows) == 0:
        raise ValueError("no test frames to evaluate; does the cache's split have test subjects?")
    model.eval()
    device = next(model.parameters()).device
    sums = {"mse": 0.0, "ssim": 0.0, "psnr": 0.0}
    for start in range(0, len(rows), batch_size):
        frames = load_frames(cache, np.asarray(rows[start:start + batch_size])).to(device)
        scores = image_quality(frames.double(), model(frames)["recon"].double(), reduction="none")
        for key in sums:
            sums[key] += float(scores[key].sum())
    return {key: value / len(rows) for key, value in sums.items()}


def autoencoder_table(run_dir: str | Path, cache, names: Sequence[str] | None = None, eval_frames: int | None = None,
                      device: str | torch.device = "cpu", progress: bool = True,
                      composition: str = TRAINING_COMPOSITION) -> pd.DataFrame:
    """One row per trained variant: name, type, size, mse, ssim, psnr, parameters, train_seconds, epochs, width."""
    from tqdm.auto import tqdm

    names = list(names or AUTOENCODERS)
    for name in names:
        check_choice("autoencoder", name, AUTOENCODERS)
    rows = test_frame_rows(cache, eval_frames, composition)  # the test frames of the composition it trained on
    records = []
    for name in tqdm(names, desc="evaluating", disable=not progress):
        checkpoint = resolve_checkpoint(run_dir, name)
        state = load_checkpoint(checkpoint)
        model = load_autoencoder(checkpoint, device=device)
        kind, size = parse_autoencoder_name(name)
        every = int(state["config"].get("heldout_every", 0))
        heldout = heldout_frame_rows(cache, every, eval_frames, composition)
        on_heldout = evaluate_autoencoder(model, cache, heldout) if len(heldout) else {}
        records.append({
            "name": name, "type": KIND_LABELS[kind], "size": size,
            **evaluate_autoencoder(model, cache, rows),
            **{f"{key}_heldout": value for key, value in on_heldout.items()},
            "parameters": int(state.get("parameters", sum(p.numel() for p in model.parameters()))),
            "train_seconds": float(state["train_seconds"]), "epochs": int(state["epoch"]),
            "width": float(state["config"]["width"]), "test_frames": len(rows),
        })
    return pd.DataFrame.from_records(records)


def pca_baseline(cache, n_components: int = 50, eval_frames: int | None = None, fit_frames: int = 4000,
                 composition: str = TRAINING_COMPOSITION, heldout_every: int = AETrainConfig.heldout_every,
                 seed: int = 0, augment: bool = False) -> dict[str, Any]:
    """The linear reference row: PCA with ``n_components`` fitted on (up to ``fit_frames`` of) the frames
    the autoencoders fit, scored like them on both test sets (scikit-learn's randomized PCA).

    ``augment``: fitted instead on two copies of those frames, each flipped and colour-jittered at random as
    ``AETrainConfig.augment`` does to the autoencoders' batches, so that an augmented autoencoder meets a
    linear code that saw the same data (row ``pca-50-augmented``)."""
    import time

    from sklearn.decomposition import PCA

    fit_rows, _ = split_heldout(composition_frame_indices(cache, "train", composition), heldout_every)
    fit_rows = evenly_spaced(fit_rows, fit_frames)
    started = time.perf_counter()
    fitted = load_frames(cache, fit_rows)
    if augment:
        jitter = torch.Generator().manual_seed(seed)
        fitted = torch.cat([augment_frames(fitted, jitter) for _ in range(2)])
    pca = PCA(n_components=n_components, svd_solver="randomized", random_state=seed)
    pca.fit(fitted.flatten(1).numpy())
    seconds = time.perf_counter() - started

    def scores(rows: np.ndarray) -> dict[str, float]:
        frames = load_frames(cache, rows)
        codes = pca.transform(frames.flatten(1).numpy())
        recon = torch.from_numpy(pca.inverse_transform(codes)).reshape(frames.shape).clamp(-1, 1)
        quality = image_quality(frames.double(), recon.double(), reduction="none")
        return {key: float(quality[key].mean()) for key in ("mse", "ssim", "psnr")}

    test_rows = test_frame_rows(cache, eval_frames, composition)
    heldout = heldout_frame_rows(cache, heldout_every, eval_frames, composition)
    name = f"pca-{n_components}" + ("-augmented" if augment else "")
    return {"name": name, "type": "Linear (PCA)", "size": "-", **scores(test_rows),
            **({f"{k}_heldout": v for k, v in scores(heldout).items()} if len(heldout) else {}),
            "parameters": int(pca.components_.size + pca.mean_.size), "train_seconds": seconds,
            "epochs": 0, "width": float("nan"), "test_frames": len(test_rows)}


def thesis_table4() -> pd.DataFrame:
    """The thesis's Table 4 as rows (name, type, size, mse, ssim)."""
    records = []
    for name, (mse, ssim) in THESIS_TABLE4.items():
        kind, size = parse_autoencoder_name(name)
        records.append({"name": name, "type": KIND_LABELS[kind], "size": size, "mse": mse, "ssim": ssim})
    return pd.DataFrame.from_records(records)


def table4_layout(table: pd.DataFrame, metrics: Iterable[str] = ("mse", "ssim")) -> pd.DataFrame:
    """Table 4's layout: rows Standard/Variational, columns (size, metric); the linear reference rows (no size)
    are left out."""
    metrics = list(metrics)
    sized = table[table["size"].isin(AE_SIZES)]
    wide = sized.pivot(index="type", columns="size", values=metrics)
    sizes = [s for s in AE_SIZES if s in wide.columns.get_level_values(1)]
    wide = wide.swaplevel(0, 1, axis=1)
    return wide.reindex(columns=pd.MultiIndex.from_product([sizes, metrics])).dropna(how="all")


def to_markdown(table: pd.DataFrame, float_format: str = "{:.6g}") -> str:
    """A GitHub markdown table (pandas' own needs the missing ``tabulate`` package)."""
    def cell(value: Any) -> str:
        if isinstance(value, (float, np.floating)):
            return float_format.format(value)
        return str(value)

    flat = table.copy()
    if isinstance(flat.columns, pd.MultiIndex):
        flat.columns = [" ".join(str(p) for p in col) for col in flat.columns]
    if not isinstance(flat.index, pd.RangeIndex):
        flat = flat.reset_index()
    header = "| " + " | ".join(str(c) for c in flat.columns) + " |"
    rule = "|" + "---|" * len(flat.columns)
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in flat.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def write_table(table: pd.DataFrame, run_dir: str | Path, selected: str | None = None) -> dict[str, Path]:
    """``autoencoders.csv`` and ``autoencoders.md`` (results, Table 4 layout, thesis reference) in ``run_dir``."""
    run_dir = Path(run_dir)
    csv_path = atomic_write_text(run_dir / "autoencoders.csv", table.to_csv(index=False))
    parts = ["# Autoencoders on the test split (MSE, SSIM, PSNR on the [0, 1] scale; `*_heldout`: held-out "
             "frames of the training subjects)", "", to_markdown(table), "",
             "## In the layout of the thesis's Table 4", "", to_markdown(table4_layout(table)), "",
             "## The thesis's Table 4 (MUG, 50 epochs, full width)", "", to_markdown(table4_layout(thesis_table4()))]
    if selected:
        parts += ["", f"Selected autoencoder: **{selected}**"]
    md_path = atomic_write_text(run_dir / "autoencoders.md", "\n".join(parts) + "\n")
    return {"csv": csv_path, "markdown": md_path}


def figure_data(run_dir: str | Path, cache, names: Sequence[str], n_samples: int = 8, max_code_frames: int = 1000,
                device: str | torch.device = "cpu", composition: str = TRAINING_COMPOSITION) -> dict[str, Any]:
    """What the 02 figures need: the same ``n_samples`` test frames and every model's reconstruction of
    them; every model's codes of up to ``max_code_frames`` test frames plus as many training frames
    (for context: where the unseen subjects fall among the training subjects), with their subjects."""
    sample_rows = test_frame_rows(cache, n_samples, composition)
    test_rows = test_frame_rows(cache, max_code_frames, composition)
    train_rows = evenly_spaced(composition_frame_indices(cache, "train", composition), max_code_frames)
    code_rows = np.concatenate([test_rows, train_rows])
    recons, codes = {}, {}
    real = None
    for name in names:
        model = load_autoencoder(run_dir, device=device, name=name)
        real, recons[name], _ = reconstruct(model, cache, sample_rows)
        codes[name] = reconstruct(model, cache, code_rows)[2].numpy()
    return {"real": real, "reconstructions": recons, "codes": codes, "subjects": frame_subjects(cache, code_rows),
            "is_test": np.arange(len(code_rows)) < len(test_rows)}
