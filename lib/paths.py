"""Where things live.  Generated data and runs stay out of the source tree's tracked files.

Environment variables override the defaults (useful for a shared data disk):
``VICE_DATA_DIR`` (datasets and caches), ``VICE_RUNS_DIR`` (run folders),
``VICE_FIGURES_DIR`` (report figures).
"""
from __future__ import annotations

import json
import os
import re
import socket
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
# Written by 03 (lib.train.gan) when a GAN run finished; the runner and 05 look for it.
TRAIN_DONE_FILE = "train_done.json"


def _dir_from_env(var: str, default: Path) -> Path:
    value = os.environ.get(var)
    return Path(value).expanduser().resolve() if value else default


def data_dir() -> Path:
    """Datasets (synthetic benchmark) and preprocessed caches."""
    return _dir_from_env("VICE_DATA_DIR", REPO_ROOT / "data")


def runs_dir() -> Path:
    """Root of all run folders: ``<runs_dir>/<notebook>/<run-name>/``."""
    return _dir_from_env("VICE_RUNS_DIR", REPO_ROOT / "papermill_runs")


def figures_dir() -> Path:
    return _dir_from_env("VICE_FIGURES_DIR", REPO_ROOT / "figures")


def notebooks_dir() -> Path:
    return REPO_ROOT / "notebooks"


_SAFE = re.compile(r"[^A-Za-z0-9._=-]+")


# Names no run, grid or output folder may take: the Windows device names (a folder of that name cannot be
# copied to or opened on Windows) whatever their case.
RESERVED_NAMES = frozenset({"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)),
                            *(f"lpt{i}" for i in range(1, 10))})
NAME_RULE = ("a folder name is made of letters, digits and ._=- (anything else becomes -), must not be empty, "
             "must not start with '.' (hidden, or '.'/'..', which leave their folder) and must not be a reserved "
             f"device name ({', '.join(sorted(RESERVED_NAMES))})")


def safe_name(text: str) -> str:
    """A file-system-safe version of ``text`` (keeps letters, digits, ``._=-``) that stays inside its parent
    folder; raises ValueError stating :data:`NAME_RULE` for a name that is empty, hidden, ``.``/``..`` or
    reserved."""
    cleaned = _SAFE.sub("-", str(text)).strip("-")
    problem = ("is empty" if not cleaned else "starts with '.'" if cleaned.startswith(".") else
               "is a reserved name" if cleaned.split(".")[0].lower() in RESERVED_NAMES else None)
    if problem:
        raise ValueError(f"cannot make a folder name from {text!r}: it {problem}; {NAME_RULE}")
    return cleaned


# A grid run with seeds is named "<variant>-seed<N>" (lib.runs.grid); evaluation groups them back by variant.
_SEED_SUFFIX = re.compile(r"^(?P<variant>.+)-seed(?P<seed>\d+)$")


def seeded_run_name(variant: str, seed: int) -> str:
    return f"{variant}-seed{int(seed)}"


def split_seed(run_name: str) -> tuple[str, int | None]:
    """``"thesis-m4-seen-seed2"`` -> ``("thesis-m4-seen", 2)``; a name without the suffix -> ``(name, None)``."""
    match = _SEED_SUFFIX.match(run_name)
    return (match["variant"], int(match["seed"])) if match else (run_name, None)


CREATOR_FILE = ".creator.json"  # pid and host of the process that made a numbered run folder
_EMPTY_RUN_FILES = {"config.json", CREATOR_FILE}  # all a run folder holds when its run failed at once


def sweep_failed_runs(parent: Path) -> list[Path]:
    """Remove numbered run folders that hold nothing but their config and whose creating process is
    gone (a run that failed before writing anything); a live run's folder is never touched."""
    from lib.locks import pid_alive

    removed = []
    for folder in parent.iterdir():
        creator = folder / CREATOR_FILE
        if not (folder.is_dir() and folder.name[:5].isdigit() and creator.is_file()):
            continue
        try:
            owner = json.loads(creator.read_text())
            if {p.name for p in folder.iterdir()} <= _EMPTY_RUN_FILES and owner.get("host") == socket.gethostname() \
                    and not pid_alive(int(owner["pid"])):
                for item in folder.iterdir():
                    item.unlink()
                folder.rmdir()
                removed.append(folder)
        except (OSError, ValueError, KeyError):  # being written or removed by another process
            continue
    return removed


def run_dir(notebook: str, run_name: str | None = None, description: str = "run") -> Path:
    """The folder of one run: ``<runs_dir>/<notebook>/<run_name>/`` (created).

    With ``run_name=None`` a new numbered folder ``00003-<description>`` is made, in
    the manner of StyleGAN2-ADA (numbered folders of failed runs that wrote nothing but their
    config are swept first: :func:`sweep_failed_runs`); a given ``run_name`` is reused as is,
    which is how an interrupted run resumes from its checkpoints.
    """
    parent = runs_dir() / safe_name(notebook)
    name = safe_name(run_name) if run_name else None  # a hostile name fails before anything is made
    parent.mkdir(parents=True, exist_ok=True)
    if name:
        path = parent / name
        path.mkdir(parents=True, exist_ok=True)
        return path
    sweep_failed_runs(parent)
    numbers = [int(p.name[:5]) for p in parent.iterdir() if p.is_dir() and p.name[:5].isdigit()]
    number = max(numbers, default=-1) + 1
    while True:  # another process may take the same number: mkdir is the lock
        path = parent / f"{number:05d}-{safe_name(description)}"
        try:
            path.mkdir()
            (path / CREATOR_FILE).write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
            return path
        except FileExistsError:
            number += 1
