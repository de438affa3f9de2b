"""autosize against a plain Optuna study from scratch, at equal wall clock from process start.

For every dataset, one side after the other on the same machine, each in its own process:

(a) **autosize**: ``autosize run studies/<dataset>.toml`` as shipped (only ``--timeout B`` and a
    fresh storage in a temp folder), and
(b) **scratch**: the Optuna study a competent user writes: ``TPESampler(seed)`` with Optuna's
    defaults, ``MedianPruner(n_warmup_steps=2)``, the validation metric reported every epoch;
    ``n_layers`` 1-3, widths 16-2048 (log), lr 1e-4..1e-2 (log), batch size {128, 256, 512},
    Adam, a fixed number of epochs per dataset (``SCRATCH_EPOCHS``: a 512-wide one-layer net takes
    about 20 s on this 2-core CPU). When the shipped config's seed is a CNN, the scratch side
    searches the same family: 1-2 conv layers (channels 8-128, log; 3x3, pool 2), then 1-2 dense,
    for a number of epochs by the same rule applied to the seed's CNN (``SCRATCH_CNN_EPOCHS``).
    Likewise its networks take the seed's activation and, when the seed embeds the numeric
    columns (``[seed] embedding``), the same embedding, for epochs by the same rule applied to
    the embedded net (``SCRATCH_EMBEDDING_EPOCHS``): the comparison stays one of method.
    Same data loaders and splits as autosize (``load_bundle`` of the shipped config), same
    training engine (``autosize.train.fit``), best-validation weights kept, as autosize does.

Both sides get the same wall budget B, counted from the moment the process is started: imports,
data loading, the seed, the baselines and every trial count, and a trial that finishes after B
does not. For each side the best-so-far curve over wall time is recorded: the validation value
and the **test metric of the best-validation network** at each improvement (selection is on
validation only; the test set never steers anything).

    AUTOSIZE_DATA_DIR=../shared/data .venv/bin/python benchmarks/search_vs_scratch.py \\
        --budget 600 --out reports/search_vs_scratch

writes ``<out>/<dataset>.json`` after every dataset, ``<out>/<dataset>.png`` (both curves against
wall time), ``<out>/<dataset>.<side>.log`` (each side's output, every line stamped with the
wall seconds at which it came: what a side did past B shows there) and ``<out>.md`` (the
table). ``--from-json`` re-renders the table and plots only.
``--scratch-from DIR`` reuses the scratch side of an earlier run at the same budget (it does not
depend on the shipped search configs, only on the data): each JSON then records the file and
the start time it came from, and the table says so below itself.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # not imported at run time: a scratch side's clock runs from its start
    from autosize.callbacks import TrainState
    from autosize.history import EpochRecord
    from autosize.search.study_config import StudyConfig

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ("mnist", "fashion_mnist", "census", "airfoil", "poker", "add10")
REGRESSION = ("airfoil", "add10")  # judged by RMSE (shown as MSE), lower is better
# Epochs per scratch trial: a 784-512-10 MLP epoch takes 0.71 s on MNIST here (batch 256), 0.083 s
# on Census, 0.074 s on Poker, 0.016 s on Add10, 0.0025 s on Airfoil (measured on this 2-core CPU,
# 2 threads); 20 s / that.
SCRATCH_EPOCHS = {
    "mnist": 28,
    "fashion_mnist": 28,
    "census": 240,
    "poker": 270,
    "add10": 1200,
    "airfoil": 8000,
}
# The same rule for the CNN family (when the shipped seed is a CNN: Fashion-MNIST's and
# MNIST's): the seed's conv16-conv32-fc128 takes about 6 s an epoch here, so 4 epochs is about
# 24 s. With the MLP rule's 28 epochs one CNN trial took 2-10 minutes and no trial finished in
# 600 s.
SCRATCH_CNN_EPOCHS = {"fashion_mnist": 4, "mnist": 4}
# And for a seed that embeds the numeric columns (``[seed] embedding``, Census's): with its
# shipped embedding a 512-wide one-layer Census net takes 1.78x the epoch time of the bare one
# (0.199 s against 0.112 s at batch 256, measured alone on 2026-12-03), so 240 / 1.78 = 135.
# Run 9 used 240 and finished one scratch trial.
SCRATCH_EMBEDDING_EPOCHS = {"census": 135}
SIDES = ("autosize", "scratch")


# --------------------------------------------------------------------------- the scratch side


def run_scratch(dataset: str, budget: float, seed: int, out: Path, t0: float) -> None:
    """The plain Optuna study (runs in its own process; ``t0`` is its start, epoch seconds)."""
    import optuna
    import torch

    from autosize.callbacks import Callback
    from autosize.models import ConvLayer, DenseLayer, build_model
    from autosize.search import load_config
    from autosize.search.prepare import load_bundle
    from autosize.train import evaluate, fit

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # The same [study] seed as the autosize side's `--seed`: it draws the validation split
    # (Add10's and Census's; Airfoil's held-out chord does not move), so at one seed both
    # sides select on the same rows.
    config = load_config(ROOT / "studies" / f"{dataset}.toml", overrides={"seed": seed})
    bundle = load_bundle(config)
    cnn = any(layer.type == "conv" for layer in config.seed_net.layers)
    regression = bundle.task == "regression"
    # the regression target's standardisation, undone by the network's head (as autosize's)
    shift, scale = (bundle.target_mean, bundle.target_std) if regression else (0.0, 1.0)
    metric = "rmse" if regression else "accuracy"
    epochs = SCRATCH_EPOCHS[dataset]
    if cnn:
        epochs = SCRATCH_CNN_EPOCHS.get(dataset, epochs)
    if config.seed_net.embedding is not None:
        epochs = SCRATCH_EMBEDDING_EPOCHS.get(dataset, epochs)
    records: list[dict[str, object]] = []

    class Report(Callback):
        def __init__(self, trial: optuna.Trial) -> None:
            self.trial = trial
            self.pruned = False

        def on_epoch_end(self, state: TrainState, record: EpochRecord) -> bool:
            value = record.val_metric
            if not math.isfinite(value):
                return False
            self.trial.report(value, record.epoch)
            if self.trial.should_prune():
                self.pruned = True
                return True
            return False

    def objective(trial: optuna.Trial) -> float:
        layers: list[DenseLayer | ConvLayer] = []
        if cnn:
            for i in range(trial.suggest_int("n_conv", 1, 2)):
                layers.append(
                    ConvLayer(trial.suggest_int(f"conv{i}", 8, 128, log=True), kernel=3, pool=2)
                )
            n_dense = trial.suggest_int("n_dense", 1, 2)
        else:
            n_dense = trial.suggest_int("n_layers", 1, 3)
        for i in range(n_dense):
            layers.append(DenseLayer(trial.suggest_int(f"width{i}", 16, 2048, log=True)))
        lr = trial.suggest_float("lr", 1e-4, 1e-2, log=True)
        batch_size = trial.suggest_categorical("batch_size", [128, 256, 512])
        # The seed's family: its activation and, where it has one, its embedding of the
        # numeric columns (config.arch builds both as the autosize side does).
        spec = config.arch(
            tuple(layers),
            bundle.input_shape,
            bundle.n_outputs,
            numeric_features=bundle.numeric_features,
            target_shift=shift,
            target_scale=scale,
        )
        model = build_model(spec, seed=seed + trial.number)
        report = Report(trial)
        history = fit(
            model,
            bundle,
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            seed=seed + trial.number,
            callbacks=[report],
            restore_best=True,
            device=config.device,
        )
        if report.pruned:
            raise optuna.TrialPruned()
        if history.stopped == "diverged":
            raise optuna.TrialPruned("diverged")
        val = evaluate(model, bundle, "val", device=config.device)[metric]
        test = evaluate(model, bundle, "test", device=config.device)[metric]
        records.append(
            {
                "number": trial.number,
                "t": time.time() - t0,
                "val": val,
                "test": test,
                "architecture": spec.summary(),
                "params": spec.param_count(),
                "lr": lr,
                "batch_size": batch_size,
            }
        )
        dump()
        return val

    def dump() -> None:  # after every trial: the parent ends this process at the budget
        states = [t.state.name for t in study.get_trials(deepcopy=False)]
        tmp = out.with_suffix(".tmp")
        tmp.write_text(
            json.dumps(
                {
                    "trials": len(states),
                    "pruned": states.count("PRUNED"),
                    "completed": states.count("COMPLETE"),
                    "records": records,
                    "torch_threads": torch.get_num_threads(),
                }
            )
        )
        tmp.replace(out)

    study = optuna.create_study(
        direction="minimize" if regression else "maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_warmup_steps=2),
    )
    study.optimize(
        objective,
        timeout=max(1.0, budget - (time.time() - t0)),
        catch=(RuntimeError,),
        callbacks=[lambda _study, _trial: dump()],
    )


# --------------------------------------------------------------------------- running the sides


def _side_scratch(dataset: str, budget: float, seed: int, work: Path) -> dict[str, object]:
    out = work / "scratch.json"
    t0 = time.time()
    cmd = [
        sys.executable,
        __file__,
        "_scratch",
        dataset,
        str(budget),
        str(seed),
        str(out),
        repr(t0),
    ]
    # Nothing finished after the budget counts: the trial running then is ended at B (+5 s).
    wall, code = _run_until(cmd, t0 + budget + 5, work / "scratch.log")
    # No file: no trial ended within the budget (the first one was still training).
    empty = {"records": [], "trials": 0, "pruned": 0, "completed": 0}
    data = json.loads(out.read_text()) if out.exists() else empty
    data.update(wall=wall, returncode=code)
    return data


def _side_autosize(
    dataset: str,
    budget: float,
    work: Path,
    cohort: int | str | None = None,
    halving: bool | None = None,
    study_seed: int | None = None,
) -> dict[str, object]:
    import optuna

    config = work / f"{dataset}.toml"  # a copy, so its state (.state/) lives in the temp folder
    config.write_text((ROOT / "studies" / f"{dataset}.toml").read_text())
    t0 = time.time()
    start = datetime.fromtimestamp(t0)  # Optuna's trial times are naive local datetimes
    # -v: the info lines (the seed, cohorts) in the side's log too
    # The console script beside this interpreter, as a user runs it; where there is none
    # (autosize on PYTHONPATH, not installed: the lent GPU machine), the same CLI by -m.
    script = Path(sys.executable).with_name("autosize")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "autosize"]
    cmd += ["-v", "run", str(config)]
    cmd += ["--timeout", str(budget), "--n-trials", "100000"]
    if cohort is not None:  # K trials trained together (autosize.population); 1: one at a time
        cmd += ["--cohort", str(cohort)]
    if halving is not None:  # successive halving inside each cohort (search.cohort.Halving)
        cmd += ["--halving" if halving else "--no-halving"]
    if study_seed is not None:  # [study] seed
        cmd += ["--seed", str(study_seed)]
    # autosize should end by itself within 5% of B; its overrun is measured, up to 25%.
    wall, code = _run_until(cmd, t0 + budget * 1.25 + 10, work / "autosize.log")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(
        study_name=dataset, storage=f"sqlite:///{work / '.state' / f'{dataset}.db'}"
    )
    regression = study.user_attrs["autosize"]["task"] == "regression"
    metric = "rmse" if regression else "accuracy"
    records = []
    for t in study.get_trials(deepcopy=False):
        a = t.user_attrs
        if t.state.name != "COMPLETE" or "test" not in a or t.datetime_complete is None:
            continue
        records.append(
            {
                "number": t.number,
                "t": (t.datetime_complete - start).total_seconds(),
                "val": a["val"][metric],
                "test": a["test"][metric],
                "architecture": a.get("architecture"),
                "params": a.get("params"),
                "role": a.get("role"),
                "operation": a.get("operation"),
                "lineage_epochs": a.get("lineage_epochs"),
            }
        )
    seed = study.user_attrs.get("seed") or {}
    states = [t.state.name for t in study.trials]
    return {
        "records": records,
        "trials": len(states),
        "pruned": states.count("PRUNED"),
        "completed": states.count("COMPLETE"),
        "seed": {k: seed.get(k) for k in ("architecture", "epochs", "seconds")},
        "wall": wall,
        "returncode": code,
    }


def _run_until(cmd: list[str], kill_at: float, log: Path) -> tuple[float, int]:
    """Run ``cmd`` with its output in ``log``; SIGKILL it at ``kill_at`` (epoch seconds).

    Returns (wall seconds, exit code). Each line of the log starts with the wall seconds
    since the start at which this process read it, so an overrun shows what ran in it."""
    t0 = time.time()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log.open("w") as f:
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            env=env,
        )
        assert proc.stdout is not None
        killer = threading.Timer(max(1.0, kill_at - time.time()), proc.kill)
        killer.start()
        try:
            for line in proc.stdout:
                f.write(f"{time.time() - t0:8.1f} {line}")
            code = proc.wait()
        finally:
            killer.cancel()
        f.write(f"{time.time() - t0:8.1f} (exit code {code})\n")
    return time.time() - t0, code


def best_curve(records: list[dict], *, maximize: bool, budget: float) -> list[dict]:
    """The best-so-far points (by validation) among networks finished by ``budget``."""
    curve: list[dict] = []
    for r in sorted(records, key=lambda r: r["t"]):
        if r["t"] > budget or not math.isfinite(r["val"]):
            continue
        if not curve or (r["val"] > curve[-1]["val"] if maximize else r["val"] < curve[-1]["val"]):
            curve.append(r)
    return curve


def _earlier_scratch(path: Path, budget: float) -> dict[str, object]:
    """The scratch side of an earlier run (``--scratch-from``), with where and when it ran."""
    try:
        earlier = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SystemExit(f"--scratch-from: cannot read {path}: {exc}") from None
    if "scratch" not in earlier:
        raise SystemExit(f"--scratch-from: {path} has no scratch side")
    if earlier.get("budget") != budget:
        raise SystemExit(
            f"--scratch-from: {path} ran at budget {earlier.get('budget')}, not {budget:g}"
        )
    return {
        "scratch": earlier["scratch"],
        "load_after_scratch": earlier.get("load_after_scratch"),
        "scratch_from": {"file": str(path), "started": earlier.get("started")},
    }


def _shipped(dataset: str) -> StudyConfig:
    from autosize.search import load_config

    return load_config(ROOT / "studies" / f"{dataset}.toml")


def run_dataset(
    dataset: str,
    budget: float,
    seed: int | None,
    sides: tuple[str, ...],
    cohort: int | str | None = None,
    logs: Path | None = None,
    halving: bool | None = None,
) -> dict:
    """Both sides of one dataset, one after the other; each side's output goes to
    ``logs/<dataset>.<side>.log`` (when ``logs`` is given)."""
    shipped = _shipped(dataset)
    result: dict[str, object] = {
        "dataset": dataset,
        "budget": budget,
        # --cohort K, else what the shipped config asks for ([study] cohort, default 1)
        "cohort": cohort if cohort is not None else shipped.cohort,
        "halving": halving if halving is not None else shipped.halving,
        # the autosize side's [study] seed (the scratch side's TPE seed is this or 0)
        "seed": seed if seed is not None else shipped.seed,
        "load_before": os.getloadavg(),
        "started": datetime.now().isoformat(timespec="seconds"),
    }
    for side in sides:
        with tempfile.TemporaryDirectory(prefix=f"svs-{dataset}-{side}-") as tmp:
            print(f"[{dataset}] {side}: {budget:.0f} s ...", file=sys.stderr, flush=True)
            data = (
                _side_autosize(dataset, budget, Path(tmp), cohort, halving, seed)
                if side == "autosize"
                else _side_scratch(dataset, budget, seed or 0, Path(tmp))
            )
            if logs is not None:
                shutil.copyfile(Path(tmp) / f"{side}.log", logs / f"{dataset}.{side}.log")
        result[side] = data
        result[f"load_after_{side}"] = os.getloadavg()
    return result


# --------------------------------------------------------------------------- report


def _shown(dataset: str, rmse_or_acc: float | None) -> str:
    if rmse_or_acc is None:
        return "-"
    if dataset in REGRESSION:
        return f"{rmse_or_acc**2:.3f}"  # MSE (dB^2 for airfoil)
    return f"{100 * rmse_or_acc:.2f}%"


def summarise(result: dict) -> dict:
    ds, budget = result["dataset"], result["budget"]
    maximize = ds not in REGRESSION
    out: dict[str, object] = {}
    curves = {}
    for side in SIDES:
        if side in result:
            curves[side] = best_curve(result[side]["records"], maximize=maximize, budget=budget)
    scratch_final = curves["scratch"][-1] if curves.get("scratch") else None
    for side, curve in curves.items():
        final = curve[-1] if curve else None
        reached = None
        if scratch_final is not None:
            for r in curve:
                if (
                    (r["test"] >= scratch_final["test"])
                    if maximize
                    else (r["test"] <= scratch_final["test"])
                ):
                    reached = r["t"]
                    break
        out[side] = {
            "final": final,
            "reached_scratch_at": reached,
            "trials": result[side].get("trials"),
            "completed": result[side].get("completed"),
            "wall": result[side].get("wall"),
            "curve": curve,
        }
    return out


def render(results: list[dict], out: Path) -> str:
    lines = [
        "| dataset | metric | scratch test @B | autosize test @B | autosize wins | scratch reached its "
        "final at | autosize reached it at | trials (scratch / autosize) | process wall s "
        "(scratch / autosize) | best scratch net | best autosize net |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        ds = result["dataset"]
        s = summarise(result)
        maximize = ds not in REGRESSION
        sc, au = s.get("scratch", {}), s.get("autosize", {})
        fs, fa = sc.get("final"), au.get("final")
        win = "-"
        if fs and fa:
            win = (
                "yes"
                if (fa["test"] >= fs["test"] if maximize else fa["test"] <= fs["test"])
                else "no"
            )

        def t(x: float | None) -> str:
            return "-" if x is None else f"{x:.0f} s"

        def net(f: dict | None) -> str:
            return "-" if not f else f"`{f['architecture']}` ({f['params']:,})"

        lines.append(
            f"| {ds} | {'accuracy' if maximize else 'MSE'} | {_shown(ds, fs and fs['test'])} | "
            f"{_shown(ds, fa and fa['test'])} | {win} | {t(sc.get('reached_scratch_at'))} | "
            f"{t(au.get('reached_scratch_at'))} | {sc.get('trials', '-')} / {au.get('trials', '-')} | "
            f"{t(sc.get('wall'))} / {t(au.get('wall'))} | {net(fs)} | {net(fa)} |"
        )
        _plot(result, s, out / f"{ds}.png")
    reused = [r for r in results if r.get("scratch_from")]
    if reused:
        lines.append("")
        for r in reused:
            src = r["scratch_from"]
            lines.append(
                f"{r['dataset']}: scratch side from {src['file']} (that run started {src['started']})"
            )
    return "\n".join(lines)


def _plot(result: dict, s: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ds = result["dataset"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for side, style in (("scratch", "tab:gray"), ("autosize", "tab:blue")):
        curve = s.get(side, {}).get("curve") or []
        if not curve:
            continue
        ts = [r["t"] for r in curve] + [result["budget"]]
        for ax, key in zip(axes, ("val", "test"), strict=True):
            ys = [r[key] for r in curve]
            ys = [y**2 for y in ys] if ds in REGRESSION else ys
            ax.step(ts, [*ys, ys[-1]], where="post", label=side, color=style)
    for ax, key in zip(axes, ("validation", "test of best-validation net"), strict=True):
        ax.set_xlabel("wall seconds from process start")
        ax.set_ylabel(("MSE " if ds in REGRESSION else "accuracy ") + key)
        ax.set_xlim(0, result["budget"])
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"{ds}: best so far, B = {result['budget']:.0f} s")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_scratch":
        dataset, budget, seed, out, t0 = argv[1:6]
        run_scratch(dataset, float(budget), int(seed), Path(out), float(t0))
        return 0
    from autosize.cli._common import cohort_size  # not before a scratch side: its clock runs

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget", type=float, default=600.0, help="wall seconds per side")
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--sides", default=",".join(SIDES))
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="both sides' seed: the scratch side's TPE sampler, networks and validation "
        "split (default 0) and `autosize run --seed` (default: the shipped config's "
        "[study] seed)",
    )
    parser.add_argument(
        "--cohort",
        type=cohort_size,  # what `autosize run --cohort` takes
        default=None,
        help='autosize side: --cohort K (K trials trained together; 1: one at a time) or "auto"; '
        "default: the shipped config's [study] cohort",
    )
    parser.add_argument(
        "--halving",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="autosize side: successive halving inside each cohort, or not; default: the "
        "shipped config's [study] halving",
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "out" / "search_vs_scratch"
    )
    parser.add_argument("--from-json", action="store_true", help="only re-render from <out>/*.json")
    parser.add_argument(
        "--scratch-from",
        type=Path,
        help="take the scratch side from <DIR>/<dataset>.json of an earlier run at the same "
        "budget instead of running it again (it does not depend on the shipped search); "
        "the result records where it came from",
    )
    args = parser.parse_args(argv)
    datasets = [d for d in args.datasets.split(",") if d]
    for d in datasets:
        if d not in DATASETS:
            parser.error(
                f"--datasets: unknown dataset {d!r}; expected some of {', '.join(DATASETS)}"
            )
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for ds in datasets:
        path = args.out / f"{ds}.json"
        if args.from_json:
            if path.exists():
                results.append(json.loads(path.read_text()))
            continue
        sides = tuple(args.sides.split(","))
        earlier = None
        if args.scratch_from is not None:
            earlier = _earlier_scratch(args.scratch_from / f"{ds}.json", args.budget)
            sides = tuple(side for side in sides if side != "scratch")
        result = run_dataset(
            ds, args.budget, args.seed, sides, args.cohort, logs=args.out, halving=args.halving
        )
        if earlier is not None:
            result.update(earlier)
        path.write_text(json.dumps(result, indent=1))
        results.append(result)
        print(render([result], args.out), flush=True)
    table = render(results, args.out)
    print(table)
    (args.out.with_suffix(".table.md")).write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
