"""Evaluate trained GAN runs under one protocol and collect one results table.

For every cache (a run is evaluated on the cache recorded in its config) the pairs of
:mod:`lib.evaluation.protocol` are drawn once, a real-video reference is measured once
(reference ACD, classifier accuracy on real test videos, verification ROC on real
same/different-subject pairs, probe errors) and every run generates the same pairs with
the same noise seeds.  Per run: ``results.json`` (metrics) and ``evaluation.npz``
(per-pair arrays: distances, predictions, sample clips, error map) in the run folder.
Headline metrics carry 95% intervals that resample test subjects (``*_lo`` / ``*_hi``,
:mod:`lib.evaluation.uncertainty`).  Across runs: ``results.csv`` / ``results.md`` /
``results.json`` and ``arrays/*.npz`` in the output folder, from which
:func:`lib.evaluation.figures.draw_all_figures` can redraw every figure without evaluating again.
"""
from __future__ import annotations

import glob
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from lib.config import check_choice, check_positive, name_list, to_dict
from lib.constants import EMOTIONS, PRESET_NAMES
from lib.evaluation import verification as V
from lib.evaluation.emotion import CLASSIFIERS, build_classifiers
from lib.evaluation.extractors import EXTRACTORS, build_extractor, dlib_face_rate
from lib.evaluation.findings import findings_markdown, thesis_findings
from lib.evaluation.uncertainty import add_intervals
from lib.paths import TRAIN_DONE_FILE, split_seed
from lib.evaluation.protocol import EvaluationPair, make_pairs, pair_clips, pairs_fingerprint, to_model_video
from lib.io import atomic_write_bytes, atomic_write_json, atomic_write_text

N_SAMPLE_PAIRS = 4  # clips kept per run for the frame-grid figures


# Every emotion classifier, in the order the tables show them (`tiny` keeps to the untrained ones).
FULL_CLASSIFIERS = ("fer", "trained", "truth", "landmarks", "deepface")


@dataclass
class EvaluationConfig:
    extractors: list[str] = field(default_factory=lambda: ["ae", "dlib", "truth"])
    classifiers: list[str] = field(default_factory=lambda: list(FULL_CLASSIFIERS))
    n_pairs: int = 60
    seed: int = 0  # the pairs, their clips and the generators' noise
    instrument_seed: int = 0  # the trained instruments (trained, truth, landmarks): 05 and the learning probes share them
    preset: str = "small"
    batch_size: int = 16
    real_pairs: int = 400  # real same/different-subject pairs for the ROC
    real_videos: int | None = 120  # real test videos measured for the reference (None = all)
    device: str = "cpu"


# dlib's ResNet runs at ~0.2 s per frame on this CPU build (no BLAS), and the probes need
# training, so `tiny` (tests, nbval) keeps to the fast instruments.
EVALUATION_PRESETS = {
    "tiny": {"n_pairs": 8, "real_pairs": 120, "real_videos": 24, "extractors": ["ae"],
             "classifiers": ["fer", "deepface"]},
    # dlib reads 4 frames per clip: 96 descriptor calls per run (~25 s at 240 ms each) plus ~260 for the
    # real reference; `small` includes it since the learning issue's identity bar is dlib's.
    "small": {"n_pairs": 24, "real_pairs": 400, "real_videos": 36, "extractors": ["ae", "truth", "dlib"],
              "classifiers": list(FULL_CLASSIFIERS)},
    "paper": {"n_pairs": 300, "real_pairs": 2000, "real_videos": None,
              "extractors": ["ae", "facenet", "dlib", "truth"], "classifiers": list(FULL_CLASSIFIERS)},
}


def make_evaluation_config(preset: str = "small", custom_extractors=(), **overrides) -> EvaluationConfig:
    """Preset numbers with ``None`` overrides ignored; every name validated before any work.

    ``custom_extractors`` names extractor objects given directly (not from the registry).
    """
    check_choice("preset", preset, PRESET_NAMES)
    values = {**EVALUATION_PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None}}
    config = EvaluationConfig(preset=preset, **values)
    config.extractors, config.classifiers = name_list(config.extractors), name_list(config.classifiers)
    for name in config.extractors:
        check_choice("extractor", name, list(EXTRACTORS) + list(custom_extractors))
    for name in config.classifiers:
        check_choice("classifier", name, CLASSIFIERS)
    check_positive("n_pairs", config.n_pairs)
    return config


# --------------------------------------------------------------------------- finding runs
def find_runs(runs=None) -> list[Path]:
    """Run folders to evaluate: ``None`` = every finished GAN run (a folder with train_done.json)
    under lib.paths.runs_dir(); else a list of folders or glob patterns (or one string)."""
    from lib.paths import runs_dir

    if runs is None:
        found = sorted(p.parent for p in runs_dir().glob(f"**/{TRAIN_DONE_FILE}"))
        if not found:
            raise FileNotFoundError(f"no finished GAN run (a folder with {TRAIN_DONE_FILE}) under {runs_dir()}; "
                                    "train one with notebooks/03_train.ipynb or 04_ablations.ipynb")
        return found
    patterns = name_list(runs)
    found = []
    for pattern in patterns:
        matches = sorted(Path(p) for p in glob.glob(str(Path(pattern).expanduser()))) or [Path(pattern)]
        for path in matches:
            if not (path / TRAIN_DONE_FILE).is_file():
                raise FileNotFoundError(f"{path} is not a finished GAN run (no {TRAIN_DONE_FILE}); finish its training "
                                        "with notebooks/03_train.ipynb (run_dir=that folder) or leave it out")
            found.append(path.resolve())
    return list(dict.fromkeys(found))


def variant_label(run_name: str) -> str:
    """The run name without its composition, so seen/unseen runs of one variant share a bar group."""
    parts = [p for p in run_name.replace("_", "-").split("-") if p not in ("seen", "unseen")]
    return "-".join(parts) or run_name


# --------------------------------------------------------------------------- real reference
@dataclass
class CacheContext:
    """Everything measured once per cache and shared by every run on it."""
    cache: object
    cache_dir: str
    pairs: list[EvaluationPair]
    fingerprint: str
    input_clips: np.ndarray  # uint8 (P, T, H, W, 3)
    target_clips: np.ndarray
    extractors: dict
    classifiers: dict
    skipped: dict
    input_features: dict = field(default_factory=dict)  # name -> (P, D) first input frame
    target_features: dict = field(default_factory=dict)  # name -> (P, T, D)
    thresholds: dict = field(default_factory=dict)  # name -> {"default", "default_source", "tuned"}
    real_probas: dict = field(default_factory=dict)  # classifier -> (P, 6) on real target clips
    reference: dict = field(default_factory=dict)  # the "real" table row
    arrays: dict = field(default_factory=dict)  # ROC curves etc. for the figures
    face_rate: bool = False  # dlib's face detector is available: measure the share of frames with a face


def _features(extractor, clips: np.ndarray) -> np.ndarray:
    """(P, T', D) features of (P, T, H, W, 3) clips; T' = the extractor's ``clip_frames`` (evenly spaced,
    first and last included) when it reads fewer than T frames, so ACD and video distances of a slow
    extractor are estimated from those frames, for generated and real clips alike."""
    limit = getattr(extractor, "clip_frames", None)
    if limit and clips.shape[1] > limit:
        clips = clips[:, np.linspace(0, clips.shape[1] - 1, limit).round().astype(np.int64)]
    p, t = clips.shape[:2]
    return extractor.extract(clips.reshape(p * t, *clips.shape[2:])).reshape(p, t, -1)


PAIR_SUBJECTS = ("test", "validation")  # whose videos the pairs and the real reference come from


def prepare_cache(cache_dir: str, config: EvaluationConfig, run_config=None, custom_extractors=None,
                  subjects: str = "test") -> CacheContext:
    """Pairs, real reference and instruments for scoring.  ``subjects="test"`` is 05's protocol on the test
    subjects; ``"validation"`` draws the same protocol from the validation subjects carved out of the training
    subjects (:func:`lib.data.splits.validation_cache`): what training's probes score, so that no snapshot is
    chosen on a test subject.  The instruments are 05's either way."""
    from lib.data.cache import load_cache
    from lib.data.clips import sample_clip_indices

    from lib.data.splits import validation_cache

    check_choice("subjects", subjects, PAIR_SUBJECTS)
    cache = load_cache(cache_dir)
    if cache.split is None:
        raise ValueError(f"the cache {cache_dir} has no split.json; rebuild it with notebooks/01_preprocess.ipynb")
    pair_cache = validation_cache(cache) if subjects == "validation" else cache
    split = pair_cache.split
    pairs = make_pairs(pair_cache, config.n_pairs, config.seed)
    clips = [pair_clips(cache, p) for p in pairs]
    context = CacheContext(cache, str(cache_dir), pairs, pairs_fingerprint(pairs),
                           np.stack([c[0] for c in clips]), np.stack([c[1] for c in clips]), {}, {}, {})
    for name in config.extractors:
        if name in (custom_extractors or {}):
            context.extractors[name] = custom_extractors[name]
            continue
        try:
            context.extractors[name] = build_extractor(name, cache, run_config, config.preset, config.instrument_seed,
                                                       config.device)
        except (FileNotFoundError, ValueError, ImportError) as reason:
            context.skipped[f"extractor:{name}"] = str(reason)
    context.classifiers, skipped = build_classifiers(config.classifiers, cache, config.preset, config.instrument_seed,
                                                     config.device)
    context.skipped.update({f"classifier:{k}": v for k, v in skipped.items()})

    # One clip of every real test-subject video (fixed RNG) for the reference numbers.
    rng = np.random.default_rng(config.seed + 1)
    test_rows = cache.index[cache.index["subject"].astype(str).isin([str(s) for s in split.test_subjects])]
    if config.real_videos is not None and len(test_rows) > config.real_videos:
        test_rows = test_rows.iloc[np.sort(rng.choice(len(test_rows), config.real_videos, replace=False))]
    real_clips = np.stack([cache.video(int(v), sample_clip_indices(int(n), rng=rng))
                           for v, n in zip(test_rows["video_id"], test_rows["length"])])
    subjects = test_rows["subject"].astype(str).to_numpy()
    reference = {"run": "real", "variant": "real", "composition": "real", "cache_dir": str(cache_dir),
                 "pairs_fingerprint": context.fingerprint, "n_real_videos": int(len(test_rows))}
    try:  # cheap (the detector alone), so measured whenever dlib is installed
        reference["face_rate_dlib"] = float(dlib_face_rate(real_clips).mean())
        context.face_rate = True
    except ImportError as reason:
        context.skipped["face_rate_dlib"] = f"dlib is not installed ({reason})"
    pair_list = V.real_pairs(subjects, rng, config.real_pairs)
    extra_clips, reference["roc_subjects"] = None, "test"
    if not _has_both_pair_kinds(pair_list):
        # Too few test subjects for different-subject pairs: the threshold is a property of the
        # extractor on real faces, so tune it on training subjects' videos too (recorded).
        train_rows = cache.index[cache.index["subject"].astype(str).isin([str(s) for s in split.train_subjects])]
        if config.real_videos is not None and len(train_rows) > config.real_videos:
            train_rows = train_rows.iloc[np.sort(rng.choice(len(train_rows), config.real_videos, replace=False))]
        if len(train_rows):
            extra_clips = np.stack([cache.video(int(v), sample_clip_indices(int(n), rng=rng))
                                    for v, n in zip(train_rows["video_id"], train_rows["length"])])
            subjects = np.concatenate([subjects, train_rows["subject"].astype(str).to_numpy()])
            pair_list = V.real_pairs(subjects, rng, config.real_pairs)
            reference["roc_subjects"] = "test+train"
    for name, extractor in tqdm(context.extractors.items(), desc="real reference features", leave=False):
        real_features = _features(extractor, real_clips)
        roc_features = real_features if extra_clips is None else np.concatenate(
            [real_features, _features(extractor, extra_clips)])
        context.target_features[name] = _features(extractor, context.target_clips)
        context.input_features[name] = _features(extractor, context.input_clips[:, :1])[:, 0]
        reference[f"acd_{name}"] = float(np.mean([V.acd(f) for f in real_features]))
        for key, value in extractor.report.items():
            if isinstance(value, (int, float)):
                reference[f"{name}_{key}"] = value
        if _has_both_pair_kinds(pair_list):
            distances = np.array([V.video_distance(roc_features[i], roc_features[j]) for i, j, _ in pair_list])
            same = np.array([s for *_, s in pair_list])
            roc = V.roc_from_distances(distances, same)
            pretrained = extractor.report.get("source", "pretrained").startswith("pretrained")
            default, source = V.default_threshold(name, distances[same], distances[~same], pretrained)
            context.thresholds[name] = {"default": default, "default_source": source, "tuned": roc.tuned_threshold}
            reference.update({f"auc_{name}": roc.auc, f"threshold_default_{name}": default,
                              f"threshold_tuned_{name}": roc.tuned_threshold,
                              f"verif_acc_default_{name}": V.verification_accuracy(distances[same], default),
                              f"verif_acc_tuned_{name}": V.verification_accuracy(distances[same], roc.tuned_threshold),
                              f"real_pair_accuracy_tuned_{name}": roc.tuned_accuracy,
                              f"eer_{name}": roc.eer, f"threshold_eer_{name}": roc.eer_threshold})
            context.arrays.update({f"roc_fpr_{name}": roc.fpr, f"roc_tpr_{name}": roc.tpr,
                                   f"real_distances_{name}": distances, f"real_same_{name}": same})
        else:
            context.skipped[f"roc:{name}"] = "a ROC curve needs >= 2 subjects, one of them with >= 2 videos"
    real_labels = test_rows["label"].to_numpy()
    for name, classifier in tqdm(context.classifiers.items(), desc="real reference emotions", leave=False):
        proba = _batched_proba(classifier, real_clips, config.batch_size)
        context.real_probas[name] = _batched_proba(classifier, context.target_clips, config.batch_size)
        reference[f"cas_{name}"] = float((proba.argmax(1) == real_labels).mean())
        for emotion_index, emotion in enumerate(EMOTIONS):
            mask = real_labels == emotion_index
            reference[f"cas_{name}_{emotion}"] = float((proba.argmax(1)[mask] == emotion_index).mean()) if mask.any() else np.nan
        context.arrays[f"confusion_{name}"] = confusion_matrix(real_labels, proba.argmax(1))
        for key, value in classifier.report.items():
            if isinstance(value, (int, float)):
                reference[f"{name}_{key}"] = value
    context.reference = reference
    return context


def _has_both_pair_kinds(pairs) -> bool:
    return len({same for *_, same in pairs}) == 2


def _batched_proba(classifier, clips: np.ndarray, batch_size: int) -> np.ndarray:
    return np.concatenate([classifier.predict_proba(clips[i:i + batch_size]) for i in range(0, len(clips), batch_size)])


def confusion_matrix(true_labels, predicted_labels, n_classes: int = len(EMOTIONS)) -> np.ndarray:
    """Counts: rows = true (target) emotion, columns = predicted emotion."""
    matrix = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(matrix, (np.asarray(true_labels, int), np.asarray(predicted_labels, int)), 1)
    return matrix


# --------------------------------------------------------------------------- one run
def generate_pairs(generator, context: CacheContext, config: EvaluationConfig) -> np.ndarray:
    """uint8 (P, 16, H, W, 3) generated for every pair; batches and noise seeds are the same for every model."""
    from lib.io import to_uint8_frames

    out = []
    labels = torch.tensor([p.target_label for p in context.pairs], dtype=torch.long)
    for batch_number, start in enumerate(tqdm(range(0, len(context.pairs), config.batch_size),
                                              desc="generating", leave=False)):
        inputs = to_model_video(context.input_clips[start:start + config.batch_size])
        with torch.no_grad():
            videos = generator.generate(inputs, labels[start:start + config.batch_size],
                                        seed=config.seed * 100_003 + batch_number)
        out.extend(to_uint8_frames(v) for v in videos.cpu())
    return np.stack(out)


def score_run(generated: np.ndarray, context: CacheContext) -> tuple[dict, dict]:
    """Metrics (flat dict) and per-pair arrays of one model's generated clips."""
    from lib.evaluation.metrics import image_quality

    pairs, metrics, arrays = context.pairs, {}, {}
    per_pairs: dict[str, np.ndarray] = {}  # the headline metrics' per-pair values, for subject-bootstrap intervals
    n, t = generated.shape[:2]
    real = torch.from_numpy(context.target_clips[:, :t]).permute(0, 1, 4, 2, 3).reshape(n * t, 3, *generated.shape[2:4])
    fake = torch.from_numpy(generated).permute(0, 1, 4, 2, 3).reshape(n * t, 3, *generated.shape[2:4])
    quality = image_quality(real, fake, reduction="none")
    for key, values in quality.items():
        per_pair = values.reshape(n, t).double().mean(1).numpy()
        metrics[key] = float(per_pair.mean())
        arrays[f"{key}_per_pair"] = per_pair
        per_pairs[key] = per_pair
    arrays["error_map"] = np.abs(generated.astype(np.float32) - context.target_clips[:, :t].astype(np.float32)).mean(
        axis=(0, 1, 4)) / 255.0
    for name, extractor in context.extractors.items():
        features = _features(extractor, generated)
        acd = np.array([V.acd(f) for f in features])
        acd_i = np.array([V.acd_input(i, f) for i, f in zip(context.input_features[name], features)])
        distances = np.array([V.video_distance(f, r) for f, r in zip(features, context.target_features[name])])
        metrics.update({f"acd_{name}": float(acd.mean()), f"acd_i_{name}": float(acd_i.mean()),
                        f"verif_distance_{name}": float(distances.mean())})
        arrays.update({f"acd_{name}": acd, f"acd_i_{name}": acd_i, f"distances_{name}": distances})
        per_pairs[f"acd_{name}"] = acd
        if name in context.thresholds:
            thresholds = context.thresholds[name]
            metrics[f"verif_acc_default_{name}"] = V.verification_accuracy(distances, thresholds["default"])
            metrics[f"verif_acc_tuned_{name}"] = V.verification_accuracy(distances, thresholds["tuned"])
            per_pairs[f"verif_acc_tuned_{name}"] = (distances <= thresholds["tuned"]).astype(np.float64)
    if context.face_rate:
        per_pairs["face_rate_dlib"] = dlib_face_rate(generated)
        metrics["face_rate_dlib"] = float(per_pairs["face_rate_dlib"].mean())
    targets = np.array([p.target_label for p in pairs])
    for name, classifier in context.classifiers.items():
        predicted = classifier.predict_proba(generated).argmax(1)
        real_predicted = context.real_probas[name].argmax(1)
        metrics[f"cas_{name}"] = float((predicted == targets).mean())
        per_pairs[f"cas_{name}"] = (predicted == targets).astype(np.float64)
        metrics[f"agreement_{name}"] = float((predicted == real_predicted).mean())
        for index, emotion in enumerate(EMOTIONS):
            mask = targets == index
            metrics[f"cas_{name}_{emotion}"] = float((predicted[mask] == index).mean()) if mask.any() else np.nan
        arrays[f"predicted_{name}"] = predicted
        arrays[f"confusion_{name}"] = confusion_matrix(targets, predicted)
    arrays["target_labels"] = targets
    metrics = add_intervals(metrics, per_pairs, [p.subject for p in pairs])
    return metrics, arrays


def evaluate_run(run_dir, context: CacheContext, config: EvaluationConfig, generator=None) -> tuple[dict, dict]:
    """Evaluate one finished run on its cache's context; writes results.json and evaluation.npz."""
    run_dir = Path(run_dir)
    if generator is None:
        from lib.train.systems import load_generator

        generator = load_generator(run_dir, device=config.device)
    started = time.time()
    generated = generate_pairs(generator, context, config)
    metrics, arrays = score_run(generated, context)
    run_config = getattr(generator, "config", None)
    row = {"run": run_dir.name, "variant": variant_label(run_dir.name),
           "system": getattr(run_config, "system", "vicegan"),
           "composition": getattr(run_config, "composition", "unknown"),
           "encoder": getattr(run_config, "encoder", "unknown"),
           "content_mode": getattr(run_config, "content_mode", ""),
           "snapshot": getattr(generator, "snapshot", "latest"),  # best.pt (best probe) when the run has one
           "run_dir": str(run_dir), "cache_dir": context.cache_dir, "pairs_fingerprint": context.fingerprint,
           "n_pairs": len(context.pairs), "seed": config.seed, **metrics,
           "seconds": round(time.time() - started, 2)}
    arrays.update(input_samples=context.input_clips[:N_SAMPLE_PAIRS], target_samples=context.target_clips[:N_SAMPLE_PAIRS],
                  generated_samples=generated[:N_SAMPLE_PAIRS], composition=np.array(row["composition"]))
    atomic_write_json(run_dir / "results.json", {"metrics": row, "evaluation_config": to_dict(config),
                                                 "thresholds": context.thresholds, "skipped": context.skipped,
                                                 "real_reference": context.reference})
    _save_npz(run_dir / "evaluation.npz", arrays)
    return row, arrays


def _previous_result(run_dir: Path, context: CacheContext, config: EvaluationConfig) -> tuple[dict, dict] | None:
    """The stored (row, arrays) of a run if they are still valid for these pairs and settings."""
    from lib.io import read_json

    results, arrays_path = run_dir / "results.json", run_dir / "evaluation.npz"
    if not (results.is_file() and arrays_path.is_file()):
        return None
    stored = read_json(results)
    checkpoints = [p.stat().st_mtime for p in run_dir.glob("*.pt")]
    if (stored.get("evaluation_config") != to_dict(config)
            or stored.get("metrics", {}).get("pairs_fingerprint") != context.fingerprint
            or stored.get("real_reference", {}).get("cache_dir") != context.cache_dir
            or (checkpoints and max(checkpoints) > results.stat().st_mtime)):
        return None
    with np.load(arrays_path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    return stored["metrics"], arrays


def _save_npz(path: Path, arrays: dict) -> Path:
    import io

    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{k: np.asarray(v) for k, v in arrays.items()})
    return atomic_write_bytes(path, buffer.getvalue())


# --------------------------------------------------------------------------- many runs
def run_config(run_dir):
    """The resolved options a finished run stored in its ``config.json`` (cache, composition, encoder...)."""
    from lib.io import read_run_config
    from lib.train.options import config_from_dict

    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: {run_dir} is not a 03_train run folder (or it was damaged)")
    return config_from_dict(read_run_config(path))


def evaluate_runs(run_dirs=None, extractors=None, classifiers=None, n_pairs=None, seed: int = 0,
                  out_dir=None, preset: str = "small", device: str = "cpu", load_generator=None,
                  reuse: bool = True, config: EvaluationConfig | None = None) -> pd.DataFrame:
    """Evaluate runs (see :func:`find_runs`), returning one row per run plus a ``real`` row per cache.

    ``config``: an :class:`EvaluationConfig` already made (and validated) by :func:`make_evaluation_config`,
    as notebook 05 does; it then replaces ``classifiers``, ``n_pairs``, ``seed``, ``preset`` and the extractor
    names (``extractors`` then only brings extractor objects).

    With ``out_dir`` the table is written as results.csv / results.md / results.json and
    the per-run arrays are copied to ``out_dir/arrays/`` for :func:`draw_all_figures`.
    ``load_generator(run_dir, device)`` defaults to :func:`lib.train.systems.load_generator` (any system's run folder).
    With ``reuse`` a run whose results.json was written with the same pairs and settings
    after its last checkpoint is not evaluated again (an interrupted sweep resumes).
    """
    from lib.utils import resolve_device

    if load_generator is None:
        from lib.train.systems import load_generator
    # extractor objects (anything with .name and .extract) may be given beside registry names
    custom = {e.name: e for e in (extractors or []) if not isinstance(e, str)}
    if config is not None:
        if classifiers is not None or n_pairs is not None or isinstance(extractors, str) or \
                any(isinstance(e, str) for e in extractors or []):
            raise ValueError("with config, leave classifiers and n_pairs out; extractors may only bring the "
                             "extractor objects its names refer to")
    else:
        if extractors is not None and not isinstance(extractors, str):
            extractors = [e if isinstance(e, str) else e.name for e in extractors]
        config = make_evaluation_config(preset, custom_extractors=custom, extractors=extractors,
                                        classifiers=classifiers, n_pairs=n_pairs, seed=seed,
                                        device=str(resolve_device(device)))
    runs = find_runs(run_dirs)
    run_configs = {run: run_config(run) for run in runs}  # config.json: no generator is loaded to find its cache
    by_cache: dict[str, list[Path]] = {}
    for run, cfg in run_configs.items():
        by_cache.setdefault(str(Path(cfg.cache_dir).resolve()), []).append(run)
    rows, all_arrays = [], {}
    for cache_dir, cache_runs in by_cache.items():
        context = prepare_cache(cache_dir, config, run_configs[cache_runs[0]], custom)
        rows.append(dict(context.reference))
        all_arrays[f"real-{Path(cache_dir).name}"] = context.arrays
        for run in tqdm(cache_runs, desc=f"evaluating runs on {Path(cache_dir).name}"):
            previous = _previous_result(run, context, config) if reuse else None
            row, arrays = previous or evaluate_run(run, context, config, load_generator(run, device=config.device))
            rows.append(row)
            all_arrays[run.name] = arrays
    table = pd.DataFrame(rows)
    if out_dir is not None:
        from lib.io import save_config

        save_config(config, Path(out_dir) / "config.json")
        write_table(table, out_dir, config, all_arrays)
    return table


def write_table(table: pd.DataFrame, out_dir, config: EvaluationConfig | None = None, arrays: dict | None = None) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "results.csv", table.to_csv(index=False))
    atomic_write_text(out_dir / "results.md", results_markdown(table))
    atomic_write_json(out_dir / "results.json", {"config": to_dict(config) if config else None,
                                                 "rows": table.replace({np.nan: None}).to_dict(orient="records")})
    table5 = thesis_findings(table)
    if table5 is not None:  # thesis Table 5 as computed verdicts (needs pairs of thesis variants)
        atomic_write_text(out_dir / "findings.csv", table5.to_csv(index=False))
        atomic_write_text(out_dir / "findings.md", findings_markdown(table5))
    by_variant = aggregate_over_seeds(table)
    if by_variant is not None:
        atomic_write_text(out_dir / "results_by_variant.csv", by_variant.to_csv(index=False))
        atomic_write_text(out_dir / "results_by_variant.md", results_markdown(by_variant, first=("n_seeds",)))
    for name, values in (arrays or {}).items():
        _save_npz(out_dir / "arrays" / f"{name}.npz", values)
    return out_dir


SUMMARY_COLUMNS = ("run", "composition", "ssim", "mse", "psnr")


def aggregate_over_seeds(table: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame | None:
    """Runs named ``<variant>-seed<N>`` (a grid trained with ``seeds``) grouped by variant: each metric's
    mean over the seeds, with a ``confidence`` t-interval across seeds (``_lo``/``_hi``; needs 2 seeds)
    in place of the per-run subject-bootstrap one.  None when no run has a seed suffix."""
    from scipy import stats

    names = table["run"].astype(str).map(split_seed)
    seeded = table[[seed is not None for _, seed in names]].assign(run=[v for v, s in names if s is not None])
    if seeded.empty:
        return None
    metrics = [c for c in seeded.columns if not c.endswith(("_lo", "_hi")) and c not in ("run", "variant")
               and pd.api.types.is_numeric_dtype(seeded[c])]
    rows = []
    for variant, group in seeded.groupby("run", sort=False):
        row = {"run": variant, "n_seeds": len(group)}
        if "composition" in group:
            row["composition"] = group["composition"].iloc[0]
        for column in metrics:
            values = group[column].dropna().to_numpy(float)
            row[column] = values.mean() if len(values) else np.nan
            if len(values) >= 2:
                half = stats.t.ppf(0.5 + confidence / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
                row[f"{column}_lo"], row[f"{column}_hi"] = row[column] - half, row[column] + half
        rows.append(row)
    return pd.DataFrame(rows)


def results_markdown(table: pd.DataFrame, first: tuple[str, ...] = ()) -> str:
    """The main columns as a markdown table (every column is in results.csv); a value with an
    interval (subject bootstrap, or across seeds) reads ``value [low, high]``."""
    wanted = [c for c in table.columns if not c.endswith(("_lo", "_hi")) and (
        c in SUMMARY_COLUMNS + first or c.startswith(("acd", "verif_acc", "auc_", "agreement_", "face_rate"))
        or (c.startswith("cas_") and c.count("_") == 1))]
    header = "| " + " | ".join(wanted) + " |\n|" + "---|" * len(wanted) + "\n"
    lines = []
    for _, row in table.iterrows():
        cells = []
        for column in wanted:
            cell = _fmt(row[column])
            low, high = row.get(f"{column}_lo"), row.get(f"{column}_hi")
            if cell and isinstance(low, float) and isinstance(high, float) and np.isfinite([low, high]).all():
                cell += f" [{_fmt(low)}, {_fmt(high)}]"
            cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    return header + "\n".join(lines) + "\n"


def _fmt(value) -> str:
    if isinstance(value, float):
        return "" if np.isnan(value) else f"{value:.4g}"
    return str(value)


def load_results(results_dir) -> tuple[pd.DataFrame, dict[str, dict[str, np.ndarray]]]:
    """The table and per-run arrays written by :func:`evaluate_runs` (for redrawing figures)."""
    results_dir = Path(results_dir)
    csv = results_dir / "results.csv"
    if not csv.is_file():
        raise FileNotFoundError(f"no results.csv in {results_dir}; run notebooks/05_evaluate.ipynb first")
    arrays = {}
    for path in sorted((results_dir / "arrays").glob("*.npz")):
        with np.load(path, allow_pickle=False) as data:
            arrays[path.stem] = {k: data[k] for k in data.files}
    return pd.read_csv(csv), arrays


def comparison_rows(arrays: dict[str, dict[str, np.ndarray]], runs: Sequence[str] | None = None,
                    n_pairs: int = N_SAMPLE_PAIRS) -> tuple[list[list[np.ndarray]], list[str], list[str]]:
    """The sample pairs as a grid for :func:`lib.display.show_video_grid`: one row per pair (labelled with
    its target emotion), columns input | real target | each run's video (only runs scored on the same
    pairs as the first one).  Returns (rows, column labels, row labels)."""
    runs = [r for r in (runs if runs is not None else arrays) if r in arrays and "generated_samples" in arrays[r]]
    if not runs:
        raise ValueError("no evaluated run with sample videos in these results")
    first = arrays[runs[0]]
    same = [r for r in runs if np.array_equal(arrays[r]["input_samples"], first["input_samples"])]
    count = min(n_pairs, len(first["input_samples"]))
    rows = [[first["input_samples"][i], first["target_samples"][i]] + [arrays[r]["generated_samples"][i] for r in same]
            for i in range(count)]
    labels = first.get("target_labels")
    row_labels = [EMOTIONS[int(labels[i])] for i in range(count)] if labels is not None else [str(i) for i in range(count)]
    return rows, ["input", "real target", *same], row_labels
