"""Study configs: TOML -> frozen dataclasses; every bad input is one ConfigError naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from autosize.errors import ConfigError
from autosize.models import DenseLayer
from autosize.search.config import load_config
from autosize.search.store.artifacts import FolderLocation

MINIMAL = """\
[study]
n_trials = 3
objective = "val_rmse"

[data]
name = "add10"

[seed]
layers = [{ type = "dense", width = 4 }]
epochs = 2

[train]
epochs = 2
"""


def write(tmp_path: Path, text: str, name: str = "study.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_default_operations_leave_out_deepen_for_a_non_idempotent_activation(
    tmp_path: Path,
) -> None:
    relu = load_config(write(tmp_path, MINIMAL))
    assert "deepen" in relu.search.operations
    silu = load_config(
        write(tmp_path, MINIMAL.replace("[seed]\n", '[seed]\nactivation = "silu"\n'))
    )
    assert silu.search.operations == tuple(o for o in relu.search.operations if o != "deepen")


def test_minimal_config_and_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    cfg = load_config(path)
    assert cfg.name == "study"  # the file's stem
    assert cfg.storage == f"sqlite:///{tmp_path / '.state' / 'study.db'}"
    assert cfg.artifacts == FolderLocation(tmp_path / ".state" / "study-artifacts")
    assert (cfg.n_trials, cfg.timeout, cfg.seed) == (3, None, 0)
    assert cfg.direction == "minimize" and cfg.directions == ["minimize"]
    assert cfg.seed_net.layers == (DenseLayer(width=4),)
    assert cfg.seed_net.activation == "relu"
    assert cfg.seed_net.train.epochs == 2 and cfg.train.epochs == 2
    assert cfg.search.operations == ("widen", "deepen", "compress")
    assert cfg.baselines.reference == "nearest" and cfg.baselines.include_seed
    assert (cfg.sampler.name, dict(cfg.sampler.kwargs)) == ("tpe", {})
    assert (cfg.pruner.name, dict(cfg.pruner.kwargs)) == ("baseline", {})


def test_full_config(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        MINIMAL.replace('objective = "val_rmse"', 'objective = "val_loss"\nname = "named"')
        + """
[search]
operations = ["widen"]
max_ops = 2
parents = "best"
lam = [1e-4, 1e-1]
lr = [1e-4, 1e-2]

[baselines]
scales = [2, 4.0]
architectures = [[{ type = "dense", width = 3 }, { type = "dense", width = 3 }]]
reference = "best"

[sampler]
name = "random"

[pruner]
name = "median"
n_startup_trials = 2
""",
    )
    cfg = load_config(path)
    assert cfg.name == "named" and cfg.objective == "val_loss"
    assert cfg.search.operations == ("widen",) and cfg.search.max_ops == 2
    assert cfg.search.lam == (1e-4, 1e-1) and cfg.search.lr == (1e-4, 1e-2)
    assert cfg.baselines.scales == (2.0, 4.0)
    assert cfg.baselines.architectures == ((DenseLayer(width=3), DenseLayer(width=3)),)
    assert cfg.baselines.reference == "best"
    assert cfg.sampler.name == "random"
    assert (cfg.pruner.name, dict(cfg.pruner.kwargs)) == ("median", {"n_startup_trials": 2})


def test_relative_paths_are_next_to_the_config(tmp_path: Path) -> None:
    text = MINIMAL.replace("[study]", '[study]\nartifacts = "art"')
    cfg = load_config(write(tmp_path, text))
    assert cfg.artifacts == FolderLocation(tmp_path / "art")


def test_overrides_replace_study_keys(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    cfg = load_config(
        path, overrides={"n_trials": 7, "storage": "sqlite:///x.db", "name": "other", "seed": None}
    )
    assert (cfg.n_trials, cfg.storage, cfg.name, cfg.seed) == (7, "sqlite:///x.db", "other", 0)


def test_second_objective_params(tmp_path: Path) -> None:
    text = MINIMAL.replace("[study]", '[study]\nsecond_objective = "params"')
    cfg = load_config(write(tmp_path, text))
    assert cfg.minimize_params and cfg.directions == ["minimize", "minimize"]


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        # unknown keys, top-level and nested
        ("[study]", "colour = 1\n[study]", "'colour'"),
        ("[train]\n", "[train]\nepochz = 3\n", "'train.epochz'"),
        ("[study]\n", "[study]\nn_trails = 3\n", "'study.n_trails'"),
        ("[data]\n", "[data]\nmax_rows = 3\n", "'data.max_rows'"),
        ("[seed]\n", "[seed]\nlayer = 3\n", "'seed.layer'"),
        # wrong types
        ("n_trials = 3", 'n_trials = "3"', "study.n_trials"),
        ("n_trials = 3", "n_trials = true", "study.n_trials"),
        ("n_trials = 3", "n_trials = 0", "study.n_trials"),
        ("[study]\n", "[study]\nseed = -1\n", "study.seed"),  # numpy's generators refuse it
        ("[train]\nepochs = 2", "[train]\nepochs = 2.5", "train.epochs"),
        ("[train]\n", "[train]\nlr = -1.0\n", "train.lr"),
        ("[train]\n", "[train]\nrestore_best = 1\n", "train.restore_best"),
        ('name = "add10"', "name = 10", "data.name"),
        ("[study]\n", "[study]\nartifacts = 3\n", "study.artifacts"),
        # the artifact store: a folder or s3://BUCKET/PREFIX
        ("[study]\n", '[study]\nartifacts = "gs://bucket/x"\n', "[study] artifacts: 'gs://"),
        ("[study]\n", '[study]\nartifacts = "s3://"\n', "[study] artifacts: 's3://'"),
        ("[study]\n", '[study]\nartifacts = "s3:///runs"\n', "[study] artifacts: 's3:///runs'"),
        ("[study]", "study = 3\n[x]", "study"),
        # choices
        ('objective = "val_rmse"', 'objective = "rmse"', "study.objective"),
        ("[train]\n", '[train]\noptimizer = "lion"\n', "train.optimizer"),
        ("[seed]\n", '[seed]\nactivation = "swish"\n', "seed.activation"),
        ("[train]\n", '[sampler]\nname = "bogus"\n[train]\n', "sampler.name"),
        ("[train]\n", '[pruner]\nname = "bogus"\n[train]\n', "pruner.name"),
        ("[train]\n", '[search]\noperations = ["grow"]\n[train]\n', "search.operations"),
        ("[train]\n", '[search]\noperations = ["widen", "widen"]\n[train]\n', "search.operations"),
        # deepen keeps the function only for an idempotent activation (relu, not silu)
        (
            "epochs = 2\n\n[train]\n",
            'epochs = 2\nactivation = "tanh"\n[search]\noperations = ["widen", "deepen"]\n[train]\n',
            "no 'deepen' with [seed] activation 'tanh'",
        ),
        # impossible bounds
        ("[train]\n", "[search]\nlam = [0.1, 0.01]\n[train]\n", "search.lam"),
        ("[train]\n", "[search]\nlam = [0.0, 0.01]\n[train]\n", "search.lam"),
        ("[train]\n", "[search]\nlam = [0.1]\n[train]\n", "search.lam"),
        ("[train]\n", "[search]\nmax_width = 2\n[train]\n", "search.max_width"),
        ("[train]\n", "[search]\nmax_depth = 0\n[train]\n", "search.max_depth"),
        ("[train]\n", "[search]\nmax_widen_factor = 1.0\n[train]\n", "search.max_widen_factor"),
        ("[train]\n", "[search]\ncompress_start_factor = [0.5, 2]\n[train]\n", "compress_start"),
        ("[train]\n", "[baselines]\nscales = [0]\n[train]\n", "baselines.scales"),
        ("[train]\n", "[baselines]\nreference = 'far'\n[train]\n", "baselines.reference"),
        # budgets
        ("[train]\nepochs = 2\n", "[train]\n", "train.epochs"),
        ("n_trials = 3\n", "", "study.n_trials"),
        # layers
        ("width = 4 }", "width = 4, foo = 1 }", "seed.layers[0]"),
        ('type = "dense"', 'type = "lstm"', "seed.layers[0].type"),
        ("width = 4 }", 'width = "4" }', "seed.layers[0].width"),
        ('layers = [{ type = "dense", width = 4 }]', "layers = []", "seed.layers"),
        (
            "[train]\n",
            "[baselines]\narchitectures = [[{ type = 'dense', width = 4, x = 1 }]]\n[train]\n",
            "baselines.architectures[0][0]",
        ),
    ],
)
def test_bad_config_names_the_file_and_the_key(
    tmp_path: Path, old: str, new: str, key: str
) -> None:
    assert old in MINIMAL
    path = write(tmp_path, MINIMAL.replace(old, new, 1))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    assert key in message, message
    assert "\n" not in message


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="no such config file") as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_invalid_toml(tmp_path: Path) -> None:
    path = write(tmp_path, "[study\nn_trials = 3\n")
    with pytest.raises(ConfigError, match="not valid TOML") as info:
        load_config(path)
    assert str(info.value).startswith(str(path))


def test_quickstart_config_loads() -> None:
    path = Path(__file__).resolve().parents[1] / "studies" / "quickstart.toml"
    cfg = load_config(path)
    assert cfg.name == "quickstart" and cfg.pruner.name == "baseline"
    assert dict(cfg.pruner.kwargs) == {"margin": 0.0, "patience": 2, "min_steps": 2}


def test_precision_is_one_of_three_and_only_a_non_default_is_recorded(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, MINIMAL))
    assert cfg.train.precision == "fp32" and (cfg.train.amp, cfg.train.allow_tf32) == (False, False)
    assert "precision" not in cfg.train.record()
    bf16 = load_config(
        write(tmp_path, MINIMAL.replace("[train]\n", '[train]\nprecision = "bf16"\n'))
    )
    assert (bf16.train.amp, bf16.train.allow_tf32) == (True, False)
    assert bf16.train.record()["precision"] == "bf16" and bf16.seed_net.train.precision == "fp32"
    path = write(tmp_path, MINIMAL.replace("[train]\n", '[train]\nprecision = "fp16"\n'))
    with pytest.raises(
        ConfigError,
        match=r"study\.toml: train\.precision: expected one of 'fp32', 'tf32', 'bf16', got 'fp16'",
    ):
        load_config(path)
