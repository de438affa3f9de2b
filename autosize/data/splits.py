"""How a table's rows are split into training, validation and test: held out at random
(stratified by class where every class allows it), or by whole groups (``[data] group``), or
given as files. The test rows are held out with a fixed seed (:data:`TEST_SEED`), the
validation rows with the study's."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from autosize.errors import DataError

__all__ = ["TEST_SEED", "group_holdout", "holdout", "split_rows"]

TEST_SEED = 0


def holdout(
    rows: np.ndarray, fraction: float, seed: int, strata: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, bool]:
    """(kept, held out, stratified) row indices, both sorted."""
    from sklearn.model_selection import train_test_split

    n_out = min(max(1, round(len(rows) * fraction)), len(rows) - 1)
    if strata is not None:
        try:
            kept, out = train_test_split(
                rows, test_size=n_out, random_state=seed, stratify=strata[rows]
            )
            return np.sort(kept), np.sort(out), True
        except ValueError:  # a class with one row, or fewer held-out rows than classes
            pass
    perm = np.random.default_rng(seed).permutation(rows)
    return np.sort(perm[n_out:]), np.sort(perm[:n_out]), False


def group_holdout(
    rows: np.ndarray, groups: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Whole groups held out until they hold ``fraction`` of the rows (at least one group)."""
    present = np.unique(groups[rows])
    order = np.random.default_rng(seed).permutation(present)
    want = fraction * len(rows)
    chosen: list[object] = []
    count = 0
    for g in order[:-1]:  # at least one group stays
        if count >= want and chosen:
            break
        chosen.append(g)
        count += int(np.sum(groups[rows] == g))
    held = np.isin(groups[rows], np.asarray(chosen, dtype=object))
    return rows[~held], rows[held]


def split_rows(
    rows: np.ndarray,
    *,
    seed: int,
    strata: np.ndarray | None,
    groups: np.ndarray | None,
    test_fraction: float,
    val_fraction: float,
    group: str | None,
    files: Mapping[str, str],
    notes: dict[str, str | int | float | bool | None],
    where: str,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, bool]:
    """(training, validation, test rows, stratified) of a table's ``rows``; the validation
    or test rows are None where ``files`` gives that split (``val_path``, ``test_path``).
    What was done is added to ``notes``."""
    stratified = strata is not None
    # The rows held out for validation and test; None where a file gives that split.
    val_rows: np.ndarray | None = None
    test_rows: np.ndarray | None = None
    if "test_path" in files:
        pool = rows
        notes["test_path"] = files["test_path"]
    elif groups is not None:
        pool, test_rows = group_holdout(rows, groups, test_fraction, TEST_SEED)
        notes["test_fraction"] = test_fraction
    else:
        pool, test_rows, ok = holdout(rows, test_fraction, TEST_SEED, strata)
        stratified = stratified and ok
        notes["test_fraction"] = test_fraction
    if "val_path" in files:
        train_rows = pool
        notes["val_path"] = files["val_path"]
    elif groups is not None:
        if len(np.unique(groups[pool])) < 2:
            raise DataError(
                f"{where}: column {group!r} (data.group) has too few groups to hold "
                "out whole ones for validation and test (at least 3 needed)"
            )
        train_rows, val_rows = group_holdout(pool, groups, val_fraction, seed)
        notes["val_fraction"] = val_fraction
    else:
        train_rows, val_rows, ok = holdout(pool, val_fraction, seed, strata)
        stratified = stratified and ok
        notes["val_fraction"] = val_fraction
    return train_rows, val_rows, test_rows, stratified
