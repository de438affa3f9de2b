"""Where ``fit`` (one after another) and ``fit_population`` spend their time: torch profiler
self time per aten op, K = 16 of ``benchmarks/population.py``'s networks for a dataset.

    AUTOSIZE_DATA_DIR=../shared/data .venv/bin/python benchmarks/population_profile.py airfoil poker

Prints the top ops of each side (the "What to expect" numbers in reports/population.md).
Poker is cut to 20,000 training rows and one epoch, Airfoil runs 3 epochs.
"""

from __future__ import annotations

import argparse
import copy
import functools
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
import population as bench  # the sibling benchmark: shapes and models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("datasets", nargs="+", choices=bench.DATASETS)
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for name in args.datasets:
        bundle = bench.load(name)
        if bundle.sizes["train"] > 20_000:
            bundle = bundle.subset(train=20_000)
        config = bench.study_config(name)
        shapes, batch = bench.search_shapes(config)
        models = bench.models_for(bench.specs_for(bundle, shapes, config, args.k))
        seeds, lrs = list(range(args.k)), bench.lrs_for(args.k)
        kw = {"epochs": 3 if name == "airfoil" else 1, "batch_size": batch, "device": "cpu"}
        sides: dict[str, Callable[[list[torch.nn.Module]], object]] = {
            f"fit x{args.k}": functools.partial(bench.one_after_another, bundle=bundle, seeds=seeds, lrs=lrs, **kw),
            f"population {args.k}": functools.partial(bench.together, bundle=bundle, seeds=seeds, lrs=lrs, **kw),
        }  # fmt: skip
        for label, run in sides.items():
            run(copy.deepcopy(models))  # warm-up
            fresh = copy.deepcopy(models)
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                start = time.perf_counter()
                run(fresh)
                wall = time.perf_counter() - start
            totals = {e.key: e.self_cpu_time_total / 1e6 for e in prof.key_averages()}
            total = sum(totals.values())
            print(f"== {name} {label}: {wall:.2f} s wall, profiled self time {total:.2f} s")
            for op, sec in sorted(totals.items(), key=lambda kv: -kv[1])[: args.top]:
                print(f"   {op:50s} {sec:7.3f} s {100 * sec / total:5.1f}%")


if __name__ == "__main__":
    main()
