"""autosize: find the right size for a neural network with Optuna."""

from __future__ import annotations

from typing import TYPE_CHECKING

from autosize.errors import AutosizeError

if TYPE_CHECKING:
    from autosize.estimator import AutosizeClassifier, AutosizeRegressor
    from autosize.predictor import load_model

__all__ = ["AutosizeClassifier", "AutosizeError", "AutosizeRegressor", "__version__", "load_model"]

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # Lazy: loading a model imports torch and the model and training layers, which
    # importing this package (for its errors, say) must not pull in.
    if name == "load_model":
        from autosize.predictor import load_model

        return load_model
    if name in ("AutosizeClassifier", "AutosizeRegressor"):  # scikit-learn and optuna: lazy too
        from autosize import estimator

        return getattr(estimator, name)
    raise AttributeError(f"module 'autosize' has no attribute {name!r}")
