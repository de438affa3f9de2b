"""Compressed-while-training networks vs fixed networks of the same size, same wall-clock budget.

For every dataset, depth and lam: ``compress`` a large MLP for ``--seconds``,
then train a fixed MLP of exactly the converged widths from scratch for the
same ``--seconds``, and compare final-epoch test metrics (no best-epoch
restore for either: compress cannot restore weights of a wider past network).

    AUTOSIZE_DATA_DIR=../shared/data .venv/bin/python benchmarks/compress_vs_fixed.py \\
        --seconds 28 --out benchmarks/out/compress_vs_fixed.json \\
        --plot reports/compress_vs_fixed_widths.png

Prints a markdown table, writes JSON (every run with its history) and a PNG of
the widths over time. ``--from-json`` re-renders the table and plot only.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from autosize.data import load_dataset
from autosize.data.bundle import DataBundle
from autosize.models import ArchSpec, DenseLayer, build_model
from autosize.train import evaluate, fit
from autosize.transforms import compress

log = logging.getLogger("compress_vs_fixed")

DATASETS = ("mnist", "fashion_mnist", "census", "airfoil", "poker", "add10")
# Start widths per depth: "start large and let it shrink".
START = {1: (2000,), 2: (1000, 1000)}
# lam per dataset. Regression losses are MSE in the target's own unit (airfoil std ~6.8 dB,
# add10 std ~4.9), so their task gradients are ~25-50x larger and lam must be too.
LAMS = {
    "mnist": (3e-5, 3e-4, 3e-3),
    "fashion_mnist": (3e-5, 3e-4, 3e-3),
    "census": (3e-5, 3e-4, 3e-3),
    "poker": (3e-5, 3e-4, 3e-3),
    "airfoil": (1e-2, 1e-1, 1.0),
    "add10": (1e-2, 1e-1, 1.0),
}
LR = 1e-3
GATE_LR = 1e-2
BATCH = 128
POKER_TEST = 100_000  # of the generated 1,000,000: evaluating all of them costs minutes per net


@dataclass
class Run:
    dataset: str
    depth: int
    lam: float
    start_widths: list[int]
    widths: list[int]
    params: int
    start_params: int
    metric: str
    compressed_test: float
    fixed_test: float
    compressed_epochs: int
    fixed_epochs: int
    compressed_seconds: float
    fixed_seconds: float
    compressed_history: dict[str, object]
    fixed_history: dict[str, object]

    @property
    def diff(self) -> float:
        return self.compressed_test - self.fixed_test

    @property
    def examples(self) -> tuple[int, int]:
        """Training examples seen by the compressed and the fixed run (throughput varies)."""
        return tuple(  # type: ignore[return-value]
            sum(e["train_examples"] for e in h["epochs"])  # type: ignore[index, union-attr]
            for h in (self.compressed_history, self.fixed_history)
        )

    @property
    def compressed_better_or_equal(self) -> bool:
        higher = self.metric == "accuracy"
        return self.diff >= 0 if higher else self.diff <= 0


def _spec(bundle: DataBundle, widths: tuple[int, ...] | list[int]) -> ArchSpec:
    return ArchSpec(
        input_shape=bundle.input_shape,
        n_outputs=bundle.n_outputs,
        layers=tuple(DenseLayer(int(w)) for w in widths),
        target_shift=bundle.target_mean,
        target_scale=bundle.target_std,
    )


def run_one(bundle: DataBundle, depth: int, lam: float, *, seconds: float, seed: int) -> Run:
    metric = "accuracy" if bundle.task == "classification" else "rmse"
    start = _spec(bundle, START[depth])
    t0 = time.perf_counter()
    net, spec, hist = compress(
        build_model(start, seed=seed),
        start,
        bundle,
        lam=lam,
        max_seconds=seconds,
        lr=LR,
        gate_lr=GATE_LR,
        batch_size=BATCH,
        device="cpu",
        seed=seed,
    )
    t_comp = time.perf_counter() - t0
    comp_test = evaluate(net, bundle, "test", device="cpu")[metric]

    fixed = build_model(spec, seed=seed)
    t0 = time.perf_counter()
    fixed_hist = fit(
        fixed, bundle, max_seconds=seconds, lr=LR, batch_size=BATCH, device="cpu", seed=seed
    )
    t_fixed = time.perf_counter() - t0
    fixed_test = evaluate(fixed, bundle, "test", device="cpu")[metric]
    run = Run(
        dataset=bundle.name,
        depth=depth,
        lam=lam,
        start_widths=list(start.widths),
        widths=list(spec.widths),
        params=spec.param_count(),
        start_params=start.param_count(),
        metric=metric,
        compressed_test=comp_test,
        fixed_test=fixed_test,
        compressed_epochs=len(hist),
        fixed_epochs=len(fixed_hist),
        compressed_seconds=t_comp,
        fixed_seconds=t_fixed,
        compressed_history=hist.to_dict(),
        fixed_history=fixed_hist.to_dict(),
    )
    log.info(
        "%s depth %d lam %g: widths %s, compressed %.4f (%d ep) vs fixed %.4f (%d ep)",
        bundle.name, depth, lam, run.widths, comp_test, run.compressed_epochs, fixed_test,
        run.fixed_epochs,
    )  # fmt: skip
    return run


def table(runs: list[Run]) -> str:
    lines = [
        "| dataset | depth | lam | final widths | params (start) | metric | compressed | fixed | compressed − fixed | epochs c/f | examples seen c/f |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        verdict = "" if r.compressed_better_or_equal else " (worse)"
        lines.append(
            f"| {r.dataset} | {r.depth} | {r.lam:g} | {'-'.join(map(str, r.widths))} "
            f"| {r.params:,} ({r.start_params:,}) | {r.metric} | {r.compressed_test:.4f} "
            f"| {r.fixed_test:.4f} | {r.diff:+.4f}{verdict} | {r.compressed_epochs}/{r.fixed_epochs} "
            f"| {r.examples[0]:,}/{r.examples[1]:,} |"
        )
    wins = sum(r.compressed_better_or_equal for r in runs)
    lines.append("")
    lines.append(f"Compressed at least as good as fixed in {wins} of {len(runs)} configurations.")
    return "\n".join(lines)


def plot(runs: list[Run], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(dict.fromkeys(r.dataset for r in runs))
    cols = min(3, len(datasets))
    rows = math.ceil(len(datasets) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.6 * rows), squeeze=False)
    for ax, name in zip(axes.flat, datasets, strict=False):
        for r in (r for r in runs if r.dataset == name):
            epochs = r.compressed_history["epochs"]
            t = [0.0] + [e["elapsed"] for e in epochs]  # type: ignore[index]
            w = [sum(r.start_widths)] + [sum(e["extra"]["widths"]) for e in epochs]  # type: ignore[index]
            ax.step(t, w, where="post", label=f"depth {r.depth}, lam {r.lam:g}",
                    linestyle="-" if r.depth == 1 else "--")  # fmt: skip
        ax.set_title(name)
        ax.set_yscale("log")
        ax.set_xlabel("seconds")
        ax.set_ylabel("hidden units (sum over layers)")
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(datasets) :]:
        ax.axis("off")
    fig.suptitle("compress: hidden units over training time")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _load(path: Path) -> list[Run]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return [Run(**r) for r in data["runs"]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=180.0, help="wall-clock budget per run")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--depths", nargs="+", type=int, default=[1, 2], choices=[1, 2])
    parser.add_argument(
        "--lams", nargs="+", type=int, default=[0, 1, 2], choices=[0, 1, 2],
        help="which of each dataset's three lam values (indices into LAMS)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/compress_vs_fixed.json"))
    parser.add_argument("--plot", type=Path, default=None, help="write the widths plot here")
    parser.add_argument("--from-json", type=Path, default=None, help="only re-render a result")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    if args.from_json is not None:
        runs = _load(args.from_json)
    else:
        if args.threads:
            torch.set_num_threads(args.threads)
        runs = []
        started = time.perf_counter()
        for name in args.datasets:
            bundle = load_dataset(name)
            if name == "poker":
                bundle = bundle.subset(test=POKER_TEST)
            for depth in args.depths:
                for i in args.lams:
                    runs.append(
                        run_one(bundle, depth, LAMS[name][i], seconds=args.seconds, seed=args.seed)
                    )
                    args.out.parent.mkdir(parents=True, exist_ok=True)
                    payload = {
                        "seconds_per_run": args.seconds,
                        "lr": LR,
                        "gate_lr": GATE_LR,
                        "batch_size": BATCH,
                        "seed": args.seed,
                        "threads": torch.get_num_threads(),
                        "command": " ".join(sys.argv),
                        "wall_seconds": time.perf_counter() - started,
                        "runs": [asdict(r) for r in runs],
                    }
                    args.out.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    sys.stdout.write(table(runs) + "\n")
    if args.plot is not None:
        plot(runs, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
