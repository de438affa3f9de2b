"""Reproduce the Net2Net MNIST experiment (the Keras example) with autosize's transforms.

Teacher conv64-pool-conv64-pool-fc64, trained 3 epochs with SGD (momentum 0.9,
lr 0.01). Four students, each trained 3 epochs with SGD (momentum 0.9, lr 0.001):

- wider, random padding: conv1 64->128 and fc1 64->128, new units and their
  outgoing weights drawn like PyTorch's default init (``widen(init="random")``);
- net2wider: the same widening by copying units (``widen``, noise 0.05 on the
  replicas' outgoing weights, as in the Keras example);
- deeper, random init: an extra conv after conv2 and an extra dense layer after fc1,
  default-initialised (``deepen(init="random")``);
- net2deeper: the same layers initialised to the identity (``deepen``).

Validation loss is measured on the 5,000-image validation split of
``load_dataset("mnist")`` (never the test set), right after each transform and
after every epoch. The script prints a table next to the Keras example's
reference numbers and writes JSON to ``benchmarks/out/net2net_mnist.json``.

    AUTOSIZE_DATA_DIR=../shared/data .venv/bin/python benchmarks/net2net_mnist.py
        # the full run: 55,000 training images, about 7.5 teacher-epochs of work per epoch
        # count, over an hour on a busy 2-core CPU (minutes on a GPU: --device cuda)
    ... --train-subset 3000 --val-subset 2000    # what reports/net2net_mnist.md ran
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from autosize.data import load_dataset
from autosize.data.bundle import DataBundle
from autosize.models import ArchSpec, ConvLayer, DenseLayer, Net, build_model
from autosize.train import evaluate, fit
from autosize.transforms import deepen, widen

log = logging.getLogger("net2net_mnist")

# Validation loss per epoch in the Keras example (GPU run, its validation set is MNIST's test set).
REFERENCE: dict[str, tuple[float, float, float]] = {
    "teacher": (0.0537, 0.0354, 0.0356),
    "wider random-pad": (0.0320, 0.0317, 0.0289),
    "net2wider": (0.0271, 0.0274, 0.0270),
    "deeper random-init": (0.0682, 0.0506, 0.0468),
    "net2deeper": (0.0292, 0.0294, 0.0286),
}
TEACHER = ArchSpec(
    input_shape=(1, 28, 28),
    n_outputs=10,
    layers=(ConvLayer(64, pool=2), ConvLayer(64, pool=2), DenseLayer(64)),
)

Transform = Callable[[Net, ArchSpec], tuple[Net, ArchSpec]]


@dataclass
class Run:
    name: str
    summary: str
    params: int
    lr: float
    val_loss_before: float | None  # right after the transform, before any training
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    seconds: float = 0.0
    val_loss_before_exact: float | None = None  # net2wider without noise (must equal the teacher)


def wider(init: str, noise: float, seed: int) -> Transform:
    def apply(model: Net, spec: ArchSpec) -> tuple[Net, ArchSpec]:
        model, spec = widen(model, spec, layer=0, width=128, init=init, noise=noise, seed=seed)
        return widen(model, spec, layer=2, width=128, init=init, noise=noise, seed=seed + 1)

    return apply


def deeper(init: str, seed: int) -> Transform:
    def apply(model: Net, spec: ArchSpec) -> tuple[Net, ArchSpec]:
        model, spec = deepen(model, spec, after=1, init=init, seed=seed)  # conv after conv2
        return deepen(model, spec, after=spec.depth - 1, init=init, seed=seed + 1)  # after fc1

    return apply


def train(
    name: str,
    model: Net,
    spec: ArchSpec,
    bundle: DataBundle,
    args: argparse.Namespace,
    *,
    lr: float,
    before: float | None,
) -> Run:
    start = time.perf_counter()
    history = fit(
        model,
        bundle,
        epochs=args.epochs,
        optimizer="sgd",
        lr=lr,
        batch_size=args.batch_size,
        device=args.device,
        seed=args.seed,
    )
    run = Run(
        name=name,
        summary=spec.summary(),
        params=spec.param_count(),
        lr=lr,
        val_loss_before=before,
        val_loss=[e.val_loss for e in history.epochs],
        val_accuracy=[e.val_metric for e in history.epochs],
        seconds=time.perf_counter() - start,
    )
    log.info("%s (%s): val loss %s in %.0f s", name, run.summary, _fmt(run.val_loss), run.seconds)
    return run


def _fmt(values: list[float]) -> str:
    return " ".join(f"{v:.4f}" for v in values)


def table(runs: list[Run], teacher_loss: float) -> str:
    n = max(len(r.val_loss) for r in runs)
    head = ["model", "arch", "params", "after transform"]
    head += [f"epoch {i + 1}" for i in range(n)]
    head += [f"Keras ep {i + 1}" for i in range(3)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in runs:
        before = "-" if r.val_loss_before is None else f"{r.val_loss_before:.4f}"
        if r.val_loss_before_exact is not None:
            before += f" (no noise: {r.val_loss_before_exact:.4f})"
        cells = [r.name, r.summary, f"{r.params:,}", before]
        cells += [f"{v:.4f}" for v in r.val_loss] + [""] * (n - len(r.val_loss))
        cells += [f"{v:.4f}" for v in REFERENCE[r.name]]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"teacher's final validation loss: {teacher_loss:.4f}")
    return "\n".join(lines)


def verdict(runs: dict[str, Run]) -> list[str]:
    out = []
    for ours, theirs in (("net2wider", "wider random-pad"), ("net2deeper", "deeper random-init")):
        a, b = runs[ours].val_loss, runs[theirs].val_loss
        wins = [x < y for x, y in zip(a, b, strict=True)]
        out.append(f"{ours} below {theirs} at {sum(wins)}/{len(wins)} epochs")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument(
        "--batch-size", type=int, default=32, help="Keras' default, as in the example"
    )
    parser.add_argument("--teacher-lr", type=float, default=0.01)
    parser.add_argument("--student-lr", type=float, default=0.001)
    parser.add_argument(
        "--noise", type=float, default=0.05, help="net2wider symmetry-breaking noise"
    )
    parser.add_argument(
        "--train-subset", type=int, default=None, help="first N training images only"
    )
    parser.add_argument(
        "--val-subset", type=int, default=None, help="first N validation images only"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--data-dir", default=None, help="data root or mirror (else AUTOSIZE_DATA_DIR)"
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/net2net_mnist.json"))
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr
    )
    started = time.perf_counter()

    bundle = load_dataset("mnist", data_dir=args.data_dir, seed=args.seed)
    if args.train_subset or args.val_subset:
        bundle = bundle.subset(train=args.train_subset, val=args.val_subset)
    log.info(
        "%s; torch %s, %d threads", bundle.summary(), torch.__version__, torch.get_num_threads()
    )

    teacher = build_model(TEACHER, seed=args.seed)
    runs = [train("teacher", teacher, TEACHER, bundle, args, lr=args.teacher_lr, before=None)]
    teacher_loss = evaluate(teacher, bundle, "val", device=args.device)["loss"]

    students: list[tuple[str, Transform, Transform | None]] = [
        ("wider random-pad", wider("random", 0.0, args.seed), None),
        ("net2wider", wider("net2net", args.noise, args.seed), wider("net2net", 0.0, args.seed)),
        ("deeper random-init", deeper("random", args.seed), None),
        ("net2deeper", deeper("net2net", args.seed), None),
    ]
    for name, transform, exact in students:
        model, spec = transform(teacher, TEACHER)
        before = evaluate(model, bundle, "val", device=args.device)["loss"]
        run = train(name, model, spec, bundle, args, lr=args.student_lr, before=before)
        if exact is not None:
            exact_model, _ = exact(teacher, TEACHER)
            run.val_loss_before_exact = evaluate(exact_model, bundle, "val", device=args.device)[
                "loss"
            ]
        runs.append(run)

    total = time.perf_counter() - started
    text = table(runs, teacher_loss)
    verdicts = verdict({r.name: r for r in runs})
    print(text)
    print("\n".join(verdicts))
    print(f"total {total:.0f} s")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "command": " ".join(
            ["benchmarks/net2net_mnist.py", *(argv if argv is not None else sys.argv[1:])]
        ),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "data": bundle.summary(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "teacher_val_loss": teacher_loss,
        "runs": [asdict(r) for r in runs],
        "reference_keras": REFERENCE,
        "verdict": verdicts,
        "total_seconds": total,
    }
    args.out.write_text(json.dumps(payload, indent=2))
    log.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
