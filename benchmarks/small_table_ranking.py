"""Can a study on a small table tell its networks apart? (issue: "It cannot rank on small
data".) For each of scikit-learn's bundled small tables, ``autosize run --data`` with no
config at ``--timeout B`` in a real subprocess, then, read from the study:

* the finished warm-started steps, and the largest share of them that has one and the same
  validation value (goal: at most a third);
* how many finished steps repeat another exactly (same parent, same operation, same searched
  learning rate; goal: none),
  and how many steps were refused before training and why;
* the objective the defaults chose (``val_loss`` below 1,000 validation rows) and the pick's
  test metric, as reported (the test rows chose nothing).

    .venv/bin/python benchmarks/small_table_ranking.py --budget 30 \\
        --out reports/own_data/small_table_ranking.json
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

TABLES = ("breast_cancer", "wine", "iris", "diabetes")
BIN = Path(sys.executable).parent


def _table(name: str, folder: Path) -> Path:
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")(as_frame=True)
    frame = bunch.frame.rename(columns={bunch.target.name: "target"})
    path = folder / f"{name}.csv"
    frame.to_csv(path, index=False)
    return path


def summarise(trials: list[Any], maximize: bool) -> dict[str, object]:
    """The ranking figures of one study's trials (FrozenTrials), see the module docstring."""
    from autosize.search.store import record

    read = [(t, record.read(t)) for t in trials]
    warm = [(t, r) for t, r in read if r.is_warmstart]
    done = [(t, r) for t, r in warm if t.state.name == "COMPLETE" and t.values]
    values = collections.Counter(round(float(t.values[0]), 6) for t, _ in done)
    # the same step: same parent, same operation and the same searched lr (if any)
    steps = collections.Counter(
        (str(r.parent), r.operation, t.params.get("train/lr")) for t, r in done
    )
    refused = collections.Counter(
        (r.pruned_reason or "").split(" (")[0].split(":")[0]
        for t, r in warm
        if t.state.name == "PRUNED" and not t.intermediate_values
    )
    best = (max if maximize else min)(done, key=lambda tr: tr[0].values[0]) if done else None
    return {
        "finished_steps": len(done),
        "largest_tie_share": max(values.values()) / len(done) if done else None,
        "distinct_values": len(values),
        "repeated_steps": sum(n - 1 for n in steps.values() if n > 1),
        "refused_before_training": dict(refused),
        "best_value": None if best is None else float(best[0].values[0]),
        "best_test": None if best is None else dict(best[1].test),
        "best_architecture": None if best is None else best[1].architecture,
    }


def run_table(name: str, budget: float, folder: Path) -> dict[str, object]:
    import optuna

    path = _table(name, folder)
    cmd = [str(BIN / "autosize"), "run", "--data", str(path), "--target", "target",
           "--timeout", f"{budget:g}", "-q"]  # fmt: skip
    start = time.time()
    proc = subprocess.run(cmd, cwd=folder, capture_output=True, text=True, check=False)
    wall = time.time() - start
    if proc.returncode != 0:
        return {"table": name, "error": proc.stderr.strip().splitlines()[-1:]}
    storage = f"sqlite:///{folder / '.state' / (path.stem + '.db')}"
    study = optuna.load_study(study_name=path.stem, storage=storage)
    meta = study.user_attrs.get("autosize", {})
    maximize = study.direction.name == "MAXIMIZE"
    rows = pd.read_csv(path).shape[0]
    return {
        "table": name,
        "rows": rows,
        "objective": meta.get("objective"),
        "validation_rows": round(rows * 0.8 * 0.2),  # the default splits
        "wall_seconds": round(wall, 1),
        **summarise(study.get_trials(deepcopy=False), maximize),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget", type=float, default=30.0)
    parser.add_argument("--tables", default=",".join(TABLES))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    results = []
    for name in args.tables.split(","):
        with tempfile.TemporaryDirectory(prefix=f"rank-{name}-") as tmp:
            results.append(run_table(name, args.budget, Path(tmp)))
        print(json.dumps(results[-1]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = {"budget": args.budget, "load": list(np.round(__import__("os").getloadavg(), 2)),
              "results": results}  # fmt: skip
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
