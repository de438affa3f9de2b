"""autosize.data against the real-data mirror: sizes, preprocessing, checksums, generators."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from autosize.data import DATASETS, DataBundle, list_datasets, load_dataset
from autosize.data import poker as poker_mod
from autosize.data.add10 import add10_function
from autosize.data.files import file_digest
from autosize.data.poker import CLASS_PROBABILITIES, generate_hands, poker_labels, read_hands
from autosize.errors import DataError

AIRFOIL = "airfoil/airfoil_self_noise.dat"
AIRFOIL_SHA = "74c75fd71783f1e6b71f8a622b993dc592897a97cd689c5090a07147a1b097b3"

EXPECTED = {
    # name: (train, val, test, input_shape, n_outputs, task)
    "mnist": (55_000, 5_000, 10_000, (1, 28, 28), 10, "classification"),
    "fashion_mnist": (55_000, 5_000, 10_000, (1, 28, 28), 10, "classification"),
    "census": (26_049, 6_512, 16_281, None, 2, "classification"),
    "airfoil": (992, 248, 263, (5,), 1, "regression"),
    "poker": (20_008, 5_002, 1_000_000, (85,), 10, "classification"),
    "add10": (7_834, 1_958, 9_792, (10,), 1, "regression"),
}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUTOSIZE_DATA_DIR", raising=False)
    monkeypatch.delenv("AUTOSIZE_DATA_ROOT", raising=False)


@pytest.fixture(scope="module")
def bundles(data_mirror: Path) -> dict[str, DataBundle]:
    """Each dataset loaded once (lazily) from the mirror used as the data root."""

    class Cache(dict[str, DataBundle]):
        def __missing__(self, name: str) -> DataBundle:
            self[name] = load_dataset(name, data_dir=data_mirror)
            return self[name]

    return Cache()


def test_names() -> None:
    assert list_datasets() == ("mnist", "fashion_mnist", "census", "airfoil", "poker", "add10")
    assert set(DATASETS) == set(EXPECTED)


def test_unknown_name_lists_known_ones() -> None:
    with pytest.raises(
        DataError,
        match=r"unknown dataset 'cifar'.*mnist, fashion_mnist, census, airfoil, poker, add10",
    ):
        load_dataset("cifar")


def test_unknown_option_is_named_with_valid_ones() -> None:
    with pytest.raises(DataError, match=r"unknown option 'splitt'.*'airfoil'.*split, val_chord"):
        load_dataset("airfoil", splitt="chord")
    with pytest.raises(DataError, match=r"split='both'"):
        load_dataset("airfoil", split="both")
    with pytest.raises(DataError, match=r"val_chord=0.1016"):
        load_dataset("airfoil", val_chord=0.1016)
    with pytest.raises(DataError, match=r"val_fraction=1.5"):
        load_dataset("add10", val_fraction=1.5)
    with pytest.raises(DataError, match=r"test='fake'.*'auto', 'real', 'generated'"):
        load_dataset("poker", test="fake")


@pytest.mark.parametrize("name", list(EXPECTED))
def test_shapes_counts_dtypes(bundles: dict[str, DataBundle], name: str) -> None:
    b = bundles[name]
    n_train, n_val, n_test, shape, n_out, task = EXPECTED[name]
    assert b.name == name and b.task == task and b.n_outputs == n_out
    assert b.sizes == {"train": n_train, "val": n_val, "test": n_test}
    if shape is not None:
        assert b.input_shape == shape
    for split in ("train", "val", "test"):
        x, y = b.split(split)
        assert x.dtype == torch.float32 and x.shape[1:] == b.input_shape
        assert torch.isfinite(x).all()
        if task == "classification":
            assert y.dtype == torch.int64 and y.shape == (x.shape[0],)
            assert int(y.min()) >= 0 and int(y.max()) < n_out
        else:
            assert y.dtype == torch.float32 and y.shape == (x.shape[0],)
    if task == "classification":
        assert set(b.train[1].unique().tolist()) == set(range(n_out))
    b.preprocessing.to_dict()  # JSON-safe description exists


def _standardised_by_train(x_train: torch.Tensor, x_other: torch.Tensor, cols: slice) -> None:
    """Training columns have mean 0 and std 1 exactly, so statistics came from train only."""
    tr = x_train.reshape(x_train.shape[0], -1)[:, cols].double()
    torch.testing.assert_close(
        tr.mean(0), torch.zeros(tr.shape[1], dtype=torch.float64), atol=1e-5, rtol=0
    )
    torch.testing.assert_close(
        tr.std(0, unbiased=False), torch.ones(tr.shape[1], dtype=torch.float64), atol=1e-5, rtol=0
    )
    # ...and the check can tell: another split is visibly off.
    other = x_other.reshape(x_other.shape[0], -1)[:, cols].double()
    assert (other.mean(0).abs() > 1e-3).any()


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_image_stats_from_train_only(bundles: dict[str, DataBundle], name: str) -> None:
    b = bundles[name]
    x = b.train[0].double()
    assert abs(float(x.mean())) < 1e-6 and abs(float(x.std(unbiased=False)) - 1) < 1e-6
    assert abs(float(b.test[0].double().mean())) > 1e-4
    steps = b.preprocessing.steps
    assert steps["scale"] == pytest.approx(1 / 255)
    raw_min = -steps["mean"] / steps["std"]  # pixel 0 maps here
    assert float(x.min()) == pytest.approx(raw_min, abs=1e-5)


def test_census_preprocessing_from_train_only(
    bundles: dict[str, DataBundle], data_mirror: Path
) -> None:
    b = bundles["census"]
    steps = b.preprocessing.steps
    n_num = len(steps["numeric"])
    _standardised_by_train(b.train[0], b.test[0], slice(0, n_num))
    onehot = b.train[0][:, n_num:]
    assert set(onehot.unique().tolist()) == {0.0, 1.0}
    assert (onehot.sum(0) > 0).all(), "every category was seen in the training split"
    assert (onehot.sum(1) == len(steps["categorical"])).all()
    assert any("?" in cats for cats in steps["categories"])
    assert b.input_shape == (n_num + sum(len(c) for c in steps["categories"]),)
    # Labels: ">50K." in adult.test and ">50K" in adult.data both count as positives.
    test_df = pd.read_csv(
        data_mirror / "adult/adult.test", header=None, skiprows=1, skipinitialspace=True
    )
    assert int(b.test[1].sum()) == int(test_df[14].str.startswith(">50K").sum()) == 3_846
    assert int(b.train[1].sum() + b.val[1].sum()) == 7_841


def test_airfoil_chord_split(bundles: dict[str, DataBundle]) -> None:
    b = bundles["airfoil"]
    mean, std = np.array(b.preprocessing.steps["mean"]), np.array(b.preprocessing.steps["std"])
    chord = {
        s: (b.split(s)[0][:, 2].double().numpy() * std[2] + mean[2])
        for s in ("train", "val", "test")
    }
    # validation: a random share of the five training chords' rows (the test-blind default)
    five = [0.0254, 0.0508, 0.1524, 0.2286, 0.3048]
    assert np.allclose(chord["test"], 0.1016)
    assert sorted(np.unique(chord["train"].round(4))) == five
    assert sorted(np.unique(chord["val"].round(4))) == five
    _standardised_by_train(b.train[0], b.test[0], slice(None))
    y = b.train[1].double()
    assert float(y.min()) > 100 and float(y.max()) < 145  # still in dB
    assert b.target_mean == pytest.approx(float(y.mean()), abs=1e-4)
    assert b.target_std == pytest.approx(float(y.std(unbiased=False)), abs=1e-4)


def test_airfoil_several_validation_chords(data_mirror: Path) -> None:
    b = load_dataset("airfoil", data_dir=data_mirror, val_chord=[0.0508, 0.2286])
    mean, std = np.array(b.preprocessing.steps["mean"]), np.array(b.preprocessing.steps["std"])
    chord = {s: (b.split(s)[0][:, 2].double().numpy() * std[2] + mean[2]).round(4) for s in b.sizes}
    assert sorted(np.unique(chord["val"])) == [0.0508, 0.2286]
    assert sorted(np.unique(chord["train"])) == [0.0254, 0.1524, 0.3048]
    assert np.allclose(chord["test"], 0.1016)
    assert b.sizes == {"train": 737, "val": 237 + 266, "test": 263}
    assert b.notes["val_chord"] == "0.0508, 0.2286"
    # One chord in a list is that chord, as a bare number loads it.
    one = load_dataset("airfoil", data_dir=data_mirror, val_chord=[0.2286])
    bare = load_dataset("airfoil", data_dir=data_mirror, val_chord=0.2286)
    torch.testing.assert_close(one.val[0], bare.val[0])


def test_airfoil_random_validation_of_the_training_chords(data_mirror: Path) -> None:
    b = load_dataset("airfoil", data_dir=data_mirror, val_chord="random", val_fraction=0.2, seed=3)
    mean, std = np.array(b.preprocessing.steps["mean"]), np.array(b.preprocessing.steps["std"])
    chord = {s: (b.split(s)[0][:, 2].double().numpy() * std[2] + mean[2]).round(4) for s in b.sizes}
    assert np.allclose(chord["test"], 0.1016)
    five = [0.0254, 0.0508, 0.1524, 0.2286, 0.3048]
    assert sorted(np.unique(chord["train"])) == sorted(np.unique(chord["val"])) == five
    assert b.sizes == {"train": 992, "val": 248, "test": 263}
    assert b.notes["val_chord"] == "random" and b.notes["split_seed"] == 3
    again = load_dataset(
        "airfoil", data_dir=data_mirror, val_chord="random", val_fraction=0.2, seed=3
    )
    torch.testing.assert_close(again.val[0], b.val[0])
    other = load_dataset(
        "airfoil", data_dir=data_mirror, val_chord="random", val_fraction=0.2, seed=4
    )
    assert not torch.equal(other.val[0], b.val[0])
    torch.testing.assert_close(other.test[1], b.test[1])  # the same rows (inputs: other stats)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([0.0508, 0.1016], r"val_chord=0.1016 .*expected one of 0.0254"),
        (["x"], r"val_chord='x'"),
        ("rand", r"val_chord='rand' .*'random', 0.0254"),
        (["random"], r"val_chord='random' .*expected one of 0.0254"),
        ([], r"val_chord=\[\] .*a list of 1 to 4 different ones"),
        ([0.2286, 0.2286], r"val_chord=\[0.2286, 0.2286\] .*different"),
        ([0.0254, 0.0508, 0.1524, 0.2286, 0.3048], r"a list of 1 to 4"),
        (True, r"val_chord=True"),
    ],
)
def test_airfoil_bad_validation_chords_are_named(value: object, message: str) -> None:
    with pytest.raises(DataError, match=message):
        load_dataset("airfoil", val_chord=value)


def test_airfoil_random_split_is_seeded(data_mirror: Path) -> None:
    a = load_dataset("airfoil", data_dir=data_mirror, split="random", seed=3)
    b = load_dataset("airfoil", data_dir=data_mirror, split="random", seed=3)
    c = load_dataset("airfoil", data_dir=data_mirror, split="random", seed=4)
    assert sum(a.sizes.values()) == 1503
    torch.testing.assert_close(a.val[1], b.val[1])
    assert not torch.equal(a.val[1], c.val[1])


def test_validation_split_depends_on_seed_only(
    data_mirror: Path, bundles: dict[str, DataBundle]
) -> None:
    again = load_dataset("census", data_dir=data_mirror, seed=0)
    torch.testing.assert_close(again.val[0], bundles["census"].val[0])
    other = load_dataset("census", data_dir=data_mirror, seed=1)
    assert not torch.equal(other.val[0], again.val[0])
    torch.testing.assert_close(other.test[1], again.test[1])


def test_poker_labeller_agrees_with_all_real_labels(data_mirror: Path) -> None:
    suits, ranks, labels = read_hands(
        data_mirror / "poker/poker-hand-training-true.data", rows=25_010
    )
    assert np.bincount(labels, minlength=10).tolist() == [
        12493,
        10599,
        1206,
        513,
        93,
        54,
        36,
        6,
        5,
        5,
    ]
    np.testing.assert_array_equal(poker_labels(suits, ranks), labels)


def test_poker_labeller_edge_cases() -> None:
    hands = {
        ((1, 1), (1, 10), (1, 11), (1, 12), (1, 13)): 9,  # royal flush
        ((2, 1), (2, 2), (2, 3), (2, 4), (2, 5)): 8,  # ace-low straight flush
        ((1, 1), (2, 10), (1, 11), (1, 12), (1, 13)): 4,  # broadway straight
        ((1, 11), (2, 12), (1, 13), (1, 1), (1, 2)): 0,  # no wrap-around
        ((1, 3), (2, 3), (3, 3), (4, 3), (1, 9)): 7,
        ((1, 3), (2, 3), (3, 3), (4, 9), (1, 9)): 6,
        ((1, 3), (1, 5), (1, 7), (1, 9), (1, 12)): 5,
        ((1, 3), (2, 3), (3, 3), (4, 8), (1, 9)): 3,
        ((1, 3), (2, 3), (3, 8), (4, 8), (1, 9)): 2,
        ((1, 3), (2, 3), (3, 7), (4, 8), (1, 9)): 1,
    }
    arr = np.array(list(hands))
    np.testing.assert_array_equal(poker_labels(arr[:, :, 0], arr[:, :, 1]), list(hands.values()))


def test_generated_poker_frequencies_match_probabilities() -> None:
    readme = [
        0.501177,
        0.422569,
        0.047539,
        0.021128,
        0.003925,
        0.001965,
        0.001441,
        0.000240,
        1.39e-5,
        1.5e-6,
    ]
    np.testing.assert_allclose(CLASS_PROBABILITIES, readme, rtol=1e-3, atol=1e-7)  # README rounds
    n = 1_000_000
    suits, ranks = generate_hands(n, np.random.default_rng(0))
    cards = (suits.astype(np.int64) - 1) * 13 + ranks - 1
    assert (np.diff(np.sort(cards, axis=1), axis=1) > 0).all(), "no repeated card within a hand"
    counts = np.bincount(poker_labels(suits, ranks), minlength=10)
    expected = np.array(CLASS_PROBABILITIES) * n
    # Pool the three rarest classes so every expected count is well above 5.
    obs = np.append(counts[:7], counts[7:].sum())
    exp = np.append(expected[:7], expected[7:].sum())
    assert stats.chisquare(obs, exp).pvalue > 1e-3
    # Each position holds a uniformly random card.
    assert stats.chisquare(np.bincount(cards[:, 4], minlength=52)).pvalue > 1e-3


def test_poker_default_test_set_is_generated(
    bundles: dict[str, DataBundle], data_mirror: Path
) -> None:
    b = bundles["poker"]
    assert b.notes["test_source"] == "generated" and b.notes["test_size"] == 1_000_000
    x = b.test[0][:1000]
    assert (x.sum(1) == 10).all() and (x.reshape(-1, 5, 17)[:, :, :4].sum(2) == 1).all()
    # The generated test set comes from its own fixed seed, not the split seed.
    a = load_dataset("poker", data_dir=data_mirror, seed=1, generated_test_size=5_000)
    c = load_dataset("poker", data_dir=data_mirror, seed=2, generated_test_size=5_000)
    torch.testing.assert_close(a.test[0], c.test[0])
    assert not torch.equal(a.val[1], c.val[1])
    with pytest.raises(DataError, match=r"poker-hand-testing\.data"):
        load_dataset("poker", data_dir=data_mirror, test="real")


def _write_hands(path: Path, suits: np.ndarray, ranks: np.ndarray, labels: np.ndarray) -> None:
    table = np.empty((len(labels), 11), dtype=np.int64)
    table[:, 0:10:2], table[:, 1:10:2], table[:, 10] = suits, ranks, labels
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(path, table, fmt="%d", delimiter=",")


def test_poker_real_test_file_is_used_and_validated(
    tmp_path: Path, data_mirror: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(poker_mod, "N_TEST_FILE", 1_000)  # a small stand-in for the 1,000,000 rows
    monkeypatch.setenv("AUTOSIZE_DATA_DIR", str(data_mirror))
    suits, ranks = generate_hands(1_000, np.random.default_rng(7))
    labels = poker_labels(suits, ranks)
    real = tmp_path / "poker/poker-hand-testing.data"
    _write_hands(real, suits, ranks, labels)
    b = load_dataset("poker", data_dir=tmp_path)
    assert b.notes["test_source"] == "real" and b.notes["test_size"] == 1_000
    np.testing.assert_array_equal(b.test[1].numpy(), labels)
    assert (
        load_dataset("poker", data_dir=tmp_path, test="generated", generated_test_size=10).notes[
            "test_source"
        ]
        == "generated"
    )
    labels[5] = (labels[5] + 1) % 10
    _write_hands(real, suits, ranks, labels)
    with pytest.raises(
        DataError, match=r"1 labels disagree with the poker rules \(first at row 6\)"
    ):
        load_dataset("poker", data_dir=tmp_path)


def test_add10_formula_and_noise_floor(bundles: dict[str, DataBundle]) -> None:
    b = bundles["add10"]
    mean = np.array(b.preprocessing.steps["mean"])
    std = np.array(b.preprocessing.steps["std"])
    _standardised_by_train(b.train[0], b.val[0], slice(None))
    for split in ("train", "test"):
        x, y = b.split(split)
        raw = x.double().numpy() * std + mean
        assert raw.min() > -1e-6 and raw.max() < 1 + 1e-6
        mse = float(np.mean((add10_function(raw) - y.double().numpy()) ** 2))
        assert 0.93 < mse < 1.07, (
            f"{split}: the true function should reach the noise floor, got {mse}"
        )
    assert b.target_mean == pytest.approx(float(b.train[1].double().mean()), abs=1e-4)
    np.testing.assert_allclose(
        add10_function(np.full((1, 10), 0.5)), [10 * np.sin(np.pi / 4) + 7.5]
    )


# -- files: resolution, checksums, errors ------------------------------------------------------


def test_reads_missing_files_from_env_mirror(
    tmp_path: Path, data_mirror: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTOSIZE_DATA_ROOT", str(tmp_path))
    monkeypatch.setenv("AUTOSIZE_DATA_DIR", str(data_mirror))
    b = load_dataset("airfoil")
    assert b.sizes["test"] == 263
    assert not any(tmp_path.iterdir()), "nothing is copied into the root"


def test_missing_file_names_file_root_and_fetch_command(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        load_dataset("census", data_dir=tmp_path)
    msg = str(info.value)
    assert "adult/adult.data" in msg and str(tmp_path) in msg
    assert "autosize data fetch census" in msg
    assert "\n" not in msg


def test_default_root_is_cwd_datasets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from autosize.data import data_root

    monkeypatch.chdir(tmp_path)
    assert data_root() == Path("datasets")
    with pytest.raises(DataError, match=str(tmp_path / "datasets")):
        load_dataset("airfoil")


@pytest.mark.parametrize("damage", ["truncated", "altered"])
def test_corrupted_copy_is_refused(tmp_path: Path, data_mirror: Path, damage: str) -> None:
    dest = tmp_path / AIRFOIL
    dest.parent.mkdir(parents=True)
    shutil.copyfile(data_mirror / AIRFOIL, dest)
    assert load_dataset("airfoil", data_dir=tmp_path).sizes["test"] == 263  # a good copy loads
    data = bytearray(dest.read_bytes())
    if damage == "truncated":
        data = data[: len(data) // 2]
    else:
        data[100] = ord("9") if data[100] != ord("9") else ord("8")  # same size
    dest.write_bytes(bytes(data))
    st = dest.stat()
    os.utime(
        dest, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000)
    )  # mtime moves even on coarse clocks
    with pytest.raises(DataError) as info:
        load_dataset("airfoil", data_dir=tmp_path)
    msg = str(info.value)
    found = file_digest(dest)
    assert str(dest) in msg and AIRFOIL_SHA in msg and found in msg and found != AIRFOIL_SHA


def test_verification_is_cached(
    tmp_path: Path, data_mirror: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    from autosize.data import files

    dest = tmp_path / AIRFOIL
    dest.parent.mkdir(parents=True)
    shutil.copyfile(data_mirror / AIRFOIL, dest)
    calls = []
    real = hashlib.sha256
    monkeypatch.setattr(files.hashlib, "sha256", lambda *a: calls.append(1) or real(*a))
    load_dataset("airfoil", data_dir=tmp_path)
    load_dataset("airfoil", data_dir=tmp_path)
    assert len(calls) == 1
