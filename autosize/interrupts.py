"""SIGTERM and Ctrl-C as one interrupt, with a watchdog for a wind-down that hangs.

``autosize run`` and its worker processes end the running trial on SIGTERM (a
scheduler, ``kill``) as on Ctrl-C: KeyboardInterrupt, the trial failed as
"interrupted", the study's storage and artifacts as they were. The interrupt can land
anywhere, also inside a library between taking a lock and the ``try`` that would release
it (a database pool, a logging handler); the wind-down then waits on that lock for ever.
So the first interrupt also starts a watchdog: if the process is still alive
``GRACE_SECONDS`` later, it prints every thread's stack to stderr (where it hung) and
ends the process with the interrupted exit code. What the study has written stays; a
trial left RUNNING is failed as stale when the study next starts (its heartbeat stopped).

The storage's own calls are :func:`shielded`: an interrupt that arrives inside one is
raised when the call returns, so it never lands between a database write and its commit
(SQLite then kept the write lock, and the wind-down's own write, "interrupted", waited
on it until the watchdog ended the process), nor inside a journal file's append (Optuna's
lock, interrupted while waiting, deletes the lock another process holds).
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from types import FrameType

__all__ = ["GRACE_SECONDS", "install", "received", "shielded"]

GRACE_SECONDS = 30.0
EXIT_INTERRUPTED = 130  # as a shell reports a process ended by Ctrl-C (autosize.cli's too)

_watchdog: threading.Thread | None = None
_received: int | None = None  # the first interrupt's signal number
_shielded = 0  # how deep the main thread is in shielded() blocks
_pending = False  # an interrupt arrived inside one: raise it when the outermost ends


def install(grace: float = GRACE_SECONDS) -> None:
    """SIGTERM and SIGINT raise KeyboardInterrupt here; the first one starts the watchdog."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        global _watchdog, _received, _pending
        if _received is None:
            _received = signum
        if _watchdog is None:
            _watchdog = threading.Thread(
                target=_exit_after, args=(grace,), name="autosize-interrupt-watchdog", daemon=True
            )
            _watchdog.start()
        if _shielded:
            _pending = True
            return
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """A block an interrupt must not land inside (signal handlers run in the main thread,
    so in other threads this does nothing): one that arrives is raised as
    KeyboardInterrupt when the outermost block ends."""
    global _shielded, _pending
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _shielded += 1
    try:
        yield
    finally:
        _shielded -= 1
        if not _shielded and _pending:
            _pending = False
            raise KeyboardInterrupt


def _exit_after(grace: float) -> None:
    time.sleep(grace)
    print(
        f"autosize: interrupted, and still winding down after {grace:g} s: exiting now; "
        "where each thread was:",
        file=sys.stderr,
        flush=True,
    )
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    sys.stderr.flush()
    os._exit(EXIT_INTERRUPTED)


def received() -> int | None:
    """The signal number of the first interrupt this process got (None: none yet)."""
    return _received
