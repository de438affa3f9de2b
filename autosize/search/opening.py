"""Opening a study: create it or load it with the config's directions, write its record
(what it was started with) once, and refuse a resume that would mix trials that do not
compare (another dataset, objective, trial budget or seed)."""

from __future__ import annotations

import json
import warnings

import optuna

from autosize.errors import ConfigError
from autosize.search.prepare import Prepared
from autosize.search.store import record
from autosize.search.store.storage import fail_stale, make_storage
from autosize.search.trials.seed import seed_key

__all__ = ["check_same_study", "open_or_resume", "open_study", "study_record"]


def open_study(p: Prepared) -> optuna.Study:
    storage = make_storage(p.config.storage)
    study = optuna.create_study(
        storage=storage,
        study_name=p.config.name,
        sampler=p.sampler(),
        pruner=p.pruner(),
        directions=p.config.directions,
        load_if_exists=True,
    )
    if study.directions != [
        optuna.study.StudyDirection.MAXIMIZE
        if d == "maximize"
        else optuna.study.StudyDirection.MINIMIZE
        for d in p.config.directions
    ]:
        raise ConfigError(
            f"{p.config.path}: study {p.config.name!r} exists with other directions; change study.name or the objective"
        )
    return study


# What must not change while a study resumes: its trials would stop being comparable.
_IDENTITY = {
    "data": "[data]",
    "objective": "study.objective",
    "trial_budget": "[train]",
    "seed_key": "[seed] (architecture, budget) or study.seed",
    "data_sha256": "the data file's contents",
}


def open_or_resume(p: Prepared) -> tuple[optuna.Study, dict[str, object] | None]:
    """The study, and the record it was started with (None for a new one: its record is
    written now). A resume the record refuses is refused before anything is written; stale
    trials of stopped workers are failed."""
    study = open_study(p)
    meta = study_record(p)
    existing = record.study_meta(study)
    if existing:  # refused before anything is written, stale trials included
        check_same_study(p, existing, meta)
    fail_stale(study)
    if not existing:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(
                [p.config.objective, "params"] if p.multi_objective else [p.config.objective]
            )
        record.write_study_meta(study, meta)
    return study, existing or None


def study_record(p: Prepared) -> dict[str, object]:
    config = p.config
    return {
        "config": str(config.path),
        "dataset": p.bundle.name,
        "task": p.bundle.task,
        "data": {
            "name": config.data.name,
            "data_dir": config.data.data_dir,
            "options": dict(config.data.options),
            "max_train": config.data.max_train,
            "max_val": config.data.max_val,
            "max_test": config.data.max_test,
        },
        "data_notes": dict(p.bundle.notes),
        # A table's files (None for the six datasets, whose files are checked by sha256).
        "data_sha256": p.bundle.notes.get("sha256"),
        "preprocessing": p.bundle.preprocessing.to_dict(),
        "seed": config.seed,
        "seed_key": seed_key(p),
        "objective": config.objective,
        "direction": config.direction,
        "trial_budget": config.train.record(),
        "artifacts": str(config.artifacts),
        # the wall budget the chosen step seconds follow (not part of the identity)
        "timeout": config.timeout,
    }


def check_same_study(p: Prepared, existing: object, meta: dict[str, object]) -> None:
    """Refuse to resume a study with a config that would mix incomparable trials."""
    if not isinstance(existing, dict):
        return
    for key, where in _IDENTITY.items():
        before, now = existing.get(key), json.loads(json.dumps(meta[key]))
        if key in existing and before != now:
            if key == "trial_budget" and any(line.startswith("[train]") for line in p.chosen):
                _refuse_another_budget(p, existing.get("timeout"))
            raise ConfigError(
                f"{p.config.path}: {where} differs from what study {p.config.name!r} was started "
                f"with ({before!r} then, {now!r} now); restore it or set a new study.name"
            )


def _refuse_another_budget(p: Prepared, then: object) -> None:
    """A study whose step seconds were chosen from its wall budget resumed with another."""
    again = (
        f"resume it with --timeout {then:g}"
        if isinstance(then, int | float)
        else "resume it with the --timeout it was started with"
    )
    now = "no timeout" if p.config.timeout is None else f"--timeout {p.config.timeout:g}"
    raise ConfigError(
        f"{p.config.path}: study {p.config.name!r} was started with another wall budget, and "
        f"the seconds of each step were chosen from it ({now} now); {again}, "
        "or start a new study with --study-name NAME"
    )
