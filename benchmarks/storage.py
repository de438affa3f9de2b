"""What an Optuna storage costs an autosize study: per-trial overhead and worker throughput.

**Per-trial overhead.** A study of trivial trials that do to the storage what one
autosize warm-started trial does, replayed from a real one (a tiny add10 study run
first): the same parameters suggested through the same TPE sampler, the same number of
``report()`` + ``should_prune()`` calls through autosize's baseline pruner (against the
real baselines, added to the study), the same user attributes, the trial's network
uploaded as an artifact (a file-system store in a temp folder), the stop-at-target
callback, and the heartbeat and stale-trial check autosize enables on RDB storages.
Storages: in memory (the floor), SQLite, the journal file and PostgreSQL (a throwaway
server from tests/pg.py, or ``--postgres URL``), each opened with autosize's
``make_storage``. Overhead = ms per trial minus the in-memory ms per trial, over the
whole study and over its last tenth (it grows with the study: the pruner, the sampler
and the target check read every trial). For PostgreSQL the server's own CPU per trial
is read from /proc when the server is local.

**Throughput.** ``autosize run`` worker processes (1, 2 and 4, one torch thread each)
started at once on one fresh PostgreSQL study of the quickstart config
(studies/quickstart.toml, artifacts in a temp folder): warm-started trials per minute
between the first warm-started trial's start and the last one's end (the seed and the
baselines are claimed by one process and come first), the wall clock of the whole run,
and the peak number of database connections.

    .venv/bin/python benchmarks/storage.py            # the real run: 5-10 min on 2 idle cores (estimated)
    .venv/bin/python benchmarks/storage.py --quick    # 1.5 min: 40 trivial trials, 6-trial studies

Prints tables, writes reports/storage.md and reports/storage.json (--quick: a smoke run,
benchmarks/out/storage_quick.md and .json, never the report).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import optuna
import torch
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from autosize.search import load_config, run_study
from autosize.search.optimize import StopAtTarget as _StopAtTarget
from autosize.search.policy.pruner import BaselinePruner
from autosize.search.store import record
from autosize.search.store.networks import artifact_store, download_network, upload_network
from autosize.search.store.storage import make_storage

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT / "tests"))
import pg  # noqa: E402  (tests/pg.py: the throwaway server)

from studies import tiny_config  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.ERROR)


# ---------------------------------------------------------------- one real trial to replay


@dataclass(frozen=True)
class Template:
    """What one warm-started trial writes, taken from a real study."""

    distributions: dict[str, object]
    steps: int
    user_attrs: dict[str, object]
    baselines: list[FrozenTrial]
    network: tuple[torch.nn.Module, object]
    artifact_bytes: int


def real_trial(tmp: Path) -> Template:
    config = load_config(tiny_config(tmp / "template", n_trials=2, seed_epochs=2, train_epochs=6))
    study = run_study(config)
    trials = study.get_trials()
    warm = [t for t in trials if record.read(t).is_warmstart and t.state == TrialState.COMPLETE]
    base = [t for t in trials if record.read(t).is_baseline]
    t = warm[-1]
    store = artifact_store(config.artifacts)
    artifact = str(t.user_attrs["network_artifact"])
    return Template(
        distributions=dict(t.distributions),
        steps=max(len(t.intermediate_values), 6),
        user_attrs={k: v for k, v in t.user_attrs.items() if k != "network_artifact"},
        baselines=base,
        network=download_network(store, artifact),
        artifact_bytes=(Path(config.artifacts) / artifact).stat().st_size,
    )


def _suggest(trial: optuna.Trial, name: str, dist: object) -> None:
    if isinstance(dist, CategoricalDistribution):
        trial.suggest_categorical(name, dist.choices)
    elif isinstance(dist, FloatDistribution):
        trial.suggest_float(name, dist.low, dist.high, log=dist.log)
    elif isinstance(dist, IntDistribution):
        trial.suggest_int(name, dist.low, dist.high, log=dist.log)


# ---------------------------------------------------------------- per-trial overhead


def _postmaster_cpu(url: str) -> Callable[[], float] | None:
    """Seconds of CPU the local server has used so far (postmaster, its children, and the
    reaped ones), or None when the server is not one of ours."""
    data = pg.data_dir(url)
    if data is None:
        return None
    pid = int((data / "postmaster.pid").read_text().split()[0])
    tick = os.sysconf("SC_CLK_TCK")

    def fields(p: str) -> list[str]:
        text = Path(f"/proc/{p}/stat").read_text()
        return text[text.rindex(")") + 2 :].split()

    def total() -> float:
        f = fields(str(pid))
        ticks = sum(int(x) for x in f[11:15])  # utime stime cutime cstime
        for entry in os.listdir("/proc"):
            if entry.isdigit() and entry != str(pid):
                try:
                    g = fields(entry)
                except OSError:
                    continue
                if int(g[1]) == pid:
                    ticks += int(g[11]) + int(g[12])
        return ticks / tick

    return total


def overhead(
    name: str, url: str | None, template: Template, n: int, tmp: Path
) -> dict[str, object]:
    storage = make_storage(url) if url else optuna.storages.InMemoryStorage()
    study = optuna.create_study(
        storage=storage,
        study_name=f"overhead-{name}-{time.time_ns()}",
        sampler=optuna.samplers.TPESampler(seed=0),
        pruner=BaselinePruner(reference="nearest"),
        direction="minimize",
    )
    for t in template.baselines:
        study.add_trial(t)
    artifacts = tmp / f"art-{name}"
    model, spec = template.network

    def objective(trial: optuna.Trial) -> float:
        for pname, dist in template.distributions.items():
            _suggest(trial, pname, dist)
        for key, value in template.user_attrs.items():
            trial.set_user_attr(key, value)
        for step in range(template.steps):
            trial.report(0.0, step)  # better than every baseline: never pruned
            trial.should_prune()
        trial.set_user_attr(
            "network_artifact",
            upload_network(trial, artifacts, model, spec),  # type: ignore[arg-type]
        )
        return 0.0

    stamps: list[float] = []
    cpu = _postmaster_cpu(url) if url and url.startswith("postgresql") else None
    cpu0 = cpu() if cpu else None
    start = time.perf_counter()
    study.optimize(
        objective,
        n_trials=n,
        callbacks=[_StopAtTarget(10**9), lambda s, t: stamps.append(time.perf_counter())],
        gc_after_trial=False,
    )
    wall = time.perf_counter() - start
    per = [b - a for a, b in zip([start, *stamps[:-1]], stamps, strict=True)]
    tail = per[-max(1, n // 10) :]
    out: dict[str, object] = {
        "storage": name,
        "trials": n,
        "ms_per_trial": 1000 * wall / n,
        "ms_per_trial_first_tenth": 1000 * statistics.fmean(per[: max(1, n // 10)]),
        "ms_per_trial_last_tenth": 1000 * statistics.fmean(tail),
    }
    if cpu and cpu0 is not None:
        out["server_cpu_ms_per_trial"] = 1000 * (cpu() - cpu0) / n
    return out


# ---------------------------------------------------------------- worker throughput


def _connections(url: str) -> int:
    import psycopg

    with psycopg.connect(url, connect_timeout=5) as con:
        row = con.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        ).fetchone()
    return int(row[0]) if row else 0


@contextmanager
def _sampled_connections(url: str) -> Iterator[list[int]]:
    """The number of connections to the database, sampled every 0.25 s."""
    samples: list[int] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(0.25):
            with suppress(Exception):  # a poll that fails says nothing about the count
                samples.append(_connections(url))

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        stop.set()
        thread.join()


def throughput(url: str, workers: int, n_trials: int, tmp: Path) -> dict[str, object]:
    text = (ROOT / "studies" / "quickstart.toml").read_text(encoding="utf-8")
    folder = tmp / f"workers-{workers}"
    folder.mkdir()
    name = f"quickstart-{workers}w-{time.time_ns()}"
    config = folder / "quickstart.toml"
    config.write_text(
        text.replace(
            "[study]\n",
            f'[study]\nstorage = "{url}"\nartifacts = "{folder / "art"}"\n',
            1,
        ).replace('name = "quickstart"', f'name = "{name}"', 1),
        encoding="utf-8",
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    argv = [str(BIN / "autosize"), "-q", "run", str(config), "--n-trials", str(n_trials)]
    argv += ["--threads", "1"]
    cpu = _postmaster_cpu(url)
    cpu0 = cpu() if cpu else None
    idle = _connections(url)  # this script's own (its storages' pools), not the workers'
    with _sampled_connections(url) as samples:
        start = time.perf_counter()
        procs = [
            subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            for _ in range(workers)
        ]
        for proc in procs:
            _, err = proc.communicate()
            if proc.returncode != 0:
                raise SystemExit(f"a worker failed: {err.decode()[-2000:]}")
        wall = time.perf_counter() - start
    study = optuna.load_study(study_name=name, storage=make_storage(url))
    warm = [
        t
        for t in study.get_trials()
        if record.read(t).is_warmstart and t.state in (TrialState.COMPLETE, TrialState.PRUNED)
    ]
    first = min(t.datetime_start for t in warm if t.datetime_start)
    last = max(t.datetime_complete for t in warm if t.datetime_complete)
    span = (last - first).total_seconds()
    lengths = [
        (t.datetime_complete - t.datetime_start).total_seconds()
        for t in warm
        if t.datetime_start and t.datetime_complete
    ]
    out: dict[str, object] = {
        "workers": workers,
        "warm_trials": len(warm),
        "warm_span_s": span,
        "trials_per_minute": 60 * len(warm) / span if span > 0 else None,
        "mean_trial_s": statistics.fmean(lengths),
        "wall_s": wall,
        "peak_connections": max(samples, default=idle) - idle,
        "median_connections": statistics.median(samples or [idle]) - idle,
        "connections_per_process": (max(samples, default=idle) - idle) / workers,
    }
    if cpu and cpu0 is not None:
        out["server_cpu_s"] = cpu() - cpu0
    return out


# ---------------------------------------------------------------- report


def _fmt(x: object, digits: int = 1) -> str:
    return "-" if x is None else f"{x:,.{digits}f}" if isinstance(x, float) else str(x)


def predict(over: list[dict[str, object]], work: list[dict[str, object]]) -> dict[str, object]:
    """What the measured numbers say about 50 machines, one worker each, on one server."""
    pgrow = next((o for o in over if o["storage"] == "postgresql"), None)
    one = next((w for w in work if w["workers"] == 1), None)
    if pgrow is None or one is None:
        return {}
    per_proc = max(float(w["connections_per_process"]) for w in work)  # type: ignore[arg-type]
    trial_s = float(one["mean_trial_s"])  # type: ignore[arg-type]
    client_ms = float(pgrow["ms_per_trial_last_tenth"])  # type: ignore[arg-type]
    server_ms = pgrow.get("server_cpu_ms_per_trial")
    out: dict[str, object] = {
        "machines": 50,
        "connections": round(50 * per_proc),
        "quickstart_trial_s": trial_s,
        "overhead_fraction_at_quickstart_trial": client_ms / 1000 / trial_s,
        "trials_per_second_at_quickstart_trial": 50 / trial_s,
    }
    if server_ms is not None:
        out["server_cores_at_quickstart_trial"] = 50 / trial_s * float(server_ms) / 1000  # type: ignore[arg-type]
        out["server_cores_at_10s_trial"] = 50 / 10 * float(server_ms) / 1000  # type: ignore[arg-type]
    return out


def markdown(result: dict[str, object]) -> str:
    over: list[dict[str, object]] = result["overhead"]  # type: ignore[assignment]
    work: list[dict[str, object]] = result["throughput"]  # type: ignore[assignment]
    p: dict[str, object] = result["prediction"]  # type: ignore[assignment]
    base = next(float(o["ms_per_trial"]) for o in over if o["storage"] == "memory")  # type: ignore[arg-type]
    base_tail = next(float(o["ms_per_trial_last_tenth"]) for o in over if o["storage"] == "memory")  # type: ignore[arg-type]
    lines = [
        "# Storage: per-trial overhead and worker throughput",
        "",
        "**Command** (one run; every number below comes from it):",
        "",
        "```",
        str(result["command"]),
        "```",
        "",
        f"**Machine**: {result['machine']}. Load average before {result['load_before']}, "
        f"after {result['load_after']}; {result['seconds']:.0f} s in all."
        + (
            " **Quick mode**: few trials, small studies; the real run has more."
            if result["quick"]
            else ""
        ),
        "",
        "## Per-trial storage overhead",
        "",
        f"A study of {over[0]['trials']} trivial trials, each doing to the storage what one real "
        f"warm-started trial does ({result['template']['steps']} reports + pruner checks, "  # type: ignore[index]
        f"{result['template']['user_attrs']} user attributes, its "  # type: ignore[index]
        f"{result['template']['artifact_bytes']:,}-byte network uploaded, the heartbeat; see the "  # type: ignore[index]
        "script's docstring). Overhead = ms per trial minus in memory's.",
        "",
        "| storage | ms/trial | overhead ms/trial | first tenth ms | last tenth ms | overhead, last tenth | server CPU ms/trial |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for o in over:
        lines.append(
            f"| {o['storage']} | {_fmt(o['ms_per_trial'])} | "
            f"{_fmt(float(o['ms_per_trial']) - base)} | {_fmt(o['ms_per_trial_first_tenth'])} | "  # type: ignore[arg-type]
            f"{_fmt(o['ms_per_trial_last_tenth'])} | {_fmt(float(o['ms_per_trial_last_tenth']) - base_tail)} | "  # type: ignore[arg-type]
            f"{_fmt(o.get('server_cpu_ms_per_trial'))} |"
        )
    lines += [
        "",
        "## Throughput: `autosize run` workers on one PostgreSQL study",
        "",
        f"studies/quickstart.toml, --n-trials {result['n_trials']} warm-started trials, "
        "every worker started at the same moment on a fresh study, one torch thread each. "
        "Trials per minute count warm-started trials between the first one's start and the last "
        "one's end (the seed and the three baselines come before). The workers share this "
        f"machine's {os.cpu_count()} CPUs with each other and with whatever else runs (see the load "
        "average): past that many workers a trial only gets slower, so this table shows what the "
        "storage costs a few workers, not how 50 machines scale; the next section does that from "
        "the per-trial numbers.",
        "",
        "| workers | warm trials | trials/min | mean trial s | wall s (whole run) | DB connections: peak | median | peak per process | server CPU s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for w in work:
        lines.append(
            f"| {w['workers']} | {w['warm_trials']} | {_fmt(w['trials_per_minute'])} | "
            f"{_fmt(w['mean_trial_s'], 2)} | {_fmt(w['wall_s'])} | {w['peak_connections']} | {_fmt(w['median_connections'])} | "
            f"{_fmt(w['connections_per_process'])} | {_fmt(w.get('server_cpu_s'), 2)} |"
        )
    if p:
        lines += [
            "",
            "## What that predicts for 50 machines on one server",
            "",
            f"- **Connections**: {_fmt(p['connections'], 0)} at the peak measured per process "
            "(50 machines, one `autosize run` each, all starting at once). The peak is at the start: "
            "a process claiming the seed or a baseline opens a second engine (its claim's heartbeat "
            "thread; closed when the claim ends); during warm-started trials a process holds two "
            "(its main thread and the trial's heartbeat thread), see the median column. PostgreSQL's "
            "default `max_connections` is 100: raise it (or put PgBouncer in front) before about "
            "25 processes start at once, or 50 running.",
            f"- **Client-side overhead**: a quickstart trial here lasts {_fmt(p['quickstart_trial_s'], 2)} s; "
            f"the storage adds {_fmt(100 * float(p['overhead_fraction_at_quickstart_trial']), 1)}% to it "  # type: ignore[arg-type]
            "(the last-tenth PostgreSQL overhead). It does not depend on the number of machines, but "
            "grows with the study (compare first and last tenth).",
        ]
        if "server_cores_at_quickstart_trial" in p:
            lines.append(
                f"- **Server load**: 50 workers finishing a trial every {_fmt(p['quickstart_trial_s'], 2)} s "
                f"send {_fmt(p['trials_per_second_at_quickstart_trial'])} trials/s; at the measured server "
                f"CPU per trial that is {_fmt(p['server_cores_at_quickstart_trial'], 2)} server cores, "
                f"{_fmt(p['server_cores_at_10s_trial'], 2)} with 10-s trials. Real studies' trials "
                "(tens of seconds to minutes) leave the server nearly idle; sub-second trials on "
                "50 machines would need a server of several cores."
            )
    lines.append("")
    return "\n".join(lines)


def _load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few trials, small studies")
    parser.add_argument(
        "--trials", type=int, help="trivial trials per storage (default 300; quick 40)"
    )
    parser.add_argument(
        "--n-trials", type=int, help="warm-started trials per throughput run (default 24; quick 6)"
    )
    parser.add_argument("--workers", default="1,2,4", help="worker counts, comma-separated")
    parser.add_argument(
        "--postgres", metavar="URL", help="a server of your own (default: a throwaway one)"
    )
    parser.add_argument("--out", type=Path, default=None, help="default: reports/storage.md")
    args = parser.parse_args(argv)
    if args.out is None:  # a smoke run never overwrites the measured report
        args.out = ROOT / (
            "benchmarks/out/storage_quick.md" if args.quick else "reports/storage.md"
        )
    n = args.trials or (40 if args.quick else 300)
    n_trials = args.n_trials or (6 if args.quick else 24)
    workers = [int(x) for x in args.workers.split(",")]
    started, load_before = time.perf_counter(), _load()
    command = " ".join(
        ["python", "benchmarks/storage.py", *(argv if argv is not None else sys.argv[1:])]
    )
    with tempfile.TemporaryDirectory(prefix="autosize-storage-") as tmp_name:
        tmp = Path(tmp_name)
        os.chmod(tmp, 0o755)
        server = pg.server() if not args.postgres else None
        url = args.postgres or server.__enter__()  # type: ignore[union-attr]
        try:
            print("replaying one real warm-started trial ...", flush=True)
            template = real_trial(tmp)
            storages = {
                "memory": None,
                "sqlite": f"sqlite:///{tmp / 'bench.db'}",
                "journal": f"journal:{tmp / 'bench.log'}",
                "postgresql": url,
            }
            over = []
            for name, storage in storages.items():
                row = overhead(name, storage, template, n, tmp)
                print(json.dumps(row), flush=True)
                over.append(row)
            work = []
            for k in workers:
                row = throughput(url, k, n_trials, tmp)
                print(json.dumps(row), flush=True)
                work.append(row)
        finally:
            if server is not None:
                server.__exit__(None, None, None)
    result: dict[str, object] = {
        "command": command,
        "quick": args.quick,
        "machine": f"{os.cpu_count()} CPUs ({platform.machine()}), torch {torch.__version__}, "
        f"optuna {optuna.__version__}, Python {platform.python_version()}, PostgreSQL "
        + (re.sub(r"\D.*", "", Path(str(pg._bin_dir())).parent.name) if pg._bin_dir() else "?"),
        "load_before": load_before,
        "load_after": _load(),
        "seconds": time.perf_counter() - started,
        "n_trials": n_trials,
        "template": {
            "steps": template.steps,
            "user_attrs": len(template.user_attrs) + 1,
            "artifact_bytes": template.artifact_bytes,
            "params": len(template.distributions),
        },
        "overhead": over,
        "throughput": work,
    }
    result["prediction"] = predict(over, work)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(markdown(result), encoding="utf-8")
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
