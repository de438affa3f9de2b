"""autosize: find the right size for a neural network with Optuna."""

from __future__ import annotations

from autosize.errors import AutosizeError
from autosize.export import load_model

__all__ = ["AutosizeError", "__version__", "load_model"]

__version__ = "0.1.0"
