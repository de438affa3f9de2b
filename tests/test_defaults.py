"""What a config with only [study] and [data] gets: choices that follow from the data,
the seed's family and the wall budget (autosize.search.config.defaults), never a dataset's name."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from autosize.data import DataBundle
from autosize.data.bundle import Preprocessing
from autosize.models import ConvLayer, DenseLayer
from autosize.search.config import StudyConfig, config_from_dict
from autosize.search.config.defaults import (
    CONV_STEPS_PER_BUDGET,
    RANKING_ROWS,
    SEED_SHARE,
    STEPS_PER_BUDGET,
    WEIGHT_DECAY,
    choose_defaults,
)


def bundle(
    n: int,
    shape: tuple[int, ...],
    *,
    task: str = "classification",
    numeric: int = 0,
    val: int = 8,
) -> DataBundle:
    def split(rows: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.zeros(rows) if task == "regression" else torch.zeros(rows, dtype=torch.int64)
        return torch.zeros((rows, *shape)), y

    return DataBundle(
        name="synthetic",
        task=task,  # type: ignore[arg-type]
        train=split(n),
        val=split(val),
        test=split(8),
        input_shape=shape,
        n_outputs=1 if task == "regression" else 3,
        preprocessing=Preprocessing(kind="none", steps={}),
        numeric_features=numeric,
    )


def minimal(tmp_path: Path, **study: object) -> StudyConfig:
    raw = {"study": {"storage": "memory:x", **study}, "data": {"name": "add10"}}
    return config_from_dict(raw, tmp_path / "s.toml")


def test_a_minimal_config_leaves_every_search_table_to_the_data(tmp_path: Path) -> None:
    config = minimal(tmp_path, timeout=600)
    assert config.auto == {
        "objective",
        "seed",
        "train",
        "search",
        "baselines",
        "sampler",
        "pruner",
    }
    chosen, lines = choose_defaults(config, bundle(5000, (10,), task="regression", numeric=10))
    assert chosen.auto == frozenset()
    # the population search of the shipped studies, not TPE over parent ranks
    assert (chosen.sampler.name, chosen.pruner.name) == ("population", "none")
    assert chosen.search.parents == "best" and chosen.search.operations[0] == "train"
    assert set(chosen.search.operations) == {"train", "widen", "deepen", "compress"}
    assert chosen.search.min_widen_factor > 1.0  # growth that jumps
    assert chosen.baselines.scales == () and chosen.baselines.include_seed
    assert chosen.objective == "val_rmse"
    # every choice is printed, one line per table
    for table in ("[seed]", "[train]", "[search]", "[baselines]", "[sampler]", "[pruner]"):
        assert sum(line.startswith(table) for line in lines) == 1, table


def test_a_table_gets_a_dense_seed_and_wall_clock_steps(tmp_path: Path) -> None:
    config = minimal(tmp_path, timeout=600)
    small, _ = choose_defaults(config, bundle(300, (5,), numeric=5))
    wide, _ = choose_defaults(config, bundle(50_000, (300,), numeric=300))
    assert small.seed_net.layers == (DenseLayer(32), DenseLayer(32))  # at least 32 units
    assert wide.seed_net.layers == (DenseLayer(256), DenseLayer(256))  # at most 256
    # small data: small batches, so an epoch still has several steps
    assert small.seed_net.train.batch_size == 32 and wide.seed_net.train.batch_size == 128
    for c in (small, wide):
        assert c.train.max_seconds == pytest.approx(600 / STEPS_PER_BUDGET)
        assert c.train.epochs is None and c.train.schedule == "cosine"
        assert c.seed_net.train.max_seconds == pytest.approx(SEED_SHARE * 600)
        assert c.train.optimizer == "adamw" and c.train.weight_decay == WEIGHT_DECAY
        assert c.search.max_widen_factor == 3.0 and c.search.max_width >= 512
        assert c.seed_net.embedding is None  # all columns numeric: nothing to mix with
        assert c.search.max_depth == 4


def test_a_mixed_table_embeds_its_numeric_columns(tmp_path: Path) -> None:
    config = minimal(tmp_path, timeout=600)
    mixed, lines = choose_defaults(config, bundle(20_000, (40,), numeric=6))
    assert mixed.seed_net.embedding is not None and mixed.seed_net.embedding.features is None
    assert any("embedding = periodic (6 numeric columns)" in line for line in lines)
    one_hot, _ = choose_defaults(config, bundle(20_000, (85,), numeric=0))
    assert one_hot.seed_net.embedding is None


def test_images_get_a_conv_seed_and_longer_steps(tmp_path: Path) -> None:
    config = minimal(tmp_path, timeout=600)
    c, _ = choose_defaults(config, bundle(50_000, (1, 28, 28)))
    assert c.seed_net.layers == (
        ConvLayer(16, kernel=3, pool=2),
        ConvLayer(32, kernel=3, pool=2),
        DenseLayer(128),
    )
    assert c.train.max_seconds == pytest.approx(600 / CONV_STEPS_PER_BUDGET)
    assert c.train.max_seconds > 600 / STEPS_PER_BUDGET
    assert c.search.max_widen_factor == 2.0 and c.search.max_width == 256
    assert c.seed_net.train.lr == 1e-3 and c.search.lr == pytest.approx((1e-4, 3e-3))
    tiny, _ = choose_defaults(config, bundle(1000, (3, 8, 8)))
    assert [lay.type for lay in tiny.seed_net.layers] == ["conv", "dense"]


def test_without_a_wall_budget_steps_count_epochs(tmp_path: Path) -> None:
    c, _ = choose_defaults(minimal(tmp_path, n_trials=5), bundle(5000, (10,), numeric=10))
    assert c.train.max_seconds is None and c.seed_net.train.max_seconds is None
    assert c.train.epochs is not None and c.train.epochs >= 2
    assert c.seed_net.train.epochs is not None and 2 <= c.seed_net.train.epochs <= 100


def test_tables_the_config_gives_are_kept(tmp_path: Path) -> None:
    raw: dict[str, object] = {
        "study": {"storage": "memory:x", "timeout": 600},
        "data": {"name": "add10"},
        "sampler": {"name": "tpe"},
        "pruner": {"name": "median"},
    }
    config = config_from_dict(raw, tmp_path / "s.toml")
    c, lines = choose_defaults(config, bundle(5000, (10,), numeric=10))
    assert (c.sampler.name, c.pruner.name) == ("tpe", "median")
    assert not any(line.startswith(("[sampler]", "[pruner]")) for line in lines)
    assert c.search.parents == "best"  # [search] is still chosen: [seed] was left out
    # a config that gives its seed keeps the first search's defaults (TPE, baseline pruner)
    raw = {
        "study": {"storage": "memory:x", "timeout": 600},
        "data": {"name": "add10"},
        "seed": {"layers": [{"type": "dense", "width": 5}], "epochs": 1},
    }
    given = config_from_dict(raw, tmp_path / "s.toml")
    assert given.auto == {"objective", "train"}
    g, _ = choose_defaults(given, bundle(5000, (10,), numeric=10))
    assert (g.sampler.name, g.pruner.name) == ("tpe", "baseline")
    assert g.seed_net.layers == (DenseLayer(5),)
    assert g.train.max_seconds == pytest.approx(600 / STEPS_PER_BUDGET)


def test_classification_on_few_validation_rows_is_judged_by_log_loss(tmp_path: Path) -> None:
    config = minimal(tmp_path, timeout=60)
    few, lines = choose_defaults(config, bundle(300, (5,), numeric=5, val=77))
    assert few.objective == "val_loss"
    assert any("77 validation rows" in line and "steps of 1.3%" in line for line in lines)
    many, _ = choose_defaults(config, bundle(300, (5,), numeric=5, val=RANKING_ROWS))
    assert many.objective == "val_accuracy"
    given = minimal(tmp_path, timeout=60, objective="val_accuracy")
    assert choose_defaults(given, bundle(300, (5,), val=77))[0].objective == "val_accuracy"
