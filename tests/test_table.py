"""Your own table: the loader, its JSON preprocessing (checked against scikit-learn), the
splits, the [data] keys, and the CLI from a CSV to predictions, bad input included."""

from __future__ import annotations

import contextlib
import itertools
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import autosize
from autosize.data import load_dataset
from autosize.data.table import MISSING, TableTransform, infer_task
from autosize.errors import ConfigError, DataError
from autosize.search.config import load_config
from studies import STUDY_MARKS, run_main

pytestmark = STUDY_MARKS


@pytest.fixture(autouse=True)
def _in_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`run --data` keeps its state in ./.state/: never the repository's."""
    monkeypatch.chdir(tmp_path)


def frame(n: int = 120, seed: int = 0) -> pd.DataFrame:
    """Numbers with gaps, text with gaps, a flag, a group and a string class that depends on them."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    colour = rng.choice(["red", "green", "blue"], n).astype(object)
    df = pd.DataFrame(
        {
            "x": x,
            "count": rng.integers(0, 50, n).astype(float),
            "colour": colour,
            "flag": rng.random(n) < 0.5,
            "site": rng.choice(["a", "b", "c", "d", "e", "f"], n),
            "label": np.where(x + (colour == "red") > 0.3, "big", "small"),
        }
    )
    df.loc[::7, "x"] = np.nan
    df.loc[::11, "colour"] = None
    return df


# --------------------------------------------------------------------------- the transform


def sklearn_reference(train: pd.DataFrame, t: TableTransform) -> object:
    """scikit-learn's own pipeline with the settings the module docstring promises."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    from autosize.data.table import as_text

    def text(df: pd.DataFrame) -> np.ndarray:
        return np.column_stack([as_text(df[c]) for c in df.columns])

    return ColumnTransformer(
        [
            (
                "num",
                make_pipeline(
                    SimpleImputer(strategy="median", add_indicator=True), StandardScaler()
                ),
                list(t.numeric),
            ),
            (
                "cat",
                make_pipeline(
                    FunctionTransformer(text),
                    SimpleImputer(strategy="constant", fill_value=MISSING, missing_values=None),
                    OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                ),
                list(t.categorical),
            ),
        ]
    ).fit(train)


def test_transform_replays_scikit_learn_from_json() -> None:
    df = frame()
    train, other = df.iloc[:80], df.iloc[80:].copy()
    other.loc[other.index[0], "colour"] = "purple"  # a level never seen in training
    t = TableTransform.fit(
        train,
        target="label",
        task="classification",
        classes=("big", "small"),
        categorical=(),
        drop=(),
        source="t.csv",
    )
    assert t.numeric == ("x", "count") and t.categorical == ("colour", "flag", "site")
    assert t.indicator == ("x",)  # only x has gaps in training
    again = TableTransform.from_dict(json.loads(json.dumps(t.to_dict())))
    reference = sklearn_reference(train.drop(columns="label"), t)
    for rows in (train, other):
        expected = reference.transform(rows.drop(columns="label"))  # type: ignore[attr-defined]
        np.testing.assert_allclose(again.transform(rows), expected, rtol=1e-6, atol=1e-6)
    # the unseen level encodes as all zeros in the colour block
    start = len(t.mean)
    block = again.transform(other)[0, start : start + len(t.categories[0])]
    assert not block.any()


@pytest.mark.parametrize(
    ("values", "task"),
    [
        (["a", "b", "a"], "classification"),
        ([True, False, True], "classification"),
        ([0, 1, 2, 1], "classification"),
        ([0.0, 1.0, 1.0], "classification"),
        (list(range(30)), "regression"),
        ([0.5, 1.25, 3.0], "regression"),
    ],
)
def test_task_is_inferred_from_the_target(values: list[object], task: str) -> None:
    assert infer_task(pd.Series(values)) == task


# --------------------------------------------------------------------------- loading and splits


def test_stratified_splits_and_a_fixed_test_set(tmp_path: Path) -> None:
    df = frame(200)
    df.to_csv(tmp_path / "t.csv", index=False)
    a = load_dataset("table", path=str(tmp_path / "t.csv"), target="label", seed=0)
    b = load_dataset("table", path=str(tmp_path / "t.csv"), target="label", seed=1)
    assert a.task == "classification" and a.n_outputs == 2
    assert a.sizes == {"train": 128, "val": 32, "test": 40}
    assert a.notes["stratified"] is True
    share = float((df["label"] == "big").mean())
    for split in ("train", "val", "test"):
        assert float((a.split(split)[1] == 0).float().mean()) == pytest.approx(share, abs=0.05)
    # the same test rows for every seed (their standardisation follows the training rows)
    n_num = len(a.preprocessing.steps["mean"])  # type: ignore[arg-type]
    assert torch.equal(a.test[1], b.test[1])
    torch.testing.assert_close(a.test[0][:, n_num:], b.test[0][:, n_num:])
    assert not torch.equal(a.val[0][:, n_num:], b.val[0][:, n_num:])  # val follows the seed
    assert a.preprocessing.kind == "table"
    json.dumps(a.preprocessing.to_dict())  # plain JSON


def test_group_is_held_out_whole_and_files_give_splits(tmp_path: Path) -> None:
    df = frame(240)
    df["y"] = df["count"] * 3.5 + 1000.0
    path = tmp_path / "t.parquet"
    df.drop(columns="label").to_parquet(path)
    b = load_dataset("table", path=str(path), target="y", group="site", drop=["site"])
    assert b.task == "regression" and b.target_mean > 900  # the target keeps its unit
    transform = TableTransform.from_dict(
        {k: v for k, v in b.preprocessing.to_dict().items() if k != "kind"}
    )
    assert "site" not in transform.columns
    # every site lands in one split: rebuild the split membership from the row counts
    sizes = df.groupby("site").size()
    for split in ("val", "test"):
        n = b.sizes[split]
        assert any(
            sum(sizes[list(c)]) == n
            for r in range(1, 4)
            for c in itertools.combinations(sizes.index, r)
        )

    df.iloc[:150].drop(columns="label").to_csv(tmp_path / "train.csv", index=False)
    df.iloc[150:200].drop(columns="label").to_csv(tmp_path / "val.csv", index=False)
    df.iloc[200:].drop(columns="label").to_csv(tmp_path / "test.csv", index=False)
    f = load_dataset(
        "table",
        path=str(tmp_path / "train.csv"),
        target="y",
        val_path=str(tmp_path / "val.csv"),
        test_path=str(tmp_path / "test.csv"),
    )
    assert f.sizes == {"train": 150, "val": 50, "test": 40}


def test_config_keys_are_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    frame().to_csv(tmp_path / "data" / "t.csv", index=False)
    path = tmp_path / "s.toml"
    path.write_text(
        '[study]\nn_trials = 1\n[data]\nname = "table"\npath = "data/t.csv"\ntarget = "label"\n'
        'categorical = ["count"]\ndrop = "site"\nval_fraction = 0.25\n',
        encoding="utf-8",
    )
    cfg = load_config(path)
    assert cfg.data.options["path"] == str(tmp_path / "data" / "t.csv")
    assert cfg.data.options["categorical"] == ["count"] and cfg.data.options["drop"] == ["site"]
    assert cfg.auto == {"objective", "seed", "train", "search", "baselines", "sampler", "pruner"}
    for old, new, key in (
        ('target = "label"\n', "", "data.target"),
        ("val_fraction = 0.25", "val_fraction = 1.5", "data.val_fraction"),
        ('drop = "site"', "drop = [1]", "data.drop"),
        ('target = "label"', 'target = "label"\ntask = "ranking"', "data.task"),
        ('target = "label"', 'target = "label"\ncolour = 1', "data.colour"),
    ):
        bad = tmp_path / "bad.toml"
        bad.write_text(path.read_text().replace(old, new), encoding="utf-8")
        with pytest.raises(ConfigError, match=key) as info:
            load_config(bad)
        assert str(info.value).startswith(str(bad))


# --------------------------------------------------------------------------- CLI: CSV to predictions


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    tmp = tmp_path_factory.mktemp("table-cli")
    frame(90).to_csv(tmp / "rows.csv", index=False)
    storage = f"sqlite:///{tmp / 's.db'}"
    with contextlib.chdir(tmp):  # module-scoped: runs before the autouse chdir
        rc, out, err = run_main(
            "run", "--data", str(tmp / "rows.csv"), "--target", "label",
            "--n-trials", "1", "--storage", storage,
        )  # fmt: skip
    assert rc == 0, err
    rc, _, err = run_main("export", "--storage", storage, "--out", str(tmp / "export"))
    assert rc == 0, err
    return tmp, tmp / "export", out


def test_run_without_a_config_prints_what_it_chose(exported: tuple[Path, Path, str]) -> None:
    _, folder, out = exported
    assert "chosen from the data" in out
    # 14 validation rows: judged by log-loss, which ranks where accuracy ties
    assert "study.objective = 'val_loss'" in out and "[seed] layers fc" in out
    record = json.loads((folder / "architecture.json").read_text())
    assert record["dataset"]["name"] == "table" and record["preprocessing"]["kind"] == "table"
    assert record["preprocessing"]["classes"] == ["big", "small"]


def test_predict_cli_and_load_model_agree(exported: tuple[Path, Path, str]) -> None:
    tmp, folder, _ = exported
    rows = frame(30, seed=5).drop(columns="label")  # the target absent
    rows.to_csv(tmp / "new.csv", index=False)
    rc, _, err = run_main(
        "predict", str(folder), str(tmp / "new.csv"), "--out", str(tmp / "p.csv"), "--proba"
    )
    assert rc == 0, err
    pred = pd.read_csv(tmp / "p.csv")
    assert list(pred.columns) == ["label", "proba_big", "proba_small"]
    assert set(pred["label"]) <= {"big", "small"} and len(pred) == 30
    np.testing.assert_allclose(pred[["proba_big", "proba_small"]].sum(axis=1), 1.0)
    model = autosize.load_model(folder)
    assert list(model.predict(rows)) == list(pred["label"])
    np.testing.assert_allclose(model.predict_proba(rows)[:, 0], pred["proba_big"], rtol=1e-6)
    x = model.inputs(rows)
    torch.testing.assert_close(model(x), model.net(x))  # still the network on tensors


def test_regression_predictions_keep_the_unit(tmp_path: Path) -> None:
    df = frame(80).drop(columns="label")
    df["price"] = 5000.0 + 100.0 * df["count"]
    df.to_csv(tmp_path / "houses.csv", index=False)
    storage = f"sqlite:///{tmp_path / 's.db'}"
    # no --timeout in process: the wall clock of main() starts with the pytest process
    args = ("--target", "price", "--n-trials", "1", "--storage", storage)
    assert run_main("run", "--data", str(tmp_path / "houses.csv"), *args)[0] == 0
    assert run_main("export", "--storage", storage, "--out", str(tmp_path / "e"))[0] == 0
    pred = autosize.load_model(tmp_path / "e").predict(df)
    assert 4000 < float(np.mean(pred)) < 11000  # dollars, not standard deviations


# --------------------------------------------------------------------------- bad input


def write_bad(tmp: Path, case: str) -> tuple[list[str], str]:
    """The arguments of one bad run and a string its error line must contain."""
    good = frame(40)
    if case == "missing file":
        return ["--data", str(tmp / "nope.csv"), "--target", "label"], "nope.csv: no such file"
    if case == "missing target":
        good.to_csv(tmp / "t.csv", index=False)
        return ["--data", str(tmp / "t.csv"), "--target", "price"], "no column 'price'"
    if case == "one class":
        good.assign(label="big").to_csv(tmp / "t.csv", index=False)
        return ["--data", str(tmp / "t.csv"), "--target", "label"], "has one class ('big')"
    if case == "empty column":
        good.assign(notes=np.nan).to_csv(tmp / "t.csv", index=False)
        return ["--data", str(tmp / "t.csv"), "--target", "label"], "column 'notes' is empty"
    if case == "not a table":
        (tmp / "t.xlsx").write_bytes(b"PK\x03\x04")
        return ["--data", str(tmp / "t.xlsx"), "--target", "label"], "not a CSV or Parquet file"
    if case == "broken parquet":
        (tmp / "t.parquet").write_text("x,y\n1,2\n")
        return ["--data", str(tmp / "t.parquet"), "--target", "y"], "cannot read as PARQUET"
    if case == "infinite number":
        good.assign(x=good["x"].where(good.index != 3, np.inf)).to_csv(tmp / "t.csv", index=False)
        return ["--data", str(tmp / "t.csv"), "--target", "label"], "column 'x': value inf"
    if case in ("test file with another column", "test file without a column"):
        good.to_csv(tmp / "t.csv", index=False)
        other = good.assign(extra=1) if "another" in case else good.drop(columns="colour")
        other.to_csv(tmp / "test.csv", index=False)
        (tmp / "s.toml").write_text(
            f'[study]\nn_trials = 1\nstorage = "sqlite:///{tmp / "s.db"}"\n'
            '[data]\nname = "table"\npath = "t.csv"\ntarget = "label"\ntest_path = "test.csv"\n'
        )
        expected = "column 'extra' is not in" if "another" in case else "no column 'colour'"
        return [str(tmp / "s.toml")], expected
    raise AssertionError(case)


BAD = (
    "missing file",
    "missing target",
    "one class",
    "empty column",
    "not a table",
    "broken parquet",
    "infinite number",
    "test file with another column",
    "test file without a column",
)


@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    argv, expected = write_bad(tmp_path, case)
    if argv[0] == "--data":
        argv += ["--n-trials", "1", "--storage", f"sqlite:///{tmp_path / 's.db'}"]
    rc, out, err = run_main("run", *argv)
    assert rc == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("autosize: error: "), err
    assert expected in lines[0], lines[0]
    assert ".csv" in lines[0] or ".parquet" in lines[0] or ".xlsx" in lines[0]
    assert not (tmp_path / "s.db").exists() and not (tmp_path / ".state").exists()


def test_predict_takes_one_row_as_a_dict_and_refuses_an_infinite_number(
    exported: tuple[Path, Path, str],
) -> None:
    _, folder, _ = exported
    model = autosize.load_model(folder)
    row = frame(1).drop(columns="label").iloc[0].to_dict()
    assert list(model.predict(row)) == list(model.predict(pd.DataFrame([row])))
    with pytest.raises(
        DataError, match=r"input: column 'count': value inf is not a finite number \(1 such\)"
    ):
        model.predict({**row, "count": np.inf})
    with pytest.raises(DataError, match="one row or columns of one length"):
        model.predict({"x": [1.0, 2.0], "count": [1.0]})


def test_nullable_booleans_with_gaps_train_and_predict(tmp_path: Path) -> None:
    df = frame(60)
    df["flag"] = pd.array(
        [None if i % 5 == 0 else bool(v) for i, v in enumerate(df["flag"])], dtype="boolean"
    )
    t = TableTransform.fit(
        df, target="label", task="classification", classes=("big", "small"),
        categorical=(), drop=(), source="t.parquet",
    )  # fmt: skip
    j = t.categorical.index("flag")
    assert set(t.categories[j]) == {"False", "True", MISSING}
    x = t.transform(df)
    assert x.shape == (60, t.n_features) and np.isfinite(x).all()


def test_a_text_column_of_digits_is_read_as_text_at_predict_time(tmp_path: Path) -> None:
    # Training's file had codes like "007" and "A12" (text); a file to predict on with only
    # "007"s is all digits, which pandas reads as 7: a level training never saw, an input of
    # zeros. The transform records its text columns and the predictor reads them as text.
    from autosize.data.table import read_table

    rng = np.random.default_rng(0)
    n = 60
    codes = rng.choice(["007", "A12", "010"], n)
    pd.DataFrame({"x": rng.normal(size=n), "code": codes, "y": codes == "007"}).to_csv(
        tmp_path / "train.csv", index=False
    )
    pd.DataFrame({"x": [0.5, 1.0], "code": ["007", "010"]}).to_csv(
        tmp_path / "new.csv", index=False
    )
    t = TableTransform.fit(
        read_table(tmp_path / "train.csv"), target="y", task="classification",
        classes=(False, True), categorical=(), drop=(), source="train.csv",
    )  # fmt: skip
    t = TableTransform.from_dict(json.loads(json.dumps(t.to_dict())))
    assert t.text == ("code",)
    start = len(t.mean)
    levels = list(t.categories[t.categorical.index("code")])
    rows = read_table(tmp_path / "new.csv", text=t.text)
    block = t.transform(rows)[:, start : start + len(levels)]
    np.testing.assert_array_equal(block.argmax(axis=1), [levels.index("007"), levels.index("010")])
    assert block.sum() == 2
    assert not t.transform(read_table(tmp_path / "new.csv"))[:, start:].any()  # as it was
    # The same for a study's own val/test files: a test file of only "007"s is still "007".
    pd.DataFrame({"x": rng.normal(size=20), "code": ["007"] * 20, "y": [True] * 20}).to_csv(
        tmp_path / "test.csv", index=False
    )
    b = load_dataset(
        "table", path=str(tmp_path / "train.csv"), target="y", test_path=str(tmp_path / "test.csv")
    )
    tb = TableTransform.from_dict(
        {k: v for k, v in b.preprocessing.to_dict().items() if k != "kind"}
    )
    at = len(tb.mean) + tb.categories[0].index("007")
    assert tb.categorical == ("code",) and bool((b.test[0][:, at] == 1).all())
    # A file without the column still gets the transform's one-line error, not pandas'.
    pd.DataFrame({"x": [0.5]}).to_csv(tmp_path / "short.csv", index=False)
    with pytest.raises(DataError, match="no column 'code'"):
        t.transform(read_table(tmp_path / "short.csv", text=t.text), source="short.csv")


def test_predict_refuses_rows_without_a_training_column(exported: tuple[Path, Path, str]) -> None:
    tmp, folder, _ = exported
    frame(5).drop(columns=["x", "label"]).to_csv(tmp / "short.csv", index=False)
    rc, _, err = run_main(
        "predict", str(folder), str(tmp / "short.csv"), "--out", str(tmp / "o.csv")
    )
    assert rc == 2 and "short.csv: no column 'x'" in err and err.count("\n") == 1
    assert not (tmp / "o.csv").exists()


def test_bad_input_through_a_real_process(tmp_path: Path) -> None:
    argv, expected = write_bad(tmp_path, "one class")
    proc = subprocess.run(
        [sys.executable, "-m", "autosize", "run", *argv, "--n-trials", "1"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert expected in proc.stderr
    assert not (tmp_path / ".state").exists()


def test_load_dataset_names_the_table_options(tmp_path: Path) -> None:
    frame().to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(DataError, match="target"):
        load_dataset("table", path=str(tmp_path / "t.csv"))
    with pytest.raises(DataError, match="unknown option 'colour'"):
        load_dataset("table", path=str(tmp_path / "t.csv"), target="label", colour=1)


def test_defaults_follow_the_data_and_the_wall_budget(tmp_path: Path) -> None:
    from autosize.search.config import config_from_dict
    from autosize.search.prepare import prepare

    frame(200).to_csv(tmp_path / "t.csv", index=False)
    data = {"name": "table", "path": str(tmp_path / "t.csv"), "target": "label"}
    raw = {"study": {"timeout": 100, "storage": "memory:defaults"}, "data": data}
    p = prepare(config_from_dict(raw, tmp_path / "s.toml"))
    c = p.config
    assert c.auto == frozenset() and c.objective == "val_loss"  # 32 validation rows
    d = p.bundle.input_shape[0]
    # two layers of 2^ceil(log2(2 d)) units, at least 32
    assert [lay.size for lay in c.seed_net.layers] == [max(32, 1 << (2 * d - 1).bit_length())] * 2
    # the seed may take a tenth of the wall budget, each step a fortieth
    assert c.seed_net.train.max_seconds == 10 and c.train.max_seconds == 2.5
    assert c.train.epochs is None and c.train.schedule == "cosine"
    assert c.search.parents == "best" and c.baselines.scales == ()
    assert (c.sampler.name, c.pruner.name) == ("population", "none")
    assert len(p.baseline_specs) == 1 and any("[seed]" in line for line in p.chosen)
    # the chosen [search] keeps the operations the parsed config allows its activation
    parsed = config_from_dict(raw, tmp_path / "s.toml")
    narrowed = replace(parsed, search=replace(parsed.search, operations=("train", "widen")))
    assert prepare(narrowed).config.search.operations == ("train", "widen")
    # a config that gives [seed] keeps its own search space and baselines
    raw["seed"] = {"layers": [{"type": "dense", "width": 5}], "epochs": 1}
    q = prepare(config_from_dict(raw, tmp_path / "s.toml"))
    assert q.config.baselines.scales == () and q.config.search.parents == "seed"
    assert q.config.seed_net.layers[0].size == 5 and q.config.train.max_seconds == 2.5
    assert (q.config.sampler.name, q.config.pruner.name) == ("tpe", "baseline")


def test_train_refuses_a_table_that_changed_since_the_study(tmp_path: Path) -> None:
    frame(60).to_csv(tmp_path / "rows.csv", index=False)
    storage = f"sqlite:///{tmp_path / 's.db'}"
    args = ("--target", "label", "--n-trials", "1", "--storage", storage)
    assert run_main("run", "--data", str(tmp_path / "rows.csv"), *args)[0] == 0
    assert run_main("export", "--storage", storage, "--out", str(tmp_path / "e"))[0] == 0
    frame(61).to_csv(tmp_path / "rows.csv", index=False)  # a row more
    rc, _, err = run_main("train", str(tmp_path / "e"), "--epochs", "1")
    assert rc == 2 and err.count("\n") == 1, err
    assert f"{tmp_path / 'rows.csv'}: the data changed since trial" in err


# --------------------------------------------------------------------------- reading columns


def test_identifier_columns_are_left_out_with_a_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rng = np.random.default_rng(0)
    n = 150
    df = frame(n)
    df["id"] = rng.permutation(n) + 1  # row numbers, named like an id
    df["PassengerId"] = rng.choice(10**9, n, replace=False)  # sparse, but named like one
    df["row"] = rng.permutation(n) + 5000  # dense whole numbers: row numbers
    df["name"] = [f"person {i}" for i in rng.permutation(n)]  # unique text
    df["income"] = rng.choice(10**6, n, replace=False)  # unique whole numbers, a quantity
    df["when"] = pd.date_range("2020-01-01", periods=n, freq="D").strftime("%Y-%m-%d")
    df.to_csv(tmp_path / "t.csv", index=False)
    with caplog.at_level("WARNING", logger="autosize.data.table"):
        b = load_dataset("table", path=str(tmp_path / "t.csv"), target="label", seed=0)
    assert b.notes["identifiers"] == "id, PassengerId, row, name"
    assert sum("left out: a different value in every row" in r.message for r in caplog.records) == 4
    t = TableTransform.from_dict(b.preprocessing.steps)
    assert not {"id", "PassengerId", "row", "name"} & set(t.columns)
    assert "income" in t.numeric and "when" in t.dates  # unique timestamps are dates
    # `identifiers` names them instead: [] keeps every column (a text one as levels)
    kept = load_dataset(
        "table", path=str(tmp_path / "t.csv"), target="label", seed=0, identifiers=[]
    )
    tk = TableTransform.from_dict(kept.preprocessing.steps)
    assert "identifiers" not in kept.notes and {"id", "name"} <= set(tk.columns)
    only = load_dataset(
        "table", path=str(tmp_path / "t.csv"), target="label", seed=0, identifiers=["name"]
    )
    assert only.notes["identifiers"] == "name"
    (tmp_path / "s.toml").write_text(
        '[study]\nn_trials = 1\n[data]\nname = "table"\npath = "t.csv"\ntarget = "label"\n'
        "identifiers = []\n",
        encoding="utf-8",
    )
    assert load_config(tmp_path / "s.toml").data.options["identifiers"] == []
    with pytest.raises(DataError, match=r"no column 'nope' \(data.identifiers\)"):
        load_dataset("table", path=str(tmp_path / "t.csv"), target="label", identifiers=["nope"])
    # a small table is too small to tell an identifier from a measurement
    frame(15).assign(id=range(15)).to_csv(tmp_path / "small.csv", index=False)
    small = load_dataset("table", path=str(tmp_path / "small.csv"), target="label")
    assert "identifiers" not in small.notes


def test_dates_become_numbers_not_levels(tmp_path: Path) -> None:
    n = 80
    days = pd.date_range("2019-12-30", periods=n, freq="D")
    df = frame(n).assign(when=days.strftime("%d/%m/%Y"), at=days.strftime("%Y-%m-%d 13:30"))
    df.loc[3, "when"] = None  # a gap: imputed, flagged
    t = TableTransform.fit(
        df, target="label", task="classification", classes=("big", "small"),
        categorical=(), drop=(), source="t.csv",
    )  # fmt: skip
    t = TableTransform.from_dict(json.loads(json.dumps(t.to_dict())))
    assert t.dates == ("when", "at") and t.date_formats == ("%d/%m/%Y", "%Y-%m-%d %H:%M")
    assert t.date_parts[0] == ("year", "month", "day", "weekday", "days")
    assert t.date_parts[1][-1] == "hour"  # it has times
    assert "when" not in t.categorical and "when.year" in t.numeric and "when.days" in t.indicator
    assert t.n_features < 40  # not one level per row (80 rows)
    new = frame(2).assign(when=["04/03/2021", None], at=["2021-03-04 09:15", "2021-03-05 00:00"])
    z = t.transform(new)
    raw = z[:, : len(t.mean)] * np.asarray(t.scale) + np.asarray(t.mean)
    got = dict(zip([*t.numeric, *(f"{c}?" for c in t.indicator)], raw[0], strict=True))
    assert (got["when.year"], got["when.month"], got["when.day"]) == pytest.approx((2021, 3, 4))
    assert got["when.weekday"] == pytest.approx(3)  # a Thursday
    assert got["when.days"] == pytest.approx(
        (pd.Timestamp("2021-03-04") - pd.Timestamp("1970-01-01")).days
    )
    assert got["at.hour"] == pytest.approx(9)
    assert raw[1, t.numeric.index("when.year")] == pytest.approx(
        t.median[t.numeric.index("when.year")]
    )
    with pytest.raises(DataError, match="column 'when': value 'soon' is not a date"):
        t.transform(new.assign(when=["soon", None]), source="new.csv")
    # a text column that only starts like a date stays levels
    odd = frame(n).assign(code=[f"2020-{i}x" for i in range(n)])
    t2 = TableTransform.fit(
        odd, target="label", task="classification", classes=("big", "small"),
        categorical=(), drop=(), source="t.csv",
    )  # fmt: skip
    assert t2.dates == () and "code" in t2.categorical


def test_a_column_with_many_levels_keeps_the_frequent_ones(tmp_path: Path) -> None:
    from autosize.data.table_transform import MAX_LEVELS, OTHER

    n = 600
    df = frame(n).assign(city=[f"c{i % 300}" if i % 2 else "big-city" for i in range(n)])
    t = TableTransform.fit(
        df, target="label", task="classification", classes=("big", "small"),
        categorical=(), drop=(), source="t.csv",
    )  # fmt: skip
    levels = t.categories[t.categorical.index("city")]
    assert len(levels) == MAX_LEVELS + 1 and OTHER in levels and "big-city" in levels
    assert t.grouped == ("city",)
    t = TableTransform.from_dict(json.loads(json.dumps(t.to_dict())))
    start = len(t.mean) + sum(len(c) for c in t.categories[: t.categorical.index("city")])
    block = t.transform(frame(2).assign(city=["never-seen", "big-city"]))[
        :, start : start + len(levels)
    ]
    assert block[0, levels.index(OTHER)] == 1 and block[0].sum() == 1
    assert block[1, levels.index("big-city")] == 1 and block[1].sum() == 1
    # a column with few levels still encodes an unseen one as zeros
    colour = t.categorical.index("colour")
    assert "colour" not in t.grouped and OTHER not in t.categories[colour]


def test_an_earlier_format_still_loads() -> None:
    t = TableTransform.fit(
        frame(50), target="label", task="classification", classes=("big", "small"),
        categorical=(), drop=(), source="t.csv",
    )  # fmt: skip
    old = {
        k: v
        for k, v in t.to_dict().items()
        if k not in ("dates", "date_formats", "date_parts", "grouped")
    }
    old["format"] = "autosize-table/1"
    back = TableTransform.from_dict(old)
    np.testing.assert_array_equal(back.transform(frame(10)), t.transform(frame(10)))


def test_classification_on_a_quantity_is_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    df = frame(200).assign(price=rng.gamma(2.0, 100.0, 200).round(2))
    df.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(DataError, match=r"'price' holds \d+ distinct numbers in 200 rows"):
        load_dataset("table", path=str(tmp_path / "t.csv"), target="price", task="classification")
    # many integer classes in many more rows are classes
    df.assign(kind=np.arange(200) % 30).to_csv(tmp_path / "k.csv", index=False)
    b = load_dataset("table", path=str(tmp_path / "k.csv"), target="kind", task="classification")
    assert b.task == "classification" and b.n_outputs == 30


def test_predict_keeps_columns_of_the_file(exported: tuple[Path, Path, str]) -> None:
    tmp, folder, _ = exported
    rows = frame(12, seed=3).drop(columns="label").assign(ref=[f"00{i}" for i in range(12)])
    rows.to_csv(tmp / "keep.csv", index=False)
    rc, _, err = run_main(
        "predict", str(folder), str(tmp / "keep.csv"), "--out", str(tmp / "k.csv"),
        "--keep", "ref", "--keep", "site",
    )  # fmt: skip
    assert rc == 0, err
    pred = pd.read_csv(tmp / "k.csv", dtype={"ref": str})
    assert list(pred.columns) == ["ref", "site", "label"]
    assert list(pred["ref"]) == list(rows["ref"])  # as written: "007" stays "007"
    rc, _, err = run_main(
        "predict", str(folder), str(tmp / "keep.csv"), "--out", str(tmp / "k2.csv"),
        "--keep", "nope",
    )  # fmt: skip
    assert rc == 2 and "--keep nope:" in err and "no column 'nope'" in err
    assert not (tmp / "k2.csv").exists()


def test_day_first_dates_are_read_as_the_column_writes_them() -> None:
    from autosize.data.table_transform import date_format

    # the first value reads both ways; a later one (13/04) only day first
    assert date_format(pd.Series(["03/04/2021", "13/04/2021", "20/05/2021"] * 10)) == "%d/%m/%Y"
    assert date_format(pd.Series(["03/04/2021", "04/13/2021", "05/20/2021"] * 10)) == "%m/%d/%Y"
    assert date_format(pd.Series(["red", "green"])) is None
    assert date_format(pd.Series([1.5, 2.5])) is None
