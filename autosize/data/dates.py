"""Date and time columns of a table: which text columns are dates (the format pandas guesses,
month first or day first, whichever parses more of the column), and the numbers a date
becomes (year, month, day, day of week, days since 1970-01-01, and the hour when the
values carry times)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype

__all__ = ["DATE_PARTS", "DATE_SHARE", "date_format", "date_numbers", "parse_dates", "parts_of"]

# A text column is a date when this share of its (non-missing) training values parse as one.
DATE_SHARE = 0.95
DATE_PARTS = ("year", "month", "day", "weekday", "days")


def date_format(values: pd.Series) -> str | None:
    """The format a text column's dates are written in (pandas' guess from its first value),
    or None when it is not a date column: fewer than :data:`DATE_SHARE` of its values parse
    with that format, or the column holds numbers or flags."""
    if is_bool_dtype(values.dtype) or is_numeric_dtype(values.dtype):
        return None
    present = values.dropna()
    if present.empty:
        return None
    first = str(present.iloc[0]).strip()
    if not any(ch.isdigit() for ch in first):
        return None
    import warnings

    from pandas.tseries.api import guess_datetime_format

    with warnings.catch_warnings():  # pandas warns that 30/12/2019 is day first: it is
        warnings.simplefilter("ignore")
        # month first, then day first (03/04/2021 reads both ways; the column decides)
        guesses = [guess_datetime_format(first), guess_datetime_format(first, dayfirst=True)]
    best, share = None, 0.0
    for fmt in dict.fromkeys(g for g in guesses if g is not None):
        parsed = float(parse_dates(present, fmt).notna().mean())
        if parsed > share:
            best, share = fmt, parsed
    return best if share >= DATE_SHARE else None


def parse_dates(values: pd.Series, fmt: str) -> pd.Series:
    """Dates in ``fmt`` as UTC timestamps (NaT where a value does not parse or is missing)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pd.to_datetime(
            values.astype(object).where(values.notna(), None), format=fmt, errors="coerce", utc=True
        )


def date_numbers(stamps: pd.Series, part: str) -> np.ndarray:
    """One number per timestamp (NaN where missing)."""
    dt = stamps.dt
    if part == "days":
        epoch = pd.Timestamp("1970-01-01", tz="UTC")
        out = (stamps - epoch) / pd.Timedelta(days=1)
    elif part == "weekday":
        out = dt.day_of_week
    else:
        out = getattr(dt, part)
    return pd.Series(out).to_numpy(dtype=np.float64, na_value=np.nan)


def parts_of(stamps: pd.Series) -> tuple[str, ...]:
    """The numbers a date column becomes: the hour too when its values carry times."""
    present = stamps.dropna()
    timed = bool(len(present) and ((present.dt.hour != 0) | (present.dt.minute != 0)).any())
    return (*DATE_PARTS, "hour") if timed else DATE_PARTS
