"""Subject-bootstrap intervals on constructed data with known answers."""
from __future__ import annotations

import numpy as np
import pytest

from lib.evaluation.uncertainty import add_intervals, subject_bootstrap_interval


def test_identical_subjects_give_a_zero_width_interval():
    values = np.array([0.2, 0.4, 0.2, 0.4, 0.2, 0.4])
    low, high = subject_bootstrap_interval(values, ["a", "a", "b", "b", "c", "c"])
    assert low == pytest.approx(0.3) and high == pytest.approx(0.3)


def test_interval_resamples_subjects_not_pairs():
    # two subjects, one always right, one always wrong, 50 pairs each: a pair bootstrap would give
    # about 0.5 +- 0.1; resampling the two subjects gives 0 (both draws wrong) .. 1 (both right)
    values = np.r_[np.ones(50), np.zeros(50)]
    subjects = ["s1"] * 50 + ["s2"] * 50
    low, high = subject_bootstrap_interval(values, subjects, n_resamples=2000)
    assert low == pytest.approx(0.0) and high == pytest.approx(1.0)


def test_interval_covers_the_mean_and_is_deterministic():
    rng = np.random.default_rng(0)
    subjects = np.repeat([f"s{k}" for k in range(8)], 6)
    values = rng.normal(0.5, 0.1, size=len(subjects)) + np.repeat(rng.normal(0, 0.05, 8), 6)
    first = subject_bootstrap_interval(values, subjects, seed=3)
    assert first == subject_bootstrap_interval(values, subjects, seed=3)
    assert first[0] < values.mean() < first[1] and first[1] - first[0] < 0.2


def test_nan_values_are_left_out_and_one_subject_gives_nan():
    low, high = subject_bootstrap_interval([1.0, np.nan, 1.0, 1.0], ["a", "a", "b", "b"])
    assert (low, high) == (1.0, 1.0)
    assert np.isnan(subject_bootstrap_interval([1.0, 0.0], ["a", "a"])).all()
    with pytest.raises(ValueError, match="align"):
        subject_bootstrap_interval([1.0], ["a", "b"])


def test_add_intervals_names_the_columns():
    out = add_intervals({"ssim": 0.5}, {"ssim": np.array([0.4, 0.6])}, ["a", "b"])
    assert set(out) == {"ssim", "ssim_lo", "ssim_hi"} and out["ssim_lo"] <= 0.5 <= out["ssim_hi"]


def test_thesis_findings_verdicts_on_constructed_effects():
    import pandas as pd

    from lib.evaluation.findings import thesis_findings, verdict

    assert verdict(0.01, 0.05, 0.02) == "present"
    assert verdict(-0.05, -0.01, 0.02) == "present (reversed)"
    assert verdict(-0.01, 0.015, 0.02) == "absent"
    assert verdict(-0.05, 0.05, 0.02) == "inconclusive"
    assert verdict(float("nan"), float("nan"), 0.02) == "inconclusive"
    rng = np.random.default_rng(0)
    rows = []
    for seed in (0, 1):
        for model in range(1, 5):
            for composition, shift in (("seen", 0.1), ("unseen", 0.0)):  # seen better in SSIM by 0.1
                rows.append({"run": f"thesis-m{model}-{composition}-seed{seed}",
                             "ssim": 0.5 + shift + rng.normal(0, 0.005),
                             "verif_acc_tuned_truth": 0.5 + rng.normal(0, 0.001),  # no effect anywhere
                             "cas_trained": rng.uniform(0, 1)})  # noise
    table5 = thesis_findings(pd.DataFrame(rows + [{"run": "real", "ssim": np.nan}])).set_index(["variable", "aspect"])
    composition_quality = table5.loc[("composition", "visual quality")]
    assert composition_quality["n"] == 8 and composition_quality["verdict"] == "present"
    assert abs(composition_quality["effect"] - 0.1) < 0.01 and composition_quality["agrees"]
    assert table5.loc[("composition", "identity consistency"), "verdict"] == "absent"
    assert table5.loc[("fine-tuning", "visual quality"), "verdict"] == "absent"  # fine-tuning changes nothing
    assert table5.loc[("content encoding", "emotion generation"), "verdict"] == "inconclusive"
    assert table5.loc[("content encoding", "identity consistency"), "measure"] == "verif_acc_tuned_truth"
    assert thesis_findings(pd.DataFrame({"run": ["baseline-mocogan"], "ssim": [0.3]})) is None
