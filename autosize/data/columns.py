"""What a table's columns are, read from their values: the task a target asks for
(classes or a quantity), and the columns that identify rows rather than describe them.

An **identifier** is a column with a different value in every row and none missing (in a
table of at least :data:`MIN_ID_ROWS` rows): text that is not dates, whole numbers named
like an id (``id``, ``user_id``, ``PassengerId``), or whole numbers spanning less than
twice the row count (row numbers, from :data:`MIN_DENSE_ID_ROWS` rows on)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_integer_dtype, is_numeric_dtype

from autosize.data.bundle import Task
from autosize.data.dates import date_format
from autosize.errors import DataError

__all__ = [
    "MAX_CLASSES",
    "MIN_DENSE_ID_ROWS",
    "MIN_ID_ROWS",
    "check_continuous_classes",
    "identifier_columns",
    "infer_task",
]

# An integer target with at most this many levels is a class label, not a quantity.
MAX_CLASSES = 20
# Identifier columns are looked for in tables of at least this many rows; whole numbers
# not named like an id count as row numbers from MIN_DENSE_ID_ROWS rows on.
MIN_ID_ROWS = 20
MIN_DENSE_ID_ROWS = 100
_ID_NAME = re.compile(r"(?i:id)|.*[_\-\s.](?i:id)|.*[a-z0-9](Id|ID)")


def infer_task(target: pd.Series) -> Task:
    """Classification for text, true/false or few integer levels; regression otherwise."""
    if is_bool_dtype(target.dtype) or not is_numeric_dtype(target.dtype):
        return "classification"
    values = target.dropna().to_numpy(dtype=np.float64)
    integral = is_integer_dtype(target.dtype) or bool(np.all(values == np.round(values)))
    if integral and len(np.unique(values)) <= MAX_CLASSES:
        return "classification"
    return "regression"


def identifier_columns(df: pd.DataFrame, *, skip: Sequence[str] = ()) -> tuple[str, ...]:
    """The columns of ``df`` (not in ``skip``) that identify rows rather than describe them
    (the rule in this module's docstring)."""
    n = len(df)
    if n < MIN_ID_ROWS:
        return ()
    found = []
    for col in df.columns:
        values = df[col]
        if col in skip or is_bool_dtype(values.dtype) or values.isna().any():
            continue
        if values.nunique() != n:
            continue
        if is_numeric_dtype(values.dtype):
            x = values.to_numpy(dtype=np.float64)
            if not np.all(x == np.round(x)):
                continue  # a measurement
            named = _ID_NAME.fullmatch(str(col)) is not None
            dense = n >= MIN_DENSE_ID_ROWS and float(x.max() - x.min()) < 2 * n
            if named or dense:
                found.append(col)
        elif date_format(values) is None:  # unique timestamps are dates, not identifiers
            found.append(col)
    return tuple(found)


def check_continuous_classes(target: pd.Series, path: Path, name: str) -> None:
    """Refuse ``task = "classification"`` on a target that holds a quantity."""
    if is_bool_dtype(target.dtype) or not is_numeric_dtype(target.dtype):
        return
    values = target.dropna().to_numpy(dtype=np.float64)
    distinct = len(np.unique(values))
    fractional = not bool(np.all(values == np.round(values)))
    if distinct > MAX_CLASSES and (fractional or distinct > len(values) / 2):
        raise DataError(
            f"{path}: target column {name!r} holds {distinct} distinct numbers in "
            f"{len(values)} rows, a quantity rather than classes; use task = 'regression' "
            "(--task regression), or bin the values into classes first"
        )
