"""A clean stop on SIGTERM, the signal Slurm's time limit, ``scancel`` and a JupyterLab kernel shutdown send.

The training loops (:mod:`lib.train.gan`, :mod:`lib.train.loop`) run inside :class:`StopOnSignal`: the signal
only sets a flag, the loop finishes the step it is in, writes its checkpoint (atomically, every RNG state
included) and raises :class:`TrainingStopped`, so no step is lost and running the same command again resumes with
the losses an uninterrupted run would have logged.
"""
from __future__ import annotations

import signal
import threading
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM,)


class TrainingStopped(RuntimeError):
    """Raised by a training loop that a stop signal interrupted, after its checkpoint was written."""

    def __init__(self, signal_number: int, step: int, checkpoint: str):
        self.signal_number, self.step, self.checkpoint = signal_number, step, checkpoint
        super().__init__(f"stopped by {signal.Signals(signal_number).name} after step {step}; the checkpoint "
                         f"{checkpoint} holds it: run the same command again to resume")


class StopOnSignal:
    """``with StopOnSignal() as stop: ... if stop.requested: ...``: the stop signals set ``stop.requested``
    (and ``stop.signal_number``) instead of killing the process; the previous handlers come back on exit.
    Outside the main thread (where Python cannot take signals) it installs nothing and never requests."""

    def __init__(self, signals: tuple[int, ...] = STOP_SIGNALS):
        self.signals, self.previous = signals, {}
        self.requested, self.signal_number = False, None

    def _handle(self, number: int, frame: FrameType | None) -> None:
        self.requested, self.signal_number = True, number

    def __enter__(self) -> "StopOnSignal":
        if threading.current_thread() is threading.main_thread():
            self.previous = {number: signal.signal(number, self._handle) for number in self.signals}
        return self

    def __exit__(self, *exc) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)
        self.previous = {}

    def stopped(self, step: int, checkpoint: str) -> TrainingStopped:
        return TrainingStopped(int(self.signal_number), step, str(checkpoint))
