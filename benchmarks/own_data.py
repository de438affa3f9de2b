"""Your own data, end to end: two public tables not among the six, through the CLI and the
estimator, against scikit-learn's HistGradientBoosting* and MLP* at default settings.

The tables are scikit-learn's bundled copies (no download): ``breast_cancer``
(569 rows, 30 inputs, 2 classes) and ``diabetes`` (442 rows, 10 inputs, a disease
progression score). Each is split once (seed 0; stratified for classification) into
``train.csv`` and ``test.csv`` (``--test-fraction``, default 0.25); every contender
learns from ``train.csv`` only and is scored on ``test.csv``:

* ``autosize CLI``: ``autosize run`` on a config of ``[study]`` and ``[data]`` only
  (``path = "train.csv"``, ``test_path = "test.csv"``; the validation split comes from
  train, everything else is chosen from the data), ``autosize export``, then
  ``autosize predict EXPORT test.csv`` in real subprocesses; the metric is computed
  from the predictions file;
* ``AutosizeClassifier`` / ``AutosizeRegressor`` with ``time_budget`` (it holds out a
  further 10% of train as its internal test split);
* ``HistGradientBoosting*`` and ``MLP*`` (scaled inputs, ``StandardScaler`` in a
  pipeline, as MLPs need), scikit-learn defaults, ``random_state=0``.

Wall time is each contender's whole time: the CLI's three commands including process
start; fit + predict for the others.

    AUTOSIZE_DATA_DIR=../shared/data .venv/bin/python benchmarks/own_data.py \\
        --budget 120 --out benchmarks/out/own_data.json

Prints a markdown table (paste into reports/own_data.md) and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

TABLES = ("breast_cancer", "diabetes")
BIN = Path(sys.executable).parent


@dataclass
class Result:
    table: str
    task: str
    contender: str
    metric: str
    value: float
    seconds: float
    note: str = ""


def load(name: str) -> tuple[pd.DataFrame, str, str]:
    """The table as a DataFrame with a ``target`` column, its task and metric."""
    from sklearn import datasets

    if name == "breast_cancer":
        bunch = datasets.load_breast_cancer(as_frame=True)
        df = bunch.frame.rename(columns={"target": "diagnosis"})
        # the original labels as text, so predictions come back as class names
        df["diagnosis"] = np.asarray(bunch.target_names)[df["diagnosis"]]
        return df, "classification", "accuracy"
    if name == "diabetes":
        bunch = datasets.load_diabetes(as_frame=True, scaled=False)
        return bunch.frame.rename(columns={"target": "progression"}), "regression", "rmse"
    raise SystemExit(f"unknown table {name!r}; known: {', '.join(TABLES)}")


def target_of(df: pd.DataFrame) -> str:
    return str(df.columns[-1])


def score(metric: str, y: np.ndarray, pred: np.ndarray) -> float:
    if metric == "accuracy":
        return float(np.mean(np.asarray(y) == np.asarray(pred)))
    return float(math.sqrt(np.mean((np.asarray(y, float) - np.asarray(pred, float)) ** 2)))


def split(df: pd.DataFrame, task: str, fraction: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.model_selection import train_test_split

    target = target_of(df)
    strata = df[target] if task == "classification" else None
    train, test = train_test_split(df, test_size=fraction, random_state=0, stratify=strata)
    return train.reset_index(drop=True), test.reset_index(drop=True)


def run_cli(folder: Path, target: str, budget: float, metric: str, threads: int) -> Result:
    config = folder / "study.toml"
    config.write_text(
        f'[study]\nname = "own-data"\ntimeout = {budget}\nstorage = "sqlite:///{folder / "study.db"}"\n'
        f'artifacts = "{folder / "artifacts"}"\n\n'
        f'[data]\nname = "table"\npath = "train.csv"\ntest_path = "test.csv"\ntarget = "{target}"\n',
        encoding="utf-8",
    )
    start = time.perf_counter()
    commands = [
        ["run", str(config), "--threads", str(threads)],
        ["export", str(config), "--out", str(folder / "export")],
        ["predict", str(folder / "export"), str(folder / "test.csv"), "--out", str(folder / "pred.csv")],
    ]  # fmt: skip
    for argv in commands:
        proc = subprocess.run(
            [str(BIN / "autosize"), "-q", *argv], capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            raise SystemExit(f"autosize {' '.join(argv)} failed:\n{proc.stderr}")
    seconds = time.perf_counter() - start
    pred = pd.read_csv(folder / "pred.csv")[target].to_numpy()
    truth = pd.read_csv(folder / "test.csv")[target].to_numpy()
    record = json.loads((folder / "export" / "architecture.json").read_text())
    note = f"{record['role']} {record['architecture']}, {record['params']} params"
    return Result("", "", "autosize CLI", metric, score(metric, truth, pred), seconds, note)


def run_estimator(
    train: pd.DataFrame, test: pd.DataFrame, task: str, budget: float, metric: str
) -> Result:
    from autosize import AutosizeClassifier, AutosizeRegressor

    target = target_of(train)
    cls = AutosizeClassifier if task == "classification" else AutosizeRegressor
    start = time.perf_counter()
    est = cls(time_budget=budget, random_state=0)
    est.fit(train.drop(columns=target), train[target].to_numpy())
    pred = est.predict(test.drop(columns=target))
    seconds = time.perf_counter() - start
    note = f"{est.best_spec_.summary()}, {est.best_spec_.param_count()} params"
    return Result("", "", cls.__name__, metric, score(metric, test[target], pred), seconds, note)


def run_sklearn(train: pd.DataFrame, test: pd.DataFrame, task: str, metric: str) -> list[Result]:
    import warnings

    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    target = target_of(train)
    x, y = train.drop(columns=target), train[target].to_numpy()
    classify = task == "classification"
    models = {
        ("HistGradientBoostingClassifier" if classify else "HistGradientBoostingRegressor"): (
            HistGradientBoostingClassifier if classify else HistGradientBoostingRegressor
        )(random_state=0),
        ("MLPClassifier" if classify else "MLPRegressor"): make_pipeline(
            StandardScaler(), (MLPClassifier if classify else MLPRegressor)(random_state=0)
        ),
    }
    out = []
    for name, model in models.items():
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            model.fit(x, y)
        pred = model.predict(test.drop(columns=target))
        seconds = time.perf_counter() - start
        note = "did not converge (max_iter=200)" if caught else ""
        out.append(Result("", "", name, metric, score(metric, test[target], pred), seconds, note))
    return out


def table_markdown(results: list[Result]) -> str:
    lines = [
        "| table | contender | test metric | wall s | note |",
        "|---|---|---:|---:|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.table} | {r.contender} | {r.metric} {r.value:.4f} | {r.seconds:.1f} | {r.note} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=120.0, help="autosize seconds per run")
    parser.add_argument("--tables", nargs="+", default=list(TABLES), choices=TABLES)
    parser.add_argument("--test-fraction", type=float, default=0.25)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (all contenders)")
    parser.add_argument("--work", type=Path, default=Path("benchmarks/out/own_data"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/own_data.json"))
    parser.add_argument("--skip-estimator", action="store_true")
    args = parser.parse_args(argv)

    import os

    import torch

    torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    results: list[Result] = []
    for name in args.tables:
        df, task, metric = load(name)
        train, test = split(df, task, args.test_fraction)
        folder = (args.work / name).resolve()
        if folder.exists():
            import shutil

            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        train.to_csv(folder / "train.csv", index=False)
        test.to_csv(folder / "test.csv", index=False)
        print(f"{name}: {task}, train {len(train)} / test {len(test)} rows", file=sys.stderr)
        rows = [run_cli(folder, target_of(df), args.budget, metric, args.threads)]
        if not args.skip_estimator:
            rows.append(run_estimator(train, test, task, args.budget, metric))
        rows.extend(run_sklearn(train, test, task, metric))
        for r in rows:
            r.table, r.task = name, task
            print(
                f"  {r.contender:<32} {r.metric} {r.value:.4f}  {r.seconds:.1f} s", file=sys.stderr
            )
        results.extend(rows)
    print(table_markdown(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "budget": args.budget,
        "test_fraction": args.test_fraction,
        "threads": args.threads,
        "results": [asdict(r) for r in results],
    }
    args.out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
