"""Population training against one ``fit`` after another: trials/s and examples/s.

For each dataset (Add10, Airfoil, Census, Poker) the networks are the sizes its shipped
study (``studies/<name>.toml``) actually tries: the seed architecture, one layer widened
by the smallest and the largest widen factor, a layer inserted (deepen), both, and
compressed sizes (half and three quarters of every width). K = 1, 4, 16, 64 networks
cycle through those shapes, each with its own seed and learning rate (as the trials of
a search have), and train for the same number of epochs two ways in one run:

  sequential   fit(model_k, seed=k, lr=lr_k) for k = 1..K, one after another
  population   fit_population(models, seed=[...], lr=[...]) once

A trial is one network trained for ``epochs`` epochs; trials/s is K over the wall time,
examples/s is K x epochs x training examples over the wall time. Each cell is the best
of ``--rounds`` interleaved rounds (other processes only ever slow a cell down). Both
sides start from the same weights, so the run also checks that every member's final
validation metric matches its sequential twin (max |difference| in the table).

    .venv/bin/python benchmarks/population.py                  # the full run, about 5 minutes
    .venv/bin/python benchmarks/population.py --quick          # smoke run, well under a minute
    .venv/bin/python benchmarks/population.py --device cuda    # the same on a GPU

Writes benchmarks/out/population.json and the markdown report (default
reports/population.md; --quick writes benchmarks/out/population_quick.md instead). A
report holds one results block per kind of device (CPU, CUDA): a run replaces its own
device's block and leaves the prose and the other blocks as they are. ``--from-json
FILE`` renders an earlier run's JSON (one brought back from a GPU machine, say) into
its block without running anything.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import torch

from autosize.data import load_dataset
from autosize.data.bundle import DataBundle
from autosize.history import History
from autosize.models import ArchSpec, DenseLayer, build_model
from autosize.population import fit_population
from autosize.search.config import load_config
from autosize.search.config.schema import StudyConfig
from autosize.train import fit, resolve_device

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ("add10", "airfoil", "census", "poker")
# Epochs per trial: each trial a fraction of a second to a few seconds on this CPU.
EPOCHS = {"add10": 3, "airfoil": 10, "census": 1, "poker": 1}
KS = (1, 4, 16, 64)
GOALS = {"add10": 5.0, "airfoil": 5.0, "census": 2.0, "poker": 2.0}  # x at K=16 on a CPU
GPU_GOAL = 10.0  # x at K=16 on a GPU, every dataset
# --issue-sizes: the nets issue 11 had in mind for Airfoil ("a 5-x-1 Airfoil net", a few
# thousand FLOPs per example), where the shipped study searches 256-256-256 and up. Rows
# labelled "airfoil 5-x-1"; the goal lines keep judging the shipped sizes.
ISSUE_SHAPES = {"airfoil": [(8,), (12,), (16,), (24,), (32,), (48,), (64,), (16, 16)]}


def study_config(name: str) -> StudyConfig:
    # The hand-tuned configs' sizes, the ones this benchmark was written for (issue 11);
    # studies/<name>.toml now leaves its seed to the data.
    return load_config(ROOT / "studies" / "tuned" / f"{name}.toml")


def load(name: str) -> DataBundle:
    """The dataset as its shipped study reads it (Airfoil: the chord split)."""
    options = {"split": "chord"} if name == "airfoil" else {}
    return load_dataset(name, **options)  # type: ignore[arg-type]


def search_shapes(config: StudyConfig) -> tuple[list[tuple[int, ...]], int]:
    """The hidden widths a study's search tries, and its batch size."""
    seed = tuple(layer.width for layer in config.seed_net.layers)  # type: ignore[union-attr]
    space = config.search
    lo, hi = space.min_widen_factor, space.max_widen_factor

    def widen(w: tuple[int, ...], i: int, f: float) -> tuple[int, ...]:
        return (*w[:i], min(space.max_width, max(w[i] + 1, round(w[i] * f))), *w[i + 1 :])

    shapes = [seed]
    for f in (lo, hi):
        shapes += [widen(seed, 0, f), widen(seed, len(seed) - 1, f)]
    if len(seed) < space.max_depth:
        deeper = (*seed, seed[-1])
        shapes += [deeper, widen(deeper, 0, lo)]
    shapes += [tuple(max(1, w // 2) for w in seed), tuple(max(1, w * 3 // 4) for w in seed)]
    unique = list(dict.fromkeys(shapes))
    return unique, config.train.batch_size


def specs_for(
    bundle: DataBundle, shapes: list[tuple[int, ...]], config: StudyConfig, k: int
) -> list[ArchSpec]:
    """K specs cycling through ``shapes``, each as the study builds it: its activation and,
    where ``[seed] embedding`` asks for one (Census), the embedding of the numeric columns."""
    return [
        config.arch(
            tuple(DenseLayer(w) for w in shapes[i % len(shapes)]),
            bundle.input_shape,
            bundle.n_outputs,
            numeric_features=bundle.numeric_features,
            target_shift=bundle.target_mean if bundle.task == "regression" else 0.0,
            target_scale=bundle.target_std if bundle.task == "regression" else 1.0,
        )
        for i in range(k)
    ]


def models_for(specs: list[ArchSpec]) -> list[torch.nn.Module]:
    return [build_model(spec, seed=1000 + i) for i, spec in enumerate(specs)]


def matmul_peak(device: str) -> dict[str, float]:
    """GFLOP/s of one plain matmul, on this device and thread count: a large square one
    (the machine's roofline), one of a search's step shapes (128 x 256 x 256, an Airfoil
    layer at batch 128) and 16 of those batched (``bmm``, a stack's layer at K = 16); each
    in float32 (what ``fit`` and the population train in) and in bfloat16 (on CPUs with
    AMX or AVX512-BF16 several times float32's rate: the roofline a bf16 path would have).
    """
    out = {}
    shapes = {"1024^3": (1, 1024, 1024, 1024), "128x256x256": (1, 128, 256, 256)}
    shapes["16x128x256x256 bmm"] = (16, 128, 256, 256)
    for dtype, suffix in ((torch.float32, ""), (torch.bfloat16, " bf16")):
        for name, (batch, m, k, n) in shapes.items():
            a = torch.randn(batch, m, k, device=device).to(dtype)
            b = torch.randn(batch, k, n, device=device).to(dtype)
            op = functools.partial(torch.bmm, a, b)
            if batch == 1:
                op = functools.partial(torch.mm, a[0], b[0])
            reps = max(3, int(2e9 // (2 * batch * m * k * n)))
            best = math.inf
            for _ in range(3):
                if device.startswith("cuda"):
                    torch.cuda.synchronize()
                start = time.perf_counter()
                for _ in range(reps):
                    op()
                if device.startswith("cuda"):
                    torch.cuda.synchronize()
                best = min(best, time.perf_counter() - start)
            out[name + suffix] = 2.0 * batch * m * k * n * reps / best / 1e9
    return out


def lrs_for(k: int) -> list[float]:
    """Distinct learning rates, log-spaced in [3e-4, 3e-3] (a search's lr range)."""
    return [3e-4 * 10 ** (i / max(k - 1, 1)) for i in range(k)]


def one_after_another(
    models: list[torch.nn.Module],
    bundle: DataBundle,
    seeds: list[int],
    lrs: list[float],
    **kw: object,
) -> list[History]:
    """The sequential side: ``fit`` each model with its own seed and learning rate."""
    return [fit(m, bundle, seed=seeds[i], lr=lrs[i], **kw) for i, m in enumerate(models)]  # type: ignore[arg-type]


def together(
    models: list[torch.nn.Module],
    bundle: DataBundle,
    seeds: list[int],
    lrs: list[float],
    **kw: object,
) -> list[History]:
    """The population side: one ``fit_population`` of them all."""
    return fit_population(models, bundle, seed=seeds, lr=lrs, **kw)  # type: ignore[arg-type]


def time_both(
    bundle: DataBundle, models: list[torch.nn.Module], epochs: int, batch: int, device: str
) -> dict[str, float]:
    k = len(models)
    seeds, lrs = list(range(k)), lrs_for(k)
    kw = {"epochs": epochs, "batch_size": batch, "device": device}
    solo = copy.deepcopy(models)
    start = time.perf_counter()
    want = one_after_another(solo, bundle, seeds, lrs, **kw)
    sequential = time.perf_counter() - start
    pop = copy.deepcopy(models)
    start = time.perf_counter()
    got = together(pop, bundle, seeds, lrs, **kw)
    population = time.perf_counter() - start
    diff = max(
        abs(g.epochs[-1].val_metric - w.epochs[-1].val_metric)
        for g, w in zip(got, want, strict=True)
    )
    return {"sequential": sequential, "population": population, "max_val_diff": diff}


def run(args: argparse.Namespace) -> dict[str, object]:
    device = str(resolve_device(args.device))
    load_before = os.getloadavg()
    peak = matmul_peak(device)
    print("one matmul: " + ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in peak.items()), flush=True)
    rows = []
    runs = [(name, name, None) for name in args.datasets]
    if args.issue_sizes:
        runs += [(n, f"{n} 5-x-1", shapes) for n, shapes in ISSUE_SHAPES.items()]
    for name, label, override in runs:
        bundle = load(name)
        if args.quick:
            bundle = bundle.subset(train=min(2000, bundle.sizes["train"]), val=500)
        config = study_config(name)
        shapes, batch = search_shapes(config)
        shapes = override or shapes
        epochs = 1 if args.quick else EPOCHS[name]
        # Warm-up: the first call in a process pays one-off costs (allocator, MKL).
        warm = models_for(specs_for(bundle, shapes, config, 2))
        fit(copy.deepcopy(warm[0]), bundle.subset(train=512), epochs=1, device=device)
        fit_population(warm, bundle.subset(train=512), epochs=1, device=device)
        for k in args.ks:
            specs = specs_for(bundle, shapes, config, k)
            models = models_for(specs)
            rounds = [time_both(bundle, models, epochs, batch, device) for _ in range(args.rounds)]
            seq = min(r["sequential"] for r in rounds)
            pop = min(r["population"] for r in rounds)
            examples = k * epochs * bundle.sizes["train"]
            # the matmuls of every trial's training (ArchSpec.train_flops), not the padding
            flops = sum(spec.train_flops() for spec in specs) * epochs * bundle.sizes["train"]
            row = {
                "dataset": label,
                "k": k,
                "epochs": epochs,
                "batch_size": batch,
                "train_examples": bundle.sizes["train"],
                "shapes": [list(s) for s in shapes[: min(k, len(shapes))]],
                "embedding": specs[0].embedding is not None,
                "sequential_s": seq,
                "population_s": pop,
                "sequential_trials_per_s": k / seq,
                "population_trials_per_s": k / pop,
                "sequential_examples_per_s": examples / seq,
                "population_examples_per_s": examples / pop,
                "speedup": seq / pop,
                "sequential_gflops": flops / seq / 1e9,
                "population_gflops": flops / pop / 1e9,
                "max_val_diff": max(r["max_val_diff"] for r in rounds),
            }
            rows.append(row)
            print(
                f"{label:8s} K={k:3d}  sequential {seq:7.2f} s  population {pop:7.2f} s  "
                f"x{row['speedup']:.2f}  (max |val diff| {row['max_val_diff']:.1e})",
                flush=True,
            )
    return {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "device": device,
        "device_name": torch.cuda.get_device_name()
        if device.startswith("cuda")
        else platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "load_before": load_before,
        "quick": args.quick,
        "rounds": args.rounds,
        "matmul_gflops": peak,
        "rows": rows,
    }


def render(result: dict[str, object]) -> str:
    rows = result["rows"]
    lines = [
        "**Command** (one run; every number below comes from it):",
        "",
        "```",
        str(result["command"]),
        "```",
        "",
        f"**Machine**: {result['cpus']} CPUs, device {result['device']} ({result['device_name']}), "
        f"{result['threads']} torch thread(s), torch {result['torch']}, Python {result['python']}; "
        f"load average before {', '.join(f'{x:.2f}' for x in result['load_before'])}, "  # type: ignore[union-attr]
        f"after {', '.join(f'{x:.2f}' for x in result['load_after'])}; {result['seconds']:.0f} s in all."
        + (" **Smoke run (--quick): not a measurement.**" if result["quick"] else ""),
    ]
    peak = result.get("matmul_gflops")
    if peak:
        lines += [
            "",
            "**One plain matmul** on the same device and threads (the roofline the GFLOP/s "
            "columns are read against): "
            + ", ".join(f"{k}: {v:.1f} GFLOP/s" for k, v in peak.items())  # type: ignore[union-attr]
            + ". GFLOP/s counts each trial's own matmuls (forward, weight and input "
            "gradients; not the padding), over the wall time.",
        ]
    lines += [
        "",
        "| dataset | K | epochs | trials/s fit | trials/s population | examples/s fit | examples/s population | GFLOP/s fit | GFLOP/s population | speedup | max abs val diff |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:  # type: ignore[union-attr]
        gf = [f"{r[c]:.1f}" if c in r else "-" for c in ("sequential_gflops", "population_gflops")]
        lines.append(
            f"| {r['dataset']} | {r['k']} | {r['epochs']} | {r['sequential_trials_per_s']:.2f} | "
            f"{r['population_trials_per_s']:.2f} | {r['sequential_examples_per_s']:,.0f} | "
            f"{r['population_examples_per_s']:,.0f} | {gf[0]} | {gf[1]} | {r['speedup']:.2f} | "
            f"{r['max_val_diff']:.1e} |"
        )
    lines += ["", "## Against the goals (K = 16)", ""]
    on_gpu = str(result["device"]).startswith("cuda")
    for name, cpu_goal in GOALS.items():
        goal = GPU_GOAL if on_gpu else cpu_goal
        hit = [r for r in rows if r["dataset"] == name and r["k"] == 16]  # type: ignore[union-attr]
        if not hit:
            lines.append(f"- {name}: K = 16 not run")
            continue
        x = hit[0]["speedup"]
        lines.append(
            f"- {name}: x{x:.2f} (goal >= {goal:g}x on a {'GPU' if on_gpu else 'CPU'}): "
            f"{'met' if x >= goal else 'missed'}"
        )
    for name in ISSUE_SHAPES:
        hit = [r for r in rows if r["dataset"] == f"{name} 5-x-1" and r["k"] == 16]  # type: ignore[union-attr]
        if hit:
            lines.append(
                f"- ({name} at the issue's 5-x-1 sizes, not the shipped search's: "
                f"x{hit[0]['speedup']:.2f})"
            )
    return "\n".join(lines) + "\n"


def markers(device: str) -> tuple[str, str]:
    """The results block's first and last lines: one block per kind of device in a report."""
    kind = device.split(":")[0]
    if kind == "cpu":
        return "<!-- results: written by benchmarks/population.py -->", "<!-- end of results -->"
    return (
        f"<!-- results on {kind}: written by benchmarks/population.py -->",
        f"<!-- end of results on {kind} -->",
    )


def write_report(path: Path, results: str, device: str = "cpu") -> None:
    """Replace this device's results block of an existing report (its prose and the other
    devices' blocks stay), add one at its end if it has none yet, or write a new report."""
    begin, end = markers(device)
    block = f"{begin}\n{results}{end}"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    elif text:
        text = text.rstrip("\n") + f"\n\n{block}\n"
    else:
        text = (
            f"# Population training: K networks at once against one fit after another\n\n{block}\n"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--ks", nargs="+", type=int, default=list(KS))
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--issue-sizes",
        action="store_true",
        help="also Airfoil at the 5-x-1 sizes issue 11 had in mind (rows 'airfoil 5-x-1')",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: K = 1, 4, 1 epoch, 2,000 rows"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "population.json")
    parser.add_argument("--report", type=Path, default=None)
    parser.add_argument(
        "--from-json",
        type=Path,
        metavar="JSON",
        help="only render an earlier run's JSON (e.g. one brought back from a GPU machine) "
        "into the report's block for its device",
    )
    args = parser.parse_args(argv)
    if args.from_json is not None:
        result = json.loads(args.from_json.read_text(encoding="utf-8"))
        report = args.report or ROOT / "reports" / "population.md"
        write_report(report, render(result), str(result["device"]))
        print(f"wrote {report}")
        return
    if args.quick:
        args.ks, args.rounds = [k for k in args.ks if k <= 4] or [1, 4], 1
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    result = run(args)
    result["seconds"] = time.perf_counter() - start
    result["load_after"] = os.getloadavg()
    out = args.out.with_name(args.out.stem + "_quick.json") if args.quick else args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    report = args.report or (
        ROOT / "benchmarks" / "out" / "population_quick.md"
        if args.quick
        else ROOT / "reports" / "population.md"
    )
    write_report(report, render(result), str(result["device"]))
    print(f"wrote {out} and {report}")


if __name__ == "__main__":
    main()
