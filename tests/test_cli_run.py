"""``autosize run``: in-process through ``main([...])``, plus real subprocesses.

One finished study (module-scoped) serves the read-only checks; tests that
change a study run their own, each a few seconds on add10.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

import autosize.search.trials.training as training_mod
from autosize.models import ArchSpec
from studies import STUDY_MARKS, run_main, tiny_config

pytestmark = STUDY_MARKS

BIN = Path(sys.executable).parent
DOCUMENTED_ATTRS = (
    "role",
    "operation",
    "parent",
    "architecture",
    "spec",
    "params",
    "flops",
    "seconds",
    "test_metric",
    "network_artifact",
    "lineage",
)


def load(tmp: Path, name: str = "tiny") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{tmp / 's.db'}")


def by_role(study: optuna.Study, role: str) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.get_trials() if t.user_attrs.get("role") == role]


@dataclass(frozen=True)
class Finished:
    tmp: Path
    config: Path
    rc: int
    out: str
    study: optuna.Study


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Finished:
    tmp = tmp_path_factory.mktemp("finished")
    config = tiny_config(tmp)
    rc, out, _ = run_main("run", str(config))
    return Finished(tmp, config, rc, out, load(tmp))


# --------------------------------------------------------------------------- one finished study


def test_run_exits_0_with_one_line_per_finished_trial(finished: Finished) -> None:
    assert finished.rc == 0
    lines = [line for line in finished.out.splitlines() if line.startswith("trial ")]
    trials = finished.study.get_trials()
    assert len(lines) == len(trials) == 2 + 3
    for line, trial in zip(lines, trials, strict=True):
        assert line.split()[1] == str(trial.number)
        assert trial.user_attrs["role"] in line
    assert "best warm-started" in finished.out and "best baseline" in finished.out


def test_baselines_are_the_seed_arch_and_the_ladder(finished: Finished) -> None:
    baselines = by_role(finished.study, "baseline")
    assert sorted(t.user_attrs["architecture"] for t in baselines) == ["fc4", "fc8"]
    for t in baselines:
        assert t.state == TrialState.COMPLETE
        assert t.user_attrs["operation"] == "from scratch" and t.user_attrs["parent"] is None
        assert sorted(t.intermediate_values) == [1, 2]  # the pruner's reference curve
        for key in DOCUMENTED_ATTRS:
            assert key in t.user_attrs, key


def test_warmstart_trials_have_the_documented_attrs(finished: Finished) -> None:
    warm = by_role(finished.study, "warmstart")
    assert len(warm) == 3
    seed = finished.study.user_attrs["seed"]
    assert any(t.state == TrialState.COMPLETE for t in warm)
    for t in warm:
        a = t.user_attrs
        if t.state != TrialState.COMPLETE:  # pruned: no test metric, no network
            assert {"role", "operation", "parent", "spec", "params", "lineage"} <= set(a)
            continue
        for key in DOCUMENTED_ATTRS:
            assert key in a, key
        spec = ArchSpec.from_dict(a["spec"])
        assert a["params"] == spec.param_count() and a["flops"] == spec.flops()
        assert a["architecture"] == spec.summary()
        assert a["parent"] == "seed"  # parents = "seed" by default
        assert a["lineage"][0].startswith(f"seed {seed['architecture']}")
        assert a["seconds"] > 0 and a["test_metric"] > 0
        assert t.value == pytest.approx(a["val"]["rmse"])
    assert finished.study.user_attrs["seed"]["artifact_id"]


def test_optuna_cli_lists_trials_with_user_attrs(finished: Finished) -> None:
    url = f"sqlite:///{finished.tmp / 's.db'}"
    proc = subprocess.run(
        [str(BIN / "optuna"), "trials", "--study-name", "tiny", "--storage", url, "-f", "json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert len(rows) == 5
    roles = sorted(row["user_attrs"]["role"] for row in rows)
    assert roles == ["baseline"] * 2 + ["warmstart"] * 3
    assert all("architecture" in row["user_attrs"] for row in rows)


# --------------------------------------------------------------------------- bad configs


BAD = [
    # (name, study lines, train lines, extra lines, what the message must contain)
    ("unknown top-level key", "", "", "colour = 1", "'baselines.colour'"),
    ("unknown nested key", "", "epochz = 3", "", "'train.epochz'"),
    ("wrong type", 'seed = "zero"', "", "", "study.seed"),
    ("unknown sampler", "", "", '[sampler]\nname = "bogus"', "sampler.name"),
    ("unknown pruner", "", "", '[pruner]\nname = "bogus"', "pruner.name"),
    ("bad pruner kwarg", "", "", '[pruner]\nname = "baseline"\nbogus_kw = 1', "bogus_kw"),
    ("bad sampler kwarg", "", "", '[sampler]\nname = "tpe"\nbogus_kw = 1', "bogus_kw"),
    ("lam low > high", "", "", "[search]\nlam = [0.1, 0.01]", "search.lam"),
    ("max_width below the seed", "", "", "[search]\nmax_width = 2", "search.max_width"),
]


@pytest.mark.parametrize(("label", "study", "train", "extra", "key"), BAD, ids=[b[0] for b in BAD])
def test_bad_config_is_one_line_exit_2_and_writes_nothing(
    tmp_path: Path, label: str, study: str, train: str, extra: str, key: str
) -> None:
    config = tiny_config(tmp_path, study=study, train=train, extra=extra)
    _check_refused(tmp_path, config, key)


@pytest.mark.parametrize(
    ("label", "old", "new", "key"),
    [
        # these need the data
        ("unknown dataset", 'name = "add10"', 'name = "nope"', "data.name"),
        ("objective not fitting", '"val_rmse"', '"val_accuracy"', "study.objective"),
        ("unknown data option", "max_test = 200", "max_test = 200\noptions = {bogus = 1}", "data"),
        ("invalid layer", "width = 4 }", "width = 0 }", "seed.layers[0].width"),
        ("invalid TOML", "[data]", "[data", "not valid TOML"),
    ],
)
def test_bad_config_edits(tmp_path: Path, label: str, old: str, new: str, key: str) -> None:
    config = tiny_config(tmp_path)
    config.write_text(config.read_text().replace(old, new, 1))
    _check_refused(tmp_path, config, key)


def test_missing_config_file(tmp_path: Path) -> None:
    _check_refused(tmp_path, tmp_path / "nope.toml", "no such config file")


def _check_refused(tmp: Path, config: Path, key: str) -> None:
    rc, _, err = run_main("run", str(config))
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"autosize: error: {config}: "), lines[0]
    assert key in lines[0], lines[0]
    assert not (tmp / "s.db").exists() and not (tmp / "art").exists()
    assert sorted(p.name for p in tmp.iterdir()) == (["study.toml"] if config.exists() else [])


def test_seed_flag_reseeds_the_study_and_a_resume_keeps_its_seed(
    finished: Finished, tmp_path: Path
) -> None:
    config = tiny_config(tmp_path, n_trials=1)
    rc, _, _ = run_main("run", str(config), "--seed", "3")
    assert rc == 0
    study = load(tmp_path)
    assert study.user_attrs["autosize"]["seed"] == 3
    # The same config at [study] seed = 0 (the module's study) trained another seed network.
    assert study.user_attrs["seed"]["val"] != finished.study.user_attrs["seed"]["val"]

    rc, _, err = run_main("run", str(config), "--seed", "4", "--n-trials", "2")
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert "study.seed" in err and "was started with" in err
    assert len(load(tmp_path).get_trials()) == len(study.get_trials())  # nothing written

    rc, _, _ = run_main("run", str(config), "--seed", "3", "--n-trials", "2")
    assert rc == 0
    assert len(by_role(load(tmp_path), "warmstart")) == 2


def test_timeout_flag_sizes_what_is_chosen_from_the_data(tmp_path: Path) -> None:
    """`--timeout S` on a config with only [study] and [data] sizes the seed and the steps for
    S seconds, not for the config's own timeout."""
    config = tmp_path / "minimal.toml"
    config.write_text(
        '[study]\nname = "m"\ntimeout = 600\nn_trials = 1\n'
        f'storage = "sqlite:///{tmp_path / "m.db"}"\n'
        '[data]\nname = "add10"\nmax_train = 256\nmax_val = 128\nmax_test = 128\n'
    )
    rc, out, err = run_main("run", str(config), "--timeout", "8")
    assert rc == 0, err
    assert "[train] max_seconds = 0.2 (study.timeout / 40)" in out
    assert "max_seconds = 0.8, optimizer" in out  # the seed: a tenth of the budget
    study = optuna.load_study(study_name="m", storage=f"sqlite:///{tmp_path / 'm.db'}")
    assert study.user_attrs["autosize"]["trial_budget"]["max_seconds"] == 0.2


# --------------------------------------------------------------------------- interrupts


@pytest.mark.parametrize("where", ["baseline", "warmstart"])
def test_ctrl_c_fails_the_running_trial_and_a_rerun_completes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    config = tiny_config(tmp_path)
    real_train = training_mod.train_step  # the one training path: seed, baselines, trials
    calls = {"baseline": 0, "warmstart": 0}

    def interrupting_train(*args, **kwargs):  # type: ignore[no-untyped-def]
        reporters = kwargs.get("callbacks") or []
        if reporters:  # the seed trains without a reporter
            role = "warmstart" if reporters[0].prune else "baseline"
            calls[role] += 1
            if role == where and calls[role] == 2:
                raise KeyboardInterrupt
        return real_train(*args, **kwargs)

    monkeypatch.setattr(training_mod, "train_step", interrupting_train)
    rc, _, err = run_main("run", str(config))
    assert rc == 130 and "interrupted" in err

    study = load(tmp_path)  # still readable
    interrupted = [
        t for t in study.get_trials() if t.user_attrs.get("fail_reason") == "interrupted"
    ]
    assert len(interrupted) == 1
    assert interrupted[0].state == TrialState.FAIL
    assert interrupted[0].user_attrs["role"] == where
    assert not study.get_trials(states=(TrialState.RUNNING,))

    monkeypatch.setattr(training_mod, "train_step", real_train)
    rc, _, _ = run_main("run", str(config))
    assert rc == 0
    study = load(tmp_path)
    done = [t for t in study.get_trials() if t.state == TrialState.COMPLETE]
    assert sorted(
        t.user_attrs["architecture"] for t in by_role(study, "baseline") if t in done
    ) == [
        "fc4",
        "fc8",
    ]
    warm = [
        t for t in by_role(study, "warmstart") if t.user_attrs.get("fail_reason") != "interrupted"
    ]
    assert len(warm) == 3


# --------------------------------------------------------------------------- real processes


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def test_python_m_autosize_run_in_a_subprocess(tmp_path: Path) -> None:
    config = tiny_config(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "autosize", "run", str(config), "--n-trials", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(),
    )
    assert proc.returncode == 0, proc.stderr
    assert "Warning" not in proc.stderr, proc.stderr  # no library noise for a user
    assert len(by_role(load(tmp_path), "warmstart")) == 1
    assert sum(line.startswith("trial ") for line in proc.stdout.splitlines()) == 3


@pytest.mark.slow
def test_two_workers_on_a_journal_storage(tmp_path: Path) -> None:
    log = tmp_path / "s.log"
    config = tiny_config(tmp_path, storage=str(log), study="timeout = 300")
    rc, _, err = run_main("run", str(config), "--workers", "2", "--n-trials", "4")
    assert rc == 0, err
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(log)))
    study = optuna.load_study(study_name="tiny", storage=storage)
    warm = by_role(study, "warmstart")
    assert 4 <= len(warm) <= 5  # each worker stops at the target; one may overshoot by one
    assert all(t.state != TrialState.RUNNING for t in study.get_trials())
    # Each trial records the process that ran it.
    warm_workers = {t.user_attrs["worker"] for t in warm}
    assert len(warm_workers) == 2, "warm-started trials from both workers"
    assert not warm_workers & {t.user_attrs["worker"] for t in by_role(study, "baseline")}
    assert all(w.rsplit(":", 1)[1].isdigit() for w in warm_workers)


@pytest.mark.slow
def test_workers_that_fail_fail_the_run_each_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    import studies
    from autosize.search import workers as workers_mod

    monkeypatch.setattr(workers_mod, "worker", studies.worker_without_the_seed)
    config = tiny_config(tmp_path, study="timeout = 300")
    rc, _, err = run_main("run", str(config), "--workers", "2", "--n-trials", "4")
    assert rc == 2, err
    assert err.strip().splitlines()[-1] == (
        "autosize: error: 2 of 2 workers failed (exit code 2, 2; each said why above); "
        "the trials they finished are in the study, run again to resume"
    )
    workers = [line for line in capfd.readouterr().err.splitlines() if "the seed network" in line]
    assert len(workers) == 2 and all(line.startswith("autosize: error: ") for line in workers)


@pytest.mark.slow
def test_sigterm_to_the_parent_of_workers_ends_them_too(tmp_path: Path) -> None:
    """`kill PID` signals only the parent: it passes the interrupt on, so no worker trains
    on as an orphan, and their running trials end as interrupted (redone on resume)."""
    import signal
    import time

    config = tiny_config(
        tmp_path, n_trials=50, train_epochs=100000, train="max_seconds = 5", pruner='name = "none"'
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "autosize", "-q", "run", str(config), "--workers", "2"],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    storage = f"sqlite:///{tmp_path / 's.db'}"
    pids: set[int] = set()
    deadline = time.time() + 240
    while len(pids) < 2:
        assert proc.poll() is None and time.time() < deadline, "two workers never trained"
        time.sleep(0.5)
        try:
            running = optuna.load_study(study_name="tiny", storage=storage).get_trials(
                states=(TrialState.RUNNING,)
            )
        except KeyError:
            continue
        # Training, not still growing the network: a trial that has reported an epoch is
        # inside the objective's try (an interrupt before it leaves the trial RUNNING, see
        # below), so under a loaded machine the signal does not land in both set-ups.
        pids = {
            int(t.user_attrs["worker"].rsplit(":", 1)[1])
            for t in running
            if t.user_attrs.get("role") == "warmstart" and t.intermediate_values
        }
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=90)
    assert proc.returncode == 130, err
    for pid in pids:  # gone, not training on
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    study = optuna.load_study(study_name="tiny", storage=storage)
    stopped = [t for t in study.get_trials() if t.state == TrialState.FAIL]
    assert stopped and all(t.user_attrs["fail_reason"] == "interrupted" for t in stopped)
    # An interrupt that lands while Optuna creates a trial, before its objective's try, leaves
    # that trial RUNNING: the heartbeat fails it when the study next starts (not counted).
    assert len(stopped) + len(study.get_trials(states=(TrialState.RUNNING,))) >= 2


def test_version_and_output_flags_after_the_subcommand(tmp_path: Path) -> None:
    import autosize

    with pytest.raises(SystemExit) as info:
        run_main("--version")
    assert info.value.code == 0
    proc = subprocess.run(
        [str(BIN / "autosize"), "--version"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0 and proc.stdout.strip() == f"autosize {autosize.__version__}"
    # -q after the subcommand: the final summary only, no trial lines, no Optuna lines
    config = tiny_config(tmp_path / "q", n_trials=2)
    rc, out, err = run_main("run", str(config), "-q")
    assert rc == 0, err
    assert not any(line.startswith("trial ") for line in out.splitlines())
    assert "best warm-started" in out and "chosen from" not in out
    assert "Trial " not in err and "ExperimentalWarning" not in err
    # -v after the subcommand is the same as before it
    config = tiny_config(tmp_path / "v", n_trials=1)
    rc, out, _ = run_main("run", str(config), "-v")
    assert rc == 0 and any(line.startswith("trial ") for line in out.splitlines())
    from autosize.cli import build_parser

    parser = build_parser()
    for argv in (["-v", "data", "list"], ["data", "-v", "list"], ["data", "list", "-v"]):
        assert parser.parse_args(argv).verbose is True, argv
    assert parser.parse_args(["data", "list"]).verbose is False


def test_run_data_errors_name_the_file_and_a_resume_names_the_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 3))
    pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "y": x.sum(axis=1)}).to_csv(
        tmp_path / "rows.csv", index=False
    )
    monkeypatch.chdir(tmp_path)  # the state goes to ./.state/
    data = str(tmp_path / "rows.csv")
    rc, _, err = run_main("run", "--data", data, "--target", "nope", "--timeout", "4")
    assert rc == 2 and err.startswith(f"autosize: error: {data}: no column 'nope'")
    assert "rows.toml" not in err and err.count("\n") == 1
    rc, _, err = run_main("run", "--data", data, "--target", "y", "--timeout", "4")
    assert rc == 0, err
    rc, _, err = run_main("run", "--data", data, "--target", "y", "--timeout", "8")
    assert rc == 2 and "resume it with --timeout 4" in err and "--study-name" in err
    assert "rows.toml" not in err and "[train]" not in err


def test_the_progress_line_shows_time_left_trials_and_the_best(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io
    import time

    from autosize.cli._progress import Progress
    from autosize.search.store.results import TrialResult

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    progress = Progress(name="s", timeout=100.0, n_trials=None, started=time.time() - 30)
    progress.maximize = False
    progress.phase("the seed fc8 and the baselines")
    for number, value in ((3, 0.5), (4, 0.7)):
        result = TrialResult(
            number=number, role="warmstart", state="complete", value=value, params=10,
            architecture=f"fc{number}", operation="train on", parent="seed",
            test_metric=None, gain=None, seconds=1.0,
        )  # fmt: skip
        progress.trial(result)
    progress.close()
    drawn = term.getvalue()
    assert "the seed fc8" in drawn and "s left" in drawn
    assert "2 trials, best 0.5000 fc3 (trial 3)" in drawn  # lower is better here
    printed = capsys.readouterr().out
    assert printed.count("trial    3") == 1 and printed.count("trial    4") == 1
    quiet = Progress(name="s", timeout=100.0, n_trials=None, started=time.time(), quiet=True)
    quiet.trial(TrialResult(number=5, role="warmstart", state="complete", value=1.0, params=1,
                            architecture="fc1", operation="", parent="seed", test_metric=None,
                            gain=None, seconds=1.0))  # fmt: skip
    quiet.close()
    assert "trial    5" not in capsys.readouterr().out
