"""The progress line of ``autosize run``: wall time used and left, trials done, the best
network so far; on stderr, only where stderr is a terminal (tqdm's ``disable=None``)."""

from __future__ import annotations

import sys
import threading
import time

from tqdm import tqdm

from autosize.search.store.results import TrialResult

__all__ = ["Progress"]

TICK = 1.0  # seconds between redraws of the wall clock


class Progress:
    """A tqdm line over the wall budget (``timeout``) or, without one, over the trials.

    ``trial`` prints a finished trial's line above it (unless ``quiet``) and updates the
    count and the best value; ``phase`` says what runs before the first trial (the seed).
    """

    def __init__(
        self,
        *,
        name: str,
        timeout: float | None,
        n_trials: int | None,
        started: float,
        quiet: bool = False,
    ) -> None:
        self.quiet = quiet
        self.timeout = timeout
        self.started = started
        self.maximize: bool | None = None
        self.done = 0
        self.best: TrialResult | None = None
        self.bar = tqdm(
            total=timeout if timeout is not None else n_trials,
            desc=name,
            unit="s" if timeout is not None else "trial",
            file=sys.stderr,
            disable=True if quiet else None,
            leave=False,
            bar_format="{desc}: {bar} {n_fmt}/{total_fmt} s, {postfix}"
            if timeout is not None
            else "{desc}: {bar} {n_fmt}/{total_fmt} trials [{elapsed}], {postfix}",
        )
        self._status = "starting"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if timeout is not None and not self.bar.disable:
            self._thread = threading.Thread(target=self._tick, name="progress", daemon=True)
            self._thread.start()

    def _tick(self) -> None:
        while not self._stop.wait(TICK):
            self._render()

    def _render(self) -> None:
        if self.timeout is None:
            self.bar.set_postfix_str(self._status)
            return
        used = time.time() - self.started
        self.bar.n = int(min(used, self.timeout))
        left = max(0.0, self.timeout - used)
        self.bar.set_postfix_str(f"{left:.0f} s left, {self._status}")

    def phase(self, text: str) -> None:
        self._status = text
        self._render()

    def trial(self, result: TrialResult) -> None:
        if not self.quiet:
            tqdm.write(result.line(), file=sys.stdout)
        if result.role == "warmstart":
            self.done += 1
            if self.timeout is None:
                self.bar.update(1)
        if result.value is not None and result.state == "complete" and self._better(result):
            self.best = result
        best = (
            ""
            if self.best is None
            else f", best {self.best.value:.4f} {self.best.architecture} (trial {self.best.number})"
        )
        self._status = f"{self.done} trials{best}"
        self._render()

    def _better(self, result: TrialResult) -> bool:
        if self.best is None or self.best.value is None or result.value is None:
            return True
        if self.maximize is None or self.maximize:
            return result.value > self.best.value
        return result.value < self.best.value

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.bar.close()
