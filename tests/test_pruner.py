"""BaselinePruner and make_pruner, ask-and-tell style like Optuna's own pruner tests."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import optuna
import pytest
from optuna import pruners

from autosize.errors import ConfigError
from autosize.search import load_config, prepare
from autosize.search.config import (
    PRUNER_CLASSES,
    PRUNERS,
    SAMPLER_CLASSES,
    BaselineConfig,
    component_class,
)
from autosize.search.policy.pruner import BaselineCurve, BaselinePruner, make_pruner
from studies import tiny_config

optuna.logging.set_verbosity(optuna.logging.WARNING)
pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")


def _study(direction: str = "minimize", **kwargs: object) -> optuna.Study:
    return optuna.create_study(direction=direction, pruner=BaselinePruner(**kwargs))  # type: ignore[arg-type]


def _baseline(study: optuna.Study, curve: Sequence[float], *, params: int = 100) -> None:
    trial = study.ask()
    trial.set_user_attr("role", "baseline")
    trial.set_user_attr("params", params)
    for step, value in enumerate(curve, start=1):
        trial.report(value, step)
        assert not trial.should_prune()
    study.tell(trial, curve[-1])


def _warm(study: optuna.Study, values: Sequence[float], *, params: int | None = None) -> list[bool]:
    """Report ``values`` at steps 1, 2, ...; the pruner's answer after each."""
    trial = study.ask()
    trial.set_user_attr("role", "warmstart")
    if params is not None:
        trial.set_user_attr("params", params)
    answers = []
    for step, value in enumerate(values, start=1):
        trial.report(value, step)
        answers.append(trial.should_prune())
    if answers[-1]:
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    elif not math.isfinite(values[-1]):
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
    else:
        study.tell(trial, values[-1])
    return answers


BASE = [1.0, 0.8, 0.6, 0.5]  # a minimised loss


def test_prunes_a_trial_worse_for_patience_steps_after_min_steps() -> None:
    study = _study(patience=2, min_steps=2)
    _baseline(study, BASE)
    # step 1 is before min_steps; steps 2 and 3 are the two worse steps patience asks for
    assert _warm(study, [2.0, 2.0, 2.0, 2.0]) == [False, False, True, True]


def test_keeps_a_trial_better_than_the_baselines() -> None:
    study = _study(patience=1, min_steps=1)
    _baseline(study, BASE)
    assert _warm(study, [0.9, 0.7, 0.5, 0.4]) == [False] * 4


def test_equal_to_the_baseline_is_not_worse() -> None:
    study = _study()
    _baseline(study, BASE)
    assert _warm(study, BASE) == [False] * 4


def test_a_better_step_resets_the_streak() -> None:
    study = _study(patience=2, min_steps=1)
    _baseline(study, BASE)
    assert _warm(study, [2.0, 0.1, 2.0, 0.1]) == [False] * 4


def test_margin_is_respected() -> None:
    study = _study(margin=0.1)
    _baseline(study, BASE)
    assert _warm(study, [v + 0.05 for v in BASE]) == [False] * 4  # worse, but within the margin
    assert _warm(study, [v + 0.2 for v in BASE]) == [True] * 4


def test_nan_counts_as_worse() -> None:
    study = _study()
    _baseline(study, BASE)
    assert _warm(study, [math.nan]) == [True]


def test_steps_past_the_baseline_curve_use_its_last_value() -> None:
    study = _study()
    _baseline(study, [1.0, 0.5])
    assert _warm(study, [0.9, 0.4, 0.45, 0.6]) == [False, False, False, True]


@pytest.mark.parametrize(
    ("reference", "params", "pruned"),
    [
        ("nearest", 60, False),  # nearest is the small, weak baseline: 1.0 beats it
        ("nearest", 4000, True),  # nearest is the large, strong one
        ("best", 60, True),  # the best baseline whatever the size
    ],
)
def test_reference_picks_the_baseline(reference: str, params: int, pruned: bool) -> None:
    study = _study(reference=reference)
    _baseline(study, [2.0, 2.0], params=50)
    _baseline(study, [0.5, 0.5], params=5000)
    assert _warm(study, [1.0, 1.0], params=params)[-1] is pruned


def test_nearest_without_params_falls_back_to_the_best() -> None:
    study = _study(reference="nearest")
    _baseline(study, [2.0, 2.0], params=50)
    _baseline(study, [0.5, 0.5], params=5000)
    assert _warm(study, [1.0, 1.0])[-1] is True


@pytest.mark.parametrize(
    ("direction", "base", "worse", "better"),
    [
        ("maximize", [0.5, 0.6, 0.7], [0.4, 0.5, 0.6], [0.6, 0.7, 0.8]),
        ("minimize", [0.5, 0.4, 0.3], [0.6, 0.5, 0.4], [0.4, 0.3, 0.2]),
    ],
)
def test_directions(
    direction: str, base: list[float], worse: list[float], better: list[float]
) -> None:
    study = _study(direction)
    _baseline(study, base)
    assert _warm(study, worse) == [True] * 3
    assert _warm(study, better) == [False] * 3


def test_no_baselines_never_prunes() -> None:
    study = _study()
    assert _warm(study, [1e9, 1e9, math.nan]) == [False] * 3


def test_running_failed_and_pruned_baselines_do_not_count() -> None:
    study = _study()
    running = study.ask()
    running.set_user_attr("role", "baseline")
    running.report(0.1, 1)
    failed = study.ask()
    failed.set_user_attr("role", "baseline")
    failed.report(0.1, 1)
    study.tell(failed, state=optuna.trial.TrialState.FAIL)
    assert _warm(study, [5.0, 5.0]) == [False, False]


def test_baseline_trials_are_never_pruned() -> None:
    study = _study()
    _baseline(study, [0.1, 0.1])
    trial = study.ask()
    trial.set_user_attr("role", "baseline")
    for step in (1, 2, 3):
        trial.report(100.0, step)
        assert not trial.should_prune()


def test_a_warm_trial_with_no_reports_is_not_pruned() -> None:
    study = _study()
    _baseline(study, BASE)
    trial = study.ask()
    trial.set_user_attr("role", "warmstart")
    assert not trial.should_prune()


def test_baseline_curve_at() -> None:
    curve = BaselineCurve(number=0, params=10, value=0.3, curve={2: 0.5, 4: 0.3})
    assert [curve.at(s) for s in (1, 2, 3, 4, 9)] == [0.5, 0.5, 0.5, 0.3, 0.3]


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"margin": -1.0}, "margin"),
        ({"margin": math.inf}, "margin"),
        ({"patience": 0}, "patience"),
        ({"min_steps": -1}, "min_steps"),
        ({"reference": "closest"}, "reference"),
    ],
)
def test_constructor_names_the_bad_value(kwargs: dict[str, object], word: str) -> None:
    with pytest.raises(ValueError, match=word):
        BaselinePruner(**kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- make_pruner


BY_NAME = [
    ("baseline", {"margin": 0.1, "reference": "nearest"}, BaselinePruner),
    ("median", {"n_startup_trials": 2}, pruners.MedianPruner),
    ("percentile", {"percentile": 25.0}, pruners.PercentilePruner),
    ("successive_halving", {}, pruners.SuccessiveHalvingPruner),
    ("hyperband", {"min_resource": 1, "max_resource": 6}, pruners.HyperbandPruner),
    ("wilcoxon", {}, pruners.WilcoxonPruner),
    ("patient", {"wrapped": "median", "patience": 2}, pruners.PatientPruner),
    ("threshold", {"upper": 10.0}, pruners.ThresholdPruner),
    ("none", {}, pruners.NopPruner),
]


def test_every_pruner_name_a_config_accepts_is_built_below() -> None:
    assert [name for name, _, _ in BY_NAME] == list(PRUNERS)


@pytest.mark.parametrize(("name", "kwargs", "cls"), BY_NAME)
def test_make_pruner_by_name(name: str, kwargs: dict[str, object], cls: type) -> None:
    given = dict(kwargs)
    pruner = make_pruner(name, given)
    assert isinstance(pruner, cls)
    # The config's own mapping is left as it was ("patient" takes "wrapped" out of a copy),
    # so building the pruner again (every worker does) gives the same pruner.
    assert given == kwargs
    if name == "patient":
        assert isinstance(pruner._wrapped_pruner, pruners.MedianPruner)
    assert type(make_pruner(name, given)) is cls


def test_make_pruner_passes_kwargs_through() -> None:
    pruner = make_pruner("baseline", {"margin": 0.25, "patience": 3, "reference": "nearest"})
    assert isinstance(pruner, BaselinePruner)
    assert (pruner.margin, pruner.patience, pruner.reference) == (0.25, 3, "nearest")


@pytest.mark.parametrize(
    "name", ["baseline", "median", "percentile", "hyperband", "patient", "threshold", "none"]
)
def test_make_pruner_bad_kwarg_names_it(name: str) -> None:
    with pytest.raises(ConfigError, match="bogus_kw") as info:
        make_pruner(name, {"bogus_kw": 1}, where="study.toml: [pruner]")
    message = str(info.value)
    assert message.startswith("study.toml: [pruner]") and "\n" not in message


def test_make_pruner_bad_value_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="patience"):
        make_pruner("baseline", {"patience": 0})


def test_make_pruner_unknown_name() -> None:
    with pytest.raises(ConfigError, match="'bogus'"):
        make_pruner("bogus", {})


def test_every_sampler_and_pruner_name_stands_for_an_optuna_class() -> None:
    from optuna.pruners import BasePruner
    from optuna.samplers import BaseSampler

    for name in SAMPLER_CLASSES:
        assert issubclass(component_class(SAMPLER_CLASSES, name), BaseSampler), name
    for name in PRUNER_CLASSES:
        assert issubclass(component_class(PRUNER_CLASSES, name), BasePruner), name


def test_the_baseline_pruner_and_the_config_share_one_default_reference() -> None:
    assert BaselinePruner().reference == BaselineConfig().reference == "nearest"


def test_the_reference_is_set_once_in_baselines(tmp_path: Path) -> None:
    path = tiny_config(tmp_path, pruner='name = "baseline"\nreference = "best"')
    with pytest.raises(ConfigError, match=r"study\.toml: \[pruner\] reference: set \[baselines\]"):
        prepare(load_config(path))
    path = tiny_config(
        tmp_path / "b", pruner='name = "baseline"', baselines='scales = [2.0]\nreference = "best"'
    )
    assert prepare(load_config(path)).pruner().reference == "best"  # type: ignore[attr-defined]
