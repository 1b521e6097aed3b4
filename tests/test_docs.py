"""README and docs: short, every link and command real, and no work-history wording anywhere in the repository."""
from __future__ import annotations

import importlib.util
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAX_README_LINES = 300
# "the twelfth session", "this session's", "earlier sessions": how the work went, not what the project is.
# Domain words stay: MUG's recording sessions, a rater's rating session, a run resumed over several sittings.
_ORDINALS = ("first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth "
             "fourteenth fifteenth this that earlier previous last next").split()
HISTORY_WORDING = re.compile(r"\b(" + "|".join(_ORDINALS) + r")\s+(work\s+)?sess" + r"ions?\b", re.IGNORECASE)
TEXT_SUFFIXES = {".py", ".md", ".ipynb", ".txt", ".toml", ".yml", ".sh", ""}


def _tracked_text_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return [ROOT / name for name in listed if (ROOT / name).suffix in TEXT_SUFFIXES and (ROOT / name).is_file()]


def test_readme_is_short():
    lines = README.read_text().count("\n")
    assert lines <= MAX_README_LINES, f"README.md has {lines} lines; at most {MAX_README_LINES} (the rest goes to docs/)"


def test_every_relative_link_and_image_of_readme_and_docs_resolves():
    for page in [README, *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if re.match(r"[a-z]+://|#|mailto:", target):
                continue
            path = (page.parent / target.split("#")[0]).resolve()
            assert path.exists(), f"{page.relative_to(ROOT)} links to {target}, which does not exist"


def _command_lines() -> list[str]:
    blocks = re.findall(r"```(?:bash|sh)?\n(.*?)```", README.read_text(), flags=re.S)
    joined = "\n".join(blocks).replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]


def test_every_command_of_readme_names_a_target_that_exists():
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([A-Za-z][\w-]*):", makefile, flags=re.M))
    lines = _command_lines()
    assert lines, "README has no command block"
    for line in lines:
        for target in re.findall(r"\bmake\s+([A-Za-z][\w-]*)", line):
            assert target in targets, f"README runs `make {target}`, which the Makefile does not define"
        for module in re.findall(r"python\s+-m\s+([\w.]+)", line):
            if module.split(".")[0] in ("pytest", "pip", "venv", "ipykernel"):
                continue
            assert importlib.util.find_spec(module) is not None, f"README runs `python -m {module}`: no such module"
        for notebook in re.findall(r"papermill\s+(\S+\.ipynb)", line):
            assert (ROOT / notebook).is_file(), f"README runs papermill on {notebook}, which does not exist"


def test_no_work_history_wording_in_the_repository():
    found = [f"{path.relative_to(ROOT)}:{number}: {line.strip()[:120]}"
             for path in _tracked_text_files() if path != Path(__file__).resolve()  # its examples below
             for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
             if HISTORY_WORDING.search(line)]
    assert not found, "work-history wording (say what the project does, with dates where needed):\n" + "\n".join(found)


@pytest.mark.parametrize("line", ["the twelfth session's demo", "since this session", "as earlier sessions did",
                                  "the Third\n session"])
def test_the_history_pattern_catches_the_wording(line):
    assert HISTORY_WORDING.search(line)


@pytest.mark.parametrize("line", ["MUG's recording session folders", "a rater's rating session",
                                  "a run resumed over several sittings", "session0|session1"])
def test_the_history_pattern_leaves_domain_words(line):
    assert not HISTORY_WORDING.search(line)


def test_readme_results_table_is_written_from_results_csv(tmp_path):
    """README's results block is regenerated from 05's results.csv: values, intervals, ACD as a ratio to real."""
    import json

    import pandas as pd

    from lib.runs.readme import BEGIN, END, update_readme

    results = tmp_path / "05"
    results.mkdir()
    pd.DataFrame([
        {"run": "real", "variant": "real", "face_rate_dlib": 1.0, "cas_truth": 0.9, "cas_truth_lo": 0.8,
         "cas_truth_hi": 0.95, "acd_truth": 0.2},
        {"run": "thesis-m4-seen", "variant": "thesis-m4", "snapshot": "best (step 750)",
         "face_rate_dlib": 0.97, "cas_truth": 0.71, "cas_truth_lo": 0.6, "cas_truth_hi": 0.8, "acd_truth": 0.3,
         "acd_truth_lo": 0.25, "acd_truth_hi": 0.35},
    ]).to_csv(results / "results.csv", index=False)
    (results / "results.json").write_text(json.dumps({"config": {"n_pairs": 96}}))
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\n{BEGIN}\nold\n{END}\n\ntail\n")
    update_readme(results, readme)
    text = readme.read_text()
    assert "old" not in text and text.startswith("# title") and text.endswith("tail\n")
    assert "on 96 test pairs" in text
    row = next(line for line in text.splitlines() if line.startswith("| thesis-m4-seen"))
    assert "best (step 750)" in row and "0.71 [0.60, 0.80]" in row and "1.50 [1.25, 1.75]" in row
    update_readme(results, readme)  # idempotent: one block, rewritten
    assert readme.read_text() == text
    readme.write_text("no markers\n")
    with pytest.raises(ValueError, match="results:begin"):
        update_readme(results, readme)
