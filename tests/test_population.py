"""Population training: every member of fit_population against fit alone (CPU, seconds)."""

from __future__ import annotations

import copy
import gc
import itertools
from collections.abc import Sequence
from dataclasses import replace

import pytest
import torch
from test_train import blobs, linear_regression
from torch import nn

from autosize.callbacks import Callback, CosineSchedule, EarlyStopping, TrainState
from autosize.data.bundle import DataBundle
from autosize.errors import ConfigError
from autosize.history import EpochRecord, History
from autosize.models import (
    ACTIVATIONS,
    ArchSpec,
    ConvLayer,
    DenseLayer,
    PeriodicEmbedding,
    build_model,
)
from autosize.models.net import make_activation
from autosize.population import fit_population
from autosize.population import loop as loop_module
from autosize.population import optimizer as optimizer_module
from autosize.population import stack as stack_module
from autosize.population.member import write_layers
from autosize.population.stack import MemberShape, Stack, plan_stacks
from autosize.train import _CHECK_EVERY_CUDA, fit

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# widths, activation: depths 0 to 3, shared and distinct shapes, act(0) != 0 (sigmoid).
SHAPES: list[tuple[tuple[int, ...], str]] = [
    ((16,), "relu"),
    ((5, 7), "relu"),
    ((9, 3), "relu"),
    ((), "relu"),
    ((12,), "sigmoid"),
    ((4,), "sigmoid"),
    ((6, 6, 6), "tanh"),
]
SEEDS = [0, 0, 1, 2, 0, 3, 1]  # some members share a seed (and so their batches)
LRS = [1e-2, 3e-3, 1e-2, 1e-2, 5e-3, 1e-2, 2e-3]


def as_dtype(bundle: DataBundle, dtype: torch.dtype) -> DataBundle:
    def cast(split: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = split
        return x.to(dtype), (y.to(dtype) if y.is_floating_point() else y)

    return replace(bundle, train=cast(bundle.train), val=cast(bundle.val), test=cast(bundle.test))


# A periodic embedding of the first 3 of the test tables' 8 columns ([seed] embedding).
EMBED = PeriodicEmbedding(features=3, frequencies=4, width=5, sigma=0.5)


def nets(
    bundle: DataBundle,
    dtype: torch.dtype = torch.float32,
    embedding: PeriodicEmbedding | None = None,
    **spec: object,
) -> list[nn.Module]:
    regression = bundle.task == "regression"
    out = []
    for i, (widths, act) in enumerate(SHAPES):
        arch = ArchSpec(
            input_shape=bundle.input_shape,
            n_outputs=bundle.n_outputs,
            layers=tuple(DenseLayer(w, **spec) for w in widths),  # type: ignore[arg-type]
            activation=act,  # type: ignore[arg-type]
            target_scale=2.0 if regression else 1.0,
            target_shift=0.5 if regression else 0.0,
            embedding=embedding,
        )
        out.append(build_model(arch, seed=i).to(dtype))
    return out


def diverging_nets(bundle: DataBundle) -> tuple[list[nn.Module], list[nn.Module]]:
    """``nets(bundle)`` and a copy, member 2 of both blowing up at its first step (as a
    too-high lr would)."""
    models = nets(bundle)
    refs = copy.deepcopy(models)
    with torch.no_grad():
        for m in (models[2], refs[2]):
            m.head.weight.fill_(1e38)
    return models, refs


def alone(
    models: Sequence[nn.Module],
    bundle: DataBundle,
    callbacks: Sequence[Sequence[Callback]] = (),
    lrs: Sequence[float] = LRS,
    **kw: object,
) -> list[History]:
    """Each model through fit, one after another, with its own seed and lr."""
    return [
        fit(m, bundle, seed=SEEDS[i], lr=lrs[i], callbacks=callbacks[i] if callbacks else (), **kw)  # type: ignore[arg-type]
        for i, m in enumerate(models)
    ]


def assert_same(
    got: Sequence[History],
    want: Sequence[History],
    models: Sequence[nn.Module],
    refs: Sequence[nn.Module],
    tol: float,
) -> None:
    for i, (h, r) in enumerate(zip(got, want, strict=True)):
        assert (h.stopped, len(h), h.restored_epoch) == (r.stopped, len(r), r.restored_epoch), i
        assert h.stop_reason.split(" (")[0] == r.stop_reason.split(" (")[0], i  # floats in (...)
        for a, b in zip(h.epochs, r.epochs, strict=True):
            assert (a.epoch, a.train_examples, a.lr) == (b.epoch, b.train_examples, b.lr)
            for name in ("train_loss", "val_loss", "val_metric"):
                assert getattr(a, name) == pytest.approx(getattr(b, name), rel=tol, abs=tol, nan_ok=True), (i, a.epoch, name)  # fmt: skip
    for m, ref in zip(models, refs, strict=True):
        assert not m.training
        for p, q in zip(m.parameters(), ref.parameters(), strict=True):
            torch.testing.assert_close(p, q, rtol=tol, atol=tol)


# ---------------------------------------------------------------- exactness against fit


def exactness_case(
    task: str, dtype: torch.dtype, optimizer: str, path: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[DataBundle, dict[str, object]]:
    """The data and the training arguments of one exactness case, on one optimizer path."""
    monkeypatch.setattr(optimizer_module, "FUSED_MIN_ELEMENTS", 0 if path == "fused" else 1 << 60)
    bundle = as_dtype(linear_regression() if task == "regression" else blobs(), dtype)
    kw = {
        "epochs": 4,
        "batch_size": 32,
        "device": "cpu",
        "optimizer": optimizer,
        "weight_decay": 0.0 if optimizer == "adam" else 1e-2,
    }
    return bundle, kw


@pytest.mark.parametrize("task", ["regression", "classification"])
@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-8), (torch.float32, 1e-4)])
@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
@pytest.mark.parametrize("path", ["flat", "fused"])
def test_each_member_matches_fit_alone(
    task: str,
    dtype: torch.dtype,
    tol: float,
    optimizer: str,
    path: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bundle, kw = exactness_case(task, dtype, optimizer, path, monkeypatch)
    models = nets(bundle, dtype)
    refs = copy.deepcopy(models)
    got = fit_population(models, bundle, seed=SEEDS, lr=LRS, **kw)  # type: ignore[arg-type]
    assert_same(got, alone(refs, bundle, **kw), models, refs, tol)
    assert all(h.stopped == "epochs" and len(h) == 4 for h in got)


@pytest.mark.parametrize("task", ["regression", "classification"])
@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-8), (torch.float32, 1e-4)])
@pytest.mark.parametrize(("optimizer", "path"), [("adam", "flat"), ("adamw", "fused"), ("sgd", "flat")])  # fmt: skip
def test_members_with_an_embedding_match_fit_alone(
    task: str,
    dtype: torch.dtype,
    tol: float,
    optimizer: str,
    path: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Members carrying a periodic embedding ([seed] embedding), beside members without
    one (another stack each), every depth, shared and distinct seeds, restore_best."""
    bundle, kw = exactness_case(task, dtype, optimizer, path, monkeypatch)
    kw["restore_best"] = True
    models = nets(bundle, dtype, embedding=EMBED)
    plain = nets(bundle, dtype)
    models[1], models[5] = plain[1], plain[5]
    refs = copy.deepcopy(models)
    start = {i: m.embed.frequency.clone() for i, m in enumerate(models) if m.embed is not None}  # type: ignore[union-attr, operator]
    assert len(start) == 5
    got = fit_population(models, bundle, seed=SEEDS, lr=LRS, **kw)  # type: ignore[arg-type]
    assert_same(got, alone(refs, bundle, **kw), models, refs, tol)
    for i, freq in start.items():  # the embeddings trained (assert_same: as fit's did)
        assert not torch.equal(models[i].embed.frequency, freq), i  # type: ignore[union-attr, operator]


def test_restore_best_and_early_stopping_per_member() -> None:
    bundle = as_dtype(blobs(n=256), torch.float64)  # a high lr: float32 rounding would grow
    models = nets(bundle, torch.float64)
    refs = copy.deepcopy(models)
    calls = [[EarlyStopping(patience=2, monitor="val_loss")] for _ in models]
    ref_calls = copy.deepcopy(calls)
    kw = {"epochs": 30, "batch_size": 16, "device": "cpu", "restore_best": True}
    lrs = [10 * lr for lr in LRS]  # high enough to overfit early
    got = fit_population(models, bundle, seed=SEEDS, lr=lrs, callbacks=calls, **kw)  # type: ignore[arg-type]
    want = alone(refs, bundle, callbacks=ref_calls, lrs=lrs, **kw)
    assert_same(got, want, models, refs, 1e-8)
    assert "callback" in {h.stopped for h in got}
    assert all(h.restored_epoch == h.best_epoch for h in got)
    assert len({len(h) for h in got}) > 1  # members stopped at different epochs


@pytest.mark.parametrize("path", ["flat", "fused"])
def test_a_cosine_schedule_per_member_sets_its_lr(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Learning rates that change every epoch reach both optimizer paths (their caches)."""
    monkeypatch.setattr(optimizer_module, "FUSED_MIN_ELEMENTS", 0 if path == "fused" else 1 << 60)
    bundle = linear_regression()
    models = nets(bundle)
    refs = copy.deepcopy(models)
    calls = [[CosineSchedule(epochs=5)] for _ in models]
    kw = {"epochs": 5, "batch_size": 32, "device": "cpu"}
    got = fit_population(models, bundle, seed=SEEDS, lr=LRS, callbacks=calls, **kw)  # type: ignore[arg-type]
    want = alone(refs, bundle, callbacks=[[CosineSchedule(epochs=5)] for _ in refs], **kw)
    assert_same(got, want, models, refs, 1e-4)
    assert got[0].epochs[-1].lr < got[0].epochs[0].lr


class StopAfter(Callback):
    """Prunes its member after ``epoch`` epochs (what the search's reporter does)."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self.ended = False

    def on_epoch_end(self, state: TrainState, record: EpochRecord) -> bool:
        if record.epoch >= self.epoch:
            state.stop_reason = f"pruned at {record.epoch}"
            return True
        return False

    def on_train_end(self, state: TrainState) -> None:
        self.ended = True


def test_a_stopped_member_leaves_the_others_as_fit_would() -> None:
    bundle = blobs()
    models = nets(bundle)
    refs = copy.deepcopy(models)
    calls = [[StopAfter(e)] for e in (1, 2, 9, 1, 3, 9, 2)]
    kw = {"epochs": 4, "batch_size": 32, "device": "cpu"}
    got = fit_population(models, bundle, seed=SEEDS, lr=LRS, callbacks=calls, **kw)  # type: ignore[arg-type]
    want = alone(refs, bundle, callbacks=[[StopAfter(e)] for e in (1, 2, 9, 1, 3, 9, 2)], **kw)
    assert_same(got, want, models, refs, 1e-4)
    assert [len(h) for h in got] == [1, 2, 4, 1, 3, 4, 2]
    assert got[0].stopped == "callback" and got[0].stop_reason == "pruned at 1"
    assert all(c[0].ended for c in calls)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_divergence_ends_that_member_only(device: str) -> None:
    bundle = linear_regression()
    models, refs = diverging_nets(bundle)
    kw = {"epochs": 3, "batch_size": 32, "device": device}
    got = fit_population(models, bundle, seed=SEEDS, lr=LRS, **kw)  # type: ignore[arg-type]
    want = alone(refs, bundle, **kw)
    assert got[2].stopped == want[2].stopped == "diverged"
    assert len(got[2]) == len(want[2]) == 1
    # fit stops at the first non-finite batch on the CPU (it checks every batch) and on
    # CUDA at its next check (every _CHECK_EVERY_CUDA batches, or the epoch's end: here
    # all 12 batches), to spare a sync per batch; the population checks as fit does.
    first = 32 if device == "cpu" else min(len(bundle.train[0]), 32 * _CHECK_EVERY_CUDA)
    assert got[2].epochs[0].train_examples == want[2].epochs[0].train_examples == first
    keep = [i for i in range(len(models)) if i != 2]
    assert_same(*(([x[i] for i in keep]) for x in (got, want, models, refs)), 1e-4)  # type: ignore[arg-type]


def test_time_budget_stops_the_population() -> None:
    bundle = blobs(n=4000)
    got = fit_population(nets(bundle), bundle, max_seconds=0.3, epochs=10_000, device="cpu")
    assert all(h.stopped == "time" and "max_seconds" in h.stop_reason for h in got)
    assert len({len(h) for h in got}) == 1


def test_layers_without_bias() -> None:
    bundle = as_dtype(blobs(), torch.float64)
    models = nets(bundle, torch.float64, bias=False)
    refs = copy.deepcopy(models)
    kw = {"epochs": 2, "batch_size": 64, "device": "cpu"}
    got = fit_population(models, bundle, seed=SEEDS, lr=LRS, **kw)  # type: ignore[arg-type]
    assert_same(got, alone(refs, bundle, **kw), models, refs, 1e-8)


@pytest.mark.parametrize("task", ["regression", "classification"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_activation_matches_fit_alone(task: str, activation: str) -> None:
    """Each activation build_model makes has its own backward in Stack.backward."""
    bundle = as_dtype(linear_regression() if task == "regression" else blobs(), torch.float64)
    models = [
        build_model(
            ArchSpec(
                input_shape=bundle.input_shape,
                n_outputs=bundle.n_outputs,
                layers=tuple(DenseLayer(w) for w in widths),
                activation=activation,  # type: ignore[arg-type]
            ),
            seed=i,
        ).to(torch.float64)
        for i, widths in enumerate([(8, 5), (3, 9), (7,)])
    ]
    refs = copy.deepcopy(models)
    kw = {"epochs": 2, "batch_size": 32, "device": "cpu"}
    got = fit_population(models, bundle, seed=SEEDS[:3], lr=LRS[:3], **kw)  # type: ignore[arg-type]
    assert_same(got, alone(refs, bundle, **kw), models, refs, 1e-8)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("sizes", [(6, 9, 4, 1), (6, 9, 3), (6, 1)])
@pytest.mark.parametrize("bias", [True, False])
def test_the_stacks_backward_is_autograds(
    activation: str, sizes: tuple[int, ...], bias: bool
) -> None:
    """Stack.backward's gradients (one-output heads included) against autograd's of forward."""
    torch.manual_seed(0)
    act = make_activation(activation)
    layers = len(sizes) - 1
    shapes = [
        MemberShape(s, (bias,) * (layers - 1) + (True,), act, torch.float64)
        for s in (sizes, tuple(max(1, w - 2) for w in sizes[:-1]) + sizes[-1:])
    ]
    weights = [
        [
            (torch.randn(b, a, dtype=torch.float64), torch.randn(b, dtype=torch.float64))
            for a, b in itertools.pairwise(shape.sizes)
        ]
        for shape in shapes
    ]
    for member in weights:  # a layer without bias has none
        for i in range(layers - 1):
            if not bias:
                member[i] = (member[i][0], None)
    stack = Stack(weights, shapes, optimizer="adam")
    x = torch.randn(2, 5, sizes[0], dtype=torch.float64)
    grad_out = torch.randn(2, 5, sizes[-1], dtype=torch.float64)
    stack.zero_grad()
    stack.forward(x).backward(grad_out)
    want = stack.grad.clone()
    stack.grad.fill_(float("nan"))  # backward writes every element, it does not accumulate
    out, saved = stack.forward_saving(x)
    torch.testing.assert_close(out, stack.forward(x).detach(), rtol=0, atol=0)
    stack.backward(grad_out, saved)
    torch.testing.assert_close(stack.grad, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("sizes", [(20, 9, 4, 3), (20, 1)])
@pytest.mark.parametrize("shared", [True, False])
def test_the_stacks_backward_is_autograds_with_an_embedding(
    sizes: tuple[int, ...], shared: bool
) -> None:
    """An embedding of 3 of 8 columns (3 x 5 values + 5 passed on = 20 inputs) before the
    first layer (a one-output head too), for a batch shared by all members or one each."""
    torch.manual_seed(0)
    n, k, d = 3, 4, 5
    f64 = torch.float64
    shapes = [
        MemberShape(s, (True,) * (len(sizes) - 1), nn.Tanh(), f64, embed=(n, k, d))
        for s in (sizes, sizes[:1] + tuple(max(1, w - 2) for w in sizes[1:-1]) + sizes[-1:])
    ]
    weights = [
        [(torch.randn(b, a, dtype=f64), torch.randn(b, dtype=f64)) for a, b in itertools.pairwise(sh.sizes)]
        for sh in shapes
    ]  # fmt: skip
    embeds = [
        (torch.randn(n, k, dtype=f64), torch.randn(n, 2 * k, d, dtype=f64), torch.randn(n, d, dtype=f64))
        for _ in shapes
    ]  # fmt: skip
    stack = Stack(weights, shapes, optimizer="adam", embeds=embeds)
    x = torch.randn(5, 8, dtype=f64) if shared else torch.randn(2, 5, 8, dtype=f64)
    grad_out = torch.randn(2, 5, sizes[-1], dtype=f64)
    stack.zero_grad()
    stack.forward(x).backward(grad_out)
    want = stack.grad.clone()
    assert want[: 2 * n * k].abs().min() > 0  # every frequency got a gradient
    stack.grad.fill_(float("nan"))  # backward writes every element, it does not accumulate
    out, saved = stack.forward_saving(x)
    torch.testing.assert_close(out, stack.forward(x).detach(), rtol=0, atol=0)
    stack.backward(grad_out, saved)
    torch.testing.assert_close(stack.grad, want, rtol=1e-12, atol=1e-12)
    # each member's rows against its own PeriodicFeatures and layers, built from its weights
    for row, (emb, layers) in enumerate(zip(embeds, weights, strict=True)):
        h = x if shared else x[row]
        net = build_model(ArchSpec(
            input_shape=(8,), n_outputs=sizes[-1], activation="tanh",
            layers=tuple(DenseLayer(w) for w in shapes[row].sizes[1:-1]),
            embedding=PeriodicEmbedding(features=n, frequencies=k, width=d),
        )).double()  # fmt: skip
        write_layers(net, [*emb] + [t for w, b in layers for t in (w.T, b.unsqueeze(0))])
        with torch.no_grad():
            torch.testing.assert_close(out[row], net(h), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("embedding", [None, EMBED])
def test_the_autograd_path_matches_fit_alone(
    embedding: PeriodicEmbedding | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An activation without a known backward (or autocast) trains through autograd."""
    monkeypatch.setattr(stack_module, "act_backward", lambda act: None)
    bundle = as_dtype(linear_regression(), torch.float64)
    models = nets(bundle, torch.float64, embedding=embedding)
    refs = copy.deepcopy(models)
    kw = {"epochs": 2, "batch_size": 32, "device": "cpu"}
    got = fit_population(models, bundle, seed=SEEDS, lr=LRS, **kw)  # type: ignore[arg-type]
    assert_same(got, alone(refs, bundle, **kw), models, refs, 1e-8)


# ---------------------------------------------------------------- what it refuses


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ({"dropout": 0.2}, "dropout"),
        ({"batchnorm": True}, "batchnorm"),
    ],
)
def test_refuses_dropout_and_batchnorm(spec: dict[str, object], match: str) -> None:
    bundle = blobs()
    with pytest.raises(ConfigError, match=match):
        fit_population(nets(bundle, **spec), bundle, epochs=1, device="cpu")


def test_refuses_other_modules_conv_nets_and_bad_arguments() -> None:
    bundle = blobs()
    with pytest.raises(ConfigError, match="Sequential"):
        fit_population([nn.Sequential(nn.Linear(8, 3))], bundle, epochs=1, device="cpu")
    conv = build_model(ArchSpec(input_shape=(1, 4, 4), n_outputs=3, layers=(ConvLayer(2),)))
    with pytest.raises(ConfigError, match="not dense"):
        fit_population([conv], bundle, epochs=1, device="cpu")
    narrow = build_model(ArchSpec(input_shape=(8,), n_outputs=2, layers=(DenseLayer(4),)))
    with pytest.raises(ConfigError, match="model 0 has 2 outputs; 'blobs' needs 3"):
        fit_population([narrow], bundle, epochs=1, device="cpu")
    with pytest.raises(ConfigError, match="2 values for 7 models"):
        fit_population(nets(bundle), bundle, epochs=1, lr=[1e-3, 1e-3], device="cpu")
    with pytest.raises(ConfigError, match="budget"):
        fit_population(nets(bundle), bundle, device="cpu")
    twice = nets(bundle)[:1] * 2
    with pytest.raises(ConfigError, match="more than once"):
        fit_population(twice, bundle, epochs=1, device="cpu")
    with pytest.raises(ConfigError, match="one sequence"):
        fit_population(nets(bundle)[:1], bundle, epochs=1, callbacks=[EarlyStopping(2)])  # type: ignore[list-item]

    class Penalty(Callback):
        def penalty(self, state: TrainState) -> torch.Tensor:
            return torch.zeros(())

    with pytest.raises(ConfigError, match="penalty"):
        fit_population(nets(bundle)[:1], bundle, epochs=1, callbacks=[[Penalty()]], device="cpu")
    mixed = nets(bundle)
    mixed[1] = mixed[1].double()
    with pytest.raises(ConfigError, match="model 1 has float64 parameters but dataset 'blobs'"):
        fit_population(mixed, bundle, epochs=1, device="cpu")


def test_batches_gathered_ahead_in_runs_match_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Examples gathered a few batches at a time (one run ending mid-epoch), with a member
    diverging and another stopped inside a run: every member still trains as fit would."""
    bundle = linear_regression()
    models, refs = diverging_nets(bundle)
    # room for 3 batches of 32 examples for all 7 members (8 features + a target each)
    monkeypatch.setattr(loop_module, "_GATHER_BYTES", 3 * 32 * 7 * (8 + 1) * 4)
    calls = [[StopAfter(e)] for e in (9, 1, 9, 2, 9, 9, 1)]
    kw = {"epochs": 3, "batch_size": 32, "device": "cpu"}
    got = fit_population(models, bundle, seed=SEEDS, lr=LRS, callbacks=calls, **kw)  # type: ignore[arg-type]
    want = alone(refs, bundle, callbacks=[[StopAfter(e)] for e in (9, 1, 9, 2, 9, 9, 1)], **kw)
    assert bundle.train[0].shape == (384, 8)  # 12 batches an epoch: 4 runs of 3
    assert got[2].stopped == want[2].stopped == "diverged"
    assert [len(h) for h in got] == [3, 1, 1, 2, 3, 3, 1]
    keep = [i for i in range(len(models)) if i != 2]
    assert_same(*(([x[i] for i in keep]) for x in (got, want, models, refs)), 1e-4)  # type: ignore[arg-type]


def test_a_member_leaving_a_stack_with_one_member_per_seed_keeps_the_others_batches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One stack whose members have seeds 0, 1, 2 in order (the rows of the epoch's
    permutations are 0, 1, 2): when the first diverges, the next gathered run still gives
    each survivor its own seed's batches."""
    bundle = linear_regression()
    arch = ArchSpec(input_shape=bundle.input_shape, n_outputs=1, layers=(DenseLayer(8),))
    models = [build_model(arch, seed=i) for i in range(3)]
    refs = copy.deepcopy(models)
    with torch.no_grad():  # member 0 blows up at its first step
        models[0].head.weight.fill_(1e38)
        refs[0].head.weight.fill_(1e38)
    monkeypatch.setattr(loop_module, "_GATHER_BYTES", 3 * 32 * 3 * (8 + 1) * 4)  # 3 batches
    kw = {"epochs": 2, "batch_size": 32, "device": "cpu"}
    got = fit_population(models, bundle, seed=[0, 1, 2], lr=1e-2, **kw)  # type: ignore[arg-type]
    want = [fit(m, bundle, seed=i, lr=1e-2, **kw) for i, m in enumerate(refs)]  # type: ignore[arg-type]
    assert got[0].stopped == want[0].stopped == "diverged"
    assert_same(got[1:], want[1:], models[1:], refs[1:], 1e-4)


def test_batch_size_one_trains_on_every_example_as_fit_does() -> None:
    bundle = as_dtype(blobs(n=48), torch.float64)  # 36 training examples
    models = nets(bundle, torch.float64)
    refs = copy.deepcopy(models)
    kw = {"epochs": 2, "batch_size": 1, "device": "cpu"}
    got = fit_population(models, bundle, seed=SEEDS, lr=LRS, **kw)  # type: ignore[arg-type]
    want = alone(refs, bundle, **kw)
    assert all(e.train_examples == 36 for h in want for e in h.epochs)
    assert_same(got, want, models, refs, 1e-8)


def test_the_garbage_collector_is_paused_while_training_and_back_after() -> None:
    bundle = blobs()
    seen: list[bool] = []

    class Spy(Callback):
        def on_epoch_end(self, state: TrainState, record: EpochRecord) -> bool:
            seen.append(gc.isenabled())
            return False

    class Boom(Callback):
        def on_epoch_end(self, state: TrainState, record: EpochRecord) -> bool:
            raise RuntimeError("boom")

    assert gc.isenabled()
    fit_population(nets(bundle)[:2], bundle, epochs=2, callbacks=[[Spy()], []], device="cpu")
    assert seen == [False, False] and gc.isenabled()
    with pytest.raises(RuntimeError, match="boom"):
        fit_population(nets(bundle)[:1], bundle, epochs=2, callbacks=[[Boom()]], device="cpu")
    assert gc.isenabled()  # on again, however training ended
    gc.disable()
    try:  # a caller who turned it off keeps it off
        fit_population(nets(bundle)[:1], bundle, epochs=1, device="cpu")
        assert not gc.isenabled()
    finally:
        gc.enable()


# ---------------------------------------------------------------- layout


def test_plan_stacks_pads_only_where_it_pays() -> None:
    def shape(*sizes: int) -> MemberShape:
        return MemberShape(sizes, (True,) * (len(sizes) - 1), nn.ReLU(), torch.float32)

    shapes = [shape(10, 16, 1), shape(10, 1024, 1), shape(10, 20, 1), shape(10, 8, 8, 1)]
    assert plan_stacks(shapes, overhead=1e9) == [[0, 2, 1], [3]]  # one stack per depth
    assert plan_stacks(shapes, overhead=100.0) == [[0, 2], [1], [3]]  # the wide one alone


@pytest.mark.gpu
@pytest.mark.parametrize("embedding", [None, EMBED])
def test_each_member_matches_fit_alone_on_cuda(embedding: PeriodicEmbedding | None) -> None:
    bundle = blobs()
    models = nets(bundle, embedding=embedding)
    refs = copy.deepcopy(models)
    kw = {"epochs": 3, "batch_size": 32, "device": "cuda"}
    got = fit_population(models, bundle, seed=SEEDS, lr=LRS, **kw)  # type: ignore[arg-type]
    assert_same(got, alone(refs, bundle, **kw), models, refs, 1e-4)
    assert all(h.device.startswith("cuda") for h in got)
