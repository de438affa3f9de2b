"""Export: architecture.json + model.safetensors, load_model, `autosize train`, error lines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import torch

import autosize
from autosize.cli import main
from autosize.search import load_config, run_study
from autosize.search.prepare import load_bundle
from autosize.search.store.networks import artifact_store, download_network
from studies import tiny_config

EXPORT_STUDY = {
    "search": 'operations = ["widen", "deepen", "compress"]',
    "pruner": 'name = "none"',
}


@pytest.fixture(scope="module")
def study_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path = tiny_config(
        tmp_path_factory.mktemp("export-study"),
        study="seed = 0",
        filename="tiny.toml",
        **EXPORT_STUDY,
    )
    run_study(load_config(path))
    return path


@pytest.fixture(scope="module")
def pareto_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tiny_config(
        tmp_path_factory.mktemp("pareto-study"),
        name="pareto",
        n_trials=2,
        study='seed = 0\nsecond_objective = "params"',
        filename="pareto.toml",
        **EXPORT_STUDY,
    )
    run_study(load_config(path))
    return path


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("autosize: error: ")
    return err[0]


def test_export_best_round_trip(study_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "best"
    assert main(["export", str(study_config), "--out", str(out)]) == 0
    record = json.loads((out / "architecture.json").read_text())
    config = load_config(study_config)
    study = optuna.load_study(study_name=config.name, storage=config.storage)
    best = min(
        (t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE),
        key=lambda t: t.values[0],
    )
    assert record["trial"] == best.number
    assert record["role"] == best.user_attrs["role"]
    assert record["value"] == pytest.approx(best.values[0])
    assert record["lineage"] == best.user_attrs["lineage"]
    assert record["dataset"]["name"] == "add10" and record["dataset"]["max_test"] == 200
    assert record["preprocessing"]["kind"] == "tabular"
    assert record["training"]["epochs"] == 2
    assert record["params"] == best.user_attrs["params"]

    model = autosize.load_model(out)
    reference, _ = download_network(
        artifact_store(config.artifacts), best.user_attrs["network_artifact"]
    )
    x, _ = load_bundle(config).test
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x))


def test_export_baseline_by_number_and_train_from_scratch(
    study_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "trial0"
    assert main(["export", str(study_config), "--trial", "0", "--out", str(out)]) == 0
    record = json.loads((out / "architecture.json").read_text())
    assert record["trial"] == 0 and record["role"] == "baseline"
    assert record["parent"] is None

    capsys.readouterr()
    arch = out / "architecture.json"
    assert main(["train", str(arch), "--epochs", "1"]) == 0
    printed = capsys.readouterr().out
    assert "from scratch" in printed
    result = json.loads((out / "from-scratch.json").read_text())
    assert result["training"]["epochs_run"] == 1
    assert result["exported_test"] == record["test"]
    assert set(result["test"]) >= {"rmse", "loss"}


def test_export_with_storage_url(study_config: Path, tmp_path: Path) -> None:
    config = load_config(study_config)
    out = tmp_path / "by-url"
    code = main(["export", "--storage", config.storage, "--study-name", "tiny", "--out", str(out)])
    assert code == 0
    autosize.load_model(out / "architecture.json")  # the artifact store came from the study


def test_onnx(study_config: Path, tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    out = tmp_path / "onnx"
    assert main(["export", str(study_config), "--out", str(out), "--onnx"]) == 0
    onnx.checker.check_model(onnx.load(str(out / "model.onnx")))


def test_pareto_front_export(pareto_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "front"
    assert main(["export", str(pareto_config), "--out", str(out)]) == 0
    config = load_config(pareto_config)
    study = optuna.load_study(study_name=config.name, storage=config.storage)
    front = {t.number for t in study.best_trials}
    assert {p.name for p in out.glob("trial-*")} == {f"trial-{n}" for n in front}
    table = (out / "pareto.md").read_text()
    for n in front:
        assert f"| {n} |" in table
        autosize.load_model(out / f"trial-{n}")
    one = tmp_path / "one"
    n = min(front)
    assert main(["export", str(pareto_config), "--trial", str(n), "--out", str(one)]) == 0
    assert json.loads((one / "architecture.json").read_text())["trial"] == n


def test_error_lines(
    study_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = load_config(study_config)
    out = str(tmp_path / "x")
    capsys.readouterr()

    assert main(["export", str(study_config), "--study-name", "nope", "--out", out]) == 2
    assert "no study named 'nope'" in one_error_line(capsys)

    assert main(["export", str(study_config), "--trial", "999", "--out", out]) == 2
    assert "has no trial 999" in one_error_line(capsys)

    empty = tmp_path / "empty-artifacts"
    empty.mkdir()
    assert main(["export", str(study_config), "--artifacts", str(empty), "--out", out]) == 2
    assert "cannot be read from the artifact store" in one_error_line(capsys)

    missing_db = f"sqlite:///{tmp_path / 'missing.db'}"
    assert main(["export", "--storage", missing_db, "--out", out]) == 2
    assert "no study storage" in one_error_line(capsys)
    assert not (tmp_path / "missing.db").exists()

    assert main(["export", "--out", out]) == 2
    assert "CONFIG" in one_error_line(capsys)

    # a study with no finished trial, and a trial that did not complete
    storage = f"sqlite:///{tmp_path / 'other.db'}"
    empty_study = optuna.create_study(storage=storage, study_name="empty")
    assert main(["export", "--storage", storage, "--out", out]) == 2
    assert "no completed trial" in one_error_line(capsys)
    empty_study.tell(empty_study.ask(), state=optuna.trial.TrialState.FAIL)
    assert main(["export", "--storage", storage, "--trial", "0", "--out", out]) == 2
    assert "is fail, not complete" in one_error_line(capsys)
    assert config.name == "tiny"


def test_load_model_refuses_mismatched_files(study_config: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["export", str(study_config), "--trial", "0", "--out", str(a)]) == 0
    assert main(["export", str(study_config), "--trial", "1", "--out", str(b)]) == 0
    (a / "model.safetensors").write_bytes((b / "model.safetensors").read_bytes())
    with pytest.raises(autosize.AutosizeError, match="holds"):
        autosize.load_model(a)


def test_cli_subprocess_error(study_config: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "autosize", "export", str(study_config), "--trial", "999",
         "--out", str(tmp_path / "x")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("autosize: error: ")
    assert "has no trial 999" in proc.stderr


def test_an_export_records_its_precision_and_train_refuses_an_unknown_one(
    study_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "best"
    assert main(["export", str(study_config), "--out", str(out)]) == 0
    arch = out / "architecture.json"
    record = json.loads(arch.read_text())
    assert record["training"]["precision"] == "fp32"
    del record["training"]["precision"]  # an export from before the key existed
    arch.write_text(json.dumps(record))
    assert autosize.load_model(out) is not None
    record["training"]["precision"] = "fp8"
    arch.write_text(json.dumps(record))
    capsys.readouterr()
    assert main(["train", str(arch), "--epochs", "1"]) == 2
    line = one_error_line(capsys)
    assert str(arch) in line and "training.precision 'fp8'" in line and "bf16" in line


def test_an_export_that_fails_leaves_nothing_behind_and_the_retry_works(
    study_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    out = tmp_path / "x"
    monkeypatch.setitem(sys.modules, "onnx", None)  # not installed: `import onnx` fails
    capsys.readouterr()
    assert main(["export", str(study_config), "--out", str(out), "--onnx"]) == 2
    assert "--onnx needs the onnx package" in one_error_line(capsys)
    assert not out.exists() and not list(tmp_path.iterdir())  # no partial folder either
    monkeypatch.delitem(sys.modules, "onnx")
    assert main(["export", str(study_config), "--out", str(out)]) == 0
    assert sorted(f.name for f in out.iterdir()) == ["architecture.json", "model.safetensors"]
    assert [f.name for f in tmp_path.iterdir()] == ["x"]


def test_a_lock_study_left_by_a_killed_run_is_not_a_study_to_export(
    study_config: Path, tmp_path: Path
) -> None:
    config = load_config(study_config)
    optuna.create_study(study_name="tiny.autosize-lock.seed.0", storage=config.storage)
    try:
        out = tmp_path / "e"
        assert main(["export", "--storage", config.storage, "--out", str(out)]) == 0
        assert json.loads((out / "architecture.json").read_text())["study"] == "tiny"
    finally:
        optuna.delete_study(study_name="tiny.autosize-lock.seed.0", storage=config.storage)


def test_load_model_on_a_device_that_is_not_here_is_one_line(
    study_config: Path, tmp_path: Path
) -> None:
    out = tmp_path / "best"
    assert main(["export", str(study_config), "--out", str(out)]) == 0
    assert next(autosize.load_model(out, device="auto").net.parameters()).device.type in (
        "cpu",
        "cuda",
    )
    with pytest.raises(autosize.AutosizeError, match="unknown device 'gpu'"):
        autosize.load_model(out, device="gpu")
    if not torch.cuda.is_available():
        with pytest.raises(autosize.AutosizeError, match="CUDA is not available"):
            autosize.load_model(out, device="cuda")


# --------------------------------------------------------------------------- ensembles


def test_ensemble_export_predicts_the_mean_of_the_best_trials(
    study_config: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ens"
    assert main(["export", str(study_config), "--out", str(out), "--ensemble", "3"]) == 0
    config = load_config(study_config)
    study = optuna.load_study(study_name=config.name, storage=config.storage)
    done = sorted(
        (t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE),
        key=lambda t: (t.values[0], t.number),
    )[:3]  # rmse: the lowest first
    record = json.loads((out / "architecture.json").read_text())
    assert record["trial"] == done[0].number
    assert record["ensemble"] == [f"members/trial-{t.number}" for t in done[1:]]
    for t in done[1:]:
        member = json.loads((out / f"members/trial-{t.number}/architecture.json").read_text())
        assert member["trial"] == t.number and member["ensemble"] == []
    model = autosize.load_model(out)
    x, _ = load_bundle(config).test
    store = artifact_store(config.artifacts)
    nets = [download_network(store, t.user_attrs["network_artifact"])[0] for t in done]
    with torch.no_grad():
        mean = torch.stack([net.eval()(x) for net in nets]).mean(dim=0)
        torch.testing.assert_close(model(x), mean)
    # a member folder is an export of its own
    alone = autosize.load_model(out / f"members/trial-{done[1].number}")
    with torch.no_grad():
        torch.testing.assert_close(alone(x), nets[1](x))


def test_an_ensemble_averages_class_probabilities() -> None:
    from autosize.ensemble import Ensemble

    torch.manual_seed(0)
    nets = [torch.nn.Linear(4, 3) for _ in range(3)]
    x = torch.randn(5, 4)
    ens = Ensemble(nets, classification=True)
    with torch.no_grad():
        mean = torch.stack([torch.softmax(n(x), dim=1) for n in nets]).mean(dim=0)
        torch.testing.assert_close(torch.softmax(ens(x), dim=1), mean)
        torch.testing.assert_close(torch.exp(ens(x)), mean)
    with pytest.raises(ValueError, match="at least one member"):
        Ensemble([], classification=True)


def test_ensemble_onnx_and_bad_combinations(
    study_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", str(study_config), "--out", str(tmp_path / "a"), "--ensemble", "2",
                 "--trial", "3"]) == 2  # fmt: skip
    assert "does not go with trial 3" in one_error_line(capsys)
    assert not (tmp_path / "a").exists()
    onnx = pytest.importorskip("onnx")
    out = tmp_path / "ens-onnx"
    assert main(["export", str(study_config), "--out", str(out), "--ensemble", "2", "--onnx"]) == 0
    graph = onnx.load(str(out / "model.onnx"))
    onnx.checker.check_model(graph)
    assert main(["export", str(study_config), "--out", str(tmp_path / "one"), "--onnx"]) == 0
    single = onnx.load(str(tmp_path / "one" / "model.onnx"))
    # the graph holds both members' weights: what load_model predicts with
    assert len(graph.graph.initializer) > len(single.graph.initializer)
