"""How often real pretrained face detectors find the face in synthetic benchmark frames.

Samples frames of a generated preset (generated on first use, or an existing
dataset via --data), runs facenet-pytorch's MTCNN and dlib's HOG frontal face
detector (upsample 0, then 1 when nothing is found), and checks that each box
holds the ground-truth landmarks' centre.  Prints and writes a JSON summary.

    .venv/bin/python benchmarks/synthetic_detection.py --preset small --frames 300 --seed 0
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lib.compat import import_facenet_pytorch  # noqa: E402
from lib.data.synthetic import META_NAME, SYNTHETIC_PRESETS, ensure_synthetic, load_truth  # noqa: E402
from lib.io import atomic_write_json, read_json  # noqa: E402
from lib.paths import runs_dir  # noqa: E402


def sample_frames(root: Path, n_frames: int, seed: int) -> list[tuple[Path, str, int]]:
    """(take folder, emotion, frame index) for ``n_frames`` frames drawn uniformly from all frames."""
    videos = read_json(root / META_NAME)["videos"]
    offsets = np.cumsum([0] + [v[3] for v in videos])
    picks = np.random.default_rng(seed).choice(offsets[-1], size=min(n_frames, offsets[-1]), replace=False)
    out = []
    for p in np.sort(picks):
        v = int(np.searchsorted(offsets, p, side="right") - 1)
        subject, emotion, take, _ = videos[v]
        out.append((root / subject / emotion / take, emotion, int(p - offsets[v])))
    return out


def _contains(box, point) -> bool:
    x1, y1, x2, y2 = box
    return x1 <= point[0] <= x2 and y1 <= point[1] <= y2


def measure(root: Path, n_frames: int, seed: int) -> dict:
    import dlib
    import torch

    torch.set_num_threads(1)  # small images: threads only add overhead on a shared CPU
    mtcnn = import_facenet_pytorch().MTCNN(keep_all=False)
    hog = dlib.get_frontal_face_detector()
    hits: dict[str, list[bool]] = defaultdict(list)
    per_emotion: dict[str, list[bool]] = defaultdict(list)
    seconds = defaultdict(float)
    truth_cache: dict[Path, np.ndarray] = {}
    for take_dir, emotion, index in tqdm(sample_frames(root, n_frames, seed), desc="detecting", unit="frame"):
        if take_dir not in truth_cache:
            truth_cache[take_dir] = load_truth(take_dir)["landmarks"]
        centre = truth_cache[take_dir][index].mean(axis=0)
        image = np.asarray(Image.open(take_dir / f"img_{index:04d}.jpg").convert("RGB"))

        start = time.perf_counter()
        boxes, _ = mtcnn.detect(image)
        seconds["mtcnn"] += time.perf_counter() - start
        found_mtcnn = boxes is not None and _contains(boxes[0], centre)

        start = time.perf_counter()
        rects = hog(image, 0)
        found_dlib0 = any(_contains((r.left(), r.top(), r.right(), r.bottom()), centre) for r in rects)
        if not found_dlib0:
            rects = hog(image, 1)
        seconds["dlib"] += time.perf_counter() - start
        found_dlib = found_dlib0 or any(_contains((r.left(), r.top(), r.right(), r.bottom()), centre) for r in rects)

        hits["mtcnn"].append(found_mtcnn)
        hits["dlib_upsample0"].append(found_dlib0)
        hits["dlib"].append(found_dlib)
        hits["both"].append(found_mtcnn and found_dlib)
        per_emotion[emotion].append(found_mtcnn and found_dlib)
    n = len(hits["mtcnn"])
    meta = read_json(root / META_NAME)
    return {
        "dataset": str(root), "preset": meta["preset"], "seed": meta["seed"], "frame_size": meta["frame_size"],
        "frames_sampled": n, "sample_seed": seed,
        "detection_rate": {k: round(float(np.mean(v)), 4) for k, v in hits.items()},
        "both_rate_per_emotion": {k: round(float(np.mean(v)), 4) for k, v in sorted(per_emotion.items())},
        "ms_per_frame": {k: round(1000 * v / max(n, 1), 2) for k, v in seconds.items()},
        "note": "a detection counts only if the box contains the centre of the ground-truth landmarks; "
                "dlib tries upsample 1 when upsample 0 finds nothing",
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="small", choices=list(SYNTHETIC_PRESETS))
    parser.add_argument("--frames", type=int, default=300, help="number of frames to sample")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed and frame-sampling seed")
    parser.add_argument("--data", default=None, help="an existing synthetic dataset (default: generate/reuse the preset's)")
    parser.add_argument("--json", default=None, help="output JSON (default: <runs_dir>/benchmarks/synthetic_detection-<preset>-seed<seed>.json)")
    args = parser.parse_args(argv)
    root = Path(args.data) if args.data else ensure_synthetic(args.preset, args.seed)
    if not (root / META_NAME).is_file():
        raise FileNotFoundError(f"{root} has no {META_NAME}; generate it with `python -m lib.data.synthetic --out {root}`")
    result = measure(root, args.frames, args.seed)
    out = Path(args.json) if args.json else runs_dir() / "benchmarks" / f"synthetic_detection-{result['preset']}-seed{args.seed}.json"
    atomic_write_json(out, result)
    print(json.dumps(result, indent=2))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
