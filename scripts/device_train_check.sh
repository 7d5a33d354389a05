#!/usr/bin/env bash
# Real training on one CUDA GPU through `python -m jest train`, compared with the CPU runs of the
# same arms and seed (scripts/device_train_check.py says what and why). About 2-3 minutes.
#
#   here, once, after `make reproduce`:  .venv/bin/python scripts/device_train_check.py pack
#                                         bash scripts/device_check.sh --fetch-wheels
#   on the GPU machine:                   bash scripts/device_train_check.sh
#   (this workplace's device tool:        carry [".whl", ".devdata"], timeout_s 300)
# Outputs in $OUT if set, else results/device_check/: device_train.json, each run's
# metrics.jsonl (a failed run's log instead), device_train_check.log. Exit status: 0 all runs PASS, 1 a run failed or left the tolerance, 2 no CUDA python.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/device_env.sh
OUT_DIR="${OUT:-results/device_check}"
mkdir -p "$OUT_DIR"
{
    find_cuda_python || exit 2
    [[ -f .devdata/config.resolved.json ]] || { echo ".devdata/ is missing: run 'python scripts/device_train_check.py pack' here first"; exit 2; }
    timeout 280 "$PY" scripts/device_train_check.py run --out "$OUT_DIR" "$@"
} 2>&1 | tee "$OUT_DIR/device_train_check.log"
exit "${PIPESTATUS[0]}"
