"""Every notebook checks its parameters (names and types) before any work: lib.notebook_parameters."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from lib.config import ConfigError
from lib.notebook_parameters import check_parameters, declared_parameters, parameters_source
from lib.paths import notebooks_dir

NOTEBOOKS = sorted(p.stem for p in notebooks_dir().glob("[0-9][0-9]_*.ipynb"))


def _defaults(notebook: str) -> dict:
    return {name: default for name, (default, _) in declared_parameters(parameters_source(notebook)).items()}


def _injected(**params) -> str:  # what papermill's injected cell looks like
    return "# Parameters\n" + "".join(f"{name} = {value!r}\n" for name, value in params.items())


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_every_notebook_declares_typed_parameters_and_checks_them_next(notebook):
    cells = json.loads((notebooks_dir() / f"{notebook}.ipynb").read_text())["cells"]
    tagged = [i for i, c in enumerate(cells) if "parameters" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1
    assert f"check_parameters(globals(), {notebook!r}" in "".join(cells[tagged[0] + 1]["source"])
    defaults = _defaults(notebook)  # parses: every None default carries a type annotation
    check_parameters({**defaults, "In": ["", parameters_source(notebook)]}, notebook)  # the defaults pass


def test_unknown_injected_name_fails_with_the_closest_valid_name_first():
    from lib.train.options import system_options

    namespace = {**_defaults("03_train"), "encodr": "facenet", "In": ["", _injected(encodr="facenet")]}
    with pytest.raises(ConfigError, match=r"unknown parameter 'encodr'; valid: encoder, "):
        check_parameters(namespace, "03_train", more=system_options("vicegan"))  # 03 takes the system's options
    with pytest.raises(ConfigError, match=r"unknown parameter 'encodr'"):
        check_parameters(namespace, "03_train", more=system_options("landmark-warp"))  # the warp has no encoder
    namespace = {**_defaults("01_preprocess"), "data_roots": "/x", "In": [_injected(data_roots="/x")]}
    with pytest.raises(ConfigError, match=r"unknown parameter 'data_roots'; valid: data_root"):
        check_parameters(namespace, "01_preprocess")


@pytest.mark.parametrize("name, value, ok", [
    ("steps", 2.5, False), ("steps", 3, True), ("steps", None, True), ("steps", "3", False), ("steps", True, False),
    ("learning_rate", 1, True), ("learning_rate", "x", False), ("finetune", 1, False), ("finetune", True, True),
    ("encoder", 3, False), ("category_weight", 5, True),
])
def test_types_follow_the_annotations(name, value, ok):
    """The cell's parameters are checked by check_parameters, a system's own options where its config is made."""
    from lib.train.options import config_from_notebook

    namespace = {**_defaults("03_train"), name: value, "In": ["", _injected(**{name: value})]}
    def check() -> None:
        check_parameters(namespace, "03_train", more=["learning_rate", "finetune", "encoder", "category_weight"])
        config_from_notebook(namespace)
    if ok:
        check()
    else:
        with pytest.raises(ConfigError, match=f"{name}="):
            check()


def test_list_parameters_take_lists_or_papermill_strings():
    for value in (["ae", "truth"], "ae,truth", None):
        check_parameters({**_defaults("05_evaluate"), "extractors": value}, "05_evaluate")
    with pytest.raises(ConfigError, match="extractors=3"):
        check_parameters({**_defaults("05_evaluate"), "extractors": 3}, "05_evaluate")


def test_a_parameters_cell_without_types_for_none_is_refused():
    with pytest.raises(ValueError, match="annotate its type"):
        declared_parameters("steps = None  # no type")
    assert declared_parameters("steps: int | None = None\nname = 'a'") == {"steps": (None, (int, type(None))),
                                                                          "name": ("a", (str,))}


@pytest.mark.slow
def test_papermill_unknown_name_fails_before_any_work(tmp_path):
    env = {**os.environ, "VICE_DATA_DIR": str(tmp_path / "data"), "VICE_RUNS_DIR": str(tmp_path / "runs")}
    result = subprocess.run([sys.executable, "-m", "papermill", str(notebooks_dir() / "01_preprocess.ipynb"),
                             str(tmp_path / "out.ipynb"), "-p", "data_roots", "/x", "-p", "preset", "tiny"],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode != 0
    assert "unknown parameter 'data_roots'; valid: data_root" in result.stdout + result.stderr
    assert not (tmp_path / "data").exists() and not (tmp_path / "runs").exists()  # nothing was made
