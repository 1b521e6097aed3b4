"""CAS-H bookkeeping: answers are stored as given, resumed, validated and scored per emotion."""
from __future__ import annotations

import numpy as np
import pytest

from lib.evaluation.human_rating import ANSWER_KEYS, ANSWERS, CANT_TELL, RatingSession, cas_h, rating_form
from lib.io import atomic_write_json, write_gif


def _make_set(tmp_path):
    items = []
    for run in ("runA", "runB"):
        for target in ("anger", "happiness"):
            item_id = f"{run}-{target}"
            write_gif(np.zeros((4, 8, 8, 3), np.uint8), tmp_path / "videos" / f"{item_id}.gif")
            items.append({"item_id": item_id, "run": run, "target": target, "video": f"{item_id}.gif"})
    atomic_write_json(tmp_path / "items.json", {"request": {}, "items": items})
    return tmp_path


def test_answers_are_saved_and_resumed(tmp_path):
    set_dir = _make_set(tmp_path)
    session = RatingSession(set_dir, "alice")
    assert len(session.remaining()) == 4
    session.record("runA-anger", "anger")
    # a new session of the same rater continues where the first stopped
    again = RatingSession(set_dir, "alice")
    assert [i.item_id for i in again.remaining()] == ["runA-happiness", "runB-anger", "runB-happiness"]
    with pytest.raises(ValueError, match="valid answers"):
        again.record("runA-happiness", "joy")
    with pytest.raises(KeyError):
        again.record("nope", "anger")


def test_cas_h_is_mean_of_per_emotion_accuracy(tmp_path):
    set_dir = _make_set(tmp_path)
    alice, bob = RatingSession(set_dir, "alice"), RatingSession(set_dir, "bob")
    alice.record("runA-anger", "anger")
    alice.record("runA-happiness", "sadness")
    alice.record("runA-happiness", "happiness")  # a corrected answer overrides
    bob.record("runA-anger", CANT_TELL)
    bob.record("runA-happiness", "happiness")
    alice.record("runB-anger", "fear")
    table = cas_h(set_dir).set_index("run")
    # runA: anger 1/2 correct, happiness 2/2 -> (0.5 + 1.0) / 2
    assert table.loc["runA", "anger"] == 0.5 and table.loc["runA", "happiness"] == 1.0
    assert table.loc["runA", "cas_h"] == pytest.approx(0.75)
    assert table.loc["runA", "n_raters"] == 2 and table.loc["runA", "n_ratings"] == 4
    assert table.loc["runB", "cas_h"] == 0.0 and np.isnan(table.loc["runB", "happiness"])


def test_form_walks_through_items(tmp_path):
    set_dir = _make_set(tmp_path)
    session = RatingSession(set_dir, "carol")
    form = rating_form(session)
    buttons = form.children[2].children
    assert [b.description for b in buttons] == [f"{a} [{k}]" for a, k in zip(ANSWERS, ANSWER_KEYS)]
    assert "<video" in form.children[1].value or "<img" in form.children[1].value
    for item in session.items:  # blind: the shown page names neither the model nor the target
        assert item.run not in form.children[0].value + form.children[1].value
    for _ in range(4):
        buttons[0].click()  # "anger" for everything
    assert session.remaining() == [] and all(b.disabled for b in buttons)
    assert cas_h(set_dir).set_index("run").loc["runA", "anger"] == 1.0


def test_missing_set_and_rater(tmp_path):
    with pytest.raises(FileNotFoundError, match="items.json"):
        RatingSession(tmp_path, "x")
    _make_set(tmp_path)
    with pytest.raises(ValueError, match="rater"):
        RatingSession(tmp_path, " ")
