"""The wall budget (from process start), the cosine schedule, the population policy, train-on."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import torch
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from autosize.callbacks import Callback, CosineSchedule
from autosize.data.bundle import DataBundle, Preprocessing
from autosize.errors import ConfigError
from autosize.search import load_config, prepare, run_study
from autosize.search.deadline import Deadline, process_start
from autosize.search.policy.population import PopulationSampler, ranked_parents
from autosize.train import fit
from studies import STUDY_MARKS, tiny_config

pytestmark = STUDY_MARKS
optuna.logging.set_verbosity(optuna.logging.WARNING)
SHIPPED = sorted((Path(__file__).resolve().parents[1] / "studies").glob("*.toml"))
TUNED = sorted((Path(__file__).resolve().parents[1] / "studies" / "tuned").glob("*.toml"))


# --------------------------------------------------------------------------- clock


def test_process_start_is_before_now_and_before_this_module() -> None:
    start = process_start()
    assert start <= time.time()
    # pytest has run for a while in this process: the start is earlier than the test.
    assert time.time() - start < 24 * 3600


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_process_start_counts_what_ran_before_the_import() -> None:
    """A process that sleeps a second before importing autosize started a second before the
    import: /proc is read, not the import's clock (which process_start falls back to)."""
    code = (
        "import time; time.sleep(1.0)\n"
        "from autosize.search.deadline import _IMPORTED_AT, process_start\n"
        "print(_IMPORTED_AT - process_start())"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert 0.9 <= float(proc.stdout) < 60, proc.stdout


def test_deadline_clips_budgets_and_never_goes_negative() -> None:
    d = Deadline.after(10.0, start=time.time() - 8.0)
    assert 1.5 < d.remaining() <= 2.0
    assert d.clip(60.0) == pytest.approx(d.remaining(), abs=0.05)
    assert d.clip(0.5) == 0.5
    assert Deadline(d.start, d.seconds, reserve=1.0).clip(None) == pytest.approx(1.0, abs=0.05)
    spent = Deadline.after(1.0, start=time.time() - 5.0)
    assert spent.remaining() == 0.0 and spent.expired()
    assert spent.clip(3.0) == pytest.approx(1e-3)  # fit still gets a positive budget
    free = Deadline.after(None)
    assert free.clip(None) is None and free.clip(4.0) == 4.0 and not free.expired()


# --------------------------------------------------------------------------- schedule


class LrSpy(Callback):
    def __init__(self) -> None:
        self.lrs: list[list[float]] = []

    def on_epoch_end(self, state, record) -> None:  # type: ignore[no-untyped-def]
        self.lrs.append([float(g["lr"]) for g in state.optimizer.param_groups])


def test_cosine_schedule_anneals_from_the_start_lr() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, generator=g)
    y = x.sum(1)
    bundle = DataBundle(
        name="sum", task="regression", train=(x, y), val=(x, y), test=(x, y),
        input_shape=(3,), n_outputs=1, preprocessing=Preprocessing("none"),
    )  # fmt: skip
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    spy = LrSpy()
    fit(model, bundle, epochs=4, lr=0.01, callbacks=[CosineSchedule(epochs=4), spy])
    lrs = [row[0] for row in spy.lrs]
    assert lrs[0] == pytest.approx(0.01)
    assert lrs == sorted(lrs, reverse=True) and lrs[-1] < 0.002
    assert CosineSchedule(max_seconds=10.0).progress(0, 5.0) == 0.5
    assert CosineSchedule(epochs=10, max_seconds=100.0).progress(5, 1.0) == 0.5
    with pytest.raises(ConfigError, match="CosineSchedule"):
        CosineSchedule()


# --------------------------------------------------------------------------- population policy


def _study_with(values: list[float], *, maximize: bool) -> optuna.Study:
    study = optuna.create_study(direction="maximize" if maximize else "minimize")
    for i, v in enumerate(values):
        study.add_trial(
            optuna.trial.create_trial(
                value=v,
                user_attrs={"role": "warmstart", "network_artifact": f"a{i}"},
                params={},
                distributions={},
            )
        )
    study.add_trial(  # a baseline never ranks as a parent
        optuna.trial.create_trial(
            value=max(values or [0]) + 10,
            user_attrs={"role": "baseline"},
            params={},
            distributions={},
        )
    )
    return study


def test_ranked_parents_orders_by_the_objective() -> None:
    up = ranked_parents(_study_with([0.5, 0.9, 0.7], maximize=True), maximize=True)
    assert [t.value for t in up] == [0.9, 0.7, 0.5]
    down = ranked_parents(_study_with([3.0, 1.0, 2.0], maximize=False), maximize=False)
    assert [t.value for t in down] == [1.0, 2.0, 3.0]


def test_population_sampler_exploits_the_best_and_draws_weighted_operations() -> None:
    parent = IntDistribution(0, 3)
    ops = CategoricalDistribution(["widen", "deepen", "compress", "train"])
    empty = _study_with([], maximize=True)
    sampler = PopulationSampler(seed=1, p_best=1.0, weights={"train": 1.0, "widen": 0.0})
    frozen = empty.ask()
    # No warm-started network yet: the seed.
    assert (
        sampler.sample_independent(
            empty, empty._storage.get_trial(frozen._trial_id), "parent", parent
        )
        == 0
    )
    study = _study_with([0.5, 0.9, 0.7], maximize=True)
    picks, chosen = [], []
    for _ in range(30):
        t = study.ask()
        ft = study._storage.get_trial(t._trial_id)
        picks.append(sampler.sample_independent(study, ft, "parent", parent))
        chosen.append(sampler.sample_independent(study, ft, "op0", ops))
        study.tell(t, state=TrialState.FAIL)
    assert set(picks) == {1} and set(chosen) == {"train"}

    mixed = PopulationSampler(seed=1, p_best=0.0)
    ft = study._storage.get_trial(study.ask()._trial_id)
    ranks = {mixed.sample_independent(study, ft, "parent", parent)}
    assert ranks <= {2, 3}
    # Pure in (seed, trial number, name): the same trial gets the same draw again.
    again = [
        mixed.sample_independent(
            study, ft, "op0/widen/factor", FloatDistribution(1.5, 4.0, log=True)
        )
        for _ in range(3)
    ]
    assert len(set(again)) == 1 and 1.5 <= again[0] <= 4.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"p_best": 2.0}, "p_best"),
        ({"weights": {"grow": 1.0}}, "weights.grow"),
        ({"weights": {"train": -1}}, "weights.train"),
    ],
)
def test_population_sampler_refuses_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        PopulationSampler(**kwargs)


def test_bad_population_kwargs_in_a_config_name_the_file(tmp_path: Path) -> None:
    path = tiny_config(tmp_path, extra='[sampler]\nname = "population"\np_best = 7')
    with pytest.raises(ConfigError, match=r"study\.toml: \[sampler\] population: p_best"):
        prepare(load_config(path))


# --------------------------------------------------------------------------- a study on a wall budget


def test_a_study_on_a_wall_budget_counts_from_the_start_and_cuts_the_last_trial(
    tmp_path: Path,
) -> None:
    path = tiny_config(
        tmp_path,
        n_trials=100000,
        train='max_seconds = 60\nschedule = "cosine"',
        train_epochs=100000,
        search='operations = ["train", "widen"]\nparents = "best"\nmin_widen_factor = 2.0\nmax_widen_factor = 3.0',
        baselines="include_seed = false",
        extra='[sampler]\nname = "population"',
    )
    config = load_config(path)
    # torch's first optimizer imports torch._dynamo (about 3.5 s here): run alone, this test
    # would spend its whole budget importing; it is about the budget's accounting.
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])
    budget = 4.0
    started = time.time() - 1.0  # one second of "process start-up" already spent
    run_study(config, timeout=budget, started=started)
    took = time.time() - started
    # Cut at the deadline, not after the 60-s trial budget or its 100,000 epochs; the margin
    # is for a loaded CI machine (how close to the budget a study ends is the benchmarks'
    # measurement, benchmarks/search_vs_scratch.py, not a test's)
    assert took < budget + 2.0, took
    study = optuna.load_study(study_name="tiny", storage=config.storage)
    warm = [t for t in study.get_trials() if t.user_attrs.get("role") == "warmstart"]
    assert warm, "some warm-started trial ran"
    last = max(warm, key=lambda t: t.number)
    # The trial running at the deadline was cut there and kept what it had.
    assert last.state == TrialState.COMPLETE and last.user_attrs["stopped"] == "time"


def test_widen_jumps_and_train_on_keeps_the_parents_size(tmp_path: Path) -> None:
    path = tiny_config(
        tmp_path,
        n_trials=10,
        train_epochs=1,
        search='operations = ["train", "widen"]\nparents = "best"\nmin_widen_factor = 2.0\nmax_widen_factor = 3.0',
        baselines="include_seed = false",
        extra='[sampler]\nname = "population"',
    )
    config = load_config(path)
    run_study(config)
    study = optuna.load_study(study_name="tiny", storage=config.storage)
    warm = [t for t in study.get_trials() if t.user_attrs.get("role") == "warmstart"]
    grown = [t for t in warm if t.user_attrs.get("op_kind") == "widen"]
    for t in grown:  # widen jumps by at least min_widen_factor
        old, new = (
            int(x) for x in t.user_attrs["operation"].split(":")[1].split(")")[0].split("->")
        )
        assert new >= 2 * old
    trained_on = [t for t in warm if t.user_attrs.get("op_kind") == "train on"]
    assert grown and trained_on, [t.user_attrs.get("op_kind") for t in warm]
    for t in trained_on:  # train on keeps the parent's size
        parent = t.user_attrs["parent"]
        parent_arch = (
            study.user_attrs["seed"]["architecture"]
            if parent == "seed"
            else study.trials[parent].user_attrs["architecture"]
        )
        assert t.user_attrs["architecture"] == parent_arch


def test_a_baseline_the_wall_budget_cut_is_trained_again_by_a_resume_with_time(
    tmp_path: Path,
) -> None:
    # A short first run (--timeout 5, say) cut the baseline at its deadline; a later, longer
    # run reused it as the reference the warm-started trials are measured (and pruned) by.
    path = tiny_config(
        tmp_path, n_trials=1, train="max_seconds = 8", train_epochs=100000, baselines="scales = []"
    )
    config = load_config(path)
    run_study(config, timeout=5.0)
    study = optuna.load_study(study_name="tiny", storage=config.storage)
    (cut,) = [t for t in study.get_trials() if t.user_attrs.get("role") == "baseline"]
    assert cut.state == TrialState.COMPLETE and cut.user_attrs["cut"] is True
    assert cut.user_attrs["stopped"] == "time" and cut.user_attrs["seconds"] < 5.0
    run_study(config, timeout=60)
    trials = study.get_trials()
    base = [t for t in trials if t.user_attrs.get("role") == "baseline"]
    assert len(base) == 2 and "cut" not in base[1].user_attrs  # its 8 s in full
    assert base[1].user_attrs["seconds"] >= 8.0
    warm = [t for t in trials if t.user_attrs.get("role") == "warmstart"]
    assert warm and warm[-1].user_attrs["baseline_trial"] == base[1].number
    run_study(config, timeout=60)  # nothing left to redo: no third baseline
    assert len([t for t in study.get_trials() if t.user_attrs.get("role") == "baseline"]) == 2


def test_a_spent_budget_trains_the_seed_briefly_and_runs_no_trial(tmp_path: Path) -> None:
    path = tiny_config(tmp_path, n_trials=5, seed_epochs=100000)
    config = load_config(path)
    run_study(config, timeout=1.0, started=time.time() - 0.8)
    study = optuna.load_study(study_name="tiny", storage=config.storage)
    assert study.user_attrs["seed"]["seconds"] < 5.0  # cut, not 100,000 epochs
    assert [t for t in study.get_trials() if t.user_attrs.get("role") == "warmstart"] == []


def test_a_seed_cut_short_is_trained_again_in_full_until_a_trial_grows_from_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from autosize.search.store import record

    config = load_config(tiny_config(tmp_path, n_trials=1, seed_epochs=3, baselines="scales = []"))
    run_study(config, timeout=1.0, started=time.time() - 0.9)  # the budget cuts the seed
    study = optuna.load_study(study_name="tiny", storage=config.storage)
    cut = record.seed_info(study)
    assert cut["cut"] is True and cut["epochs"] < 3
    assert [t for t in study.get_trials() if record.role(t) == record.WARMSTART] == []

    with caplog.at_level(logging.INFO, logger="autosize.search"):
        run_study(config, timeout=120)  # no trial grew from it: trained again, in full
    full = record.seed_info(study)
    assert "training the seed again in full" in caplog.text
    assert full["cut"] is False and full["epochs"] == 3
    assert full["artifact_id"] != cut["artifact_id"]
    (warm,) = [t for t in study.get_trials() if record.role(t) == record.WARMSTART]
    assert warm.state == TrialState.COMPLETE

    # A cut seed that trials have grown from stays (their lineages start from it).
    record.write_seed_info(study, {**full, "cut": True, "run_started": 0.0})
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="autosize.search"):
        run_study(load_config(config.path, overrides={"n_trials": 2}), timeout=120)
    assert record.seed_info(study)["artifact_id"] == full["artifact_id"]
    assert "cut it short, and trials have grown from it since, so it stays" in caplog.text
    assert len([t for t in study.get_trials() if record.role(t) == record.WARMSTART]) == 2


def test_workers_are_spawned_only_with_time_to_load_the_data_and_train() -> None:
    from autosize.search.workers import worth_spawning

    assert worth_spawning(float("inf"), 5.0)
    assert worth_spawning(60.0, 5.0)
    assert not worth_spawning(8.0, 5.0)  # a worker would spend what is left loading
    assert not worth_spawning(0.0, 0.1)


def test_near_the_deadline_a_workers_study_trains_in_its_own_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from autosize.search import workers as workers_module
    from autosize.search.store import record

    seen: list[tuple[float, float]] = []

    def never(left: float, prepare_seconds: float) -> bool:
        seen.append((left, prepare_seconds))
        return False

    monkeypatch.setattr(workers_module, "worth_spawning", never)
    config = tiny_config(tmp_path, n_trials=2)
    with caplog.at_level("INFO", logger="autosize.search.study"):
        study = run_study(load_config(config), workers=2, timeout=3600)
    assert len(seen) == 1 and seen[0][1] > 0  # this process's own preparation was timed
    assert "this process trains alone" in caplog.text
    warm = [t for t in study.get_trials() if t.user_attrs.get("role") == "warmstart"]
    assert len(warm) == 2 and all(t.state == TrialState.COMPLETE for t in warm)
    assert {t.user_attrs["worker"] for t in warm} == {record.this_worker()}


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_config_loads_with_a_wall_budget(path: Path) -> None:
    config = load_config(path)
    if path.stem != "quickstart":
        assert config.timeout == 600
        # no hand-tuning: the dataset studies leave everything but [study] and [data] to
        # the defaults chosen from the data
        assert config.auto >= {"seed", "train", "search", "baselines", "sampler", "pruner"}
    assert config.sampler.name in ("tpe", "population")


@pytest.mark.parametrize("path", TUNED, ids=[p.stem for p in TUNED])
def test_the_hand_tuned_configs_still_load(path: Path) -> None:
    config = load_config(path)
    assert config.timeout == 600 and not config.auto - {"objective"}
    assert config.sampler.name == "population"


def test_reports_are_throttled_after_the_first_epochs_and_the_last_is_kept() -> None:
    from autosize.search.trials.reporter import TrialReporter

    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, generator=g)
    bundle = DataBundle(
        name="sum", task="regression", train=(x, x.sum(1)), val=(x, x.sum(1)), test=(x, x.sum(1)),
        input_shape=(3,), n_outputs=1, preprocessing=Preprocessing("none"),
    )  # fmt: skip
    study = optuna.create_study()
    trial = study.ask()
    reporter = TrialReporter(
        trial,
        "val_rmse",
        maximize=False,
        prune=False,
        report=True,
        min_interval=3600,
        always_first=2,
    )
    model = torch.nn.Sequential(torch.nn.Linear(3, 1))
    fit(model, bundle, epochs=5, callbacks=[reporter])
    frozen = study._storage.get_trial(trial._trial_id)
    assert sorted(frozen.intermediate_values) == [1, 2, 5]
    assert len(reporter.values) == 5


def test_a_resumed_population_study_climbs_from_the_networks_it_already_has(
    tmp_path: Path,
) -> None:
    path = tiny_config(
        tmp_path,
        n_trials=3,
        search='operations = ["train", "widen"]\nparents = "best"\ntop_k = 2',
        baselines="include_seed = false",
        extra='[sampler]\nname = "population"\np_best = 1.0',
    )
    first = run_study(load_config(path))
    best_before = ranked_parents(first, maximize=False)[0].number
    second = run_study(load_config(path, overrides={"n_trials": 5}))
    warm = [t for t in second.get_trials() if t.user_attrs.get("role") == "warmstart"]
    assert len(warm) == 5
    assert warm[0].user_attrs["parent"] == "seed"  # nothing to climb from yet
    # p_best = 1: the first resumed step starts from the best network of the first run.
    assert warm[3].user_attrs["parent"] == best_before
    assert all(t.user_attrs["parent"] != "seed" for t in warm[1:])
