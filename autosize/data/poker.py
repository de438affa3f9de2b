"""UCI Poker Hand: the class of a five-card hand (10 classes).

The 25,010-row training file gives train and a seeded validation split
(``val_fraction``, default 0.2). The test split is, with ``test="auto"``, the
real 1,000,000-row ``poker-hand-testing.data`` when it is in the data root or
the mirror, else a generated test set of the same distribution: uniformly
random ordered hands of five distinct cards, labelled by :func:`poker_labels`,
from a fixed seed (:data:`TEST_SEED`, independent of the split seed), with
``generated_test_size`` hands (default 1,000,000, the size of the real file).
``notes`` records ``test_source`` ("real" or "generated") and ``test_size``.

The real test file has no pinned checksum (it is not in the mirror), so it is
validated by content instead: row count, value ranges, distinct cards, and
every label agreeing with the rules. Inputs are 85 one-hot features: for each
of the five cards, 4 for the suit then 13 for the rank.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch

from autosize.data.bundle import DataBundle, Preprocessing
from autosize.data.files import file_digest, find_file, verified_path
from autosize.data.options import check_choice, check_count, check_fraction, split_validation
from autosize.data.registry import UCI, dataset_info
from autosize.errors import DataError

__all__ = [
    "CLASS_NAMES",
    "CLASS_PROBABILITIES",
    "TEST_FILE",
    "TEST_SEED",
    "PokerOptions",
    "generate_hands",
    "load_poker",
    "one_hot",
    "poker_labels",
    "read_hands",
]

TEST_FILE = "poker/poker-hand-testing.data"
TEST_SEED = 1_000_003
N_TRAIN_FILE = 25_010
N_TEST_FILE = 1_000_000
N_FEATURES = 85
CLASS_NAMES = (
    "nothing", "one pair", "two pairs", "three of a kind", "straight",
    "flush", "full house", "four of a kind", "straight flush", "royal flush",
)  # fmt: skip
# Exact probabilities of a uniformly random five-card hand (counts over C(52, 5)).
_COMBOS = np.array(
    [1302540, 1098240, 123552, 54912, 10200, 5108, 3744, 624, 36, 4], dtype=np.float64
)
CLASS_PROBABILITIES = tuple((_COMBOS / _COMBOS.sum()).tolist())


@dataclass(frozen=True, kw_only=True)
class PokerOptions:
    test: Literal["auto", "real", "generated"] = "auto"
    generated_test_size: int = N_TEST_FILE
    val_fraction: float = 0.2

    def __post_init__(self) -> None:
        check_choice("poker", "test", self.test, ("auto", "real", "generated"))
        check_count("poker", "generated_test_size", self.generated_test_size)
        check_fraction("poker", "val_fraction", self.val_fraction)


def poker_labels(suits: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """Hand classes (int64, 0-9) by the UCI rules for suits 1-4 and ranks 1-13 (Ace = 1).

    ``suits`` and ``ranks`` have shape (n, 5). A straight is five distinct ranks
    spanning 4, or A-10-J-Q-K; there is no wrap-around.
    """
    n = suits.shape[0]
    rank_idx = ranks.astype(np.int64) - 1
    counts = np.bincount((np.arange(n)[:, None] * 13 + rank_idx).ravel(), minlength=n * 13)
    counts = counts.reshape(n, 13)
    top = np.sort(counts, axis=1)[:, ::-1]
    first, second = top[:, 0], top[:, 1]

    flush = (suits == suits[:, :1]).all(axis=1)
    distinct = first == 1
    span4 = ranks.max(axis=1) - ranks.min(axis=1) == 4
    broadway = distinct & (counts[:, [0, 9, 10, 11, 12]] == 1).all(axis=1)  # A,10,J,Q,K
    straight = distinct & (span4 | broadway)

    labels = np.zeros(n, dtype=np.int64)
    labels[(first == 2) & (second == 1)] = 1
    labels[(first == 2) & (second == 2)] = 2
    labels[(first == 3) & (second == 1)] = 3
    labels[straight & ~flush] = 4
    labels[flush & ~straight] = 5
    labels[(first == 3) & (second == 2)] = 6
    labels[first == 4] = 7
    labels[straight & flush & ~broadway] = 8
    labels[flush & broadway] = 9
    return labels


def generate_hands(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` uniformly random ordered hands of five distinct cards: (suits, ranks), int8 (n, 5)."""
    cards = np.empty((n, 5), dtype=np.int64)
    todo = np.arange(n)
    while todo.size:
        draw = rng.integers(0, 52, size=(todo.size, 5))
        s = np.sort(draw, axis=1)
        ok = (s[:, 1:] != s[:, :-1]).all(axis=1)  # rejection keeps the ordered draw uniform
        cards[todo[ok]] = draw[ok]
        todo = todo[~ok]
    return (cards // 13 + 1).astype(np.int8), (cards % 13 + 1).astype(np.int8)


def read_hands(path: Path, *, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(suits, ranks, labels) of a UCI poker file, checked for shape and value ranges."""
    try:
        table = pd.read_csv(path, header=None, dtype=np.int64).to_numpy()
    except (ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"cannot parse {path}: {exc}") from exc
    if table.shape != (rows, 11):
        raise DataError(f"{path}: expected {rows} rows of 11 integers, found shape {table.shape}")
    suits, ranks, labels = table[:, 0:10:2], table[:, 1:10:2], table[:, 10]
    if suits.min() < 1 or suits.max() > 4 or ranks.min() < 1 or ranks.max() > 13:
        raise DataError(f"{path}: suits must be 1-4 and ranks 1-13")
    if labels.min() < 0 or labels.max() > 9:
        raise DataError(f"{path}: labels must be 0-9")
    return suits, ranks, labels


def one_hot(suits: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """The 85 one-hot features (float32): per card, suit (4) then rank (13)."""
    n = suits.shape[0]
    x = np.zeros((n, N_FEATURES), dtype=np.float32)
    rows = np.arange(n)
    for card in range(5):
        base = 17 * card
        x[rows, base + suits[:, card].astype(np.int64) - 1] = 1.0
        x[rows, base + 4 + ranks[:, card].astype(np.int64) - 1] = 1.0
    return x


def _real_test(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    suits, ranks, labels = read_hands(path, rows=N_TEST_FILE)
    cards = np.sort((suits - 1) * 13 + (ranks - 1), axis=1)
    if (cards[:, 1:] == cards[:, :-1]).any():
        raise DataError(f"{path}: a hand repeats a card")
    wrong = np.flatnonzero(poker_labels(suits, ranks) != labels)
    if wrong.size:
        raise DataError(
            f"{path}: {wrong.size} labels disagree with the poker rules (first at row {wrong[0] + 1})"
        )
    return suits, ranks, labels


def load_poker(root: Path, *, seed: int, options: PokerOptions) -> DataBundle:
    (file,) = dataset_info("poker").files
    suits, ranks, labels = read_hands(verified_path(file, root, dataset="poker"), rows=N_TRAIN_FILE)
    train, val = split_validation(N_TRAIN_FILE, options.val_fraction, seed)

    notes: dict[str, str | int | float | bool | None] = {
        "val_fraction": options.val_fraction,
        "split_seed": seed,
    }
    real = find_file(TEST_FILE, root) if options.test != "generated" else None
    if options.test == "real" and real is None:
        raise DataError(
            f"missing data file {TEST_FILE} for dataset 'poker' (asked for test='real'): not in the "
            f"data root {root.resolve()} nor the mirror; download {UCI}/{TEST_FILE} into {root / 'poker'}"
        )
    if real is not None:
        t_suits, t_ranks, t_labels = _real_test(real)
        notes.update(test_source="real", test_size=N_TEST_FILE, test_sha256=file_digest(real))
    else:
        n = options.generated_test_size
        t_suits, t_ranks = generate_hands(n, np.random.default_rng(TEST_SEED))
        t_labels = poker_labels(t_suits, t_ranks)
        notes.update(test_source="generated", test_size=n, test_seed=TEST_SEED)

    def split(s: np.ndarray, r: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(one_hot(s, r)), torch.from_numpy(y.astype(np.int64))

    return DataBundle(
        name="poker",
        task="classification",
        train=split(suits[train], ranks[train], labels[train]),
        val=split(suits[val], ranks[val], labels[val]),
        test=split(t_suits, t_ranks, t_labels),
        input_shape=(N_FEATURES,),
        n_outputs=10,
        preprocessing=Preprocessing(
            kind="poker_one_hot", steps={"per_card": ["suit 1-4", "rank 1-13"]}
        ),
        notes=notes,
    )
