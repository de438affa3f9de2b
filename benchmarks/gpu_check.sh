#!/usr/bin/env bash
# The GPU checks as one prepared script, for a lent device machine (see
# benchmarks/gpu_prepare.sh, run here first): the tests marked `gpu`, then the population
# benchmark (issue 11's K = 1, 4, 16, 64 against one fit after another) on CUDA. Results
# go to $OUT (the device tool brings them back), or benchmarks/out/device/result.
# About 5 minutes on an H200; each part has its own time limit, so one that hangs
# leaves the others' results.
set -uo pipefail
cd "$(dirname "$0")/.."
dev=benchmarks/out/device
OUT=${OUT:-$dev/result}
mkdir -p "$OUT"
PY=${PY:-python3}
if [ -d "$dev/whl" ]; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/autosize-site "$dev"/whl/*.whl || exit 1
  export PYTHONPATH="/tmp/autosize-site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
else
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
[ -d "$dev/data" ] && export AUTOSIZE_DATA_DIR="$PWD/$dev/data"
export PYTHONUNBUFFERED=1
{
  date -u
  nvidia-smi 2>&1 | head -15
  "$PY" -c "import torch, optuna; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'available', torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else ''); \
print('optuna', optuna.__version__)"
} 2>&1 | tee "$OUT/machine.txt"
timeout 240 "$PY" -m pytest -m gpu -p no:cacheprovider -q tests/test_cuda.py tests/test_train.py tests/test_population.py 2>&1 | tee "$OUT/pytest_gpu.log"
echo "pytest -m gpu: exit ${PIPESTATUS[0]}" | tee -a "$OUT/pytest_gpu.log"
# Into a copy of the report: its CUDA block is filled in and the rest left as it is, so
# the copy that comes back can replace reports/population.md (or, from the JSON alone:
# benchmarks/population.py --from-json population_cuda.json).
cp reports/population.md "$OUT/population.md"
timeout 360 "$PY" benchmarks/population.py --device cuda --rounds 2 \
  --out "$OUT/population_cuda.json" --report "$OUT/population.md" 2>&1 | tee "$OUT/population.log"
echo "population benchmark: exit ${PIPESTATUS[0]}" | tee -a "$OUT/population.log"
