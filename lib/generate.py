"""Generate emotion videos of your own face with any trained run.

    python -m lib.generate [--run RUN_DIR] --input PATH --emotion NAME|all --out OUT [--seed 0] [--device cpu]

Without ``--run`` the newest finished run of :data:`REAL_FACE_SYSTEM` is used (``make demo`` fits one), and the
command says so: the landmark warp moves the input's own pixels, so a real face stays the person's, where the
systems that draw pixels learned from the synthetic faces do not (docs/results-log.md, real photographs).

``PATH`` is an image (png/jpg/...), a video (mp4/avi/...), a folder of frames, or the name of a real photograph
that ships with an installed package (``astronaut``, ``grace_hopper``: :data:`SAMPLE_FACES`). The face is found with MTCNN
(facenet-pytorch, as 01_preprocess's ``mtcnn`` detector; the largest face when there are several, and the
command says so), cropped to a square enlarged by ``--margin`` as 01 does, and resized to the run's resolution.
An image becomes a still clip. ``OUT`` is ``.mp4``, ``.gif`` or ``.png`` (a frame grid); each row is one
emotion: the input beside the generated video (the png: the input frame, then every other generated frame).

Everything is checked before any work (exit code 2, the message names the path or the valid choices): the run
folder and its weights, the emotion, the output's kind, the input file and that a face is in it.
"""
from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from lib.config import ConfigError
from lib.constants import EMOTIONS, VIDEO_LENGTH

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".gif")
OUTPUT_SUFFIXES = (".mp4", ".gif", ".png")
MIN_FACE_PROBABILITY = 0.9  # MTCNN's confidence below which a box is not taken for a face
MAX_FRAMES = 64  # frames read from a video input (the generator reads 16, every 2nd)
PNG_FRAMES = tuple(range(0, VIDEO_LENGTH, 2))  # every other generated frame


class InputError(ValueError):
    """An input that cannot be used (missing, unreadable, no face); the message names the path."""


def emotion_choices(emotion: str) -> list[int]:
    """``"all"`` or an emotion's name -> label indices; raises ConfigError naming the valid choices."""
    if emotion == "all":
        return list(range(len(EMOTIONS)))
    if emotion not in EMOTIONS:
        raise ConfigError(f"unknown emotion {emotion!r}; valid: all, {', '.join(EMOTIONS)}")
    return [EMOTIONS.index(emotion)]


def check_output(out: str | Path) -> Path:
    out = Path(out)
    if out.suffix.lower() not in OUTPUT_SUFFIXES:
        raise ConfigError(f"cannot write {out}: the output must end in one of {', '.join(OUTPUT_SUFFIXES)}")
    if out.parent and not out.parent.exists():
        raise ConfigError(f"cannot write {out}: its folder {out.parent} does not exist")
    return out


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError) as error:
        raise InputError(f"cannot read the image {path} ({error}); give a png/jpg image, a video or a folder "
                         "of frames") from None


def read_frames(path: str | Path) -> np.ndarray:
    """uint8 (T, H, W, 3) frames of an image, a video or a folder of frames (sorted by name)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"no such input: {path}")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise InputError(f"the folder {path} has no frames ({', '.join(IMAGE_SUFFIXES)})")
        frames = [_read_image(p) for p in files[:MAX_FRAMES]]
        if len({f.shape for f in frames}) > 1:
            raise InputError(f"the frames in {path} are not all the same size")
        return np.stack(frames)
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return _read_image(path)[None]
    if suffix in VIDEO_SUFFIXES:
        import imageio.v3 as iio

        try:
            frames = []
            for item in iio.imiter(path):
                item = np.asarray(item)
                frames.extend(item[..., :3] if item.ndim == 4 else [item[..., :3]])  # a GIF may come whole
                if len(frames) >= MAX_FRAMES:
                    break
            frames = frames[:MAX_FRAMES]
        except Exception as error:  # imageio raises plugin-specific errors for damaged files
            raise InputError(f"cannot read the video {path} ({type(error).__name__}: {error})") from None
        if not frames:
            raise InputError(f"the video {path} has no frames")
        return np.stack(frames)
    raise InputError(f"cannot read {path}: not an image ({', '.join(IMAGE_SUFFIXES)}), a video "
                     f"({', '.join(VIDEO_SUFFIXES)}) or a folder of frames")


def largest_face(frame: np.ndarray, source: str, say: Callable[[str], None] = print) -> tuple[float, ...]:
    """The largest MTCNN face box ``(x1, y1, x2, y2)`` in ``frame``; says so when there are several."""
    import torch

    from lib.compat import import_facenet_pytorch

    facenet = import_facenet_pytorch()
    detector = facenet.MTCNN(keep_all=True, device="cpu", min_face_size=20)
    with torch.no_grad():
        boxes, probabilities = detector.detect(np.ascontiguousarray(frame))
    faces = [] if boxes is None else [tuple(float(v) for v in box) for box, p in zip(boxes, probabilities)
                                      if p is not None and p >= MIN_FACE_PROBABILITY]
    if not faces:
        raise InputError(f"no face found in {source} (MTCNN, probability >= {MIN_FACE_PROBABILITY}); give an "
                         "image or video in which a face is clearly visible")
    areas = [(x2 - x1) * (y2 - y1) for x1, y1, x2, y2 in faces]
    if len(faces) > 1:
        say(f"{len(faces)} faces found in {source}: using the largest")
    return faces[int(np.argmax(areas))]


def face_clip(frames: np.ndarray, box: Sequence[float], image_size: int, margin: float = 0.3) -> np.ndarray:
    """The frames cropped to ``box`` squared and enlarged by ``margin`` (01's crop), at ``image_size``."""
    from lib.data.detectors import crop_and_resize, square_box

    height, width = frames.shape[1:3]
    return crop_and_resize(frames, square_box([tuple(box)], height, width, margin), image_size)


def prepare_input(path: str | Path, image_size: int, margin: float = 0.3,
                  say: Callable[[str], None] = print) -> np.ndarray:
    """uint8 (T, S, S, 3): the face of ``path`` (found in its first frame), cropped as 01 crops."""
    path = resolve_input(path)
    frames = read_frames(path)
    return face_clip(frames, largest_face(frames[0], str(path), say), image_size, margin)


def generate_rows(generator: Any, face: np.ndarray, labels: Sequence[int], seed: int = 0) -> list[np.ndarray]:
    """One generated uint8 (16, S, S, 3) video per label, from the face clip (an image: a still clip)."""
    import torch

    from lib.data.clips import uint8_to_model
    from lib.io import to_uint8_frames

    video = uint8_to_model(face).transpose(0, 1)[None]  # (1, 3, T, S, S) in [-1, 1]
    out = generator.generate(video.expand(len(labels), *video.shape[1:]), torch.as_tensor(list(labels)), seed=seed)
    return [to_uint8_frames(v) for v in out]


def encode(face: np.ndarray, rows: Sequence[np.ndarray], labels: Sequence[int], suffix: str, scale: int = 2) -> bytes:
    """The output file's bytes: rows = emotions, the input first in each row."""
    from lib.display import encode_gif, encode_mp4, labelled_grid

    names = [EMOTIONS[label] for label in labels]
    length = rows[0].shape[0]
    still = face[np.minimum(np.arange(length), len(face) - 1)]
    if suffix == ".png":
        from PIL import Image

        cells = [[face[:1]] + [video[t:t + 1] for t in PNG_FRAMES] for video in rows]
        grid = labelled_grid(cells, ["input"] + [f"t={t}" for t in PNG_FRAMES], names, scale=scale)[0]
        buffer = io.BytesIO()
        Image.fromarray(grid).save(buffer, format="PNG")
        return buffer.getvalue()
    video = labelled_grid([[still, generated] for generated in rows], ["input", "generated"], names, scale=scale)
    return encode_mp4(video) if suffix == ".mp4" else encode_gif(video)


def generate_file(run: str | Path | None, input_path: str | Path, emotion: str, out: str | Path, seed: int = 0,
                  device: str = "cpu", margin: float = 0.3, say: Callable[[str], None] = print) -> Path:
    """Check everything, then write ``out``; returns its path.  ``run=None``: :func:`default_run`."""
    from lib.io import atomic_write_bytes
    from lib.train.systems import load_generator, run_system
    from lib.utils import resolve_device

    labels = emotion_choices(emotion)
    out = check_output(out)
    try:
        resolve_device(device)  # an unknown or absent device fails here, before any work
    except RuntimeError as error:
        raise ConfigError(str(error)) from None
    run = default_run(say) if run is None else run
    generator = load_generator(run, device=device)
    size = int(generator.config.image_size or 64)
    face = prepare_input(input_path, size, margin, say)
    say(f"{run_system(run)} run {run} ({getattr(generator, 'snapshot', 'latest')}), {len(face)} input frame(s)")
    rows = generate_rows(generator, face, labels, seed)
    return atomic_write_bytes(out, encode(face, rows, labels, out.suffix.lower()))


REAL_FACE_SYSTEM = "landmark-warp"  # the default system for a face of one's own (module doc)


def default_run(say: Callable[[str], None] = print) -> Path:
    """The newest finished run of :data:`REAL_FACE_SYSTEM` under the runs folder; without one, the newest finished
    run of any system (and the command says so)."""
    from lib.evaluation.evaluate import find_runs
    from lib.paths import TRAIN_DONE_FILE, runs_dir
    from lib.train.systems import run_system

    try:
        finished = sorted(find_runs(), key=lambda p: (p / TRAIN_DONE_FILE).stat().st_mtime)
    except FileNotFoundError:
        raise FileNotFoundError(f"no --run given and no finished run under {runs_dir()}; run `make demo` (it fits "
                                f"a {REAL_FACE_SYSTEM} run in seconds) or notebooks/03_train.ipynb with -p system "
                                f"{REAL_FACE_SYSTEM}, or name a run with --run") from None
    warps = [p for p in finished if run_system(p) == REAL_FACE_SYSTEM]
    if warps:
        say(f"no --run given: using {warps[-1]} ({REAL_FACE_SYSTEM}, the system for real faces: it warps the "
            "input's own pixels)")
        return warps[-1]
    say(f"no --run given and no {REAL_FACE_SYSTEM} run: using the newest finished run, {finished[-1]} "
        f"({run_system(finished[-1])}); fit a {REAL_FACE_SYSTEM} run (seconds) for real faces")
    return finished[-1]


# Real photographs that ship offline with installed packages, in no training data: ``--input astronaut``
SAMPLE_FACES = ("astronaut", "grace_hopper")


def sample_face(folder: str | Path, name: str = "astronaut") -> Path:
    """One of :data:`SAMPLE_FACES` as a file: scikit-image's ``astronaut`` (public domain; written as a png into
    ``folder``) or matplotlib's ``grace_hopper`` sample photograph."""
    if name not in SAMPLE_FACES:
        raise ConfigError(f"unknown sample face {name!r}; valid: {', '.join(SAMPLE_FACES)}")
    if name == "grace_hopper":
        import matplotlib.cbook

        return Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    import skimage.data
    from PIL import Image

    path = Path(folder) / "astronaut.png"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(skimage.data.astronaut()).save(path)
    return path


def resolve_input(value: str | Path) -> Path:
    """An input path, or the name of a sample face (when no file of that name exists)."""
    import tempfile

    path = Path(value)
    if not path.exists() and str(value) in SAMPLE_FACES:
        return sample_face(Path(tempfile.gettempdir()) / "vice-gan-samples", str(value))
    return path


def generate_form(runs: Sequence[str | Path], work_dir: str | Path, scale: int = 4) -> Any:
    """An ipywidgets form for notebook 07: a run (dropdown), a face (upload, or the sample photograph), an
    emotion, a Generate button; the video plays below it and is saved in ``work_dir``."""
    import ipywidgets as widgets
    from IPython.display import HTML, display

    from lib.display import video_html

    work_dir = Path(work_dir)
    run_box = widgets.Dropdown(options=[(Path(r).name, str(r)) for r in runs], description="run")
    emotion_box = widgets.Dropdown(options=["all", *EMOTIONS], value="all", description="emotion")
    upload = widgets.FileUpload(accept="image/*,video/*", multiple=False, description="your face")
    button = widgets.Button(description="Generate", button_style="primary")
    output = widgets.Output()

    def on_click(_):
        output.clear_output()
        with output:
            source = sample_face(work_dir)
            if upload.value:
                item = upload.value[0]
                source = work_dir / f"upload-{Path(item['name']).name}"
                source.write_bytes(bytes(item["content"]))
            out = work_dir / f"{Path(run_box.value).name}-{emotion_box.value}.mp4"
            try:
                generate_file(run_box.value, source, emotion_box.value, out)
            except (ConfigError, InputError, FileNotFoundError) as error:
                print(f"error: {error}")
                return
            display(HTML(video_html(read_frames(out), fmt="mp4", title=out.name)))

    button.on_click(on_click)
    return widgets.VBox([widgets.HBox([run_box, emotion_box]), widgets.HBox([upload, button]), output])


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m lib.generate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", default=None, help="a trained run folder (03_train's, with its weights); default: "
                                                    f"the newest finished {REAL_FACE_SYSTEM} run")
    parser.add_argument("--input", required=True, help="an image, a video or a folder of frames with a face, or "
                                                       f"a sample photograph: {', '.join(SAMPLE_FACES)}")
    parser.add_argument("--emotion", default="all", help=f"all or one of {', '.join(EMOTIONS)} (default all)")
    parser.add_argument("--out", required=True, help=f"output file ({', '.join(OUTPUT_SUFFIXES)})")
    parser.add_argument("--seed", type=int, default=0, help="the generator's noise (same seed, same file)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    parser.add_argument("--margin", type=float, default=0.3, help="face box enlargement, as 01's crop (0.3)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        path = generate_file(args.run, args.input, args.emotion, args.out, args.seed, args.device, args.margin)
    except (ConfigError, InputError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
