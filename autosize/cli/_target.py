"""Which existing study a command works on: ``CONFIG`` or ``--storage URL [--study-name NAME]``.

Shared by ``export``, ``report`` and ``dashboard``. Opening never creates a
study, and a missing SQLite file is refused before SQLAlchemy would create an
empty database there.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from autosize.errors import ConfigError, StudyError

if TYPE_CHECKING:  # optuna is imported only by the commands that open a study
    import optuna

__all__ = [
    "StudyTarget",
    "add_target_arguments",
    "check_exists",
    "open_target",
    "quiet_optuna",
    "storage_url",
]


@dataclass(frozen=True, eq=False)
class StudyTarget:
    study: optuna.Study
    storage: str
    # The study's artifact store (trained networks), or None when nothing says where it is.
    artifacts: Path | None


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
        "--artifacts", metavar="DIR", type=Path,
        help="artifact store folder (default: CONFIG's, else the one the study recorded)",
    )  # fmt: skip


def storage_url(args: argparse.Namespace) -> tuple[str, str | None, Path | None]:
    """(storage URL, study name or None, artifact folder from the config or None)."""
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
    from autosize.search.storage import load_study

    url, name, config_artifacts = storage_url(args)
    check_exists(url)
    study = load_study(url, name)
    artifacts = args.artifacts or config_artifacts
    if artifacts is None:
        from autosize.search import record

        recorded = record.study_meta(study)
        if recorded.get("artifacts"):
            artifacts = Path(str(recorded["artifacts"]))
    return StudyTarget(study=study, storage=url, artifacts=artifacts)


def quiet_optuna() -> None:
    """Read-only commands: no Optuna INFO logs or experimental-feature warnings."""
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message="Heartbeat of storage", category=UserWarning)
