"""Your own table: a CSV or Parquet file with a target column (``[data] name = "table"``).

Columns:

* ``target`` is what is predicted. The task is classification when the target
  is text (or true/false) or has at most :data:`MAX_CLASSES` integer levels, and
  regression otherwise, unless ``task`` says which; ``task = "classification"`` on
  numbers that are a quantity (more than :data:`MAX_CLASSES` distinct values, and
  fractions or more distinct values than half the rows) is refused. Rows without a
  target are dropped (counted in the bundle's notes).
* Every other column is an input, except those in ``drop`` and identifiers: a column
  with a different value in every row (at least :data:`MIN_ID_ROWS` rows, none missing)
  that is text and not dates, or whole numbers named like an id (``id``, ``user_id``,
  ``PassengerId``) or, in :data:`MIN_DENSE_ID_ROWS` rows or more, spanning less than
  twice the row count (row numbers). They are left out with a logged line;
  ``identifiers`` names them instead (``[]``: none). Text columns of dates become numbers
  (see :mod:`autosize.data.table_transform`). Non-numeric columns
  (and those listed in ``categorical``) are one-hot encoded with scikit-learn's
  ``OneHotEncoder(handle_unknown="ignore")``: a level never seen in training
  encodes as all zeros. Numeric columns are imputed with the training median by
  ``SimpleImputer(add_indicator=True)`` (a 0/1 "was missing" column for each
  column with gaps in training) and standardised by ``StandardScaler`` with
  training statistics. A missing categorical value is a level of its own.

Splits (row indices into the file, seeded):

* test: the file ``test_path`` if given, else a held-out ``test_fraction``
  (default 0.2) of the rows, stratified by class for classification, drawn with
  a fixed seed (:data:`TEST_SEED`) so every study on the file sees the same test
  rows (as for the six benchmark datasets);
* validation: the file ``val_path`` if given, else ``val_fraction`` (default 0.2)
  of the remaining rows, stratified, drawn with the study's seed;
* ``group``: a column whose values are held out whole (every row of a group lands
  in one split, as Airfoil's chord); the column stays an input unless it is also
  in ``drop``.

The fitted preprocessing is plain JSON (:class:`TableTransform`, no pickle): the
study records it, export carries it, and ``predict`` replays it on raw rows with
numpy alone. The bundle's own tensors come from that same replay, so training
and prediction cannot drift apart; a test checks the replay against
scikit-learn's fitted transformers.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch
from pandas.api.types import is_bool_dtype, is_numeric_dtype

from autosize.data.bundle import DataBundle, Preprocessing, Task, target_scaling
from autosize.data.columns import (
    MAX_CLASSES,
    check_continuous_classes,
    identifier_columns,
    infer_task,
)
from autosize.data.options import check_choice, check_fraction
from autosize.data.splits import TEST_SEED, holdout, split_rows
from autosize.data.table_transform import MISSING, TableTransform, as_text, label, text_columns
from autosize.errors import DataError

__all__ = [
    "MAX_CLASSES",
    "MISSING",
    "TABLE_SUFFIXES",
    "TEST_SEED",
    "TableOptions",
    "TableTransform",
    "holdout",
    "identifier_columns",
    "infer_task",
    "load_table",
    "read_table",
]

log = logging.getLogger(__name__)

TABLE_SUFFIXES: Mapping[str, Literal["csv", "parquet"]] = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def _names(dataset: str, key: str, value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
        raise DataError(f"option {key}={value!r} for dataset {dataset!r}: expected column names")
    return tuple(value)


@dataclass(frozen=True, kw_only=True)
class TableOptions:
    """Options of ``load_dataset("table", ...)`` (the ``[data]`` keys of a config)."""

    path: str | None = None
    target: str | None = None
    task: Task | None = None
    categorical: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()
    val_fraction: float = 0.2
    test_fraction: float = 0.2
    group: str | None = None
    val_path: str | None = None
    test_path: str | None = None
    # None: identifier columns found by the rule above; a list: exactly these
    identifiers: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        for key in ("path", "target"):
            value = getattr(self, key)
            if not isinstance(value, str) or not value:
                raise DataError(f"option {key}={value!r} for dataset 'table': required (a string)")
        for key in ("group", "val_path", "test_path"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, str) or not value):
                raise DataError(f"option {key}={value!r} for dataset 'table': expected a string")
        if self.task is not None:
            check_choice("table", "task", self.task, ("classification", "regression"))
        check_fraction("table", "val_fraction", self.val_fraction)
        check_fraction("table", "test_fraction", self.test_fraction)
        object.__setattr__(self, "categorical", _names("table", "categorical", self.categorical))
        object.__setattr__(self, "drop", _names("table", "drop", self.drop))
        if self.identifiers is not None:
            ids = _names("table", "identifiers", self.identifiers)
            object.__setattr__(self, "identifiers", ids)
            if self.target in ids:
                raise DataError(
                    f"option identifiers: {self.target!r} is the target; it cannot be left out"
                )
        if self.target in self.drop:
            raise DataError(f"option drop: {self.target!r} is the target; it cannot be dropped")


# --------------------------------------------------------------------------- reading


def read_table(path: str | Path, *, text: Sequence[str] = ()) -> pd.DataFrame:
    """A CSV or Parquet file as a DataFrame; anything else is a one-line DataError.

    ``text``: columns a CSV's cells are read as text from (not as numbers, should they all
    look like numbers: "007" stays "007"); Parquet keeps its own types."""
    path = Path(path)
    kind = TABLE_SUFFIXES.get(path.suffix.lower())
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, not a CSV or Parquet file")
    if kind is None:
        raise DataError(
            f"{path}: not a CSV or Parquet file (expected a .csv, .parquet or .pq name, "
            f"got {path.suffix or 'no suffix'!r})"
        )
    try:
        df = (
            pd.read_csv(path, dtype=dict.fromkeys(text, str) or None)
            if kind == "csv"
            else pd.read_parquet(path)
        )
    except ImportError as exc:
        raise DataError(f"{path}: reading Parquet needs pyarrow ({exc})") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty") from None
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: cannot read as {kind.upper()} ({first})") from None
    if len(df) == 0:
        raise DataError(f"{path}: no rows")
    df.columns = [str(c) for c in df.columns]
    return df


def file_digest(path: str | Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _check_columns(df: pd.DataFrame, names: Sequence[str], path: Path, key: str) -> None:
    for name in names:
        if name not in df.columns:
            listed = ", ".join(map(repr, df.columns[:20])) + (", ..." if df.shape[1] > 20 else "")
            raise DataError(f"{path}: no column {name!r} ({key}); its columns: {listed}")


# --------------------------------------------------------------------------- loading


def _resolve(path: str) -> Path:
    return Path(path).expanduser().resolve()


def load_table(root: Path, *, seed: int, options: TableOptions) -> DataBundle:
    """Read, split and preprocess a table (see the module docstring)."""
    del root  # a table names its own file
    assert options.path is not None and options.target is not None
    path = _resolve(options.path)
    df = read_table(path)
    target = options.target
    _check_columns(df, [target], path, "the target")
    _check_columns(df, options.categorical, path, "data.categorical")
    _check_columns(df, options.drop, path, "data.drop")
    if options.group is not None:
        _check_columns(df, [options.group], path, "data.group")
    if options.identifiers is not None:
        _check_columns(df, options.identifiers, path, "data.identifiers")
    extra = {
        "val_path": _resolve(options.val_path) if options.val_path else None,
        "test_path": _resolve(options.test_path) if options.test_path else None,
    }
    # The training file's text columns are text in these too ("007" stays "007").
    text = text_columns(df)
    frames = {key: read_table(p, text=text) for key, p in extra.items() if p is not None}
    for key, other in frames.items():
        p = extra[key]
        assert p is not None
        missing = [c for c in df.columns if c not in other.columns and c not in options.drop]
        added = [c for c in other.columns if c not in df.columns]
        if missing:
            raise DataError(f"{p}: no column {missing[0]!r} ({path} has it; {key})")
        if added:
            raise DataError(f"{p}: column {added[0]!r} is not in {path} ({key})")

    unlabelled = df[target].isna().to_numpy()
    if unlabelled.all():
        raise DataError(f"{path}: target column {target!r} has no values")
    dropped = int(unlabelled.sum())
    if dropped:
        log.warning("%s: %d rows without a %r value are left out", path, dropped, target)
        df = df.loc[~unlabelled].reset_index(drop=True)
    for key, other in frames.items():
        if other[target].isna().any():
            raise DataError(
                f"{extra[key]}: column {target!r}: {int(other[target].isna().sum())} rows have no target value"
            )

    for col in df.columns:
        if col != target and col not in options.drop and df[col].isna().all():
            raise DataError(
                f"{path}: column {col!r} is empty (no value in any row); remove it or list it in data.drop"
            )

    if options.task == "classification":
        check_continuous_classes(df[target], path, target)
    task = options.task or infer_task(df[target])
    skip = (
        target,
        *options.drop,
        *options.categorical,
        *([options.group] if options.group else []),
    )
    identifiers = (
        identifier_columns(df, skip=skip) if options.identifiers is None else options.identifiers
    )
    for col in identifiers if options.identifiers is None else ():
        log.warning(
            "%s: column %r left out: a different value in every row, an identifier "
            "(data.identifiers names them instead; [] keeps every column)",
            path,
            col,
        )
    labels = as_text(df[target])
    classes: tuple[str | int, ...] | None = None
    if task == "classification":
        levels = sorted(set(labels))
        integral = all(_is_int(t) for t in levels) and is_numeric_dtype(df[target].dtype)
        if integral:
            levels = sorted(levels, key=int)
        if len(levels) < 2:
            raise DataError(
                f"{path}: target column {target!r} has one class ({levels[0]!r}); "
                "a classifier needs at least two"
            )
        classes = tuple(label(t, integral) for t in levels)
    else:
        if not is_numeric_dtype(df[target].dtype) or is_bool_dtype(df[target].dtype):
            raise DataError(
                f"{path}: target column {target!r} is not numeric (value {labels[0]!r}); "
                "regression needs numbers (or set task = 'classification')"
            )
        if df[target].nunique() < 2:
            raise DataError(f"{path}: target column {target!r} has one value ({labels[0]!r})")

    strata = None
    if classes is not None:
        index = {str(c): i for i, c in enumerate(classes)}
        strata = np.asarray([index[t] for t in labels])
    groups = as_text(df[options.group]) if options.group is not None else None
    if groups is not None:
        groups = np.where(pd.isna(groups), MISSING, groups).astype(object)
    notes: dict[str, str | int | float | bool | None] = {"path": str(path)}
    train_rows, val_rows, test_rows, stratified = split_rows(
        np.arange(len(df)),
        seed=seed,
        strata=strata,
        groups=groups,
        test_fraction=options.test_fraction,
        val_fraction=options.val_fraction,
        group=options.group,
        files={key: str(extra[key]) for key in frames},
        notes=notes,
        where=str(path),
    )
    if identifiers:
        notes["identifiers"] = ", ".join(identifiers)
    if options.group is not None:
        notes["group"] = options.group
    elif strata is not None:
        notes["stratified"] = stratified
    notes.update(split_seed=seed, test_seed=TEST_SEED, rows=len(df))
    if dropped:
        notes["rows_without_target"] = dropped

    train_df = df.iloc[train_rows]
    if strata is not None and len(np.unique(strata[train_rows])) < 2:  # classification
        raise DataError(f"{path}: the training rows hold one class of {target!r}")
    drop = (*options.drop, *(c for c in identifiers if c not in options.drop))
    for col in train_df.columns:
        if col != target and col not in drop and train_df[col].isna().all():
            raise DataError(
                f"{path}: column {col!r} has no value in the training rows; remove it or list it in data.drop"
            )
    transform = TableTransform.fit(
        train_df,
        target=target,
        task=task,
        classes=classes,
        categorical=options.categorical,
        drop=drop,
        source=str(path),
    )

    def split(frame: pd.DataFrame, source: str) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.from_numpy(transform.transform(frame, source=source))
        y = torch.from_numpy(transform.encode_target(frame[target], source=source))
        return x, y

    train = split(train_df, str(path))
    val = (
        split(frames["val_path"], str(extra["val_path"]))
        if val_rows is None
        else split(df.iloc[val_rows], str(path))
    )
    test = (
        split(frames["test_path"], str(extra["test_path"]))
        if test_rows is None
        else split(df.iloc[test_rows], str(path))
    )
    digest = hashlib.sha256(file_digest(path).encode())
    for p in extra.values():
        if p is not None:
            digest.update(file_digest(p).encode())
    notes["sha256"] = digest.hexdigest()
    target_mean, target_std = target_scaling(train[1], task)
    return DataBundle(
        name=path.stem,
        task=task,
        train=train,
        val=val,
        test=test,
        input_shape=(transform.n_features,),
        numeric_features=len(transform.numeric),  # first, before missing flags and one-hot codes
        n_outputs=len(classes) if classes is not None else 1,
        preprocessing=Preprocessing(kind="table", steps=transform.to_dict()),
        target_mean=target_mean,
        target_std=target_std,
        notes=notes,
    )


def _is_int(text: str) -> bool:
    return text.lstrip("-").isdigit()
