"""Which existing study a command works on: ``CONFIG`` or ``--storage URL [--study-name NAME]``.

Shared by ``export``, ``report`` and ``dashboard``. Opening never creates a
study, and a missing SQLite file is refused before SQLAlchemy would create an
empty database there.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from autosize.errors import ConfigError, StudyError

if TYPE_CHECKING:  # optuna is imported only by the commands that open a study
    import optuna

    from autosize.search.store.artifacts import ArtifactLocation

__all__ = [
    "StudyTarget",
    "add_target_arguments",
    "artifacts_of",
    "check_exists",
    "open_target",
    "storage_url",
]


@dataclass(frozen=True, eq=False)
class StudyTarget:
    study: optuna.Study
    storage: str
    # The study's artifact store (trained networks), or None when nothing says where it is.
    artifacts: ArtifactLocation | None


def add_target_arguments(p: argparse.ArgumentParser, *, study_name: bool = True) -> None:
    p.add_argument("config", nargs="?", help="study config, e.g. studies/quickstart.toml")
    p.add_argument(
        "--storage", metavar="URL", help="Optuna storage URL (instead of, or overriding, CONFIG's)"
    )
    if study_name:
        p.add_argument(
            "--study-name",
            metavar="NAME",
            help="study name (default: CONFIG's, or the storage's only study)",
        )
    p.add_argument(
        "--artifacts", metavar="DIR",
        help="artifact store: a folder or s3://BUCKET/PREFIX "
        "(default: CONFIG's, else the one the study recorded)",
    )  # fmt: skip


def storage_url(args: argparse.Namespace) -> tuple[str, str | None, ArtifactLocation | None]:
    """(storage URL, study name or None, artifact location from the config or None)."""
    name = getattr(args, "study_name", None)
    if args.config:
        from autosize.search.config import load_config

        config = load_config(args.config, overrides={"storage": args.storage, "name": name})
        return config.storage, config.name, config.artifacts
    if not args.storage:
        raise ConfigError("name a study: give a CONFIG file or --storage URL")
    return args.storage, name, None


def check_exists(url: str) -> None:
    for prefix in ("sqlite:///",):
        if url.startswith(prefix):
            path = Path(url.removeprefix(prefix))
            if path.name and str(path) != ":memory:" and not path.exists():
                raise StudyError(f"no study storage at {path} (run the study first)")
    if url.startswith("journal:") or url.endswith(".log"):
        path = Path(url.removeprefix("journal:"))
        if not path.exists():
            raise StudyError(f"no study storage at {path} (run the study first)")


def open_target(args: argparse.Namespace) -> StudyTarget:
    from autosize.search.store.storage import load_study

    url, name, config_artifacts = storage_url(args)
    check_exists(url)
    study = load_study(url, name)
    return StudyTarget(
        study=study, storage=url, artifacts=artifacts_of(args, config_artifacts, [study])
    )


def artifacts_of(
    args: argparse.Namespace,
    config_artifacts: ArtifactLocation | None,
    studies: Iterable[optuna.Study | optuna.study.StudySummary],
) -> ArtifactLocation | None:
    """The artifact store: ``--artifacts``, else CONFIG's, else the first one the studies
    recorded; None when nothing says."""
    from autosize.search.store import record
    from autosize.search.store.artifacts import artifact_location

    if args.artifacts:
        return artifact_location(args.artifacts, where="--artifacts")
    if config_artifacts is not None:
        return config_artifacts
    for study in studies:
        recorded = record.study_meta(study).get("artifacts")
        if recorded:
            return artifact_location(
                str(recorded), where=f"the artifact store study {study.study_name!r} recorded"
            )
    return None
