"""Config validation, atomic IO, checkpoints, run folders, the torchvision-free facenet import."""
from __future__ import annotations

import dataclasses
import json
import sys

import numpy as np
import pytest
import torch

from lib import io as lio
from lib.config import ConfigError, check_choice, from_dict, name_list, to_dict
from lib.io import load_config, save_config
from lib.paths import run_dir, safe_name


@dataclasses.dataclass
class _Example:
    name: str = "a"
    size: int = 3
    widths: tuple = (1, 2)


def test_check_choice_lists_valid_names():
    assert check_choice("encoder", "ae", ("ae", "facenet")) == "ae"
    with pytest.raises(ConfigError) as error:
        check_choice("encoder", "facenett", ("ae", "facenet", "none"))
    message = str(error.value)
    assert "facenett" in message and "'facenet'" in message and "'none'" in message


def test_name_list_reads_what_papermill_passes():
    # papermill -p hands lists over as strings; all three spellings give the same list
    assert name_list(None) is None
    assert name_list(("ae", "dlib")) == ["ae", "dlib"]
    assert name_list("dlib") == ["dlib"]
    assert name_list("ae, dlib") == ["ae", "dlib"]
    assert name_list('["ae", "dlib"]') == ["ae", "dlib"] == name_list("['ae', 'dlib']")
    with pytest.raises(ConfigError, match="cannot read the list"):
        name_list('["ae", ')


def test_config_round_trip_and_unknown_field(tmp_path):
    config = _Example(name="b", size=5)
    path = save_config(config, tmp_path / "config.json")
    assert json.loads(path.read_text())["class"] == "_Example"
    loaded = load_config(_Example, path)
    assert to_dict(loaded) == to_dict(config)
    with pytest.raises(ConfigError, match="unknown _Example fields"):
        from_dict(_Example, {"name": "x", "sise": 3})


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    target = tmp_path / "sub" / "out.json"
    lio.atomic_write_json(target, {"a": np.float32(1.5), "b": np.arange(3)})
    assert json.loads(target.read_text()) == {"a": 1.5, "b": [0, 1, 2]}
    assert [p.name for p in target.parent.iterdir()] == ["out.json"]


def test_checkpoint_round_trip(tmp_path):
    model = torch.nn.Linear(3, 2)
    path = lio.save_checkpoint(tmp_path / "ckpt.pt", {"model": model.state_dict(), "step": 7}, _Example())
    loaded = lio.load_checkpoint(path)
    assert loaded["step"] == 7 and loaded["config"]["size"] == 3 and loaded["config_class"] == "_Example"
    for key, value in model.state_dict().items():
        assert torch.equal(loaded["model"][key], value)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        lio.load_checkpoint(tmp_path / "missing.pt")


def test_stats_writer_truncates_on_resume(tmp_path):
    writer = lio.StatsWriter(tmp_path / "stats.jsonl")
    for step in range(5):
        writer.write({"step": step, "loss": step * 0.1})
    writer.truncate_after("step", 2)
    assert [r["step"] for r in lio.read_jsonl(writer.path)] == [0, 1, 2]


def test_video_grid_and_gif(tmp_path):
    video = torch.rand(3, 16, 8, 8) * 2 - 1  # (C, T, H, W) layout of the video discriminator
    short = np.zeros((4, 8, 8, 3), np.uint8)
    grid = lio.video_grid([[video, short], [short]], pad=1)
    assert grid.shape == (16, 2 * 9 + 1, 2 * 9 + 1, 3) and grid.dtype == np.uint8
    path = lio.write_gif(grid, tmp_path / "grid.gif", scale=2)
    assert path.read_bytes()[:6] in (b"GIF89a", b"GIF87a")


def test_run_dir_numbering_and_names(tmp_path, monkeypatch):
    monkeypatch.setenv("VICE_RUNS_DIR", str(tmp_path))
    first = run_dir("03_train", description="ae single")
    second = run_dir("03_train", description="ae single")
    assert first.name == "00000-ae-single" and second.name == "00001-ae-single"
    assert run_dir("03_train", "fixed") == tmp_path / "03_train" / "fixed"
    with pytest.raises(ValueError):
        safe_name("///")


@pytest.mark.parametrize("name,why", [("..", "starts with '.'"), (".", "starts with '.'"),
                                      (".hidden", "starts with '.'"), ("../escape", "starts with '.'"),
                                      ("  ", "is empty"), ("NUL", "reserved"), ("com1.txt", "reserved")])
def test_hostile_names_are_rejected_with_the_rule(tmp_path, monkeypatch, name, why):
    monkeypatch.setenv("VICE_RUNS_DIR", str(tmp_path))
    with pytest.raises(ValueError, match=why) as error:
        run_dir("03_train", name)
    assert "must not start with '.'" in str(error.value)  # the rule is stated
    with pytest.raises(ValueError, match=why):
        safe_name(name)
    assert list(tmp_path.rglob("*")) == []  # rejected before anything is made
    with pytest.raises(ValueError, match="is empty"):
        safe_name("")


def test_ordinary_names_stay_inside_their_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("VICE_RUNS_DIR", str(tmp_path))
    for name, folder in (("a/../../b", "a-..-..-b"), ("my run", "my-run"), ("v1.2", "v1.2"), ("console", "console")):
        path = run_dir("03_train", name)
        assert path == tmp_path / "03_train" / folder and path.resolve().is_relative_to(tmp_path.resolve())


def test_facenet_pytorch_imports_without_torchvision():
    from lib.compat import batched_nms, import_facenet_pytorch

    module = import_facenet_pytorch()
    assert hasattr(module, "MTCNN") and hasattr(module, "InceptionResnetV1")
    assert "torchvision" not in sys.modules  # the stand-ins are removed again
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10], [50, 50, 60, 60]], dtype=torch.float)
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    kept = batched_nms(boxes, scores, torch.tensor([0, 0, 1, 0]), 0.5)
    # box 1 overlaps box 0 in the same class; box 2 is identical to box 0 but another class
    assert kept.tolist() == [0, 2, 3]


def _lib_imports() -> dict[str, set[str]]:
    """Every lib module -> the lib modules it imports (at the top or inside a function)."""
    import ast

    from lib.paths import REPO_ROOT

    graph = {}
    for path in (REPO_ROOT / "lib").rglob("*.py"):
        module = ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts).removesuffix(".__init__")
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lib."):
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(a.name for a in node.names if a.name.startswith("lib."))
        graph[module] = names
    return graph


def test_lib_imports_go_one_way_without_a_circle():
    """data <- models <- train <- evaluation <- runs, and no module reaches itself through its imports."""
    graph = _lib_imports()
    order = ["lib.data", "lib.models", "lib.train", "lib.evaluation", "lib.runs"]

    def layer(module):
        return next((i for i, name in enumerate(order) if module == name or module.startswith(name + ".")), None)

    upward = [(m, i) for m, imported in graph.items() for i in imported
              if layer(m) is not None and layer(i) is not None and layer(i) > layer(m)]
    assert not upward, f"imports against the layers {order}: {upward}"
    state: dict[str, int] = {}

    def visit(module, path):
        state[module] = 1
        for nxt in sorted(graph.get(module, ())):
            if nxt not in graph:
                continue
            assert state.get(nxt) != 1, f"import circle: {' -> '.join(path + [nxt])}"
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
