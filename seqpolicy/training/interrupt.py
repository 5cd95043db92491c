"""Stopping a training run on Ctrl-C (SIGINT) or ``kill`` (SIGTERM) without losing its steps.

While :class:`StopSignals` is active, these signals no longer stop the process wherever it is: the first one is
noted, the training loop finishes the step in progress (a step boundary is the only place where the weights,
optimizer and random states form a resumable whole), writes a checkpoint of the step reached and raises
:class:`TrainingInterrupted`, which says what was saved. Signals that follow are ignored, so none can cut the
checkpoint's write short (the write is atomic anyway: even ``kill -9`` leaves the previous checkpoint whole).

Only the main thread can receive signals: elsewhere nothing is installed and Python's defaults apply.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on a signal after writing a checkpoint of the step it reached.

    A KeyboardInterrupt, so that code which stops on Ctrl-C (and no ``except Exception``) stops on it too.

    Attributes:
        signum: the signal (``signal.SIGINT`` or ``signal.SIGTERM``).
        step: the training step reached, the step of the checkpoint.
        checkpoint: the checkpoint folder written.
    """

    def __init__(self, signum: int, step: int, checkpoint: Path):
        self.signum, self.step, self.checkpoint = signum, step, checkpoint
        super().__init__(f"{signal.Signals(signum).name}: training stopped at step {step} and saved a checkpoint of "
                         f"it to {checkpoint}; continue with resume=True (seqpolicy-train ... --resume).")

    @property
    def exit_code(self) -> int:
        """The shell's status for a process stopped by this signal: 130 for SIGINT, 143 for SIGTERM."""
        return 128 + self.signum


class StopSignals:
    """A context in which SIGINT and SIGTERM are noted in ``requested`` (the first one's number) instead of
    stopping the process; the previous handlers come back on exit.

    Args:
        install: take over the signals (False: a context that changes nothing, e.g. for a run without a folder
            to checkpoint into).
        announce: print one line to stderr when the first signal arrives (False on all but one process).
    """

    def __init__(self, install: bool = True, announce: bool = True):
        self.requested: int | None = None
        self.install, self.announce = install, announce
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if self.install and threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._note) for s in SIGNALS}
        return self

    def __exit__(self, *exc: object) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, signal.SIG_DFL if handler is None else handler)  # None: set outside Python
        self._previous = {}

    def _note(self, signum: int, frame: FrameType | None) -> None:
        if self.requested is not None:
            return  # torchrun forwards a terminal's Ctrl-C, so each process gets it twice
        self.requested = signum
        if self.announce:
            print(f"\n{signal.Signals(signum).name}: finishing the step in progress, then writing a checkpoint "
                  "(kill -9 stops at once, without one)", file=sys.stderr, flush=True)
