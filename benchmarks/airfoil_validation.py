"""Which Airfoil validation split picks the network that is best on an unseen chord?

Airfoil's test split is the chord-0.1016 rows. A study never sees them: it ranks its
networks by a validation split and keeps the best. Across the study runs that held out
chord 0.2286 (266 rows) for validation, a lower validation value went with a *higher*
test error (``benchmarks/val_vs_test.py``: Spearman -0.38 over 32 runs). This benchmark
asks which split ranks networks better, without running a study per split.

For each validation scheme (one held-out chord, two, or ``mixed 20%``: a seeded 20% of
the training chords' rows, as ``val_chord = "random"`` does) it trains the same N
networks (random depth 1-4, widths 32 to 512, learning rates log-uniform in [3e-4,
1e-2], one seed each: the kind of spread a search tries) together with
``fit_population``, for ``--epochs`` epochs with ``restore_best`` (so the validation
split also picks each network's epoch, as in the search), and records each network's
best validation MSE and its test MSE. Per scheme:

  rho        Spearman(validation, test) over the N networks
  pick@m     the mean test MSE of the network with the best validation among m of them
             (every m-subset, estimated from 4,000 random ones): what a search choosing
             among m candidates gets. m = N is the one pick over all
  best/mean  the best and the mean test MSE of the N networks (what a perfect and a
             random choice would get)

The schemes change the training data too (a held-out chord is not trained on), so their
test values differ for that reason as well: pick@m is what a user gets from each.

Choosing a validation scheme by the test chord's error would tune on the test set. With
``--test-chords`` the training chords stand in for the test chord one at a time (the
real test rows are then left out altogether), and a last table averages each kind of
scheme over them (``reports/airfoil_validation.md``: they favour the random split, and
the real test chord does not).

    # the choice: each training chord as the test chord (about 15 minutes on 2 cores)
    .venv/bin/python benchmarks/airfoil_validation.py --networks 32 --epochs 150 \
        --test-chords 0.0254,0.0508,0.1524,0.2286,0.3048 \
        --schemes "0.0254,0.0508,0.1524,0.2286,0.3048,mixed 20%"
    # the real test chord, every scheme (about 6 minutes)
    .venv/bin/python benchmarks/airfoil_validation.py --networks 32 --epochs 150
    .venv/bin/python benchmarks/airfoil_validation.py --quick        # smoke run

Writes benchmarks/out/airfoil_validation.json (``--out``) and prints markdown tables.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from scipy.stats import spearmanr  # type: ignore[import-untyped]

from autosize.data import DataBundle, load_dataset
from autosize.data.airfoil import CHORDS, TEST_CHORD, AirfoilOptions, chord_split
from autosize.errors import DataError
from autosize.evaluation import evaluate
from autosize.models import ArchSpec, DenseLayer, build_model
from autosize.population import fit_population

# name -> ``val_chord``: the held-out validation chords, or "random": a seeded 20% of the
# training chords' rows.
Scheme = tuple[float, ...] | Literal["random"]
SCHEMES: dict[str, Scheme] = {
    "0.2286": (0.2286,),
    "0.0254": (0.0254,),
    "0.0508": (0.0508,),
    "0.1524": (0.1524,),
    "0.3048": (0.3048,),
    "0.0508+0.2286": (0.0508, 0.2286),
    "0.1524+0.2286": (0.1524, 0.2286),
    "0.0254+0.3048": (0.0254, 0.3048),
    "mixed 20%": "random",
}


def bundle_for(base: DataBundle, test_chord: float, scheme: Scheme, seed: int) -> DataBundle | None:
    """``base``'s 1,503 rows split again: test = ``test_chord``'s rows, validation by
    ``scheme``, training the rest. With a test chord other than the real one (0.1016), the
    real test rows are left out altogether, so nothing here is chosen by them. The inputs
    keep ``base``'s standardisation; the target's mean and scale follow the training rows.
    None where the scheme holds out the test chord itself."""
    x = torch.cat([base.train[0], base.val[0], base.test[0]])
    y = torch.cat([base.train[1], base.val[1], base.test[1]])
    mean, std = base.preprocessing.steps["mean"], base.preprocessing.steps["std"]
    chord = (x[:, 2].double().numpy() * std[2] + mean[2]).round(4)  # type: ignore[index]
    options = AirfoilOptions(val_chord=scheme, val_fraction=0.2)
    try:
        train, val, test = chord_split(chord, options, seed, test_chord=test_chord)
    except DataError:
        return None  # the scheme validates on the test chord

    def part(rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.from_numpy(rows)
        return x[idx], y[idx]

    y_train = part(train)[1].double()
    return replace(
        base,
        train=part(train),
        val=part(val),
        test=part(test),
        target_mean=float(y_train.mean()),
        target_std=float(y_train.std(unbiased=False)),
        notes={"split": "chord", "test_chord": test_chord, "val": str(scheme)},
    )


def sample_configs(n: int, seed: int) -> list[tuple[tuple[int, ...], float]]:
    rng = np.random.default_rng(seed)
    configs = []
    for _ in range(n):
        depth = int(rng.integers(1, 5))
        widths = tuple(int(w) for w in rng.choice([32, 64, 128, 256, 512], size=depth))
        lr = float(np.exp(rng.uniform(math.log(3e-4), math.log(1e-2))))
        configs.append((widths, lr))
    return configs


def run_scheme(
    bundle: DataBundle, configs: list[tuple[tuple[int, ...], float]], epochs: int, seed: int
) -> list[dict[str, Any]]:
    specs = [
        ArchSpec(
            layers=tuple(DenseLayer(w) for w in widths),
            input_shape=bundle.input_shape,
            n_outputs=bundle.n_outputs,
            target_shift=bundle.target_mean,
            target_scale=bundle.target_std,
        )
        for widths, _ in configs
    ]
    models = [build_model(spec, seed=seed + i) for i, spec in enumerate(specs)]
    histories = fit_population(
        models,
        bundle,
        epochs=epochs,
        lr=[lr for _, lr in configs],
        seed=[seed + i for i in range(len(models))],
        batch_size=128,
        device="cpu",
        restore_best=True,
    )
    rows: list[dict[str, Any]] = []
    for (widths, lr), model, history in zip(configs, models, histories, strict=True):
        val = evaluate(model, bundle, "val", device="cpu")["mse"]
        test = evaluate(model, bundle, "test", device="cpu")["mse"]
        rows.append(
            {
                "widths": list(widths),
                "lr": lr,
                "val_mse": val,
                "test_mse": test,
                "stopped": history.stopped,
            }
        )
    return rows


def pick_at(val: np.ndarray, test: np.ndarray, m: int, draws: int, seed: int) -> float:
    """Mean test of the best-validation network among m, over random m-subsets."""
    if m >= len(val):
        return float(test[int(np.argmin(val))])
    rng = np.random.default_rng(seed)
    subsets = np.argsort(rng.random((draws, len(val))), axis=1)[:, :m]
    chosen = subsets[np.arange(draws), np.argmin(val[subsets], axis=1)]
    return float(test[chosen].mean())


def summarise(rows: list[dict[str, Any]], ms: list[int], seed: int) -> dict[str, float]:
    ok = [r for r in rows if math.isfinite(r["val_mse"]) and math.isfinite(r["test_mse"])]
    val = np.array([r["val_mse"] for r in ok])
    test = np.array([r["test_mse"] for r in ok])
    out: dict[str, float] = {
        "n": float(len(ok)),
        "rho": float(spearmanr(val, test).statistic),
        "best": float(test.min()),
        "mean": float(test.mean()),
        "val_best": float(val.min()),
    }
    for m in ms:
        out[f"pick@{min(m, len(ok))}"] = pick_at(val, test, m, 4000, seed)
    return out


def kind(scheme: Scheme) -> str:
    return "mixed 20%" if isinstance(scheme, str) else f"{len(scheme)} chord(s)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=48, help="N networks per scheme")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0, help="the networks' configs and seeds")
    parser.add_argument("--schemes", default=",".join(SCHEMES), help="comma-separated names")
    parser.add_argument(
        "--test-chords",
        default=str(TEST_CHORD),
        help="comma-separated chords to test on, one after another (default: the real one); "
        "the training chords as stand-in tests choose a scheme without the real test rows",
    )
    parser.add_argument("--quick", action="store_true", help="8 networks, 5 epochs, 2 schemes")
    parser.add_argument("--data-dir", default=os.environ.get("AUTOSIZE_DATA_DIR"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/airfoil_validation.json"))
    args = parser.parse_args(argv)
    names = [s.strip() for s in args.schemes.split(",") if s.strip()]
    for name in names:
        if name not in SCHEMES:
            parser.error(f"--schemes: unknown scheme {name!r}; known: {', '.join(SCHEMES)}")
    try:
        test_chords = [float(c) for c in args.test_chords.split(",")]
    except ValueError:
        parser.error(f"--test-chords: expected numbers, got {args.test_chords!r}")
    for chord in test_chords:
        if not any(np.isclose(chord, c) for c in CHORDS):
            parser.error(f"--test-chords: {chord} is not one of {CHORDS}")
    if args.quick:
        args.networks, args.epochs, names = 8, 5, names[:2]
    base = load_dataset("airfoil", data_dir=args.data_dir)
    configs = sample_configs(args.networks, args.seed)
    ms = sorted({min(m, args.networks) for m in (8, 32, args.networks)})
    results: dict[str, dict[str, object]] = {}
    start = time.perf_counter()
    load = os.getloadavg()[0]
    print(f"# {args.networks} networks, {args.epochs} epochs, seed {args.seed}, load {load:.2f}")
    header = " | ".join(f"pick@{m}" for m in ms)
    for test_chord in test_chords:
        print(f"\n## test chord {test_chord}\n")
        print(f"| validation | val rows | train rows | rho | {header} | best | mean |")
        print("|---|---:|---:|---:|" + "---:|" * (len(ms) + 2))
        per_chord: dict[str, object] = {}
        results[str(test_chord)] = per_chord
        for name in names:
            bundle = bundle_for(base, test_chord, SCHEMES[name], args.seed)
            if bundle is None:
                continue
            t0 = time.perf_counter()
            rows = run_scheme(bundle, configs, args.epochs, 1000 * args.seed)
            summary = summarise(rows, ms, args.seed)
            per_chord[name] = {
                "kind": kind(SCHEMES[name]),
                "sizes": bundle.sizes,
                "seconds": time.perf_counter() - t0,
                "summary": summary,
                "networks": rows,
            }
            picks = " | ".join(f"{summary[f'pick@{m}']:.3f}" for m in ms)
            print(
                f"| {name} | {bundle.sizes['val']} | {bundle.sizes['train']} | "
                f"{summary['rho']:+.2f} | {picks} | {summary['best']:.3f} | "
                f"{summary['mean']:.3f} |",
                flush=True,
            )
    if len(test_chords) > 1:
        # Test errors differ in scale between chords: each pick is divided by its chord's
        # reference, the mean test MSE of all networks of all schemes at that chord, and the
        # ratios are averaged geometrically. Within a chord the picks compare as they are.
        print("\n## over the test chords: pick / that chord's mean test MSE (lower is better)\n")
        print(f"| scheme kind | runs | rho | {header} | mean |")
        print("|---|---:|---:|" + "---:|" * (len(ms) + 1))
        kinds: dict[str, list[tuple[dict[str, float], float]]] = {}
        for per_chord in results.values():
            entries = [e for e in per_chord.values() if isinstance(e, dict)]
            reference = float(np.mean([e["summary"]["mean"] for e in entries]))
            for entry in entries:
                kinds.setdefault(entry["kind"], []).append((entry["summary"], reference))
        for name, summaries in sorted(kinds.items()):
            ratios = " | ".join(
                f"{math.exp(np.mean([math.log(x[key] / ref) for x, ref in summaries])):.3f}"
                for key in [f"pick@{m}" for m in ms] + ["mean"]
            )
            rho = np.mean([x["rho"] for x, _ in summaries])
            print(f"| {name} | {len(summaries)} | {rho:+.2f} | {ratios} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "networks": args.networks,
                "epochs": args.epochs,
                "seed": args.seed,
                "load_before": load,
                "seconds": time.perf_counter() - start,
                "torch_threads": torch.get_num_threads(),
                "test_chords": results,
            },
            indent=1,
        )
    )
    print(f"\nwrote {args.out} ({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
