"""Learning probes: 05's cheap measures on a fixed set of held-out pairs, during training.

As StyleGAN2-ADA measures its metrics at every snapshot, ``train_gan(..., probe=...)`` calls a
:class:`LearningProbe` every ``probe_every`` steps.  It generates the probe pairs with the
current (EMA) generator and scores them exactly as 05 does (:func:`score_run`): SSIM, CAS by
``trained`` and ``truth``, verification acceptance at the ROC-tuned threshold by ``truth``
and ``ae``, and the ratio of generated to real ACD.  The instruments and the real reference
are built once per probe with 05's instrument seed, so 05 and every training share one trained
instrument of each kind (cached on disk; ``make demo`` trains them before the grid).

The probe pairs follow 05's protocol (held-out emotions of subjects no training video of theirs shows
in that emotion) on the **validation** subjects, carved out of the training subjects
(:func:`lib.data.splits.validation_split`); training leaves their held-out videos out
(:func:`lib.data.splits.training_videos`).  No probe, best snapshot or early stop reads a test subject.

Criteria for the best snapshot (``best_criterion``; higher is better):

- ``headline``: the mean, over the bars of the learning issue, of how far each is met
  (capped at 1): ``verif_truth / 0.6``, ``verif_dlib / 0.6`` (where dlib is installed),
  ``cas_trained / 0.6``, ``cas_truth / 0.6`` and the ACD ratio's closeness to [0.5, 2]; plus
  ``0.1 * ssim`` to order snapshots that meet every bar.
- ``ssim``, ``cas_trained``, ``cas_truth``, ``verif_truth``, ``verif_dlib``: that measure alone.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lib.constants import ACD_RATIO_RANGE
from lib.evaluation.evaluate import (CacheContext, EvaluationConfig, generate_pairs, make_evaluation_config,
                                     prepare_cache, score_run)

PROBE_PAIR_SEED = 7919  # the validation pairs' draw (the instruments are 05's own)
# dlib reads 4 frames per clip (0.24 s a frame here: ~25 s per probe of 24 pairs); left out with a note
# where dlib is not installed
PROBE_EXTRACTORS = ("ae", "truth", "dlib")
PROBE_CLASSIFIERS = ("trained", "truth")
BARS = {"verif_truth": 0.6, "verif_dlib": 0.6, "cas_trained": 0.6, "cas_truth": 0.6}


def _acd_closeness(ratio: float) -> float:
    low, high = ACD_RATIO_RANGE
    if not np.isfinite(ratio) or ratio <= 0:
        return 0.0
    return 1.0 if low <= ratio <= high else (ratio / low if ratio < low else high / ratio)


def probe_measures(metrics: dict, reference: dict) -> dict[str, float]:
    """The probe's named measures (and every criterion) from 05's metrics of one model."""
    out: dict[str, float] = {"ssim": float(metrics["ssim"])}
    for name in PROBE_CLASSIFIERS:
        if f"cas_{name}" in metrics:
            out[f"cas_{name}"] = float(metrics[f"cas_{name}"])
            out[f"real_cas_{name}"] = float(reference[f"cas_{name}"])
    for name in PROBE_EXTRACTORS:
        if f"verif_acc_tuned_{name}" in metrics:
            out[f"verif_{name}"] = float(metrics[f"verif_acc_tuned_{name}"])
        if f"acd_{name}" in metrics and reference.get(f"acd_{name}"):
            out[f"acd_ratio_{name}"] = float(metrics[f"acd_{name}"] / reference[f"acd_{name}"])
    if "face_rate_dlib" in metrics:  # recorded, not part of the headline
        out["face_rate_dlib"] = float(metrics["face_rate_dlib"])
    # a missing measure counts as unmet, except dlib's where dlib is not installed
    parts = [min(1.0, out.get(key, 0.0) / bar) for key, bar in BARS.items() if key != "verif_dlib" or key in out]
    parts.append(_acd_closeness(out.get("acd_ratio_truth", np.nan)))
    out["headline"] = float(np.mean(parts) + 0.1 * out["ssim"])
    return out


@dataclass
class LearningProbe:
    """``probe(trained_generator) -> measures``; see the module doc."""

    context: CacheContext
    config: EvaluationConfig

    def __call__(self, generator) -> dict[str, float]:
        generated = generate_pairs(generator, self.context, self.config)
        metrics, _ = score_run(generated, self.context)
        return probe_measures(metrics, self.context.reference)


def build_learning_probe(run_config, n_pairs: int | None = None, device: str = "cpu") -> LearningProbe:
    """The probe for a resolved run config: its cache, preset and ``probe_pairs``."""
    config = make_evaluation_config(run_config.preset, extractors=list(PROBE_EXTRACTORS),
                                    classifiers=list(PROBE_CLASSIFIERS), n_pairs=n_pairs or run_config.probe_pairs,
                                    seed=PROBE_PAIR_SEED, device=device)
    context = prepare_cache(run_config.cache_dir, config, run_config, subjects="validation")
    missing = [k for k in context.skipped if not k.startswith("roc:")]
    if missing:
        print(f"learning probe: left out {missing}: {[context.skipped[k] for k in missing]}")
    return LearningProbe(context, config)
