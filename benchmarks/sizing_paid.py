"""Did sizing pay? Two from-scratch controls for the autosize pick of a search_vs_scratch run.

For each dataset of a ``benchmarks/search_vs_scratch.py`` run (its ``<dataset>.json`` or
``<dataset>_s<seed>.json`` files), the autosize side's pick (its best-validation network within
B) is set against:

(a) **its architecture trained from scratch for the epochs its lineage had** (the seed's and
    every ancestor's, ``lineage_epochs``): same architecture, same amount of training, no warm
    start and no size changes along the way. Ahead of it, the search's path (growing and
    shrinking while training) paid, not only the size it ended at;
(b) **the seed's architecture trained from scratch for the whole wall budget** B: what not
    searching at all gets in the same time. Ahead of it, sizing paid.

Both train with the study's own ``[train]`` settings as the run's config chose them (optimizer,
learning rate, weight decay, batch size, cosine schedule over the budget, best-validation epoch
kept), on the same data and splits (the same config, seed and budget). Validation says which is
better; test is beside it. The run must have recorded the networks' specs (search_vs_scratch.py
since 2026-12-07 does).

    AUTOSIZE_DATA_DIR=../shared/data .venv/bin/python benchmarks/sizing_paid.py \\
        --run reports/zero_config/run16 --out reports/zero_config/run16_sizing.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import search_vs_scratch as svs  # the run's files, its pick and its config

ROOT = Path(__file__).resolve().parent.parent


def pick_of(result: dict) -> dict:
    """The autosize side's best-validation network within the budget, with its spec."""
    maximize = result["dataset"] not in svs.REGRESSION
    curve = svs.best_curve(
        result["autosize"]["records"], maximize=maximize, budget=result["budget"]
    )
    if not curve:
        raise SystemExit(f"{svs._stem(result)}: the autosize side finished no network within B")
    pick = curve[-1]
    if not pick.get("spec") or not pick.get("lineage_epochs"):
        raise SystemExit(
            f"{svs._stem(result)}: the run did not record the pick's spec and lineage epochs "
            "(search_vs_scratch.py records them since 2026-12-07); run it again"
        )
    return pick


def controls(result: dict, *, device: str = "auto", max_seconds: float | None = None) -> dict:
    """Train (a) and (b) for one run's result; ``max_seconds`` caps (b) below B (tests)."""
    from autosize.models import ArchSpec, build_model
    from autosize.search.deadline import Deadline
    from autosize.search.trials.training import metrics, train_step

    pick = pick_of(result)
    ds = result["dataset"]
    budget = float(result["budget"])
    seed = int(result.get("seed") or 0)
    with tempfile.TemporaryDirectory(prefix=f"sizing-{ds}-") as tmp:
        config_path = svs._write_config(
            ds, result.get("autosize_config", "shipped"), Path(tmp) / f"{ds}.toml"
        )
        p = svs._prepared(config_path, seed, budget)  # as `autosize run --seed --timeout`
    p = replace(p, config=replace(p.config, device=device))
    train = p.config.train
    metric = "rmse" if p.bundle.task == "regression" else "accuracy"
    seed_spec = result["autosize"].get("seed", {}).get("spec")
    specs = {
        "lineage": (ArchSpec.from_dict(pick["spec"]), int(pick["lineage_epochs"]), None),
        "seed_whole_budget": (
            ArchSpec.from_dict(seed_spec) if seed_spec else p.seed_spec,
            None,
            budget if max_seconds is None else min(budget, max_seconds),
        ),
    }
    out: dict[str, object] = {
        "dataset": ds,
        "seed": seed,
        "budget": budget,
        "pick": {k: pick[k] for k in ("architecture", "params", "val", "test", "lineage_epochs")},
        "train": train.record(),
    }
    for name, (spec, epochs, seconds) in specs.items():
        # the search's one training path, with the study's [train] settings for this budget
        budget_of = replace(train, epochs=epochs, max_seconds=seconds)
        model, _, history, took, _ = train_step(
            build_model(spec, seed=seed),
            spec,
            p,
            budget_of,
            seed=seed,
            deadline=Deadline.after(None),
        )
        out[name] = {
            "architecture": spec.summary(),
            "params": spec.param_count(),
            "epochs": len(history.epochs),
            "seconds": round(took, 1),
            "val": metrics(model, p, "val")[metric],
            "test": metrics(model, p, "test")[metric],
        }
    return out


def render(rows: list[dict]) -> str:
    lines = [
        "| dataset | seed | autosize pick: test (val) | its architecture from scratch, its "
        "lineage's epochs: test (val) | the seed's architecture for all of B: test (val) | "
        "sizing paid (val) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        ds = r["dataset"]
        maximize = ds not in svs.REGRESSION

        def cell(x: dict, ds: str = ds) -> str:
            return f"{svs._shown(ds, x['test'])} ({x['val']:.4f})"

        def better(a: float, b: float, maximize: bool = maximize) -> bool:
            return a > b if maximize else a < b

        paid = better(r["pick"]["val"], r["seed_whole_budget"]["val"])
        path = better(r["pick"]["val"], r["lineage"]["val"])
        lines.append(
            f"| {ds} | {r['seed']} | {cell(r['pick'])} `{r['pick']['architecture']}` | "
            f"{cell(r['lineage'])} ({r['lineage']['epochs']} epochs) | "
            f"{cell(r['seed_whole_budget'])} `{r['seed_whole_budget']['architecture']}` | "
            f"{'yes' if paid else 'no'} (the path: {'yes' if path else 'no'}) |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="a search_vs_scratch --out folder")
    parser.add_argument("--datasets", default=",".join(svs.DATASETS))
    parser.add_argument("--out", type=Path, required=True, help="where to write the JSON")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    wanted = [d for d in args.datasets.split(",") if d]
    results = [r for r in svs._from_json(args.run, wanted) if "autosize" in r]
    if not results:
        parser.error(f"--run {args.run}: no result with an autosize side for {', '.join(wanted)}")
    rows = []
    for result in results:
        rows.append(controls(result, device=args.device))
        args.out.write_text(json.dumps(rows, indent=1))
        print(render(rows[-1:]), flush=True)
    print(render(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
