"""Optuna's RDB storage that rides out a database restart (PostgreSQL, MySQL, SQLite).

Every storage call is retried while the connection is lost, for ``retry_seconds``; past
that, the study stops with one line (:class:`~autosize.errors.StorageLost`) and its finished
trials are kept. Optuna's own log lines about the lost connection are held back meanwhile.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial

from autosize import interrupts
from autosize.errors import StorageLost, StudyError
from autosize.search.optuna_private import CACHED_BACKEND_CALLS, HEARTBEAT_CALLS, RDB_LOGGER

__all__ = ["RETRY_ENV", "ReconnectingRDBStorage", "first_line", "redacted", "retry_seconds"]

logger = logging.getLogger(__name__)

# A database server that goes away once a study is open (a restart, a fail-over, a network
# blip): every storage call retries with backoff for RETRY_SECONDS (default: the grace
# period; AUTOSIZE_STORAGE_RETRY=S, 0 to stop at once), then the worker stops with one line.
RETRY_ENV = "AUTOSIZE_STORAGE_RETRY"


def retry_seconds(*, default: int) -> int:
    raw = os.environ.get(RETRY_ENV)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise StudyError(f"{RETRY_ENV}: expected whole seconds >= 0, got {raw!r}")
    return value


def _connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it wraps) says the database connection is gone or refused."""
    from sqlalchemy import exc as sa

    todo: list[BaseException] = [exc]
    seen: set[int] = set()
    while todo:  # the whole chain: Optuna wraps, SQLAlchemy re-raises while handling
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, sa.OperationalError | sa.InterfaceError | sa.PendingRollbackError) or (
            isinstance(e, sa.DBAPIError) and e.connection_invalidated
        ):
            return True
        todo += [x for x in (e.__cause__, e.__context__) if x is not None]
    return False


class _HeldBack(logging.Filter):
    """Holds back the log records of the threads that ask, to be let through or dropped.

    Optuna's ``_get_trials`` reads any OperationalError as "too many variables in IN",
    warns with the whole SQL statement and queries again; when the error was a lost
    connection the second query fails too, and the study's one "connection lost" line
    would come with a screenful of SQL in front of it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.local = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        held: list[logging.LogRecord] | None = getattr(self.local, "held", None)
        if held is None:
            return True
        held.append(record)
        return False


_RDB_LOG = logging.getLogger(RDB_LOGGER)
_HOLD = _HeldBack()
_RDB_LOG.addFilter(_HOLD)


class ReconnectingRDBStorage(RDBStorage):
    """Optuna's RDBStorage that rides out a database restart.

    Optuna gives up at the first lost connection: the trial loop then fails on the very
    call that would record the failure, and the heartbeat thread dies with a traceback
    (so another worker soon fails a trial that is still running). Here every storage
    call that loses its connection is retried with backoff (0.5 s doubling to 8 s;
    ``pool_pre_ping`` replaces the dead pooled connections) for ``retry_seconds``; a
    finished trial's result is written once the server is back. After that the storage
    is gone for this process: :class:`~autosize.errors.StorageLost`, one line, and every
    later call fails at once. Heartbeats never raise (the main thread reports the loss).
    """

    def __init__(self, url: str, *, retry_seconds: int, **kwargs: Any) -> None:
        self.retry_seconds = retry_seconds
        self._gone: str | None = None
        super().__init__(url, **kwargs)  # RDBStorage's own keywords, passed through

    def _retrying(self, name: str, call: Callable[[], object]) -> object:
        if self._gone is not None:
            raise StorageLost(self._gone)
        lost_at: float | None = None
        delay = 0.5
        while True:
            try:
                with interrupts.shielded():  # Ctrl-C lands after the call, not mid-write
                    result = call()
            except UpdateFinishedTrialError:
                # The first attempt was committed but its answer lost: the state is set.
                if lost_at is not None and name == "set_trial_state_values":
                    return True
                raise
            except Exception as exc:
                if not _connection_lost(exc):
                    raise
                now = time.monotonic()
                if lost_at is None:
                    lost_at = now
                    logger.warning(
                        "storage %s: connection lost (%s); retrying for up to %d s",
                        redacted(self.url), _cause_line(exc), self.retry_seconds,
                    )  # fmt: skip
                if now - lost_at >= self.retry_seconds:
                    self._gone = (
                        f"storage {redacted(self.url)!r}: the database went away and did not "
                        f"come back within {self.retry_seconds} s ({_cause_line(exc)}); finished "
                        f"trials are stored, run again to resume ({RETRY_ENV}=S waits longer)"
                    )
                    raise StorageLost(self._gone) from None
                time.sleep(min(delay, max(0.0, lost_at + self.retry_seconds - now)))
                delay = min(delay * 2, 8.0)
                if self._gone is not None:  # another thread of this process gave up
                    raise StorageLost(self._gone) from None
                continue
            if lost_at is not None:
                logger.warning(
                    "storage %s: reconnected after %.1f s",
                    redacted(self.url), time.monotonic() - lost_at,
                )  # fmt: skip
            return result

    def _get_trials(self, *args: Any, **kwargs: Any) -> list[FrozenTrial]:
        def call() -> list[FrozenTrial]:
            held: list[logging.LogRecord] = []
            _HOLD.local.held = held
            lost = False
            try:
                return RDBStorage._get_trials(self, *args, **kwargs)
            except Exception as exc:
                lost = _connection_lost(exc)  # its fallback failed too: the warning misleads
                raise
            finally:
                _HOLD.local.held = None
                for record in () if lost else held:  # a real fallback: Optuna's warning stands
                    _RDB_LOG.handle(record)

        return self._retrying("_get_trials", call)  # type: ignore[return-value]

    def record_heartbeat(self, trial_id: int) -> None:
        # Never raises: the trial's own next storage call stops the worker with the one line.
        with suppress(StorageLost):
            self._retrying("record_heartbeat", lambda: RDBStorage.record_heartbeat(self, trial_id))


def _retried(name: str) -> Callable[..., object]:
    method = getattr(RDBStorage, name)

    @functools.wraps(method)
    def call(self: ReconnectingRDBStorage, *args: object, **kwargs: object) -> object:
        return self._retrying(name, lambda: method(self, *args, **kwargs))

    return call


# Every storage operation a study, a trial or fail_stale_trials performs, and the private
# ones Optuna's cached storage and heartbeat call on the backend instead of the public ones
# (_get_trials is one too, retried by its own method above).
for _name in (
    *(name for name in CACHED_BACKEND_CALLS if name != "_get_trials"),
    *HEARTBEAT_CALLS,
    "create_new_study",
    "delete_study",
    "set_study_user_attr",
    "set_study_system_attr",
    "get_study_id_from_name",
    "get_study_name_from_id",
    "get_study_directions",
    "get_study_user_attrs",
    "get_study_system_attrs",
    "get_trial_user_attrs",
    "get_trial_system_attrs",
    "get_all_studies",
    "create_new_trial",
    "set_trial_param",
    "get_trial_param",
    "set_trial_state_values",
    "set_trial_intermediate_value",
    "set_trial_user_attr",
    "set_trial_system_attr",
    "get_trial_id_from_study_id_trial_number",
    "get_trial",
    "get_all_trials",
    "get_best_trial",
):
    setattr(ReconnectingRDBStorage, _name, _retried(_name))


def _cause_line(exc: BaseException) -> str:
    """The first line of the innermost error (the driver's own words)."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def redacted(url: str) -> str:
    """The URL without its password (error messages end up in logs)."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)
