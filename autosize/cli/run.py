"""``autosize run CONFIG``: run or resume a study."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from autosize import interrupts
from autosize.cli._common import cohort_size, positive_float, positive_int
from autosize.errors import ConfigError, DataError

if TYPE_CHECKING:
    import optuna

    from autosize.search.config import StudyConfig


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="run (or resume) the study a config describes, or one on a CSV/Parquet file",
        description="Run (or resume) a study: `autosize run CONFIG`, or without a config "
        "`autosize run --data FILE --target COL --timeout S` (everything else is chosen from "
        "the data and printed; the state goes to ./.state/, as for a config named after the "
        "file in the current folder).",
    )
    p.add_argument("config", nargs="?", help="study config, e.g. studies/quickstart.toml")
    p.add_argument(
        "--data", type=Path, metavar="FILE", help="a CSV or Parquet file (instead of CONFIG)"
    )
    p.add_argument("--target", metavar="COL", help="with --data: the column to predict")
    p.add_argument(
        "--task", choices=("classification", "regression"), help="with --data: (default: inferred)"
    )
    p.add_argument(
        "--n-trials",
        type=positive_int,
        help="target number of warm-started trials (overrides the config)",
    )
    p.add_argument(
        "--timeout",
        type=positive_float,
        help="the study's wall budget in seconds from process start (overrides the config); "
        "the trial running at the deadline is cut there and keeps what it has",
    )
    p.add_argument(
        "--storage", help="Optuna storage URL (sqlite:///..., journal:FILE, postgresql://...)"
    )
    p.add_argument("--study-name", help="study name (overrides the config)")
    p.add_argument(
        "--workers", type=positive_int, default=1, help="worker processes on the same storage"
    )
    p.add_argument(
        "--cohort",
        type=cohort_size,
        help='warm-started trials trained together, K at a time, or "auto" '
        "(overrides [study] cohort)",
    )
    p.add_argument(
        "--halving",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="successive halving inside each cohort: the worse half of its trials stops at "
        "each slice of the budget, the best trains it out (overrides [study] halving)",
    )
    p.add_argument(
        "--seed",
        type=int,
        help="the study's seed: its sampler, its networks' initialisation and batch order "
        "(overrides [study] seed; a study is resumed with the seed it was started with)",
    )
    p.add_argument(
        "--threads",
        type=positive_int,
        help="CPU threads for torch (default: torch's choice; 1 is often faster for small "
        "networks on a busy machine; workers always use 1)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.data is None:
        return _run(args)
    # Without a config the study's messages name the data file and the flags, not the
    # config file that --data stands for (it does not exist).
    stands_for = str(_stand_in(args.data))
    try:
        return _run(args)
    except (ConfigError, DataError) as exc:
        # the data layer names the file itself; anything else is about --data FILE
        text = str(exc).replace(f"{stands_for}: data: ", "")
        text = text.replace(f"{stands_for}: ", f"--data {args.data}: ")
        raise type(exc)(text.replace("study.timeout", "--timeout")) from None


def _stand_in(data: Path) -> Path:
    """The config file ``--data FILE`` stands for: ``<stem>.toml`` in the current folder
    (its state goes to ./.state/)."""
    return Path.cwd() / f"{data.stem}.toml"


def _run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from autosize.cli._progress import Progress
    from autosize.search import best_of, run_study, trial_results
    from autosize.search.deadline import process_start
    from autosize.search.prepare import Prepared
    from autosize.search.store.results import maximizing

    # SIGTERM (a scheduler, `kill`) ends the running trial like Ctrl-C: FAIL, "interrupted";
    # a wind-down that hangs ends after a grace period (autosize.interrupts).
    interrupts.install()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    overrides = {
        "n_trials": args.n_trials,
        # the config's [study] timeout too: what is chosen from the data (the seed's share,
        # each step's seconds) follows the budget the study really has
        "timeout": args.timeout,
        "storage": args.storage,
        "name": args.study_name,
        "cohort": args.cohort,
        "halving": args.halving,
        "seed": args.seed,
    }
    config = _config(args, overrides)
    chosen: list[Prepared] = []
    started = process_start()
    progress = Progress(
        name=config.name,
        timeout=config.timeout,
        n_trials=config.n_trials,
        started=started,
        quiet=args.quiet,
    )

    def on_prepared(p: Prepared) -> None:
        chosen.append(p)
        progress.maximize = p.maximize
        if not args.quiet:
            if p.chosen:
                tqdm.write("chosen from the data (write them into a config to change them):")
                for line in p.chosen:
                    tqdm.write(f"  {line}")
            tqdm.write(f"data: {p.bundle.summary()}")
            sys.stdout.flush()
        progress.phase(f"the seed {p.seed_spec.summary()} and the baselines")

    try:
        study = run_study(
            config,
            workers=args.workers,
            timeout=args.timeout,
            started=started,
            on_trial=progress.trial,
            on_prepared=on_prepared,
        )
    finally:
        progress.close()
    config = chosen[0].config if chosen else config
    _save_figures(study, config)
    results = trial_results(study)
    maximize = maximizing(study)
    warm, base = (
        best_of(results, "warmstart", maximize=maximize),
        best_of(results, "baseline", maximize=maximize),
    )
    print(
        f"\nstudy {study.study_name!r} ({config.objective}, {'higher' if maximize else 'lower'} is better) in {config.storage}"
    )
    for label, r in (("best warm-started", warm), ("best baseline", base)):
        if r is None:
            print(f"  {label:<18} none yet")
        else:
            test = "-" if r.test_metric is None else f"{r.test_metric:.4f}"
            print(
                f"  {label:<18} trial {r.number}: val {r.value:.4f}, test {test}, {r.architecture} ({r.params:,} params) {r.operation}"
            )
    print(f"  inspect: optuna trials --study-name {study.study_name} --storage {config.storage}")
    return 0


def _save_figures(study: optuna.Study, config: StudyConfig) -> None:
    """The lineage and size figures, stored with the study for optuna-dashboard; a figure
    that cannot be drawn is said in one line and never fails the run."""
    from autosize.report import build_report
    from autosize.report_dashboard import save_figures

    try:
        data = build_report(
            study, command="autosize run", storage=config.storage, importances=False
        )
        save_figures(study, data)
    except Exception as exc:  # the study is done and stored; a figure is not worth an error
        logging.getLogger(__name__).warning("no dashboard figures: %s: %s", type(exc).__name__, exc)


def _config(args: argparse.Namespace, overrides: dict[str, object]) -> StudyConfig:
    from autosize.search.config import config_from_dict, load_config

    if args.data is None:
        for flag in ("target", "task"):
            if getattr(args, flag) is not None:
                raise ConfigError(f"--{flag}: only with --data FILE")
        if args.config is None:
            raise ConfigError("name a study: give a CONFIG file or --data FILE --target COL")
        return load_config(args.config, overrides=overrides)
    if args.config is not None:
        raise ConfigError(f"give a CONFIG file or --data FILE, not both ({args.config})")
    if not args.target:
        raise ConfigError(f"--data {args.data}: name the column to predict with --target COL")
    if args.timeout is None and args.n_trials is None:
        raise ConfigError(f"--data {args.data}: give a budget, --timeout S and/or --n-trials N")
    data: dict[str, object] = {
        "name": "table",
        "path": str(args.data.expanduser().resolve()),
        "target": args.target,
    }
    if args.task:
        data["task"] = args.task
    study: dict[str, object] = {"name": args.data.stem}
    if args.timeout is not None:
        study["timeout"] = args.timeout
    raw = {"study": study, "data": data}
    return config_from_dict(raw, _stand_in(args.data), overrides=overrides)
