"""DELVE add10 (Friedman #1 on ten inputs), generated from its definition.

x ~ U[0,1]^10 (inputs 6-10 are irrelevant),
y = 10 sin(pi x1 x2) + 20 (x3 - 0.5)^2 + 10 x4 + 5 x5 + e, e ~ N(0, 1).

The data itself is fixed (generated with :data:`DATA_SEED`, the same for every
call): 9,792 training cases, from which a seeded validation split is carved,
and an independent test set of 9,792 cases. The noise sets the floor: the true
function has a test MSE of about 1. Inputs are standardised with training
statistics; targets stay in their unit, with training mean/std recorded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from autosize.data.bundle import DataBundle, Preprocessing
from autosize.data.options import check_count, check_fraction, split_validation, standardize_stats

__all__ = ["DATA_SEED", "N_CASES", "Add10Options", "add10_function", "generate_add10", "load_add10"]

DATA_SEED = 10
N_CASES = 9_792  # DELVE's add10 size
N_INPUTS = 10


@dataclass(frozen=True, kw_only=True)
class Add10Options:
    val_fraction: float = 0.2
    n_train: int = N_CASES
    n_test: int = N_CASES

    def __post_init__(self) -> None:
        check_fraction("add10", "val_fraction", self.val_fraction)
        check_count("add10", "n_train", self.n_train, minimum=2)
        check_count("add10", "n_test", self.n_test)


def add10_function(x: np.ndarray) -> np.ndarray:
    """The noise-free target for raw inputs ``x`` of shape (n, 10)."""
    return (
        10.0 * np.sin(np.pi * x[:, 0] * x[:, 1])
        + 20.0 * (x[:, 2] - 0.5) ** 2
        + 10.0 * x[:, 3]
        + 5.0 * x[:, 4]
    )


def generate_add10(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` raw cases (x float64 (n, 10), y float64 (n,)) with unit Gaussian noise."""
    x = rng.random((n, N_INPUTS))
    y = add10_function(x) + rng.standard_normal(n)
    return x, y


def load_add10(*, seed: int, options: Add10Options) -> DataBundle:
    # Two independent streams from one fixed seed: train/val cases and test cases.
    train_rng, test_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(DATA_SEED).spawn(2)
    )
    x_all, y_all = generate_add10(options.n_train, train_rng)
    x_test, y_test = generate_add10(options.n_test, test_rng)

    train, val = split_validation(options.n_train, options.val_fraction, seed)
    mean, std = standardize_stats(x_all[train])

    def split(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        xs = ((x - mean) / std).astype(np.float32)
        return torch.from_numpy(xs), torch.from_numpy(y.astype(np.float32))

    return DataBundle(
        name="add10",
        task="regression",
        train=split(x_all[train], y_all[train]),
        val=split(x_all[val], y_all[val]),
        test=split(x_test, y_test),
        input_shape=(N_INPUTS,),
        n_outputs=1,
        numeric_features=N_INPUTS,
        preprocessing=Preprocessing(
            kind="tabular",
            steps={
                "columns": [f"x{i + 1}" for i in range(N_INPUTS)],
                "mean": mean.tolist(),
                "std": std.tolist(),
            },
        ),
        target_mean=float(y_all[train].mean()),
        target_std=float(y_all[train].std()),
        notes={"data_seed": DATA_SEED, "split_seed": seed, "noise_std": 1.0},
    )
