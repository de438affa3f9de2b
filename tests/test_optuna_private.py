"""One test per private Optuna name autosize uses (autosize/search/optuna_private.py).

Each fails with the name when an Optuna release moves or changes it; pyproject.toml pins
Optuna to the minor versions these have passed on.
"""

from __future__ import annotations

import inspect
import re
import time
from pathlib import Path

import optuna
import pytest
from optuna.storages import BaseStorage, RDBStorage

from autosize.search import optuna_private as private

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _sqlite(tmp_path: Path, **kwargs: object) -> RDBStorage:
    return RDBStorage(f"sqlite:///{tmp_path / 'private.db'}", **kwargs)  # type: ignore[arg-type]


def test_study_storage_and_trial_id_name_the_trial_in_its_storage(tmp_path: Path) -> None:
    study = optuna.create_study(storage=_sqlite(tmp_path), study_name="ids")
    study.ask()
    trial = study.ask()
    storage = private.study_storage(study)
    assert isinstance(storage, BaseStorage), "optuna.Study._storage"
    study_id = storage.get_study_id_from_name("ids")
    expected = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
    assert private.trial_id(trial) == expected, "optuna.Trial._trial_id"
    assert private.trial_id(study.trials[1]) == expected, "optuna.trial.FrozenTrial._trial_id"


def test_heartbeat_threads_record_heartbeats_that_go_stale(tmp_path: Path) -> None:
    """Optuna's get_heartbeat_thread beats for a trial run outside study.optimize; once the
    beats stop for the grace period, the heartbeat's stale query names the trial."""
    storage = _sqlite(tmp_path, heartbeat_interval=1, grace_period=1)
    study = optuna.create_study(storage=storage, study_name="beats")
    trial = study.ask()
    threads = private.heartbeat_threads(study, [trial])
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    for thread in threads:
        thread.join()
    study_id = storage.get_study_id_from_name("beats")
    assert private.HEARTBEAT_CALLS == ("_get_stale_trial_ids",)
    assert storage._get_stale_trial_ids(study_id) == [], "a fresh heartbeat is not stale"
    time.sleep(2.2)
    stale = getattr(storage, private.HEARTBEAT_CALLS[0])(study_id)
    assert stale == [private.trial_id(trial)], "RDBStorage._get_stale_trial_ids"


def test_the_cached_storage_calls_exactly_these_private_backend_methods() -> None:
    """The reconnecting storage retries these: a new one, unretried, would fail a trial when
    PostgreSQL restarts during it."""
    from optuna.storages import _cached_storage

    source = inspect.getsource(_cached_storage._CachedStorage)
    called = set(re.findall(r"self\._backend\.(_[a-z_]+)\(", source))
    assert called == set(private.CACHED_BACKEND_CALLS + private.HEARTBEAT_CALLS), called
    for name in called:
        assert callable(getattr(RDBStorage, name, None)), f"RDBStorage.{name}"


def test_the_rdb_logger_is_the_one_rdb_storage_logs_to() -> None:
    from optuna.storages._rdb import storage as rdb

    assert rdb.__name__ == private.RDB_LOGGER
    assert rdb._logger.name == private.RDB_LOGGER


@pytest.mark.parametrize(
    "make",
    [
        lambda: optuna.samplers.TPESampler(seed=1),
        lambda: optuna.samplers.RandomSampler(seed=1),
        lambda: optuna.samplers.NSGAIISampler(seed=1),
    ],
    ids=["tpe", "random", "nsga2"],
)
def test_random_states_reach_every_draw_of_a_sampler(make: object) -> None:
    """Reseeding the states found makes the sampler draw the same again: none is missed."""
    sampler = make()  # type: ignore[operator]
    states = list(private.random_states(sampler))
    assert states and all(isinstance(s, private.LazyRandomState) for s in states)

    def draws() -> list[float]:
        for state in private.random_states(sampler):
            state.rng.seed(7)
        study = optuna.create_study(sampler=sampler)
        return [study.ask().suggest_float("x", 0.0, 1.0) for _ in range(3)]

    assert draws() == draws()
