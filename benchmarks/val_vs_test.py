"""Does a study's better validation value mean a better network on test? Across runs.

Reads the JSON files that ``benchmarks/search_vs_scratch.py`` writes (one per dataset and
run) and, for each run's autosize side, takes the trial with the best validation value
finished within the run's budget, as the study would pick it. It prints those picks sorted
by validation, with their test value, and Spearman's rank correlation between the two over
the runs: near +1, lower validation went with lower test error (selection by validation
works); near 0 or below, the validation split cannot tell the runs' picks apart on test.
Runs whose pick is the same trial (a JSON copied into two folders) count once.

    python benchmarks/val_vs_test.py reports/cohort/airfoil_*.json \\
        reports/search_vs_scratch/*/airfoil.json

Plain Python, no autosize import.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

LOWER_IS_BETTER = ("airfoil", "add10")  # RMSE; the others are accuracies


def _ranks(values: list[float]) -> list[float]:
    """Ranks from 0, ties sharing their mean rank."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2
        i = j + 1
    return ranks


def spearman(x: list[float], y: list[float]) -> float:
    rx, ry = _ranks(x), _ranks(y)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    var = (sum((a - mx) ** 2 for a in rx) * sum((b - my) ** 2 for b in ry)) ** 0.5
    return cov / var if var else float("nan")


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
        records = [
            r
            for r in side.get("records", [])
            if r.get("val") is not None and r.get("test") is not None and r["t"] <= budget
        ]
        if not records:
            continue
        lower = dataset in LOWER_IS_BETTER
        best = (min if lower else max)(records, key=lambda r: r["val"])
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
    lower = dataset in LOWER_IS_BETTER
    rows.sort(key=lambda r: r.val, reverse=not lower)
    unit = "RMSE" if lower else "accuracy"
    print(f"{dataset}: each run's pick (best validation {unit}) and its test {unit}")
    print("| val | test | budget | cohort | halving | seed | network | file |")
    print("|---:|---:|---:|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r.val:.4f} | {r.test:.4f} | {r.budget:.0f} | {r.cohort} | {r.halving} | "
            f"{r.seed} | `{r.architecture}` | {r.file} |"
        )
    rho = spearman([r.val for r in rows], [r.test for r in rows])
    print(f"\n{len(rows)} runs; Spearman(val, test) = {rho:+.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
