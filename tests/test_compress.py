from __future__ import annotations

import copy
import itertools
import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from autosize.callbacks import Callback, TrainState
from autosize.data.bundle import DataBundle, Preprocessing
from autosize.errors import ConfigError, SpecError
from autosize.history import EpochRecord
from autosize.models import ArchSpec, ConvLayer, DenseLayer, Net, build_model
from autosize.train import make_optimizer
from autosize.transforms import compress
from autosize.transforms.compress import (
    Gate,
    Sparsifier,
    add_gates,
    fold_gates,
    gate_penalty,
    remove_dead_units,
)

# --------------------------------------------------------------------------- fixtures

MLP = ArchSpec(
    input_shape=(6,),
    n_outputs=3,
    layers=(DenseLayer(16, batchnorm=True), DenseLayer(12)),
)
CNN = ArchSpec(
    input_shape=(2, 8, 8),
    n_outputs=4,
    layers=(
        ConvLayer(6, kernel=3, batchnorm=True, pool=2),
        ConvLayer(5, kernel=3, batchnorm=True),
        DenseLayer(10, batchnorm=True),
    ),
)
# The last conv feeds the head directly: the flatten sits between conv and head.
CONV_HEAD = ArchSpec(input_shape=(1, 7, 7), n_outputs=2, layers=(ConvLayer(5, kernel=3, pool=2),))
SPECS = {"mlp": MLP, "cnn": CNN, "conv_head": CONV_HEAD}


def _gated(spec: ArchSpec, *, seed: int = 0) -> Net:
    """A float64 gated net with non-trivial BatchNorm statistics and gates, in eval mode."""
    net = build_model(spec, seed=seed).double()
    add_gates(net, spec)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for block in net.blocks:
            if isinstance(block.norm, nn.modules.batchnorm._BatchNorm):
                n = block.norm.num_features
                block.norm.running_mean.copy_(torch.randn(n, generator=gen, dtype=torch.float64))
                block.norm.running_var.copy_(
                    torch.rand(n, generator=gen, dtype=torch.float64) + 0.5
                )
                block.norm.weight.copy_(torch.randn(n, generator=gen, dtype=torch.float64))
                block.norm.bias.copy_(torch.randn(n, generator=gen, dtype=torch.float64))
            block.gate.f.copy_(torch.rand(block.gate.n, generator=gen, dtype=torch.float64) + 0.5)
    return net.eval()


def _kill(net: Net, dead: dict[int, list[int]]) -> None:
    with torch.no_grad():
        for i, units in dead.items():
            net.blocks[i].gate.f[units] = -0.3


def _inputs(spec: ArchSpec, n: int = 9) -> torch.Tensor:
    return torch.randn(n, *spec.input_shape, dtype=torch.float64)


def _bundle(*, n: int = 256, d: int = 6, classes: int = 3, image: bool = False) -> DataBundle:
    gen = torch.Generator().manual_seed(0)
    shape = (1, 6, 6) if image else (d,)
    x = torch.randn(n, *shape, generator=gen)
    w = torch.randn(x[0].numel(), classes, generator=gen)
    y = (x.flatten(1) @ w).argmax(1)
    cut = (n * 3 // 4, n * 7 // 8)
    return DataBundle(
        name="synthetic",
        task="classification",
        train=(x[: cut[0]], y[: cut[0]]),
        val=(x[cut[0] : cut[1]], y[cut[0] : cut[1]]),
        test=(x[cut[1] :], y[cut[1] :]),
        input_shape=shape,
        n_outputs=classes,
        preprocessing=Preprocessing(kind="none"),
    )


def _assert_structure(net: nn.Module, spec: ArchSpec) -> None:
    ref = build_model(spec).state_dict()
    got = net.state_dict()
    assert list(got) == list(ref)
    assert {k: v.shape for k, v in got.items()} == {k: v.shape for k, v in ref.items()}


# --------------------------------------------------------------------------- gates


def test_gate_multiplies_each_unit_and_channel() -> None:
    gate = Gate(3)
    with torch.no_grad():
        gate.f.copy_(torch.tensor([2.0, -1.0, 0.5]))
    x = torch.ones(2, 3, 4, 4)
    expected = torch.tensor([2.0, 0.0, 0.5]).view(1, 3, 1, 1).expand(2, 3, 4, 4)
    torch.testing.assert_close(gate(x), expected)
    torch.testing.assert_close(gate(torch.ones(2, 3)), torch.tensor([[2.0, 0.0, 0.5]] * 2))


@pytest.mark.parametrize("name", sorted(SPECS))
def test_add_gates_keeps_outputs(name: str) -> None:
    spec = SPECS[name]
    net = build_model(spec, seed=0).double().eval()
    x = _inputs(spec)
    before = net(x)
    add_gates(net, spec)
    assert all(
        isinstance(b.gate, Gate) and b.gate.n == w
        for b, w in zip(net.blocks, spec.widths, strict=True)
    )
    torch.testing.assert_close(net(x), before, rtol=0, atol=0)


def test_penalty_weights_conv_by_kernel_area() -> None:
    net = add_gates(build_model(CNN, seed=0), CNN)
    with torch.no_grad():
        net.blocks[0].gate.f.fill_(0.5)
        net.blocks[0].gate.f[0] = -2.0  # relu: contributes 0
    expected = 9 * 0.5 * 5 + 9 * 5 + 1 * 10
    assert gate_penalty(net, CNN).item() == pytest.approx(expected)


# --------------------------------------------------------------------------- removal and folding


DEAD = {
    "mlp": {0: [0, 3, 4, 15], 1: [2, 11]},
    "cnn": {0: [1, 5], 1: [0, 2, 4], 2: [3]},
    "conv_head": {0: [0, 3]},
}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_removal_then_folding_preserve_outputs(name: str) -> None:
    spec = SPECS[name]
    net = _gated(spec)
    _kill(net, DEAD[name])
    x = _inputs(spec)
    reference = net(x).detach()

    result = remove_dead_units(net, spec)
    expected_widths = tuple(w - len(DEAD[name].get(i, [])) for i, w in enumerate(spec.widths))
    assert result.spec.widths == expected_widths
    assert result.removed == tuple(len(DEAD[name].get(i, [])) for i in range(spec.depth))
    assert result.kept_one == ()
    torch.testing.assert_close(net(x), reference)
    assert [b.core.weight.shape[0] for b in net.blocks] == list(expected_widths)

    fold_gates(net, result.spec)
    assert not any(isinstance(m, Gate) for m in net.modules())
    torch.testing.assert_close(net(x), reference)
    _assert_structure(net, result.spec)
    # The folded weights load into a freshly built model: same outputs, no gates needed.
    fresh = build_model(result.spec).double().eval()
    fresh.load_state_dict(net.state_dict())
    torch.testing.assert_close(fresh(x), reference)


def test_removal_slices_batchnorm_statistics_and_flatten_columns() -> None:
    net = _gated(CNN)
    old = copy.deepcopy(net)
    _kill(net, {1: [0, 2, 4]})
    remove_dead_units(net, CNN)
    keep = torch.tensor([1, 3])
    norm, old_norm = net.blocks[1].norm, old.blocks[1].norm
    torch.testing.assert_close(norm.running_mean, old_norm.running_mean[keep])
    torch.testing.assert_close(norm.running_var, old_norm.running_var[keep])
    s = CNN.flatten_size(2)
    cols = torch.cat([torch.arange(c * s, c * s + s) for c in keep.tolist()])
    torch.testing.assert_close(net.blocks[2].linear.weight, old.blocks[2].linear.weight[:, cols])
    assert net.blocks[2].linear.in_features == 2 * s


def test_nothing_dead_changes_nothing() -> None:
    net = _gated(MLP)
    opt = make_optimizer("adam", net.parameters(), lr=1e-3)
    params = list(net.parameters())
    result = remove_dead_units(net, MLP, optimizer=opt)
    assert result.spec == MLP and not result.changed and result.optimizer is opt
    assert list(net.parameters()) == params


def test_layer_that_loses_every_unit_keeps_its_largest_gate() -> None:
    net = _gated(MLP)
    with torch.no_grad():
        net.blocks[1].gate.f.copy_(-torch.arange(12, dtype=torch.float64) - 1)
        net.blocks[1].gate.f[7] = -0.01
    x = _inputs(MLP)
    reference = net(x).detach()
    result = remove_dead_units(net, MLP)
    assert result.spec.widths == (16, 1)
    assert result.kept_one == (1,)
    assert net.blocks[1].gate.f.item() == pytest.approx(-0.01)
    torch.testing.assert_close(net(x), reference)


def test_non_finite_gates_do_not_crash_removal_or_folding() -> None:
    net = _gated(MLP)
    with torch.no_grad():
        net.blocks[0].gate.f.fill_(float("nan"))  # what a diverged run leaves behind
    result = remove_dead_units(net, MLP)
    assert result.spec.widths == (1, 12) and result.kept_one == (0,)
    fold_gates(net, result.spec)
    _assert_structure(net, result.spec)


@settings(max_examples=25, deadline=None)
@given(
    convs=st.lists(
        st.tuples(st.integers(1, 5), st.booleans(), st.sampled_from([1, 2])), max_size=2
    ),
    denses=st.lists(st.tuples(st.integers(1, 6), st.booleans()), max_size=2),
    seed=st.integers(0, 10_000),
)
def test_removal_and_folding_preserve_outputs_property(
    convs: list[tuple[int, bool, int]], denses: list[tuple[int, bool]], seed: int
) -> None:
    layers = [ConvLayer(c, kernel=3, batchnorm=bn, pool=p) for c, bn, p in convs]
    layers += [DenseLayer(w, batchnorm=bn) for w, bn in denses]
    if not layers:
        layers = [DenseLayer(3)]
    spec = ArchSpec(input_shape=(2, 6, 6), n_outputs=3, layers=tuple(layers))
    net = _gated(spec, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for block in net.blocks:
            dead = torch.rand(block.gate.n, generator=gen) < 0.5
            block.gate.f[dead] = -torch.rand(int(dead.sum()), generator=gen, dtype=torch.float64)
    x = _inputs(spec, n=4)
    reference = net(x).detach()
    result = remove_dead_units(net, spec)
    torch.testing.assert_close(net(x), reference)
    fold_gates(net, result.spec)
    torch.testing.assert_close(net(x), reference)
    _assert_structure(net, result.spec)


# --------------------------------------------------------------------------- optimizer state


def _hand_sliced_reference(
    old: Net, old_opt: torch.optim.Optimizer, keep0: torch.Tensor, keep1: torch.Tensor, name: str
) -> tuple[Net, torch.optim.Optimizer]:
    """Build the MLP after removal by hand: slice every tensor and its optimizer state."""
    new_spec = MLP.with_widths([len(keep0), len(keep1)])
    ref = add_gates(build_model(new_spec).double(), new_spec)
    slices = {
        "blocks.0.linear.weight": (keep0, None),
        "blocks.0.linear.bias": (keep0, None),
        "blocks.0.norm.weight": (keep0, None),
        "blocks.0.norm.bias": (keep0, None),
        "blocks.0.gate.f": (keep0, None),
        "blocks.1.linear.weight": (keep1, keep0),
        "blocks.1.linear.bias": (keep1, None),
        "blocks.1.gate.f": (keep1, None),
        "head.weight": (None, keep1),
        "head.bias": (None, None),
    }

    def cut(t: torch.Tensor, rows: torch.Tensor | None, cols: torch.Tensor | None) -> torch.Tensor:
        t = t if rows is None else t[rows]
        return t if cols is None else t[:, cols]

    old_params = dict(old.named_parameters())
    with torch.no_grad():
        for key, p in ref.named_parameters():
            p.copy_(cut(old_params[key], *slices[key]))
        for key in ("running_mean", "running_var"):
            getattr(ref.blocks[0].norm, key).copy_(getattr(old.blocks[0].norm, key)[keep0])
    ref_opt = make_optimizer(name, ref.parameters(), lr=1e-2)
    for key, p in ref.named_parameters():
        state = old_opt.state[old_params[key]]
        ref_opt.state[p] = {
            k: cut(v, *slices[key]).clone() if v.shape == old_params[key].shape else v.clone()
            for k, v in state.items()
        }
    return ref, ref_opt


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd"])
def test_optimizer_state_follows_the_surviving_units(name: str) -> None:
    net = _gated(MLP).train()
    opt = make_optimizer(name, net.parameters(), lr=1e-2)
    x, y = _inputs(MLP, n=32), torch.randint(0, 3, (32,))

    def step(model: Net, optimizer: torch.optim.Optimizer) -> None:
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()

    for _ in range(3):
        step(net, opt)
    _kill(net, DEAD["mlp"])
    keep0 = torch.tensor([u for u in range(16) if u not in DEAD["mlp"][0]])
    keep1 = torch.tensor([u for u in range(12) if u not in DEAD["mlp"][1]])
    ref, ref_opt = _hand_sliced_reference(net, opt, keep0, keep1, name)

    result = remove_dead_units(net, MLP, optimizer=opt)
    new_opt = result.optimizer
    assert new_opt is not None and new_opt is not opt
    assert {id(p) for g in new_opt.param_groups for p in g["params"]} == {
        id(p) for p in net.parameters()
    }
    for _ in range(2):
        step(net, new_opt)
        step(ref, ref_opt)
    for (key, got), want in zip(net.named_parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(got, want, msg=key)


def test_optimizer_hyperparameters_survive_rebuild() -> None:
    net = _gated(MLP)
    opt = make_optimizer("sgd", net.parameters(), lr=0.1, weight_decay=1e-4)
    opt.param_groups[0]["lr"] = 0.05  # e.g. a scheduler lowered it
    _kill(net, {0: [1]})
    new_opt = remove_dead_units(net, MLP, optimizer=opt).optimizer
    assert isinstance(new_opt, torch.optim.SGD)
    group = new_opt.param_groups[0]
    assert group["lr"] == 0.05 and group["weight_decay"] == 1e-4 and group["momentum"] == 0.9


def test_param_groups_survive_rebuild() -> None:
    net = _gated(MLP)
    gates = [b.gate.f for b in net.blocks]
    others = [p for p in net.parameters() if all(p is not g for g in gates)]
    groups = [{"params": others}, {"params": gates, "lr": 0.5}]
    opt = make_optimizer("adam", groups, lr=1e-3)
    _kill(net, {0: [2], 1: [5]})
    new_opt = remove_dead_units(net, MLP, optimizer=opt).optimizer
    assert [g["lr"] for g in new_opt.param_groups] == [1e-3, 0.5]
    assert new_opt.param_groups[1]["params"] == [b.gate.f for b in net.blocks]


# --------------------------------------------------------------------------- compress


def test_lam_zero_removes_nothing() -> None:
    spec = ArchSpec(input_shape=(6,), n_outputs=3, layers=(DenseLayer(20), DenseLayer(10)))
    net, new_spec, history = compress(
        build_model(spec, seed=0), spec, _bundle(), lam=0.0, epochs=3, device="cpu"
    )
    assert new_spec == spec
    assert [r.extra["widths"] for r in history.epochs] == [[20, 10]] * 3
    assert [r.extra["lam"] for r in history.epochs] == [0.0] * 3
    assert all(r.train_penalty == 0.0 for r in history.epochs)
    _assert_structure(net, new_spec)


def test_large_lam_removes_most_units_and_records_widths() -> None:
    spec = ArchSpec(input_shape=(6,), n_outputs=3, layers=(DenseLayer(64), DenseLayer(32)))
    bundle = _bundle()
    net, new_spec, history = compress(
        build_model(spec, seed=0), spec, bundle, lam=0.1, decay=1.2, lr=0.05, epochs=6,
        batch_size=16, device="cpu",
    )  # fmt: skip
    assert sum(new_spec.widths) <= 0.25 * sum(spec.widths)
    widths = [r.extra["widths"] for r in history.epochs]
    assert widths[-1] == list(new_spec.widths)
    assert all(a >= b for w0, w1 in itertools.pairwise(widths) for a, b in zip(w0, w1, strict=True))
    assert [r.extra["lam"] for r in history.epochs] == pytest.approx(
        [0.1 / 1.2**k for k in range(len(history))]
    )
    _assert_structure(net, new_spec)
    # The returned plain Net computes what the built spec does with its weights.
    fresh = build_model(new_spec)
    fresh.load_state_dict(net.state_dict())
    x = bundle.test[0]
    torch.testing.assert_close(fresh.eval()(x), net(x))


def test_compress_cnn_with_batchnorm_runs_and_shrinks() -> None:
    spec = ArchSpec(
        input_shape=(1, 6, 6),
        n_outputs=3,
        layers=(ConvLayer(8, batchnorm=True, pool=2), DenseLayer(16, batchnorm=True)),
    )
    net, new_spec, history = compress(
        build_model(spec, seed=0), spec, _bundle(image=True), lam=0.05, lr=0.05, epochs=5,
        batch_size=16, device="cpu",
    )  # fmt: skip
    assert sum(new_spec.widths) < sum(spec.widths)
    assert history.epochs[-1].extra["widths"] == list(new_spec.widths)
    _assert_structure(net, new_spec)


def test_huge_lam_keeps_one_unit_per_layer_and_says_so() -> None:
    spec = ArchSpec(input_shape=(6,), n_outputs=3, layers=(DenseLayer(8), DenseLayer(8)))
    net, new_spec, history = compress(
        build_model(spec, seed=0), spec, _bundle(), lam=100.0, lr=0.5, epochs=2, device="cpu"
    )
    assert new_spec.widths == (1, 1)
    assert any(r.extra.get("kept_one") == [0, 1] for r in history.epochs)
    assert history.stopped != "diverged"
    _assert_structure(net, new_spec)


def test_remove_every_controls_when_units_are_cut() -> None:
    spec = ArchSpec(input_shape=(6,), n_outputs=3, layers=(DenseLayer(32),))
    _, new_spec, history = compress(
        build_model(spec, seed=0), spec, _bundle(), lam=0.05, lr=0.05, epochs=3, remove_every=2,
        batch_size=32, device="cpu",
    )  # fmt: skip
    assert "removed" not in history.epochs[0].extra
    assert "removed" in history.epochs[1].extra
    assert history.epochs[0].extra["widths"] == [32]  # dead units wait for the removal epoch
    assert history.epochs[-1].extra["widths"] == list(new_spec.widths)


def test_gate_lr_puts_gates_in_their_own_group_and_speeds_shrinking() -> None:
    spec = ArchSpec(input_shape=(6,), n_outputs=3, layers=(DenseLayer(32),))
    seen: list[list[float]] = []

    class Groups(Callback):
        def on_epoch_end(self, state: TrainState, record: EpochRecord) -> None:
            seen.append([g["lr"] for g in state.optimizer.param_groups])

    kwargs = {"lam": 0.05, "epochs": 2, "batch_size": 16, "device": "cpu"}
    _, slow, _ = compress(build_model(spec, seed=0), spec, _bundle(), **kwargs)
    _, fast, history = compress(
        build_model(spec, seed=0), spec, _bundle(), gate_lr=0.05, callbacks=[Groups()], **kwargs
    )
    assert seen == [[1e-3, 0.05]] * 2
    assert history.epochs[0].lr == 1e-3
    assert slow.widths == (32,)  # lr=1e-3 moves f by ~1e-3 a step: 24 steps cannot close a gate
    assert fast.widths[0] < 32


def test_caller_model_is_untouched() -> None:
    spec = ArchSpec(input_shape=(6,), n_outputs=3, layers=(DenseLayer(16),))
    model = build_model(spec, seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    net, _, _ = compress(model, spec, _bundle(), lam=0.05, lr=0.05, epochs=2, device="cpu")
    assert net is not model
    assert isinstance(model.blocks[0].gate, nn.Identity)
    after = model.state_dict()
    assert after.keys() == before.keys()
    for key, value in before.items():
        torch.testing.assert_close(after[key], value, rtol=0, atol=0)


def test_extra_callbacks_ride_along() -> None:
    class Count(Callback):
        def __init__(self) -> None:
            self.widths: list[object] = []

        def on_epoch_end(self, state: TrainState, record: EpochRecord) -> bool:
            self.widths.append(record.extra["widths"])
            return record.epoch >= 2

    spec = ArchSpec(input_shape=(6,), n_outputs=3, layers=(DenseLayer(16),))
    counter = Count()
    _, _, history = compress(
        build_model(spec), spec, _bundle(), lam=0.0, epochs=5, callbacks=[counter], device="cpu"
    )
    assert len(history) == 2 and history.stopped == "callback"
    assert counter.widths == [[16], [16]]


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"lam": -0.5}, "lam must be a finite number >= 0, got -0.5"),
        ({"lam": float("nan")}, "got nan"),
        ({"lam": 0.1, "decay": 0.0}, "decay must be a finite number > 0, got 0.0"),
        ({"lam": 0.1, "decay": -2}, "got -2"),
        ({"lam": 0.1, "remove_every": 0}, "remove_every must be an integer >= 1, got 0"),
        ({"lam": 0.1, "gate_lr": -1.0}, "gate_lr must be a positive number or None, got -1.0"),
    ],
)
def test_bad_options_raise_config_error(kwargs: dict[str, float], needle: str) -> None:
    spec = ArchSpec(input_shape=(6,), n_outputs=3, layers=(DenseLayer(4),))
    with pytest.raises(ConfigError, match=re.escape(needle)):
        compress(build_model(spec), spec, _bundle(), epochs=1, device="cpu", **kwargs)


def test_no_hidden_layers_raises_spec_error() -> None:
    spec = ArchSpec(input_shape=(6,), n_outputs=3)
    with pytest.raises(SpecError, match="at least one hidden layer; spec 'linear' has none"):
        compress(build_model(spec), spec, _bundle(), lam=0.1, epochs=1, device="cpu")
    with pytest.raises(SpecError, match="'linear'"):
        Sparsifier(spec, lam=0.1)


def test_model_spec_mismatch_raises_spec_error() -> None:
    spec = ArchSpec(input_shape=(6,), n_outputs=3, layers=(DenseLayer(4),))
    other = spec.with_widths([5])
    with pytest.raises(SpecError, match=r"layers\[0\]: spec says 5 units but the model has 4"):
        compress(build_model(spec), other, _bundle(), lam=0.1, epochs=1, device="cpu")
    with pytest.raises(SpecError, match="no gate of size 4; call add_gates first"):
        remove_dead_units(build_model(spec), spec)
