"""A variant folder's bookkeeping: ``status.json`` (state, job, attempts, error, timings), whether it
finished (``train_done.json``), how far it trained, and the table 04 shows live."""
from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from lib import locks
from lib.config import check_choice
from lib.io import atomic_write_json, read_json, read_jsonl
from lib.paths import TRAIN_DONE_FILE
from lib.runs.backends import job_alive

STATES = ("pending", "queued", "running", "done", "failed", "interrupted")
STATUS_FILE = "status.json"


def read_status(folder: Path) -> dict[str, Any]:
    try:
        return read_json(Path(folder) / STATUS_FILE)
    except (FileNotFoundError, json.JSONDecodeError):
        return {"state": "pending"}


def write_status(folder: Path, **fields: Any) -> dict[str, Any]:
    status = {**read_status(folder), **fields, "updated_at": time.time()}
    check_choice("state", status["state"], STATES)
    atomic_write_json(Path(folder) / STATUS_FILE, status)
    return status


def is_done(folder: Path) -> bool:
    return (Path(folder) / TRAIN_DONE_FILE).is_file()


def trained_steps(folder: Path) -> int | None:
    """Training steps so far: train_done.json's count, else the last step in stats.jsonl."""
    folder = Path(folder)
    if is_done(folder):
        with contextlib.suppress(Exception):
            done = read_json(folder / TRAIN_DONE_FILE)
            for key in ("steps", "step"):
                if isinstance(done.get(key), int):
                    return done[key]
    steps = [r["step"] for r in read_jsonl(folder / "stats.jsonl") if isinstance(r.get("step"), int)]
    return max(steps) if steps else None


def owner(folder: Path) -> dict[str, Any] | None:
    """The live process training into the folder (its run-folder owner lock), or None."""
    return locks.lock_owner(Path(folder), locks.OWNER_FILE)


def variant_state(folder: Path) -> str:
    """pending/queued/running/done/failed, or ``interrupted``: a job that said queued or running is gone
    (killed with its runner, cancelled, preempted without requeue); it resumes when run again."""
    if is_done(folder):
        return "done"
    status = read_status(folder)
    state = status.get("state", "pending")
    if owner(folder) is not None:
        return "running"
    if state in ("queued", "running"):
        return state if job_alive(status) else "interrupted"
    return state


def status_table(folders: Mapping[str, Path]) -> pd.DataFrame:
    rows = []
    for name, folder in folders.items():
        status = read_status(folder)
        rows.append({
            "variant": name, "state": variant_state(folder), "steps": trained_steps(folder),
            "wall_s": round(status["total_wall_s"], 1) if status.get("total_wall_s") is not None else None,
            "attempts": status.get("attempts", 0), "job": status.get("job_id") or "",
            "error": status.get("error") or "", "log": status.get("log") or "", "run_dir": str(folder),
        })
    columns = ["variant", "state", "steps", "wall_s", "attempts", "job", "error", "log", "run_dir"]
    return pd.DataFrame(rows, columns=columns).astype({"steps": "Int64"})  # integer even with missing steps
