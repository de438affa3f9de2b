"""A study's networks in its artifact store: each a self-describing safetensors file
(:mod:`autosize.checkpoint`), attached to the study (the seed) or to its trial."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import optuna
from optuna.artifacts import download_artifact, upload_artifact
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, Trial
from torch import nn

from autosize.checkpoint import load_network, save_network
from autosize.errors import ArtifactWriteError, StudyError
from autosize.models import ArchSpec, Net
from autosize.search.store.artifacts import ArtifactLocation, ArtifactStore, artifact_location
from autosize.search.store.reconnect import first_line

__all__ = ["artifact_store", "download_network", "upload_network"]


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
            f"artifact store {where}: cannot store {owner} ({type(exc).__name__}: {first_line(exc)}); "
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
            why = first_line(exc).removeprefix(f"{path}: ")  # the temp copy's name says nothing
            raise StudyError(
                f"{whose}artifact {artifact_id}: not a network autosize can load ({why})"
            ) from None
