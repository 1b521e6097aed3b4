"""Every report figure writes a non-empty PNG from a small constructed results table."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lib.constants import EMOTIONS
from lib.evaluation import figures as F
from lib.evaluation.evaluate import write_table

RUNS = [("m1-seen", "m1", "seen"), ("m1-unseen", "m1", "unseen"), ("m2-seen", "m2", "seen"), ("m2-unseen", "m2", "unseen")]


@pytest.fixture(scope="module")
def results():
    rng = np.random.default_rng(0)
    rows = [{"run": "real", "variant": "real", "composition": "real", "acd_ae": 0.4, "cas_fer": 0.7,
             "auc_ae": 0.9, "threshold_default_ae": 0.3, "threshold_tuned_ae": 0.25}]
    arrays = {"real-cache": {"roc_fpr_ae": np.array([0, 0.1, 0.5, 1.0]), "roc_tpr_ae": np.array([0, 0.6, 0.9, 1.0]),
                             "real_distances_ae": rng.uniform(0, 1, 20), "real_same_ae": np.arange(20) < 10}}
    for run, variant, composition in RUNS:
        row = {"run": run, "variant": variant, "composition": composition, "ssim": rng.uniform(0.3, 0.9),
               "mse": rng.uniform(0.01, 0.1), "psnr": rng.uniform(10, 25), "acd_ae": rng.uniform(0.2, 0.8),
               "acd_i_ae": rng.uniform(0.2, 0.8), "verif_acc_default_ae": rng.uniform(), "verif_acc_tuned_ae": rng.uniform(),
               "cas_fer": rng.uniform(), "agreement_fer": rng.uniform()}
        row.update({f"cas_fer_{e}": rng.uniform() for e in EMOTIONS})
        rows.append(row)
        arrays[run] = {"distances_ae": rng.uniform(0, 1, 12), "confusion_fer": rng.integers(0, 4, (6, 6)),
                       "error_map": rng.uniform(0, 0.5, (64, 64)),
                       "input_samples": rng.integers(0, 256, (2, 16, 64, 64, 3), dtype=np.uint8),
                       "target_samples": rng.integers(0, 256, (2, 16, 64, 64, 3), dtype=np.uint8),
                       "generated_samples": rng.integers(0, 256, (2, 16, 64, 64, 3), dtype=np.uint8)}
    return pd.DataFrame(rows), arrays


def _png(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 1000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_each_figure_function_writes_a_png(results, tmp_path):
    table, arrays = results
    paths = [
        F.ssim_bars(table, tmp_path), F.mse_bars(table, tmp_path), F.acd_bars(table, "ae", tmp_path),
        F.cas_bars(table, "fer", tmp_path), F.verification_bars(table, "ae", tmp_path),
        F.agreement_bars(table, "fer", tmp_path), F.per_emotion_bars(table[table["run"] != "real"], "fer", tmp_path),
        F.roc_figure(arrays["real-cache"]["roc_fpr_ae"], arrays["real-cache"]["roc_tpr_ae"], 0.9, 0.25, "ae", tmp_path,
                     arrays["real-cache"]["real_distances_ae"], arrays["real-cache"]["real_same_ae"]),
        F.distance_violins({r: arrays[r]["distances_ae"] for r, *_ in RUNS}, {r: c for r, _, c in RUNS}, "ae", tmp_path,
                           {"default": 0.3, "tuned": 0.25}),
        F.frame_grid({r: arrays[r] for r, *_ in RUNS}, tmp_path, pair=1),
        F.error_heatmaps({r: arrays[r]["error_map"] for r, *_ in RUNS}, tmp_path),
        F.confusion_figure(arrays["m1-seen"]["confusion_fer"], "fer", "confusion.png", tmp_path),
    ]
    assert len(set(paths)) == len(paths)
    for path in paths:
        assert Path(path).parent == tmp_path and _png(Path(path)), path


def test_figures_go_to_the_configured_folder(results, tmp_path, monkeypatch):
    monkeypatch.setenv("VICE_FIGURES_DIR", str(tmp_path / "figs"))
    path = F.ssim_bars(results[0])
    assert path.parent == tmp_path / "figs" and _png(path)


def test_missing_metric_names_the_columns(results, tmp_path):
    with pytest.raises(KeyError, match="ssim"):
        F.metric_bars(results[0], "fid", tmp_path)


def test_draw_all_figures_redraws_from_a_results_folder(results, tmp_path):
    table, arrays = results
    write_table(table, tmp_path / "results", arrays=arrays)
    paths = F.draw_all_figures(tmp_path / "results", tmp_path / "figs")
    names = {p.name for p in paths}
    for expected in ("bars_ssim.png", "bars_mse.png", "bars_acd_ae.png", "bars_cas_fer.png", "roc_ae.png",
                     "violins_ae.png", "verification_ae.png", "bars_agreement_fer.png", "confusion_fer.png",
                     "frames_pair0.png", "error_heatmaps.png", "cas_per_emotion_fer.png"):
        assert expected in names, expected
    assert all(_png(p) for p in paths)
