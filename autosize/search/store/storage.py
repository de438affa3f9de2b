"""Where a study lives: its Optuna storage, opened from a URL.

Storage URLs:

* ``sqlite:///path/to/study.db`` (the default, next to the config): a few local workers;
* ``journal:path/to/study.log`` or any path ending in ``.log``: Optuna's journal file
  storage, robust with several processes on one machine or a shared file system;
* any other database URL SQLAlchemy knows (``postgresql://...``, ``mysql://...``):
  many machines;
* ``memory:NAME``: Optuna's in-memory storage, one per name and process, gone when
  the process ends (the scikit-learn estimator's default; one worker only).

A database storage reconnects after a restart (:mod:`autosize.search.store.reconnect`).
Networks are stored as Optuna artifacts (:mod:`autosize.search.store.networks`) in a folder
or an S3 bucket (:mod:`autosize.search.store.artifacts`).
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import random
import time
import warnings
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import optuna
from optuna.exceptions import ExperimentalWarning, UpdateFinishedTrialError
from optuna.storages import BaseStorage, InMemoryStorage, JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.study import StudySummary
from optuna.trial import TrialState

from autosize import interrupts
from autosize.errors import StudyError
from autosize.search.optuna_private import (
    study_storage,
)
from autosize.search.store import record
from autosize.search.store.reconnect import (
    ReconnectingRDBStorage,
    first_line,
    redacted,
    retry_seconds,
)

__all__ = [
    "LOCK_MARK",
    "fail_stale",
    "forget_storage",
    "grace_seconds",
    "load_study",
    "make_storage",
    "study_summaries",
]

logger = logging.getLogger(__name__)

# In the name of a claim's lock study (autosize.search.store.claims): not a study of the user's.
LOCK_MARK = ".autosize-lock."

# A worker that dies without telling the storage (SIGKILL, a lost machine) leaves its trial
# RUNNING; with a heartbeat, every worker marks trials silent for GRACE_SECONDS FAIL before
# each trial it starts, and `autosize run` does so when it opens the study (RDB storages:
# SQLite, PostgreSQL, MySQL; Optuna's journal storage has no heartbeat: there a run fails the
# RUNNING trials of this host's workers that are gone, see record.worker_gone, when it starts
# and before each cohort; not before each trial of cohort = 1, Optuna's loop).
# Each running trial beats every third of the grace period (20 s by default);
# AUTOSIZE_HEARTBEAT_GRACE=S sets the grace period.
GRACE_SECONDS = 60
# Several processes opening a fresh database at once all try to create Optuna's schema;
# the losers get an integrity or "already exists" error and try again after a pause.
OPEN_ATTEMPTS = 5


_MEMORY: dict[str, InMemoryStorage] = {}


def make_storage(url: str) -> BaseStorage:
    if url.startswith("memory:"):
        return _MEMORY.setdefault(url, InMemoryStorage())
    if url.startswith("journal:") or url.endswith(".log"):
        path = Path(url.removeprefix("journal:"))
        _make_parent(path, url)
        _check_journal(path, url)
        try:
            return JournalStorage(_ShieldedJournalFileBackend(str(path)))
        except Exception as exc:
            raise StudyError(
                f"storage {url!r}: cannot open ({type(exc).__name__}: {first_line(exc)})"
            ) from None
    if url.startswith("sqlite:///"):
        _make_parent(Path(url.removeprefix("sqlite:///")), url)
    sqlite = url.startswith("sqlite")
    grace = grace_seconds()
    for attempt in range(1, OPEN_ATTEMPTS + 1):
        try:
            with warnings.catch_warnings():  # the heartbeat is "experimental" since Optuna 2.9
                warnings.simplefilter("ignore", ExperimentalWarning)
                return ReconnectingRDBStorage(
                    url,
                    retry_seconds=retry_seconds(default=grace),
                    heartbeat_interval=max(1, grace // 3),
                    grace_period=grace,
                    engine_kwargs={"connect_args": {"timeout": 60}}
                    if sqlite
                    else {"pool_pre_ping": True},
                )
        except Exception as exc:  # SQLAlchemy raises many kinds for a bad URL
            if attempt < OPEN_ATTEMPTS and _schema_race(exc):
                time.sleep(0.2 * attempt + random.random() * 0.3)
                continue
            raise StudyError(
                f"storage {redacted(url)!r}: cannot open ({type(exc).__name__}: {first_line(exc)})"
            ) from None
    raise AssertionError("unreachable")


def forget_storage(url: str) -> None:
    """Drop an in-memory storage (``memory:NAME``) so its studies can be freed."""
    _MEMORY.pop(url, None)


def _make_parent(path: Path, url: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StudyError(
            f"storage {url!r}: cannot create its folder {path.parent} ({exc.strerror})"
        ) from None


def _check_journal(path: Path, url: str) -> None:
    """Refuse a file that is not an Optuna journal before anything is appended to it."""
    if not path.exists():
        return
    try:
        with path.open("rb") as f:
            first = f.readline(1 << 20)
    except OSError as exc:
        raise StudyError(f"storage {url!r}: cannot read {path} ({exc.strerror})") from None
    if not first:
        return
    try:
        ok = first.endswith(b"\n") and "op_code" in json.loads(first)
    except (ValueError, TypeError):
        ok = False
    if not ok:
        raise StudyError(
            f"storage {url!r}: {path} is not an Optuna journal file (its first line is not a journal record)"
        )


def grace_seconds() -> int:
    raw = os.environ.get("AUTOSIZE_HEARTBEAT_GRACE")
    if raw is None:
        return GRACE_SECONDS
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise StudyError(f"AUTOSIZE_HEARTBEAT_GRACE: expected whole seconds >= 1, got {raw!r}")
    return value


class _ShieldedJournalFileBackend(JournalFileBackend):
    """Optuna's journal file whose appends Ctrl-C/SIGTERM cannot cut (:func:`interrupts.shielded`).

    An interrupt inside an append is raised when the append returns. Unshielded, one that
    lands while this process waits for another's lock makes Optuna's ``acquire`` release
    (delete) the lock it never held, so two processes then write at once; one that lands
    inside the write can leave half a record, after which every later record is unreadable.
    """

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        with interrupts.shielded():
            super().append_logs(logs)


def _schema_race(exc: Exception) -> bool:
    """Another process was creating Optuna's tables at the same moment."""
    text = str(exc).lower()
    return type(exc).__name__ in ("IntegrityError", "ProgrammingError", "OperationalError") and (
        "already exists" in text or "duplicate key" in text or "unique constraint" in text
    )


def fail_stale(study: optuna.Study) -> None:
    """Mark FAIL the trials of workers that stopped without a word (no heartbeat for
    GRACE_SECONDS); Optuna does this before each trial, this does it when a run starts.

    Optuna only fails trials that have a heartbeat. A worker killed in the moment between
    creating its trial and the first beat leaves a RUNNING trial with none, for ever; every
    autosize trial records its worker and role first thing, so a RUNNING trial without a role
    that started more than twice the grace period ago is such a one, and is failed too.
    On a journal storage (no heartbeat) the RUNNING trials of this host's gone workers are.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    now = datetime.datetime.now()
    journal = isinstance(study_storage(study), JournalStorage)
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        started = t.datetime_start
        old = started is not None and (now - started).total_seconds() > 2 * grace_seconds()
        if (record.is_blank(t) and old) or (journal and record.read(t).gone):
            with suppress(UpdateFinishedTrialError, RuntimeError, ValueError):  # done by another
                study.tell(t.number, state=TrialState.FAIL)


def study_summaries(storage: str | BaseStorage) -> Iterator[StudySummary]:
    """The storage's studies, the user's only: not a claim's lock study
    (:mod:`autosize.search.store.claims`), which a killed run leaves behind."""
    store = make_storage(storage) if isinstance(storage, str) else storage
    for summary in optuna.get_all_study_summaries(store, include_best_trial=False):
        if LOCK_MARK not in summary.study_name:
            yield summary


def load_study(storage: str | BaseStorage, study_name: str | None) -> optuna.Study:
    """An existing study; a missing one is a one-line StudyError listing what the storage has."""
    store = make_storage(storage) if isinstance(storage, str) else storage
    names = [s.study_name for s in study_summaries(store)]
    if study_name is None:
        if len(names) != 1:
            raise StudyError(
                f"storage holds {len(names)} studies ({', '.join(names) or 'none'}); name one with --study-name"
            )
        study_name = names[0]
    if study_name not in names:
        raise StudyError(
            f"no study named {study_name!r} in the storage; it has: {', '.join(names) or 'none'}"
        )
    return optuna.load_study(study_name=study_name, storage=store)
