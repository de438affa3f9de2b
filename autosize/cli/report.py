"""``autosize report``: report.md plus PNG plots of a study, every number read from the study."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from autosize.cli._common import check_out_folder
from autosize.cli._target import add_target_arguments, open_target
from autosize.errors import ConfigError

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="write report.md and plots for a study",
        description="Learning curves, best value over trials and time, size against metric, "
        "compress widths, the top trials and the headline comparison with the baselines.",
    )
    add_target_arguments(p)
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="e.g. reports/NAME/")
    p.set_defaults(func=run)


def command_line(args: argparse.Namespace) -> str:
    """The command that reproduces this report (what report.md quotes)."""
    parts = ["autosize", "report"]
    if args.config:
        parts.append(str(args.config))
    if args.storage:
        parts += ["--storage", args.storage]
    if args.study_name:
        parts += ["--study-name", args.study_name]
    if args.artifacts:
        parts += ["--artifacts", str(args.artifacts)]
    out = str(args.out)
    parts += ["--out", out if out.endswith("/") else out + "/"]
    return shlex.join(parts)


def run(args: argparse.Namespace) -> int:
    from autosize.export_format import ARCHITECTURE_FILE
    from autosize.report import build_report, write_report
    from autosize.report_dashboard import save_figures

    check_out_folder(args.out)
    if (args.out / ARCHITECTURE_FILE).exists():
        raise ConfigError(
            f"--out {args.out}: holds an export ({ARCHITECTURE_FILE}); write the report elsewhere"
        )
    target = open_target(args)
    data = build_report(target.study, command=command_line(args), storage=target.storage)
    files = write_report(data, args.out)
    saved = save_figures(target.study, data)  # the same figures in optuna-dashboard
    h = data.headline
    print(f"report of study {data.study!r}: {len(data.complete)} completed trials")
    if h.warm is not None and h.baseline is not None:
        print(
            f"  best warm-started trial {h.warm.number} ({h.warm.architecture}) {data.metric} {h.warm.value:.4f}"
            f" vs best baseline trial {h.baseline.number} ({h.baseline.architecture}) {h.baseline.value:.4f}"
        )
    for f in files:
        print(f"  {f}")
    if saved:
        print(f"  optuna-dashboard: {', '.join(saved)} stored with the study")
    return 0
