#!/usr/bin/env bash
# Prepare the one GPU check (benchmarks/gpu_check.sh) for a lent device machine, here,
# where pip can reach a registry. That machine has Python 3.12 with PyTorch, numpy,
# pandas, scikit-learn, scipy, pyarrow, matplotlib, safetensors, tqdm, pytest and
# hypothesis, but no Optuna and no network: this puts Optuna and what it needs as
# wheels, and the data files the benchmark reads (Census, Airfoil, Poker; Add10 is
# generated), under benchmarks/out/device/ (ignored by git; about 5 MB), which the
# device tool's `carry` takes along:
#
#   benchmarks/gpu_prepare.sh                       # here, once
#   run(command="bash benchmarks/gpu_check.sh", carry=["benchmarks/out/device"], timeout_s=540)
#
# The wheel versions are the ones this checkout's .venv runs (the tested ones).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA=${AUTOSIZE_DATA_DIR:-../shared/data}
dest=benchmarks/out/device
rm -rf "$dest"
mkdir -p "$dest/whl" "$dest/data"
version() { "$PY" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$1"; }
wanted=()
for pkg in optuna alembic colorlog sqlalchemy mako; do
  wanted+=("$pkg==$(version "$pkg")")
done
# --no-deps: the rest of what these need is on the device machine already.
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
  platforms+=(--platform "$p")
done
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp "${platforms[@]}" -d "$dest/whl" "${wanted[@]}"
for f in adult/adult.data adult/adult.test airfoil/airfoil_self_noise.dat poker/poker-hand-training-true.data; do
  if [ ! -f "$DATA/$f" ]; then
    echo "gpu_prepare: $DATA/$f is missing (set AUTOSIZE_DATA_DIR to the data mirror, or run autosize data fetch)" >&2
    exit 2
  fi
  mkdir -p "$dest/data/$(dirname "$f")"
  cp "$DATA/$f" "$dest/data/$f"
done
echo "gpu_prepare: $(ls "$dest/whl" | wc -l) wheels and 4 data files in $dest ($(du -sh "$dest" | cut -f1))"
