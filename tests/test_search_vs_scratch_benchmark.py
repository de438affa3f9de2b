"""benchmarks/search_vs_scratch.py: what its tables pick, the competent Optuna side's study
(Hyperband on epochs, AdamW with weight decay and dropout searched, the running trial cut at
the deadline and counted), the minimal autosize config and old results' labels."""

from __future__ import annotations

import json
import math
import sys
import time
import tomllib
from pathlib import Path

import optuna
import pytest

from autosize.search import load_config

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import search_vs_scratch as bench

REPO = Path(__file__).resolve().parents[1]


def _rec(t: float, val: float, test: float, **extra: object) -> dict:
    return {"t": t, "val": val, "test": test, "architecture": "fc8", "params": 10, **extra}


# ----------------------------------------------------------------------- picking at the budget


def test_best_curve_is_best_by_validation_within_the_budget() -> None:
    records = [
        _rec(5.0, 0.80, 0.70),
        _rec(1.0, 0.70, 0.90),  # sorted by time: comes first
        _rec(8.0, 0.75, 0.99),  # worse validation: not a point, however good on test
        _rec(9.0, math.nan, 1.0),  # non-finite: skipped
        _rec(12.0, 0.95, 0.95),  # after the budget: ignored
        _rec(10.0, 0.85, 0.60),  # at the budget: counts
    ]
    curve = bench.best_curve(records, maximize=True, budget=10.0)
    assert [(r["t"], r["val"]) for r in curve] == [(1.0, 0.70), (5.0, 0.80), (10.0, 0.85)]
    low = bench.best_curve(records, maximize=False, budget=10.0)
    assert [r["t"] for r in low] == [1.0]


def test_summarise_reached_is_when_a_side_first_matches_scratchs_final_test() -> None:
    result = {
        "dataset": "add10",  # regression: lower is better
        "budget": 100.0,
        "scratch_kind": "competent",
        "scratch": {
            "records": [_rec(20.0, 1.10, 1.20), _rec(60.0, 1.05, 1.08), _rec(150.0, 0.9, 0.9)],
            "trials": 9,
            "completed": 3,
            "pruned": 6,
            "tpe_after_startup": 2,
        },
        "autosize": {
            "records": [_rec(10.0, 1.20, 1.30), _rec(30.0, 1.07, 1.07), _rec(50.0, 1.0, 1.01)],
            "trials": 3,
            "completed": 3,
        },
    }
    s = bench.summarise(result)
    assert s["scratch"]["final"]["t"] == 60.0  # the record at 150 s came after the budget
    assert s["scratch"]["reached_scratch_at"] == 60.0
    assert s["autosize"]["final"]["val"] == 1.0
    assert s["autosize"]["reached_scratch_at"] == 30.0  # test 1.07 <= scratch's final 1.08
    assert s["scratch"]["pruned"] == 6 and s["scratch"]["tpe_after_startup"] == 2
    assert "textbook" not in s


# ----------------------------------------------------------------------- the competent side


@pytest.mark.slow
@pytest.mark.usefixtures("one_torch_thread")
def test_competent_side_cuts_the_running_trial_at_the_deadline_and_counts_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # no per-trial cap and no early stop here: the trial running at B is the one cut there
    monkeypatch.setattr(bench, "TRIAL_SHARE", 1.0)
    monkeypatch.setattr(bench, "MIN_PATIENCE", 10**6)
    config = tmp_path / "tiny.toml"
    config.write_text(
        '[study]\nname = "tiny"\ntimeout = 8\n\n'
        '[data]\nname = "add10"\nmax_train = 512\nmax_val = 256\nmax_test = 256\n'
    )
    out = tmp_path / "scratch.json"
    budget = 8.0
    t0 = time.time()
    study = bench.run_competent(config, budget, 0, out, t0)
    assert time.time() - t0 < budget + 5  # the parent's SIGKILL would come at B + 5 s

    data = json.loads(out.read_text())
    assert isinstance(study.pruner, optuna.pruners.HyperbandPruner)
    assert data["completed"] >= 1 and data["records"]
    assert data["max_epochs"] == bench.COMPETENT_EPOCHS["add10"]
    assert data["tpe_startup_trials"] == 10  # TPESampler's default, left as it is
    assert data["trials"] == data["completed"] + data["pruned"]
    last = max(data["records"], key=lambda r: r["t"])
    assert last["cut"] is True
    assert last["t"] <= budget + 0.5
    assert 1 <= last["best_epoch"] <= last["epochs"]
    for r in data["records"]:
        assert 1e-6 <= r["weight_decay"] <= 1e-1
        assert 0.0 <= r["dropout"] <= 0.5
        assert r["batch_size"] in (64, 128, 256, 512)
    trials = [t for t in study.trials if not t.user_attrs.get("unstarted")]
    for t in trials:
        assert {"weight_decay", "dropout", "lr", "batch_size"} <= set(t.params)
        # the validation metric reported every epoch, the epoch as Hyperband's resource
        steps = sorted(t.intermediate_values)
        assert steps == list(range(1, len(steps) + 1))
    assert any(len(t.intermediate_values) >= 2 for t in trials) or data["pruned"] >= 1
    # the cut trial is COMPLETE and its value is its restored network's validation metric
    cut = next(t for t in trials if t.number == last["number"])
    assert cut.state == optuna.trial.TrialState.COMPLETE
    assert cut.value == pytest.approx(last["val"])


# ----------------------------------------------------------------------- --autosize-config zero


def test_zero_config_keeps_only_study_and_data(tmp_path: Path) -> None:
    shipped = tmp_path / "shipped.toml"
    shipped.write_text(
        '[study]\nname = "x"\ntimeout = 600\ncohort = 16\nobjective = "val_rmse"\nseed = 3\n'
        'halving = true\n\n[data]\nname = "add10"\nmax_train = 100\n'
        '"odd key" = "a \\"quoted\\" value"\ncolumns = ["a", "b"]\n\n'
        "[data.options]\nnoise = 1.5\n\n"
        '[seed]\nlayers = [{ type = "dense", width = 16 }]\n\n[train]\nmax_seconds = 8\n\n'
        '[search]\noperations = ["train"]\n\n[pruner]\nname = "none"\n'
    )
    written = bench.write_zero_config(shipped, tmp_path / "zero.toml")
    raw = tomllib.loads(written.read_text())
    assert set(raw) == {"study", "data"}
    assert raw["study"] == {"name": "x", "timeout": 600, "seed": 3, "objective": "val_rmse"}
    original = tomllib.loads(shipped.read_text())
    assert raw["data"] == original["data"]


@pytest.mark.parametrize("dataset", bench.DATASETS)
def test_zero_config_of_every_shipped_study_loads(tmp_path: Path, dataset: str) -> None:
    written = bench.write_zero_config(
        REPO / "studies" / f"{dataset}.toml", tmp_path / f"{dataset}.toml"
    )
    assert set(tomllib.loads(written.read_text())) <= {"study", "data"}
    config = load_config(written)
    assert config.data.name == dataset
    assert "seed" in config.auto  # the seed network is chosen from the data


# ----------------------------------------------------------------------- rendering


def _old_result(seed: int = 0) -> dict:
    """A result written before the competent side: its "scratch" is the textbook study."""
    return {
        "dataset": "census",
        "budget": 100.0,
        "seed": seed,
        "autosize": {"records": [_rec(50.0, 0.86, 0.85 + seed / 100)], "trials": 4, "wall": 99},
        "scratch": {"records": [_rec(80.0, 0.85, 0.84)], "trials": 3, "completed": 1},
    }


def test_old_result_renders_its_scratch_as_textbook(tmp_path: Path) -> None:
    table = bench.render([_old_result()], tmp_path)
    rows = [line for line in table.splitlines() if line.startswith("| census |")]
    assert [row.split(" | ")[2] for row in rows] == ["autosize", "textbook"]
    assert "before the competent side" in table
    assert (tmp_path / "census.png").exists()
    new = {**_old_result(), "scratch_kind": "competent", "stem": "census_s0"}
    new_rows = [r for r in bench.render([new], tmp_path).splitlines() if r.startswith("| census")]
    assert [row.split(" | ")[2] for row in new_rows] == ["autosize", "scratch"]


def test_several_seeds_add_a_table_of_mean_and_range(tmp_path: Path) -> None:
    results = [_old_result(0), _old_result(2)]
    assert bench.render_seeds(results[:1]) == ""
    table = bench.render_seeds(results)
    autosize = next(line for line in table.splitlines() if "| autosize |" in line)
    # test accuracy 85% and 87% over two seeds
    assert (
        autosize
        == "| census | autosize | 2 | 86.00% (85.00% - 87.00%) | 86.00% (86.00% - 86.00%) |"
    )
    assert "| census | textbook | 2 |" in table


def test_from_json_renders_every_result_in_out(tmp_path: Path) -> None:
    for seed in (0, 1):
        (tmp_path / f"census_s{seed}.json").write_text(json.dumps(_old_result(seed)))
    (tmp_path / "unrelated.json").write_text("[1, 2]")
    assert bench.main(["--from-json", "--out", str(tmp_path), "--datasets", "census"]) == 0
    table = tmp_path.with_suffix(".table.md").read_text()
    assert "| census | autosize | 2 |" in table
    assert (tmp_path / "census_s1.png").exists()


def test_headline_table_means_over_seeds_and_says_when_autosize_reached() -> None:
    runs = [{**_old_result(seed), "scratch_kind": "competent"} for seed in (0, 2)]
    table = bench.render_headline(runs)
    row = next(line for line in table.splitlines() if line.startswith("| census"))
    # autosize tests 85% and 87% (val 0.86); the competent side 84% (val 0.85); autosize's
    # one network (t = 50 s) is at or above the competent side's final test at both seeds
    assert (
        row == "| census (accuracy) | 0, 2 | 86.00% (0.8600) | 84.00% (0.8500) | - | 50 s, 50 s |"
    )


def test_publish_writes_between_the_markers_and_nowhere_else(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\nbefore\n{bench.PUBLISH_BEGIN}\nold\n{bench.PUBLISH_END}\nafter\n")
    for seed in (0, 1):
        result = {**_old_result(seed), "scratch_kind": "competent"}
        (tmp_path / f"census_s{seed}.json").write_text(json.dumps(result))
    argv = ["--from-json", "--out", str(tmp_path), "--datasets", "census"]
    assert bench.main([*argv, "--publish", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("# x\nbefore\n") and text.endswith(f"{bench.PUBLISH_END}\nafter\n")
    assert "old" not in text and "| census (accuracy) | 0, 1 |" in text
    assert "generated by benchmarks/search_vs_scratch.py --from-json" in text
    again = readme.read_text()
    assert bench.main([*argv, "--publish", str(readme)]) == 0
    assert readme.read_text() == again  # publishing twice changes nothing
    bare = tmp_path / "bare.md"
    bare.write_text("no markers\n")
    with pytest.raises(SystemExit, match=r"--publish .*bare.md: no <!-- search_vs_scratch:begin"):
        bench.main([*argv, "--publish", str(bare)])
    assert bare.read_text() == "no markers\n"


def test_seeds_option_errors_name_it(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        bench.main(["--seeds", "0,x"])
    assert "--seeds" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench.main(["--seed", "1", "--seeds", "0,1"])
    assert "--seed and --seeds" in capsys.readouterr().err


def test_scratch_from_reuses_the_optuna_sides_it_finds(tmp_path: Path) -> None:
    old = tmp_path / "census.json"
    old.write_text(json.dumps(_old_result()))
    sides = ("autosize", "scratch", "textbook")
    reused, left = bench._earlier_sides(old, 100.0, sides)
    # an old result's "scratch" is the textbook study: the competent side still runs
    assert left == ("autosize", "scratch")
    assert reused["textbook"] == _old_result()["scratch"]
    assert reused["scratch_from"] == {"file": str(old), "started": None, "sides": ["textbook"]}
    with pytest.raises(SystemExit, match="budget"):
        bench._earlier_sides(old, 600.0, sides)
    with pytest.raises(SystemExit, match="autosize-config"):
        bench._earlier_sides(old, 100.0, sides, "zero")
    with pytest.raises(SystemExit, match="no scratch side"):
        bench._earlier_sides(old, 100.0, ("scratch",))
    # autosize alone is compared with every Optuna side the earlier run has
    reused, left = bench._earlier_sides(old, 100.0, ("autosize",))
    assert left == ("autosize",) and reused["textbook"] == _old_result()["scratch"]


def test_competent_trials_stop_at_their_share_of_the_budget_or_when_they_stall(
    tmp_path: Path,
) -> None:
    config = tmp_path / "tiny.toml"
    config.write_text(
        '[study]\nname = "tiny"\ntimeout = 10\n\n'
        '[data]\nname = "add10"\nmax_train = 512\nmax_val = 256\nmax_test = 256\n'
    )
    out = tmp_path / "scratch.json"
    bench.run_competent(config, 10.0, 0, out, time.time())
    data = json.loads(out.read_text())
    assert data["trial_seconds"] == pytest.approx(1.0)  # a tenth of B
    assert data["patience"] == math.ceil(bench.PATIENCE_SHARE * bench.COMPETENT_EPOCHS["add10"])
    # many trials, not the one or two an uncapped first trial per bracket leaves room for
    assert data["completed"] + data["pruned"] >= 4
    stopped = {r["stopped"] for r in data["records"]}
    assert stopped <= {"time", "epochs", "callback"}, stopped


# ----------------------------------------------------------------------- side timing


def test_a_side_is_killed_at_its_deadline_and_its_log_is_stamped(tmp_path: Path) -> None:
    """A side still running at B (+ grace) is SIGKILLed there: what it finishes later does not
    count, and its log shows when each line came."""
    code = "import time; print('started', flush=True); time.sleep(30); print('late')"
    log = tmp_path / "side.log"
    wall, rc = bench._run_until([sys.executable, "-c", code], time.time() + 1.5, log)
    assert rc == -9 and 1.0 <= wall < 10.0
    lines = log.read_text().splitlines()
    assert lines[0].split()[1:] == ["started"] and float(lines[0].split()[0]) < 1.5
    assert "late" not in log.read_text() and lines[-1].endswith("(exit code -9)")
    wall, rc = bench._run_until([sys.executable, "-c", "pass"], time.time() + 30, log)
    assert rc == 0 and wall < 10.0  # a side that ends by itself is not waited for


# ----------------------------------------------------------------------- sizing_paid.py


def test_sizing_controls_train_the_pick_and_the_seed_from_scratch() -> None:
    import sizing_paid

    from autosize.models import ArchSpec, DenseLayer

    spec = ArchSpec(input_shape=(10,), n_outputs=1, layers=(DenseLayer(8),))
    pick = _rec(5.0, 1.2, 1.1, spec=spec.to_dict(), lineage_epochs=2, params=spec.param_count())
    worse = _rec(3.0, 1.5, 1.0, spec=spec.to_dict(), lineage_epochs=1, params=1)
    result = {
        "dataset": "add10",
        "budget": 30.0,
        "seed": 0,
        "autosize_config": "zero",
        "autosize": {"records": [worse, pick], "seed": {"spec": spec.to_dict()}},
    }
    assert sizing_paid.pick_of(result)["val"] == 1.2  # best by validation (RMSE: lower)
    out = sizing_paid.controls(result, device="cpu", max_seconds=1.0)
    assert out["lineage"]["epochs"] == 2  # the pick's lineage epochs, from scratch
    assert out["seed_whole_budget"]["seconds"] < 10  # B, capped here at 1 s
    assert out["pick"]["architecture"] == "fc8" and out["train"]["schedule"] == "cosine"
    assert "| add10 | 0 |" in sizing_paid.render([out])
    without = {**result, "autosize": {"records": [_rec(5.0, 1.2, 1.1)]}}
    with pytest.raises(SystemExit, match="did not record the pick's spec"):
        sizing_paid.pick_of(without)
