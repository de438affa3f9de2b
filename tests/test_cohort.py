"""[study] cohort = K: warm-started trials trained together, each as it would be alone."""

from __future__ import annotations

import itertools
import time
from dataclasses import replace
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState

from autosize.errors import ConfigError
from autosize.models import ArchSpec, DenseLayer
from autosize.search import load_config, prepare, run_study
from autosize.search.deadline import Deadline
from autosize.search.store.networks import artifact_store, download_network
from autosize.search.trials.cohort import Halving
from autosize.search.trials.cohort_size import auto_size, next_size
from autosize.train import evaluate
from studies import STUDY_MARKS, tiny_config

pytestmark = STUDY_MARKS
optuna.logging.set_verbosity(optuna.logging.WARNING)


# Operations a cohort stacks (compress and regularize train alone, so a draw of them would
# leave a trial out of its cohort: which trials draw what is the sampler's business).
# A searched lr makes every step new: without one, a second "train on" of the same parent
# (or a second deepen at the same place) repeats a step and is pruned before training.
STACKABLE = 'operations = ["widen", "deepen", "train"]\nlr = [1e-3, 1e-2]'


def warm(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.get_trials() if t.user_attrs.get("role") == "warmstart"]


def test_a_cohort_runs_the_trials_one_at_a_time_would(tmp_path: Path) -> None:
    search = 'operations = ["widen", "deepen", "train"]\nlr = [1e-3, 1e-2]'
    alone = run_study(load_config(tiny_config(tmp_path / "alone", n_trials=4, search=search)))
    config = tiny_config(tmp_path / "cohort", n_trials=4, search=search, study="cohort = 4")
    together = run_study(load_config(config))
    a, b = warm(alone), warm(together)
    assert [t.number for t in a] == [t.number for t in b]
    numbers = [t.number for t in b]
    for x, y in zip(a, b, strict=True):
        assert x.params == y.params  # same parents, operations and learning rates
        assert (x.state, y.state) == (TrialState.COMPLETE, TrialState.COMPLETE)
        assert y.value == pytest.approx(x.value, rel=1e-4)
        assert y.user_attrs["curve"] == pytest.approx(x.user_attrs["curve"], rel=1e-4)
        assert y.user_attrs["cohort"] == numbers and "cohort" not in x.user_attrs
        assert y.user_attrs["epochs"] == x.user_attrs["epochs"] == 2
    # The stored network is the one the trial recorded (its validation RMSE, its spec).
    p = prepare(load_config(config))
    model, spec = download_network(
        artifact_store(p.config.artifacts), b[0].user_attrs["network_artifact"], owner="t"
    )
    assert spec.to_dict() == b[0].user_attrs["spec"]
    assert evaluate(model, p.bundle, "val", device="cpu")["rmse"] == pytest.approx(b[0].value)


def test_compress_trains_alone_and_the_rest_together(tmp_path: Path) -> None:
    search = 'operations = ["compress", "widen"]\nlam = [1e-4, 1e-3]'
    config = tiny_config(tmp_path, n_trials=6, search=search, study="cohort = 6")
    trials = warm(run_study(load_config(config)))
    assert len(trials) == 6 and all(t.state == TrialState.COMPLETE for t in trials)
    kinds = {t.number: t.user_attrs["op_kind"] for t in trials}
    together = [t.number for t in trials if kinds[t.number] != "compress"]
    assert "compress" in kinds.values() and together
    for t in trials:
        assert t.user_attrs.get("cohort", []) == ([] if kinds[t.number] == "compress" else together)


def halved_as_expected(histories: list, epochs: int, slices: list[tuple[int, int]]) -> None:
    """Each ``(epoch, keep)``: at the end of 0-based ``epoch`` every member but the ``keep``
    best by validation after the epoch before stops (lower RMSE is better; ties by index)."""
    left = [i for i, h in enumerate(histories) if len(h) > slices[0][0]]
    for epoch, keep in slices:
        left.sort(key=lambda i: (histories[i].epochs[epoch - 1].val_metric, i))
        for i in left[keep:]:
            assert len(histories[i]) == epoch + 1, (i, epoch)
            assert histories[i].stopped == "callback"
            assert "halved after slice" in histories[i].stop_reason
        left = left[:keep]
    assert [len(histories[i]) for i in left] == [epochs]
    assert histories[left[0]].stopped == "epochs"


@pytest.mark.parametrize("pruned", [False, True])
def test_halving_stops_the_worse_half_at_each_slice_and_the_best_trains_the_budget_out(
    pruned: bool,
) -> None:
    from test_population import LRS, SEEDS, StopAfter, nets
    from test_train import linear_regression

    from autosize.population import fit_population

    bundle = linear_regression()
    models = nets(bundle)  # 7 members: 3 halvings (to 4, 2, 1), 4 slices of 2 epochs
    halving = Halving(7, epochs=8, max_seconds=None)
    calls = [[m] for m in halving.members()]
    if pruned:  # a member the pruner stops counts toward the first slice's halving
        calls[5].insert(0, StopAfter(1))
    histories = fit_population(
        models, bundle, epochs=8, seed=SEEDS, lr=LRS, callbacks=calls, device="cpu"
    )
    assert halving.marks == [0.25, 0.5, 0.75]
    if pruned:
        assert len(histories[5]) == 1 and histories[5].stop_reason == "pruned at 1"
    halved_as_expected(histories, 8, [(2, 4), (4, 2), (6, 1)])
    lengths = sorted(len(h) for h in histories)
    assert lengths == ([1, 3, 3, 5, 5, 7, 8] if pruned else [3, 3, 3, 5, 5, 7, 8])
    want = [1, 1, 2, 2, 3] if pruned else [1, 1, 1, 2, 2, 3]
    assert sorted(halving.halved.values()) == want


def test_a_halving_cohort_study(tmp_path: Path) -> None:
    config = tiny_config(
        tmp_path,
        n_trials=4,
        search=STACKABLE,
        study="cohort = 4\nhalving = true",
        train_epochs=6,
        pruner='name = "none"',
    )
    assert load_config(config).halving
    trials = warm(run_study(load_config(config)))
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4  # finished, networks kept
    assert all(t.user_attrs["network_artifact"] for t in trials)
    # 4 members, 2 halvings: the worse two stop after 3 epochs, the next after 5.
    got = sorted((t.user_attrs["epochs"], t.user_attrs.get("halved")) for t in trials)
    assert got == [(3, 1), (3, 1), (5, 2), (6, None)]
    last_two = [t for t in trials if t.user_attrs["epochs"] >= 5]
    best = min(last_two, key=lambda t: t.user_attrs["curve"][3])  # what the second slice judged
    assert best.user_attrs["epochs"] == 6 and best.user_attrs["stopped"] == "epochs"


@pytest.mark.parametrize("value", ['"yes"', "1"])
def test_halving_must_be_true_or_false(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match=r"study.halving.*true or false"):
        load_config(tiny_config(tmp_path, study=f"halving = {value}"))
    assert not load_config(tiny_config(tmp_path)).halving  # the default
    on = load_config(tiny_config(tmp_path), overrides={"halving": True})  # --halving
    assert on.halving


def test_pruning_in_a_cohort_and_resume(tmp_path: Path) -> None:
    config = tiny_config(
        tmp_path, n_trials=3, study="cohort = 2", pruner='name = "threshold"\nupper = 0.0'
    )
    study = run_study(load_config(config))
    trials = warm(study)
    assert [t.state for t in trials] == [TrialState.PRUNED] * 3  # a cohort of 2, then of 1
    assert all(t.user_attrs["pruned_at"] == 1 and t.user_attrs["epochs"] == 1 for t in trials)
    study = run_study(load_config(config, overrides={"n_trials": 5}))
    assert len(warm(study)) == 5


@pytest.mark.parametrize("value", ["0", '"big"', "true", "2.5"])
def test_cohort_must_be_positive_or_auto(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match=r'study.cohort.*an integer >= 1 or "auto"'):
        load_config(tiny_config(tmp_path, study=f"cohort = {value}"))
    assert load_config(tiny_config(tmp_path, study='cohort = "auto"')).cohort == "auto"
    assert load_config(tiny_config(tmp_path, study="cohort = 1")).cohort == 1
    assert load_config(tiny_config(tmp_path)).cohort == "auto"  # the default


def test_auto_keeps_a_cpu_cohort_at_16_times_200k_parameters() -> None:
    def params(*widths: int) -> int:
        layers = tuple(DenseLayer(w) for w in widths)
        return ArchSpec(input_shape=(10,), n_outputs=1, layers=layers).param_count()

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert auto_size(params(16, 16), cpu) == 16  # Add10's seed
    assert auto_size(params(256, 256, 256), cpu) == 16  # Airfoil's seed (134k parameters)
    assert auto_size(params(), cpu) == 16  # a linear model stacks too
    assert auto_size(200_000, cpu) == 16
    assert auto_size(200_001, cpu) == 15
    assert auto_size(params(512, 512), cpu) == 11  # 268k
    assert auto_size(400_000, cpu) == 8
    assert auto_size(1_600_000, cpu) == 2
    assert auto_size(1_600_001, cpu) == 1  # Airfoil's 2.2M-parameter nets: one at a time
    assert auto_size(50_000_000, cpu) == 1
    assert auto_size(50_000_000, cuda) == 32


def test_auto_leaves_the_sampler_cohorts_to_learn_from() -> None:
    small = 100
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert auto_size(small, cpu, n_trials=12) == 1  # the quickstart: one at a time
    assert auto_size(small, cpu, n_trials=31) == 1  # fewer than 16 cohorts' worth
    assert auto_size(small, cpu, n_trials=64) == 4
    assert auto_size(small, cpu, n_trials=1000) == 16
    assert auto_size(small, cuda, n_trials=320) == 20
    assert auto_size(small, cuda, n_trials=None) == 32  # a wall budget alone


def test_auto_sizes_each_cohort_from_the_best_network_so_far(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import autosize.search.trials.cohort as cohort_mod
    import autosize.search.trials.cohort_size as cohort_size_mod

    # At most 1,600 parameters in a cohort: the tiny seed (10-4-1, 49 parameters) 4 at a
    # time (n_trials caps it there), a best network of 465 parameters 3, of 737 2, 1 from 801.
    monkeypatch.setattr(cohort_size_mod, "AUTO_CPU_PARAMS", 1600)
    search = STACKABLE + '\nparents = "best"\nmax_width = 16'
    path = tiny_config(
        tmp_path, n_trials=64, search=search, train_epochs=1, extra='[sampler]\nname = "population"'
    )
    config = load_config(path)
    assert config.cohort == "auto"
    real = cohort_mod.run_cohort
    seen: list[tuple[int, int]] = []  # (cohort size, the best network's parameters then)

    def spy(study: optuna.Study, objective: object, k: int, **kwargs: object) -> bool:
        done = [
            t
            for t in study.get_trials(states=(TrialState.COMPLETE,))
            if t.user_attrs.get("role") == "warmstart"
        ]
        best = min(done, key=lambda t: (t.value, t.number), default=None)
        seen.append((k, 49 if best is None else best.user_attrs["params"]))
        return real(study, objective, k, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(cohort_mod, "run_cohort", spy)
    trials = warm(run_study(config))
    assert len(trials) == 64
    assert sum(k for k, _ in seen) == 64
    assert [k for k, _ in seen] == [min(4, max(1, 1600 // params)) for _, params in seen]
    sizes = [k for k, _ in seen]
    assert sizes[0] == 4 and min(sizes) < 4  # it followed the best network as it grew


def test_the_default_cohort_study(tmp_path: Path) -> None:
    config = load_config(tiny_config(tmp_path, n_trials=32, search=STACKABLE, train_epochs=1))
    assert config.cohort == "auto"
    trials = warm(run_study(config))
    assert [t.user_attrs["cohort"] for t in trials] == [
        [n, n + 1] for n in range(2, 34, 2) for _ in range(2)
    ]
    # Too few trials for 16 cohorts: one at a time, as before "auto" was the default.
    small = run_study(load_config(tiny_config(tmp_path / "small", n_trials=3, search=STACKABLE)))
    assert all("cohort" not in t.user_attrs for t in warm(small))


def test_a_seed_that_cannot_stack_trains_one_at_a_time_under_auto(tmp_path: Path) -> None:
    path = tiny_config(tmp_path, n_trials=32, search=STACKABLE, train_epochs=1)
    text = path.read_text(encoding="utf-8")
    dense = '{ type = "dense", width = 4 }'
    assert dense in text
    path.write_text(text.replace(dense, '{ type = "dense", width = 4, dropout = 0.1 }'), "utf-8")
    config = load_config(path)
    trials = warm(run_study(config))
    assert len(trials) == 32
    # One at a time: each trial was asked after the one before it was told (a cohort asks
    # all of its trials first; its unstackable ones then train alone, one after another).
    for before, after in itertools.pairwise(trials):
        assert before.datetime_complete is not None and after.datetime_start is not None
        assert after.datetime_start >= before.datetime_complete


def test_an_interrupted_cohort_fails_as_interrupted_and_is_redone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import autosize.search.trials.cohort as cohort_mod

    config = tiny_config(tmp_path, n_trials=3, study="cohort = 3", search=STACKABLE)

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(cohort_mod, "fit_population", interrupted)
        with pytest.raises(KeyboardInterrupt):
            run_study(load_config(config))
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 's.db'}")
    trials = warm(study)
    assert [t.state for t in trials] == [TrialState.FAIL] * 3
    assert all(t.user_attrs["fail_reason"] == "interrupted" for t in trials)
    study = run_study(load_config(config))  # resumes: the interrupted trials do not count
    assert [t.state for t in warm(study)][3:] == [TrialState.COMPLETE] * 3


def test_a_cohort_that_runs_out_of_memory_fails_and_the_next_ones_are_half_as_large(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import autosize.search.trials.cohort as cohort_mod

    real = cohort_mod.fit_population
    sizes: list[int] = []

    def room_for_two(models: list[torch.nn.Module], *args: object, **kwargs: object) -> object:
        sizes.append(len(models))
        if len(models) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (a test)")
        return real(models, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(cohort_mod, "fit_population", room_for_two)
    config = tiny_config(tmp_path, n_trials=8, study="cohort = 4", search=STACKABLE)
    study = run_study(load_config(config))
    assert sizes == [4, 2, 2]  # n_trials counts the failed trials, as optimize does
    trials = warm(study)
    assert [t.state for t in trials] == [TrialState.FAIL] * 4 + [TrialState.COMPLETE] * 4
    assert {t.user_attrs["fail_reason"] for t in trials[:4]} == {"out of memory"}
    assert [t.user_attrs["cohort"] for t in trials[4:]] == [[6, 7]] * 2 + [[8, 9]] * 2


def test_the_cli_flag_sets_the_cohort(tmp_path: Path) -> None:
    import contextlib
    import io

    from autosize.cli import main

    config = tiny_config(tmp_path, n_trials=2, search=STACKABLE)
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert main(["run", str(config), "--cohort", "2"]) == 0
    assert out.getvalue().count("warmstart") == 2  # one line per finished trial
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 's.db'}")
    assert [t.user_attrs["cohort"] for t in warm(study)] == [[2, 3], [2, 3]]


def test_a_cohort_study_does_not_warn_about_heartbeats(tmp_path: Path) -> None:
    # A cohort asks its trials outside Study.optimize and runs their heartbeats itself;
    # Optuna's "Heartbeat of storage is supposed to be used with Study.optimize" on every
    # ask was noise on the user's terminal.
    import warnings

    config = tiny_config(tmp_path, n_trials=2, study="cohort = 2", search=STACKABLE)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_study(load_config(config))
    assert not [w for w in caught if "Heartbeat" in str(w.message)]


def test_near_the_deadline_a_cohort_is_only_as_large_as_its_reserves_allow() -> None:
    now = time.time()
    roomy = Deadline.after(600.0, start=now)
    tight = replace(Deadline.after(10.0, start=now), reserve=4.0)  # 2 trials' reserves left
    assert next_size(16, None, roomy) == 16 and next_size(16, 5, roomy) == 5
    assert next_size(16, None, replace(roomy, reserve=4.0)) == 16
    assert next_size(16, None, tight) == 2 and next_size(16, 1, tight) == 1
    assert next_size(16, None, Deadline.after(None)) == 16


@pytest.mark.parametrize("cohort", [1, 4])
def test_steps_that_grow_train_grow_budget_times_longer(tmp_path: Path, cohort: int) -> None:
    # [train] epochs = 2; widen and deepen steps train 3 (ceil(2 x 1.5)), train-on steps 2.
    # In a cohort the growing steps stack among themselves, the rest among themselves.
    search = f'{STACKABLE}\ngrow_budget = 1.5\nparents = "best"'
    config = tiny_config(tmp_path, n_trials=8, search=search, study=f"cohort = {cohort}")
    trials = warm(run_study(load_config(config)))
    assert len(trials) == 8 and all(t.state == TrialState.COMPLETE for t in trials)
    kinds = {t.number: t.user_attrs["op_kind"] for t in trials}
    assert {"train on"} < set(kinds.values())  # both kinds drawn
    for t in trials:
        grows = kinds[t.number] in ("widen", "deepen")
        assert t.user_attrs["epochs"] == (3 if grows else 2), kinds[t.number]
        assert len(t.user_attrs["curve"]) == t.user_attrs["epochs"]
    if cohort > 1:
        assert any(len(t.user_attrs["cohort"]) > 1 for t in trials)
        for t in trials:
            same = [
                u.number
                for u in trials
                if (kinds[u.number] == "train on") == (kinds[t.number] == "train on")
            ]
            assert set(t.user_attrs["cohort"]) <= set(same)


@pytest.mark.parametrize("value", ["0.5", "true", '"2"'])
def test_grow_budget_below_one_is_refused_with_the_file_and_key(tmp_path: Path, value: str) -> None:
    path = tiny_config(tmp_path, search=f"grow_budget = {value}")
    with pytest.raises(ConfigError, match=r"study\.toml: .*search\.grow_budget"):
        load_config(path)
