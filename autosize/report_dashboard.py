"""The report's first two figures as plotly figures, stored with the study for
optuna-dashboard (``save_plotly_graph_object``): whoever opens the dashboard sees the
lineage and size against quality beside Optuna's own plots.

Saved when a study run ends and when ``autosize report`` runs, under fixed ids (a later
save replaces the earlier one). Without optuna-dashboard or plotly installed nothing is
saved (a debug line says why); the study is never at risk for a figure.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from autosize import report_lineage as lineage

if TYPE_CHECKING:
    import optuna

    from autosize.report_data import ReportData
    from autosize.search.store.results import TrialResult

__all__ = ["FIGURE_IDS", "lineage_figure", "save_figures", "size_figure"]

logger = logging.getLogger(__name__)

# graph object ids (valid HTML ids): what the dashboard lists them by
FIGURE_IDS = ("autosize-lineage", "autosize-size-vs-quality")
SYMBOLS = {
    "train on": "circle",
    "widen": "triangle-up",
    "deepen": "square",
    "compress": "triangle-down",
    "regularize": "diamond",
}


def _hover(t: TrialResult) -> str:
    value = "-" if t.value is None else f"{t.value:.4f}"
    return (
        f"trial {t.number} ({t.role})<br>{t.architecture}, {t.params or 0:,} parameters"
        f"<br>validation {value}<br>{t.operation or 'from scratch'}"
    )


def lineage_figure(d: ReportData) -> Any:
    """Network size against wall time, an edge from each step to its parent, the points
    coloured by validation value, the best lineage in red (as ``lineage.png``)."""
    import plotly.graph_objects as go

    lay = lineage.layout(d)
    done, at, seed = lay.done, lay.at, lay.seed
    fig = go.Figure()
    ex = [x for src, dst in lay.edges for x in (src[0], dst[0], None)]
    ey = [y for src, dst in lay.edges for y in (src[1], dst[1], None)]
    fig.add_trace(go.Scatter(x=ex, y=ey, mode="lines", name="step from its parent",
                             line={"color": "lightgray", "width": 1}, hoverinfo="skip"))  # fmt: skip
    if lay.path:
        fig.add_trace(go.Scatter(
            x=[x for x, _ in lay.path], y=[y for _, y in lay.path], mode="lines+text",
            name="best lineage", line={"color": "red", "width": 3}, hoverinfo="skip",
            text=[""] * (len(lay.path) - len(lay.best))
            + [lineage.short_operation(t) for t in lay.best],
            textposition="top center",
        ))  # fmt: skip
    label = f"validation {d.metric}"
    values = [t.checked_value for t in done]
    for kind in (*lineage.OPERATIONS, "other"):
        pts = [t for t in done if t.role == "warmstart" and lineage.operation_name(t) == kind]
        if pts:
            fig.add_trace(go.Scatter(
                x=[at[t.number][0] for t in pts], y=[at[t.number][1] for t in pts],
                mode="markers", name=f"{kind} ({len(pts)})", text=[_hover(t) for t in pts],
                hoverinfo="text",
                marker={
                    "symbol": SYMBOLS.get(kind, "circle"), "size": 10,
                    "color": [t.checked_value for t in pts], "colorscale": "Viridis",
                    "reversescale": not d.maximize, "cmin": min(values), "cmax": max(values),
                    "colorbar": {"title": {"text": label}}, "line": {"width": 0.5},
                },
            ))  # fmt: skip
    base = [t for t in done if t.role == "baseline"]
    if base:
        fig.add_trace(go.Scatter(
            x=[at[t.number][0] for t in base], y=[at[t.number][1] for t in base], mode="markers",
            name="baseline, from scratch", text=[_hover(t) for t in base], hoverinfo="text",
            marker={"symbol": "x", "size": 12, "color": "black"},
        ))  # fmt: skip
    if seed is not None:
        fig.add_trace(go.Scatter(x=[seed[0]], y=[seed[1]], mode="markers", name="seed network",
                                 marker={"symbol": "star", "size": 16, "color": "red"}))  # fmt: skip
    fig.update_layout(
        title="autosize: how the networks grew and shrank (best lineage in red)",
        xaxis_title="wall time since the first trial started (s)",
        yaxis_title="parameters (log scale)",
        yaxis_type="log",
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def size_figure(d: ReportData) -> Any:
    """Validation value against parameter count: the Pareto front, the baselines, the
    seed and the pick (``export --trial best``), as ``params.png``."""
    import plotly.graph_objects as go

    done = [t for t in d.complete if t.params]
    fig = go.Figure()
    for kind in (*lineage.OPERATIONS, "other"):
        pts = [t for t in done if t.role == "warmstart" and lineage.operation_name(t) == kind]
        if pts:
            fig.add_trace(go.Scatter(
                x=[t.params for t in pts], y=[t.value for t in pts], mode="markers",
                name=f"{kind} ({len(pts)})", text=[_hover(t) for t in pts], hoverinfo="text",
                marker={"symbol": SYMBOLS.get(kind, "circle"), "size": 9},
            ))  # fmt: skip
    base = [t for t in done if t.role == "baseline"]
    if base:
        fig.add_trace(go.Scatter(
            x=[t.params for t in base], y=[t.value for t in base], mode="markers",
            name="baselines, from scratch", text=[_hover(t) for t in base], hoverinfo="text",
            marker={"symbol": "x", "size": 12, "color": "black"},
        ))  # fmt: skip
    front = sorted((t for t in done if t.number in set(d.pareto)), key=lambda t: t.checked_params)
    if front:
        fig.add_trace(go.Scatter(x=[t.params for t in front], y=[t.value for t in front],
                                 mode="lines", line={"shape": "hv", "color": "red"},
                                 name="Pareto front"))  # fmt: skip
    chosen = lineage.pick(d)
    if chosen is not None:
        fig.add_trace(go.Scatter(
            x=[chosen.params], y=[chosen.value], mode="markers",
            name=f"the pick: trial {chosen.number} (export --trial best)",
            marker={"symbol": "circle-open", "size": 20, "color": "red", "line": {"width": 2}},
        ))  # fmt: skip
    fig.update_layout(
        title=f"autosize: validation {d.metric} against size",
        xaxis_title="parameters (log scale)",
        yaxis_title=f"validation {d.metric}",
        xaxis_type="log",
    )
    return fig


def save_figures(study: optuna.Study, d: ReportData) -> tuple[str, ...]:
    """Store both figures with ``study`` for optuna-dashboard; the ids saved (none when
    optuna-dashboard or plotly is missing, or the study has no finished network)."""
    if not d.complete:
        return ()
    try:
        from optuna_dashboard import save_plotly_graph_object

        figures = (lineage_figure(d), size_figure(d))
    except ImportError as exc:
        logger.debug("no dashboard figures (%s)", exc)
        return ()
    for figure, graph_id in zip(figures, FIGURE_IDS, strict=True):
        save_plotly_graph_object(study, figure, graph_object_id=graph_id)
    return FIGURE_IDS
