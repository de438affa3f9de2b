"""The fitted preprocessing of a table, as plain data (JSON, no pickle).

:class:`TableTransform` is what :func:`autosize.data.table.load_table` fits on the
training rows (scikit-learn's imputer, one-hot encoder and scaler, their fitted
statistics kept as lists) and what ``predict`` replays on raw rows with numpy alone;
the study records it, export carries it. See :mod:`autosize.data.table` for the
columns and splits.

Two kinds of text column are not one-hot encoded level by level:

* a **date or time** column (at least :data:`DATE_SHARE` of its training values parse
  with the format pandas guesses from the first one) becomes numbers: year, month, day,
  day of week, days since 1970-01-01 and, when the training values carry times, the
  hour; they are imputed and standardised like any numeric column;
* a column with more than :data:`MAX_LEVELS` levels keeps its :data:`MAX_LEVELS` most
  frequent ones and encodes every other value (and values training never saw) as one
  level, :data:`OTHER`, so the inputs stay bounded.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype

from autosize.data.bundle import Task
from autosize.data.dates import DATE_SHARE, date_format, date_numbers, parse_dates, parts_of
from autosize.errors import DataError

__all__ = [
    "DATE_SHARE",
    "FORMAT",
    "MAX_LEVELS",
    "MISSING",
    "OTHER",
    "TableTransform",
    "as_text",
    "date_format",
    "label",
    "text_columns",
]

log = logging.getLogger(__name__)

# The level a missing categorical value is imputed with (a category of its own).
MISSING = "<missing>"
# The level every value of a many-level column outside its most frequent ones becomes.
OTHER = "<other>"
MAX_LEVELS = 100
FORMAT = "autosize-table/2"
FORMATS = ("autosize-table/1", FORMAT)  # /1: before dates and grouped levels (read as none)


def as_text(values: pd.Series) -> np.ndarray:
    """One text form per value, the same whichever way a file stored it (an object array,
    None where missing): 3, 3.0 and "3" are all "3"; True is "True"."""
    missing = values.isna().to_numpy()
    out = np.empty(len(values), dtype=object)
    if is_bool_dtype(values.dtype):  # pandas' nullable "boolean" too: pd.NA has no bool()
        flags = values.to_numpy(dtype=object)
        out[:] = [None if m else str(bool(v)) for v, m in zip(flags, missing, strict=True)]
    elif is_numeric_dtype(values.dtype):
        v = values.to_numpy(dtype=np.float64, na_value=np.nan)
        for i, x in enumerate(v):
            if math.isfinite(x) and x == round(x) and abs(x) < 2**53:
                out[i] = str(int(x))
            else:
                out[i] = repr(float(x))
    else:
        out[:] = [str(v) for v in values.astype(object).to_numpy()]
    out[missing] = None
    return out


def text_columns(df: pd.DataFrame) -> tuple[str, ...]:
    """The columns pandas read as text (neither numbers nor flags): read so in every file
    of the same table ("007" stays "007", see ``read_table(text=...)``)."""
    return tuple(
        str(c) for c in df.columns if not (is_bool_dtype(df[c]) or is_numeric_dtype(df[c]))
    )


def label(text: str, integral: bool) -> str | int:
    """A class label as the file wrote it: an integer for integer classes, else text."""
    return int(text) if integral else text


# --------------------------------------------------------------------------- the transform


@dataclass(frozen=True)
class TableTransform:
    """The fitted preprocessing of a table, as plain data (see the module docstring).

    ``transform`` turns raw rows into the network's float32 inputs: numeric columns
    (median-imputed, then the missing indicators, all standardised), then one 0/1
    column per (categorical column, level). ``classes`` are the original class
    labels (index = network output), or ``None`` for regression.
    """

    target: str
    task: Task
    columns: tuple[str, ...]  # every input column the training file had, in its order
    numeric: tuple[str, ...]
    median: tuple[float, ...]
    indicator: tuple[str, ...]  # numeric columns that get a missing-value flag
    mean: tuple[float, ...]  # len(numeric) + len(indicator)
    scale: tuple[float, ...]
    categorical: tuple[str, ...]
    categories: tuple[tuple[str, ...], ...]
    classes: tuple[str | int, ...] | None = None
    drop: tuple[str, ...] = ()
    source: str = ""  # the training file (for messages)
    # Categorical columns the training file held as text: a file to predict on is read with
    # them as text too (read_table(text=...)), or one with only "007"s would read 7, a level
    # training never saw.
    text: tuple[str, ...] = ()
    # Date columns (in ``columns``), the format each is parsed with and the numbers each
    # becomes: ``numeric`` holds them as "<column>.<part>" after the numeric columns.
    dates: tuple[str, ...] = ()
    date_formats: tuple[str, ...] = ()
    date_parts: tuple[tuple[str, ...], ...] = ()
    # Categorical columns whose rarer values (and unseen ones) are the level OTHER.
    grouped: tuple[str, ...] = ()

    @property
    def n_features(self) -> int:
        return len(self.mean) + sum(len(c) for c in self.categories)

    def feature_names(self) -> list[str]:
        names = [*self.numeric, *(f"{c}_missing" for c in self.indicator)]
        for col, levels in zip(self.categorical, self.categories, strict=True):
            names.extend(f"{col}={level}" for level in levels)
        return names

    @classmethod
    def fit(
        cls,
        df: pd.DataFrame,
        *,
        target: str,
        task: Task,
        classes: tuple[str | int, ...] | None,
        categorical: Sequence[str],
        drop: Sequence[str],
        source: str,
    ) -> TableTransform:
        """Fit scikit-learn's imputers, scaler and encoder on ``df`` (the training rows)."""
        from sklearn.impute import SimpleImputer
        from sklearn.preprocessing import OneHotEncoder, StandardScaler

        columns = tuple(c for c in df.columns if c != target and c not in drop)
        formats = {c: date_format(df[c]) for c in columns if c not in categorical}
        dates = tuple(c for c, fmt in formats.items() if fmt is not None)
        cats = tuple(
            c
            for c in columns
            if c not in dates
            and (
                c in categorical or is_bool_dtype(df[c].dtype) or not is_numeric_dtype(df[c].dtype)
            )
        )
        date_formats = tuple(str(formats[c]) for c in dates)
        date_parts = tuple(parts_of(parse_dates(df[c], formats[c] or "")) for c in dates)
        for c, fmt in zip(dates, date_formats, strict=True):
            log.info("%s: column %r read as dates (%s): numbers, not levels", source, c, fmt)
        derived = tuple(
            f"{c}.{p}" for c, parts in zip(dates, date_parts, strict=True) for p in parts
        )
        nums = (*(c for c in columns if c not in cats and c not in dates), *derived)
        median: tuple[float, ...] = ()
        indicator: tuple[str, ...] = ()
        mean: tuple[float, ...] = ()
        scale: tuple[float, ...] = ()
        if nums:
            x = _numeric(df, nums, zip(dates, date_formats, date_parts, strict=True), source)
            imputer = SimpleImputer(strategy="median", add_indicator=True).fit(x)
            scaler = StandardScaler().fit(imputer.transform(x))
            median = tuple(float(v) for v in imputer.statistics_)
            if imputer.indicator_ is not None:
                indicator = tuple(nums[i] for i in imputer.indicator_.features_)
            mean = tuple(float(v) for v in scaler.mean_)
            scale = tuple(float(v) for v in scaler.scale_)
        categories: tuple[tuple[str, ...], ...] = ()
        grouped: list[str] = []
        if cats:
            text = _text_frame(df, cats)
            text = np.where(pd.isna(text), MISSING, text)
            for j, col in enumerate(cats):
                counts = pd.Series(text[:, j]).value_counts()
                if len(counts) > MAX_LEVELS:
                    # the most frequent levels, ties by name: the same on every run
                    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
                    kept = {str(v) for v, _ in ranked[:MAX_LEVELS]}
                    text[:, j] = np.where(np.isin(text[:, j], list(kept)), text[:, j], OTHER)
                    grouped.append(col)
                    log.warning(
                        "%s: column %r has %d levels: the %d most frequent kept, the rest "
                        "encoded as one level %r",
                        source, col, len(counts), MAX_LEVELS, OTHER,
                    )  # fmt: skip
            encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
            encoder.fit(text)
            categories = tuple(tuple(str(v) for v in levels) for levels in encoder.categories_)
        return cls(
            target=target,
            task=task,
            columns=columns,
            numeric=nums,
            median=median,
            indicator=indicator,
            mean=mean,
            scale=scale,
            categorical=cats,
            categories=categories,
            classes=classes,
            drop=tuple(drop),
            source=source,
            text=tuple(c for c in text_columns(df) if c in cats),
            dates=dates,
            date_formats=date_formats,
            date_parts=date_parts,
            grouped=tuple(grouped),
        )

    def transform(self, df: pd.DataFrame, *, source: str = "input") -> np.ndarray:
        """The network's inputs for raw rows ``df`` (float32, one row per row)."""
        missing = [c for c in self.columns if c not in df.columns]
        if missing:
            raise DataError(
                f"{source}: no column {missing[0]!r} (the training file {self.source} has it)"
                + (f"; {len(missing) - 1} more missing" if len(missing) > 1 else "")
            )
        parts: list[np.ndarray] = []
        if self.numeric:
            dates = zip(self.dates, self.date_formats, self.date_parts, strict=True)
            x = _numeric(df, self.numeric, dates, source)
            gaps = np.isnan(x)
            x = np.where(gaps, np.asarray(self.median), x)
            flags = [gaps[:, self.numeric.index(c)].astype(np.float64) for c in self.indicator]
            z = np.column_stack([x, *flags]) if flags else x
            parts.append((z - np.asarray(self.mean)) / np.asarray(self.scale))
        if self.categorical:
            text = _text_frame(df, self.categorical)
            for j, levels in enumerate(self.categories):
                col = np.where(pd.isna(text[:, j]), MISSING, text[:, j])
                if self.categorical[j] in self.grouped:
                    col = np.where(np.isin(col, list(levels)), col, OTHER)
                parts.append(col[:, None] == np.asarray(levels, dtype=object)[None, :])
        if not parts:
            return np.zeros((len(df), 0), dtype=np.float32)
        return np.hstack([p.astype(np.float64) for p in parts]).astype(np.float32)

    @staticmethod
    def _numbers(values: pd.Series, column: str, source: str) -> np.ndarray:
        if is_numeric_dtype(values.dtype) and not is_bool_dtype(values.dtype):
            x = values.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            parsed = pd.to_numeric(values, errors="coerce")
            bad = parsed.isna() & values.notna()
            if bad.any():
                raise DataError(
                    f"{source}: column {column!r}: value {values[bad].iloc[0]!r} is not a number "
                    "(the column is numeric in training)"
                )
            x = parsed.to_numpy(dtype=np.float64, na_value=np.nan)
        _check_finite(x, column, source)
        return x

    def encode_target(self, values: pd.Series, *, source: str) -> np.ndarray:
        """Class indices (int64) or values (float32) of a target column."""
        if self.task == "regression":
            return self._numbers(values, self.target, source).astype(np.float32)
        assert self.classes is not None
        index = {str(c): i for i, c in enumerate(self.classes)}
        text = as_text(values)
        out = np.empty(len(text), dtype=np.int64)
        for i, t in enumerate(text):
            if t not in index:
                raise DataError(
                    f"{source}: column {self.target!r}: class {t!r} does not occur in {self.source}"
                )
            out[i] = index[t]
        return out

    def to_dict(self) -> dict[str, object]:
        return {
            "format": FORMAT,
            "target": self.target,
            "task": self.task,
            "columns": list(self.columns),
            "numeric": list(self.numeric),
            "median": list(self.median),
            "indicator": list(self.indicator),
            "mean": list(self.mean),
            "scale": list(self.scale),
            "categorical": list(self.categorical),
            "categories": [list(c) for c in self.categories],
            "classes": None if self.classes is None else list(self.classes),
            "drop": list(self.drop),
            "source": self.source,
            "text": list(self.text),
            "dates": list(self.dates),
            "date_formats": list(self.date_formats),
            "date_parts": [list(p) for p in self.date_parts],
            "grouped": list(self.grouped),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TableTransform:
        if data.get("format") not in FORMATS:
            raise DataError(f"not a table preprocessing record (format {data.get('format')!r})")
        try:
            classes = data.get("classes")
            # ``data`` is a parsed JSON record (hence Any): its fields are taken as written,
            # a malformed one failing below as a TypeError that becomes a DataError.
            return cls(
                target=str(data["target"]),
                task=data["task"],
                columns=tuple(data["columns"]),
                numeric=tuple(data["numeric"]),
                median=tuple(data["median"]),
                indicator=tuple(data["indicator"]),
                mean=tuple(data["mean"]),
                scale=tuple(data["scale"]),
                categorical=tuple(data["categorical"]),
                categories=tuple(tuple(c) for c in data["categories"]),
                classes=None if classes is None else tuple(classes),
                drop=tuple(data.get("drop") or ()),
                source=str(data.get("source", "")),
                text=tuple(data.get("text") or ()),  # exports before it: none
                dates=tuple(data.get("dates") or ()),  # autosize-table/1: none
                date_formats=tuple(data.get("date_formats") or ()),
                date_parts=tuple(tuple(p) for p in data.get("date_parts") or ()),
                grouped=tuple(data.get("grouped") or ()),
            )
        except (KeyError, TypeError) as exc:
            raise DataError(f"malformed table preprocessing record ({exc})") from None


def _numeric(
    df: pd.DataFrame,
    numeric: Sequence[str],
    dates: Iterable[tuple[str, str, tuple[str, ...]]],
    source: str,
) -> np.ndarray:
    """The ``numeric`` columns' raw values (float64, NaN where missing), a date column's
    numbers ("<column>.<part>") computed from it with its (column, format, parts)."""
    derived: dict[str, np.ndarray] = {}
    for col, fmt, parts in dates:
        stamps = parse_dates(df[col], fmt)
        bad = stamps.isna().to_numpy() & df[col].notna().to_numpy()
        if bad.any():
            value = df[col].to_numpy(dtype=object)[np.flatnonzero(bad)[0]]
            raise DataError(
                f"{source}: column {col!r}: value {value!r} is not a date in the training "
                f"file's format ({fmt}); leave the cell empty for a missing value"
            )
        for part in parts:
            derived[f"{col}.{part}"] = date_numbers(stamps, part)
    values = [
        derived[c] if c in derived else TableTransform._numbers(df[c], c, source) for c in numeric
    ]
    return np.column_stack(values)


def _text_frame(df: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    return np.column_stack([as_text(df[c]) for c in columns])


def _check_finite(x: np.ndarray, column: str, source: str) -> None:
    """Refuse an infinite number (missing values are NaN and imputed; inf would become NaN
    outputs, or scikit-learn's error at fit)."""
    inf = np.isinf(x)
    if inf.any():
        value = float(x[np.flatnonzero(inf)[0]])
        raise DataError(
            f"{source}: column {column!r}: value {value!r} is not a finite number "
            f"({int(inf.sum())} such); leave the cell empty for a missing value"
        )
