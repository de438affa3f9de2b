"""The scikit-learn estimators: a thin shell over run_study + export, held to scikit-learn's checks."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from sklearn.base import clone
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


def test_classifier_on_a_dataframe_with_text_and_string_labels() -> None:
    rng = np.random.default_rng(0)
    n = 80
    x = pd.DataFrame({"a": rng.normal(size=n), "colour": rng.choice(["red", "blue"], n)})
    y = np.where(x["a"] > 0, "yes", "no")
    est = fast(AutosizeClassifier, random_state=3)
    assert clone(est).get_params() == est.get_params()
    est.fit(x, y)
    assert list(est.classes_) == ["no", "yes"] and list(est.feature_names_in_) == ["a", "colour"]
    assert est.study_.trials and est.best_spec_.input_shape == (3,)
    assert set(est.predict(x)) <= {"no", "yes"}
    np.testing.assert_allclose(est.predict_proba(x).sum(axis=1), 1.0)
    assert 0.0 <= est.score(x, y) <= 1.0
    unpickled = pickle.loads(pickle.dumps(est))
    assert unpickled.study_ is None  # an in-memory study is not pickled; the network is
    np.testing.assert_array_equal(unpickled.predict(x), est.predict(x))


def test_regressor_keeps_the_unit_and_a_given_storage(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 3))
    y = 1000.0 + 50.0 * x[:, 0]
    storage = f"sqlite:///{tmp_path / 'est.db'}"
    est = fast(AutosizeRegressor, storage=storage, artifacts=str(tmp_path / "art")).fit(x, y)
    assert 800 < float(est.predict(x).mean()) < 1200
    assert (tmp_path / "est.db").exists()
    assert optuna.load_study(study_name="autosize", storage=storage).trials
    # A second fit on the same storage is a study of its own: a new name, one line otherwise
    # (it said that "[data] differs", naming fit's temporary files).
    with pytest.raises(ValueError, match=r"already has a study named 'autosize'.*study_name="):
        est.fit(x, y)
    refit = clone(est).set_params(study_name="again").fit(x, y)
    assert refit.study_.study_name == "again"
    # A kept study without a place for its networks would point at deleted files.
    with pytest.raises(ValueError, match="give artifacts= too"):
        fast(AutosizeRegressor, storage=storage, study_name="third").fit(x, y)
