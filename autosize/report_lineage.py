"""Who grew from whom: a study's lineages as plain data, for the report's figures.

A warm-started trial records its parent ("seed" or a trial number); following parents from
a network back to the seed gives its **lineage**, the steps (train on, widen, deepen,
compress) that made it. The best lineage is the best warm-started network's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from autosize.report_data import ReportData
    from autosize.search.store.results import TrialResult

__all__ = [
    "OPERATIONS",
    "Layout",
    "ancestry",
    "best_lineage",
    "layer_widths",
    "layout",
    "operation_name",
    "pick",
    "short_operation",
    "wall_seconds",
]

# The operations a step can end with, in the order a legend lists them.
OPERATIONS = ("train on", "widen", "deepen", "compress", "regularize")
_LAYER = re.compile(r"^(?:fc|conv)(\d+)$")


def operation_name(t: TrialResult) -> str:
    """The step's last operation (``widen+compress`` compresses), one of :data:`OPERATIONS`
    or "other"."""
    last = (t.op_kind or "").split("+")[-1].strip()
    return last if last in OPERATIONS else "other"


def short_operation(t: TrialResult) -> str:
    """The operation as a figure labels it: ``widen(L0:64->128)``, ``compress``, ``train on``."""
    text = t.operation or operation_name(t)
    if " + " in text:  # several operations: their names
        return t.op_kind or text
    name = text.split("(")[0].strip()
    return name if name in ("compress", "regularize") else text


def ancestry(t: TrialResult, by_number: Mapping[int, TrialResult]) -> list[TrialResult]:
    """``t``'s lineage: its ancestors' steps, first after the seed, then ``t``."""
    out = [t]
    seen = {t.number}
    parent = t.parent
    while isinstance(parent, int) and parent in by_number and parent not in seen:
        seen.add(parent)
        out.append(by_number[parent])
        parent = by_number[parent].parent
    return out[::-1]


def pick(d: ReportData) -> TrialResult | None:
    """The network ``autosize export --trial best`` takes: the best completed trial."""
    done = d.complete
    if not done:
        return None
    if d.maximize:
        return max(done, key=lambda t: (t.checked_value, -t.number))
    return min(done, key=lambda t: (t.checked_value, -t.number))


def best_lineage(d: ReportData) -> list[TrialResult]:
    """The lineage of the best warm-started network (empty when none finished)."""
    warm = [t for t in d.complete if t.role == "warmstart"]
    if not warm:
        return []
    sign = 1.0 if d.maximize else -1.0
    best = max(warm, key=lambda t: (sign * t.checked_value, -t.number))
    return ancestry(best, {t.number: t for t in d.trials})


def wall_seconds(trials: Sequence[TrialResult]) -> dict[int, float]:
    """Each finished trial's end, in seconds after the study's first trial started."""
    starts = [t.started for t in trials if t.started is not None]
    if not starts:
        return {}
    t0 = min(starts)
    return {t.number: (t.completed - t0).total_seconds() for t in trials if t.completed is not None}


def layer_widths(architecture: str) -> tuple[int, ...]:
    """The widths of an architecture summary's layers: ``plr6x16-fc64-fc32`` -> (64, 32)."""
    out = []
    for part in architecture.split("-"):
        if m := _LAYER.match(part.strip()):
            out.append(int(m.group(1)))
    return tuple(out)


Point = tuple[float, float]


@dataclass(frozen=True)
class Layout:
    """Where the lineage figure (PNG and dashboard alike) puts things: every finished
    network at (seconds after the first trial started, parameters), the seed at 0, an edge
    from each warm-started step to its parent, and the best lineage's path."""

    done: tuple[TrialResult, ...]
    at: Mapping[int, Point]
    seed: Point | None
    edges: tuple[tuple[Point, Point], ...]
    best: tuple[TrialResult, ...]  # its steps with a point, first after the seed
    path: tuple[Point, ...]  # the seed (when the lineage starts there), then those steps


def layout(d: ReportData) -> Layout:
    secs = wall_seconds(d.trials)
    done = tuple(t for t in d.complete if t.params and t.number in secs)
    at = {t.number: (secs[t.number], float(t.checked_params)) for t in done}
    seed = (0.0, float(d.seed.params)) if d.seed is not None and d.seed.params else None

    def parent_of(t: TrialResult) -> Point | None:
        if t.parent == "seed":
            return seed
        return at.get(t.parent) if isinstance(t.parent, int) else None

    edges = tuple(
        (src, at[t.number])
        for t in done
        if t.role == "warmstart" and (src := parent_of(t)) is not None
    )
    best = tuple(t for t in best_lineage(d) if t.number in at)
    start = (seed,) if best and seed is not None and best[0].parent == "seed" else ()
    path = (*start, *(at[t.number] for t in best))
    return Layout(done=done, at=at, seed=seed, edges=edges, best=best, path=path)
