"""Where a study lives: its Optuna storage and its artifact store.

Storage URLs:

* ``sqlite:///path/to/study.db`` (the default, next to the config): a few local workers;
* ``journal:path/to/study.log`` or any path ending in ``.log``: Optuna's journal file
  storage, robust with several processes on one machine or a shared file system;
* any other database URL SQLAlchemy knows (``postgresql://...``, ``mysql://...``):
  many machines;
* ``memory:NAME``: Optuna's in-memory storage, one per name and process, gone when
  the process ends (the scikit-learn estimator's default; one worker only).

Networks are stored as Optuna artifacts (one self-describing safetensors file
each, see :mod:`autosize.checkpoint`) in a folder or an S3 bucket
(:mod:`autosize.search.artifacts`).
"""

from __future__ import annotations

import datetime
import functools
import json
import logging
import os
import random
import re
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import optuna
from optuna.artifacts import download_artifact, upload_artifact
from optuna.exceptions import ExperimentalWarning, UpdateFinishedTrialError
from optuna.storages import BaseStorage, InMemoryStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend
from optuna.study import StudySummary
from optuna.trial import FrozenTrial, Trial, TrialState
from torch import nn

from autosize import interrupts
from autosize.checkpoint import load_network, save_network
from autosize.errors import ArtifactWriteError, StorageLost, StudyError
from autosize.models import ArchSpec, Net
from autosize.search import record
from autosize.search.artifacts import ArtifactLocation, ArtifactStore, artifact_location

__all__ = [
    "LOCK_MARK",
    "artifact_store",
    "download_network",
    "fail_stale",
    "forget_storage",
    "grace_seconds",
    "load_study",
    "make_storage",
    "study_summaries",
    "upload_network",
]

logger = logging.getLogger(__name__)

# In the name of a claim's lock study (autosize.search.claims): not a study of the user's.
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
# A database server that goes away once a study is open (a restart, a fail-over, a network
# blip): every storage call retries with backoff for RETRY_SECONDS (default: the grace
# period; AUTOSIZE_STORAGE_RETRY=S, 0 to stop at once), then the worker stops with one line.
RETRY_ENV = "AUTOSIZE_STORAGE_RETRY"
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
                f"storage {url!r}: cannot open ({type(exc).__name__}: {_first_line(exc)})"
            ) from None
    if url.startswith("sqlite:///"):
        _make_parent(Path(url.removeprefix("sqlite:///")), url)
    sqlite = url.startswith("sqlite")
    grace = grace_seconds()
    for attempt in range(1, OPEN_ATTEMPTS + 1):
        try:
            with warnings.catch_warnings():  # the heartbeat is "experimental" since Optuna 2.9
                warnings.simplefilter("ignore", ExperimentalWarning)
                return _ReconnectingRDBStorage(
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
                f"storage {_redacted(url)!r}: cannot open ({type(exc).__name__}: {_first_line(exc)})"
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


_RDB_LOG = logging.getLogger("optuna.storages._rdb.storage")  # Optuna's logger there
_HOLD = _HeldBack()
_RDB_LOG.addFilter(_HOLD)


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


class _ReconnectingRDBStorage(RDBStorage):
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
                        _redacted(self.url), _cause_line(exc), self.retry_seconds,
                    )  # fmt: skip
                if now - lost_at >= self.retry_seconds:
                    self._gone = (
                        f"storage {_redacted(self.url)!r}: the database went away and did not "
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
                    _redacted(self.url), time.monotonic() - lost_at,
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
    def call(self: _ReconnectingRDBStorage, *args: object, **kwargs: object) -> object:
        return self._retrying(name, lambda: method(self, *args, **kwargs))

    return call


# Every storage operation a study, a trial or fail_stale_trials performs, and the private
# ones Optuna's _CachedStorage calls on its backend instead of the public ones
# (_get_trials is one too, retried by its own method above).
for _name in (
    "_create_new_trial",
    "_get_best_trial_id",
    "_set_trial_param",
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
    "_get_stale_trial_ids",
):
    setattr(_ReconnectingRDBStorage, _name, _retried(_name))


def _cause_line(exc: BaseException) -> str:
    """The first line of the innermost error (the driver's own words)."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _schema_race(exc: Exception) -> bool:
    """Another process was creating Optuna's tables at the same moment."""
    text = str(exc).lower()
    return type(exc).__name__ in ("IntegrityError", "ProgrammingError", "OperationalError") and (
        "already exists" in text or "duplicate key" in text or "unique constraint" in text
    )


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _redacted(url: str) -> str:
    """The URL without its password (error messages end up in logs)."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


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
    journal = isinstance(study._storage, JournalStorage)
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        started = t.datetime_start
        old = started is not None and (now - started).total_seconds() > 2 * grace_seconds()
        if (record.is_blank(t) and old) or (journal and record.read(t).gone):
            with suppress(UpdateFinishedTrialError, RuntimeError, ValueError):  # done by another
                study.tell(t.number, state=TrialState.FAIL)


def study_summaries(storage: str | BaseStorage) -> Iterator[StudySummary]:
    """The storage's studies, the user's only: not a claim's lock study
    (:mod:`autosize.search.claims`), which a killed run leaves behind."""
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


def artifact_store(location: ArtifactLocation | str | os.PathLike[str]) -> ArtifactStore:
    """The Optuna artifact store of a location (a folder or ``s3://BUCKET/PREFIX``)."""
    return artifact_location(location).store()


def upload_network(
    target: optuna.Study | Trial | FrozenTrial,
    location: ArtifactLocation | str | os.PathLike[str],
    model: nn.Module,
    spec: ArchSpec,
    *,
    filename: str = "network.safetensors",
    storage: BaseStorage | None = None,
    owner: str = "the network",
) -> str:
    """Save ``model`` with its spec into ``location`` (a folder or ``s3://BUCKET/PREFIX``)
    and attach it to a study or trial; returns the artifact id.

    A store that cannot take the network (a full disk, a lost S3 connection, revoked
    access) is a one-line ArtifactWriteError (a StudyError) naming the location and
    ``owner`` (e.g. "trial 12's network"). It stops the study there: the trial being
    stored fails (Optuna marks it), and the finished trials and their networks stay as
    they were, so a run started again once the store is mended resumes the study.
    """
    where = artifact_location(location)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = save_network(model, spec, Path(tmp) / filename)
            return upload_artifact(
                artifact_store=where.store(),
                file_path=str(path),
                study_or_trial=target,
                storage=storage,
            )
    except Exception as exc:  # StorageLost (the database) is a BaseException and passes
        raise ArtifactWriteError(
            f"artifact store {where}: cannot store {owner} ({type(exc).__name__}: {_first_line(exc)}); "
            "the finished trials and their networks are kept: mend the store and run again to resume"
        ) from exc


def download_network(
    store: ArtifactStore,
    artifact_id: str,
    *,
    device: str = "cpu",
    owner: str | None = None,
) -> tuple[Net, ArchSpec]:
    """The network stored as ``artifact_id``; a missing, truncated or foreign file is a
    one-line StudyError naming ``owner`` (e.g. "trial 12") and the artifact, never a
    half-loaded network."""
    whose = f"{owner}: " if owner else ""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "network.safetensors"
        try:
            download_artifact(artifact_store=store, file_path=str(path), artifact_id=artifact_id)
        except Exception as exc:
            raise StudyError(
                f"{whose}artifact {artifact_id}: cannot be read from the artifact store ({exc})"
            ) from None
        try:
            return load_network(path, device=device)
        except Exception as exc:
            why = _first_line(exc).removeprefix(f"{path}: ")  # the temp copy's name says nothing
            raise StudyError(
                f"{whose}artifact {artifact_id}: not a network autosize can load ({why})"
            ) from None
