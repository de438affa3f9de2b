"""Does a study's better validation value mean a better network on test? Across runs.

Reads the JSON files that ``benchmarks/search_vs_scratch.py`` writes (one per dataset and
run) and, for each run's autosize side, takes the trial with the best validation value
finished within the run's budget, as the study would pick it. It prints those picks sorted
by validation, with their test value, and Spearman's rank correlation between the two over
the runs: near +1, lower validation went with lower test error (selection by validation
works); near 0 or below, the validation split cannot tell the runs' picks apart on test.
Runs whose pick is the same trial (a JSON copied into two folders) count once. Each row
also gives the same correlation inside its run, over the ten trials with the best
validation values (``top-10 rho``): whether validation orders a run's own finalists.

    python benchmarks/val_vs_test.py reports/cohort/airfoil_*.json \\
        reports/search_vs_scratch/*/airfoil.json

No autosize import: the pick is ``search_vs_scratch.best_curve``'s last point, as in that
benchmark's tables.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

from scipy.stats import spearmanr  # type: ignore[import-untyped]
from search_vs_scratch import REGRESSION, best_curve


@dataclass(frozen=True)
class Pick:
    file: str
    budget: float
    cohort: object
    halving: object
    seed: object
    val: float
    test: float
    architecture: str | None
    top10_rho: float  # Spearman(val, test) over the run's ten best trials by validation


def picks(paths: list[Path]) -> tuple[str, list[Pick]]:
    rows: list[Pick] = []
    seen: set[tuple[float, float]] = set()
    datasets = set()
    for path in paths:
        try:
            run = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise SystemExit(f"{path}: cannot read: {exc}") from None
        side = run.get("autosize")
        if not isinstance(side, dict):
            continue
        dataset, budget = run["dataset"], run["budget"]
        datasets.add(dataset)
        records = [r for r in side.get("records", []) if r.get("test") is not None]
        curve = best_curve(records, maximize=dataset not in REGRESSION, budget=budget)
        if not curve:
            continue
        best = curve[-1]
        finished = [r for r in records if r["t"] <= budget and math.isfinite(r["val"])]
        top = sorted(finished, key=lambda r: r["val"], reverse=dataset not in REGRESSION)[:10]
        top10 = float(spearmanr([r["val"] for r in top], [r["test"] for r in top]).statistic)
        key = (round(best["val"], 9), round(best["test"], 9))
        if key in seen:
            continue
        seen.add(key)
        rows.append(
            Pick(
                str(path),
                budget,
                run.get("cohort"),
                run.get("halving"),
                run.get("seed"),
                best["val"],
                best["test"],
                best.get("architecture"),
                top10,
            )
        )
    if len(datasets) != 1:
        raise SystemExit(f"expected the runs of one dataset, got {sorted(datasets) or 'none'}")
    return datasets.pop(), rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("json", nargs="+", type=Path, help="search_vs_scratch.py JSON files")
    args = parser.parse_args(argv)
    dataset, rows = picks(args.json)
    lower = dataset in REGRESSION
    rows.sort(key=lambda r: r.val, reverse=not lower)
    unit = "RMSE" if lower else "accuracy"
    print(f"{dataset}: each run's pick (best validation {unit}) and its test {unit}")
    print("| val | test | budget | cohort | halving | seed | network | top-10 rho | file |")
    print("|---:|---:|---:|---|---|---|---|---:|---|")
    for r in rows:
        print(
            f"| {r.val:.4f} | {r.test:.4f} | {r.budget:.0f} | {r.cohort} | {r.halving} | "
            f"{r.seed} | `{r.architecture}` | {r.top10_rho:+.2f} | {r.file} |"
        )
    rho = float(spearmanr([r.val for r in rows], [r.test for r in rows]).statistic)
    inside = sorted(r.top10_rho for r in rows)
    print(f"\n{len(rows)} runs; Spearman(val, test) = {rho:+.2f}")
    print(f"inside a run, over its ten best by validation: {inside[0]:+.2f} to {inside[-1]:+.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
