"""The scikit-learn estimators: a thin shell over run_study + export, held to scikit-learn's checks."""

from __future__ import annotations

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from autosize import AutosizeClassifier, AutosizeRegressor
from autosize.estimator import expected_failed_checks

pytestmark = [
    pytest.mark.usefixtures("one_torch_thread"),
    pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning"),
]

# Seconds per fit: a 4-unit seed for 2 epochs, one from-scratch baseline, one trial.
FAST = {
    "seed": {"layers": [{"type": "dense", "width": 4}], "epochs": 2},
    "train": {"epochs": 1},
    "baselines": {"include_seed": True},
}


def fast(cls: type, **kw: object) -> AutosizeClassifier | AutosizeRegressor:
    return cls(time_budget=60, n_trials=1, config=FAST, **kw)


@parametrize_with_checks(
    [fast(AutosizeClassifier), fast(AutosizeRegressor)],
    expected_failed_checks=expected_failed_checks,
)
def test_sklearn_checks(estimator: object, check: object) -> None:
    check(estimator)  # type: ignore[operator]
