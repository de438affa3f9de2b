"""``autosize export``: write a study's best network (or Pareto front) as a self-contained folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from autosize.cli._common import check_out_folder, positive_int
from autosize.cli._target import add_target_arguments, open_target

__all__ = ["register"]


def trial_choice(text: str) -> int | str:
    if text == "best":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected 'best' or a trial number, got {text!r}"
        ) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 'best' or a trial number, got {text!r}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a trained network: architecture.json + model.safetensors",
        description=(
            "Export the best completed trial (any role), or the Pareto front of a "
            "multi-objective study (one trial-N/ folder each, plus pareto.md)."
        ),
    )
    add_target_arguments(p)
    p.add_argument(
        "--trial", type=trial_choice, default=None, metavar="best|N",
        help="'best' (by the first objective) or a trial number (default: best, or the Pareto front)",
    )  # fmt: skip
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    p.add_argument(
        "--onnx", action="store_true", help="also write model.onnx (needs the onnx package)"
    )
    p.add_argument(
        "--ensemble", type=positive_int, default=1, metavar="K",
        help="export the K best trials by validation as one ensemble: predict, load_model and "
        "ONNX average them (the best in DIR, the others in DIR/members/; default 1)",
    )  # fmt: skip
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from autosize.export import export_study

    check_out_folder(args.out, empty=True)
    target = open_target(args)
    exported = export_study(
        target.study,
        artifacts=target.artifacts,
        out=args.out,
        trial=args.trial,
        onnx=args.onnx,
        ensemble=args.ensemble,
    )
    if args.ensemble > 1:
        print(
            f"ensemble of the {len(exported)} best trials of study {target.study.study_name!r} "
            f"(asked for {args.ensemble}): predictions are their mean"
        )
    elif len(exported) > 1:
        print(f"Pareto front of study {target.study.study_name!r}: {len(exported)} trials")
    for e in exported:
        r = e.record
        value = "-" if r.value is None else f"{r.value:.4f}"
        print(
            f"trial {r.trial} ({r.role}, {r.architecture}, {r.params:,} params, {r.objective} {value}) -> {e.folder}/"
        )
        for f in e.files:
            print(f"  {f.name}")
    if len(exported) > 1 and args.ensemble == 1:
        print(f"  {args.out / 'pareto.md'}")
    return 0
