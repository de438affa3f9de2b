"""The probe behind studies/census.toml's ``[seed] embedding`` (reports/search_vs_scratch.md, run 9).

Single MLPs on Census with and without a periodic ("PLR") embedding of the 6 numeric columns,
trained by a plain PyTorch loop (AdamW at weight decay 0.05, cosine over the run, batch 128,
best-validation epoch kept), 3 seeds each; prints each run's validation and test accuracy at its
best-validation epoch. Each argument is one JSON object of ``run``'s keywords:

    AUTOSIZE_DATA_DIR=../shared/data .venv/bin/python benchmarks/census_embedding_probe.py \\
        '{"emb": true, "width": 32, "depth": 1, "sigma": 3.0}' '{"emb": false, "width": 32, "depth": 1}'

It has its own PLR module (the maths of autosize's ``PeriodicFeatures``), as it was run.
"""

from __future__ import annotations

import json
import math
import sys
import time

import torch
from torch import nn

from autosize.data.loader import load_dataset

torch.set_num_threads(2)
BUNDLE = load_dataset("census", seed=0)  # the shipped split
XTR, YTR = BUNDLE.train
NNUM = BUNDLE.numeric_features


class PLR(nn.Module):
    def __init__(self, n: int, k: int, d: int, sigma: float) -> None:
        super().__init__()
        self.c = nn.Parameter(torch.randn(n, k) * sigma)
        self.w = nn.Parameter(torch.randn(n, 2 * k, d) / math.sqrt(2 * k))
        self.b = nn.Parameter(torch.zeros(n, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = 2 * math.pi * self.c[None] * x[..., None]
        e = torch.cat([torch.cos(v), torch.sin(v)], -1)
        return torch.relu(torch.einsum("bnk,nkd->bnd", e, self.w) + self.b).flatten(1)


class Net(nn.Module):
    def __init__(self, emb: bool, width: int, depth: int, sigma: float, k: int = 16, d: int = 16):
        super().__init__()
        self.emb = PLR(NNUM, k, d, sigma) if emb else None
        n_in = (NNUM * d if emb else NNUM) + XTR.shape[1] - NNUM
        layers: list[nn.Module] = []
        for _ in range(depth):
            layers += [nn.Linear(n_in, width), nn.ReLU()]
            n_in = width
        layers.append(nn.Linear(n_in, 2))
        self.mlp = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        num, cat = x[:, :NNUM], x[:, NNUM:]
        if self.emb is not None:
            num = self.emb(num)
        return self.mlp(torch.cat([num, cat], 1))


def accuracy(model: nn.Module, split: str) -> float:
    x, y = BUNDLE.split(split)  # type: ignore[arg-type]
    model.eval()
    with torch.no_grad():
        out = (model(x).argmax(1) == y).float().mean().item()
    model.train()
    return out


def run(
    *,
    emb: bool,
    width: int,
    depth: int,
    seed: int,
    sigma: float = 1.0,
    epochs: int = 20,
    lr: float = 1e-3,
    weight_decay: float = 0.05,
    batch_size: int = 128,
) -> tuple[float, float, int]:
    torch.manual_seed(seed)
    model = Net(emb, width, depth, sigma)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    n = len(XTR)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * math.ceil(n / batch_size))
    best = (0.0, 0.0, 0)
    for epoch in range(epochs):
        perm = torch.randperm(n)
        for i in range(0, n, batch_size):
            idx = perm[i : i + batch_size]
            loss = nn.functional.cross_entropy(model(XTR[idx]), YTR[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        val = accuracy(model, "val")
        if val > best[0]:
            best = (val, accuracy(model, "test"), epoch)
    return best


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        config = json.loads(arg)
        for seed in (0, 1, 2):
            t = time.time()
            val, test, epoch = run(**config, seed=seed)
            print(
                f"{config} seed {seed}: val {val:.4f} test {test:.4f} "
                f"(epoch {epoch}) {time.time() - t:.0f} s",
                flush=True,
            )
