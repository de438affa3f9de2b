"""Export a study's networks: ``architecture.json`` plus ``model.safetensors`` per network.

An export folder is everything needed to use or retrain one network without
the study: the :class:`~autosize.models.ArchSpec`, the dataset and the
preprocessing statistics its inputs need, the training hyperparameters, the
validation and test metrics, and the lineage (seed -> operations -> this
network). The weights are one safetensors file written by
:mod:`autosize.checkpoint` (no pickle; the spec is in its metadata too, and
:func:`~autosize.predictor.load_model` refuses a folder whose two copies disagree).
The folder's record is :mod:`autosize.export_format`.

Which trials: ``"best"`` is the best completed trial by the first objective
among all roles (baselines included: the record says which role won). A
multi-objective study exports its Pareto front by default, one ``trial-N/``
folder per front trial plus ``pareto.md``. ``trial=N`` exports one trial.

An **ensemble** (``ensemble=K``): the K best completed trials by the first objective
(validation only). The best one is the folder itself, as a single export; the others are
full exports under ``members/trial-N/``, listed in its record's ``ensemble``.
:func:`~autosize.predictor.load_model` then predicts with the mean of all K
(:class:`~autosize.ensemble.Ensemble`), ONNX included.
:mod:`autosize.retrain` trains an export's architecture again from scratch.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import torch
from torch import nn

from autosize.budget import Budget
from autosize.checkpoint import save_network
from autosize.errors import StudyError
from autosize.export_format import (
    ARCHITECTURE_FILE,
    ONNX_FILE,
    WEIGHTS_FILE,
    DatasetRecord,
    ExportRecord,
    TrainingRecord,
)
from autosize.models import ArchSpec

if TYPE_CHECKING:  # optuna is imported only when a study is exported, not by load_model
    import optuna
    from optuna.trial import FrozenTrial

    from autosize.search.store.artifacts import ArtifactLocation

__all__ = ["Exported", "export_study", "export_trial", "select_ensemble", "select_trials"]

logger = logging.getLogger(__name__)

TrialChoice = int | Literal["best"] | None


# --------------------------------------------------------------------------- choosing trials


def _completed(study: optuna.Study) -> list[FrozenTrial]:
    from optuna.trial import TrialState

    return [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.values]


def select_trials(study: optuna.Study, trial: TrialChoice = None) -> tuple[list[FrozenTrial], bool]:
    """The trials to export and whether they are a Pareto front.

    ``None``: the best trial, or the Pareto front of a multi-objective study;
    ``"best"``: the best by the first objective; an int: that trial, which must be complete.
    """
    from optuna.trial import TrialState

    from autosize.search.store.results import maximizing

    done = _completed(study)
    if isinstance(trial, int):
        trials = study.get_trials(deepcopy=False)
        match = [t for t in trials if t.number == trial]
        if not match:
            raise StudyError(
                f"study {study.study_name!r} has no trial {trial} (trials 0..{len(trials) - 1})"
                if trials
                else f"study {study.study_name!r} has no trials"
            )
        if match[0].state != TrialState.COMPLETE:
            numbers = ", ".join(str(t.number) for t in done) or "none"
            raise StudyError(
                f"trial {trial} of study {study.study_name!r} is {match[0].state.name.lower()}, not complete; completed trials: {numbers}"
            )
        return [match[0]], False
    if not done:
        raise StudyError(f"study {study.study_name!r} has no completed trial to export")
    if trial is None and len(study.directions) > 1:
        return sorted(study.best_trials, key=lambda t: t.number), True
    best = (max if maximizing(study) else min)(done, key=lambda t: (t.values[0], -t.number))
    return [best], False


# --------------------------------------------------------------------------- writing


def make_record(study: optuna.Study, trial: FrozenTrial) -> ExportRecord:
    from autosize.search.store import record

    rec = record.read(trial)
    meta = record.study_meta(study)
    if not meta:
        raise StudyError(
            f"study {study.study_name!r} was not written by autosize (no 'autosize' attribute)"
        )
    if rec.spec is None:
        raise StudyError(f"trial {trial.number} has no architecture recorded")
    data = meta.get("data") or {}
    budget = meta.get("trial_budget") or {}
    stored = Budget.from_record(budget)  # a key the study lacks: its default
    lr = trial.params.get("train/lr")
    return ExportRecord(
        study=study.study_name,
        trial=trial.number,
        role=rec.role,
        architecture=rec.architecture,
        spec=dict(rec.spec),
        params=int(rec.params or 0),
        flops=rec.flops,
        objective=str(meta.get("objective", "")),
        direction=str(meta.get("direction", "")),
        value=trial.values[0] if trial.values else None,
        values=tuple(trial.values or ()),
        val=dict(rec.val),
        test=dict(rec.test),
        dataset=DatasetRecord(
            name=str(data.get("name", meta.get("dataset", ""))),
            task=str(meta.get("task", "")),
            options=dict(data.get("options") or {}),
            data_dir=data.get("data_dir"),
            seed=int(meta.get("seed", 0)),
            max_train=data.get("max_train"),
            max_val=data.get("max_val"),
            max_test=data.get("max_test"),
            notes=dict(meta.get("data_notes") or {}),
        ),
        preprocessing=dict(meta.get("preprocessing") or {}),
        training=TrainingRecord.of(
            replace(stored, lr=float(lr)) if lr is not None else stored,
            epochs_run=rec.epochs,
            seconds=rec.seconds,
            stopped=rec.stopped,
        ),
        operation=rec.operation,
        parent=rec.parent,
        lineage=tuple(str(s) for s in rec.lineage),
        baseline_trial=rec.baseline_trial,
        gain=rec.gain,
    )


@dataclass(frozen=True)
class Exported:
    """One exported network: its folder, its record and the files written."""

    folder: Path
    record: ExportRecord
    files: tuple[Path, ...]


def _download(
    study: optuna.Study, trial: FrozenTrial, artifacts: ArtifactLocation | str | Path | None
) -> tuple[nn.Module, ArchSpec]:
    from autosize.search.store import record
    from autosize.search.store.artifacts import artifact_location
    from autosize.search.store.networks import download_network

    artifact_id = record.read(trial).network_artifact
    if not artifact_id:
        raise StudyError(
            f"trial {trial.number} of study {study.study_name!r} has no network artifact"
        )
    if artifacts is None:
        raise StudyError("the study records no artifact store; pass --artifacts DIR")
    location = artifact_location(artifacts)
    location.check_readable()
    return download_network(location.store(), str(artifact_id), owner=f"trial {trial.number}")


def select_ensemble(study: optuna.Study, k: int) -> list[FrozenTrial]:
    """The ``k`` best completed trials by the first objective (fewer if the study has fewer),
    best first: an ensemble chosen on validation only."""
    from autosize.search.store import record
    from autosize.search.store.results import maximizing

    done = [t for t in _completed(study) if record.read(t).network_artifact]
    if not done:
        raise StudyError(f"study {study.study_name!r} has no completed trial to export")
    sign = -1.0 if maximizing(study) else 1.0
    return sorted(done, key=lambda t: (sign * t.values[0], t.number))[:k]


def export_trial(
    study: optuna.Study,
    trial: FrozenTrial,
    *,
    artifacts: ArtifactLocation | str | Path | None,
    out: str | Path,
    onnx: bool = False,
    ensemble: Sequence[str] = (),
) -> Exported:
    """Write ``architecture.json`` and ``model.safetensors`` (and ``model.onnx``) to ``out``;
    ``ensemble``: the other members' folders, relative to ``out``, already written there."""
    record = replace(make_record(study, trial), ensemble=tuple(ensemble))
    model, spec = _download(study, trial, artifacts)
    if spec != record.arch_spec(source=f"trial {trial.number}"):
        raise StudyError(
            f"trial {trial.number}: its artifact holds {spec.summary()} but the trial records {record.architecture}"
        )
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    weights = save_network(
        model,
        spec,
        folder / WEIGHTS_FILE,
        metadata={"autosize.study": study.study_name, "autosize.trial": str(trial.number)},
    )
    weights.chmod(0o644)  # safetensors writes 0600; an export is meant to be shared
    arch = folder / ARCHITECTURE_FILE
    tmp = arch.with_name(f".{arch.name}.tmp")
    tmp.write_text(json.dumps(record.to_dict(), indent=2) + "\n", encoding="utf-8")
    tmp.replace(arch)
    files = [arch, weights]
    if onnx:
        # an ensemble's ONNX graph is the whole ensemble, as load_model predicts with it
        from autosize.predictor import load_model

        net = load_model(folder).net if ensemble else model
        files.append(write_onnx(net, spec, folder / ONNX_FILE))
    logger.debug("exported trial %d (%s) to %s", trial.number, record.architecture, folder)
    return Exported(folder=folder, record=record, files=tuple(files))


def _need_onnx() -> None:
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise StudyError("--onnx needs the onnx package: pip install 'autosize[onnx]'") from None


def write_onnx(model: nn.Module, spec: ArchSpec, path: Path) -> Path:
    """ONNX export (needs the optional ``onnx`` package: ``pip install 'autosize[onnx]'``)."""
    _need_onnx()
    import warnings

    example = torch.zeros((1, *spec.input_shape))
    try:
        with warnings.catch_warnings():
            # The TorchScript exporter needs only onnx (the dynamo one also needs onnxscript).
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                model.eval(),
                (example,),
                str(path),
                input_names=["input"],
                output_names=["output"],
                dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                dynamo=False,
            )
    except Exception as exc:  # exporter failures vary by torch version
        raise StudyError(f"ONNX export failed ({type(exc).__name__}: {exc})") from None
    return path


def export_study(
    study: optuna.Study,
    *,
    artifacts: ArtifactLocation | str | Path | None,
    out: str | Path,
    trial: TrialChoice = None,
    onnx: bool = False,
    ensemble: int = 1,
) -> list[Exported]:
    """Export the chosen trial(s) (see :func:`select_trials`) under ``out``.

    One trial goes straight into ``out``; a Pareto front goes into
    ``out/trial-N/`` folders with ``out/pareto.md`` listing them. ``ensemble=K`` (K > 1)
    exports the K best trials as one ensemble (see the module docstring), the best first.
    """
    if ensemble > 1 and isinstance(trial, int):
        raise StudyError(
            f"ensemble={ensemble} takes the best trials; it does not go with trial {trial}"
        )
    if ensemble > 1 and trial is None and len(study.directions) > 1:
        raise StudyError(
            f"ensemble={ensemble}: a multi-objective study exports its Pareto front; "
            "choose trial='best' (--trial best) for an ensemble by the first objective"
        )
    trials, front = (
        (select_ensemble(study, ensemble), False) if ensemble > 1 else select_trials(study, trial)
    )
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise StudyError(f"{out}: exists and is not an empty folder")
    if onnx:
        _need_onnx()  # before anything is written
    # Written into a sibling folder and moved into place once complete, so an export that
    # fails part-way (a damaged artifact of a later Pareto trial) leaves no partial folder
    # behind that would block the retry.
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.with_name(f".{out.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        if ensemble > 1:
            names = [f"members/trial-{t.number}" for t in trials[1:]]
            members = [
                export_trial(study, t, artifacts=artifacts, out=staging / name)
                for t, name in zip(trials[1:], names, strict=True)
            ]
            best = export_trial(
                study, trials[0], artifacts=artifacts, out=staging, onnx=onnx, ensemble=names
            )
            done = [best, *members]
        elif not front:
            done = [export_trial(study, trials[0], artifacts=artifacts, out=staging, onnx=onnx)]
        else:
            done = [
                export_trial(
                    study, t, artifacts=artifacts, out=staging / f"trial-{t.number}", onnx=onnx
                )
                for t in trials
            ]
            (staging / "pareto.md").write_text(pareto_markdown(study, done), encoding="utf-8")
        if out.exists():
            out.rmdir()  # empty (checked above)
        staging.replace(out)
        logger.info("exported %d trial(s) of study %r to %s", len(done), study.study_name, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise

    def moved(path: Path) -> Path:
        return out / path.relative_to(staging)

    return [
        replace(e, folder=moved(e.folder), files=tuple(moved(f) for f in e.files)) for e in done
    ]


def pareto_markdown(study: optuna.Study, exported: Sequence[Exported]) -> str:
    from autosize.search.store import record

    objective = record.study_meta(study).get("objective", "objective")
    lines = [
        f"# Pareto front of study `{study.study_name}`",
        "",
        f"{len(exported)} trials are not dominated on ({objective}, parameter count).",
        "",
        f"| trial | role | architecture | parameters | {objective} | test | operation | folder |",
        "|---:|---|---|---:|---:|---:|---|---|",
    ]
    for e in sorted(exported, key=lambda e: e.record.params):
        r = e.record
        test = _metric_of(r)
        lines.append(
            f"| {r.trial} | {r.role} | `{r.architecture}` | {r.params:,} | {_fmt(r.value)} | {_fmt(test)} | {r.operation} | `{e.folder.name}/` |"
        )
    return "\n".join(lines) + "\n"


def _metric_of(r: ExportRecord) -> float | None:
    from autosize.search.config import METRIC_KEY

    return r.test.get(METRIC_KEY.get(r.objective, r.objective))


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"
