"""What a bfloat16 path would buy a population on this machine: one stacked training step's
forward and backward pass (``Stack.forward_saving`` + ``Stack.backward``, the part of a
population step that is matmuls) in float32 against the same stacks in bfloat16, for
K = 16 of ``benchmarks/population.py``'s networks of a dataset.

    AUTOSIZE_DATA_DIR=../shared/data .venv/bin/python benchmarks/stack_bf16.py airfoil poker

The bfloat16 side is timed with what a mixed-precision path would add per step: the
float32 master weights cast to bfloat16 and the bfloat16 gradients cast back to float32
(one copy of each flat buffer). Adam, the loss, gathers and the rest of the step are not
timed: they would stay float32. ``autosize`` has no such path (fit_population trains in
the models' own dtype); this measures whether one is worth building, on CPUs with AMX or
AVX512-BF16, where a bfloat16 matmul runs several times float32's rate
(``benchmarks/population.py``'s "one plain matmul" line).
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import population as bench  # the sibling benchmark: shapes and models

from autosize.population.fit import plan_for
from autosize.population.member import build_stack, member_shape
from autosize.population.stack import MemberShape, Stack


def stacks_for(models: list[torch.nn.Module], shapes: list[MemberShape], batch: int) -> list[Stack]:
    """The stacks ``fit_population`` would plan and build on a CPU."""
    plan = plan_for(shapes, torch.device("cpu"), batch)
    return [
        build_stack([models[r] for r in rows], [shapes[r] for r in rows], "adam") for rows in plan
    ]


def step_seconds(
    stacks: list[Stack],
    x: torch.Tensor,
    masters: list[tuple[torch.Tensor, torch.Tensor]] | None,
    reps: int,
) -> float:
    """Best of three: ``reps`` forward + backward passes over every stack (plus the casts
    of the float32 ``masters`` in and the gradients out, where given)."""
    grads = [torch.randn(s.k, x.shape[0], s.sizes[-1], dtype=s.dtype) for s in stacks]
    xs = x.to(stacks[0].dtype)
    best = math.inf
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(reps):
            for i, s in enumerate(stacks):
                if masters is not None:
                    s.flat.detach().copy_(masters[i][0])  # float32 -> bfloat16
                _out, saved = s.forward_saving(xs)
                s.backward(grads[i], saved)
                if masters is not None:
                    masters[i][1].copy_(s.grad)  # bfloat16 -> float32
        best = min(best, time.perf_counter() - start)
    return best / reps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("datasets", nargs="+", choices=bench.DATASETS)
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--reps", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread, load before {os.getloadavg()[0]:.2f}")
    for name in args.datasets:
        bundle = bench.load(name)
        config = bench.study_config(name)
        shapes, batch = bench.search_shapes(config)
        models = bench.models_for(bench.specs_for(bundle, shapes, config, args.k))
        x = bundle.train[0][:batch]
        shapes32 = [member_shape(i, m, bundle) for i, m in enumerate(models)]
        fp32 = stacks_for(models, shapes32, batch)
        half = [copy.deepcopy(m).to(torch.bfloat16) for m in models]
        bf16 = stacks_for(half, [replace(s, dtype=torch.bfloat16) for s in shapes32], batch)
        masters = [
            (s.flat.detach().float(), torch.zeros_like(s.flat, dtype=torch.float32)) for s in bf16
        ]
        singles = [stacks_for([m], [member_shape(0, m, bundle)], batch)[0] for m in models]
        t32 = step_seconds(fp32, x, None, args.reps)
        t16 = step_seconds(bf16, x, masters, args.reps)
        t1 = step_seconds(singles, x, None, args.reps)
        print(
            f"{name}: K = {args.k} in {len(fp32)} stack(s), batch {batch}; forward + backward "
            f"per batch: {args.k} single stacks float32 {t1 * 1e3:.2f} ms, stacked float32 "
            f"{t32 * 1e3:.2f} ms, stacked bfloat16 with casts {t16 * 1e3:.2f} ms "
            f"(bf16 x{t32 / t16:.2f} over stacked float32, x{t1 / t16:.2f} over singles)",
            flush=True,
        )


if __name__ == "__main__":
    main()
