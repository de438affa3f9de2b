"""The report's PNG plots, drawn from a :class:`~autosize.report.ReportData` alone.

matplotlib (Agg backend) is imported only when a plot is drawn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from autosize import report_lineage as lineage

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from autosize.report_data import ReportData

__all__ = [
    "plot_curves",
    "plot_lineage",
    "plot_params",
    "plot_progress",
    "plot_widths",
    "write_plots",
]

MARKERS = {"train on": "o", "widen": "^", "deepen": "s", "compress": "v", "regularize": "D"}
COLOURS = {
    "train on": "tab:blue",
    "widen": "tab:green",
    "deepen": "tab:purple",
    "compress": "tab:orange",
    "regularize": "tab:brown",
}


def _finite_values(values: Sequence[float | None]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


def _shown(d: ReportData, v: float) -> float:
    """What the value axis shows: the error (1 - accuracy) for an accuracy, else the value;
    on a log scale both separate the good networks without cutting off the poor ones."""
    return 1.0 - v if d.maximize else v


def _value_label(d: ReportData) -> str:
    return f"validation error (1 - {d.metric})" if d.maximize else f"validation {d.metric}"


def _value_axis(ax: Axes, d: ReportData, shown: Sequence[float]) -> None:
    """Label the y axis and scale it so every point drawn is inside it: log where the
    values are positive, symmetric log (linear near zero) where an error reaches 0."""
    vals = _finite_values(shown)
    label = _value_label(d)
    if vals and min(vals) > 0:
        ax.set_yscale("log")
        label += ", log scale"
    elif vals and min(vals) >= 0 and max(vals) > 0:
        ax.set_yscale("symlog", linthresh=min(v for v in vals if v > 0) / 2)
        label += ", log scale (linear near 0)"
    ax.set_ylabel(label)
    if vals:  # every point inside the limits
        low, high = ax.get_ylim()
        ax.set_ylim(min(low, min(vals)), max(high, max(vals)))


def _colour_range(shown: Sequence[float]) -> tuple[float, float]:
    """The colour scale's range: from the best value to the 90th percentile, so that a few
    networks a step destroyed do not squeeze every good one into one colour."""
    if not shown:
        return 0.0, 1.0
    ordered = sorted(shown)
    high = ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)]
    return ordered[0], high if high > ordered[0] else ordered[-1]


def plot_lineage(d: ReportData, ax: Axes) -> None:
    """Network size over wall time, one point per finished network coloured by its
    validation value, an edge from each step to its parent, the best lineage in red."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm, Normalize
    from matplotlib.lines import Line2D

    lay = lineage.layout(d)
    done, at, seed = lay.done, lay.at, lay.seed
    for src, dst in lay.edges:
        ax.plot([src[0], dst[0]], [src[1], dst[1]], color="0.8", lw=0.7, zorder=1)
    if lay.path:
        ax.plot([x for x, _ in lay.path], [y for _, y in lay.path], color="tab:red", lw=2.2,
                zorder=2)  # fmt: skip
        right = max(x for x, _ in at.values()) if at else 0.0
        for t in lay.best:  # labels near the right edge point left, inside the axes
            left = at[t.number][0] > 0.8 * right
            ax.annotate(lineage.short_operation(t), at[t.number], textcoords="offset points",
                        xytext=(-4 if left else 4, 5), ha="right" if left else "left",
                        fontsize=7, color="tab:red")  # fmt: skip
    shown = [_shown(d, t.checked_value) for t in done]
    low, high = _colour_range(shown)
    positive = bool(shown) and low > 0
    norm = LogNorm(low, high * (1 + 1e-9)) if positive else Normalize(low, high)
    cmap = plt.get_cmap("viridis_r")  # bright: a low error or loss, the better networks
    handles = []
    for kind in (*lineage.OPERATIONS, "other"):
        pts = [t for t in done if t.role == "warmstart" and lineage.operation_name(t) == kind]
        if not pts:
            continue
        ax.scatter([at[t.number][0] for t in pts], [at[t.number][1] for t in pts],
                   c=[_shown(d, t.checked_value) for t in pts], cmap=cmap, norm=norm,
                   marker=MARKERS.get(kind, "o"), s=42, edgecolors="black", linewidths=0.4,
                   zorder=3)  # fmt: skip
        handles.append(Line2D([], [], marker=MARKERS.get(kind, "o"), ls="", color="0.6",
                              markeredgecolor="black", label=f"{kind} ({len(pts)})"))  # fmt: skip
    base = [t for t in done if t.role == "baseline"]
    if base:
        ax.scatter([at[t.number][0] for t in base], [at[t.number][1] for t in base],
                   marker="X", s=90, color="black", zorder=4)  # fmt: skip
        handles.append(Line2D([], [], marker="X", ls="", color="black", markersize=9,
                              label="baseline, from scratch"))  # fmt: skip
    if seed is not None:
        ax.scatter([seed[0]], [seed[1]], marker="*", s=220, color="tab:red", zorder=4)
        handles.append(Line2D([], [], marker="*", ls="", color="tab:red", markersize=12,
                              label="seed network"))  # fmt: skip
    handles.append(Line2D([], [], color="tab:red", lw=2.2, label="best lineage"))
    handles.append(Line2D([], [], color="0.8", lw=0.7, label="step from its parent"))
    if done:
        extend = "max" if max(shown) > high else "neither"  # worse ones: the last colour
        bar = ax.figure.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, extend=extend)
        bar.set_label(_value_label(d))
    ax.set_yscale("log")
    ax.set_xlabel("wall time since the first trial started (s)")
    ax.set_ylabel("parameters (log scale)")
    ax.set_title("How the networks grew and shrank (the best lineage in red)")
    ax.legend(handles=handles, fontsize=7, loc="best")
    ax.grid(alpha=0.3, which="both")


def plot_curves(d: ReportData, ax: Axes) -> None:
    """The best lineage's steps end to end over cumulative epochs, against the baselines
    trained from scratch (from epoch 1: the seed's epochs are the lineage's head start)."""
    offset = (d.seed.epochs or 0) if d.seed is not None else 0
    everything: list[float] = []
    labelled: set[str] = set()
    for t in lineage.best_lineage(d):
        ys = [_shown(d, v) if v is not None and math.isfinite(v) else None for v in t.curve]
        xs = [offset + e + 1 for e, v in enumerate(ys) if v is not None]
        pts = _finite_values(ys)
        kind = lineage.operation_name(t)
        if pts:
            ax.plot(xs, pts, color=COLOURS.get(kind, "tab:gray"), lw=1.8,
                    label=None if kind in labelled else f"best lineage: {kind}")  # fmt: skip
            labelled.add(kind)
            everything += pts
        ax.axvline(offset + 0.5, color="0.85", lw=0.6, zorder=0)
        offset += len(t.curve)
    styles = ["-", "--", ":", "-."]
    for i, t in enumerate(t for t in d.trials if t.role == "baseline" and _finite_values(t.curve)):
        vals = [_shown(d, v) for v in _finite_values(t.curve)]
        everything += vals
        ax.plot(
            [e + 1 for e, v in enumerate(t.curve) if v is not None and math.isfinite(v)], vals,
            color="black", lw=1.6, ls=styles[i % len(styles)],
            label=f"baseline {t.architecture} (#{t.number}), from scratch",
        )  # fmt: skip
    if d.seed is not None and d.metric in d.seed.val:
        value = _shown(d, d.seed.val[d.metric])
        everything.append(value)
        ax.axhline(value, color="tab:red", ls=":", lw=1.5, label="the seed network")
    _value_axis(ax, d, everything)
    ax.set_xlabel("epochs of training behind the network (the seed's first)")
    ax.set_title("Learning curves: the best lineage, step by step, and the baselines")
    _legend(ax)
    ax.grid(alpha=0.3, which="both")


def _legend(ax: Axes, size: int = 8) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=size)


def _best_so_far(values: Sequence[float], maximize: bool) -> list[float]:
    out: list[float] = []
    for v in values:
        out.append(v if not out else (max if maximize else min)(out[-1], v))
    return out


def plot_progress(d: ReportData, axes: Sequence[Axes]) -> None:
    done = sorted(d.complete, key=lambda t: t.number)
    ax_n, ax_t = axes
    secs = lineage.wall_seconds(d.trials)
    colours = {"baseline": "black", "warmstart": "tab:blue"}
    shown = [_shown(d, t.checked_value) for t in done]
    for role, colour in colours.items():
        mine = [t for t in done if t.role == role]
        if mine:
            ax_n.scatter(
                [t.number for t in mine], [_shown(d, t.checked_value) for t in mine], s=18,
                color=colour, alpha=0.6, label=role,
            )  # fmt: skip
    if done:
        best = _best_so_far(shown, maximize=False)
        ax_n.step([t.number for t in done], best, where="post", color="tab:red", lw=2,
                  label="best so far")  # fmt: skip
        timed = sorted((t for t in done if t.number in secs), key=lambda t: secs[t.number])
        for role, colour in colours.items():
            pts = [(secs[t.number], _shown(d, t.checked_value)) for t in timed if t.role == role]
            if pts:
                xs, ys = zip(*pts, strict=True)
                ax_t.scatter(xs, ys, s=18, color=colour, alpha=0.6, label=role)
        if timed:
            ax_t.step([secs[t.number] for t in timed],
                      _best_so_far([_shown(d, t.checked_value) for t in timed], maximize=False),
                      where="post", color="tab:red", lw=2, label="best so far")  # fmt: skip
    for ax in axes:
        _value_axis(ax, d, shown)
        ax.grid(alpha=0.3, which="both")
        _legend(ax)
    ax_n.set_xlabel("trial number")
    ax_t.set_xlabel("wall time since the first trial started (s)")
    ax_n.set_title("Best value over trials")
    ax_t.set_title("Best value over wall time")


def plot_params(d: ReportData, ax: Axes) -> None:
    """Validation value against parameter count: every finished network, the Pareto front,
    the baselines, the seed and the network ``export --trial best`` takes."""
    done = [t for t in d.complete if t.params]
    shown: list[float] = []
    for kind in (*lineage.OPERATIONS, "other"):
        pts = [t for t in done if t.role == "warmstart" and lineage.operation_name(t) == kind]
        if not pts:
            continue
        ys = [_shown(d, t.checked_value) for t in pts]
        shown += ys
        ax.scatter(
            [t.checked_params for t in pts], ys, marker=MARKERS.get(kind, "o"),
            color=COLOURS.get(kind, "tab:gray"), s=36, alpha=0.75, label=f"{kind} ({len(pts)})",
        )  # fmt: skip
    base = [t for t in done if t.role == "baseline"]
    if base:
        ys = [_shown(d, t.checked_value) for t in base]
        shown += ys
        ax.scatter([t.checked_params for t in base], ys, marker="X", s=90, color="black",
                   label="baselines, from scratch", zorder=3)  # fmt: skip
        for t, y in zip(base, ys, strict=True):
            ax.annotate(t.architecture, (t.checked_params, y), textcoords="offset points",
                        xytext=(5, 5), fontsize=7)  # fmt: skip
    if d.seed is not None and d.seed.params and d.metric in d.seed.val:
        y = _shown(d, d.seed.val[d.metric])
        shown.append(y)
        ax.scatter([d.seed.params], [y], marker="*", s=160, color="tab:red", label="seed",
                   zorder=4)  # fmt: skip
    front = sorted((t for t in done if t.number in set(d.pareto)), key=lambda t: t.checked_params)
    if front:
        ax.step([t.checked_params for t in front], [_shown(d, t.checked_value) for t in front],
                where="post", color="tab:red", lw=1.5, label="Pareto front", zorder=2)  # fmt: skip
    chosen = lineage.pick(d)
    if chosen is not None and chosen.params:
        ax.scatter([chosen.params], [_shown(d, chosen.checked_value)], s=260,
                   facecolors="none", edgecolors="tab:red", linewidths=2, zorder=5,
                   label=f"the pick: trial {chosen.number} (export --trial best)")  # fmt: skip
    ax.set_xscale("log")
    _value_axis(ax, d, shown)
    ax.set_xlabel("parameters (log scale)")
    ax.set_title(f"Validation {d.metric} against size")
    _legend(ax)
    ax.grid(alpha=0.3, which="both")


def plot_widths(d: ReportData, ax: Axes) -> None:
    """Each layer's width along the best lineage, over its cumulative epochs (per epoch
    inside a compress step, which removes units while it trains)."""
    offset = (d.seed.epochs or 0) if d.seed is not None else 0
    rows: list[tuple[float, tuple[int, ...]]] = []
    if d.seed is not None:
        rows.append((offset, lineage.layer_widths(d.seed.architecture)))
    for t in lineage.best_lineage(d):
        if t.widths:
            rows += [(offset + e + 1, tuple(w)) for e, w in enumerate(t.widths)]
        offset += len(t.curve) or (t.epochs or 0)
        rows.append((offset, lineage.layer_widths(t.architecture)))
    depth = max((len(w) for _, w in rows), default=0)
    for i in range(depth):
        pts = [(x, w[i]) for x, w in rows if i < len(w)]
        ax.step([x for x, _ in pts], [y for _, y in pts], where="post", marker=".",
                label=f"layer {i}")  # fmt: skip
    ax.set_yscale("log")
    ax.set_xlabel("epochs of training behind the network (the seed's first)")
    ax.set_ylabel("units or channels (log scale)")
    ax.set_title("Layer widths along the best lineage")
    ax.grid(alpha=0.3, which="both")
    _legend(ax, 7)


def write_plots(d: ReportData, out: Path) -> dict[str, str]:
    """Write the PNGs into ``out``; returns {plot key: file name} for those written, the
    lineage first."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    written: dict[str, str] = {}

    def save(fig: Figure, key: str) -> None:
        name = f"{key}.png"
        fig.tight_layout()
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        written[key] = name

    for key, draw, size in (
        ("lineage", plot_lineage, (9, 5.5)),
        ("params", plot_params, (8, 5)),
        ("curves", plot_curves, (8, 5)),
    ):
        fig, ax = plt.subplots(figsize=size)
        draw(d, ax)
        save(fig, key)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    plot_progress(d, axes)
    save(fig, "progress")
    if lineage.best_lineage(d):
        fig, ax = plt.subplots(figsize=(8, 4))
        plot_widths(d, ax)
        save(fig, "widths")
    return written
