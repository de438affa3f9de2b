"""autosize: find the right size for a neural network with Optuna."""

from __future__ import annotations

from autosize.errors import AutosizeError

__all__ = ["AutosizeError", "__version__"]

__version__ = "0.1.0"
