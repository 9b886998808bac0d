#!/usr/bin/env bash
# On a machine with a CUDA GPU: does serving and training really use it? First the runtime
# comparison on the GPU (bench/runtime_compare.py --device cuda: MiniLM as eager PyTorch fp32 and
# fp16, and ONNX Runtime's CUDA provider where installed, texts/s at batch 1 and 32 and parity with
# fp32 on the default dataset's test split; the CPU variants beside them), then a real fine-tune of
# the MiniLM backbone on SST-2 for a fixed number of steps; prints samples/s, peak GPU memory, dev
# accuracy and whether bf16 was used. Fails loudly (non-zero exit) if CUDA is absent or unused.
#   bash bench/gpu_check.sh [path/to/sst2]    (default: ../shared/datasets/sst2)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${1:-../shared/datasets/sst2}"
PY="${PYTHON:-.venv/bin/python}"
"$PY" - <<'PYEOF'
import sys, torch
if not torch.cuda.is_available():
    sys.exit(f"FAIL: torch {torch.__version__} sees no CUDA device (is this the CPU build?)")
print(f"GPU: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}")
PYEOF
"$PY" bench/runtime_compare.py --device cuda --require-cuda
exec "$PY" bench/sst2_finetune.py --data "$DATA" --rows 20000 --max-steps 300 --batch-size 64 \
    --learning-rate 1e-4 --require-cuda
