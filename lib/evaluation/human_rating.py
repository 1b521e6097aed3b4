"""CAS-H: people label generated videos with an emotion; accuracy against the target label.

Thesis 5.4: for each model, ``n_per_emotion`` videos per target emotion are shown
in random order, blind to the model and the target; the rater picks one of the six
emotions.  CAS-H of a model is the per-emotion accuracy averaged over emotions.

A rating set is a folder: ``items.json`` (the shuffled items: id, run, target
emotion, GIF file) and ``videos/``; every answer is appended to
``ratings-<rater>.jsonl`` at once, so closing the notebook loses nothing and a
rater can continue later where they stopped.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from lib.constants import EMOTIONS, IMAGE_SIZE
from lib.io import atomic_write_json, read_json, read_jsonl, write_gif

CANT_TELL = "can't tell"
ANSWERS: tuple[str, ...] = EMOTIONS + (CANT_TELL,)


@dataclass(frozen=True)
class RatingItem:
    item_id: str
    run: str
    target: str
    video: str  # file name under videos/


def build_rating_set(
    run_dirs: Sequence[str | Path],
    out_dir: str | Path,
    n_per_emotion: int = 10,
    seed: int = 0,
    device: str = "cpu",
) -> Path:
    """Generate ``n_per_emotion`` videos per emotion for every run into a rating set folder.

    Inputs are real test videos of test subjects (the protocol's inputs); the same
    inputs and seeds are used for every run so models are compared on equal terms.
    Reuses an existing set with the same runs and sizes.
    """
    import torch

    from lib.data.cache import load_cache
    from lib.data.clips import frames_to_tensor, sample_clip_indices
    from lib.data.splits import composition_videos
    from lib.train.systems import load_generator

    out_dir = Path(out_dir)
    run_dirs = [Path(r) for r in run_dirs]
    if not run_dirs:
        raise ValueError("no runs given: train a model with notebooks/03_train.ipynb first")
    request = {"runs": [str(r) for r in run_dirs], "n_per_emotion": n_per_emotion, "seed": seed}
    manifest = out_dir / "items.json"
    if manifest.exists() and read_json(manifest).get("request") == request:
        return out_dir
    rng = np.random.default_rng(seed)
    items: list[RatingItem] = []
    for run_index, run in enumerate(run_dirs):
        generator = load_generator(run, device=device)
        cache = load_cache(generator.config.cache_dir)
        _, test_ids = composition_videos(cache, generator.config.composition)
        if len(test_ids) == 0:
            raise ValueError(f"the cache {generator.config.cache_dir} has no test videos")
        input_rng = np.random.default_rng(seed)  # same inputs for every run
        for label, emotion in enumerate(EMOTIONS):
            for k in range(n_per_emotion):
                video_id = int(input_rng.choice(test_ids))
                frames = cache.video(video_id)
                index = sample_clip_indices(len(frames), rng=input_rng)
                clip = frames_to_tensor(frames[index])
                video = generator.generate(clip[None], torch.tensor([label]), seed=seed + k)
                item_id = f"{rng.integers(1 << 62):016x}"  # opaque: names neither the model nor the target
                write_gif(video[0], out_dir / "videos" / f"{item_id}.gif", fps=8)  # the form scales it up
                items.append(RatingItem(item_id, str(run), emotion, f"{item_id}.gif"))
    order = rng.permutation(len(items))
    atomic_write_json(manifest, {"request": request, "items": [items[i].__dict__ for i in order]})
    return out_dir


class RatingSession:
    """One rater working through a rating set; answers are saved as they are given."""

    def __init__(self, set_dir: str | Path, rater: str):
        self.set_dir = Path(set_dir)
        manifest = self.set_dir / "items.json"
        if not manifest.exists():
            raise FileNotFoundError(f"no rating set at {manifest}; build one with build_rating_set(...)")
        if not rater or not str(rater).strip():
            raise ValueError("rater must be a non-empty name (answers are stored per rater)")
        self.rater = str(rater).strip()
        self.items = [RatingItem(**item) for item in read_json(manifest)["items"]]
        self.path = self.set_dir / f"ratings-{self.rater}.jsonl"

    def answers(self) -> dict[str, str]:
        """The latest answer per item id (a changed answer overrides the earlier one)."""
        return {r["item_id"]: r["answer"] for r in read_jsonl(self.path)}

    def remaining(self) -> list[RatingItem]:
        done = self.answers()
        return [item for item in self.items if item.item_id not in done]

    def record(self, item_id: str, answer: str) -> None:
        if answer not in ANSWERS:
            raise ValueError(f"invalid answer {answer!r}; valid answers: {', '.join(ANSWERS)}")
        if item_id not in {item.item_id for item in self.items}:
            raise KeyError(f"unknown item {item_id!r}")
        with open(self.path, "a") as handle:
            handle.write(json.dumps({"item_id": item_id, "answer": answer, "rater": self.rater}) + "\n")
            handle.flush()


def cas_h(set_dir: str | Path) -> pd.DataFrame:
    """CAS-H per run from every rater's answers: per-emotion accuracy and their mean.

    Returns one row per run with columns ``cas_h`` (mean of per-emotion accuracies,
    the thesis's score), ``n_ratings``, ``n_raters`` and one column per emotion.
    "can't tell" counts as wrong.
    """
    set_dir = Path(set_dir)
    items = {item["item_id"]: item for item in read_json(set_dir / "items.json")["items"]}
    rows = []
    for path in sorted(set_dir.glob("ratings-*.jsonl")):
        latest = {r["item_id"]: r for r in read_jsonl(path)}
        for item_id, record in latest.items():
            item = items.get(item_id)
            if item is not None:
                rows.append({"run": item["run"], "target": item["target"], "rater": record["rater"],
                             "correct": record["answer"] == item["target"]})
    columns = ["run", "cas_h", "n_ratings", "n_raters", *EMOTIONS]
    if not rows:
        return pd.DataFrame(columns=columns)
    ratings = pd.DataFrame(rows)
    per_emotion = ratings.pivot_table(index="run", columns="target", values="correct", aggfunc="mean")
    table = pd.DataFrame(index=per_emotion.index)
    table["cas_h"] = per_emotion.mean(axis=1)
    table["n_ratings"] = ratings.groupby("run").size()
    table["n_raters"] = ratings.groupby("run")["rater"].nunique()
    for emotion in EMOTIONS:
        table[emotion] = per_emotion[emotion] if emotion in per_emotion else np.nan
    return table.reset_index()[columns]


# Keys that answer, in the order of ANSWERS: 1-6 for the six emotions, 0 for "can't tell".
ANSWER_KEYS: tuple[str, ...] = tuple(str(k + 1) for k in range(len(EMOTIONS))) + ("0",)


def rating_form(session: RatingSession, scale: int = 4, smooth: bool = False, fmt: str = "auto"):
    """An ipywidgets form: the next unrated video (``scale`` x the frame size, MP4 with controls, GIF
    fallback), a progress count, one button per answer and a key for each (:data:`ANSWER_KEYS`, while
    the pointer is over the form).  Shows nothing of the item's model or target, before or after the
    answer: raters stay blind for the rest of the set."""
    import ipywidgets as widgets

    from lib.display import read_video, upscale, video_html

    video = widgets.HTML(layout=widgets.Layout(min_height=f"{IMAGE_SIZE * scale + 50}px"))
    progress = widgets.HTML()
    buttons = [widgets.Button(description=f"{answer} [{key}]", layout=widgets.Layout(width="130px"),
                              tooltip=f"key {key}") for answer, key in zip(ANSWERS, ANSWER_KEYS)]
    state: dict[str, RatingItem | None] = {"item": None}

    def show_next() -> None:
        remaining = session.remaining()
        done = len(session.items) - len(remaining)
        progress.value = (f"<b class='rating-progress'>{done} / {len(session.items)}</b> rated by "
                          f"<i>{session.rater}</i> &mdash; keys: "
                          + ", ".join(f"{key} {answer}" for answer, key in zip(ANSWERS, ANSWER_KEYS)))
        if not remaining:
            state["item"] = None
            video.value = ""
            progress.value += "<br><b>All done, thank you.</b> Run the next cell for CAS-H."
            for button in buttons:
                button.disabled = True
            return
        state["item"] = remaining[0]
        frames = read_video(session.set_dir / "videos" / remaining[0].video)
        factor = max(1, round(IMAGE_SIZE * scale / frames.shape[1]))  # older sets stored their GIFs enlarged
        video.value = video_html(upscale(frames, factor, smooth), fmt=fmt)

    def answer(index: int) -> None:
        if state["item"] is not None:
            session.record(state["item"].item_id, ANSWERS[index])  # saved before anything else changes
            show_next()

    for index, button in enumerate(buttons):
        button.on_click(lambda _, index=index: answer(index))
    form = widgets.VBox([progress, video, widgets.HBox(buttons)])
    try:
        from ipyevents import Event
    except ImportError:  # the buttons still work
        pass
    else:
        keys = Event(source=form, watched_events=["keydown"], prevent_default_action=True)
        keys.on_dom_event(lambda event: event.get("key") in ANSWER_KEYS and answer(ANSWER_KEYS.index(event["key"])))
        form._answer_keys = keys  # keep the listener alive as long as the form
    show_next()
    return form
