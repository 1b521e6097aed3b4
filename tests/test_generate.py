"""``python -m lib.generate``: your own face through any trained run (image, video and folder input; the
errors before any work; the output's frames and size; same seed, same bytes; every system)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from lib.constants import EMOTIONS
from lib.generate import PNG_FRAMES, generate_file, main, read_frames
from lib.paths import REPO_ROOT
from lib.train.options import resolve_config
from lib.train.systems import train
from test_gan_training import _config, ae_checkpoint, cache_dir  # noqa: F401 (fixtures)


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """Real photographs that ship with installed packages (scikit-image's astronaut, matplotlib's Grace
    Hopper), a two-face picture, a blank one, a damaged file, a video and a folder of frames."""
    import matplotlib.cbook
    import skimage.data

    from lib.display import encode_mp4

    root = tmp_path_factory.mktemp("faces")
    astronaut = skimage.data.astronaut()
    hopper = np.asarray(Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB"))
    Image.fromarray(astronaut).save(root / "astronaut.png")
    small = np.asarray(Image.fromarray(hopper).resize((256, 300)))
    two = np.full((600, 900, 3), 255, np.uint8)
    two[:512, :512] = astronaut
    two[:300, 600:856] = small
    Image.fromarray(two).save(root / "two.jpg")
    Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(root / "blank.png")
    (root / "damaged.png").write_bytes(b"\x89PNG not really")
    shifted = [np.roll(astronaut, shift, axis=1) for shift in range(0, 8, 2)]
    (root / "clip.mp4").write_bytes(encode_mp4(np.stack(shifted), fps=8))
    (root / "frames").mkdir()
    for i, frame in enumerate(shifted[:3]):
        Image.fromarray(frame).save(root / "frames" / f"{i:03d}.png")
    return root


SYSTEM_RUNS = {"vicegan": dict(recipe="fast"), "fevgan": {}, "reenact": {}, "templates": {}, "latent-walk": {},
               "mocogan": dict(encoder="none", content_mode="all"), "landmark-warp": dict(encoder="none")}


@pytest.fixture(scope="module")
def runs(cache_dir, ae_checkpoint, tmp_path_factory):  # noqa: F811
    root = tmp_path_factory.mktemp("runs")
    made = {}
    for name, extra in SYSTEM_RUNS.items():
        extra = dict(extra)
        encoder = extra.pop("encoder", "ae")
        system = "vicegan" if name == "mocogan" else name
        cfg = resolve_config(_config(cache_dir, ae_checkpoint, encoder, system=system, steps=1, **extra))
        train(cfg, root / name, progress=False)
        made[name] = root / name
    return made


def test_image_input_writes_one_row_per_emotion(runs, faces, tmp_path):
    out = generate_file(runs["vicegan"], faces / "astronaut.png", "all", tmp_path / "out.png", say=lambda _: None)
    grid = np.asarray(Image.open(out))
    from lib.display import labelled_grid

    # rows = the six emotions, columns = the input frame + PNG_FRAMES, 64 px cells at scale 2, labelled
    cell = np.zeros((1, 64, 64, 3), np.uint8)
    expected = labelled_grid([[cell] * (1 + len(PNG_FRAMES))] * 6, ["input"] + [f"t={t}" for t in PNG_FRAMES],
                             list(EMOTIONS), scale=2)[0]
    assert grid.shape == expected.shape
    video = generate_file(runs["vicegan"], faces / "astronaut.png", "happiness", tmp_path / "out.mp4",
                          say=lambda _: None)  # (a GIF merges equal frames: a 1-step flow run repeats its input)
    frames = read_frames(video)
    assert frames.shape[0] == 16 and frames.shape[2] > 2 * 128  # the input beside the generated video


def test_video_and_folder_inputs(runs, faces, tmp_path):
    for source in ("clip.mp4", "frames"):
        out = generate_file(runs["vicegan"], faces / source, "surprise", tmp_path / f"{source}.mp4",
                            say=lambda _: None)
        assert read_frames(out).shape[0] == 16


def test_same_seed_same_bytes_and_another_seed_differs(runs, faces, tmp_path):
    first = generate_file(runs["mocogan"], faces / "astronaut.png", "fear", tmp_path / "a.gif", seed=3,
                          say=lambda _: None).read_bytes()
    again = generate_file(runs["mocogan"], faces / "astronaut.png", "fear", tmp_path / "b.gif", seed=3,
                          say=lambda _: None).read_bytes()
    other = generate_file(runs["mocogan"], faces / "astronaut.png", "fear", tmp_path / "c.gif", seed=4,
                          say=lambda _: None).read_bytes()
    assert first == again and first != other


def test_two_faces_take_the_largest_and_say_so(runs, faces, tmp_path):
    said = []
    generate_file(runs["vicegan"], faces / "two.jpg", "anger", tmp_path / "two.png", say=said.append)
    assert any("2 faces" in line and "largest" in line for line in said)


@pytest.mark.parametrize("args,message", [
    (["--input", "blank.png"], "no face found in"),
    (["--input", "damaged.png"], "cannot read the image"),
    (["--input", "missing.png"], "no such input"),
    (["--emotion", "joy"], "valid: all, " + ", ".join(EMOTIONS)),
    (["--out", "out.txt"], ".mp4, .gif, .png"),
    (["--run", "EMPTY"], "03_train"),
])
def test_bad_input_fails_before_any_work_naming_the_path_or_choices(runs, faces, tmp_path, capsys, args, message):
    values = {"--run": str(runs["vicegan"]), "--input": str(faces / "astronaut.png"), "--emotion": "all",
              "--out": str(tmp_path / "out.png")}
    given = dict(zip(args[::2], args[1::2]))
    if given.get("--run") == "EMPTY":
        (tmp_path / "empty").mkdir()
        given["--run"] = str(tmp_path / "empty")
    if "--input" in given:
        given["--input"] = str(faces / given["--input"])
    if "--out" in given:
        given["--out"] = str(tmp_path / given["--out"])
    values.update(given)
    code = main([item for pair in values.items() for item in pair])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out.png").exists() and not (tmp_path / "out.txt").exists()


@pytest.mark.parametrize("system", list(SYSTEM_RUNS))
def test_every_system_generates_from_a_photograph(runs, faces, tmp_path, system):
    out = generate_file(runs[system], faces / "astronaut.png", "all", tmp_path / "out.mp4", say=lambda _: None)
    frames = read_frames(out)
    assert frames.shape[0] == 16 and frames.std() > 0


def test_the_command_line(runs, faces, tmp_path):
    done = subprocess.run([sys.executable, "-m", "lib.generate", "--run", str(runs["templates"]), "--input",
                           str(faces / "astronaut.png"), "--emotion", "sadness", "--out", str(tmp_path / "o.png")],
                          capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "templates run" in done.stdout and (tmp_path / "o.png").is_file()
    bad = subprocess.run([sys.executable, "-m", "lib.generate", "--run", str(runs["templates"]), "--input",
                          str(faces / "astronaut.png"), "--emotion", "joy", "--out", str(tmp_path / "p.png")],
                         capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    assert bad.returncode == 2 and "unknown emotion 'joy'" in bad.stderr


def test_sample_faces_by_name():
    from lib.config import ConfigError
    from lib.generate import SAMPLE_FACES, resolve_input, sample_face

    for name in SAMPLE_FACES:
        assert read_frames(resolve_input(name)).shape[-1] == 3
    with pytest.raises(ConfigError, match="astronaut, grace_hopper"):
        sample_face("/tmp", "mona_lisa")


def test_without_a_run_the_newest_landmark_warp_is_used_and_named(runs, faces, tmp_path, monkeypatch):
    import shutil

    from lib.generate import default_run

    root = tmp_path / "runs"
    monkeypatch.setenv("VICE_RUNS_DIR", str(root))
    said = []
    with pytest.raises(FileNotFoundError, match="make demo"):  # nothing finished: the fix is named
        default_run(said.append)
    shutil.copytree(runs["templates"], root / "grid" / "templates")
    assert default_run(said.append) == root / "grid" / "templates"  # no warp: the newest run, and it says so
    assert "no landmark-warp run" in said[-1]
    shutil.copytree(runs["landmark-warp"], root / "grid" / "warp")
    out = generate_file(None, faces / "astronaut.png", "happiness", tmp_path / "o.png", say=said.append)
    assert out.is_file() and any(f"using {root / 'grid' / 'warp'} (landmark-warp" in line for line in said)
