"""ArchSpec (validation, JSON, derived facts) and build_model, checked against hand-computed values
and against the built modules themselves."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from autosize.errors import SpecError
from autosize.models import ArchSpec, ConvLayer, DenseLayer, PeriodicEmbedding, build_model


@st.composite
def specs(draw: st.DrawFn) -> ArchSpec:
    n_conv = draw(st.integers(0, 3))
    image = n_conv > 0 or draw(st.booleans())
    input_shape = (
        (draw(st.integers(1, 3)), draw(st.integers(1, 12)), draw(st.integers(1, 12)))
        if image
        else (draw(st.integers(1, 20)),)
    )
    layers: list[ConvLayer | DenseLayer] = [
        ConvLayer(
            channels=draw(st.integers(1, 8)),
            kernel=draw(st.sampled_from([1, 2, 3, 5])),
            padding=draw(st.sampled_from([None, 0, 1])),
            pool=draw(st.sampled_from([1, 2, 3])),
            stride=draw(st.sampled_from([1, 2])),
            batchnorm=draw(st.booleans()),
            dropout=draw(st.sampled_from([0.0, 0.25])),
            bias=draw(st.booleans()),
        )
        for _ in range(n_conv)
    ]
    layers += [
        DenseLayer(
            width=draw(st.integers(1, 32)),
            batchnorm=draw(st.booleans()),
            dropout=draw(st.sampled_from([0.0, 0.5])),
            bias=draw(st.booleans()),
        )
        for _ in range(draw(st.integers(0, 3)))
    ]
    regression = draw(st.booleans())
    try:
        return ArchSpec(
            input_shape,
            draw(st.integers(1, 10)),
            tuple(layers),
            activation=draw(st.sampled_from(["relu", "tanh", "gelu", "identity"])),
            target_shift=draw(st.floats(-100, 100)) if regression else 0.0,
            target_scale=draw(st.floats(0.01, 100)) if regression else 1.0,
        )
    except SpecError:  # even kernel with same padding, or spatial collapse
        assume(False)
        raise


@settings(max_examples=50, deadline=None)
@given(spec=specs())
def test_json_round_trip(spec: ArchSpec) -> None:
    assert ArchSpec.from_json(spec.to_json()) == spec
    assert ArchSpec.from_dict(json.loads(spec.to_json(indent=None))) == spec


@settings(max_examples=30, deadline=None)
@given(spec=specs())
def test_param_count_and_shapes_match_the_built_module(spec: ArchSpec) -> None:
    model = build_model(spec, seed=0)
    assert spec.param_count() == sum(p.numel() for p in model.parameters())
    model.eval()
    x = torch.randn(2, *spec.input_shape)
    h = x
    for i, block in enumerate(model.blocks):
        h = block(h.flatten(1) if isinstance(spec.layers[i], DenseLayer) else h)
        assert tuple(h.shape[1:]) == spec.output_shape(i)
    assert model(x).shape == (2, spec.n_outputs)


def test_summary() -> None:
    spec = ArchSpec((1, 28, 28), 10, (ConvLayer(32), ConvLayer(64, pool=2), DenseLayer(128)))
    assert spec.summary() == "conv32-conv64-fc128"
    assert ArchSpec((4,), 3).summary() == "linear"


def test_flops_and_shapes_by_hand() -> None:
    # conv: 1 -> 2 channels, 3x3 kernel, same padding on 5x5: 2*(1*9)*2*25 = 900 flops;
    # pool 2 -> 2x2, flatten 8 -> fc3: 2*8*3 = 48; head 3 -> 4: 2*3*4 = 24.
    spec = ArchSpec((1, 5, 5), 4, (ConvLayer(2, pool=2), DenseLayer(3)))
    assert spec.output_shape(0) == (2, 2, 2)
    assert spec.flatten_size(1) == 4 and spec.in_features(1) == 8 and spec.flatten_size(0) == 25
    assert spec.flops() == 900 + 48 + 24
    # a training step: 3x the forward, less the conv's input gradient (the data's)
    assert spec.train_flops() == 900 * 2 + (48 + 24) * 3
    # with an embedding of 2 of 6 columns (2 x 2 x 4 frequencies x 3 wide x 2 = 96 forward),
    # the embedding is the part the data feeds: fc5 on 2*3 + 4 = 10 inputs, head 5 -> 1
    emb = ArchSpec((6,), 1, (DenseLayer(5),), embedding=PeriodicEmbedding(2, 4, 3))
    assert emb.flops() == 96 + 100 + 10
    assert emb.train_flops() == 96 * 2 + (100 + 10) * 3
    # params: conv 1*9*2 + 2, fc 8*3 + 3, head 3*4 + 4
    assert spec.param_count() == 20 + 27 + 16


def test_build_model_is_reproducible_and_leaves_the_global_rng_alone() -> None:
    spec = ArchSpec((6,), 2, (DenseLayer(5),))
    rng = torch.get_rng_state()
    a, b = build_model(spec, seed=1), build_model(spec, seed=1)
    assert torch.equal(torch.get_rng_state(), rng)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)


def test_regression_head_is_rescaled_to_the_targets_unit() -> None:
    spec = ArchSpec((3,), 1, (DenseLayer(4),), target_shift=20.0, target_scale=0.5)
    model = build_model(spec, seed=0).eval()
    x = torch.randn(5, 3)
    with torch.no_grad():
        expected = model.head(model.features(x)) * 0.5 + 20.0
        torch.testing.assert_close(model(x), expected, rtol=0, atol=0)
    data = spec.to_dict()
    assert data["target_shift"] == 20.0 and data["target_scale"] == 0.5
    assert ArchSpec.from_dict(data) == spec
    assert "target_shift" not in ArchSpec((3,), 1).to_dict()


def _dense(**extra: object) -> dict[str, object]:
    return {
        "input_shape": [1, 6, 6],
        "n_outputs": 2,
        "layers": [{"type": "dense", "width": 4}],
        **extra,
    }


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            _dense(layers=[{"type": "lstm", "width": 4}]),
            r"layers\[0\]\.type: unknown layer type 'lstm'",
        ),
        (
            _dense(layers=[{"type": "dense", "width": 0}]),
            r"layers\[0\]\.width: must be a positive integer, got 0",
        ),
        (_dense(layers=[{"type": "dense", "width": -3}]), r"layers\[0\]\.width: .*-3"),
        (
            _dense(layers=[{"type": "dense", "width": 4, "units": 3}]),
            r"layers\[0\]: unknown key 'units'",
        ),
        (_dense(depth=3), r"unknown key 'depth'"),
        (
            _dense(layers=[{"type": "dense", "width": "4"}]),
            r"layers\[0\]\.width: expected an integer, got '4'",
        ),
        (
            _dense(
                layers=[
                    {"type": "conv", "channels": 4, "pool": 4},
                    {"type": "conv", "channels": 4, "pool": 2},
                ]
            ),
            r"layers\[1\]: spatial size collapses to 0x0",
        ),
        (
            _dense(layers=[{"type": "dense", "width": 4}, {"type": "conv", "channels": 2}]),
            r"layers\[1\]: a conv layer cannot follow a dense layer",
        ),
        (
            _dense(input_shape=[8], layers=[{"type": "conv", "channels": 2}]),
            r"layers\[0\]: a conv layer needs an image",
        ),
        (
            _dense(layers=[{"type": "dense", "width": 4, "batchnorm": 1}]),
            r"layers\[0\]\.batchnorm: expected true or false, got 1",
        ),
        (
            _dense(layers=[{"type": "dense", "width": 4, "dropout": "0.1"}]),
            r"layers\[0\]\.dropout: expected a number, got '0.1'",
        ),
        (
            _dense(layers=[{"type": "conv", "channels": 4, "stride": None}]),
            r"layers\[0\]\.stride: expected an integer, got None",
        ),
        (_dense(activation="swish"), r"activation: unknown 'swish'"),
        (_dense(n_outputs=0), r"n_outputs: .*got 0"),
        (_dense(target_scale=0.0), r"target_scale: .*got 0.0"),
        ({"n_outputs": 2}, r"missing key 'input_shape'"),
    ],
)
def test_invalid_specs_are_refused_naming_the_field(data: dict[str, object], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        ArchSpec.from_dict(data, source="arch.json")
    with pytest.raises(SpecError, match=r"^arch\.json: "):
        ArchSpec.from_dict(data, source="arch.json")


def test_layer_json_takes_optional_fields_as_their_types() -> None:
    """``padding`` may be null (same padding); a dropout given as an integer is a float."""
    data = _dense(
        layers=[
            {"type": "conv", "channels": 4, "padding": None, "pool": 2},
            {"type": "dense", "width": 4, "dropout": 0},
        ]
    )
    spec = ArchSpec.from_dict(data)
    assert spec.layers == (ConvLayer(4, padding=None, pool=2), DenseLayer(4, dropout=0.0))
    assert isinstance(spec.layers[1].dropout, float)
    assert ArchSpec.from_dict(spec.to_dict()) == spec


def test_invalid_json_text_is_a_spec_error() -> None:
    with pytest.raises(SpecError, match=r"arch\.json: not valid JSON"):
        ArchSpec.from_json("{", source="arch.json")


def test_editing_keeps_the_spec_valid_or_raises() -> None:
    spec = ArchSpec((1, 6, 6), 2, (ConvLayer(3, pool=2), DenseLayer(4)))
    assert spec.with_widths([5, 7]).widths == (5, 7)
    assert spec.inserted(1, ConvLayer(3)).summary() == "conv3-conv3-fc4"
    with pytest.raises(SpecError, match=r"layers: expected 2 widths, got 1"):
        spec.with_widths([5])
    with pytest.raises(SpecError, match=r"cannot follow a dense layer"):
        spec.inserted(2, ConvLayer(3))


def test_core_layers_do_not_import_optuna() -> None:
    """models, transforms, train and data never need optuna (only the search layer does)."""
    import subprocess
    import sys

    code = (
        "import sys, autosize, autosize.data, autosize.models, autosize.transforms, autosize.train\n"
        "assert 'optuna' not in sys.modules, 'optuna was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_a_regression_output_is_shifted_in_float32_under_bf16_autocast() -> None:
    # bf16 holds 1e4 only to a spacing of 64: the shift must happen after the upcast.
    spec = ArchSpec(
        input_shape=(3,), n_outputs=1, layers=(DenseLayer(4),), target_shift=1e4, target_scale=2.0
    )
    net = build_model(spec, seed=0)
    x = torch.randn(16, 3)
    with torch.no_grad():
        plain = net(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = net(x)
    assert mixed.dtype == torch.float32
    assert (mixed - plain).abs().max() < 0.1  # the head's bf16 rounding, not the shift's
