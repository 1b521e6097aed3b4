"""Real photographs through trained runs: does the face stay the person's, and does the expression change?

The photographs are the real faces that ship offline with installed packages (scikit-image's ``astronaut``,
matplotlib's ``grace_hopper``), none of them in any training data. Each run generates all six emotions from each
(``lib.generate``: MTCNN crop as 01's, the run's resolution), and three instruments trained on real faces read
the videos:

- faces: the share of generated frames in which dlib's HOG detector finds a face;
- identity: the share of generated videos that dlib's face descriptor accepts as the input's person (distance
  to the input frame's descriptor below dlib's own threshold, 0.6, on 4 evenly spaced frames, all 4 accepted);
- FER: of the emotions that the FER mini-Xception does not already read on the input frame, how many it reads
  on the last generated frame when that emotion was asked for.

    .venv/bin/python benchmarks/real_faces.py RUN_DIR [RUN_DIR ...] [--out papermill_runs/benchmarks/real_faces]

Also ``fer_asked_change``: the mean, over those emotions, of how much the FER probability of the asked emotion
rises from the input frame to the last generated frame (a softer reading than the argmax).

Writes ``real_faces.csv`` / ``real_faces.md``, one frame grid per run and photograph (``<run>-<photo>.png``) and,
per photograph, ``last_frames-<photo>.png``: one row per run, the input then each emotion's last frame.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from lib.constants import EMOTIONS  # noqa: E402

DLIB_THRESHOLD = 0.6  # dlib's documented same-person distance for its 128-d descriptor
IDENTITY_FRAMES = (3, 7, 11, 15)


def photographs(folder: Path) -> dict[str, Path]:
    from lib.generate import SAMPLE_FACES, sample_face

    return {name: sample_face(folder, name) for name in SAMPLE_FACES}


def score(run: Path, photo: Path, out_dir: Path, instruments: dict, seed: int = 0) -> tuple[dict, np.ndarray]:
    """The run's row of the table, and (7, S, S, 3): the input frame and each emotion's last frame."""
    from lib.evaluation.extractors import dlib_face_rate
    from lib.generate import encode, generate_rows, prepare_input
    from lib.io import atomic_write_bytes
    from lib.train.systems import load_generator

    generator = load_generator(run)
    face = prepare_input(photo, int(generator.config.image_size or 64), say=lambda _: None)
    labels = list(range(len(EMOTIONS)))
    rows = generate_rows(generator, face, labels, seed)
    atomic_write_bytes(out_dir / f"{run.name}-{photo.stem}.png", encode(face, rows, labels, ".png"))
    videos = np.stack(rows)  # (6, 16, S, S, 3)
    faces = float(dlib_face_rate(videos).mean())
    dlib = instruments["dlib"]
    reference = dlib.extract(face[:1])[0]
    picked = videos[:, list(IDENTITY_FRAMES)].reshape(-1, *videos.shape[2:])
    distances = np.linalg.norm(dlib.extract(picked) - reference, axis=1).reshape(len(labels), -1)
    identity = float((distances < DLIB_THRESHOLD).all(axis=1).mean())
    fer = instruments["fer"]
    on_input = fer.predict_proba(face[None, :1])[0]
    read_on_input = int(on_input.argmax())
    last_proba = fer.predict_proba(videos[:, -1:])
    last = last_proba.argmax(1)
    counted = [e for e in labels if e != read_on_input]
    shown = [EMOTIONS[e] for e in counted if last[e] == e]
    change = float(np.mean([last_proba[e, e] - on_input[e] for e in counted]))
    return {"run": run.name, "photo": photo.stem, "faces": round(faces, 3), "identity": round(identity, 3),
            "fer_input": EMOTIONS[read_on_input], "fer_shown": len(shown), "fer_of": len(counted),
            "fer_emotions": " ".join(shown), "fer_asked_change": round(change, 3),
            "mean_dlib_distance": round(float(distances.mean()), 3)}, np.concatenate([face[:1], videos[:, -1]])


def main(argv: list[str] | None = None) -> None:
    from lib.evaluation.emotion import FERClassifier
    from lib.evaluation.extractors import DlibExtractor
    from PIL import Image

    from lib.display import labelled_grid
    from lib.io import atomic_write_text
    from lib.paths import runs_dir

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="trained run folders")
    parser.add_argument("--out", default=str(runs_dir() / "benchmarks" / "real_faces"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    instruments = {"dlib": DlibExtractor(), "fer": FERClassifier()}
    photos = photographs(out_dir)
    rows, last_frames = [], {}
    for run in args.runs:
        for name, photo in photos.items():
            row, frames = score(Path(run), photo, out_dir, instruments, args.seed)
            rows.append(row)
            last_frames.setdefault(name, []).append((Path(run).name, frames))
    table = pd.DataFrame(rows)
    for name, runs in last_frames.items():  # rows = runs, columns = the input and each emotion's last frame
        grid = labelled_grid([[frames[i:i + 1] for i in range(len(frames))] for _, frames in runs],
                             ["input", *EMOTIONS], [run for run, _ in runs], scale=2)
        Image.fromarray(grid[0]).save(out_dir / f"last_frames-{name}.png")
    atomic_write_text(out_dir / "real_faces.csv", table.to_csv(index=False))
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)]
    atomic_write_text(out_dir / "real_faces.md", "\n".join(lines) + "\n")
    print(table.to_string(index=False))
    print(f"written to {out_dir}")


if __name__ == "__main__":
    main()
