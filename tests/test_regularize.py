"""The regularize step: a new dropout rate on a trained network, same function in eval mode."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import torch

from autosize.errors import ConfigError, SpecError
from autosize.models import ArchSpec, ConvLayer, DenseLayer, build_model
from autosize.search import load_config, run_study
from autosize.search.config import SearchSpace
from autosize.search.policy.operations import Infeasible, plan_and_grow
from autosize.transforms import set_dropout, widen
from studies import tiny_config

pytestmark = [
    pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning"),
    pytest.mark.usefixtures("one_torch_thread"),
]
optuna.logging.set_verbosity(optuna.logging.WARNING)


def _mlp() -> ArchSpec:
    return ArchSpec((8,), 3, layers=(DenseLayer(16), DenseLayer(12, dropout=0.1)))


def test_set_dropout_keeps_the_function_and_the_weights_and_changes_training() -> None:
    spec = _mlp()
    model = build_model(spec, seed=0).eval()
    x = torch.randn(64, 8)
    new, new_spec = set_dropout(model, spec, p=0.4)
    new.eval()
    assert [lay.dropout for lay in new_spec.layers] == [0.4, 0.4]
    assert torch.equal(model(x), new(x))
    for a, b in zip(model.state_dict().values(), new.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    # The original is untouched; in training mode the new one drops units.
    assert model.blocks[1].drop.p == 0.1
    new.train()
    assert not torch.equal(new(x), model(x))
    # The rebuilt network from the new spec has the same structure (export, retrain).
    rebuilt = build_model(new_spec)
    rebuilt.load_state_dict(new.state_dict())
    rebuilt.eval()
    assert torch.equal(rebuilt(x), model(x))


def test_set_dropout_zero_removes_dropout_and_conv_layers_keep_theirs() -> None:
    spec = ArchSpec(
        (1, 8, 8),
        2,
        layers=(ConvLayer(4, pool=2, dropout=0.2), DenseLayer(6, dropout=0.3)),
    )
    model = build_model(spec, seed=0)
    new, new_spec = set_dropout(model, spec, p=0.0)
    assert [lay.dropout for lay in new_spec.layers] == [0.2, 0.0]
    assert isinstance(new.blocks[1].drop, torch.nn.Identity)
    assert isinstance(new.blocks[0].drop, torch.nn.Dropout)


@pytest.mark.parametrize("p", [1.0, -0.1, float("nan"), True, "0.2"])
def test_set_dropout_refuses_bad_rates(p: object) -> None:
    spec = _mlp()
    with pytest.raises(SpecError, match="dropout"):
        set_dropout(build_model(spec), spec, p=p)  # type: ignore[arg-type]


def test_copies_made_by_widen_drift_apart_only_with_dropout() -> None:
    # Net2WiderNet's copies get identical gradients without dropout; dropout breaks that.
    spec = ArchSpec((8,), 3, layers=(DenseLayer(4),))
    model = build_model(spec, seed=0)
    wide, wide_spec = widen(model, spec, layer=0, width=8, seed=0)
    x, y = torch.randn(256, 8), torch.randint(0, 3, (256,))

    def spread(net: torch.nn.Module) -> float:
        opt = torch.optim.SGD(net.parameters(), lr=0.5)
        net.train()
        torch.manual_seed(0)
        for _ in range(20):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
        w = net.blocks[0].linear.weight.detach()
        # Distinct rows: copies that stayed identical collapse to one.
        return float(torch.unique(w.round(decimals=5), dim=0).shape[0])

    assert spread(wide) < 8
    dropped, _ = set_dropout(wide, wide_spec, p=0.3)
    assert spread(dropped) == 8


def test_the_regularize_operation_draws_a_rate_in_the_configured_range() -> None:
    spec = _mlp()
    model = build_model(spec, seed=0)
    space = SearchSpace(operations=("regularize",), dropout=(0.2, 0.3))
    trial = optuna.trial.FixedTrial({"op0": "regularize", "op0/regularize/dropout": 0.25})
    new, new_spec, plan = plan_and_grow(trial, model, spec, space, seed=0)
    new.eval()
    x = torch.randn(5, 8)
    assert torch.equal(new(x), model.eval()(x))
    assert plan.kind == "regularize" and plan.compress is None
    assert plan.describe() == "regularize(dropout 0.10->0.25)"
    assert [lay.dropout for lay in new_spec.layers] == [0.25, 0.25]
    assert new_spec.widths == spec.widths


def test_regularize_needs_a_dense_layer() -> None:
    spec = ArchSpec((1, 8, 8), 2, layers=(ConvLayer(4, pool=2),))
    trial = optuna.trial.FixedTrial({"op0": "regularize", "op0/regularize/dropout": 0.25})
    with pytest.raises(Infeasible, match="no dense layer"):
        plan_and_grow(
            trial, build_model(spec), spec, SearchSpace(operations=("regularize",)), seed=0
        )


def test_a_dropout_range_reaching_one_is_refused_with_the_file_and_key(tmp_path: Path) -> None:
    path = tiny_config(tmp_path, search='operations = ["regularize"]\ndropout = [0.1, 1.0]')
    with pytest.raises(ConfigError, match=r"study\.toml: .*search\.dropout"):
        load_config(path)


def test_a_study_with_regularize_steps_records_the_rate_in_the_architecture(
    tmp_path: Path,
) -> None:
    path = tiny_config(
        tmp_path,
        n_trials=4,
        search='operations = ["regularize"]\nparents = "best"\ndropout = [0.2, 0.4]',
        baselines="include_seed = false",
    )
    config = load_config(path)
    run_study(config)
    study = optuna.load_study(study_name="tiny", storage=config.storage)
    done = [t for t in study.get_trials() if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 4
    for t in done:
        rate = t.params["op0/regularize/dropout"]
        assert 0.2 <= rate <= 0.4
        assert t.user_attrs["op_kind"] == "regularize"
        assert all(lay["dropout"] == pytest.approx(rate) for lay in t.user_attrs["spec"]["layers"])
