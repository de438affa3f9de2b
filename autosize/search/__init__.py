"""The search layer: the only part of autosize that talks to Optuna."""

from __future__ import annotations

from autosize.search.config import StudyConfig, load_config
from autosize.search.policy.pruner import BaselinePruner, make_pruner
from autosize.search.prepare import prepare
from autosize.search.store.results import TrialResult, best_of, trial_results
from autosize.search.store.storage import load_study, make_storage
from autosize.search.study import run_study
from autosize.search.trials.training import TrialFailed

__all__ = [
    "BaselinePruner",
    "StudyConfig",
    "TrialFailed",
    "TrialResult",
    "best_of",
    "load_config",
    "load_study",
    "make_pruner",
    "make_storage",
    "prepare",
    "run_study",
    "trial_results",
]
