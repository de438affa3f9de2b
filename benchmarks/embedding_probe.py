"""Does a periodic embedding of the numeric columns help a dataset? (reports/search_vs_scratch.md,
runs 9 and after: why studies/census.toml has ``[seed] embedding`` and studies/airfoil.toml has
none.)

Trains the shipped config's seed architecture as the study trains a step (``train_step`` with
the config's ``[train]`` optimizer, lr, weight decay, batch size and schedule, best-validation
epoch kept), for ``--epochs`` or ``--seconds``, without an embedding and with one
(``[seed] embedding``'s frequencies and width, or 16 and 16) at each ``--sigmas``, over
``--seeds``; prints each run's validation and test metrics and each setting's mean:

    AUTOSIZE_DATA_DIR=../shared/data .venv/bin/python benchmarks/embedding_probe.py census \\
        --epochs 20 --sigmas 0.1,1,3,10
    AUTOSIZE_DATA_DIR=../shared/data .venv/bin/python benchmarks/embedding_probe.py airfoil \\
        --seconds 25 --sigmas 0.3,1,3 --seeds 0,1
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
from pathlib import Path

from autosize.models import DenseLayer, PeriodicEmbedding, build_model
from autosize.search import load_config, prepare
from autosize.search.deadline import Deadline
from autosize.search.trials.training import metrics, train_step

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dataset", help="a shipped config: studies/<dataset>.toml")
    budget = parser.add_mutually_exclusive_group(required=True)
    budget.add_argument("--epochs", type=int)
    budget.add_argument("--seconds", type=float)
    parser.add_argument("--sigmas", default="1", help="comma-separated; 'none' is always run")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument(
        "--layers", help="dense widths, e.g. 128,128 (default: the config's seed layers)"
    )
    args = parser.parse_args(argv)
    p = prepare(load_config(ROOT / "studies" / f"{args.dataset}.toml"))
    if p.bundle.numeric_features < 1:
        parser.error(f"{args.dataset}: the data has no numeric columns to embed")
    spec = p.seed_spec
    if args.layers:
        spec = dataclasses.replace(
            spec, layers=tuple(DenseLayer(int(w)) for w in args.layers.split(","))
        )
    shipped = spec.embedding or PeriodicEmbedding(p.bundle.numeric_features)
    train = dataclasses.replace(p.config.train, epochs=args.epochs, max_seconds=args.seconds)
    metric = "accuracy" if p.bundle.task == "classification" else "rmse"
    sigmas: list[float | None] = [None, *(float(s) for s in args.sigmas.split(","))]
    for sigma in sigmas:
        embedding = None if sigma is None else dataclasses.replace(shipped, sigma=sigma)
        arch = dataclasses.replace(spec, embedding=embedding)
        vals, tests = [], []
        for seed in (int(s) for s in args.seeds.split(",")):
            model, _, history, seconds, _ = train_step(
                build_model(arch, seed=seed),
                arch,
                p,
                train,
                seed=seed,
                deadline=Deadline.after(None),
            )
            vals.append(metrics(model, p, "val")[metric])
            tests.append(metrics(model, p, "test")[metric])
            print(
                f"{arch.summary()} sigma {sigma} seed {seed}: {len(history.epochs)} epochs in "
                f"{seconds:.0f} s, val {metric} {vals[-1]:.4f}, test {metric} {tests[-1]:.4f}",
                flush=True,
            )
        print(
            f"{arch.summary()} sigma {sigma}: mean val {statistics.mean(vals):.4f}, "
            f"mean test {statistics.mean(tests):.4f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
