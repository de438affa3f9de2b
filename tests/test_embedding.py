"""Periodic embeddings of numeric columns ([seed] embedding): the spec, the module, model
surgery behind it, the config key, and a study that exports and retrains with one."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import optuna
import pytest
import torch

import autosize
from autosize.cli import main
from autosize.data.bundle import DataBundle, Preprocessing
from autosize.errors import ConfigError, SpecError
from autosize.models import ArchSpec, DenseLayer, PeriodicEmbedding, build_model
from autosize.population import can_stack, fit_population
from autosize.search import load_config, run_study
from autosize.search.prepare import load_bundle, prepare
from autosize.transforms import deepen, widen
from autosize.transforms.compress import add_gates, fold_gates, remove_dead_units
from studies import STUDY_MARKS, tiny_config

pytestmark = STUDY_MARKS

EMB = PeriodicEmbedding(features=3, frequencies=4, width=5, sigma=2.0)


def spec(*widths: int, emb: PeriodicEmbedding | None = EMB, inputs: int = 7) -> ArchSpec:
    return ArchSpec(
        input_shape=(inputs,),
        n_outputs=2,
        layers=tuple(DenseLayer(w) for w in widths),
        embedding=emb,
    )


def test_the_first_layer_takes_the_embedded_columns_and_the_rest() -> None:
    s = spec(8, 6)
    assert s.in_features(0) == 3 * 5 + (7 - 3)
    assert s.summary() == "plr3x5-fc8-fc6"
    model = build_model(s, seed=0)
    assert model.blocks[0].linear.in_features == s.in_features(0)
    assert s.param_count() == sum(p.numel() for p in model.parameters())
    assert ArchSpec.from_json(s.to_json()) == s
    assert json.loads(s.to_json())["embedding"] == {
        "type": "periodic",
        "features": 3,
        "frequencies": 4,
        "width": 5,
        "sigma": 2.0,
    }


def test_the_embedding_sees_only_its_columns_and_passes_the_others_through() -> None:
    model = build_model(spec(8), seed=0).double()
    assert model.embed is not None
    x = torch.randn(4, 7, dtype=torch.float64)
    out = model.embed(x)
    assert out.shape == (4, 3 * 5 + 4)
    torch.testing.assert_close(out[:, 15:], x[:, 3:], rtol=0, atol=0)
    # Column j's values depend on column j only (one small linear map per column).
    moved = x.clone()
    moved[:, 1] += 0.3
    changed = (model.embed(moved) != out).any(dim=0)
    assert changed[5:10].any() and not changed[:5].any() and not changed[10:].any()
    # relu(W [cos, sin] + b), by hand, for column 0.
    angle = 2 * torch.pi * model.embed.frequency[0] * x[:, :1]
    waves = torch.cat([torch.cos(angle), torch.sin(angle)], dim=1)
    expected = torch.relu(waves @ model.embed.weight[0] + model.embed.bias[0])
    torch.testing.assert_close(out[:, :5], expected)


def test_seeded_builds_repeat_and_a_net_without_one_keeps_its_old_state_keys() -> None:
    a, b = build_model(spec(8), seed=3), build_model(spec(8), seed=3)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb)
    assert {"embed.frequency", "embed.weight", "embed.bias"} <= set(a.state_dict())
    plain = build_model(spec(8, emb=None), seed=3)
    assert plain.embed is None
    assert not any(k.startswith("embed") for k in plain.state_dict())


@pytest.mark.parametrize(
    ("emb", "inputs", "message"),
    [
        (
            PeriodicEmbedding(features=8),
            7,
            "embedding.features: 8 columns to embed, but the input has 7",
        ),
        (PeriodicEmbedding(features=0), 7, "embedding.features: must be a positive integer"),
        (PeriodicEmbedding(features=2, width=0), 7, "embedding.width: must be a positive integer"),
        (PeriodicEmbedding(features=2, sigma=0.0), 7, "embedding.sigma: must be a positive number"),
        (PeriodicEmbedding(features=2, sigma=float("nan")), 7, "embedding.sigma"),
    ],
)
def test_bad_embeddings_name_the_field(emb: PeriodicEmbedding, inputs: int, message: str) -> None:
    with pytest.raises(SpecError, match=message.replace(".", r"\.").replace("(", r"\(")):
        spec(8, emb=emb, inputs=inputs)


def test_an_image_input_cannot_have_one_and_json_errors_name_the_key() -> None:
    with pytest.raises(SpecError, match="embedding: needs a table of features"):
        ArchSpec(input_shape=(1, 4, 4), n_outputs=2, embedding=PeriodicEmbedding(features=1))
    data = spec(8).to_dict()
    bad = copy.deepcopy(data)
    bad["embedding"]["bins"] = 4  # type: ignore[index]
    with pytest.raises(SpecError, match=r"arch\.json: embedding: unknown key 'bins'"):
        ArchSpec.from_dict(bad, source="arch.json")
    bad = copy.deepcopy(data)
    bad["embedding"]["width"] = "5"  # type: ignore[index]
    with pytest.raises(SpecError, match=r"embedding\.width: expected an integer, got '5'"):
        ArchSpec.from_dict(bad, source="arch.json")
    bad = copy.deepcopy(data)
    bad["embedding"]["type"] = "quantile"  # type: ignore[index]
    with pytest.raises(SpecError, match="unknown embedding 'quantile'"):
        ArchSpec.from_dict(bad, source="arch.json")


def test_net2net_keeps_the_function_and_compress_keeps_the_embedding() -> None:
    torch.manual_seed(0)
    s = spec(6, 5)
    teacher = build_model(s, seed=1).double().eval()
    x = torch.randn(32, 7, dtype=torch.float64)
    with torch.no_grad():
        y = teacher(x)
    wide, wide_spec = widen(teacher, s, layer=0, width=11, seed=0)
    deep, deep_spec = deepen(wide, wide_spec, after=1)
    assert deep_spec.summary() == "plr3x5-fc11-fc5-fc5"
    with torch.no_grad():
        torch.testing.assert_close(deep(x), y, rtol=0, atol=1e-10)
    assert deep.embed is not None and deep.embed is not teacher.embed
    assert torch.equal(deep.embed.weight, teacher.embed.weight)

    # Cutting units of the first hidden layer (their gates at 0) slices that layer and the
    # next one; the embedding in front stays as it was, and so does the function.
    gated = add_gates(deep, deep_spec)
    with torch.no_grad():
        gated.blocks[0].gate.f[3:] = -0.3
        reference = gated(x)
    result = remove_dead_units(gated, deep_spec)
    fold_gates(gated, result.spec)
    assert result.spec.summary() == "plr3x5-fc3-fc5-fc5"
    assert result.spec.embedding == EMB
    with torch.no_grad():
        torch.testing.assert_close(gated(x), reference, rtol=0, atol=1e-10)
    fresh = build_model(result.spec).double().eval()
    fresh.load_state_dict(gated.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), reference, rtol=0, atol=1e-10)


def test_population_training_stacks_an_embedding_and_refuses_a_wrong_input() -> None:
    """Embedded nets stack (tests/test_population.py trains them against fit); one whose
    embedding does not fit the table's columns is refused in one line."""
    x = torch.randn(40, 7)
    y = torch.randint(0, 2, (40,))
    bundle = DataBundle(
        name="t",
        task="classification",
        train=(x, y),
        val=(x, y),
        test=(x, y),
        input_shape=(7,),
        n_outputs=2,
        preprocessing=Preprocessing(kind="tabular"),
        numeric_features=3,
    )
    model = build_model(spec(8), seed=0)
    assert can_stack(model, bundle)
    assert can_stack(build_model(spec(8, emb=None), seed=0), bundle)
    fit_population([model], bundle, epochs=1, lr=1e-3, batch_size=8, seed=0)
    wide = build_model(spec(8, inputs=9), seed=0)  # built for a 9-column table
    assert not can_stack(wide, bundle)
    with pytest.raises(ConfigError, match="model 0 takes 21 inputs, not 19"):
        fit_population([wide], bundle, epochs=1, lr=1e-3, batch_size=8, seed=0)


def with_embedding(path: Path, line: str) -> Path:
    path.write_text(path.read_text().replace("[seed]\n", f"[seed]\nembedding = {line}\n", 1))
    return path


def test_the_config_key_embeds_the_datas_numeric_columns(tmp_path: Path) -> None:
    path = with_embedding(tiny_config(tmp_path), '{ type = "periodic", width = 3, sigma = 2.5 }')
    prepared = prepare(load_config(path))
    assert prepared.bundle.numeric_features == 10  # add10: every column is numeric
    assert prepared.seed_spec.embedding == PeriodicEmbedding(
        features=10, frequencies=16, width=3, sigma=2.5
    )
    # Baselines (the seed's and its x2 scale here) are of the seed's family too.
    assert len(prepared.baseline_specs) == 2
    assert all(b.embedding == prepared.seed_spec.embedding for b in prepared.baseline_specs)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('"periodic"', "seed.embedding: expected a table"),
        ('{ type = "bins" }', "seed.embedding.type"),
        ("{ width = 0 }", "seed.embedding.width: expected an integer >= 1, got 0"),
        ("{ sigma = -1.0 }", "seed.embedding.sigma: expected a number > 0, got -1.0"),
        ("{ bins = 4 }", "unknown key 'seed.embedding.bins'"),
        ("{ features = 11 }", "seed.embedding.features: 11 columns to embed, but the input has 10"),
    ],
)
def test_bad_embedding_keys_name_the_file_and_the_key(
    tmp_path: Path, line: str, message: str
) -> None:
    path = with_embedding(tiny_config(tmp_path), line)
    with pytest.raises(ConfigError) as info:
        prepare(load_config(path))
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)


def test_data_without_numeric_columns_is_refused_in_one_line(tmp_path: Path) -> None:
    path = with_embedding(tiny_config(tmp_path), '{ type = "periodic" }')
    config = load_config(path)
    with pytest.raises(ConfigError, match=r"seed\.embedding: the data has no numeric columns"):
        config.arch((DenseLayer(4),), (10,), 1, numeric_features=0)


def test_a_study_with_an_embedding_grows_exports_and_predicts(tmp_path: Path) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path = with_embedding(
        tiny_config(
            tmp_path,
            n_trials=6,
            study="seed = 0",
            search='operations = ["widen", "deepen", "compress", "train"]\nparents = "best"',
            pruner='name = "none"',
        ),
        '{ type = "periodic", frequencies = 4, width = 4 }',
    )
    run_study(load_config(path))
    config = load_config(path)
    study = optuna.load_study(study_name=config.name, storage=config.storage)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) >= 6
    assert all(t.user_attrs["architecture"].startswith("plr10x4-") for t in done)

    out = tmp_path / "best"
    assert main(["export", str(path), "--out", str(out)]) == 0
    record = json.loads((out / "architecture.json").read_text())
    assert record["spec"]["embedding"]["features"] == 10
    model = autosize.load_model(out)
    assert model.spec.embedding is not None and model.net.embed is not None
    x, _ = load_bundle(config).test
    with torch.no_grad():
        assert torch.isfinite(model(x)).all()
    assert main(["train", str(out / "architecture.json"), "--epochs", "1"]) == 0
