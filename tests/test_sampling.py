"""Optuna samplers reseeded per trial: workers on one study do not draw in lockstep."""

from __future__ import annotations

import optuna
import pytest
from optuna.samplers import BaseSampler

from autosize.search.config.components import SAMPLER_CLASSES, component_class
from autosize.search.optuna_private import random_states
from autosize.search.policy.sampling import TrialSeeded

optuna.logging.set_verbosity(optuna.logging.WARNING)


def draw(trial: optuna.Trial) -> tuple[float, int, str]:
    return (
        trial.suggest_float("lr", 1e-4, 1e-1, log=True),
        trial.suggest_int("width", 8, 512),
        trial.suggest_categorical("op", ["widen", "deepen", "compress"]),
    )


def two_workers(sampler: type[BaseSampler], wrap: bool) -> list[tuple[float, int, str]]:
    """Two processes' samplers (same config seed) asking on one storage at the same moment."""
    storage = optuna.storages.InMemoryStorage()
    workers = []
    for _ in range(2):
        inner = sampler(seed=0)  # every sampler tried takes seed=
        s = TrialSeeded(inner, 0) if wrap else inner
        workers.append(
            optuna.create_study(storage=storage, study_name="s", sampler=s, load_if_exists=True)
        )
    trials = [study.ask() for study in workers]  # both asked before either is told
    return [draw(t) for t in trials]


@pytest.mark.parametrize("name", ["tpe", "random", "gp", "cmaes", "nsga2"])
def test_concurrent_trials_draw_differently(name: str) -> None:
    sampler = component_class(SAMPLER_CLASSES, name)
    if name in ("tpe", "random"):
        # Unwrapped, both workers draw the same parameters: what the wrapper is for.
        first, second = two_workers(sampler, wrap=False)
        assert first == second
    first, second = two_workers(sampler, wrap=True)
    assert first != second


def test_one_process_is_reproducible_from_the_seed() -> None:
    def run() -> list[tuple[float, int, str]]:
        study = optuna.create_study(sampler=TrialSeeded(optuna.samplers.TPESampler(seed=3), 3))
        out = []
        for _ in range(14):  # past TPE's 10 random start-up trials
            t = study.ask()
            out.append(draw(t))
            study.tell(t, out[-1][0])
        return out

    assert run() == run()


def test_the_walk_finds_tpe_and_its_inner_random_sampler() -> None:
    tpe = optuna.samplers.TPESampler(seed=0)
    states = list(random_states(tpe))
    assert len(states) == 2
    assert {id(s) for s in states} == {id(tpe._rng), id(tpe._random_sampler._rng)}
