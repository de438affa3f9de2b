"""benchmarks/airfoil_validation.py: its stand-in test chords never touch the real test rows."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from autosize.data import DataBundle, load_dataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import airfoil_validation as bench


def _chords(bundle: DataBundle, split: str) -> np.ndarray:
    steps = bundle.preprocessing.steps
    x = bundle.split(split)[0][:, 2].double().numpy()
    return (x * steps["std"][2] + steps["mean"][2]).round(4)


def test_stand_in_test_chord_leaves_the_real_test_rows_out(data_mirror: Path) -> None:
    base = load_dataset("airfoil", data_dir=data_mirror)
    b = bench.bundle_for(base, 0.0508, (0.2286,), seed=0)
    assert b is not None
    assert set(_chords(b, "test")) == {0.0508}
    assert set(_chords(b, "val")) == {0.2286}
    assert set(_chords(b, "train")) == {0.0254, 0.1524, 0.3048}
    mixed = bench.bundle_for(base, 0.0508, "random", seed=0)
    assert mixed is not None
    seen = set(_chords(mixed, "train")) | set(_chords(mixed, "val"))
    assert seen == {0.0254, 0.1524, 0.2286, 0.3048}
    assert mixed.sizes["val"] == round(0.2 * (1503 - 263 - 237))
    # A scheme that would validate on the test chord is skipped.
    assert bench.bundle_for(base, 0.2286, (0.2286,), seed=0) is None


def test_real_test_chord_is_the_loaders(data_mirror: Path) -> None:
    base = load_dataset("airfoil", data_dir=data_mirror)  # the default: a random 20%
    b = bench.bundle_for(base, 0.1016, "random", seed=0)
    assert b is not None and b.sizes == base.sizes  # (other rows: the rows come in another order)
    assert set(_chords(b, "test")) == {0.1016}
    held = load_dataset("airfoil", data_dir=data_mirror, val_chord=0.2286)
    c = bench.bundle_for(held, 0.1016, (0.2286,), seed=0)
    assert c is not None and c.sizes == held.sizes
    assert c.target_mean == pytest.approx(held.target_mean, abs=1e-4)


def test_pick_at_m_is_the_best_validation_networks_test() -> None:
    val = np.array([3.0, 1.0, 2.0, 4.0])
    test = np.array([10.0, 20.0, 30.0, 40.0])
    assert bench.pick_at(val, test, 4, draws=10, seed=0) == 20.0
    # Among 3 of the 4, network 1 is in 3 of the 4 subsets; network 2 wins the other.
    assert bench.pick_at(val, test, 3, draws=20_000, seed=0) == pytest.approx(22.5, abs=0.3)
