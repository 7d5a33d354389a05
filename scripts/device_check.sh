#!/usr/bin/env bash
# Device check for issue #6: MFU, ours/plain and the JEST/uniform step ratio of the 125M
# (GPT-2-small-like) shape on one CUDA GPU, bf16 autocast. Finishes in under 8 minutes on
# one H100/H200 (two bench runs, each under a hard `timeout`; budget below).
#
# How to run it
#   On any machine with a CUDA GPU, from the repository root:
#       bash scripts/device_check.sh
#   It needs a Python whose torch sees the GPU: scripts/device_env.sh says which it picks and
#   how the harness is made importable there.
#
#   On this workplace's device machine (no network there), prepare the wheels once here:
#       bash scripts/device_check.sh --fetch-wheels     # jsonschema & deps for CPython 3.12 x86_64 -> .whl/
#   then call the device tool with
#       command: bash scripts/device_check.sh     carry: [".whl"]     timeout_s: 540
#
# Outputs: $OUT if set (the device tool's folder), else results/device_check/:
#   device_check.log                  everything printed, nvidia-smi included
#   bench_125m_bf16.json              eager: MFU (train, score), ours/plain, JEST/uniform at f=0.5/0.8/0.9
#   bench_125m_bf16_compile.json      torch.compile: MFU and ours/plain (set DEVICE_CHECK_COMPILE=0 to skip)
# Exit status: 0 when both runs finished (targets are printed as PASS/FAIL, not enforced;
# set DEVICE_CHECK_STRICT=1 to pass --check), 2 when no usable Python/torch/CUDA was found.
set -uo pipefail
cd "$(dirname "$0")/.."

source scripts/device_env.sh
if [[ "${1:-}" == "--fetch-wheels" ]]; then
    fetch_device_wheels
    exit $?
fi

OUT_DIR="${OUT:-results/device_check}"
mkdir -p "$OUT_DIR"
main() {
t_start=$SECONDS
echo "== device_check $(date -u +%Y-%m-%dT%H:%M:%SZ) in $PWD"
nvidia-smi || echo "(nvidia-smi not found or failed)"

find_cuda_python || return 2

check=()
[[ "${DEVICE_CHECK_STRICT:-0}" == 1 ]] && check=(--check)
status=0

# 1. eager bf16: MFU, ours/plain, JEST/uniform at f = 0.5/0.8/0.9 (batch 16 x 1024; about 1-2 min on an H100)
echo "== run 1: eager, bf16 ($(( SECONDS - t_start )) s so far)"
timeout 270 "$PY" -m tools.bench --device cuda --precision bf16 --shapes 125m "${check[@]}" \
    --json "$OUT_DIR/bench_125m_bf16.json" || { rc=$?; echo "run 1 ended with status $rc"; status=$rc; }

# 2. torch.compile bf16: MFU and ours/plain only (the scoring path is not compiled, so its JEST ratio would
#    mix compiled training with eager scoring); compile time (~1 min) is in the warm-up, not in the timings
if [[ "${DEVICE_CHECK_COMPILE:-1}" == 1 ]]; then
    left=$(( 450 - (SECONDS - t_start) ))
    if (( left > 90 )); then
        echo "== run 2: torch.compile, bf16 ($(( SECONDS - t_start )) s so far, ${left} s allowed)"
        timeout "$left" "$PY" -m tools.bench --device cuda --precision bf16 --shapes 125m --compile --jest-shapes "" \
            --steps 15 --warmup 3 "${check[@]}" --json "$OUT_DIR/bench_125m_bf16_compile.json" \
            || { rc=$?; echo "run 2 ended with status $rc"; [[ $status == 0 ]] && status=$rc; }
    else
        echo "== run 2 skipped: only ${left} s left of the 450 s budget"
    fi
fi

nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.draw,power.limit,temperature.gpu,memory.used --format=csv \
    || true
echo "== device_check done in $(( SECONDS - t_start )) s, status $status; outputs in $OUT_DIR"
return $status
}

main 2>&1 | tee "$OUT_DIR/device_check.log"
exit "${PIPESTATUS[0]}"
