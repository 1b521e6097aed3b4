"""Write notebooks/07_generate.ipynb (without outputs). Run: ``.venv/bin/python tools/build_notebook_07.py``."""
from __future__ import annotations

from pathlib import Path

from nbtools import write_notebook

from lib.display import display_parameters

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "07_generate.ipynb"

TITLE = """# 07 - Generate on your own face

Give any trained run (03's VICE-GAN and FaceNet variants, MoCoGAN, FEV-GAN, reenactment, the latent walk, the
landmark warp, the templates prior) a face of your own: an image, a video or a folder of frames. The face is found with MTCNN,
cropped as 01 crops the training data and resized to the run's resolution; each emotion's video plays below.
The same as `python -m lib.generate --run RUN --input PATH --emotion all --out OUT`."""

PARAMETERS = """run: str | None = None     # a finished run folder; None: the newest landmark-warp run (the form lists them all)
input: str | None = None   # an image, video or folder of frames; None: scikit-image's astronaut photograph
emotion = "all"            # all | anger | disgust | fear | happiness | sadness | surprise
out: str | None = None     # .mp4, .gif or .png; None: <this notebook's run folder>/generated.mp4
seed = 0
device = "cpu"
run_name: str | None = None   # output folder name under papermill_runs/07_generate/
""" + display_parameters()

SETUP = """from pathlib import Path

from IPython.display import HTML, display

from lib.display import video_html
from lib.evaluation.evaluate import find_runs
from lib.generate import default_run, emotion_choices, generate_file, generate_form, read_frames, sample_face
from lib.paths import run_dir

emotion_choices(emotion)  # a misspelt emotion fails here, naming the valid ones
chosen = str(default_run() if run is None else Path(run))
finished = [chosen] + [str(p) for p in sorted(find_runs(), key=lambda p: -p.stat().st_mtime) if str(p) != chosen]
work = run_dir("07_generate", run_name or "generate")
print(f"{len(finished)} finished runs; generating with {chosen}")"""

GENERATE_MD = "## The parameters' face and run\nEach row is one emotion: the input beside the generated video."

GENERATE = """path = generate_file(chosen, input or sample_face(work), emotion, out or work / "generated.mp4", seed=seed,
                     device=device)
display(HTML(video_html(read_frames(path), fmt="mp4", title=path.name)))"""

FORM_MD = "## Try another\nPick a run and an emotion, upload a photo or a video (or keep the sample), press Generate."

FORM = """display(generate_form(finished, work, scale=video_scale))"""

CELLS = [("markdown", TITLE), ("parameters", PARAMETERS), ("code", SETUP), ("markdown", GENERATE_MD),
         ("code", GENERATE), ("markdown", FORM_MD), ("code", FORM)]

if __name__ == "__main__":
    write_notebook(NOTEBOOK, CELLS)
