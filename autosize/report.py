"""A study's report: ``report.md`` plus PNG plots, every number read from the study.

Built in two steps (Optuna's way with its visualisations): :func:`build_report`
turns the study into a :class:`ReportData` of plain frozen dataclasses, then
:func:`write_report` renders the markdown and the plots from that data alone.

Plots (matplotlib, Agg backend):

* ``lineage.png``: network size against wall time, an edge from each step to its parent,
  coloured by validation value, the best lineage highlighted (the first figure);
* ``params.png``: validation metric against parameter count, Pareto front, baselines, the
  seed and the exported pick marked;
* ``curves.png``: the best lineage's learning curves end to end against the baselines;
* ``progress.png``: best value so far over trials and over wall time;
* ``widths.png``: each layer's width along the best lineage.

Accuracies are drawn as errors (1 - accuracy) on a log scale, so that every point drawn
lies inside the axes and the good networks stay apart.

The data is :mod:`autosize.report_data`; the plots live in :mod:`autosize.report_plots`
(matplotlib is imported only to draw them).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from autosize.report_data import Headline, Importances, ReportData, SeedSummary
from autosize.search.config import METRIC_KEY
from autosize.search.store import record
from autosize.search.store.results import TrialResult, best_of, maximizing, trial_results

if TYPE_CHECKING:
    import optuna

__all__ = [
    "Headline",
    "Importances",
    "ReportData",
    "SeedSummary",
    "build_report",
    "pareto_front",
    "render_markdown",
    "write_report",
]

logger = logging.getLogger(__name__)

TOP_N = 10
# fANOVA needs a few complete trials that share parameters before its numbers mean anything.
MIN_TRIALS_FOR_IMPORTANCE = 4


# --------------------------------------------------------------------------- building


def pareto_front(trials: Sequence[TrialResult], *, maximize: bool) -> tuple[TrialResult, ...]:
    """Complete trials not dominated on (objective, parameter count), by parameter count."""
    pts = [t for t in trials if t.state == "complete" and t.value is not None and t.params]
    sign = -1.0 if maximize else 1.0
    front = []
    for t in pts:
        v, p = sign * t.checked_value, t.checked_params
        dominated = any(
            (sign * o.checked_value <= v and o.checked_params <= p)
            and (sign * o.checked_value < v or o.checked_params < p)
            for o in pts
        )
        if not dominated:
            front.append(t)
    return tuple(sorted(front, key=lambda t: (t.params, t.number)))


def _headline(trials: Sequence[TrialResult], metric: str, *, maximize: bool) -> Headline:
    warm = best_of(trials, "warmstart", maximize=maximize)
    base = best_of(trials, "baseline", maximize=maximize)
    if warm is None or base is None:
        return Headline(warm, base, None, None, None)
    val_delta = warm.checked_value - base.checked_value  # best_of picks trials with a value
    wt, bt = warm.test.get(metric), base.test.get(metric)
    test_delta = None if wt is None or bt is None else wt - bt
    wins = val_delta > 0 if maximize else val_delta < 0
    return Headline(warm, base, val_delta, test_delta, wins)


def _importances(study: optuna.Study, n_complete_warm: int) -> Importances:
    import optuna

    if n_complete_warm < MIN_TRIALS_FOR_IMPORTANCE:
        return Importances(
            note=f"not computed: {n_complete_warm} completed warm-started trials; parameter importances need at least {MIN_TRIALS_FOR_IMPORTANCE}"
        )
    target = (lambda t: t.values[0]) if len(study.directions) > 1 else None
    try:
        values = optuna.importance.get_param_importances(study, target=target)
    except (ValueError, RuntimeError, ZeroDivisionError) as exc:
        return Importances(note=f"not computed: {exc}")
    if not values:
        return Importances(
            note="not computed: no parameter is shared by every completed trial (each operation has its own parameters)"
        )
    return Importances(values=tuple((k, float(v)) for k, v in values.items()))


def _redact(url: str) -> str:
    """A storage URL without its password; a local SQLite path relative to the working folder."""
    url = re.sub(r"://([^:/@]+):[^@]+@", r"://\1:***@", url)
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        try:
            return "sqlite:///" + str(path.resolve().relative_to(Path.cwd().resolve()))
        except ValueError:
            return url
    return url


def build_report(
    study: optuna.Study, *, command: str, storage: str, importances: bool = True
) -> ReportData:
    """Everything the report shows, read from ``study`` (no rendering here);
    ``importances=False`` skips fANOVA (the figures do not need it)."""
    meta = record.study_meta(study)
    objective = str(meta.get("objective", "objective"))
    metric = METRIC_KEY.get(objective, objective)
    maximize = maximizing(study)
    trials = tuple(trial_results(study))
    seed_raw = record.seed_info(study) or None
    seed = (
        SeedSummary(
            architecture=str(seed_raw.get("architecture", "")),
            params=seed_raw.get("params"),
            epochs=seed_raw.get("epochs"),
            seconds=seed_raw.get("seconds"),
            val=dict(seed_raw.get("val") or {}),
            test=dict(seed_raw.get("test") or {}),
        )
        if isinstance(seed_raw, dict)
        else None
    )
    data = meta.get("data") or {}
    n_warm = sum(1 for t in trials if t.role == "warmstart" and t.state == "complete")
    return ReportData(
        study=study.study_name,
        storage=_redact(storage),
        command=command,
        generated=datetime.now().replace(microsecond=0),
        dataset=str(meta.get("dataset", data.get("name", "?"))),
        task=str(meta.get("task", "?")),
        objective=objective,
        metric=metric,
        maximize=maximize,
        multi_objective=len(study.directions) > 1,
        budget=dict(meta.get("trial_budget") or {}),
        data_sizes={k: data.get(k) for k in ("max_train", "max_val", "max_test") if data.get(k)},
        seed=seed,
        trials=trials,
        pareto=tuple(t.number for t in pareto_front(trials, maximize=maximize)),
        headline=_headline(trials, metric, maximize=maximize),
        importances=_importances(study, n_warm)
        if importances
        else Importances(note="not computed"),
    )


# --------------------------------------------------------------------------- markdown


def _f(x: float | None, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:.{digits}f}"


def _signed(x: float | None) -> str:
    return "-" if x is None else f"{x:+.4f}"


def _budget(b: Mapping[str, object]) -> str:
    parts = []
    if b.get("epochs") is not None:
        parts.append(f"{b['epochs']} epochs")
    if b.get("max_seconds") is not None:
        parts.append(f"at most {b['max_seconds']} s")
    parts.append(f"{b.get('optimizer', '?')} lr {b.get('lr', '?')}")
    if b.get("weight_decay"):
        parts.append(f"weight decay {b['weight_decay']}")
    parts.append(f"batch {b.get('batch_size', '?')}")
    if b.get("restore_best"):
        parts.append("best-validation epoch restored")
    return ", ".join(parts)


def _headline_md(d: ReportData) -> list[str]:
    h = d.headline
    better = "higher" if d.maximize else "lower"
    if h.warm is None or h.baseline is None:
        missing = "warm-started" if h.warm is None else "baseline"
        return [f"No completed {missing} trial yet, so there is no comparison."]
    w, b = h.warm, h.baseline
    verdict = "beats" if h.warm_wins else "does not beat"
    lines = [
        f"**The best warm-started network {verdict} the best baseline at equal training budget** "
        f"({_budget(d.budget)} each; {d.metric}, {better} is better):",
        "",
        f"| | trial | architecture | parameters | val {d.metric} | test {d.metric} | seconds | epochs behind it |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
        f"| best warm-started | {w.number} | `{w.architecture}` | {w.params or 0:,} | {_f(w.value)} | {_f(w.test.get(d.metric))} | {_f(w.seconds, 1)} | {w.lineage_epochs or '-'} |",
        f"| best baseline | {b.number} | `{b.architecture}` | {b.params or 0:,} | {_f(b.value)} | {_f(b.test.get(d.metric))} | {_f(b.seconds, 1)} | {b.lineage_epochs or '-'} |",
        f"| difference (warm - baseline) | | | {(w.params or 0) - (b.params or 0):+,} | {_signed(h.val_delta)} | {_signed(h.test_delta)} | | |",
        "",
        f"Warm-started trial {w.number}: {w.operation or '-'} (parent: {w.parent}).",
        "“Epochs behind it” counts all the training in a network's lineage: the seed's and every "
        "ancestor trial's for a warm-started network, its own for a baseline.",
    ]
    if d.seed is not None and d.seed.seconds is not None:
        lines.append(
            f"Every warm-started trial also inherits the seed's training ({d.seed.epochs} epochs, "
            f"{d.seed.seconds:.1f} s, paid once for the whole study), which the baselines do not get."
        )
    return lines


def _row(t: TrialResult, metric: str, pareto: set[int]) -> str:
    star = " ★" if t.number in pareto else ""
    parent = "-" if t.parent is None else str(t.parent)
    operation = (t.operation or "-") + (" (cut at the deadline)" if t.cut else "")
    return (
        f"| {t.number}{star} | {t.role} | `{t.architecture}` | {operation} | {parent} | "
        f"{t.params or 0:,} | {_f(t.value)} | {_f(t.test.get(metric))} | {_signed(t.gain)} | {_f(t.seconds, 1)} |"
    )


TABLE_HEAD = [
    "| trial | role | architecture | operation | parent | parameters | val {m} | test {m} | gain | seconds |",
    "|---:|---|---|---|---|---:|---:|---:|---:|---:|",
]


def render_markdown(d: ReportData, plots: Mapping[str, str]) -> str:
    """The report as markdown; ``plots`` maps a plot's key to its file name next to report.md."""
    counts = d.counts()
    pareto = set(d.pareto)
    lines = [
        f"# autosize report: study `{d.study}`",
        "",
        f"Produced by `{d.command}` on {d.generated:%Y-%m-%d %H:%M}. "
        f"Every number below is read from study `{d.study}` in `{d.storage}`.",
        "",
        "## Headline",
        "",
        *_headline_md(d),
        "",
        "## Setup",
        "",
        f"- dataset: {d.dataset} ({d.task})"
        + (
            " — subset " + ", ".join(f"{k} {v}" for k, v in d.data_sizes.items())
            if d.data_sizes
            else ""
        ),
        f"- objective: {d.objective} ({'maximize' if d.maximize else 'minimize'})"
        + (", second objective: parameter count (minimize)" if d.multi_objective else ""),
        f"- trial budget (every baseline and warm-started trial): {_budget(d.budget)}",
        "- trials: "
        + "; ".join(
            f"{role} " + ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
            for role, states in sorted(counts.items())
        ),
        "",
        "## Seed",
        "",
    ]
    if d.seed is None:
        lines.append("The study records no seed network.")
    else:
        s = d.seed
        lines += [
            f"| architecture | parameters | epochs | seconds | val {d.metric} | test {d.metric} |",
            "|---|---:|---:|---:|---:|---:|",
            f"| `{s.architecture}` | {s.params or 0:,} | {s.epochs} | {_f(s.seconds, 1)} | {_f(s.val.get(d.metric))} | {_f(s.test.get(d.metric))} |",
        ]
    ranked = d.ranked()
    head = [h.format(m=d.metric) for h in TABLE_HEAD]
    lines += [
        "",
        f"## Top trials (of {len(ranked)} completed)",
        "",
        f"By validation {d.metric}; ★ marks the Pareto front on ({d.metric}, parameters); "
        "gain is over the matching baseline (positive = better).",
        "",
        *head,
        *(_row(t, d.metric, pareto) for t in ranked[:TOP_N]),
    ]
    baselines = [t for t in ranked if t.role == "baseline"]
    if baselines:
        lines += ["", "### Baselines (from scratch)", "", *head]
        lines += [_row(t, d.metric, pareto) for t in baselines]
    plot_text = {
        "lineage": "How the networks grew and shrank: size against wall time, one point per "
        "finished network (its marker the step that made it, its colour its validation value), "
        "a grey edge to the network it started from, the best lineage in red with its steps.",
        "params": f"Validation {d.metric} against parameter count: the Pareto front (red steps), "
        "the baselines, the seed and the pick (`export --trial best`, circled).",
        "curves": "Learning curves of the best lineage, its steps end to end over the epochs "
        "behind the network, against the baselines trained from scratch (black).",
        "progress": "Best value so far, over trials and over wall time.",
        "widths": "Layer widths along the best lineage (per epoch inside a compress step).",
    }
    if plots:
        lines += ["", "## Plots", ""]
        for key, name in plots.items():
            lines += [f"{plot_text.get(key, key)}", "", f"![{key}]({name})", ""]
    lines += ["## Parameter importances", ""]
    if d.importances.values:
        lines += ["| parameter | importance |", "|---|---:|"]
        lines += [f"| `{k}` | {v:.3f} |" for k, v in d.importances.values]
        lines += [
            "",
            "From `optuna.importance.get_param_importances` (fANOVA) over completed trials.",
        ]
    else:
        lines.append(d.importances.note or "not computed")
    return "\n".join(lines).rstrip() + "\n"


def write_report(data: ReportData, out: str | Path) -> list[Path]:
    """Render ``data`` into ``out``: the PNGs, then ``report.md``; returns the files."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    from autosize.report_plots import write_plots

    plots = write_plots(data, out)
    report = out / "report.md"
    report.write_text(render_markdown(data, plots), encoding="utf-8")
    logger.info("wrote %s and %d plots", report, len(plots))
    return [report, *(out / name for name in plots.values())]
