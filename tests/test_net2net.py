"""Net2Net transforms, checked against the teacher itself: the student must compute the same
function (float64 to 1e-10, float32 to 1e-5, relative to the output's magnitude), never only
the same shapes."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch import nn

from autosize.errors import SpecError
from autosize.models import (
    ACTIVATIONS,
    IDEMPOTENT_ACTIVATIONS,
    ArchSpec,
    ConvLayer,
    DenseLayer,
    Net,
    build_model,
)
from autosize.transforms import deepen, widen

ALL_ACTIVATIONS = ACTIVATIONS  # every activation a spec accepts, leaky_relu included
IDEMPOTENT = tuple(sorted(IDEMPOTENT_ACTIVATIONS))
SETTINGS = settings(max_examples=30, deadline=None)


# --------------------------------------------------------------------------- helpers


@st.composite
def specs(
    draw: st.DrawFn,
    activations: tuple[str, ...] = ALL_ACTIVATIONS,
    min_outputs: int = 1,
) -> ArchSpec:
    """MLPs and CNNs of 1-4 hidden layers, odd and non-square images, pools, BN and bias on/off."""
    depth = draw(st.integers(1, 4))
    activation = draw(st.sampled_from(activations))
    n_outputs = draw(st.integers(min_outputs, 5))
    layers: list[ConvLayer | DenseLayer] = []
    if draw(st.booleans()):
        input_shape: tuple[int, ...] = (draw(st.integers(1, 8)),)
        n_conv = 0
    else:
        input_shape = (draw(st.integers(1, 3)), draw(st.integers(3, 11)), draw(st.integers(3, 11)))
        n_conv = draw(st.integers(1, depth))
    for i in range(depth):
        bn, bias = draw(st.booleans()), draw(st.booleans())
        if i < n_conv:
            layers.append(
                ConvLayer(
                    channels=draw(st.integers(1, 12)),
                    kernel=draw(st.sampled_from([1, 3, 5])),
                    pool=draw(st.sampled_from([1, 2])),
                    stride=draw(st.sampled_from([1, 1, 2])),
                    batchnorm=bn,
                    bias=bias,
                )
            )
        else:
            layers.append(DenseLayer(width=draw(st.integers(1, 64)), batchnorm=bn, bias=bias))
    try:
        return ArchSpec(input_shape, n_outputs, tuple(layers), activation=activation)
    except SpecError:  # spatial collapse
        assume(False)
        raise


def teacher_for(spec: ArchSpec, *, seed: int = 0, dtype: torch.dtype = torch.float64) -> Net:
    """A built model in eval mode whose BatchNorms have non-trivial statistics and affine params."""
    model = build_model(spec, seed=seed).to(dtype)
    gen = torch.Generator().manual_seed(seed + 1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            n = m.num_features
            m.running_mean = (torch.randn(n, generator=gen) * 0.5).to(dtype)
            m.running_var = (torch.rand(n, generator=gen) * 1.5 + 0.5).to(dtype)
            with torch.no_grad():
                m.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(n, generator=gen) * 0.1)
    return model.eval()


def inputs(spec: ArchSpec, *, n: int = 16, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.randn((n, *spec.input_shape), generator=torch.Generator().manual_seed(7)).to(dtype)


def assert_same_function(
    student: nn.Module, teacher: nn.Module, x: torch.Tensor, rel: float
) -> None:
    with torch.no_grad():
        expected, got = teacher(x), student(x)
    scale = max(1.0, expected.abs().max().item())
    torch.testing.assert_close(got, expected, rtol=0.0, atol=rel * scale)


def assert_matches_spec(model: Net, spec: ArchSpec, dtype: torch.dtype) -> None:
    """The model has exactly the tensors build_model(spec) would have, on the right dtype."""
    reference = build_model(spec).state_dict()
    state = model.state_dict()
    assert state.keys() == reference.keys()
    for key, value in state.items():
        assert value.shape == reference[key].shape, key
        assert not value.is_meta, key
        if value.is_floating_point():
            assert value.dtype == dtype, key
    assert sum(p.numel() for p in model.parameters()) == spec.param_count()


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_bitwise_equal(model: nn.Module, before: dict[str, torch.Tensor]) -> None:
    after = model.state_dict()
    assert after.keys() == before.keys()
    for key, value in before.items():
        assert torch.equal(after[key], value), key


def copies(student_rows: torch.Tensor, teacher_rows: torch.Tensor) -> list[int]:
    """For each student unit, the teacher unit whose incoming weights it carries."""
    sources = []
    for row in student_rows:
        matches = [u for u, t in enumerate(teacher_rows) if torch.equal(row, t)]
        assert matches, "a new unit is not a copy of any teacher unit"
        sources.append(matches[0])
    return sources


# --------------------------------------------------------------------------- function preserved


@SETTINGS
@given(spec=specs(), data=st.data())
def test_widen_preserves_the_function_in_float64(spec: ArchSpec, data: st.DataObject) -> None:
    teacher = teacher_for(spec)
    before = snapshot(teacher)
    layer = data.draw(st.integers(0, spec.depth - 1))
    width = spec.layers[layer].size + data.draw(st.integers(0, 40))
    student, new_spec = widen(
        teacher, spec, layer=layer, width=width, seed=data.draw(st.integers(0, 9))
    )
    assert new_spec.layers[layer].size == width
    assert_matches_spec(student, new_spec, torch.float64)
    assert_same_function(student, teacher, inputs(spec), 1e-10)
    assert_bitwise_equal(teacher, before)
    assert not student.training


@SETTINGS
@given(spec=specs(activations=IDEMPOTENT), data=st.data())
def test_random_sequences_preserve_the_function_in_float64(
    spec: ArchSpec, data: st.DataObject
) -> None:
    teacher = teacher_for(spec)
    before = snapshot(teacher)
    model, current = teacher, spec
    for _ in range(data.draw(st.integers(1, 4))):
        if data.draw(st.booleans()):
            layer = data.draw(st.integers(0, current.depth - 1))
            width = current.layers[layer].size + data.draw(st.integers(0, 20))
            model, current = widen(
                model, current, layer=layer, width=width, seed=len(current.layers)
            )
        else:
            after = data.draw(st.integers(0, current.depth - 1))
            model, current = deepen(
                model,
                current,
                after=after,
                kernel=data.draw(st.sampled_from([1, 3, 5])),
                batchnorm=data.draw(st.sampled_from([None, True, False])),
            )
        assert_matches_spec(model, current, torch.float64)
    assert_same_function(model, teacher, inputs(spec), 1e-10)
    assert_bitwise_equal(teacher, before)


@settings(max_examples=30, deadline=None)
@given(spec=specs(activations=IDEMPOTENT), data=st.data())
def test_float32_students_match_to_1e_5(spec: ArchSpec, data: st.DataObject) -> None:
    teacher = teacher_for(spec, dtype=torch.float32)
    layer = data.draw(st.integers(0, spec.depth - 1))
    wide, wide_spec = widen(teacher, spec, layer=layer, width=spec.layers[layer].size * 3)
    deep, deep_spec = deepen(wide, wide_spec, after=data.draw(st.integers(0, spec.depth - 1)))
    assert_matches_spec(deep, deep_spec, torch.float32)
    assert_same_function(deep, teacher, inputs(spec, dtype=torch.float32), 1e-5)


def test_batchnorm_statistics_from_real_training_batches_are_copied() -> None:
    spec = ArchSpec(
        (2, 9, 7),
        4,
        (
            ConvLayer(5, batchnorm=True, pool=2),
            ConvLayer(3, batchnorm=True),
            DenseLayer(6, batchnorm=True),
        ),
    )
    teacher = build_model(spec, seed=3).double().train()
    with torch.no_grad():
        for _ in range(5):
            teacher(torch.randn(32, 2, 9, 7, dtype=torch.float64) * 2 + 1)
    teacher.eval()
    x = inputs(spec)
    for layer in range(3):
        student, _ = widen(teacher, spec, layer=layer, width=spec.layers[layer].size * 2 + 1)
        assert_same_function(student, teacher, x, 1e-10)
        src = copies(
            student.blocks[layer].core.weight.detach(), teacher.blocks[layer].core.weight.detach()
        )
        for key in ("running_mean", "running_var", "weight", "bias"):
            got = getattr(student.blocks[layer].norm, key).detach()
            assert torch.equal(got, getattr(teacher.blocks[layer].norm, key).detach()[src])
    for after in range(3):
        student, _ = deepen(teacher, spec, after=after)
        assert_same_function(student, teacher, x, 1e-10)


def test_conv_into_dense_through_a_non_square_flatten() -> None:
    spec = ArchSpec((1, 5, 9), 2, (ConvLayer(3, pool=2), DenseLayer(4)))
    assert spec.flatten_size(1) == 2 * 4
    teacher = teacher_for(spec)
    student, _ = widen(teacher, spec, layer=0, width=7, seed=1)
    assert_same_function(student, teacher, inputs(spec), 1e-10)
    src = copies(student.blocks[0].conv.weight.detach(), teacher.blocks[0].conv.weight.detach())
    count = torch.bincount(torch.tensor(src), minlength=3)
    got = student.blocks[1].linear.weight.detach().view(4, 7, 8)
    ref = teacher.blocks[1].linear.weight.detach().view(4, 3, 8)
    for j, u in enumerate(src):
        torch.testing.assert_close(got[:, j], ref[:, u] / count[u], rtol=0, atol=0)


@pytest.mark.parametrize("layers", [(DenseLayer(2),), (ConvLayer(1), ConvLayer(2))])
def test_widening_more_than_twice_copies_units_several_times(layers: tuple) -> None:
    shape = (3,) if isinstance(layers[0], DenseLayer) else (1, 5, 5)
    spec = ArchSpec(shape, 3, layers)
    teacher = teacher_for(spec)
    n = spec.layers[0].size
    student, _ = widen(teacher, spec, layer=0, width=9, seed=4)
    assert_same_function(student, teacher, inputs(spec), 1e-10)
    src = copies(student.blocks[0].core.weight.detach(), teacher.blocks[0].core.weight.detach())
    count = torch.bincount(torch.tensor(src), minlength=n)
    assert src[:n] == list(range(n)), "originals keep their place"
    assert count.max() >= 5  # pigeonhole: 9 units over at most 2
    consumer = student.head if spec.depth == 1 else student.blocks[1].core
    teacher_consumer = teacher.head if spec.depth == 1 else teacher.blocks[1].core
    for j, u in enumerate(src):
        expected = teacher_consumer.weight.detach()[:, u] / count[u]
        torch.testing.assert_close(consumer.weight.detach()[:, j], expected, rtol=0, atol=0)


def test_same_width_is_a_copy() -> None:
    spec = ArchSpec((4,), 2, (DenseLayer(3),))
    teacher = teacher_for(spec)
    student, new_spec = widen(teacher, spec, layer=0, width=3)
    assert new_spec == spec and student is not teacher
    assert_same_function(student, teacher, inputs(spec), 0.0)
    with torch.no_grad():
        student.head.weight.add_(1.0)
    assert not torch.equal(student.head.weight, teacher.head.weight)


# --------------------------------------------------------------------------- noise, independence


@SETTINGS
@given(spec=specs(min_outputs=2), data=st.data())
def test_noise_touches_only_the_replicas_outgoing_weights(
    spec: ArchSpec, data: st.DataObject
) -> None:
    teacher = teacher_for(spec)
    before = snapshot(teacher)
    layer = data.draw(st.integers(0, spec.depth - 1))
    n = spec.layers[layer].size
    width = n + data.draw(st.integers(1, 20))
    seed = data.draw(st.integers(0, 9))
    exact, _ = widen(teacher, spec, layer=layer, width=width, seed=seed)
    noisy, _ = widen(teacher, spec, layer=layer, width=width, seed=seed, noise=0.05)
    assert_bitwise_equal(teacher, before)

    def outgoing(model: Net) -> torch.Tensor:
        consumer = model.head if layer + 1 == spec.depth else model.blocks[layer + 1].core
        w = consumer.weight.detach()
        return w.unflatten(1, (width, -1)) if w.dim() == 2 else w

    # Everything but the replicas' outgoing weights is the exact transform, bit for bit.
    exact_state, noisy_state = exact.state_dict(), noisy.state_dict()
    if layer + 1 == spec.depth:
        consumer_key = "head.weight"
    else:
        kind = "conv" if isinstance(spec.layers[layer + 1], ConvLayer) else "linear"
        consumer_key = f"blocks.{layer + 1}.{kind}.weight"
    for key, value in exact_state.items():
        if key != consumer_key:
            assert torch.equal(noisy_state[key], value), key
    assert torch.equal(outgoing(noisy)[:, :n], outgoing(exact)[:, :n])
    replicas = outgoing(exact)[:, n:]
    if replicas.numel() > 1 and replicas.std() > 0:
        assert not torch.equal(outgoing(noisy)[:, n:], replicas)

    # The function moves in proportion to the noise (to first order): a tenth of the noise,
    # about a tenth of the change. (A bound relative to the output's norm does not hold: the
    # output can be small by cancellation while the replicas' noise adds up incoherently.)
    tenth, _ = widen(teacher, spec, layer=layer, width=width, seed=seed, noise=0.005)
    x = inputs(spec)
    with torch.no_grad():
        y = teacher(x)
        change, change_tenth = (noisy(x) - y).norm(), (tenth(x) - y).norm()
    if change_tenth > 1e-9 * max(y.norm().item(), 1.0):
        assert 4.0 <= (change / change_tenth).item() <= 16.0


def test_students_share_nothing_and_keep_the_mode_and_the_global_rng() -> None:
    spec = ArchSpec(
        (1, 6, 6), 3, (ConvLayer(4, batchnorm=True, pool=2), DenseLayer(5, batchnorm=True))
    )
    for mode in (True, False):
        teacher = teacher_for(spec).train(mode)
        before = snapshot(teacher)
        rng = torch.get_rng_state()
        for student, _ in (
            widen(teacher, spec, layer=0, width=9, noise=0.1),
            widen(teacher, spec, layer=1, width=9, init="random"),
            deepen(teacher, spec, after=0),
            deepen(teacher, spec, after=1, init="random"),
        ):
            assert all(m.training == mode for m in student.modules())
            ours = {t.data_ptr() for t in teacher.state_dict().values()}
            assert ours.isdisjoint(t.data_ptr() for t in student.state_dict().values())
            with torch.no_grad():
                for p in student.parameters():
                    p.add_(1.0)
            assert_bitwise_equal(teacher, before)
        assert torch.equal(torch.get_rng_state(), rng)


def test_seed_decides_the_copies() -> None:
    spec = ArchSpec((5,), 2, (DenseLayer(8),))
    teacher = teacher_for(spec)
    a, _ = widen(teacher, spec, layer=0, width=20, seed=1)
    b, _ = widen(teacher, spec, layer=0, width=20, seed=1)
    c, _ = widen(teacher, spec, layer=0, width=20, seed=2)
    assert torch.equal(a.blocks[0].linear.weight, b.blocks[0].linear.weight)
    assert not torch.equal(a.blocks[0].linear.weight, c.blocks[0].linear.weight)


# --------------------------------------------------------------------------- training the student


def test_gradients_reach_the_new_units() -> None:
    spec = ArchSpec((1, 6, 5), 3, (ConvLayer(3), DenseLayer(4)), activation="tanh")
    teacher = teacher_for(spec)
    x = inputs(spec)
    for layer, n in ((0, 3), (1, 4)):
        student, _ = widen(teacher, spec, layer=layer, width=n + 5, noise=0.05)
        student.train()
        student(x).pow(2).sum().backward()
        core = student.blocks[layer].core
        consumer = student.head if layer == 1 else student.blocks[1].core
        assert core.weight.grad is not None
        assert (core.weight.grad[n:].flatten(1).abs().sum(1) > 0).all()
        assert (core.bias.grad[n:] != 0).all()
        cols = consumer.weight.grad.unflatten(1, (n + 5, -1))  # (out, unit, position)
        assert (cols[:, n:].abs().sum((0, 2)) > 0).all()

    relu_spec = ArchSpec((6,), 3, (DenseLayer(4),))
    student, _ = deepen(teacher_for(relu_spec), relu_spec, after=0)
    student.train()
    student(inputs(relu_spec)).pow(2).sum().backward()
    assert student.blocks[1].linear.weight.grad.abs().sum() > 0


def test_random_padding_keeps_the_originals_and_draws_default_init() -> None:
    spec = ArchSpec((6,), 3, (DenseLayer(4, batchnorm=True), DenseLayer(5)))
    teacher = teacher_for(spec)
    student, new_spec = widen(teacher, spec, layer=0, width=10, init="random", seed=3)
    assert_matches_spec(student, new_spec, torch.float64)
    w, t = student.blocks[0].linear.weight.detach(), teacher.blocks[0].linear.weight.detach()
    assert torch.equal(w[:4], t)
    assert w[4:].abs().max() <= 1 / 6**0.5 and w[4:].std() > 0
    norm = student.blocks[0].norm
    assert torch.equal(norm.running_mean[4:], torch.zeros(6, dtype=torch.float64))
    assert torch.equal(norm.running_var[4:], torch.ones(6, dtype=torch.float64))
    assert torch.equal(norm.weight.detach()[4:], torch.ones(6, dtype=torch.float64))
    out, t_out = student.blocks[1].linear.weight.detach(), teacher.blocks[1].linear.weight.detach()
    assert torch.equal(out[:, :4], t_out)
    assert out[:, 4:].abs().max() <= 1 / 10**0.5 and out[:, 4:].abs().sum() > 0
    x = inputs(spec)
    with torch.no_grad():
        assert not torch.allclose(student(x), teacher(x))

    deep, deep_spec = deepen(teacher, spec, after=0, init="random", seed=3)
    assert_matches_spec(deep, deep_spec, torch.float64)
    new = deep.blocks[1].linear.weight.detach()
    assert new.abs().max() <= 1 / 4**0.5 and not torch.equal(new, torch.eye(4, dtype=new.dtype))
    again, _ = deepen(teacher, spec, after=0, init="random", seed=3)
    assert torch.equal(again.blocks[1].linear.weight, deep.blocks[1].linear.weight)


def test_deepen_conv_inserts_an_identity_conv_with_identity_batchnorm() -> None:
    spec = ArchSpec((2, 7, 7), 3, (ConvLayer(4, pool=2),), activation="relu6")
    teacher = teacher_for(spec)
    student, new_spec = deepen(teacher, spec, after=0, kernel=5, batchnorm=True)
    assert new_spec.layers[1] == ConvLayer(4, kernel=5, batchnorm=True)
    assert_same_function(student, teacher, inputs(spec), 1e-10)
    norm = student.blocks[1].norm
    assert isinstance(norm, nn.BatchNorm2d) and not norm.training


# --------------------------------------------------------------------------- errors


def test_errors_name_the_bad_value() -> None:
    spec = ArchSpec((4,), 2, (DenseLayer(3), DenseLayer(5)), activation="tanh")
    model = build_model(spec)
    with pytest.raises(SpecError, match=r"width: .*>= 3.*got 2"):
        widen(model, spec, layer=0, width=2)
    for bad in (-1, 2, True, 1.0):
        with pytest.raises(SpecError, match=rf"layer: .*0\.\.1, got {bad!r}"):
            widen(model, spec, layer=bad, width=8)  # type: ignore[arg-type]
        with pytest.raises(SpecError, match=r"after: "):
            deepen(model, spec, after=bad, init="random")  # type: ignore[arg-type]
    with pytest.raises(SpecError, match=r"activation: .*'tanh'"):
        deepen(model, spec, after=0)
    with pytest.raises(SpecError, match=r"init: unknown 'glorot'"):
        widen(model, spec, layer=0, width=4, init="glorot")  # type: ignore[arg-type]
    with pytest.raises(SpecError, match=r"noise: .*-0.1"):
        widen(model, spec, layer=0, width=4, noise=-0.1)
    with pytest.raises(
        SpecError, match=r"model: blocks\[1\] has 5 units but spec layers\[1\] says 6"
    ):
        widen(model, spec.with_layer(1, DenseLayer(6)), layer=0, width=4)
    conv_spec = ArchSpec((1, 5, 5), 2, (ConvLayer(2),))
    with pytest.raises(SpecError, match=r"kernel: .*odd.*got 2"):
        deepen(build_model(conv_spec), conv_spec, after=0, kernel=2)
    empty = ArchSpec((4,), 2)
    with pytest.raises(SpecError, match=r"layers: "):
        deepen(build_model(empty), empty, after=0)

    gated = copy.deepcopy(model)
    gated.blocks[0].gate = nn.Sigmoid()
    with pytest.raises(SpecError, match=r"layers\[0\] carries a Sigmoid gate"):
        widen(gated, spec, layer=0, width=4)
    # Deepening after a gated layer is not exact either (phi(g * phi(x)) != g * phi(x)).
    # Deepening after a gated layer: exact for compress's gates (g >= 0) under relu only.
    from autosize.transforms.gates import Gate

    relu = replace(spec, activation="relu")
    gated = build_model(relu)
    gated.blocks[0].gate = Gate(3)
    with torch.no_grad():
        gated.blocks[0].gate.f.copy_(torch.tensor([0.0, 0.5, 2.0]))
    deeper, _ = deepen(gated, relu, after=0)
    x = torch.randn(16, 4)
    torch.testing.assert_close(deeper.eval()(x), gated.eval()(x))
    relu6 = replace(spec, activation="relu6")
    gated6 = build_model(relu6)
    gated6.blocks[0].gate = Gate(3)
    with pytest.raises(SpecError, match=r"after: layers\[0\] carries a Gate gate.*deepening"):
        deepen(gated6, relu6, after=0)
    gated.blocks[0].gate = nn.Sigmoid()  # not a compress gate: not known to be exact
    with pytest.raises(SpecError, match=r"after: layers\[0\] carries a Sigmoid gate"):
        deepen(gated, relu, after=0)
    deepen(gated, relu, after=0, init="random")  # the baseline's layer: nothing to keep
