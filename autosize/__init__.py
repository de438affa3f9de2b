"""autosize: find the right size for a neural network with Optuna."""

from __future__ import annotations

from typing import TYPE_CHECKING

from autosize.errors import AutosizeError

if TYPE_CHECKING:
    from autosize.estimator import AutosizeClassifier, AutosizeRegressor
    from autosize.export import load_model

__all__ = ["AutosizeClassifier", "AutosizeError", "AutosizeRegressor", "__version__", "load_model"]

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # Lazy: autosize.export imports optuna, which the data, model, transform and
    # training layers must not pull in just by importing this package.
    if name == "load_model":
        from autosize.export import load_model

        return load_model
    if name in ("AutosizeClassifier", "AutosizeRegressor"):  # scikit-learn and optuna: lazy too
        from autosize import estimator

        return getattr(estimator, name)
    raise AttributeError(f"module 'autosize' has no attribute {name!r}")
