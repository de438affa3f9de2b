"""Every use of Optuna's private names, in this one module.

autosize needs five things Optuna has no public API for; each is here, and each has a test in
``tests/test_optuna_private.py`` that fails with the name when an Optuna release changes it.
``pyproject.toml`` pins Optuna to the minor versions those tests have passed on.

- **A trial's storage id and its study's storage** (:func:`trial_id`, :func:`study_storage`):
  a cohort trains several trials in one ``fit_population`` outside ``study.optimize``, and
  each needs the heartbeat Optuna's own trial loop would start for it
  (:func:`heartbeat_threads`, Optuna's ``get_heartbeat_thread``).
- **The backend methods Optuna's cached storage calls instead of the public ones**
  (:data:`CACHED_BACKEND_CALLS`) and the heartbeat's stale-trial query
  (:data:`HEARTBEAT_CALLS`): the reconnecting PostgreSQL storage retries them too, or a
  restart during one of them fails the trial.
- **The RDB storage's logger name** (:data:`RDB_LOGGER`), whose lines about a lost
  connection the reconnecting storage keeps out of the user's output.
- **The samplers' random states** (:func:`random_states`, Optuna's ``LazyRandomState``): per
  trial reseeding, so that workers built from one config do not draw in lockstep.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

import optuna
from optuna.samplers._lazy_random_state import LazyRandomState
from optuna.storages import BaseStorage
from optuna.storages._heartbeat import get_heartbeat_thread
from optuna.trial import FrozenTrial

__all__ = [
    "CACHED_BACKEND_CALLS",
    "HEARTBEAT_CALLS",
    "RDB_LOGGER",
    "LazyRandomState",
    "heartbeat_threads",
    "random_states",
    "study_storage",
    "trial_id",
]

# What optuna.storages._cached_storage._CachedStorage calls on its RDBStorage backend where a
# study or trial calls the public method (_get_trials backs get_all_trials).
CACHED_BACKEND_CALLS = (
    "_create_new_trial",
    "_get_best_trial_id",
    "_set_trial_param",
    "_get_trials",
)
# BaseHeartbeat's query behind optuna.storages.fail_stale_trials.
HEARTBEAT_CALLS = ("_get_stale_trial_ids",)
# The logger of Optuna's RDB storage module (it logs a lost connection before raising).
RDB_LOGGER = "optuna.storages._rdb.storage"


class Thread(Protocol):
    def start(self) -> None: ...
    def join(self) -> None: ...


def study_storage(study: optuna.Study) -> BaseStorage:
    """The storage a study talks to (for an RDB storage, Optuna's cached wrapper of it)."""
    return study._storage


def trial_id(trial: optuna.Trial | FrozenTrial) -> int:
    """The trial's id in its storage (not its number in the study)."""
    return trial._trial_id


def heartbeat_threads(study: optuna.Study, trials: Sequence[optuna.Trial]) -> list[Thread]:
    """One heartbeat thread per trial, as ``study.optimize`` starts for the trial it runs
    (threads that do nothing where the storage keeps no heartbeats); start and join them."""
    storage = study_storage(study)
    return [get_heartbeat_thread(trial_id(t), storage) for t in trials]


def random_states(obj: object, _seen: set[int] | None = None) -> Iterator[LazyRandomState]:
    """Every ``LazyRandomState`` reachable through the attributes of an Optuna sampler
    (TPE, its inner random sampler, CMA-ES, GP, NSGA-II/III, random)."""
    seen = set() if _seen is None else _seen
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, LazyRandomState):
        yield obj
        return
    attrs = getattr(obj, "__dict__", None)
    if attrs is None or not type(obj).__module__.startswith(("optuna.", "autosize.")):
        return  # only Optuna's own objects: never walk into a study, numpy or torch
    for value in attrs.values():
        if isinstance(value, optuna.Study | FrozenTrial):
            continue
        yield from random_states(value, seen)
