"""Work that one process of a study does for all (train the seed, run the baselines).

Any number of ``autosize run`` processes, on one machine or many, may open the
same study at the same moment. The seed must be trained once and every baseline
run once, so a process *claims* such work first. The claim is atomic on every
storage: it is the creation of a small lock study named after the work
(``<study>.autosize-lock.<work>.<n>``); Optuna refuses a second study of the same
name, so exactly one process gets it. The holder writes a heartbeat into the
lock study's user attributes while it works and deletes the lock when done.

A holder that dies (SIGKILL, a lost machine) stops beating; once its beat is
older than the grace period (at once, when the holder was a process of this
machine that is gone: ``record.worker_gone``), the next process claims attempt
``n + 1`` (again atomic) and does the work, and removes the dead holder's locks
when it is done.
Beats are wall-clock times (``time.time()``): machines sharing a study should
keep their clocks in sync to well within the grace period.
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

import optuna
from optuna.exceptions import DuplicatedStudyError, ExperimentalWarning
from optuna.storages import RDBStorage

from autosize.errors import StorageLost
from autosize.search.store import record
from autosize.search.store.storage import LOCK_MARK, grace_seconds, make_storage

__all__ = ["claim"]

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.5


def _lock_name(study_name: str, work: str, attempt: int) -> str:
    return f"{study_name}{LOCK_MARK}{work}.{attempt}"


@contextmanager
def claim(
    storage_url: str,
    study_name: str,
    work: str,
    *,
    done: Callable[[], bool],
    wait: bool,
    give_up_at: float | None = None,
) -> Iterator[bool]:
    """Yield True in the one process that must do ``work`` now, False in every other.

    ``done()`` says whether the work is already there (checked before claiming and again
    once the claim is held). With ``wait`` a process that finds another one working waits
    until the work is done (True is then never yielded to it, unless the holder dies
    and it takes over) or until ``give_up_at`` (a ``time.time()`` value); without, it
    yields False at once and goes on with something else.
    """
    storage = make_storage(storage_url)
    try:
        with _claim(storage, study_name, work, done=done, wait=wait, give_up_at=give_up_at) as mine:
            yield mine
    finally:  # one engine per claim: its connections must not stay open for the whole run
        if isinstance(storage, RDBStorage):
            storage.remove_session()
            storage.engine.dispose()


@contextmanager
def _claim(
    storage: optuna.storages.BaseStorage,
    study_name: str,
    work: str,
    *,
    done: Callable[[], bool],
    wait: bool,
    give_up_at: float | None,
) -> Iterator[bool]:
    grace = grace_seconds()
    attempt = 0
    first_seen: dict[str, float] = {}
    while True:
        if done():
            yield False
            return
        name = _lock_name(study_name, work, attempt)
        try:
            lock = _create(storage, name)
        except DuplicatedStudyError:
            if _stale(storage, name, grace, first_seen):
                logger.warning("the process that held %r stopped; taking its work over", name)
                attempt += 1
                continue
            if not wait or (give_up_at is not None and time.time() >= give_up_at):
                yield False
                return
            time.sleep(POLL_SECONDS)
            continue
        stop = threading.Event()
        beat = threading.Thread(target=_beat, args=(lock, stop, grace), daemon=True)
        _write_beat(lock)
        beat.start()
        try:
            yield not done()
        finally:
            stop.set()
            beat.join()
            for n in range(attempt, -1, -1):  # this lock and any dead holder's before it
                with suppress(KeyError):
                    optuna.delete_study(study_name=_lock_name(study_name, work, n), storage=storage)
        return


def _create(storage: optuna.storages.BaseStorage, name: str) -> optuna.Study:
    """The lock study ``name``; DuplicatedStudyError when it exists (the atomic part)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        return optuna.create_study(study_name=name, storage=storage)


def _write_beat(lock: optuna.Study) -> None:
    record.write_claim_beat(lock)


def _beat(lock: optuna.Study, stop: threading.Event, grace: int) -> None:
    while not stop.wait(max(0.5, grace / 3)):
        try:
            _write_beat(lock)
        except (Exception, StorageLost) as exc:  # a storage hiccup: the next may get through
            logger.debug("could not write the claim's heartbeat: %s", exc)


def _stale(
    storage: optuna.storages.BaseStorage, name: str, grace: int, first_seen: dict[str, float]
) -> bool:
    """Whether the holder of lock ``name`` has stopped beating (a missing lock is not stale)."""
    try:
        lock = optuna.load_study(study_name=name, storage=storage)
        beat, gone = record.read_claim(lock)
    except KeyError:
        return False  # released in the meantime: claim it again (done() is checked first)
    if gone:  # a killed run on this machine: no need to wait for its beat to go stale
        return True
    now = time.time()
    if beat is None:
        # Created but no beat yet: the holder writes one right after creating the lock.
        return now - first_seen.setdefault(name, now) > grace
    return now - beat > grace
