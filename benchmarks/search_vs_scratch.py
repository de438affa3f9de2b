"""autosize against Optuna studies from scratch, at equal wall clock from process start.

For every dataset (and seed), one side after the other on the same machine, each in its own
process:

(a) **autosize**: ``autosize run <config>`` (only ``--timeout B``, ``--seed`` when given and a
    fresh storage in a temp folder), where ``<config>`` is ``studies/<dataset>.toml`` as shipped
    or, with ``--autosize-config zero``, a copy of it with only ``[study]`` (name, timeout, seed,
    objective) and ``[data]``: what the defaults chosen from the data reach on their own.
(b) **scratch**: the Optuna study a user who read Optuna's docs writes (the competent
    opponent): ``TPESampler(seed)`` with Optuna's defaults, ``HyperbandPruner(min_resource=1,
    max_resource=MAX_EPOCHS, reduction_factor=3)`` on the epoch (the validation metric reported
    every epoch), every trial keeping its best-validation epoch, AdamW with the weight decay
    searched (1e-6..1e-1, log), dropout 0-0.5 on every dense layer, lr 1e-4..1e-2 (log), batch
    size {64, 128, 256, 512}. Each trial may train up to ``MAX_EPOCHS`` epochs
    (``COMPETENT_EPOCHS``: three times the textbook side's), at most a tenth of B
    (``TRIAL_SHARE``), and stops when its validation value has not improved for a tenth of its
    epoch cap (``PATIENCE_SHARE``, at least 5 epochs), so that Hyperband's rungs, early stopping
    and the budget, not a fixed schedule, end its trials; and the trial running at the
    deadline is cut there (``fit(max_seconds=...)`` up to B less a reserve for its last
    evaluations), evaluated and counted (``"cut": true``), as autosize's running trial is.
    With a HyperbandPruner Optuna shows TPE only the trials of a trial's bracket, so its
    random start-up (``n_startup_trials``, 10) is per bracket, and the first trial of each
    bracket is never pruned (alone at its rungs, it is the best there): ``tpe_after_startup``
    counts the trials TPE chose, ``hyperband_brackets`` says how many brackets share B.
(c) **textbook**: the first-tutorial study: ``TPESampler(seed)``, ``MedianPruner(
    n_warmup_steps=2)``, ``n_layers`` 1-3, widths 16-2048 (log), lr 1e-4..1e-2 (log), batch size
    {128, 256, 512}, Adam, a fixed number of epochs per dataset (``SCRATCH_EPOCHS``: a 512-wide
    one-layer net takes about 20 s on this 2-core CPU); the trial running at B is lost (the
    process is ended at B + 5 s). At 600 s it completes 3-8 trials on several datasets, so its
    TPE never leaves the random start-up: kept as the reference earlier reports measured.

Both Optuna sides search the family of autosize's seed network, taken from the *prepared*
config (``autosize.search.prepare``: the config with what it leaves out chosen from the data):
when the seed is a CNN, 1-2 conv layers (channels 8-128, log; 3x3, pool 2), then 1-2 dense, for
a number of epochs by the same rule applied to the seed's CNN (``SCRATCH_CNN_EPOCHS``); its
activation and, when the seed embeds the numeric columns (``[seed] embedding``), the same
embedding, for epochs by the same rule applied to the embedded net
(``SCRATCH_EMBEDDING_EPOCHS``): the comparison stays one of method. Same data loaders and splits
as autosize (the same config and seed), same training engine (``autosize.train.fit``),
best-validation weights kept, as autosize does.

Every side gets the same wall budget B, counted from the moment the process is started:
imports, data loading, the seed, the baselines and every trial count, and a network finished
after B does not. For each side the best-so-far curve over wall time is recorded: the
validation value and the **test metric of the best-validation network** at each improvement
(selection is on validation only; the test set never steers anything).

    AUTOSIZE_DATA_DIR=../shared/data .venv/bin/python benchmarks/search_vs_scratch.py \\
        --budget 600 --out reports/search_vs_scratch

writes ``<out>/<dataset>.json`` after every dataset, ``<out>/<dataset>.png`` (the curves
against wall time), ``<out>/<dataset>.<side>.log`` (each side's output, every line stamped with
the wall seconds at which it came: what a side did past B shows there) and
``<out>.table.md`` (the tables). ``--seeds 0,1,2`` runs every dataset at each seed (for every
side) and names the files ``<dataset>_s<seed>.*``; the tables then add each side's mean and
min-max over the seeds. ``--from-json`` re-renders the tables and plots from the JSON files in
``<out>``. ``--sides`` picks some of ``autosize,scratch,textbook``.
``--scratch-from DIR`` reuses the Optuna sides (scratch, textbook) found in an earlier run's
JSON at the same budget (they do not depend on autosize's search settings, only on the data and
the seed's family): each JSON then records the file and the start time they came from, and the
table says so below itself. A result without ``"scratch_kind": "competent"`` (written before
the competent side existed) has the textbook side under ``scratch``: it renders as textbook.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # not imported at run time: a scratch side's clock runs from its start
    import optuna
    from torch import nn

    from autosize.callbacks import Callback, TrainState
    from autosize.history import EpochRecord, History
    from autosize.models import ArchSpec, ConvLayer, DenseLayer, Layer
    from autosize.search.config.schema import StudyConfig
    from autosize.search.prepare import Prepared

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ("mnist", "fashion_mnist", "census", "airfoil", "poker", "add10")
REGRESSION = ("airfoil", "add10")  # judged by RMSE (shown as MSE), lower is better
# Epochs per textbook trial: a 784-512-10 MLP epoch takes 0.71 s on MNIST here (batch 256),
# 0.083 s on Census, 0.074 s on Poker, 0.016 s on Add10, 0.0025 s on Airfoil (measured on this
# 2-core CPU, 2 threads); 20 s / that.
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
# The competent side's MAX_EPOCHS (Hyperband's max_resource and each trial's epoch cap): three
# times the textbook rule above, i.e. about 60 s for a 512-wide net of the family (a tenth of
# the usual 600 s budget). The textbook's ~20 s is a schedule short enough for a handful of
# trials; a Hyperband user sets the cap where a good network has stopped improving and lets
# the rungs stop the others early, so a good trial ends by its cap only after ~3x longer, and
# the one running at B by the budget (the cut). The rule, not a tuned value: same factor for
# every dataset and family.
MAX_EPOCHS_FACTOR = 3
COMPETENT_EPOCHS = {ds: MAX_EPOCHS_FACTOR * n for ds, n in SCRATCH_EPOCHS.items()}
COMPETENT_CNN_EPOCHS = {ds: MAX_EPOCHS_FACTOR * n for ds, n in SCRATCH_CNN_EPOCHS.items()}
COMPETENT_EMBEDDING_EPOCHS = {
    ds: MAX_EPOCHS_FACTOR * n for ds, n in SCRATCH_EMBEDDING_EPOCHS.items()
}
HYPERBAND_REDUCTION = 3
# No competent trial takes more than this share of the budget, and one whose validation value
# has not improved for PATIENCE_SHARE of its epoch cap (at least MIN_PATIENCE epochs) stops:
# what a user who sizes a study to a wall budget writes. Without them (run 15, 2026-12-07) the
# first trial of each Hyperband bracket, alone at its rungs and never pruned, trained to the
# epoch cap: 2-4 trials in 600 s on MNIST, Census and Airfoil (405 epochs of a Census net
# whose best epoch was the 10th), never leaving TPE's start-up.
TRIAL_SHARE = 0.1
PATIENCE_SHARE = 0.1
MIN_PATIENCE = 5
# The competent side stops training this long before B, plus the measured time of the
# evaluations still to come after the cut (fit's validation of the cut epoch, then validation
# and test of the restored network): the last trial's record must land before B, and the
# parent's SIGKILL comes at B + 5 s.
CUT_RESERVE_S = 2.0
# Less than this left before the cut: no new trial starts (a trial of a few batches is noise).
MIN_TRIAL_S = 1.0
SIDES = ("autosize", "scratch", "textbook")
OPTUNA_SIDES = ("scratch", "textbook")
AUTOSIZE_CONFIGS = ("shipped", "zero", "tuned")
# What --autosize-config zero keeps of the shipped [study] (and all of [data]).
ZERO_STUDY_KEYS = ("name", "timeout", "seed", "objective")


# --------------------------------------------------------------------------- the Optuna sides


def _prepared(config_path: Path, seed: int, budget: float) -> Prepared:
    """The config as ``autosize run --seed S --timeout B`` prepares it: what a minimal config
    leaves out (the seed network among it) is chosen from the data, so both Optuna sides search
    the family of the seed autosize actually grows. The seed also draws the validation split
    (Add10's and Census's; Airfoil's held-out chord does not move), so at one seed every side
    selects on the same rows."""
    from autosize.search import load_config
    from autosize.search.prepare import prepare

    return prepare(load_config(config_path, overrides={"seed": seed, "timeout": budget}))


def _family(p: Prepared) -> dict[str, object]:
    seed_net = p.config.seed_net
    return {
        "conv": any(layer.type == "conv" for layer in seed_net.layers),
        "activation": seed_net.activation,
        "embedding": None if seed_net.embedding is None else repr(seed_net.embedding),
    }


def _epochs_for(
    p: Prepared, dense: dict[str, int], cnn: dict[str, int], embedded: dict[str, int]
) -> int:
    """Epochs per trial for the prepared config's dataset and family (the dicts above)."""
    name = p.config.data.name
    if name not in dense:
        raise SystemExit(
            f"[data] name: no epoch rule for dataset {name!r}; expected one of {', '.join(dense)}"
        )
    epochs = dense[name]
    if any(layer.type == "conv" for layer in p.config.seed_net.layers):
        epochs = cnn.get(name, epochs)
    if p.config.seed_net.embedding is not None:
        epochs = embedded.get(name, epochs)
    return epochs


def _layers(
    trial: optuna.Trial, conv: bool, dropout: float = 0.0
) -> tuple[DenseLayer | ConvLayer, ...]:
    """The architecture part of both Optuna sides' search spaces (the textbook's: no dropout)."""
    from autosize.models import ConvLayer, DenseLayer

    layers: list[DenseLayer | ConvLayer] = []
    if conv:
        for i in range(trial.suggest_int("n_conv", 1, 2)):
            layers.append(
                ConvLayer(trial.suggest_int(f"conv{i}", 8, 128, log=True), kernel=3, pool=2)
            )
        n_dense = trial.suggest_int("n_dense", 1, 2)
    else:
        n_dense = trial.suggest_int("n_layers", 1, 3)
    for i in range(n_dense):
        layers.append(
            DenseLayer(trial.suggest_int(f"width{i}", 16, 2048, log=True), dropout=dropout)
        )
    return tuple(layers)


def _tpe_startup() -> int:
    """TPE's ``n_startup_trials`` as Optuna defaults it (both sides leave it at that)."""
    import optuna

    default = inspect.signature(optuna.samplers.TPESampler).parameters["n_startup_trials"].default
    return int(default)


def _seen_by_sampler(study: optuna.Study, trial: optuna.Trial) -> int:
    """Finished (COMPLETE + PRUNED) trials TPE's start-up test counts for ``trial``.

    With a HyperbandPruner Optuna hands the sampler only the trials of ``trial``'s bracket
    (``optuna.pruners._filter_study``, what ``Trial`` itself calls before sampling), so the
    start-up phase of ``n_startup_trials`` is per bracket; with the MedianPruner it is the whole
    study."""
    import optuna
    from optuna.pruners import _filter_study

    frozen = next(t for t in study.get_trials(deepcopy=False) if t.number == trial.number)
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return len(_filter_study(study, frozen).get_trials(deepcopy=False, states=finished))


def _dump(study: optuna.Study, out: Path, extra: dict[str, object]) -> None:
    """The side's JSON, written after every trial: the parent ends this process at B + 5 s."""
    import torch

    trials = [t for t in study.get_trials(deepcopy=False) if not t.user_attrs.get("unstarted")]
    states = [t.state.name for t in trials]
    tmp = out.with_suffix(".tmp")
    tmp.write_text(
        json.dumps(
            {
                "trials": len(states),
                "pruned": states.count("PRUNED"),
                "completed": states.count("COMPLETE"),
                # trials that started after TPE's start-up phase (its own model, not random)
                "tpe_after_startup": sum(bool(t.user_attrs.get("after_startup")) for t in trials),
                "torch_threads": torch.get_num_threads(),
                **extra,
            }
        )
    )
    tmp.replace(out)


def _reporter(trial: optuna.Trial, cut_at: float = math.inf) -> tuple[Callback, Callable[[], bool]]:
    """A callback reporting every epoch's validation value to ``trial`` (a prune stops
    training) and a function saying whether it pruned. Past ``cut_at`` (time.time()) the
    epoch is a partial one: the trial is counted, not judged."""
    from autosize.callbacks import Callback

    pruned = [False]

    class Report(Callback):
        def on_epoch_end(self, state: TrainState, record: EpochRecord) -> bool:
            value = record.val_metric
            if not math.isfinite(value) or time.time() >= cut_at:
                return False
            trial.report(value, record.epoch)
            pruned[0] = trial.should_prune()
            return pruned[0]

    return Report(), lambda: pruned[0]


def _spec(p: Prepared, layers: tuple[Layer, ...]) -> ArchSpec:
    """``layers`` in the seed's family: its activation and, where it has one, its embedding of
    the numeric columns, with the regression target's standardisation undone by the head, as
    the autosize side builds its networks."""
    b = p.bundle
    regression = b.task == "regression"
    return p.config.arch(
        layers,
        b.input_shape,
        b.n_outputs,
        numeric_features=b.numeric_features,
        target_shift=b.target_mean if regression else 0.0,
        target_scale=b.target_std if regression else 1.0,
    )


def _judged(
    trial: optuna.Trial,
    model: nn.Module,
    spec: ArchSpec,
    p: Prepared,
    history: History,
    pruned: bool,
    t0: float,
) -> dict[str, float | int | str]:
    """A finished trial's record (validation and test of its restored best epoch), or
    TrialPruned for a pruned or diverged one: what both Optuna sides do after ``fit``."""
    import optuna

    from autosize.train import evaluate

    if pruned:
        raise optuna.TrialPruned()
    if history.stopped == "diverged":
        raise optuna.TrialPruned("diverged")
    metric = "rmse" if p.bundle.task == "regression" else "accuracy"
    return {
        "number": trial.number,
        "t": time.time() - t0,
        "val": evaluate(model, p.bundle, "val", device=p.config.device)[metric],
        "test": evaluate(model, p.bundle, "test", device=p.config.device)[metric],
        "architecture": spec.summary(),
        "params": spec.param_count(),
    }


def run_textbook(config_path: Path, budget: float, seed: int, out: Path, t0: float) -> optuna.Study:
    """The textbook Optuna study (runs in its own process; ``t0`` is its start, epoch seconds).

    Fixed epochs, MedianPruner, Adam: what earlier reports measured as "scratch"."""
    import optuna

    from autosize.models import build_model
    from autosize.train import fit

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    p = _prepared(config_path, seed, budget)
    config, bundle = p.config, p.bundle
    conv = bool(_family(p)["conv"])
    regression = bundle.task == "regression"
    epochs = _epochs_for(p, SCRATCH_EPOCHS, SCRATCH_CNN_EPOCHS, SCRATCH_EMBEDDING_EPOCHS)
    startup = _tpe_startup()
    records: list[dict[str, object]] = []

    def objective(trial: optuna.Trial) -> float:
        trial.set_user_attr("after_startup", _seen_by_sampler(study, trial) >= startup)
        layers = _layers(trial, conv)
        lr = trial.suggest_float("lr", 1e-4, 1e-2, log=True)
        batch_size = trial.suggest_categorical("batch_size", [128, 256, 512])
        spec = _spec(p, layers)
        model = build_model(spec, seed=seed + trial.number)
        report, pruned = _reporter(trial)
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
        record = _judged(trial, model, spec, p, history, pruned(), t0)
        records.append({**record, "lr": lr, "batch_size": batch_size})
        dump()
        return float(record["val"])

    def dump() -> None:
        _dump(study, out, {"records": records, "epochs": epochs, "family": _family(p)})

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
    return study


def run_competent(
    config_path: Path, budget: float, seed: int, out: Path, t0: float
) -> optuna.Study:
    """The competent Optuna study (runs in its own process; ``t0`` is its start, epoch seconds).

    Returns the study (the benchmark reads only ``out``; tests read both)."""
    import optuna

    from autosize.callbacks import EarlyStopping
    from autosize.models import build_model
    from autosize.train import evaluate, fit

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    p = _prepared(config_path, seed, budget)
    config, bundle = p.config, p.bundle
    conv = bool(_family(p)["conv"])
    regression = bundle.task == "regression"
    max_epochs = _epochs_for(p, COMPETENT_EPOCHS, COMPETENT_CNN_EPOCHS, COMPETENT_EMBEDDING_EPOCHS)
    startup = _tpe_startup()
    deadline = t0 + budget
    # The evaluations after a cut, timed per trial on a slice of the validation rows and
    # scaled: fit validates the cut epoch, then validation and test of the restored network.
    probe_rows = min(bundle.sizes["val"], 1024)
    probe = bundle.subset(val=probe_rows)
    after_cut_rows = 2 * bundle.sizes["val"] + bundle.sizes["test"]
    records: list[dict[str, object]] = []
    last_reserve = CUT_RESERVE_S
    fit_overhead = 0.0  # the most any trial's fit spent outside its epochs so far
    # The first fit of a process sets torch up (about 1.4 s here), outside fit's max_seconds:
    # paid here, once, so that a first trial cut at the deadline still ends before it.
    warm = bundle.subset(train=64, val=64, test=64)
    fit(
        build_model(p.seed_spec, seed=seed), warm, epochs=1, optimizer="adamw", device=config.device
    )

    def objective(trial: optuna.Trial) -> float:
        nonlocal last_reserve, fit_overhead
        trial.set_user_attr("after_startup", _seen_by_sampler(study, trial) >= startup)
        dropout = trial.suggest_float("dropout", 0.0, 0.5)
        layers = _layers(trial, conv, dropout)
        lr = trial.suggest_float("lr", 1e-4, 1e-2, log=True)
        weight_decay = trial.suggest_float("weight_decay", 1e-6, 1e-1, log=True)
        batch_size = trial.suggest_categorical("batch_size", [64, 128, 256, 512])
        spec = _spec(p, layers)
        model = build_model(spec, seed=seed + trial.number)
        start = time.perf_counter()
        evaluate(model, probe, "val", device=config.device)
        evaluations = (time.perf_counter() - start) * after_cut_rows / probe_rows
        reserve = CUT_RESERVE_S + evaluations + fit_overhead
        last_reserve = reserve
        left = deadline - time.time() - reserve
        if left < MIN_TRIAL_S:  # not a trial: left out of the counts
            trial.set_user_attr("unstarted", True)
            study.stop()
            raise optuna.TrialPruned(f"{left:.1f} s left before the cut")
        report, pruned = _reporter(trial, cut_at=time.time() + left)
        capped = TRIAL_SHARE * budget < left  # the trial's own cap ends it before the deadline
        patience = max(MIN_PATIENCE, math.ceil(PATIENCE_SHARE * max_epochs))
        start = time.perf_counter()
        history = fit(
            model,
            bundle,
            epochs=max_epochs,
            max_seconds=min(left, TRIAL_SHARE * budget),
            optimizer="adamw",
            lr=lr,
            weight_decay=weight_decay,
            batch_size=batch_size,
            seed=seed + trial.number,
            callbacks=[report, EarlyStopping(patience, monitor="val_metric")],
            restore_best=True,
            device=config.device,
        )
        if history.epochs:  # fit's time outside its loop: setup, restoring the best epoch
            outside = time.perf_counter() - start - history.epochs[-1].elapsed
            fit_overhead = max(fit_overhead, outside)
        record = _judged(trial, model, spec, p, history, pruned(), t0)
        cut = history.stopped == "time" and not capped  # by the deadline, not its own cap
        trial.set_user_attr("cut", cut)
        records.append(
            {
                **record,
                "lr": lr,
                "batch_size": batch_size,
                "weight_decay": weight_decay,
                "dropout": dropout,
                "epochs": len(history.epochs),
                "best_epoch": history.best_epoch,
                "cut": cut,
                "stopped": history.stopped,
                "after_startup": trial.user_attrs["after_startup"],
            }
        )
        dump()
        return float(record["val"])

    def dump() -> None:
        _dump(
            study,
            out,
            {
                "records": records,
                "max_epochs": max_epochs,
                "trial_seconds": TRIAL_SHARE * budget,
                "patience": max(MIN_PATIENCE, math.ceil(PATIENCE_SHARE * max_epochs)),
                "hyperband_brackets": n_brackets,
                "tpe_startup_trials": startup,
                "family": _family(p),
            },
        )

    def stop_when_late(study: optuna.Study, _trial: optuna.trial.FrozenTrial) -> None:
        dump()
        if deadline - time.time() - last_reserve < MIN_TRIAL_S:
            study.stop()

    # Optuna's own bracket count for these settings (HyperbandPruner._try_initialization).
    n_brackets = math.floor(math.log(max_epochs, HYPERBAND_REDUCTION)) + 1
    study = optuna.create_study(
        direction="minimize" if regression else "maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=max_epochs, reduction_factor=HYPERBAND_REDUCTION
        ),
    )
    study.optimize(
        objective,
        # Stops starting trials at B; the cut (fit's max_seconds) ends the one running then.
        timeout=max(1.0, budget - (time.time() - t0)),
        catch=(RuntimeError,),
        callbacks=[stop_when_late],
    )
    return study


# --------------------------------------------------------------------------- configs


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)  # inf and nan are TOML too
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
        )
    raise TypeError(f"cannot write {type(value).__name__} {value!r} as TOML")


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def write_zero_config(shipped: Path, dest: Path) -> Path:
    """``dest``: ``shipped`` cut to ``[study]`` (``ZERO_STUDY_KEYS``) and ``[data]``.

    Everything else (seed network, training, search space, sampler, pruner, cohort) is then
    chosen from the data when autosize prepares the study, so the autosize side measures its
    defaults, not a config tuned by hand."""
    try:
        raw = tomllib.loads(shipped.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SystemExit(f"--autosize-config zero: cannot read {shipped}: {exc}") from None
    study, data = raw.get("study"), raw.get("data")
    if not isinstance(study, dict) or not isinstance(data, dict):
        raise SystemExit(f"--autosize-config zero: {shipped} needs a [study] and a [data] table")
    lines = [
        f"# {shipped.name} with only [study] ({', '.join(ZERO_STUDY_KEYS)}) and [data] kept",
        "# (benchmarks/search_vs_scratch.py --autosize-config zero): the rest is chosen from the",
        "# data.",
        "",
        "[study]",
    ]
    lines += [f"{k} = {_toml_value(study[k])}" for k in ZERO_STUDY_KEYS if k in study]
    lines += ["", "[data]"]
    lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in data.items()]
    dest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return dest


def _write_config(dataset: str, kind: str, dest: Path) -> Path:
    """The config the autosize side runs (and the Optuna sides take their family from)."""
    shipped = ROOT / "studies" / f"{dataset}.toml"
    if kind == "zero":
        return write_zero_config(shipped, dest)
    if kind == "tuned":  # the hand-tuned config studies/<dataset>.toml held until 2026-12-07
        shipped = ROOT / "studies" / "tuned" / f"{dataset}.toml"
    dest.write_text(shipped.read_text(encoding="utf-8"), encoding="utf-8")
    return dest


# --------------------------------------------------------------------------- running the sides


def _side_optuna(
    kind: str, config: Path, budget: float, seed: int, work: Path
) -> dict[str, object]:
    out = work / f"{kind}.json"
    t0 = time.time()
    cmd = [
        sys.executable,
        __file__,
        "_scratch",
        kind,
        str(config),
        str(budget),
        str(seed),
        str(out),
        repr(t0),
    ]
    # Nothing finished after the budget counts: a textbook trial running then is ended at
    # B (+5 s); the competent side cuts its own before B.
    wall, code = _run_until(cmd, t0 + budget + 5, work / f"{kind}.log")
    # No file: no trial ended within the budget (the first one was still training).
    empty = {"records": [], "trials": 0, "pruned": 0, "completed": 0}
    data = json.loads(out.read_text()) if out.exists() else empty
    data.update(wall=wall, returncode=code)
    return data


def _side_autosize(
    dataset: str,
    config: Path,
    budget: float,
    work: Path,
    cohort: int | str | None = None,
    halving: bool | None = None,
    study_seed: int | None = None,
) -> dict[str, object]:
    """``autosize run config``; ``config`` lies in ``work``, so its state (.state/) does too."""
    import optuna

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
                # the network's full spec: benchmarks/sizing_paid.py trains it from scratch
                "spec": a.get("spec"),
            }
        )
    seed = study.user_attrs.get("seed") or {}
    states = [t.state.name for t in study.trials]
    return {
        "records": records,
        "trials": len(states),
        "pruned": states.count("PRUNED"),
        "completed": states.count("COMPLETE"),
        "seed": {k: seed.get(k) for k in ("architecture", "epochs", "seconds", "spec")},
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


def side_label(result: dict, side: str) -> str:
    """What ``result[side]`` is: before the competent side existed (no ``scratch_kind``), the
    JSON's ``scratch`` was the textbook study."""
    if side == "scratch" and result.get("scratch_kind") != "competent":
        return "textbook"
    return side


def _earlier_sides(
    path: Path, budget: float, wanted: tuple[str, ...], autosize_config: str = "shipped"
) -> tuple[dict[str, object], tuple[str, ...]]:
    """The Optuna sides of an earlier run (``--scratch-from``) among ``wanted`` (all it has,
    where ``wanted`` names none), with where and when they ran; and the sides still to run.
    The earlier run must have had the same budget and the same ``--autosize-config`` (the
    Optuna sides search the family of that config's seed)."""
    # Only autosize to run: it is compared with every Optuna side the earlier run has.
    optuna_wanted = [side for side in wanted if side in OPTUNA_SIDES] or list(OPTUNA_SIDES)
    try:
        earlier = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SystemExit(f"--scratch-from: cannot read {path}: {exc}") from None
    if earlier.get("budget") != budget:
        raise SystemExit(
            f"--scratch-from: {path} ran at budget {earlier.get('budget')}, not {budget:g}"
        )
    if earlier.get("autosize_config", "shipped") != autosize_config:
        raise SystemExit(
            f"--scratch-from: {path} ran with --autosize-config "
            f"{earlier.get('autosize_config', 'shipped')}, not {autosize_config}"
        )
    # this run's side -> the earlier JSON's key for it
    keys = {side_label(earlier, key): key for key in OPTUNA_SIDES if key in earlier}
    found = {side: keys[side] for side in optuna_wanted if side in keys}
    if not found:
        raise SystemExit(f"--scratch-from: {path} has no {' or '.join(optuna_wanted)} side")
    reused: dict[str, object] = {
        "scratch_from": {"file": str(path), "started": earlier.get("started"), "sides": list(found)}
    }
    for side, key in found.items():
        reused[side] = earlier[key]
        reused[f"load_after_{side}"] = earlier.get(f"load_after_{key}")
    return reused, tuple(side for side in wanted if side not in found)


def _study_config(config: Path) -> StudyConfig:
    from autosize.search import load_config

    return load_config(config)


def run_dataset(
    dataset: str,
    budget: float,
    seed: int | None,
    sides: tuple[str, ...],
    cohort: int | str | None = None,
    logs: Path | None = None,
    halving: bool | None = None,
    autosize_config: str = "shipped",
    stem: str | None = None,
) -> dict:
    """The sides of one dataset, one after the other; each side's output goes to
    ``logs/<stem>.<side>.log`` (when ``logs`` is given; ``stem`` defaults to the dataset)."""
    stem = stem or dataset
    with tempfile.TemporaryDirectory(prefix=f"svs-{dataset}-") as tmp:
        used = _study_config(_write_config(dataset, autosize_config, Path(tmp) / f"{dataset}.toml"))
    result: dict[str, object] = {
        "dataset": dataset,
        "budget": budget,
        "stem": stem,
        # the Optuna side under "scratch" is the competent one (older results: the textbook's)
        "scratch_kind": "competent",
        "autosize_config": autosize_config,
        # --cohort K, else what the config asks for ([study] cohort, default "auto")
        "cohort": cohort if cohort is not None else used.cohort,
        "halving": halving if halving is not None else used.halving,
        # the autosize side's [study] seed (the Optuna sides' TPE seed is this or 0)
        "seed": seed if seed is not None else used.seed,
        "load_before": os.getloadavg(),
        "started": datetime.now().isoformat(timespec="seconds"),
    }
    for side in sides:
        with tempfile.TemporaryDirectory(prefix=f"svs-{dataset}-{side}-") as tmp:
            print(f"[{stem}] {side}: {budget:.0f} s ...", file=sys.stderr, flush=True)
            # a copy in the temp folder, so the study's state (.state/) lives there
            config = _write_config(dataset, autosize_config, Path(tmp) / f"{dataset}.toml")
            data = (
                _side_autosize(dataset, config, budget, Path(tmp), cohort, halving, seed)
                if side == "autosize"
                else _side_optuna(side, config, budget, seed or 0, Path(tmp))
            )
            if logs is not None:
                shutil.copyfile(Path(tmp) / f"{side}.log", logs / f"{stem}.{side}.log")
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
    """Per side in ``result``: the best-validation network at B (``final``), when the side
    first reached the final test value of ``result["scratch"]`` (``reached_scratch_at``: the
    competent side, or in older results the textbook one), the counts and the curve."""
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
            "pruned": result[side].get("pruned"),
            "tpe_after_startup": result[side].get("tpe_after_startup"),
            "wall": result[side].get("wall"),
            "curve": curve,
        }
    return out


def _seconds(x: float | None) -> str:
    return "-" if x is None else f"{x:.0f} s"


def _stem(result: dict) -> str:
    return str(result.get("stem") or result["dataset"])


def render(results: list[dict], out: Path) -> str:
    """The tables (and a plot per result): one row per side of every result; with several
    seeds of a dataset, a second table of each side's mean and range over the seeds."""
    lines = [
        "| dataset | seed | side | metric | test @B | val @B | completed / pruned (trials) | "
        "TPE-chosen | reached scratch's final test at | process wall | best net |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    old = []
    for result in results:
        ds = result["dataset"]
        s = summarise(result)
        if "scratch" in s and result.get("scratch_kind") != "competent":
            old.append(_stem(result))
        for side in SIDES:
            if side not in s:
                continue
            row = s[side]
            f = row["final"]
            net = "-" if not f else f"`{f['architecture']}` ({f['params']:,})"
            tpe = "-" if side == "autosize" else row["tpe_after_startup"]
            lines.append(
                f"| {ds} | {_or(result.get('seed'))} | {side_label(result, side)} | "
                f"{'MSE' if ds in REGRESSION else 'accuracy'} | {_shown(ds, f and f['test'])} | "
                f"{_shown(ds, f and f['val'])} | {_or(row['completed'])} / {_or(row['pruned'])} "
                f"({_or(row['trials'])}) | {_or(tpe)} | {_seconds(row['reached_scratch_at'])} | "
                f"{_seconds(row['wall'])} | {net} |"
            )
        _plot(result, s, out / f"{_stem(result)}.png")
    if old:
        lines.append("")
        lines.append(
            f"{', '.join(old)}: written before the competent side: their only Optuna side is the "
            "textbook one, and 'reached' is against its final test value."
        )
    reused = [r for r in results if r.get("scratch_from")]
    if reused:
        lines.append("")
        for r in reused:
            src = r["scratch_from"]
            # older results reused their one Optuna side, under "scratch"
            which = ", ".join(src.get("sides") or [side_label(r, "scratch")])
            lines.append(
                f"{_stem(r)}: {which} side from {src['file']} (that run started {src['started']})"
            )
    seeds = render_seeds(results)
    if seeds:
        lines += ["", seeds]
    return "\n".join(lines)


def render_headline(results: list[dict]) -> str:
    """The short table for the README: per dataset, each side's best-validation network's test
    value with its validation value in brackets (the mean over seeds where there are several)
    and when autosize first reached the competent side's final test value, per seed."""
    by_ds: dict[str, list[dict]] = {}
    for result in results:
        by_ds.setdefault(result["dataset"], []).append(result)
    lines = [
        "| dataset | seeds | autosize: test (val) | competent Optuna: test (val) | "
        "textbook Optuna: test (val) | autosize reached competent Optuna's final test at |",
        "|---|---|---|---|---|---|",
    ]
    for ds, rs in by_ds.items():
        cells: dict[str, str] = {}
        for label in ("autosize", "scratch", "textbook"):
            finals = []
            for result in rs:
                for side, row in summarise(result).items():
                    if side_label(result, side) == label and row["final"] is not None:
                        finals.append(row["final"])
            if not finals:
                cells[label] = "-"
                continue
            test = sum(_scale(ds, f["test"]) for f in finals) / len(finals)
            val = sum(f["val"] for f in finals) / len(finals)
            cells[label] = f"{_fmt(ds, test)} ({val:.4f})"
        reached = []
        for result in rs:
            if result.get("scratch_kind") == "competent":
                row = summarise(result).get("autosize")
                reached.append(_seconds(row and row["reached_scratch_at"]))
        metric = "MSE" if ds in REGRESSION else "accuracy"
        lines.append(
            f"| {ds} ({metric}) | {', '.join(_or(r.get('seed')) for r in rs)} | "
            f"{cells['autosize']} | {cells['scratch']} | {cells['textbook']} | "
            f"{', '.join(reached) or '-'} |"
        )
    return "\n".join(lines)


PUBLISH_BEGIN = "<!-- search_vs_scratch:begin -->"
PUBLISH_END = "<!-- search_vs_scratch:end -->"


def publish(path: Path, table: str, source: str) -> None:
    """Write ``table`` into ``path`` between :data:`PUBLISH_BEGIN` and :data:`PUBLISH_END`
    (the README's table and the report's come from the JSON files, never by hand), with a
    line saying what generated it. One-line error when the markers are missing."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SystemExit(f"--publish {path}: cannot read it: {exc.strerror}") from None
    begin, end = text.find(PUBLISH_BEGIN), text.find(PUBLISH_END)
    if begin < 0 or end < begin:
        raise SystemExit(
            f"--publish {path}: no {PUBLISH_BEGIN} ... {PUBLISH_END} block to write the table into"
        )
    block = f"{PUBLISH_BEGIN}\n<!-- generated by {source}; do not edit by hand -->\n\n{table}\n\n"
    path.write_text(text[:begin] + block + text[end:], encoding="utf-8")


def _or(x: object) -> str:
    return "-" if x is None else str(x)


def render_seeds(results: list[dict]) -> str:
    """Per dataset and side, mean and min-max over seeds of the best-validation network's
    test and validation values (MSE or accuracy, as shown); "" unless a dataset has several
    seeds. A (dataset, seed) given twice counts once, the later result."""
    by_seed: dict[tuple[str, object], dict] = {}
    for result in results:
        by_seed[(result["dataset"], result.get("seed"))] = result
    seeds_of: dict[str, list[dict]] = {}
    for (ds, _seed), result in by_seed.items():
        seeds_of.setdefault(ds, []).append(result)
    if all(len(rs) < 2 for rs in seeds_of.values()):
        return ""
    lines = [
        "| dataset | side | seeds | test mean (min - max) | val mean (min - max) |",
        "|---|---|---|---|---|",
    ]
    for ds, rs in seeds_of.items():
        finals: dict[str, list[dict]] = {}
        for result in rs:
            for side, row in summarise(result).items():
                if row["final"] is not None:
                    finals.setdefault(side_label(result, side), []).append(row["final"])
        for label in ("autosize", "scratch", "textbook"):
            fs = finals.get(label)
            if not fs:
                continue
            cells = []
            for key in ("test", "val"):
                xs = [_scale(ds, f[key]) for f in fs]
                cells.append(
                    f"{_fmt(ds, sum(xs) / len(xs))} ({_fmt(ds, min(xs))} - {_fmt(ds, max(xs))})"
                )
            lines.append(f"| {ds} | {label} | {len(fs)} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def _scale(dataset: str, rmse_or_acc: float) -> float:
    """The value as the tables show it: MSE for regression, accuracy in percent."""
    return rmse_or_acc**2 if dataset in REGRESSION else 100 * rmse_or_acc


def _fmt(dataset: str, shown: float) -> str:
    return f"{shown:.3f}" if dataset in REGRESSION else f"{shown:.2f}%"


def _plot(result: dict, s: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ds = result["dataset"]
    colours = {"textbook": "tab:gray", "scratch": "tab:orange", "autosize": "tab:blue"}
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for side in SIDES:
        curve = s.get(side, {}).get("curve") or []
        if not curve:
            continue
        label = side_label(result, side)
        ts = [r["t"] for r in curve] + [result["budget"]]
        for ax, key in zip(axes, ("val", "test"), strict=True):
            ys = [r[key] for r in curve]
            ys = [y**2 for y in ys] if ds in REGRESSION else ys
            ax.step(ts, [*ys, ys[-1]], where="post", label=label, color=colours[label])
    for ax, key in zip(axes, ("validation", "test of best-validation net"), strict=True):
        ax.set_xlabel("wall seconds from process start")
        ax.set_ylabel(("MSE " if ds in REGRESSION else "accuracy ") + key)
        ax.set_xlim(0, result["budget"])
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    fig.suptitle(f"{_stem(result)}: best so far, B = {result['budget']:.0f} s")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _from_json(out: Path, datasets: list[str]) -> list[dict]:
    """Every result JSON in ``out`` of the given datasets, by dataset order then file name."""
    results = []
    for path in sorted(out.glob("*.json")):
        try:
            result = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise SystemExit(f"--from-json: cannot read {path}: {exc}") from None
        if not isinstance(result, dict) or result.get("dataset") not in datasets:
            continue  # not a result of this benchmark, or a dataset not asked for
        result.setdefault("stem", path.stem)
        results.append(result)
    results.sort(key=lambda r: datasets.index(r["dataset"]))  # stable: file order within
    return results


def _seed_list(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        seeds = []
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(
            f"expected distinct comma-separated integers >= 0, got {text!r}"
        )
    return seeds


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_scratch":
        kind, config, budget, side_seed, out, t0 = argv[1:7]
        run = run_competent if kind == "scratch" else run_textbook
        run(Path(config), float(budget), int(side_seed), Path(out), float(t0))
        return 0
    from autosize.cli._common import cohort_size  # not before a scratch side: its clock runs

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget", type=float, default=600.0, help="wall seconds per side")
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--sides", default=",".join(SIDES), help=f"some of {','.join(SIDES)}")
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="every side's seed: the Optuna sides' TPE samplers, networks and validation "
        "split (default 0) and `autosize run --seed` (default: the config's [study] seed)",
    )
    parser.add_argument(
        "--seeds",
        type=_seed_list,
        default=None,
        help="run every dataset at each of these seeds (e.g. 0,1,2), every side; files "
        "<dataset>_s<seed>.*, and a table of each side's mean and range over the seeds",
    )
    parser.add_argument(
        "--autosize-config",
        choices=AUTOSIZE_CONFIGS,
        default="shipped",
        help="shipped: studies/<dataset>.toml as it is; zero: only its [study] (name, timeout, "
        "seed, objective) and [data], the rest chosen from the data; tuned: "
        "studies/tuned/<dataset>.toml, the hand-tuned config (the Optuna sides search the "
        "family of the seed that config gets)",
    )
    parser.add_argument(
        "--cohort",
        type=cohort_size,  # what `autosize run --cohort` takes
        default=None,
        help='autosize side: --cohort K (K trials trained together; 1: one at a time) or "auto"; '
        "default: the config's [study] cohort",
    )
    parser.add_argument(
        "--halving",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="autosize side: successive halving inside each cohort, or not; default: the "
        "config's [study] halving",
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "out" / "search_vs_scratch"
    )
    parser.add_argument(
        "--from-json", action="store_true", help="only re-render from the JSON files in <out>"
    )
    parser.add_argument(
        "--publish",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help=f"also write the tables into FILE between {PUBLISH_BEGIN} and {PUBLISH_END} "
        "(a README.md gets the short table, any other file the full tables); repeatable",
    )
    parser.add_argument(
        "--scratch-from",
        type=Path,
        help="take the Optuna sides (scratch, textbook) found in <DIR>/<file>.json of an "
        "earlier run at the same budget instead of running them again; the result records "
        "where they came from",
    )
    args = parser.parse_args(argv)
    datasets = [d for d in args.datasets.split(",") if d]
    for d in datasets:
        if d not in DATASETS:
            parser.error(
                f"--datasets: unknown dataset {d!r}; expected some of {', '.join(DATASETS)}"
            )
    sides = tuple(s for s in args.sides.split(",") if s)
    for side in sides:
        if side not in SIDES:
            parser.error(f"--sides: unknown side {side!r}; expected some of {', '.join(SIDES)}")
    if args.seed is not None and args.seeds is not None:
        parser.error("--seed and --seeds: give one of them")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.from_json:
        results = _from_json(args.out, datasets)
    else:
        results = []
        seeds: list[int | None] = args.seeds if args.seeds is not None else [args.seed]
        for ds in datasets:
            for seed in seeds:
                stem = ds if args.seeds is None else f"{ds}_s{seed}"
                to_run, earlier = sides, None
                if args.scratch_from is not None:
                    earlier, to_run = _earlier_sides(
                        args.scratch_from / f"{stem}.json",
                        args.budget,
                        sides,
                        args.autosize_config,
                    )
                result = run_dataset(
                    ds,
                    args.budget,
                    seed,
                    to_run,
                    args.cohort,
                    logs=args.out,
                    halving=args.halving,
                    autosize_config=args.autosize_config,
                    stem=stem,
                )
                if earlier is not None:
                    result.update(earlier)
                (args.out / f"{stem}.json").write_text(json.dumps(result, indent=1))
                results.append(result)
                print(render([result], args.out), flush=True)
    table = render(results, args.out)
    print(table)
    (args.out.with_suffix(".table.md")).write_text(table + "\n")
    for path in args.publish:  # the README gets the short table, a report the full one
        source = f"benchmarks/search_vs_scratch.py --from-json --out {args.out}"
        short = path.name.lower() == "readme.md"
        publish(path, render_headline(results) if short else table, source)
    return 0


if __name__ == "__main__":
    sys.exit(main())
