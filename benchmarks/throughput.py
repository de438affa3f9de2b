"""Training throughput of ``autosize.train.fit`` against hand-written loops, on MNIST-shaped data.

Loops compared, same model, same initial weights, same optimizer (fused Adam
from ``make_optimizer``), one process, one run:

  fit         autosize.train.fit, training phase as fit's own records clock it
              (the "fit wall" column also counts its validation on 5,000 examples
              after every epoch and when the time budget cuts an epoch)
  minimal     hand-written: one permutation per epoch, permuted copy, contiguous slices
  dataloader  DataLoader(TensorDataset(x, y), shuffle=True)
  torchvision torchvision.datasets.MNIST(..., transform=ToTensor()) through a DataLoader
              (the real raw files from $AUTOSIZE_DATA_DIR or ../shared/data; skipped if absent)

Each cell is a 0.5 s warm-up, then ``--epochs`` whole epochs timed (whole, so
the once-per-epoch permuted copy is charged fairly), in ``--rounds``
interleaved rounds; the best round counts (other processes on a shared
machine only ever slow a cell down). The CNN row uses the first
``--cnn-train`` examples per epoch (per-example cost does not depend on it). The roofline is the GFLOP/s of a
large float32 matmul measured in the same run (before and after). Training
FLOPs per example are counted from the model (see
``train_flops_per_example``: forward, weight gradients, and input gradients
for every layer but the first).

    .venv/bin/python benchmarks/throughput.py            # ~5 minutes on 2 CPU cores
    .venv/bin/python benchmarks/throughput.py --quick    # ~1.5 minutes, batch 128 only

Prints a table and writes benchmarks/out/throughput.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from autosize.data.bundle import DataBundle, Preprocessing
from autosize.train import fit, make_optimizer, resolve_device

ROOT = Path(__file__).resolve().parents[1]
N_TRAIN, N_VAL = 55_000, 5_000
LR = 1e-3

# ---------------------------------------------------------------- models and FLOPs


def mlp(hidden: int) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, 10))


def cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10),
    )  # fmt: skip


def train_flops_per_example(model: nn.Module) -> float:
    """FLOPs of one training example, counted layer by layer (Linear and Conv2d; 1 MAC = 2 FLOPs).

    Forward: 1 x MACs. Backward: 1 x MACs for the weight gradient, plus 1 x MACs
    for the input gradient of every layer except the first (the data needs no
    gradient). For a one-hidden-layer MLP on 784 inputs that is about 4 x params,
    not the usual 6 x params, because the first layer holds most of the weights.
    """
    macs = input_grad_macs = 0

    def count(module: nn.Module, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal macs, input_grad_macs
        if isinstance(module, nn.Linear):
            m = module.in_features * module.out_features * out.shape[:-1].numel()
        elif isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            m = out.numel() * module.in_channels // module.groups * k
        else:
            return
        macs += m
        if inputs[0].requires_grad:
            input_grad_macs += m

    handles = [m.register_forward_hook(count) for m in model.modules()]
    with torch.enable_grad():
        model(torch.zeros(1, 1, 28, 28))
    for h in handles:
        h.remove()
    return 2 * (2 * macs + input_grad_macs)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_gflops(device: torch.device, n: int = 2048, reps: int = 5) -> float:
    """The roofline: best of ``reps`` n x n float32 matmuls."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    for _ in range(2):
        a @ b
    best = float("inf")
    for _ in range(reps):
        sync(device)
        t = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


# ---------------------------------------------------------------- the loops


def make_bundle(device: torch.device) -> DataBundle:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N_TRAIN + N_VAL, 1, 28, 28, generator=g)
    y = torch.randint(0, 10, (N_TRAIN + N_VAL,), generator=g)
    x, y = x.to(device), y.to(device)
    train, val = (x[:N_TRAIN], y[:N_TRAIN]), (x[N_TRAIN:], y[N_TRAIN:])
    return DataBundle(
        name="mnist-shaped-random", task="classification", train=train, val=val, test=val,
        input_shape=(1, 28, 28), n_outputs=10, preprocessing=Preprocessing("none"),
    )  # fmt: skip


# A loop runs one warm-up of ``warm`` seconds, then ``epochs`` whole epochs, and returns
# (examples, training seconds, wall seconds) of the timed epochs. Whole epochs matter: the
# permuted copy is paid once per epoch, so a cell cut mid-epoch would overcharge it.
Loop = Callable[[nn.Module, int, float, int], tuple[int, float, float]]


def fit_loop(bundle: DataBundle, device: torch.device) -> Loop:
    def run(
        model: nn.Module, batch_size: int, warm: float, epochs: int
    ) -> tuple[int, float, float]:
        kwargs = {"lr": LR, "batch_size": batch_size, "device": device}
        fit(model, bundle, max_seconds=warm, **kwargs)
        t = time.perf_counter()
        history = fit(model, bundle, epochs=epochs, **kwargs)
        wall = time.perf_counter() - t
        seen = sum(r.train_examples for r in history.epochs)
        # fit's own training-phase clock (permutation + batches, synced; validation excluded).
        train = sum(r.train_examples / r.examples_per_second for r in history.epochs)
        return seen, train, wall

    return run


def minimal_loop(x: torch.Tensor, y: torch.Tensor, device: torch.device) -> Loop:
    """What fit does, written out by hand with nothing else."""

    def epoch(
        model: nn.Module, opt: torch.optim.Optimizer, g: torch.Generator, bs: int, deadline: float
    ) -> int:
        n, seen = x.shape[0], 0
        perm = torch.randperm(n, generator=g).to(device)
        xs, ys = x[perm], y[perm]
        for start in range(0, n, bs):
            loss = F.cross_entropy(model(xs[start : start + bs]), ys[start : start + bs])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            seen += min(bs, n - start)
            if time.perf_counter() >= deadline:
                break
        return seen

    def run(
        model: nn.Module, batch_size: int, warm: float, epochs: int
    ) -> tuple[int, float, float]:
        model.train()
        opt = make_optimizer("adam", model.parameters(), lr=LR)
        g = torch.Generator().manual_seed(0)
        epoch(model, opt, g, batch_size, time.perf_counter() + warm)
        sync(device)
        t = time.perf_counter()
        seen = sum(epoch(model, opt, g, batch_size, float("inf")) for _ in range(epochs))
        sync(device)
        wall = time.perf_counter() - t
        return seen, wall, wall

    return run


def loader_loop(dataset: torch.utils.data.Dataset, device: torch.device) -> Loop:
    """The conventional loop: DataLoader(dataset, shuffle=True), num_workers=0 (the default)."""

    def epoch(
        model: nn.Module, opt: torch.optim.Optimizer, loader: Iterable, deadline: float
    ) -> int:
        seen = 0
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            seen += len(yb)
            if time.perf_counter() >= deadline:
                break
        return seen

    def run(
        model: nn.Module, batch_size: int, warm: float, epochs: int
    ) -> tuple[int, float, float]:
        model.train()
        opt = make_optimizer("adam", model.parameters(), lr=LR)
        loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True)
        epoch(model, opt, loader, time.perf_counter() + warm)
        sync(device)
        t = time.perf_counter()
        seen = sum(epoch(model, opt, loader, float("inf")) for _ in range(epochs))
        sync(device)
        wall = time.perf_counter() - t
        return seen, wall, wall

    return run


def mnist_root() -> Path | None:
    env = os.environ.get("AUTOSIZE_DATA_DIR")
    for root in ([Path(env)] if env else []) + [ROOT.parent / "shared" / "data"]:
        if (root / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file():
            return root
    return None


# ---------------------------------------------------------------- driver


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="batch 128 only, one round")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds per row")
    parser.add_argument("--epochs", type=int, default=1, help="timed epochs per cell")
    parser.add_argument(
        "--cnn-train", type=int, default=5_000, help="training examples per CNN epoch (it is slow)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch intra-op threads (default: torch's choice); 1 is steadier on a shared machine",
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "throughput.json")
    args = parser.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 2)
    warm = 0.5
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    def load() -> list[float]:
        return list(os.getloadavg()) if hasattr(os, "getloadavg") else []

    load_before = load()
    t_run = time.perf_counter()
    roofline_before = matmul_gflops(device)
    bundle = make_bundle(device)
    x_cpu, y_cpu = (t.cpu() for t in bundle.train)
    root = mnist_root()
    mnist = None
    if root is not None:
        from torchvision import datasets, transforms

        mnist = datasets.MNIST(
            str(root), train=True, download=False, transform=transforms.ToTensor()
        )
    else:
        print(
            "note: no MNIST mirror ($AUTOSIZE_DATA_DIR or ../shared/data): torchvision row skipped"
        )

    cells: list[tuple[str, Callable[[], nn.Module], int, int]] = [
        (f"mlp-{h}", lambda h=h: mlp(h), bs, N_TRAIN) for h in (64, 512, 2048) for bs in (128, 512)
    ]
    cells.append(("cnn", cnn, 128, args.cnn_train))
    if args.quick:
        cells = [c for c in cells if c[2] == 128]

    rows = []
    for name, build, bs, n in cells:
        sub = bundle.subset(train=n)
        x, y = sub.train
        loops: dict[str, Loop] = {
            "fit": fit_loop(sub, device),
            "minimal": minimal_loop(x, y, device),
            "dataloader": loader_loop(torch.utils.data.TensorDataset(x_cpu[:n], y_cpu[:n]), device),
        }
        if mnist is not None:
            loops["torchvision"] = loader_loop(torch.utils.data.Subset(mnist, range(n)), device)
        torch.manual_seed(0)
        reference = build()
        flops = train_flops_per_example(reference)
        params = sum(p.numel() for p in reference.parameters())
        best: dict[str, float] = {}
        for _ in range(rounds):
            for loop_name, loop in loops.items():
                model = build().to(device)
                model.load_state_dict(reference.state_dict())
                seen, train, wall = loop(model, bs, warm, args.epochs)
                best[loop_name] = max(best.get(loop_name, 0.0), seen / train)
                if loop_name == "fit":
                    best["fit_wall"] = max(best.get("fit_wall", 0.0), seen / wall)
        row = {
            "model": name,
            "batch_size": bs,
            "train_examples_per_epoch": n,
            "params": params,
            "train_flops_per_example": flops,
            "examples_per_second": best,
            "gflops": {k: v * flops / 1e9 for k, v in best.items()},
            "fit_over_minimal": best["fit"] / best["minimal"],
            "fit_wall_over_minimal": best["fit_wall"] / best["minimal"],
            "fit_over_dataloader": best["fit"] / best["dataloader"],
            "fit_over_torchvision": best["fit"] / best["torchvision"]
            if "torchvision" in best
            else None,
        }
        rows.append(row)
        print(f"  done {name} batch {bs}: fit {best['fit']:.0f} ex/s", flush=True)
    roofline_after = matmul_gflops(device)
    load_after = load()
    roofline = max(roofline_before, roofline_after)
    for i, row in enumerate(rows):
        row["fit_fraction_of_roofline"] = row["gflops"]["fit"] / roofline
        print_row(row, roofline, header=i == 0)

    result = {
        "command": " ".join(
            [".venv/bin/python", "benchmarks/throughput.py", *(argv or sys.argv[1:])]
        ),
        "machine": {
            "device": str(device),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "processor": platform.processor(),
        },
        "load_average_before": load_before,
        "load_average_after": load_after,
        "run_seconds": time.perf_counter() - t_run,
        "epochs_per_cell": args.epochs,
        "rounds": rounds,
        "roofline_gflops": {"before": roofline_before, "after": roofline_after},
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"\nroofline (2048^3 float32 matmul): {roofline_before:.1f} GFLOP/s before, "
        f"{roofline_after:.1f} after; load average before {fmt_load(load_before)}, "
        f"after {fmt_load(load_after)}; {result['run_seconds']:.0f} s"
    )
    print(
        f"fit/minimal: min {min(r['fit_over_minimal'] for r in rows):.2f}, "
        f"median {statistics.median(r['fit_over_minimal'] for r in rows):.2f}; "
        f"fit/dataloader (MLPs): min "
        f"{min(r['fit_over_dataloader'] for r in rows if r['model'] != 'cnn'):.2f}"
    )
    print(f"wrote {args.out}")
    return 0


def fmt_load(load: list[float]) -> str:
    return " / ".join(f"{v:.2f}" for v in load) or "n/a"


def print_row(row: dict, roofline: float, *, header: bool) -> None:
    eps = row["examples_per_second"]
    if header:
        print(
            f"{'model':<9} {'batch':>5} {'fit':>9} {'fit wall':>9} {'minimal':>9} {'dataldr':>9} {'torchvis':>9} "
            f"{'fit/min':>7} {'fit/DL':>7} {'fit/tv':>7} {'fit GF/s':>8} {'%roof':>6}"
            "   (examples/s; fit = training phase, fit wall = with validation)"
        )
    tv = eps.get("torchvision")
    tv_eps = f"{tv:.0f}" if tv else "-"
    tv_ratio = f"{row['fit_over_torchvision']:.1f}" if tv else "-"
    print(
        f"{row['model']:<9} {row['batch_size']:>5} {eps['fit']:>9.0f} {eps['fit_wall']:>9.0f} {eps['minimal']:>9.0f} "
        f"{eps['dataloader']:>9.0f} {tv_eps:>9} "
        f"{row['fit_over_minimal']:>7.2f} {row['fit_over_dataloader']:>7.2f} "
        f"{tv_ratio:>7} "
        f"{row['gflops']['fit']:>8.1f} {100 * row['gflops']['fit'] / roofline:>5.0f}%",
        flush=True,
    )


if __name__ == "__main__":
    raise SystemExit(main())
