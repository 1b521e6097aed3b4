"""Folder ownership: one writer per run folder, by a lock file that holds the owner's pid, host and start.

``os.open(O_CREAT | O_EXCL)`` makes taking a lock atomic; a lock whose pid is dead (on this host)
is stale and is broken under a guard file, so two processes cannot both break it and one delete
the other's fresh lock.  A lock from another host (a shared disk) is assumed alive.
"""
from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

OWNER_FILE = ".owner.lock"  # held by the process that trains into a run folder (02, 03)
# A runner's job takes a run folder's owner lock, then starts 03's kernel with this variable set to its
# pid: the kernel writes there as that owner instead of failing on the lock (see own_run_folder).
INHERITED_OWNER_ENV = "VICE_RUN_FOLDER_OWNER"
EMPTY_LOCK_GRACE_S = 30.0  # a lock file still empty after this long was left by a crash mid-write


class RunFolderBusy(RuntimeError):
    """Another live process owns the run folder."""


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _read_lock(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text() or "{}")
    except FileNotFoundError:
        return None
    except json.JSONDecodeError:  # being written right now: treat as held
        return {"pid": None, "host": socket.gethostname()}


def lock_owner(folder: Path, name: str) -> dict[str, Any] | None:
    """The live owner of ``folder/name`` (pid, host, since, command), or None if free or stale."""
    path = Path(folder) / name
    info = _read_lock(path)
    if info is None:
        return None
    if info.get("pid") is None:  # half-written; one that stays empty is a crash mid-write
        with contextlib.suppress(FileNotFoundError):
            if time.time() - path.stat().st_mtime > EMPTY_LOCK_GRACE_S:
                return None
        return info
    if info.get("host") != socket.gethostname():
        return info  # another machine on a shared disk: cannot judge, assume alive
    return info if pid_alive(int(info["pid"])) else None


def try_lock(folder: Path, name: str) -> bool:
    """Take ``folder/name`` for this process; False when a live process holds it."""
    path = Path(folder) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if not _break_stale_lock(path):
                return False
            continue
        with os.fdopen(fd, "w") as handle:
            json.dump({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(),
                       "command": " ".join(sys.argv)[:300]}, handle)
        return True
    return False


def _break_stale_lock(path: Path) -> bool:
    with open(path.with_name(path.name + ".guard"), "a") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        if _read_lock(path) is None:
            return True  # released meanwhile
        if lock_owner(path.parent, path.name) is not None:
            return False
        path.unlink(missing_ok=True)
        return True


def release_lock(folder: Path, name: str) -> None:
    path = Path(folder) / name
    info = _read_lock(path)
    if info and info.get("pid") == os.getpid():
        path.unlink(missing_ok=True)


def describe_owner(info: dict[str, Any]) -> str:
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info["since"])) if info.get("since") else "?"
    return f"pid {info.get('pid')} on host {info.get('host')} since {since} ({info.get('command', '')})"


OWNER_POLL_S = 0.5  # how often a process writing for its parent job checks that the job lives


def _stop_when_gone(pid: int, stop: threading.Event, guard: threading.Lock, writer: int) -> None:
    while not stop.wait(OWNER_POLL_S):
        if not pid_alive(pid):
            with guard:  # never after the writer has left its block
                if not stop.is_set():
                    # KeyboardInterrupt in the writing thread, whatever SIGINT's disposition (a runner started in
                    # the background ignores SIGINT, and its kernels inherit that): the training loop stops writing
                    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(writer),
                                                               ctypes.py_object(KeyboardInterrupt))
            return


@contextlib.contextmanager
def own_run_folder(folder: str | Path) -> Iterator[Path]:
    """Hold ``folder``'s owner lock while writing into it; a second writer fails at once naming the owner.
    A lock left by a dead process is taken over; one held by the parent job named in
    ``INHERITED_OWNER_ENV`` is ours."""
    folder = Path(folder)
    info = lock_owner(folder, OWNER_FILE) or {}
    inherited = os.environ.get(INHERITED_OWNER_ENV)
    if inherited and str(info.get("pid")) == inherited and info.get("host") == socket.gethostname():
        # held for us by the job that started this process; it releases the lock.  Should the job die first
        # (killed, its grace period over), this process stops too: no writer without the lock.
        stop, guard = threading.Event(), threading.Lock()
        threading.Thread(target=_stop_when_gone, args=(int(inherited), stop, guard, threading.get_ident()),
                         daemon=True).start()
        try:
            yield folder
        finally:
            with guard:
                stop.set()
        return
    if not try_lock(folder, OWNER_FILE):
        info = lock_owner(folder, OWNER_FILE) or {}
        raise RunFolderBusy(f"run folder {folder} is in use by {describe_owner(info)}; wait for it to finish, "
                            f"or choose another run_name / run_dir")
    try:
        yield folder
    finally:
        release_lock(folder, OWNER_FILE)


@contextlib.contextmanager
def waiting_lock(folder: str | Path, name: str, poll_s: float = 2.0, say: Callable[[str], Any] | None = print
                 ) -> Iterator[Path]:
    """Hold ``folder/name``, waiting while a live process holds it (a dead one's lock is taken over): for
    shared work that the first process does and the others then reuse, e.g. training a measuring
    instrument that two training jobs ask for at once."""
    folder = Path(folder)
    told = False
    while not try_lock(folder, name):
        if say is not None and not told:
            say(f"waiting for {describe_owner(lock_owner(folder, name) or {})} ({folder / name})")
            told = True
        time.sleep(poll_s)
    try:
        yield folder
    finally:
        release_lock(folder, name)
