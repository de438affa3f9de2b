"""scikit-learn estimators: :class:`AutosizeClassifier` and :class:`AutosizeRegressor`.

A thin shell over :func:`~autosize.search.run_study` and export, in the way skorch
wraps a module: ``fit(X, y)`` writes the rows to a Parquet file in a temporary
folder, builds the same config ``autosize run --data FILE --target COL`` builds
(``[study]`` and ``[data] name = "table"``; everything else chosen from the data
unless ``config`` gives those tables), runs the study, exports its best network
(any role, as ``autosize export``) and loads it (:func:`autosize.load_model`).
``predict`` replays the recorded preprocessing on raw rows. There is no second
training path.

``X`` is a DataFrame (text and categorical columns are one-hot encoded, as in a
table study) or anything numeric ``check_array`` accepts (missing values are
imputed and flagged; infinities are refused). Class labels may be of any type: they
are encoded as 0..K-1 for the study and decoded by ``classes_``.

Fitted attributes: ``study_`` (the Optuna study; in memory unless ``storage`` is
given: then ``artifacts`` must be too, and each fit needs a ``study_name`` the storage
does not have yet, since a fit is a study of its own), ``best_spec_`` (the
:class:`~autosize.models.ArchSpec` of the best network), ``best_trial_`` (its trial
number), ``model_`` (the loaded :class:`~autosize.predictor.Predictor`), ``chosen_`` (what
was chosen from the data),
``classes_`` (classifier), ``n_features_in_`` and ``feature_names_in_``.

``ensemble=K`` keeps the K best networks of the study (by validation) and predicts with
their mean, as ``autosize export --ensemble K`` does. Every column of ``X`` is a feature
(no column is left out as an identifier).

scikit-learn's estimator checks (``parametrize_with_checks``) pass except those
:func:`expected_failed_checks` lists, each with the reason; in short:

* ``check_sample_weight_equivalence*``, ``check_sample_weights_*``: ``fit`` takes no
  ``sample_weight`` (the training loop has none), so these are skipped by scikit-learn
  itself;
* ``check_fit2d_predict1d`` and friends pass; ``check_estimators_pickle`` passes: the
  study of an in-memory storage is not pickled (``study_`` is None after unpickling;
  give ``storage`` to keep it), the network and its preprocessing are;
* ``check_classifiers_train`` / ``check_regressors_train`` (accuracy above 0.83 / R²
  above 0.5 on tiny problems) need a real budget, not the one-trial, one-epoch studies
  the test suite fits; they pass with the data-chosen defaults at ``time_budget=5``
  (checked by hand: 18 s and 9 s), so they are listed only for the fast settings.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    check_array,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from autosize.errors import StudyError

if TYPE_CHECKING:
    from sklearn.utils import Tags

    from autosize.models import ArchSpec
    from autosize.predictor import Predictor

__all__ = ["AutosizeClassifier", "AutosizeRegressor", "expected_failed_checks"]

logger = logging.getLogger(__name__)

TARGET = "target"
# The fewest rows a study can split into train, validation and test.
MIN_SAMPLES = 6


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Optuna's per-trial INFO lines off while fitting (restored after)."""
    import optuna

    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(max(level, optuna.logging.WARNING))
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(level)


def expected_failed_checks(estimator: BaseEstimator) -> dict[str, str]:
    """The scikit-learn estimator checks that do not apply, and why (for parametrize_with_checks)."""
    fast = isinstance(estimator, _AutosizeBase) and estimator.n_trials is not None
    if not fast:
        return {}
    why = (
        "a quality bar (accuracy > 0.83 / R^2 > 0.5) that a study of a few epochs on a "
        "few dozen rows, as the test suite runs it, need not reach"
    )
    return {"check_classifiers_train": why, "check_regressors_train": why}


class _AutosizeBase(BaseEstimator):
    _task: str = ""
    # Set by ``_frame(X, reset=True)`` in fit: whether X was a DataFrame, and the columns.
    _from_frame: bool
    _columns: list[str]

    def __init__(
        self,
        *,
        time_budget: float = 60.0,
        n_trials: int | None = None,
        storage: str | None = None,
        artifacts: str | None = None,
        study_name: str = "autosize",
        random_state: int = 0,
        device: str = "auto",
        val_fraction: float = 0.2,
        test_fraction: float = 0.1,
        config: Mapping[str, object] | None = None,
        ensemble: int = 1,
    ) -> None:
        self.time_budget = time_budget
        self.n_trials = n_trials
        self.storage = storage
        self.artifacts = artifacts
        self.study_name = study_name
        self.random_state = random_state
        self.device = device
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.config = config
        self.ensemble = ensemble

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    # ------------------------------------------------------------------ input

    def _frame(self, X: object, *, reset: bool) -> pd.DataFrame:
        """The rows as the study's table: a DataFrame's own columns, else ``x0, x1, ...``."""
        frame_input = isinstance(X, pd.DataFrame) and (reset or self._from_frame)
        if frame_input:
            assert isinstance(X, pd.DataFrame)
            validate_data(self, X, reset=reset, skip_check_array=True)
            if len(X) == 0:
                raise ValueError("Found array with 0 sample(s) while a minimum of 1 is required.")
            frame = X.copy()
            frame.columns = [str(c) for c in frame.columns]
            frame = frame.reset_index(drop=True)
        else:
            array = validate_data(
                self, X, reset=reset, dtype="numeric", ensure_all_finite="allow-nan"
            )
            columns = [f"x{i}" for i in range(array.shape[1])] if reset else self._columns
            frame = pd.DataFrame(np.asarray(array, dtype=np.float64), columns=columns)
        if reset:
            self._from_frame = frame_input
            self._columns = list(frame.columns)
        return frame

    def _target(self, y: object) -> np.ndarray:
        raise NotImplementedError

    # ------------------------------------------------------------------ fit

    def fit(self, X: object, y: object) -> _AutosizeBase:
        """Run a study on (X, y) within ``time_budget`` seconds and keep its best network."""
        from autosize.export import export_study
        from autosize.predictor import load_model
        from autosize.search import run_study
        from autosize.search.config import config_from_dict
        from autosize.search.store.storage import forget_storage

        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None"
            )
        frame = self._frame(X, reset=True)
        target = self._target(y)
        check_consistent_length(frame, target)
        n = len(frame)
        if n < MIN_SAMPLES:
            raise ValueError(
                f"{type(self).__name__} needs at least {MIN_SAMPLES} samples (train, "
                f"validation and test splits), got n_samples = {n}"
            )
        if self.storage is not None:
            self._check_storage(self.storage)
        column = TARGET
        while column in frame.columns:
            column += "_"
        frame[column] = target
        tmp = Path(tempfile.mkdtemp(prefix="autosize-fit-"))
        url = self.storage or f"memory:{uuid.uuid4().hex}"
        try:
            path = tmp / "data.parquet"
            frame.to_parquet(path, index=False)
            study: dict[str, object] = {
                "name": self.study_name,
                "storage": url,
                "artifacts": str(self.artifacts or tmp / "artifacts"),
                "timeout": float(self.time_budget),
                "seed": int(self.random_state),
                "device": self.device,
            }
            if self.n_trials is not None:
                study["n_trials"] = int(self.n_trials)
            data: dict[str, object] = {
                "name": "table",
                "path": str(path),
                "target": column,
                "task": self._task,
                "val_fraction": self.val_fraction,
                "test_fraction": self.test_fraction,
                # every column of X is a feature, as for any scikit-learn estimator
                "identifiers": [],
            }
            raw: dict[str, object] = {**dict(self.config or {}), "study": study, "data": data}
            config = config_from_dict(raw, tmp / "autosize.toml")
            chosen: list[str] = []
            with _quiet_optuna():
                self.study_ = run_study(
                    config,
                    timeout=float(self.time_budget),
                    on_prepared=lambda p: chosen.extend(p.chosen),
                )
            for line in chosen:
                logger.info("chosen from the data: %s", line)
            if not any(t.state.name == "COMPLETE" for t in self.study_.get_trials(deepcopy=False)):
                raise StudyError(
                    f"{type(self).__name__}: time_budget={self.time_budget:g} s ended before any "
                    "network finished training (the clock includes loading the data and the "
                    "seed); give it more time"
                )
            exported = export_study(
                self.study_,
                artifacts=config.artifacts,
                out=tmp / "export",
                trial="best",
                ensemble=int(self.ensemble),
            )
            self.model_: Predictor = load_model(exported[0].folder)
        finally:
            if self.storage is None:
                forget_storage(url)
            shutil.rmtree(tmp, ignore_errors=True)
        self.chosen_ = tuple(chosen)
        self.best_trial_ = exported[0].record.trial
        self.best_spec_: ArchSpec = self.model_.spec
        return self

    def _check_storage(self, url: str) -> None:
        """A kept study must keep its networks, and each fit is a study of its own."""
        from autosize.search.store.storage import study_summaries

        name = type(self).__name__
        if self.artifacts is None:
            raise ValueError(
                f"{name}: storage={url!r} keeps the study, so give artifacts= too (a folder or "
                "s3://BUCKET/PREFIX for its networks); without it they would be deleted with "
                "fit's temporary folder and the kept study could not be exported or resumed"
            )
        if any(s.study_name == self.study_name for s in study_summaries(url)):
            raise ValueError(
                f"{name}: storage {url!r} already has a study named {self.study_name!r} (an "
                "earlier fit's); each fit runs a study of its own: give study_name= a new name"
            )

    # ------------------------------------------------------------------ predict

    def _outputs(self, X: object) -> np.ndarray:
        check_is_fitted(self, "model_")
        frame = self._frame(X, reset=False)
        return self.model_.outputs(frame).double().numpy()

    def __getstate__(self) -> dict[str, object]:
        state = dict(self.__dict__)
        if self.storage is None and "study_" in state:
            state["study_"] = None  # an in-memory storage holds locks: not picklable
        return state


class AutosizeClassifier(ClassifierMixin, _AutosizeBase):
    """Classification by an autosize study (see :mod:`autosize.estimator`)."""

    _task = "classification"

    def _target(self, y: object) -> np.ndarray:
        labels: np.ndarray = column_or_1d(check_array(y, ensure_2d=False, dtype=None), warn=True)
        check_classification_targets(labels)
        self.classes_, codes = np.unique(labels, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                f"AutosizeClassifier needs samples of at least 2 classes; got one class "
                f"({self.classes_[0]!r})"
            )
        return codes.astype(np.int64)

    def predict_proba(self, X: object) -> np.ndarray:
        out = self._outputs(X)
        out = out - out.max(axis=1, keepdims=True)
        p = np.exp(out)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, X: object) -> np.ndarray:
        index = self._outputs(X).argmax(axis=1)
        return self.classes_[index]


class AutosizeRegressor(RegressorMixin, _AutosizeBase):
    """Regression by an autosize study (see :mod:`autosize.estimator`)."""

    _task = "regression"

    def _target(self, y: object) -> np.ndarray:
        values: np.ndarray = check_array(
            y, ensure_2d=False, dtype="numeric", ensure_all_finite=True
        )
        if values.ndim == 2 and values.shape[1] == 1:
            values = column_or_1d(values, warn=True)
        if values.ndim != 1:
            raise ValueError(f"AutosizeRegressor predicts one target; y has shape {values.shape}")
        return values.astype(np.float64)

    def predict(self, X: object) -> np.ndarray:
        return self._outputs(X)[:, 0]
