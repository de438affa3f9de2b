"""run_study on a tiny add10 study: artifacts, resume, multi-objective, failures, pruning."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState

import autosize.search.trials.training as training_mod
from autosize.errors import ConfigError
from autosize.models import ArchSpec
from autosize.search import load_config, prepare, run_study
from autosize.search.store.networks import artifact_store, download_network
from autosize.train import evaluate
from studies import STUDY_MARKS, tiny_config

pytestmark = STUDY_MARKS
optuna.logging.set_verbosity(optuna.logging.WARNING)


def by_role(study: optuna.Study, role: str) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.get_trials() if t.user_attrs.get("role") == role]


def counted(study: optuna.Study) -> int:
    return sum(
        1 for t in by_role(study, "warmstart") if t.user_attrs.get("fail_reason") != "interrupted"
    )


class TrainSpy:
    """Wraps the search layer's one training path (seed, baselines, trials) and records who trained."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.real = training_mod.train_step
        self.calls: list[str] = []
        monkeypatch.setattr(training_mod, "train_step", self)

    @staticmethod
    def role(callbacks: object) -> str:
        if not callbacks:
            return "seed"
        return "warmstart" if callbacks[0].prune else "baseline"  # type: ignore[index]

    def __call__(self, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        self.calls.append(self.role(kwargs.get("callbacks")))
        return self.real(*args, **kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- one finished study


@dataclass(frozen=True)
class Finished:
    config: Path
    study: optuna.Study


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Finished:
    tmp = tmp_path_factory.mktemp("search")
    config = tiny_config(tmp, search='operations = ["widen", "deepen", "compress"]')
    return Finished(config, run_study(load_config(config)))


def test_artifacts_round_trip_to_the_recorded_test_metric(finished: Finished) -> None:
    p = prepare(load_config(finished.config))
    store = artifact_store(p.config.artifacts)
    done = finished.study.get_trials(states=(TrialState.COMPLETE,))
    assert {t.user_attrs["role"] for t in done} == {"baseline", "warmstart"}
    for t in done:
        model, spec = download_network(store, t.user_attrs["network_artifact"])
        assert spec == ArchSpec.from_dict(t.user_attrs["spec"])
        test = evaluate(model, p.bundle, "test")
        assert test["rmse"] == pytest.approx(t.user_attrs["test_metric"], rel=1e-5)
        val = evaluate(model, p.bundle, "val")
        assert val["rmse"] == pytest.approx(t.value, rel=1e-5)


def test_seed_artifact_round_trips(finished: Finished) -> None:
    p = prepare(load_config(finished.config))
    seed = finished.study.user_attrs["seed"]
    model, spec = download_network(artifact_store(p.config.artifacts), seed["artifact_id"])
    assert spec == p.seed_spec
    assert evaluate(model, p.bundle, "test")["rmse"] == pytest.approx(seed["test"]["rmse"])


def test_study_records_how_it_was_run(finished: Finished) -> None:
    info = finished.study.user_attrs["autosize"]
    assert info["dataset"] == "add10" and info["task"] == "regression"
    assert info["objective"] == "val_rmse" and info["direction"] == "minimize"
    assert info["data"]["max_train"] == 600
    assert finished.study.metric_names == ["val_rmse"]


def test_resume_reuses_the_seed_and_the_baselines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    config = tiny_config(tmp_path, study="seed = 1")
    spy = TrainSpy(monkeypatch)
    first = run_study(load_config(config, overrides={"n_trials": 2}))
    assert spy.calls == ["seed", "baseline", "baseline", "warmstart", "warmstart"]
    seed_attr = first.user_attrs["seed"]
    baselines = [t.number for t in by_role(first, "baseline")]

    spy.calls.clear()
    with caplog.at_level(logging.INFO, logger="autosize.search"):
        second = run_study(load_config(config, overrides={"n_trials": 4}))
    assert spy.calls == ["warmstart", "warmstart"]  # no seed, no baselines
    assert second.user_attrs["seed"] == seed_attr
    assert f"reusing the seed network (key {seed_attr['key']}" in caplog.text
    assert [t.number for t in by_role(second, "baseline")] == baselines
    assert counted(second) == 4

    spy.calls.clear()
    run_study(load_config(config, overrides={"n_trials": 4}))  # already there
    assert spy.calls == []


def test_multi_objective_study(tmp_path: Path) -> None:
    config = tiny_config(
        tmp_path,
        study='second_objective = "params"',
        search='parents = "best"\nmax_ops = 2\noperations = ["widen", "deepen"]',
    )
    study = run_study(load_config(config))
    assert len(study.directions) == 2 and study.metric_names == ["val_rmse", "params"]
    done = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(done) == 2 + 3
    for t in done:
        assert len(t.values) == 2
        assert t.values[1] == t.user_attrs["params"]
    for t in by_role(study, "warmstart"):
        parent = t.user_attrs["parent"]
        lineage = t.user_attrs["lineage"]
        assert parent == "seed" or isinstance(parent, int)
        if isinstance(parent, int):
            assert lineage[:-1] == study.trials[parent].user_attrs["lineage"]
        # Multi-objective trials cannot report(), yet each is compared with a baseline
        # (from the baselines' recorded curves): it has a baseline and a gain.
        assert not t.intermediate_values
        assert t.user_attrs["baseline_trial"] in {b.number for b in by_role(study, "baseline")}
        assert isinstance(t.user_attrs["gain"], float)


def test_a_diverged_trial_fails_and_the_study_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = training_mod.train_step
    warm = []

    def diverging(*args, **kwargs):  # type: ignore[no-untyped-def]
        model, spec, history, seconds, cut = real(*args, **kwargs)
        if TrainSpy.role(kwargs.get("callbacks")) == "warmstart":
            warm.append(1)
            if len(warm) == 1:
                history.stopped = "diverged"
                history.stop_reason = "non-finite loss at epoch 1"
        return model, spec, history, seconds, cut

    monkeypatch.setattr(training_mod, "train_step", diverging)
    study = run_study(load_config(tiny_config(tmp_path)))
    trials = by_role(study, "warmstart")
    assert [t.state for t in trials] == [TrialState.FAIL] + [TrialState.COMPLETE] * 2
    assert trials[0].user_attrs["fail_reason"] == "diverged: non-finite loss at epoch 1"
    assert "network_artifact" not in trials[0].user_attrs


def test_a_real_divergence(tmp_path: Path) -> None:
    """An absurd trial learning rate: every baseline and trial diverges, each ends FAIL."""
    config = tiny_config(tmp_path, train='optimizer = "sgd"\nlr = 1e6')
    study = run_study(load_config(config))
    trials = study.get_trials()
    assert len(trials) == 2 + 3
    for t in trials:
        assert t.state == TrialState.FAIL
        assert t.user_attrs["fail_reason"].startswith("diverged"), t.user_attrs["fail_reason"]


def test_out_of_memory_in_a_baseline_fails_it_and_the_study_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Warm-started trials already turned OOM into FAIL; baselines ended the study."""
    role = "baseline"
    real = training_mod.train_step
    seen = []

    def oom_once(*args, **kwargs):  # type: ignore[no-untyped-def]
        if TrainSpy.role(kwargs.get("callbacks")) == role and not seen:
            seen.append(1)
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(*args, **kwargs)

    monkeypatch.setattr(training_mod, "train_step", oom_once)
    study = run_study(load_config(tiny_config(tmp_path)))
    failed = study.get_trials(states=(TrialState.FAIL,))
    assert len(failed) == 1
    assert failed[0].user_attrs["role"] == role
    assert failed[0].user_attrs["fail_reason"] == "out of memory"
    assert counted(study) == 3


def test_pruned_trials_count_towards_the_target(tmp_path: Path) -> None:
    # every RMSE is above 0, so each warm-started trial is pruned at its first report
    config = tiny_config(tmp_path, pruner='name = "threshold"\nupper = 0.0')
    study = run_study(load_config(config))
    assert [t.state for t in by_role(study, "baseline")] == [TrialState.COMPLETE] * 2
    warm = by_role(study, "warmstart")
    assert [t.state for t in warm] == [TrialState.PRUNED] * 3
    assert all(t.user_attrs["pruned_at"] == 1 and t.user_attrs["epochs"] == 1 for t in warm)


def test_workers_below_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--workers"):
        run_study(load_config(tiny_config(tmp_path)), workers=0)


def test_a_study_with_other_directions_is_refused(finished: Finished) -> None:
    cfg = load_config(finished.config, overrides={"second_objective": "params"})
    with pytest.raises(ConfigError, match="other directions"):
        run_study(cfg)


def test_resume_with_a_different_budget_is_refused(tmp_path: Path) -> None:
    """Trials trained for another budget (or from another seed) would not be comparable."""
    run_study(load_config(tiny_config(tmp_path), overrides={"n_trials": 1}))
    changed = tiny_config(tmp_path, train="lr = 0.01")
    with pytest.raises(ConfigError, match=r"\[train\] differs .* set a new study.name"):
        run_study(load_config(changed, overrides={"n_trials": 2}))
    other_seed = tiny_config(tmp_path, study="seed = 7")
    with pytest.raises(ConfigError, match=r"\[seed\].* differs"):
        run_study(load_config(other_seed, overrides={"n_trials": 2}))


def test_resume_with_the_artifacts_elsewhere_names_both_folders(tmp_path: Path) -> None:
    config = tiny_config(tmp_path)
    run_study(load_config(config, overrides={"n_trials": 1}))
    text = config.read_text()
    config.write_text(text.replace(str(tmp_path / "art"), str(tmp_path / "moved")))
    with pytest.raises(ConfigError, match=r"study.artifacts is .*moved.*was started with .*art'"):
        run_study(load_config(config, overrides={"n_trials": 2}))
    # Its files copied there: the study resumes from them.
    shutil.copytree(tmp_path / "art", tmp_path / "moved", dirs_exist_ok=True)
    study = run_study(load_config(config, overrides={"n_trials": 2}))
    assert len(by_role(study, "warmstart")) == 2


def test_precision_reaches_every_fit_is_recorded_and_a_change_is_refused_on_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """[train] precision turns into fit's amp / allow_tf32 (ignored on a CPU); the default
    is not stored, so studies from before the key existed resume with the same seed."""
    seen: list[tuple[bool, bool]] = []
    real_fit = training_mod.fit

    def spy(*args: object, **kw: object) -> object:
        seen.append((bool(kw.get("amp")), bool(kw.get("allow_tf32"))))
        return real_fit(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(training_mod, "fit", spy)
    plain = run_study(load_config(tiny_config(tmp_path / "fp32"), overrides={"n_trials": 1}))
    assert "precision" not in plain.user_attrs["autosize"]["trial_budget"]
    assert seen and set(seen) == {(False, False)}
    seen.clear()
    config = tiny_config(tmp_path / "bf16", train='precision = "bf16"')
    study = run_study(load_config(config, overrides={"n_trials": 1}))
    assert study.user_attrs["autosize"]["trial_budget"]["precision"] == "bf16"
    # The seed keeps fp32 ([seed] has its own budget); the baseline and the step use bf16.
    assert seen[0] == (False, False) and set(seen[1:]) == {(True, False)}
    warm = by_role(study, "warmstart")
    assert warm[0].state == TrialState.COMPLETE and warm[0].user_attrs["device"] == "cpu"
    # On a CPU both flags are ignored: the same trials as fp32, value for value.
    assert [t.value for t in study.trials] == [t.value for t in plain.trials]
    changed = tiny_config(tmp_path / "bf16", train='precision = "tf32"')
    with pytest.raises(ConfigError, match=r"\[train\] differs .*precision"):
        run_study(load_config(changed, overrides={"n_trials": 2}))


def test_an_operation_that_cannot_apply_prunes_at_once(tmp_path: Path) -> None:
    """Deepen at max_depth would only retrain the parent: the trial is pruned untrained."""
    cfg = tiny_config(tmp_path, search='operations = ["deepen"]\nmax_depth = 1')
    study = run_study(load_config(cfg))
    warm = by_role(study, "warmstart")
    assert len(warm) == 3
    for t in warm:
        assert t.state == TrialState.PRUNED
        assert "max_depth" in t.user_attrs["pruned_reason"]
        assert not t.intermediate_values  # nothing was trained


def test_lineage_epochs_count_the_training_behind_a_network(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, search='parents = "best"\ntop_k = 1')
    study = run_study(load_config(cfg, overrides={"n_trials": 4}))
    seed_epochs = study.user_attrs["seed"]["epochs"]
    for t in by_role(study, "baseline"):
        assert t.user_attrs["lineage_epochs"] == t.user_attrs["epochs"]
    done = {t.number: t for t in by_role(study, "warmstart") if t.state == TrialState.COMPLETE}
    for t in done.values():
        parent = t.user_attrs["parent"]
        inherited = seed_epochs if parent == "seed" else done[parent].user_attrs["lineage_epochs"]
        assert t.user_attrs["lineage_epochs"] == inherited + t.user_attrs["epochs"]


def test_a_step_that_repeats_a_tried_one_prunes_at_once(tmp_path: Path) -> None:
    """Training the seed on with the same settings twice is one step run twice: the second
    is refused before training, whatever the sampler."""
    cfg = tiny_config(tmp_path, n_trials=3, search='operations = ["train"]', pruner='name = "none"')
    study = run_study(load_config(cfg))
    warm = by_role(study, "warmstart")
    assert [t.state for t in warm] == [TrialState.COMPLETE, TrialState.PRUNED, TrialState.PRUNED]
    first = warm[0].number
    for t in warm[1:]:
        assert t.user_attrs["pruned_reason"].startswith(f"repeats trial {first} (train on")
        assert t.user_attrs["parent"] == "seed" and not t.intermediate_values


def test_the_population_policy_proposes_only_new_steps(tmp_path: Path) -> None:
    """From a one-layer seed at max_width, the new steps are training it on and deepening
    it after its layer: the population sampler proposes those two first, never the widen
    that cannot be built; once both are spent the objective prunes what is drawn."""
    cfg = tiny_config(
        tmp_path,
        n_trials=4,
        search='operations = ["train", "deepen", "widen"]\nmax_width = 4\nmax_depth = 3',
        pruner='name = "none"',
        extra='[sampler]\nname = "population"',
    )
    study = run_study(load_config(cfg))
    warm = by_role(study, "warmstart")
    assert [t.state for t in warm[:2]] == [TrialState.COMPLETE] * 2
    assert {t.user_attrs["operation"] for t in warm[:2]} == {"train on", "deepen(after L0)"}
    for t in warm[2:]:
        assert t.state == TrialState.PRUNED and not t.intermediate_values
