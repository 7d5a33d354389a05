#!/usr/bin/env bash
# Device check for issue #6: MFU, ours/plain and the JEST/uniform step ratio of the 125M
# (GPT-2-small-like) shape on one CUDA GPU, bf16 autocast. Finishes in under 8 minutes on
# one H100/H200 (two bench runs, each under a hard `timeout`; budget below).
#
# How to run it
#   On any machine with a CUDA GPU, from the repository root:
#       bash scripts/device_check.sh
#   It needs a Python whose torch sees the GPU. It tries, in order: $PYTHON, .venv/bin/python,
#   python3, python; the repo venv need not exist (the project's own venv pins the CPU build
#   of torch, so on a GPU box the system python3 with a CUDA torch is the usual pick). The
#   harness is imported from the working tree (no `pip install -e .` needed). Of its imports,
#   a CUDA image with torch + transformers typically lacks only jsonschema and its three
#   dependencies; if `.whl/` holds wheels they are installed into /tmp/site first (no network).
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

WHEELS=(jsonschema==4.26.0 jsonschema-specifications==2025.9.1 referencing==0.37.0 rpds-py==2026.9.1)

if [[ "${1:-}" == "--fetch-wheels" ]]; then
    py="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
    mkdir -p .whl
    grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
    "$py" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "${WHEELS[@]}"
    exit $?
fi

OUT_DIR="${OUT:-results/device_check}"
mkdir -p "$OUT_DIR"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

main() {
t_start=$SECONDS
echo "== device_check $(date -u +%Y-%m-%dT%H:%M:%SZ) in $PWD"
nvidia-smi || echo "(nvidia-smi not found or failed)"

PY=""
for cand in "${PYTHON:-}" .venv/bin/python python3 python; do
    [[ -n "$cand" ]] && command -v "$cand" >/dev/null 2>&1 || continue
    if "$cand" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
        PY="$cand"; break
    fi
    echo "skipping $cand: no torch, or torch sees no CUDA device"
done
if [[ -z "$PY" ]]; then
    echo "no Python with a CUDA-enabled torch found (set PYTHON=/path/to/python)"; return 2
fi
if ! "$PY" -c 'import jsonschema' 2>/dev/null && compgen -G ".whl/*.whl" >/dev/null; then
    echo "installing carried wheels from .whl/ into /tmp/site"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
"$PY" - <<'EOF' || { echo "the harness does not import with $PY (see above): carry the missing packages as wheels (.whl/)"; return 2; }
import platform, torch, transformers
import jest.bench  # noqa: F401  (the whole import chain of the benchmark)
print(f"python {platform.python_version()} ({__import__('sys').executable}), torch {torch.__version__}, "
      f"CUDA {torch.version.cuda}, transformers {transformers.__version__}, GPU {torch.cuda.get_device_name(0)}")
EOF

check=()
[[ "${DEVICE_CHECK_STRICT:-0}" == 1 ]] && check=(--check)
status=0

# 1. eager bf16: MFU, ours/plain, JEST/uniform at f = 0.5/0.8/0.9 (batch 16 x 1024; about 1-2 min on an H100)
echo "== run 1: eager, bf16 ($(( SECONDS - t_start )) s so far)"
timeout 270 "$PY" -m jest.bench --device cuda --precision bf16 --shapes 125m "${check[@]}" \
    --json "$OUT_DIR/bench_125m_bf16.json" || { rc=$?; echo "run 1 ended with status $rc"; status=$rc; }

# 2. torch.compile bf16: MFU and ours/plain only (the scoring path is not compiled, so its JEST ratio would
#    mix compiled training with eager scoring); compile time (~1 min) is in the warm-up, not in the timings
if [[ "${DEVICE_CHECK_COMPILE:-1}" == 1 ]]; then
    left=$(( 450 - (SECONDS - t_start) ))
    if (( left > 90 )); then
        echo "== run 2: torch.compile, bf16 ($(( SECONDS - t_start )) s so far, ${left} s allowed)"
        timeout "$left" "$PY" -m jest.bench --device cuda --precision bf16 --shapes 125m --compile --jest-shapes "" \
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
