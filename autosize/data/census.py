"""UCI Adult ("Census Income"): predict whether income exceeds 50K (binary).

``adult.data`` (32,561 rows) gives train and a seeded validation split
(``val_fraction``, default 0.2); ``adult.test`` (16,281 rows, a header line
``|1x3 Cross validator``, labels with a trailing dot) is the test split.
Categorical columns are one-hot encoded with scikit-learn's OneHotEncoder
fitted on the training split (``?`` is a category of its own; categories not
seen in training encode as all zeros); numeric columns are standardised with
training mean and standard deviation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from autosize.data.bundle import DataBundle, Preprocessing
from autosize.data.files import verified_path
from autosize.data.options import check_fraction, split_validation, standardize_stats
from autosize.data.registry import dataset_info
from autosize.errors import DataError

__all__ = ["CATEGORICAL", "COLUMNS", "NUMERIC", "CensusOptions", "load_census", "read_adult"]

COLUMNS = (
    "age", "workclass", "fnlwgt", "education", "education-num", "marital-status",
    "occupation", "relationship", "race", "sex", "capital-gain", "capital-loss",
    "hours-per-week", "native-country", "income",
)  # fmt: skip
NUMERIC = ("age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week")
CATEGORICAL = tuple(c for c in COLUMNS[:-1] if c not in NUMERIC)
ROWS = {"adult/adult.data": 32_561, "adult/adult.test": 16_281}


@dataclass(frozen=True, kw_only=True)
class CensusOptions:
    val_fraction: float = 0.2

    def __post_init__(self) -> None:
        check_fraction("census", "val_fraction", self.val_fraction)


def read_adult(path: Path, *, rows: int | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """Features (raw strings and numbers) and 0/1 labels (1 for >50K) of one Adult file."""
    with path.open(encoding="ascii") as fh:
        first = fh.readline()
    skip = 1 if first.startswith("|") else 0
    try:
        df = pd.read_csv(
            path,
            header=None,
            names=list(COLUMNS),
            skiprows=skip,
            skipinitialspace=True,
            skip_blank_lines=True,
            dtype={c: str for c in (*CATEGORICAL, "income")},
        )
    except (ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"cannot parse {path}: {exc}") from exc
    income = df.pop("income").str.rstrip(".")
    bad = ~income.isin(("<=50K", ">50K"))
    if bad.any():
        raise DataError(
            f"{path}: unexpected label {income[bad].iloc[0]!r} (expected <=50K or >50K)"
        )
    if rows is not None and len(df) != rows:
        raise DataError(f"{path}: expected {rows} rows, found {len(df)}")
    return df, (income == ">50K").to_numpy(dtype=np.int64)


def load_census(root: Path, *, seed: int, options: CensusOptions) -> DataBundle:
    info = dataset_info("census")
    paths = {f.path: verified_path(f, root, dataset="census") for f in info.files}
    df_all, y_all = read_adult(paths["adult/adult.data"], rows=ROWS["adult/adult.data"])
    df_test, y_test = read_adult(paths["adult/adult.test"], rows=ROWS["adult/adult.test"])

    train_idx, val_idx = split_validation(len(df_all), options.val_fraction, seed)
    df_train = df_all.iloc[train_idx]

    from sklearn.preprocessing import OneHotEncoder  # 1-2 s to import: only when needed

    encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False, dtype=np.float32)
    encoder.fit(df_train[list(CATEGORICAL)])
    mean, std = standardize_stats(df_train[list(NUMERIC)].to_numpy(dtype=np.float64))

    def features(df: pd.DataFrame) -> torch.Tensor:
        num = (df[list(NUMERIC)].to_numpy(dtype=np.float64) - mean) / std
        cat = encoder.transform(df[list(CATEGORICAL)])
        return torch.from_numpy(np.hstack([num.astype(np.float32), cat]))

    def split(df: pd.DataFrame, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return features(df), torch.from_numpy(y)

    train = split(df_train, y_all[train_idx])
    return DataBundle(
        name="census",
        task="classification",
        train=train,
        val=split(df_all.iloc[val_idx], y_all[val_idx]),
        test=split(df_test, y_test),
        input_shape=(int(train[0].shape[1]),),
        n_outputs=2,
        numeric_features=len(NUMERIC),  # standardised, before the one-hot columns
        preprocessing=Preprocessing(
            kind="tabular",
            steps={
                "numeric": list(NUMERIC),
                "mean": mean.tolist(),
                "std": std.tolist(),
                "categorical": list(CATEGORICAL),
                "categories": [list(map(str, c)) for c in encoder.categories_],
                "handle_unknown": "ignore",
            },
        ),
        notes={"val_fraction": options.val_fraction, "split_seed": seed},
    )
