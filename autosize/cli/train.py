"""``autosize train DIR/architecture.json``: train an exported architecture from scratch.

The fixed-size control for one searched network: same architecture, dataset,
hyperparameters and budget, random initialisation. Compare its metrics with
the exported network's to see whether warm-starting paid off.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from autosize.cli._common import check_out_file, positive_float, positive_int

__all__ = ["register"]

RESULT_FILE = "from-scratch.json"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train an exported architecture from scratch (the fixed-size control)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.add_argument("architecture", type=Path, help="an export's architecture.json (or its folder)")
    p.add_argument(
        "--epochs", type=positive_int, help="epoch budget (default: the study's trial budget)"
    )
    p.add_argument("--max-seconds", type=positive_float, help="wall-clock budget in seconds")
    p.add_argument(
        "--seed",
        type=int,
        help="initialisation seed (default: one derived from the study's seed and the trial, "
        "different from every baseline's and trial's)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, ... (default: auto)")
    p.add_argument(
        "--out", type=Path, metavar="FILE",
        help=f"metrics JSON (default: {RESULT_FILE} next to the architecture)",
    )  # fmt: skip
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from autosize.export_format import ARCHITECTURE_FILE
    from autosize.retrain import train_from_scratch

    folder = args.architecture if args.architecture.is_dir() else args.architecture.parent
    out = args.out or folder / RESULT_FILE
    check_out_file(out)  # before training: a result that cannot be saved is lost work
    result = train_from_scratch(
        args.architecture,
        epochs=args.epochs,
        max_seconds=args.max_seconds,
        seed=args.seed,
        device=args.device,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    t = result.training
    print(
        f"{result.architecture} ({result.params:,} params) from scratch: {t.epochs_run} epochs in {t.seconds:.1f}s (stopped by {t.stopped})"
    )
    print(f"  {'':<22} {'val':>28}   {'test':>28}")
    for label, val, test in (
        ("from scratch", result.val, result.test),
        (f"exported (trial {result.trial})", result.exported_val, result.exported_test),
    ):
        print(f"  {label:<22} {_metrics(val):>28}   {_metrics(test):>28}")
    print(f"  saved {out}" + ("" if args.out else f" (next to {ARCHITECTURE_FILE})"))
    return 0


def _metrics(m: object) -> str:
    if not isinstance(m, dict) or not m:
        return "-"
    keys = [k for k in ("accuracy", "rmse", "loss") if k in m]
    return ", ".join(f"{k} {m[k]:.4f}" for k in keys)
