"""``autosize run CONFIG``: run or resume a study."""

from __future__ import annotations

import argparse
import signal
import sys

from autosize.cli._common import positive_float, positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run (or resume) the study a config describes")
    p.add_argument("config", help="study config, e.g. studies/quickstart.toml")
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
        type=_cohort,
        help='warm-started trials trained together, K at a time, or "auto" '
        "(overrides [study] cohort)",
    )
    p.add_argument(
        "--threads",
        type=positive_int,
        help="CPU threads for torch (default: torch's choice; 1 is often faster for small "
        "networks on a busy machine; workers always use 1)",
    )
    p.set_defaults(func=run)


def _cohort(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f'expected a positive integer or "auto", got {text!r}'
        ) from None


def run(args: argparse.Namespace) -> int:
    import optuna
    from tqdm import tqdm

    from autosize.search import best_of, load_config, run_study, trial_results
    from autosize.search.clock import process_start
    from autosize.search.results import TrialResult, maximizing

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # SIGTERM (a scheduler, `kill`) ends the running trial like Ctrl-C: FAIL, "interrupted".
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    overrides = {
        "n_trials": args.n_trials,
        "storage": args.storage,
        "name": args.study_name,
        "cohort": args.cohort,
    }
    config = load_config(args.config, overrides=overrides)
    bar = tqdm(
        total=config.n_trials,
        desc=config.name,
        unit="trial",
        file=sys.stderr,
        disable=None,
        leave=False,
    )

    def on_trial(result: TrialResult) -> None:
        tqdm.write(result.line())
        if result.role == "warmstart":
            bar.update(1)

    try:
        study = run_study(
            config,
            workers=args.workers,
            timeout=args.timeout,
            started=process_start(),
            on_trial=on_trial,
        )
    finally:
        bar.close()
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
