"""Reports: report.md and PNGs from a tiny study; every number read from the study."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from autosize.cli import main
from autosize.report import build_report, pareto_front, render_markdown, write_report
from autosize.search import load_config, run_study
from autosize.search.results import TrialResult
from studies import tiny_config

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def study_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    root = tmp_path_factory.mktemp("report-study")
    path = tiny_config(
        root,
        search='operations = ["compress"]\ncompress_start_factor = [2.0, 2.0]',
        pruner='name = "none"',
        filename="tiny.toml",
    )
    run_study(load_config(path))
    return path


def test_report_cli_writes_markdown_and_plots(study_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "reports" / "tiny"
    assert main(["report", str(study_config), "--out", f"{out}/"]) == 0
    text = (out / "report.md").read_text()
    for name in ("curves", "progress", "params", "widths"):
        png = out / f"{name}.png"
        assert png.read_bytes()[:8] == PNG, name
        assert f"]({name}.png)" in text
    assert f"`autosize report {study_config} --out {out}/`" in text

    config = load_config(study_config)
    study = optuna.load_study(study_name=config.name, storage=config.storage)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = {
        role: min((t for t in done if t.user_attrs["role"] == role), key=lambda t: t.values[0])
        for role in ("warmstart", "baseline")
    }
    assert f"| best warm-started | {best['warmstart'].number} |" in text
    assert f"| best baseline | {best['baseline'].number} |" in text
    assert f"{best['warmstart'].values[0]:.4f}" in text
    assert f"{study.user_attrs['seed']['test']['rmse']:.4f}" in text  # the seed's metrics
    assert "## Parameter importances" in text and "need at least" in text  # too few trials


def test_report_data_is_plain_and_consistent(study_config: Path) -> None:
    config = load_config(study_config)
    study = optuna.load_study(study_name=config.name, storage=config.storage)
    data = build_report(study, command="autosize report x --out y/", storage=config.storage)
    assert data.metric == "rmse" and not data.maximize
    assert len(data.trials) == len(study.trials)
    # The headline, worked out here from the study itself (not from the report's own picks).
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = {
        role: min((t for t in done if t.user_attrs["role"] == role), key=lambda t: t.values[0])
        for role in ("warmstart", "baseline")
    }
    warm, base = best["warmstart"], best["baseline"]
    h = data.headline
    assert h.warm is not None and h.baseline is not None
    assert (h.warm.number, h.baseline.number) == (warm.number, base.number)
    assert h.val_delta == pytest.approx(warm.values[0] - base.values[0])
    assert h.test_delta == pytest.approx(
        warm.user_attrs["test"]["rmse"] - base.user_attrs["test"]["rmse"]
    )
    assert h.warm_wins is (warm.values[0] < base.values[0])  # rmse: lower is better
    assert any(t.widths for t in data.trials if t.role == "warmstart")
    front = set(data.pareto)
    assert front and front <= {t.number for t in data.complete}


def _result(number: int, value: float, params: int) -> TrialResult:
    return TrialResult(
        number=number, role="warmstart", state="complete", value=value, params=params,
        architecture="", operation="", parent=None, test_metric=None, gain=None, seconds=None,
    )  # fmt: skip


def test_pareto_front_minimize_and_maximize() -> None:
    trials = [_result(0, 1.0, 100), _result(1, 0.5, 200), _result(2, 0.7, 300), _result(3, 2.0, 50)]
    assert [t.number for t in pareto_front(trials, maximize=False)] == [3, 0, 1]
    assert [t.number for t in pareto_front(trials, maximize=True)] == [3]


def test_report_of_a_study_without_trials(tmp_path: Path) -> None:
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'e.db'}", study_name="empty")
    data = build_report(
        study, command="autosize report --storage e --out r/", storage="sqlite:///e"
    )
    assert "no comparison" in render_markdown(data, {})
    files = write_report(data, tmp_path / "r")
    assert (tmp_path / "r" / "report.md") in files
