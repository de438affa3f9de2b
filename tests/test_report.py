"""Reports: report.md and PNGs from a tiny study; every number read from the study."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from autosize.cli import main
from autosize.report import build_report, pareto_front, render_markdown, write_report
from autosize.search import load_config, run_study
from autosize.search.store.results import TrialResult
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
    for name in ("lineage", "params", "curves", "progress", "widths"):
        png = out / f"{name}.png"
        assert png.read_bytes()[:8] == PNG, name
        assert f"]({name}.png)" in text
    assert text.index("](lineage.png)") < text.index("](params.png)")  # the lineage first
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


# --------------------------------------------------------------------------- figures

FIGURES = ("lineage", "params", "curves", "progress", "widths")


def _points(ax: object) -> list[tuple[float, float]]:
    """Every data point an axes draws (lines in data coordinates, scatter offsets)."""
    import math

    out: list[tuple[float, float]] = []
    for line in ax.get_lines():  # type: ignore[attr-defined]
        if line.get_transform() != ax.transData:  # type: ignore[attr-defined]
            continue  # axhline / axvline: drawn across the axes
        out += list(zip(line.get_xdata(), line.get_ydata(), strict=True))
    for coll in ax.collections:  # type: ignore[attr-defined]
        out += [tuple(p) for p in coll.get_offsets()]
    return [(float(x), float(y)) for x, y in out if math.isfinite(x) and math.isfinite(y)]


def _draw(data: object, name: str) -> list[object]:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    from autosize import report_plots as rp

    fig, axes = plt.subplots(1, 2 if name == "progress" else 1)
    draw = {
        "lineage": rp.plot_lineage, "params": rp.plot_params, "curves": rp.plot_curves,
        "progress": rp.plot_progress, "widths": rp.plot_widths,
    }[name]  # fmt: skip
    draw(data, axes)  # type: ignore[arg-type]
    fig.canvas.draw()
    return list(axes) if name == "progress" else [axes]


def _check_figure(axes: list[object]) -> None:
    for ax in axes:
        assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()  # type: ignore[attr-defined]
        assert ax.get_legend() is not None  # type: ignore[attr-defined]
        (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()  # type: ignore[attr-defined]
        points = _points(ax)
        assert points
        for x, y in points:
            assert x0 <= x <= x1 and y0 <= y <= y1, (ax.get_title(), x, y)  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", FIGURES)
def test_a_study_figure_is_labelled_with_every_point_inside(study_config: Path, name: str) -> None:
    config = load_config(study_config)
    study = optuna.load_study(study_name=config.name, storage=config.storage)
    _check_figure(_draw(build_report(study, command="c", storage=config.storage), name))


def _lineage_data(tmp_path: Path, *, maximize: bool) -> object:
    """A study's report data with a lineage of three steps from the seed (and a side branch)."""
    from dataclasses import replace
    from datetime import datetime, timedelta

    from autosize.report import SeedSummary

    start = datetime(2026, 1, 1)
    rows = [  # number, parent, value, params, architecture, operation, op_kind, widths
        (0, "seed", 0.80, 1_000, "fc8-fc8", "widen(L0:8->16)", "widen", ()),
        (
            1,
            0,
            0.85,
            600,
            "fc12-fc8",
            "compress(lam=0.01, decay=1)",
            "compress",
            ((16, 8), (12, 8)),
        ),
        (2, "seed", 0.82, 900, "fc8-fc8", "train on", "train on", ()),
        (3, 1, 0.90, 900, "fc12-fc8-fc8", "deepen(after L1)", "deepen", ()),
    ]
    if not maximize:
        rows = [(n, p, 1.0 - v, *rest) for n, p, v, *rest in rows]
    trials = [
        TrialResult(
            number=n,
            role="warmstart",
            state="complete",
            value=v,
            params=size,
            architecture=arch,
            operation=op,
            parent=parent,
            test_metric=None,
            gain=None,
            seconds=1.0,
            op_kind=kind,
            curve=(v - 0.02, v - 0.01, v),
            widths=widths,
            started=start + timedelta(seconds=10 * n),
            completed=start + timedelta(seconds=10 * n + 8),
        )
        for n, parent, v, size, arch, op, kind, widths in rows
    ]
    base = TrialResult(
        number=4, role="baseline", state="complete", value=0.5, params=1_000,
        architecture="fc8-fc8", operation="", parent=None, test_metric=None, gain=None,
        seconds=1.0, curve=(0.3, 0.5, 0.5) if maximize else (0.7, 0.5, 0.5), started=start,
        completed=start + timedelta(seconds=5),
    )  # fmt: skip
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'e.db'}", study_name="e")
    data = build_report(study, command="c", storage="sqlite:///e")
    value = 0.7 if maximize else 0.3
    seed = SeedSummary(architecture="fc8-fc8", params=1_000, epochs=4, seconds=2.0,
                       val={"accuracy" if maximize else "rmse": value})  # fmt: skip
    return replace(
        data, trials=(*trials, base), maximize=maximize, seed=seed,
        metric="accuracy" if maximize else "rmse",
        pareto=tuple(t.number for t in pareto_front([*trials, base], maximize=maximize)),
    )  # fmt: skip


@pytest.mark.parametrize("maximize", [True, False])
def test_the_best_lineage_and_its_figures(tmp_path: Path, maximize: bool) -> None:
    from autosize import report_lineage as lineage

    data = _lineage_data(tmp_path, maximize=maximize)
    assert [t.number for t in lineage.best_lineage(data)] == [0, 1, 3]  # type: ignore[arg-type]
    assert lineage.pick(data).number == 3  # type: ignore[arg-type, union-attr]
    for name in FIGURES:
        _check_figure(_draw(data, name))
    files = write_report(data, tmp_path / "r")  # type: ignore[arg-type]
    assert [f.name for f in files] == ["report.md", *(f"{n}.png" for n in FIGURES)]


def test_lineage_helpers() -> None:
    from autosize import report_lineage as lineage

    assert lineage.layer_widths("plr6x16-conv16-conv32-fc128") == (16, 32, 128)
    assert lineage.layer_widths("linear") == ()
    t = _result(5, 1.0, 10)
    assert lineage.operation_name(t) == "other"
    from dataclasses import replace

    both = replace(t, op_kind="widen+compress", operation="widen(all x2.00) + compress(lam=0.1)")
    assert lineage.operation_name(both) == "compress"
    assert lineage.short_operation(both) == "widen+compress"
    loop = {1: replace(t, number=1, parent=2), 2: replace(t, number=2, parent=1)}
    assert [x.number for x in lineage.ancestry(loop[1], loop)] == [2, 1]  # a cycle ends


def test_the_lineage_colours_span_the_good_networks_not_an_outlier() -> None:
    from autosize.report_plots import _colour_range

    good = [0.01 + 0.0005 * i for i in range(20)]  # 0.01 .. 0.0195
    low, high = _colour_range([*good, 0.9, 0.85])
    assert low == 0.01 and high < 0.02
    assert _colour_range([]) == (0.0, 1.0)
    assert _colour_range([0.3, 0.3]) == (0.3, 0.3)
