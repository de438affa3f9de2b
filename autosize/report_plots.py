"""The report's PNG plots, drawn from a :class:`~autosize.report.ReportData` alone.

matplotlib (Agg backend) is imported only when a plot is drawn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from autosize.report import ReportData
    from autosize.search.results import TrialResult

__all__ = ["plot_curves", "plot_params", "plot_progress", "plot_widths", "write_plots"]

MAX_WIDTH_PANELS = 6


def _finite_values(values: Sequence[float | None]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


def _clip_axis(ax: Axes, values: Sequence[float], *, maximize: bool) -> None:
    """Keep the interesting range: huge first-epoch values would flatten every curve."""
    vals = sorted(_finite_values(values))
    if len(vals) < 4:
        return
    lo, hi = vals[0], vals[-1]
    if maximize:
        lo = vals[len(vals) // 20]
    else:
        hi = vals[min(len(vals) - 1, (len(vals) * 19) // 20)]
    pad = 0.05 * (hi - lo or 1.0)
    ax.set_ylim(lo - pad, hi + pad)


def plot_curves(d: ReportData, ax: Axes) -> None:
    import matplotlib.pyplot as plt

    warm = [t for t in d.trials if t.role == "warmstart" and _finite_values(t.curve)]
    cmap = plt.get_cmap("viridis")
    everything: list[float] = []
    for i, t in enumerate(warm):
        xs = [e + 1 for e, v in enumerate(t.curve) if v is not None]
        ys = _finite_values(t.curve)
        everything += ys
        ax.plot(
            xs, ys, color=cmap(i / max(1, len(warm) - 1)), alpha=0.8, lw=1.2,
            ls="-" if t.state == "complete" else "--",
        )  # fmt: skip
    styles = ["-", "--", ":", "-."]
    for i, t in enumerate(t for t in d.trials if t.role == "baseline" and _finite_values(t.curve)):
        ys = _finite_values(t.curve)
        everything += ys
        ax.plot(
            [e + 1 for e, v in enumerate(t.curve) if v is not None], ys, color="black", lw=2.2,
            ls=styles[i % len(styles)], label=f"baseline {t.architecture} (#{t.number})",
        )  # fmt: skip
    if d.seed is not None and d.metric in d.seed.val:
        ax.axhline(d.seed.val[d.metric], color="tab:red", ls=":", lw=1.5, label="seed (start)")
    if warm:
        ax.plot([], [], color=cmap(0.5), lw=1.2, label=f"warm-started ({len(warm)} trials)")
    _clip_axis(ax, everything, maximize=d.maximize)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"validation {d.metric}")
    ax.set_title("Learning curves: warm-started vs baselines")
    _legend(ax)
    ax.grid(alpha=0.3)


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
    starts = [t.started for t in d.trials if t.started is not None]
    t0 = min(starts) if starts else None
    colours = {"baseline": "black", "warmstart": "tab:blue"}
    for role, colour in colours.items():
        mine = [t for t in done if t.role == role]
        if mine:
            ax_n.scatter(
                [t.number for t in mine], [t.checked_value for t in mine], s=18, color=colour,
                alpha=0.6, label=role,
            )  # fmt: skip
    if done:
        best = _best_so_far([t.checked_value for t in done], d.maximize)
        ax_n.step(
            [t.number for t in done], best, where="post", color="tab:red", lw=2, label="best so far"
        )
        ended = sorted(
            ((t.completed, t) for t in done if t.completed is not None), key=lambda ct: ct[0]
        )
        timed = [t for _, t in ended]
        if t0 is not None and timed:
            secs = [(completed - t0).total_seconds() for completed, _ in ended]
            for role, colour in colours.items():
                pts = [
                    (s, t.checked_value) for s, t in zip(secs, timed, strict=True) if t.role == role
                ]
                if pts:
                    xs, ys = zip(*pts, strict=True)
                    ax_t.scatter(xs, ys, s=18, color=colour, alpha=0.6, label=role)
            ax_t.step(secs, _best_so_far([t.checked_value for t in timed], d.maximize),
                      where="post", color="tab:red", lw=2, label="best so far")  # fmt: skip
        _clip_axis(ax_n, [t.checked_value for t in done], maximize=d.maximize)
        ax_t.set_ylim(ax_n.get_ylim())
    ax_n.set_xlabel("trial number")
    ax_t.set_xlabel("wall time since the first trial started (s)")
    for ax in axes:
        ax.set_ylabel(f"validation {d.metric}")
        ax.grid(alpha=0.3)
        _legend(ax)
    ax_n.set_title("Best value over trials")
    ax_t.set_title("Best value over wall time")


def plot_params(d: ReportData, ax: Axes) -> None:
    done = [t for t in d.complete if t.params]
    kinds = sorted({t.op_kind or "other" for t in done if t.role == "warmstart"})
    markers = {"widen": "^", "deepen": "s", "compress": "v"}
    for kind in kinds:
        pts = [t for t in done if t.role == "warmstart" and (t.op_kind or "other") == kind]
        ax.scatter(
            [t.checked_params for t in pts], [t.checked_value for t in pts],
            marker=markers.get(kind, "o"),
            s=36, alpha=0.75, label=f"warm-started: {kind}",
        )  # fmt: skip
    base = [t for t in done if t.role == "baseline"]
    if base:
        ax.scatter(
            [t.checked_params for t in base], [t.checked_value for t in base], marker="X", s=90,
            color="black",
            label="baselines", zorder=3,
        )  # fmt: skip
        for t in base:
            ax.annotate(t.architecture, (t.checked_params, t.checked_value),
                        textcoords="offset points",
                        xytext=(5, 5), fontsize=7)  # fmt: skip
    if d.seed is not None and d.seed.params and d.metric in d.seed.val:
        ax.scatter([d.seed.params], [d.seed.val[d.metric]], marker="*", s=160, color="tab:red",
                   label="seed", zorder=4)  # fmt: skip
    front = sorted((t for t in done if t.number in set(d.pareto)), key=lambda t: t.checked_params)
    if front:
        ax.step([t.checked_params for t in front], [t.checked_value for t in front],
                where="post", color="tab:red",
                lw=1.5, label="Pareto front", zorder=2)  # fmt: skip
    ax.set_xscale("log")
    _clip_axis(ax, [t.checked_value for t in done], maximize=d.maximize)
    ax.set_xlabel("parameters (log scale)")
    ax.set_ylabel(f"validation {d.metric}")
    ax.set_title(f"Validation {d.metric} against size")
    _legend(ax)
    ax.grid(alpha=0.3, which="both")


def _compress_trials(d: ReportData) -> list[TrialResult]:
    trials = [t for t in d.trials if t.widths]
    done = sorted(
        (t for t in trials if t.value is not None),
        key=lambda t: t.checked_value,
        reverse=d.maximize,
    )
    rest = [t for t in trials if t.value is None]
    return (done + rest)[:MAX_WIDTH_PANELS]


def plot_widths(d: ReportData, axes: Sequence[Axes]) -> None:
    for ax, t in zip(axes, _compress_trials(d), strict=False):
        layers = max(len(row) for row in t.widths)
        for i in range(layers):
            xs = [e + 1 for e, row in enumerate(t.widths) if i < len(row)]
            ax.plot(
                xs, [row[i] for row in t.widths if i < len(row)], marker=".", label=f"layer {i}"
            )
        ax.set_title(f"trial {t.number} ({t.state}): {t.architecture}", fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylabel("width")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        _legend(ax, 7)


def write_plots(d: ReportData, out: Path) -> dict[str, str]:
    """Write the PNGs into ``out``; returns {plot key: file name} for those written."""
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

    fig, ax = plt.subplots(figsize=(8, 5))
    plot_curves(d, ax)
    save(fig, "curves")
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    plot_progress(d, axes)
    save(fig, "progress")
    fig, ax = plt.subplots(figsize=(8, 5))
    plot_params(d, ax)
    save(fig, "params")
    n = len(_compress_trials(d))
    if n:
        cols = min(3, n)
        rows = math.ceil(n / cols)
        fig, grid = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows), squeeze=False)
        flat = [a for row in grid for a in row]
        plot_widths(d, flat)
        for a in flat[n:]:
            a.set_visible(False)
        save(fig, "widths")
    return written
