"""Dataset options: keyword-only, validated, unknown keys refused by name."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from autosize.errors import DataError

__all__ = [
    "build_options",
    "check_choice",
    "check_count",
    "check_fraction",
    "split_validation",
    "standardize_stats",
]

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")


def build_options(dataset: str, cls: type[T], options: Mapping[str, object]) -> T:
    """``cls(**options)``, refusing keys that ``cls`` does not define."""
    valid = [f.name for f in fields(cls)]
    for key in options:
        if key not in valid:
            listed = ", ".join(valid) if valid else "none"
            raise DataError(
                f"unknown option {key!r} for dataset {dataset!r}; valid options: {listed}"
            )
    return cls(**options)


def check_fraction(dataset: str, key: str, value: object) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and 0.0 < value < 1.0
    if not ok:
        raise DataError(
            f"option {key}={value!r} for dataset {dataset!r}: expected a number in (0, 1)"
        )


def check_count(dataset: str, key: str, value: object, *, minimum: int = 1) -> None:
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < minimum:
        raise DataError(
            f"option {key}={value!r} for dataset {dataset!r}: expected an integer >= {minimum}"
        )


def check_choice(dataset: str, key: str, value: object, choices: tuple[Any, ...]) -> None:
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise DataError(f"option {key}={value!r} for dataset {dataset!r}: expected one of {listed}")


def split_validation(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (train, val) row indices; val has round(n * val_fraction) rows, both sorted."""
    n_val = min(max(1, round(n * val_fraction)), n - 1)
    perm = np.random.default_rng(seed).permutation(n)
    val = np.sort(perm[:n_val])
    train = np.sort(perm[n_val:])
    return train, val


def standardize_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and standard deviation (ddof 0); constant columns get std 1."""
    mean = x.mean(axis=0, dtype=np.float64)
    std = x.std(axis=0, dtype=np.float64)
    std = np.where(std > 0, std, 1.0)
    return mean, std
