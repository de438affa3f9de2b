"""The training engine: fit, evaluate, History, callbacks (CPU, synthetic data, seconds each)."""

from __future__ import annotations

import json
import logging
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from autosize.callbacks import Callback, EarlyStopping, TrainState
from autosize.data.bundle import DataBundle, Preprocessing
from autosize.errors import ConfigError
from autosize.history import EpochRecord, History
from autosize.optim import FusedStep
from autosize.train import evaluate, fit, make_optimizer, resolve_device


def blobs(n: int = 512, d: int = 8, classes: int = 3, seed: int = 0) -> DataBundle:
    """Gaussian blobs around random centres: easy, but not solved in one step."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, d, generator=g) * 2
    y = torch.randint(0, classes, (n,), generator=g)
    x = centres[y] + torch.randn(n, d, generator=g)
    cut = n * 3 // 4
    val = (x[cut:], y[cut:])
    return DataBundle(
        name="blobs", task="classification", train=(x[:cut], y[:cut]), val=val, test=val,
        input_shape=(d,), n_outputs=classes, preprocessing=Preprocessing("none"),
    )  # fmt: skip


def linear_regression(n: int = 512, d: int = 8, seed: int = 0) -> DataBundle:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    y = x @ torch.randn(d, generator=g) + 0.1 * torch.randn(n, generator=g)
    cut = n * 3 // 4
    val = (x[cut:], y[cut:])
    return DataBundle(
        name="linreg", task="regression", train=(x[:cut], y[:cut]), val=val, test=val,
        input_shape=(d,), n_outputs=1, preprocessing=Preprocessing("none"),
    )  # fmt: skip


def mlp(
    d: int = 8, hidden: int = 16, out: int = 3, seed: int = 0, dropout: float = 0.0
) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(d, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, out)
    )


# ---------------------------------------------------------------- learning


def test_classification_loss_goes_down() -> None:
    bundle = blobs()
    model = mlp()
    before = evaluate(model, bundle, "val", device="cpu")
    history = fit(model, bundle, epochs=10, lr=1e-2, batch_size=32, device="cpu")
    assert history.metric == "accuracy" and history.stopped == "epochs" and len(history) == 10
    losses = history.column("train_loss")
    assert losses[-1] < 0.5 * losses[0]
    assert history.epochs[-1].val_loss < before["loss"]
    assert history.best_val_metric is not None and history.best_val_metric > 0.9
    assert not model.training  # left in eval mode


def test_regression_loss_goes_down_with_n_by_1_and_flat_outputs() -> None:
    bundle = linear_regression()
    for flat in (False, True):
        model = nn.Sequential(
            nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1), *([nn.Flatten(0)] if flat else [])
        )
        history = fit(
            model, bundle, epochs=15, lr=1e-2, batch_size=32, optimizer="adamw", device="cpu"
        )
        assert history.metric == "rmse"
        assert history.epochs[-1].train_loss < 0.2 * history.epochs[0].train_loss
        result = evaluate(model, bundle, "val", device="cpu")
        assert set(result) == {"loss", "mse", "rmse"}
        assert result["loss"] == result["mse"]
        assert result["rmse"] == pytest.approx(math.sqrt(result["mse"]))
        assert history.epochs[-1].val_metric == pytest.approx(result["rmse"])


def test_regression_output_of_wrong_shape_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"output has shape \(32, 2\)"):
        fit(nn.Linear(8, 2), linear_regression(), epochs=1, batch_size=32, device="cpu")


def test_a_model_of_another_dtype_than_the_data_is_a_clear_error() -> None:
    with pytest.raises(
        ConfigError,
        match=r"fit: the model has float64 parameters but dataset 'linreg' has float32 "
        r"features; cast one to the other \(e.g. model.to\(torch.float32\)\)",
    ):
        fit(nn.Linear(8, 1).double(), linear_regression(), epochs=1, device="cpu")


def test_sgd_trains_and_uses_momentum() -> None:
    opt = make_optimizer("sgd", nn.Linear(2, 2).parameters(), lr=0.1)
    assert isinstance(opt, torch.optim.SGD) and opt.param_groups[0]["momentum"] == 0.9
    history = fit(mlp(), blobs(), epochs=5, optimizer="sgd", lr=0.05, batch_size=32, device="cpu")
    assert history.epochs[-1].train_loss < history.epochs[0].train_loss


# ---------------------------------------------------------------- evaluate


def test_evaluate_classification_restores_mode() -> None:
    bundle = blobs()
    model = mlp()
    model.train()
    result = evaluate(model, bundle, "test", device="cpu", batch_size=50)
    assert set(result) == {"loss", "accuracy"}
    assert 0.0 <= result["accuracy"] <= 1.0
    assert model.training
    x, y = bundle.test
    with torch.no_grad():
        model.eval()
        out = model(x)
    assert result["loss"] == pytest.approx(nn.functional.cross_entropy(out, y).item(), rel=1e-6)
    assert result["accuracy"] == pytest.approx((out.argmax(1) == y).float().mean().item())


# ---------------------------------------------------------------- budgets


def test_epoch_budget() -> None:
    history = fit(mlp(), blobs(), epochs=3, max_seconds=600, device="cpu")
    assert len(history) == 3 and history.stopped == "epochs"
    assert [r.epoch for r in history.epochs] == [1, 2, 3]
    elapsed = history.column("elapsed")
    assert elapsed == sorted(elapsed)
    assert all(r.seconds > 0 and r.examples_per_second > 0 for r in history.epochs)
    assert all(r.lr == 1e-3 for r in history.epochs)


def test_seconds_budget_cuts_an_epoch_short() -> None:
    # ~4,000 batches per epoch: far more than 0.2 s, so the per-batch check has to stop it.
    bundle = blobs(n=16_000)
    history = fit(mlp(), bundle, max_seconds=0.2, batch_size=3, device="cpu")
    assert history.stopped == "time" and "max_seconds" in history.stop_reason
    assert len(history) == 1
    assert 0 < history.epochs[0].train_examples < 12_000
    assert history.epochs[0].elapsed < 5.0  # generous: the CPU is shared


def test_seconds_budget_between_epochs() -> None:
    history = fit(mlp(), blobs(), epochs=10_000, max_seconds=0.3, device="cpu")
    assert history.stopped == "time"
    assert 1 <= len(history) < 10_000


# ---------------------------------------------------------------- history JSON


def test_history_round_trips_through_json(tmp_path) -> None:
    history = fit(mlp(), blobs(), epochs=3, device="cpu")
    history.epochs[0].extra["widths"] = [16, 12]
    path = history.save(tmp_path / "sub" / "history.json")
    loaded = History.load(path)
    assert loaded == history
    assert History.from_json(history.to_json()) == history
    data = json.loads(path.read_text())
    assert data["best_epoch"] == history.best_epoch
    assert data["epochs"][0]["extra"] == {"widths": [16, 12]}


def _strict_json(text: str) -> object:
    def refuse(name: str) -> object:
        raise ValueError(f"invalid JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


floats = st.floats(allow_nan=True, allow_infinity=True, width=64)


@settings(max_examples=50, deadline=None)
@given(train=floats, val=floats, metric=floats, penalty=floats)
def test_history_json_is_strict_and_keeps_non_finite_floats(train, val, metric, penalty) -> None:
    record = EpochRecord(
        epoch=1, train_loss=train, val_loss=val, val_metric=metric, seconds=0.5, elapsed=0.5,
        lr=0.1, examples_per_second=10.0, train_examples=5, train_penalty=penalty,
    )  # fmt: skip
    history = History(task="regression", metric="rmse", epochs=[record], stopped="diverged")
    text = history.to_json()
    _strict_json(text)  # NaN/inf never reach the file as bare constants
    back = History.from_json(text).epochs[0]
    for name in ("train_loss", "val_loss", "val_metric", "train_penalty"):
        a, b = getattr(record, name), getattr(back, name)
        assert (math.isnan(a) and math.isnan(b)) or a == b


def test_best_epoch_ignores_nan_and_follows_the_metric_direction() -> None:
    def rec(epoch: int, metric: float) -> EpochRecord:
        return EpochRecord(epoch, 1.0, 1.0, metric, 1.0, float(epoch), 0.1, 1.0)

    acc = History(
        task="classification",
        metric="accuracy",
        epochs=[rec(1, 0.5), rec(2, 0.9), rec(3, math.nan)],
    )
    assert acc.best_epoch == 2 and acc.best_val_metric == 0.9
    rmse = History(task="regression", metric="rmse", epochs=[rec(1, 3.0), rec(2, 2.0), rec(3, 2.5)])
    assert rmse.best_epoch == 2
    assert History(task="regression", metric="rmse").best_epoch is None


# ---------------------------------------------------------------- divergence


def test_divergence_is_reported_not_raised() -> None:
    history = fit(mlp(out=1), linear_regression(), epochs=5, optimizer="sgd", lr=1e10, device="cpu")
    assert history.stopped == "diverged"
    assert "non-finite" in history.stop_reason
    last = history.epochs[-1]  # the diverged epoch's record is kept
    assert not (math.isfinite(last.train_loss) and math.isfinite(last.val_loss))
    _strict_json(history.to_json())


class NaNModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x) * math.nan


def test_nan_output_stops_within_the_first_batch_on_cpu() -> None:
    seen: list[int] = []

    class Spy(Callback):
        def on_epoch_end(self, state: TrainState, record: EpochRecord) -> None:
            seen.append(record.epoch)

    history = fit(NaNModel(), blobs(), epochs=5, batch_size=32, device="cpu", callbacks=[Spy()])
    assert history.stopped == "diverged" and len(history) == 1
    assert history.epochs[0].train_examples == 32  # stopped at the first batch's check
    assert seen == []  # a diverged epoch does not reach on_epoch_end


# ---------------------------------------------------------------- determinism and devices


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_fits_optimizer_step_is_torchs_bit_for_bit(
    optimizer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FusedStep (fit's step without torch.optim's Python) against opt.step() itself."""
    bundle = blobs()
    kw = {"epochs": 3, "batch_size": 32, "device": "cpu", "optimizer": optimizer}
    fast, plain = mlp(), mlp()
    want_steps: list[object] = []
    h_fast = fit(fast, bundle, weight_decay=1e-2, lr=1e-2, **kw)  # type: ignore[arg-type]
    monkeypatch.setattr(FusedStep, "step", lambda self: want_steps.append(self.opt.step()))
    h_plain = fit(plain, bundle, weight_decay=1e-2, lr=1e-2, **kw)  # type: ignore[arg-type]
    assert want_steps  # the patched path ran
    assert [(r.train_loss, r.val_loss) for r in h_fast.epochs] == [
        (r.train_loss, r.val_loss) for r in h_plain.epochs
    ]
    for a, b in zip(fast.parameters(), plain.parameters(), strict=True):
        assert torch.equal(a, b)


def test_fused_step_with_groups_and_its_fallbacks() -> None:
    """Two param groups (compress's gates have their own lr), an lr change, a missing grad."""
    torch.manual_seed(0)
    nets = [mlp(), mlp()]
    nets[1].load_state_dict(nets[0].state_dict())
    opts = [
        make_optimizer(
            "adamw",
            [
                {"params": list(n[0].parameters())},
                {"params": list(n[3].parameters()), "lr": 3e-2},
            ],
            lr=1e-2,
            weight_decay=1e-2,
        )
        for n in nets
    ]
    stepper = FusedStep(opts[1])
    x = torch.randn(16, 8)
    for i in range(6):
        for net, opt in zip(nets, opts, strict=True):
            opt.zero_grad(set_to_none=True)
            if i == 4:
                opt.param_groups[1]["lr"] = 1e-3  # a callback's schedule
            layer = net[0] if i == 5 else net  # step 5: the head gets no gradient
            (layer(x) ** 2).sum().backward()
        opts[0].step()
        stepper.step()
        assert stepper._plan is not None  # the plain case: the kernel path after step 1
    for a, b in zip(nets[0].parameters(), nets[1].parameters(), strict=True):
        assert torch.equal(a, b)
    odd = torch.optim.Adam(nets[1].parameters(), lr=1e-3, amsgrad=True)
    other = FusedStep(odd)
    (nets[1](x) ** 2).sum().backward()
    other.step()
    other.step()
    assert other._plan is None  # amsgrad: always opt.step()


def test_same_seed_same_history_on_cpu() -> None:
    bundle = blobs()

    def run(seed: int) -> list[tuple[float, float, float]]:
        history = fit(mlp(dropout=0.3), bundle, epochs=4, batch_size=32, seed=seed, device="cpu")
        return [(r.train_loss, r.val_loss, r.val_metric) for r in history.epochs]

    assert run(0) == run(0)
    assert run(0) != run(1)


def test_fit_leaves_the_callers_rng_alone() -> None:
    model, bundle = mlp(dropout=0.5), blobs()  # mlp() seeds the global RNG itself
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    fit(model, bundle, epochs=1, device="cpu", seed=7)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU fallback")
def test_auto_device_is_cpu_here() -> None:
    assert resolve_device("auto") == torch.device("cpu")
    history = fit(mlp(), blobs(), epochs=1)
    assert history.device == "cpu"
    with pytest.raises(ConfigError, match="CUDA is not available"):
        resolve_device("cuda")


def test_unknown_device_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="'tpu9'"):
        resolve_device("tpu9")


def test_single_example_tail_is_dropped_for_batchnorm() -> None:
    base = blobs(n=1000)
    for n_train, expected in ((129, 128), (130, 130)):
        bundle = base.subset(train=n_train)
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))
        history = fit(model, bundle, epochs=2, batch_size=128, device="cpu")
        assert [r.train_examples for r in history.epochs] == [expected, expected]


# ---------------------------------------------------------------- callbacks


class Recorder(Callback):
    def __init__(self, stop_after: int | None = None) -> None:
        self.calls: list[str] = []
        self.stop_after = stop_after

    def on_train_begin(self, state: TrainState) -> None:
        self.calls.append("train_begin")

    def on_epoch_begin(self, state: TrainState) -> None:
        self.calls.append(f"epoch_begin {state.epoch}")

    def on_epoch_end(self, state: TrainState, record: EpochRecord) -> bool:
        self.calls.append(f"epoch_end {record.epoch}")
        assert state.history.epochs[-1] is record
        record.extra["seen"] = record.epoch
        return self.stop_after is not None and record.epoch >= self.stop_after

    def on_train_end(self, state: TrainState) -> None:
        self.calls.append("train_end")


def test_callback_hooks_run_in_order_and_can_stop() -> None:
    rec, other = Recorder(stop_after=2), Recorder()
    history = fit(mlp(), blobs(), epochs=10, device="cpu", callbacks=[rec, other])
    assert history.stopped == "callback" and "Recorder" in history.stop_reason
    assert len(history) == 2
    expected = [
        "train_begin",
        "epoch_begin 0",
        "epoch_end 1",
        "epoch_begin 1",
        "epoch_end 2",
        "train_end",
    ]
    assert rec.calls == expected
    assert other.calls == expected  # every callback's on_epoch_end runs before stopping
    assert history.epochs[1].extra == {"seen": 2}


def test_early_stopping() -> None:
    stopper = EarlyStopping(patience=2, min_delta=0.01)
    history = History(task="classification", metric="accuracy")
    state = TrainState(
        model=nn.Linear(1, 1), optimizer=None, bundle=None, device=torch.device("cpu"), history=history,
        epoch=0, batch_size=1, lr=0.1, weight_decay=0.0, optimizer_name="sgd", seed=0,
    )  # type: ignore[arg-type]  # fmt: skip
    stopper.on_train_begin(state)
    decisions = []
    for epoch, val_loss in enumerate([1.0, 0.8, 0.795, math.nan, 0.7], start=1):
        record = EpochRecord(epoch, 1.0, val_loss, 0.5, 1.0, 1.0, 0.1, 1.0)
        decisions.append(stopper.on_epoch_end(state, record))
    assert decisions == [False, False, False, True, False]
    assert (
        state.stop_reason.startswith("early stopping: val_loss")
        and "at epoch 2" in state.stop_reason
    )
    # Through fit: patience 1 on a metric that cannot improve after a perfect score.
    history = fit(
        mlp(),
        blobs(),
        epochs=200,
        lr=0.05,
        device="cpu",
        callbacks=[EarlyStopping(1, monitor="val_metric")],
    )
    assert history.stopped == "callback" and len(history) < 200
    assert "early stopping" in history.stop_reason


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"patience": 0}, "patience"),
        ({"patience": 2, "min_delta": -1}, "min_delta"),
        ({"patience": 2, "monitor": "acc"}, "'acc'"),
    ],
)
def test_early_stopping_checks_its_arguments(kwargs, match) -> None:
    with pytest.raises(ConfigError, match=match):
        EarlyStopping(**kwargs)


class Shrink(Callback):
    """Removes hidden units after every epoch (in place) and rebuilds the optimizer, like compress."""

    def on_epoch_end(self, state: TrainState, record: EpochRecord) -> None:
        first, last = state.model[0], state.model[-1]
        keep = first.out_features - 4
        with torch.no_grad():
            first.weight = nn.Parameter(first.weight[:keep].clone())
            first.bias = nn.Parameter(first.bias[:keep].clone())
            last.weight = nn.Parameter(last.weight[:, :keep].clone())
        first.out_features = last.in_features = keep
        state.optimizer = make_optimizer(
            state.optimizer_name, state.model.parameters(), lr=state.lr
        )
        record.extra["width"] = keep


def test_callback_may_reshape_the_model_and_replace_the_optimizer(caplog) -> None:
    model = mlp(hidden=16)
    caplog.set_level(logging.WARNING, logger="autosize.train")
    history = fit(
        model, blobs(), epochs=3, lr=1e-2, device="cpu", callbacks=[Shrink()], restore_best=True
    )
    assert history.stopped == "epochs"
    assert [r.extra["width"] for r in history.epochs] == [12, 8, 4]
    assert model[0].weight.shape == (4, 8)
    assert all(math.isfinite(r.train_loss) for r in history.epochs)
    # Every snapshot predates a reshape, so restore_best must decline, and say so.
    assert history.restored_epoch is None
    assert "restore_best skipped" in caplog.text


class Gated(nn.Module):
    """A gate that the task loss never sees: only a penalty can give it a gradient."""

    def __init__(self) -> None:
        super().__init__()
        self.body = mlp()
        self.gate = nn.Parameter(torch.ones(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class GatePenalty(Callback):
    def __init__(self, lam: float) -> None:
        self.lam = lam

    def penalty(self, state: TrainState) -> torch.Tensor:
        return self.lam * state.model.gate.sum()


def test_penalty_is_added_to_the_loss_and_recorded_apart() -> None:
    bundle = blobs()
    plain, penalised = Gated(), Gated()
    h_plain = fit(plain, bundle, epochs=2, optimizer="sgd", lr=0.01, device="cpu")
    h_pen = fit(
        penalised,
        bundle,
        epochs=2,
        optimizer="sgd",
        lr=0.01,
        device="cpu",
        callbacks=[GatePenalty(0.5)],
    )
    assert torch.equal(plain.gate, torch.ones(4))  # no penalty: no gradient, untouched
    assert (penalised.gate < 1).all()  # gradients reached the penalised parameter
    assert h_plain.epochs[0].train_penalty == 0.0
    first = h_pen.epochs[0].train_penalty
    assert 0 < first <= 0.5 * 4
    # The recorded train loss is the task loss alone (same weights path except the gate).
    assert h_pen.epochs[0].train_loss == pytest.approx(h_plain.epochs[0].train_loss)


class Scramble(Callback):
    def on_epoch_end(self, state: TrainState, record: EpochRecord) -> None:
        if record.epoch == 2:
            with torch.no_grad():
                for p in state.model.parameters():
                    p.copy_(torch.randn_like(p) * 10)


def test_restore_best_loads_the_best_epochs_weights() -> None:
    bundle = linear_regression()
    model = mlp(out=1)
    history = fit(
        model, bundle, epochs=4, lr=1e-3, device="cpu", callbacks=[Scramble()], restore_best=True
    )
    best = history.best
    # Scrambled after epoch 2, so later epochs are far worse.
    assert best is not None and best.epoch == 2
    assert history.restored_epoch == 2
    assert history.epochs[-1].val_metric > 10 * best.val_metric
    result = evaluate(model, bundle, "val", device="cpu")
    assert result["rmse"] == pytest.approx(best.val_metric, rel=1e-6)


def test_without_restore_best_the_last_weights_stay() -> None:
    bundle = linear_regression()
    model = mlp(out=1)
    history = fit(model, bundle, epochs=4, lr=1e-3, device="cpu", callbacks=[Scramble()])
    assert history.restored_epoch is None
    assert evaluate(model, bundle, "val", device="cpu")["loss"] == pytest.approx(
        history.epochs[-1].val_loss, rel=1e-6
    )


# ---------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "needs a budget"),
        ({"epochs": 0}, "epochs must be a positive integer, got 0"),
        ({"epochs": 2.5}, "got 2.5"),
        ({"max_seconds": -1}, "max_seconds must be a positive number, got -1"),
        ({"epochs": 1, "optimizer": "rmsprop"}, "unknown optimizer 'rmsprop'"),
        ({"epochs": 1, "lr": 0}, "lr must be a positive number, got 0"),
        ({"epochs": 1, "lr": -0.1}, "got -0.1"),
        ({"epochs": 1, "lr": math.nan}, "got nan"),
        ({"epochs": 1, "weight_decay": -1}, "weight_decay must be a number >= 0, got -1"),
        ({"epochs": 1, "batch_size": 0}, "batch_size must be a positive integer, got 0"),
        ({"epochs": 1, "batch_size": 1.5}, "got 1.5"),
        ({"epochs": 1, "seed": "x"}, "seed must be an integer"),
        ({"epochs": 1, "callbacks": [object()]}, "Callback instances"),
        ({"epochs": 1, "device": "gpu0"}, "unknown device 'gpu0'"),
    ],
)
def test_bad_arguments_raise_config_errors(kwargs, match) -> None:
    with pytest.raises(ConfigError, match=match):
        fit(mlp(), blobs(), **kwargs)


def test_make_optimizer_takes_param_groups_with_generators() -> None:
    model = mlp()
    groups = [
        {"params": model[0].parameters()},
        {"params": model[3].parameters(), "lr": 0.5},
    ]
    opt = make_optimizer("adamw", groups, lr=0.01, weight_decay=0.1)
    assert [len(g["params"]) for g in opt.param_groups] == [2, 2]
    assert [g["lr"] for g in opt.param_groups] == [0.01, 0.5]
    assert opt.param_groups[0]["weight_decay"] == 0.1


def test_bad_optimizer_and_split_names() -> None:
    with pytest.raises(ConfigError, match="unknown optimizer 'lbfgs'"):
        make_optimizer("lbfgs", nn.Linear(2, 2).parameters(), lr=0.1)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="no parameters"):
        make_optimizer("adam", [], lr=0.1)
    with pytest.raises(ConfigError, match="unknown split 'dev'"):
        evaluate(mlp(), blobs(), "dev", device="cpu")  # type: ignore[arg-type]


# ---------------------------------------------------------------- CUDA


@pytest.mark.gpu
def test_fit_on_cuda_with_amp_keeps_data_and_model_on_device() -> None:
    bundle = blobs(n=4096)
    cuda_bundle = DataBundle(
        name="blobs-cuda", task="classification", train=tuple(t.cuda() for t in bundle.train),
        val=tuple(t.cuda() for t in bundle.val), test=bundle.test, input_shape=bundle.input_shape,
        n_outputs=3, preprocessing=Preprocessing("none"),
    )  # type: ignore[arg-type]  # fmt: skip
    model = mlp()
    before = torch.backends.cuda.matmul.fp32_precision
    history = fit(model, cuda_bundle, epochs=5, lr=1e-2, device="cuda", amp=True, restore_best=True)
    assert torch.backends.cuda.matmul.fp32_precision == before
    assert history.device.startswith("cuda") and history.stopped == "epochs"
    assert next(model.parameters()).is_cuda
    assert history.best_val_metric is not None and history.best_val_metric > 0.9
    assert evaluate(model, bundle, "test")["accuracy"] > 0.9
