"""The CUDA path end to end: fit, population training (bf16 autocast too) and a study.

(Divergence on CUDA is the CPU test's gpu parameter in test_population.py.)

Every test here is marked ``gpu`` and skipped without CUDA. On a machine with one,
``python -m pytest -m gpu`` runs them (``benchmarks/gpu_check.sh`` does, with the
population benchmark, as one prepared script for a lent GPU).
"""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState
from test_population import LRS, SEEDS, alone, assert_same, nets
from test_train import blobs, linear_regression

import autosize
from autosize.cli import main
from autosize.models import ArchSpec, DenseLayer, build_model
from autosize.population import fit_population
from autosize.search import load_config, run_study
from autosize.search.prepare import load_bundle
from autosize.train import fit
from studies import STUDY_MARKS, tiny_config

DEVICE = "cuda"
pytestmark = [pytest.mark.gpu, *STUDY_MARKS]


def test_fit_on_the_gpu_tracks_fit_on_the_cpu() -> None:
    # The batches come from a CPU generator on both devices, and TF32 is off by default,
    # so the two float32 runs differ only by the kernels' rounding.
    bundle = blobs(n=2048)
    on_gpu = nets(bundle)[0]
    on_cpu = copy.deepcopy(on_gpu)
    kw = {"epochs": 4, "lr": 1e-2, "batch_size": 64, "seed": 3}
    got = fit(on_gpu, bundle, device=DEVICE, **kw)  # type: ignore[arg-type]
    want = fit(on_cpu, bundle, device="cpu", **kw)  # type: ignore[arg-type]
    assert got.device.startswith(DEVICE) and next(on_gpu.parameters()).device.type == DEVICE
    for a, b in zip(got.epochs, want.epochs, strict=True):
        assert a.train_examples == b.train_examples
        assert a.val_loss == pytest.approx(b.val_loss, rel=1e-3, abs=1e-5)
    for p, q in zip(on_gpu.parameters(), on_cpu.parameters(), strict=True):
        torch.testing.assert_close(p.detach().cpu(), q.detach(), rtol=1e-3, atol=1e-4)


def test_population_with_restore_best_matches_fit_member_by_member_on_the_gpu() -> None:
    bundle = linear_regression()
    models = nets(bundle)
    refs = copy.deepcopy(models)
    kw = {"epochs": 4, "batch_size": 32, "device": DEVICE, "restore_best": True}
    got = fit_population(models, bundle, seed=SEEDS, lr=LRS, **kw)  # type: ignore[arg-type]
    assert_same(got, alone(refs, bundle, **kw), models, refs, 1e-4)


def test_population_under_bf16_autocast_trains_every_member_in_float32() -> None:
    # Autocast runs the matmuls in bfloat16 (autograd's backward, not the stacks' own);
    # the parameters, the optimizer's moments and the reported metrics stay float32.
    bundle = blobs(n=4096)
    models = nets(bundle)
    got = fit_population(
        models, bundle, epochs=6, lr=1e-2, seed=SEEDS, batch_size=64, device=DEVICE, amp=True
    )
    for h, m in zip(got, models, strict=True):
        assert h.stopped == "epochs" and h.device.startswith(DEVICE)
        assert all(p.dtype == torch.float32 and p.device.type == DEVICE for p in m.parameters())
        assert h.best_val_metric is not None and h.best_val_metric > 0.8, h.stop_reason


@pytest.mark.parametrize(("cohort", "precision"), [(1, "tf32"), (4, "bf16"), (4, "fp32")])
def test_a_study_on_the_gpu_records_its_trials_and_exports_to_the_cpu(
    tmp_path: Path, cohort: int, precision: str
) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    config = tiny_config(
        tmp_path,
        n_trials=4,
        study=f'device = "{DEVICE}"\ncohort = {cohort}\nseed = 0',
        train=f'precision = "{precision}"',
        search='operations = ["widen", "deepen", "train"]',
        pruner='name = "none"',
    )
    study = run_study(load_config(config))
    warm = [t for t in study.trials if t.user_attrs.get("role") == "warmstart"]
    assert len(warm) == 4 and all(t.state == TrialState.COMPLETE for t in warm)
    assert all(t.user_attrs["device"].startswith(DEVICE) for t in warm)
    out = tmp_path / "best"
    assert main(["export", str(config), "--out", str(out)]) == 0
    record = json.loads((out / "architecture.json").read_text())
    assert record["training"]["precision"] == precision
    model = autosize.load_model(out)  # on the CPU, where the GPU's weights are read back
    x, y = load_bundle(load_config(config)).val
    with torch.no_grad():
        rmse = float((model(x).squeeze(-1) - y).pow(2).mean().sqrt())
    assert rmse == pytest.approx(record["value"], rel=1e-3)


def test_regression_under_bf16_autocast_predicts_in_float32_units() -> None:
    # Targets near 1e4: in bfloat16 their spacing is 64, so a network whose output were
    # shifted in bf16 could not get within ~16 of them; in float32 it fits the line.
    base = linear_regression(n=2048)
    shift = 1e4

    def moved(split: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return split[0], split[1] + shift

    bundle = replace(base, train=moved(base.train), val=moved(base.val), test=moved(base.test))
    arch = ArchSpec(
        input_shape=bundle.input_shape,
        n_outputs=1,
        layers=(DenseLayer(32),),
        target_shift=shift,
        target_scale=float(bundle.train[1].std()),
    )
    alone_net, member = build_model(arch, seed=0), build_model(arch, seed=0)
    kw = {"epochs": 30, "lr": 3e-3, "batch_size": 64, "device": DEVICE, "amp": True}
    h = fit(alone_net, bundle, **kw)  # type: ignore[arg-type]
    [hp] = fit_population([member], bundle, **kw)  # type: ignore[arg-type]
    for history in (h, hp):
        assert history.best_val_metric is not None and history.best_val_metric < 2.0
    with torch.no_grad():
        out = alone_net(bundle.val[0].to(DEVICE))
    assert out.dtype == torch.float32
