"""Where a study lives: its Optuna storage and its artifact store.

Storage URLs:

* ``sqlite:///path/to/study.db`` (the default, next to the config): a few local workers;
* ``journal:path/to/study.log`` or any path ending in ``.log``: Optuna's journal file
  storage, robust with several processes on one machine or a shared file system;
* any other database URL SQLAlchemy knows (``postgresql://...``, ``mysql://...``):
  many machines.

Networks are stored as Optuna artifacts (one self-describing safetensors file
each, see :mod:`autosize.checkpoint`) in a file-system artifact store.
"""

from __future__ import annotations

import json
import os
import random
import re
import tempfile
import time
import warnings
from pathlib import Path

import optuna
from optuna.artifacts import FileSystemArtifactStore, download_artifact, upload_artifact
from optuna.exceptions import ExperimentalWarning
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, Trial
from torch import nn

from autosize.checkpoint import load_network, save_network
from autosize.errors import StudyError
from autosize.models import ArchSpec, Net

__all__ = [
    "artifact_store",
    "check_artifact_folder",
    "download_network",
    "fail_stale",
    "grace_seconds",
    "load_study",
    "make_storage",
    "upload_network",
]

# A worker that dies without telling the storage (SIGKILL, a lost machine) leaves its trial
# RUNNING; with a heartbeat, every worker marks trials silent for GRACE_SECONDS FAIL before
# each trial it starts, and `autosize run` does so when it opens the study (RDB storages:
# SQLite, PostgreSQL, MySQL; Optuna's journal storage has no heartbeat).
# Each running trial beats every third of the grace period (20 s by default);
# AUTOSIZE_HEARTBEAT_GRACE=S sets the grace period.
GRACE_SECONDS = 60
# Several processes opening a fresh database at once all try to create Optuna's schema;
# the losers get an integrity or "already exists" error and try again after a pause.
OPEN_ATTEMPTS = 5


def make_storage(url: str) -> BaseStorage:
    if url.startswith("journal:") or url.endswith(".log"):
        path = Path(url.removeprefix("journal:"))
        _make_parent(path, url)
        _check_journal(path, url)
        try:
            return JournalStorage(JournalFileBackend(str(path)))
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
                return RDBStorage(
                    url,
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


def check_artifact_folder(path: str | Path, *, where: str) -> None:
    """Refuse, before the storage is touched, an artifact folder no network can be written to
    (creates nothing: a missing folder's nearest existing parent is checked instead)."""
    path = Path(path)
    probe = path
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    what = f"{where}: {path}" if probe == path else f"{where}: {path}: its parent {probe}"
    if not probe.is_dir():
        raise StudyError(f"{what} is not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise StudyError(f"{what} is not writable by this user")


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
    GRACE_SECONDS); Optuna does this before each trial, this does it when a run starts."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def load_study(storage: str | BaseStorage, study_name: str | None) -> optuna.Study:
    """An existing study; a missing one is a one-line StudyError listing what the storage has."""
    store = make_storage(storage) if isinstance(storage, str) else storage
    names = [s.study_name for s in optuna.get_all_study_summaries(store, include_best_trial=False)]
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


def artifact_store(path: str | Path) -> FileSystemArtifactStore:
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    return FileSystemArtifactStore(str(path))


def upload_network(
    target: optuna.Study | Trial | FrozenTrial,
    store: FileSystemArtifactStore,
    model: nn.Module,
    spec: ArchSpec,
    *,
    filename: str = "network.safetensors",
    storage: BaseStorage | None = None,
) -> str:
    """Save ``model`` with its spec and attach it to a study or trial; returns the artifact id."""
    with tempfile.TemporaryDirectory() as tmp:
        path = save_network(model, spec, Path(tmp) / filename)
        return upload_artifact(
            artifact_store=store, file_path=str(path), study_or_trial=target, storage=storage
        )


def download_network(
    store: FileSystemArtifactStore,
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
