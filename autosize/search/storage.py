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

import tempfile
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

__all__ = ["artifact_store", "download_network", "load_study", "make_storage", "upload_network"]

# A worker that dies without telling the storage leaves its trial RUNNING; with a heartbeat,
# the next trial to start marks such stale trials FAIL (RDB storages only).
HEARTBEAT_SECONDS = 30
GRACE_SECONDS = 120


def make_storage(url: str) -> BaseStorage:
    if url.startswith("journal:") or url.endswith(".log"):
        path = Path(url.removeprefix("journal:"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings():  # the heartbeat is "experimental" since Optuna 2.9
            warnings.simplefilter("ignore", ExperimentalWarning)
            return RDBStorage(
                url,
                heartbeat_interval=HEARTBEAT_SECONDS,
                grace_period=GRACE_SECONDS,
                engine_kwargs={"connect_args": {"timeout": 60}}
                if url.startswith("sqlite")
                else None,
            )
    except Exception as exc:  # SQLAlchemy raises many kinds for a bad URL
        raise StudyError(f"storage {url!r}: cannot open ({type(exc).__name__}: {exc})") from None


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
    store: FileSystemArtifactStore, artifact_id: str, *, device: str = "cpu"
) -> tuple[Net, ArchSpec]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "network.safetensors"
        try:
            download_artifact(artifact_store=store, file_path=str(path), artifact_id=artifact_id)
        except Exception as exc:
            raise StudyError(
                f"artifact {artifact_id}: cannot be read from the artifact store ({exc})"
            ) from None
        return load_network(path, device=device)
