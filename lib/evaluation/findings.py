"""The thesis's Table 5 as computed verdicts: for each experimental variable x aspect, the paired effect
over the thesis variants that differ only in that variable, its interval and present / absent / inconclusive.

Pairs (thesis Table 2 models; ``first`` minus ``second``, in the direction the thesis found better):

- composition: ``thesis-mK-seen`` - ``thesis-mK-unseen`` for K = 1..4;
- content encoding: single - all (m3 - m1, m4 - m2), in each composition;
- fine-tuning: frozen - fine-tuned (m2 - m1, m4 - m3), in each composition.

With seeds (runs ``<variant>-seed<N>``) each seed gives its own paired difference (same seed on both
sides).  The effect is the mean difference; its interval a t-interval over the differences.  Verdict:
``present`` when the interval excludes 0, ``absent`` when it lies inside +-``NEGLIGIBLE`` of the aspect
(an equivalence margin), else ``inconclusive``.  A present effect against the thesis's direction is
marked ``present (reversed)``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from lib.paths import split_seed

# Thesis Table 5: True = the variable's influence was found (a check mark), False = absent (a dash).
THESIS_TABLE5: dict[tuple[str, str], bool] = {
    ("composition", "visual quality"): True, ("composition", "identity consistency"): True,
    ("composition", "emotion generation"): False,
    ("content encoding", "visual quality"): False, ("content encoding", "identity consistency"): True,
    ("content encoding", "emotion generation"): False,
    ("fine-tuning", "visual quality"): True, ("fine-tuning", "identity consistency"): False,
    ("fine-tuning", "emotion generation"): True,
}
# Each aspect's measure: the first column present in the results table.
ASPECT_MEASURES: dict[str, tuple[str, ...]] = {
    "visual quality": ("ssim",),
    "identity consistency": ("verif_acc_tuned_truth", "verif_acc_tuned_dlib", "verif_acc_tuned_ae"),
    "emotion generation": ("cas_trained", "cas_truth", "cas_fer"),
}
# Differences this small count as no effect (SSIM units; shares of videos for the rates).
NEGLIGIBLE: dict[str, float] = {"visual quality": 0.02, "identity consistency": 0.05, "emotion generation": 0.05}
COMPOSITION_NAMES = ("seen", "unseen")


def variable_pairs() -> dict[str, list[tuple[str, str]]]:
    """Variable -> [(better-by-the-thesis variant, other variant)]."""
    pairs = {"composition": [(f"thesis-m{k}-seen", f"thesis-m{k}-unseen") for k in range(1, 5)],
             "content encoding": [], "fine-tuning": []}
    for composition in COMPOSITION_NAMES:
        pairs["content encoding"] += [(f"thesis-m3-{composition}", f"thesis-m1-{composition}"),
                                      (f"thesis-m4-{composition}", f"thesis-m2-{composition}")]
        pairs["fine-tuning"] += [(f"thesis-m2-{composition}", f"thesis-m1-{composition}"),
                                 (f"thesis-m4-{composition}", f"thesis-m3-{composition}")]
    return pairs


def verdict(low: float, high: float, negligible: float) -> str:
    if not np.isfinite([low, high]).all():
        return "inconclusive"
    if low > 0:
        return "present"
    if high < 0:
        return "present (reversed)"
    if -negligible <= low and high <= negligible:
        return "absent"
    return "inconclusive"


def paired_differences(table: pd.DataFrame, measure: str, pairs: list[tuple[str, str]]) -> np.ndarray:
    """first - second for every pair and seed found in the table (runs missing on either side are skipped)."""
    values: dict[tuple[str, int | None], float] = {}
    for run, value in zip(table["run"].astype(str), table[measure]):
        if pd.notna(value):
            values[split_seed(run)] = float(value)
    seeds = {seed for _, seed in values}
    return np.asarray([values[(first, seed)] - values[(second, seed)] for first, second in pairs for seed in seeds
                       if (first, seed) in values and (second, seed) in values])


def thesis_findings(table: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame | None:
    """One row per (variable, aspect): measure, n differences, effect, interval, verdict, the thesis's mark.
    None when the table holds no pair of thesis variants."""
    from scipy import stats

    rows = []
    for variable, pairs in variable_pairs().items():
        for aspect, candidates in ASPECT_MEASURES.items():
            measure = next((c for c in candidates if c in table.columns and table[c].notna().any()), None)
            differences = paired_differences(table, measure, pairs) if measure else np.empty(0)
            if len(differences) == 0:
                continue
            effect = float(differences.mean())
            low = high = float("nan")
            if len(differences) >= 2:
                half = stats.t.ppf(0.5 + confidence / 2, len(differences) - 1) * differences.std(ddof=1) \
                    / np.sqrt(len(differences))
                low, high = effect - half, effect + half
            rows.append({"variable": variable, "aspect": aspect, "measure": measure, "n": len(differences),
                         "effect": effect, "effect_lo": low, "effect_hi": high,
                         "verdict": verdict(low, high, NEGLIGIBLE[aspect]),
                         "thesis": "present" if THESIS_TABLE5[(variable, aspect)] else "absent"})
    if not rows:
        return None
    table5 = pd.DataFrame(rows)
    table5["agrees"] = [v == t for v, t in zip(table5["verdict"], table5["thesis"])]
    return table5


def findings_markdown(table5: pd.DataFrame) -> str:
    lines = ["| variable | aspect | measure | n | effect [95% CI] | verdict | thesis |", "|---|---|---|---|---|---|---|"]
    for row in table5.itertuples(index=False):
        interval = f" [{row.effect_lo:+.3f}, {row.effect_hi:+.3f}]" if np.isfinite(row.effect_lo) else ""
        lines.append(f"| {row.variable} | {row.aspect} | {row.measure} | {row.n} | {row.effect:+.3f}{interval} | "
                     f"{row.verdict} | {row.thesis} |")
    return "\n".join(lines) + "\n"
